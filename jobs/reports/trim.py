"""Trim family (vocabulary coverage and trimming): the report (Markdown + HTML with plots embedded
+ PNG files) and the site page (`coverage.html`).

Input: the coverage tables of one or more tokenizers (jobs/analysis/coverage.py) and, optionally,
the results of trims (jobs/trim.py).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.reports.html import (
    Col,
    Figure,
    Page,
    Section,
    Table,
    axes_grid,
    embedded_figure,
    fmt_int,
    fmt_pct,
    html_page,
    html_table,
    int_cell,
    md_table,
    pct_cell,
    pyplot,
    rel_path,
    save_figure,
    slug,
)
from jobs.store.layout import coverage_dirs, trim_runs

FIGURES = {
    "coverage_curves": "Share of each language's tokens covered by its k most frequent ids (log k).",
    "vocab_used": "Vocabulary used by each language, and the ids needed for 99% of its tokens.",
    "overlap_jaccard": "Jaccard overlap of the vocabularies languages use (first tokenizer).",
}


def coverage_rows(cov: pa.Table) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language", "tokens", "vocab used", "used share", "90%", "99%", "99.9%", "100%",
         "params saved (tied)", "params saved (untied)"]
    rows = [[r["tokenizer_name"], r["lang"], fmt_int(r["n_tokens"]), fmt_int(r["vocab_used"]),
             fmt_pct(r["vocab_used_share"]), fmt_int(r["vocab_p90"]), fmt_int(r["vocab_p99"]),
             fmt_int(r["vocab_p999"]), fmt_int(r["vocab_p100"]), fmt_int(r["params_saved_tied"]),
             fmt_int(r["params_saved_untied"])] for r in cov.sort_by([("tokenizer_name", "ascending"),
                                                                        ("lang", "ascending")]).to_pylist()]
    return h, rows, set(range(2, len(h)))


def union_rows(union: pa.Table, names: dict[str, str]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language set", "languages", "union used", "union of 99% sets", "vocab", "params saved (tied)"]
    rows = [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["language_set"], r["languages"],
             fmt_int(r["union_used"]), fmt_int(r["union_p99"]), fmt_int(r["vocab_size"]),
             fmt_int(r["params_saved_tied"])] for r in union.to_pylist()]
    return h, rows, {3, 4, 5, 6}


def overlap_rows(overlap: pa.Table, names: dict[str, str]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "A", "B", "shared ids", "Jaccard", "A's ids B uses", "A's tokens B covers"]
    rows = [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["lang_a"], r["lang_b"], fmt_int(r["n_shared"]),
             f"{r['jaccard']:.3f}", fmt_pct(r["share_a_in_b"]), fmt_pct(r["token_share_a_in_b"])]
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
        rows.append([s["tokenizer_name"], s["languages"], rule, fmt_int(s["vocab_before"]),
                     fmt_int(s["vocab_after"]), fmt_int(s["n_closure"]), merges,
                     fmt_int(s["used_tokens_dropped"]), fmt_int(s["params_saved_tied"])])
    return h, rows, {3, 4, 5, 6, 7, 8}


def faithfulness_rows(trims: list[dict]) -> tuple[list[str], list[list[str]], set[int]]:
    h = ["tokenizer", "language", "split", "role", "identical", "share", "misses (dropped token)",
         "misses (other)", "tokens trimmed / original"]
    rows = []
    for t in trims:
        for r in t["faithfulness"]:
            ratio = r["tokens_trimmed"] / r["tokens_original"] if r["tokens_original"] else float("nan")
            rows.append([t["summary"]["tokenizer_name"], r["lang"], r["split"], r["role"],
                         f"{r['n_identical']}/{r['n_sentences']}", fmt_pct(r["identical_share"], 2),
                         fmt_int(r["n_miss_dropped"]), fmt_int(r["n_miss_other"]), f"{ratio:.4f}"])
    return h, rows, {4, 5, 6, 7, 8}


def _plots(cov: pa.Table, curve: pa.Table, overlap: pa.Table, out: Path) -> dict[str, Path]:
    """The report's figures as PNG files in `out`, keyed by stem."""
    plt = pyplot()
    paths = {}
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
    paths["coverage_curves"] = save_figure(fig, out / "coverage_curves.png", dpi=100, svg=False)

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
    paths["vocab_used"] = save_figure(fig, out / "vocab_used.png", dpi=100, svg=False)

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
    paths["overlap_jaccard"] = save_figure(fig, out / "overlap_jaccard.png", dpi=100, svg=False)
    return paths


