"""Coverage and trimming report: Markdown + HTML (plots embedded) + PNG files.

Input: the coverage tables of one or more tokenizers (jobs/analysis/coverage.py) and, optionally,
the results of trims (jobs/trim.py). Tables and HTML helpers are the premium report's.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.reports.html import _CSS, _html_table, _md_table

FIGURES = {
    "coverage_curves": "Share of each language's tokens covered by its k most frequent ids (log k).",
    "vocab_used": "Vocabulary used by each language, and the ids needed for 99% of its tokens.",
    "overlap_jaccard": "Jaccard overlap of the vocabularies languages use (first tokenizer).",
}


def _fmt_int(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def _fmt_share(v, digits: int = 1) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{100 * v:.{digits}f}%"


def coverage_rows(cov: pa.Table) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language", "tokens", "vocab used", "used share", "90%", "99%", "99.9%", "100%",
         "params saved (tied)", "params saved (untied)"]
    rows = [[r["tokenizer_name"], r["lang"], _fmt_int(r["n_tokens"]), _fmt_int(r["vocab_used"]),
             _fmt_share(r["vocab_used_share"]), _fmt_int(r["vocab_p90"]), _fmt_int(r["vocab_p99"]),
             _fmt_int(r["vocab_p999"]), _fmt_int(r["vocab_p100"]), _fmt_int(r["params_saved_tied"]),
             _fmt_int(r["params_saved_untied"])] for r in cov.sort_by([("tokenizer_name", "ascending"),
                                                                        ("lang", "ascending")]).to_pylist()]
    return h, rows, set(range(2, len(h)))


def union_rows(union: pa.Table, names: dict[str, str]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language set", "languages", "union used", "union of 99% sets", "vocab", "params saved (tied)"]
    rows = [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["language_set"], r["languages"],
             _fmt_int(r["union_used"]), _fmt_int(r["union_p99"]), _fmt_int(r["vocab_size"]),
             _fmt_int(r["params_saved_tied"])] for r in union.to_pylist()]
    return h, rows, {3, 4, 5, 6}


def overlap_rows(overlap: pa.Table, names: dict[str, str]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "A", "B", "shared ids", "Jaccard", "A's ids B uses", "A's tokens B covers"]
    rows = [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["lang_a"], r["lang_b"], _fmt_int(r["n_shared"]),
             f"{r['jaccard']:.3f}", _fmt_share(r["share_a_in_b"]), _fmt_share(r["token_share_a_in_b"])]
            for r in overlap.to_pylist()]
    return h, rows, {3, 4, 5, 6}


def trim_rows(trims: list[dict]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "languages", "rule", "vocab before", "vocab after", "closure", "merges after",
         "used dropped", "params saved (tied)"]
    rows = []
    for t in trims:
        s = t["summary"]
        rule = f"min freq {s['min_frequency']}" + (f", top {s['top_n']}" if s["top_n"] is not None else "")
        merges = "-" if s["merges_after"] is None else f"{s['merges_after']:,} / {s['merges_before']:,}"
        rows.append([s["tokenizer_name"], s["languages"], rule, _fmt_int(s["vocab_before"]),
                     _fmt_int(s["vocab_after"]), _fmt_int(s["n_closure"]), merges,
                     _fmt_int(s["used_tokens_dropped"]), _fmt_int(s["params_saved_tied"])])
    return h, rows, {3, 4, 5, 6, 7, 8}


def faithfulness_rows(trims: list[dict]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language", "split", "role", "identical", "share", "misses (dropped token)",
         "misses (other)", "tokens trimmed / original"]
    rows = []
    for t in trims:
        for r in t["faithfulness"]:
            ratio = r["tokens_trimmed"] / r["tokens_original"] if r["tokens_original"] else float("nan")
            rows.append([t["summary"]["tokenizer_name"], r["lang"], r["split"], r["role"],
                         f"{r['n_identical']}/{r['n_sentences']}", _fmt_share(r["identical_share"], 2),
                         _fmt_int(r["n_miss_dropped"]), _fmt_int(r["n_miss_other"]), f"{ratio:.4f}"])
    return h, rows, {4, 5, 6, 7, 8}


def _plots(cov: pa.Table, curve: pa.Table, overlap: pa.Table) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    names = dict(zip(cov["tokenizer_id"].to_pylist(), cov["tokenizer_name"].to_pylist(), strict=True))
    tids = sorted(names, key=names.get)
    fig, axes = plt.subplots(1, max(len(tids), 1), figsize=(6 * max(len(tids), 1), 4.5), squeeze=False)
    for ax, tid in zip(axes[0], tids, strict=False):
        c = curve.filter(pc.equal(curve["tokenizer_id"], tid))
        for lang in sorted(set(c["lang"].to_pylist())):
            cl = c.filter(pc.equal(c["lang"], lang))
            ax.plot(cl["k"].to_numpy(), cl["coverage"].to_numpy(), label=lang, lw=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("k most frequent ids")
        ax.set_ylabel("share of tokens covered")
        ax.set_title(names[tid])
        ax.grid(alpha=0.3)
        if len(set(c["lang"].to_pylist())) <= 12:
            ax.legend(fontsize=8)
    fig.tight_layout()
    out["coverage_curves"] = _png(fig, plt)

    rows = cov.sort_by([("tokenizer_name", "ascending"), ("lang", "ascending")]).to_pylist()
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    ax.bar(x, [r["vocab_used"] for r in rows], label="vocab used", color="#9bbbd9")
    ax.bar(x, [r["vocab_p99"] for r in rows], label="ids for 99% of tokens", color="#2f6fad", width=0.5)
    ax.set_xticks(x, [f"{r['tokenizer_name']}\n{r['lang']}" if len(tids) > 1 else r["lang"] for r in rows],
                  rotation=90, fontsize=7)
    ax.set_ylabel("ids")
    ax.legend()
    fig.tight_layout()
    out["vocab_used"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(6, 5))
    if len(overlap) and tids:
        o = overlap.filter(pc.equal(overlap["tokenizer_id"], tids[0]))
        langs = sorted(set(o["lang_a"].to_pylist()))
        m = np.eye(len(langs))
        pos = {lang: i for i, lang in enumerate(langs)}
        for r in o.to_pylist():
            m[pos[r["lang_a"]], pos[r["lang_b"]]] = r["jaccard"]
        im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=7)
        ax.set_yticks(range(len(langs)), langs, fontsize=7)
        ax.set_title(f"Jaccard of used vocabularies: {names[tids[0]]}")
        fig.colorbar(im, ax=ax)
    else:
        ax.text(0.5, 0.5, "fewer than two languages", ha="center")
        ax.axis("off")
    fig.tight_layout()
    out["overlap_jaccard"] = _png(fig, plt)
    return out


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def render_trim_report(tables: dict[str, pa.Table], out_dir, trims: list[dict] | None = None,
                       title: str = "Vocabulary coverage and trimming") -> dict[str, Path]:
    """Write report.md, index.html and the PNG figures; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cov, curve, overlap, union = tables["coverage"], tables["curve"], tables["overlap"], tables["union"]
    names = dict(zip(cov["tokenizer_id"].to_pylist(), cov["tokenizer_name"].to_pylist(), strict=True))
    pngs = _plots(cov, curve, overlap)
    paths: dict[str, Path] = {}
    for stem, data in pngs.items():
        paths[f"{stem}_png"] = out / f"{stem}.png"
        paths[f"{stem}_png"].write_bytes(data)
    sections = [("Coverage per language (special tokens excluded)", coverage_rows(cov)),
                ("Union for language sets", union_rows(union, names))]
    if len(overlap) and len(overlap) <= 400:
        sections.append(("Overlap between languages", overlap_rows(overlap, names)))
    if trims:
        sections += [("Trims", trim_rows(trims)), ("Faithfulness (re-encoding check)", faithfulness_rows(trims))]
    notes = [
        "'k%' columns: fewest ids, most frequent first, whose occurrences cover k% of the language's tokens.",
        "Parameters saved assume the hidden size in the Parquet tables; untied counts input and output embeddings.",
        "Faithfulness: a sentence counts as identical when the trimmed tokenizer's ids equal the original ids "
        "mapped through the id map. Misses on held-out text come from tokens the trim dropped; "
        "'misses (other)' must be 0.",
    ]
    md = [f"# {title}", ""]
    for name, (h, rows, right) in sections:
        md += [f"## {name}", "", _md_table(h, rows, right), ""]
    md += ["## Plots", ""] + [f"![{s}]({s}.png)  \n{c}" for s, c in FIGURES.items()] + ["", "## Notes", ""]
    md += [f"- {n}" for n in notes] + [""]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text("\n".join(md), encoding="utf-8")
    body = [f"<h1>{html.escape(title)}</h1>"]
    for name, (h, rows, right) in sections:
        body += [f"<h2>{html.escape(name)}</h2>", _html_table(h, rows, right)]
    body.append("<h2>Plots</h2>")
    for stem, caption in FIGURES.items():
        b64 = base64.b64encode(pngs[stem]).decode()
        body.append(f'<figure><img alt="{stem}" src="data:image/png;base64,{b64}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    body += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"]
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")
    paths["html"] = out / "index.html"
    paths["html"].write_text(page, encoding="utf-8")
    return paths