def render_trim_report(tables: dict[str, pa.Table], out_dir, trims: list[dict] | None = None,
                       title: str = "Vocabulary coverage and trimming") -> dict[str, Path]:
    """Write report.md, index.html and the PNG figures; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cov, curve, overlap, union = tables["coverage"], tables["curve"], tables["overlap"], tables["union"]
    names = dict(zip(cov["tokenizer_id"].to_pylist(), cov["tokenizer_name"].to_pylist(), strict=True))
    paths = {f"{stem}_png": p for stem, p in _plots(cov, curve, overlap, out).items()}
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
        md += [f"## {name}", "", md_table(h, rows, right), ""]
    md += ["## Plots", ""] + [f"![{s}]({s}.png)  \n{c}" for s, c in FIGURES.items()] + ["", "## Notes", ""]
    md += [f"- {n}" for n in notes] + [""]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text("\n".join(md), encoding="utf-8")
    body = [f"<h1>{html.escape(title)}</h1>"]
    for name, (h, rows, right) in sections:
        body += [f"<h2>{html.escape(name)}</h2>", html_table(h, rows, right)]
    body.append("<h2>Plots</h2>")
    body += [embedded_figure(stem, paths[f"{stem}_png"].read_bytes(), caption) for stem, caption in FIGURES.items()]
    body += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"]
    paths["html"] = out / "index.html"
    paths["html"].write_text(html_page(title, body), encoding="utf-8")
    return paths


# -- the site page (coverage.html) -------------------------------------------------------------------
def plot_coverage_curves(curve: pa.Table, names: dict[str, str]):
    tids = sorted(set(curve["tokenizer_id"].to_pylist()), key=lambda t: names.get(t, t))
    fig, axes = axes_grid(len(tids), 5.2, 3.9)
    ids, langs = np.array(curve["tokenizer_id"].to_pylist()), np.array(curve["lang"].to_pylist())
    k, cov = curve["k"].to_numpy(), curve["coverage"].to_numpy()
    for ax, tid in zip(axes, tids, strict=True):
        m = ids == tid
        shown = sorted(set(langs[m].tolist()))
        for lang in shown:
            s = np.flatnonzero(m & (langs == lang))
            s = s[np.argsort(k[s], kind="stable")]
            # ~300 log-spaced points per line: a 200k-id curve would make a huge SVG and looks the same
            s = s[np.unique(np.geomspace(1, len(s), 300).astype(np.int64)) - 1] if len(s) > 300 else s
            ax.plot(k[s], cov[s], lw=1.2, label=lang)
        for level in (0.9, 0.99):
            ax.axhline(level, color="0.6", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("k most frequent ids")
        ax.set_ylabel("share of tokens covered")
        ax.set_title(names.get(tid, tid), fontsize=10)
        ax.grid(alpha=0.3)
        if len(shown) <= 12:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def site_page(out, fig_dir: Path) -> Page | None:
    """One section per coverage corpus (curves, coverage and union tables), one for all trim runs."""
    sections = []
    for d in coverage_dirs(out):
        corpus = d.name.split("=", 1)[1]
        sid = f"coverage-{slug(corpus)}"
        cov = pq.read_table(d / "coverage.parquet")
        names = dict(zip(cov["tokenizer_id"].to_pylist(), cov["tokenizer_name"].to_pylist(), strict=True))
        sec = Section(sid, f"Vocabulary coverage on {corpus}",
                      f"{cov.num_rows} (tokenizer, language) rows from <code>{html.escape(rel_path(d, out))}</code>; "
                      "special tokens excluded.")
        if (d / "curve.parquet").exists():
            curve = pq.read_table(d / "curve.parquet")
            if curve.num_rows:
                save_figure(plot_coverage_curves(curve, names), fig_dir / f"{sid}-curves.png", dpi=100)
                sec.figures.append(Figure(f"{sid}-curves", "Coverage curves: share of each language's tokens "
                                          "covered by its k most frequent ids (dotted: 90% and 99%)."))
        sec.tables.append(Table(
            f"{sid}-coverage", "Coverage per language",
            [Col("tokenizer", "tokenizer"), Col("lang", "language"), Col("n_tokens", "tokens", True),
             Col("vocab_used", "vocab used", True), Col("share", "used share", True), Col("p90", "ids for 90%", True),
             Col("p99", "ids for 99%", True), Col("p999", "ids for 99.9%", True),
             Col("saved", "params saved (tied)", True)],
            [[r["tokenizer_name"] or r["tokenizer_id"], r["lang"], int_cell(r["n_tokens"]), int_cell(r["vocab_used"]),
              pct_cell(r["vocab_used_share"], 2), int_cell(r["vocab_p90"]), int_cell(r["vocab_p99"]),
              int_cell(r["vocab_p999"]), int_cell(r["params_saved_tied"])]
             for r in sorted(cov.to_pylist(), key=lambda r: (r["tokenizer_name"] or "", r["lang"]))]))
        if (d / "union.parquet").exists():
            union = pq.read_table(d / "union.parquet").to_pylist()
            sec.tables.append(Table(
                f"{sid}-union", "Vocabulary a set of languages needs",
                [Col("tokenizer", "tokenizer"), Col("set", "language set"), Col("languages", "languages"),
                 Col("union_used", "ids used", True), Col("union_p99", "union of 99% sets", True),
                 Col("vocab_size", "vocabulary", True), Col("saved", "params saved (tied)", True)],
                [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["language_set"], r["languages"],
                  int_cell(r["union_used"]), int_cell(r["union_p99"]), int_cell(r["vocab_size"]),
                  int_cell(r["params_saved_tied"])] for r in union]))
        sections.append(sec)
    runs = trim_runs(out)
    if runs:
        summ = [r for p in runs for r in pq.read_table(p / "summary.parquet").to_pylist()]
        faith = [r for p in runs if (p / "faithfulness.parquet").exists()
                 for r in pq.read_table(p / "faithfulness.parquet").to_pylist()]
        names = {r["tokenizer_id"]: r["tokenizer_name"] for r in summ}
        sec = Section("trims", "Trimmed tokenizers", f"{len(runs)} trim runs under <code>trim/</code>.")
        sec.tables.append(Table(
            "trims", "Trims",
            [Col("tokenizer", "tokenizer"), Col("languages", "languages"), Col("min_frequency", "min frequency", True),
             Col("vocab_before", "vocab before", True), Col("vocab_after", "vocab after", True),
             Col("closure", "closure ids", True), Col("dropped", "used tokens dropped", True),
             Col("saved", "params saved (tied)", True)],
            [[r["tokenizer_name"] or r["tokenizer_id"], r["languages"], int_cell(r["min_frequency"]),
              int_cell(r["vocab_before"]), int_cell(r["vocab_after"]), int_cell(r["n_closure"]),
              int_cell(r["used_tokens_dropped"]), int_cell(r["params_saved_tied"])] for r in summ]))
        if faith:
            sec.tables.append(Table(
                "trim-faithfulness", "Faithfulness (re-encoding check)",
                [Col("tokenizer", "tokenizer"), Col("lang", "language"), Col("split", "split"), Col("role", "role"),
                 Col("n", "sentences", True), Col("share", "identical", True), Col("miss", "misses (dropped)", True),
                 Col("other", "misses (other)", True)],
                [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["lang"], r["split"], r["role"] or "-",
                  int_cell(r["n_sentences"]), pct_cell(r["identical_share"], 2), int_cell(r["n_miss_dropped"]),
                  int_cell(r["n_miss_other"])] for r in faith]))
        sections.append(sec)
    return Page("coverage", sections) if sections else None
