"""Inequity report of a trained grid: Markdown and a self-contained HTML page with plots.

Input: the tables of `jobs.analysis.inequity.analyse`. Figures (matplotlib Agg, saved as PNG
beside the pages and embedded in the HTML): CTC against vocabulary size per language
with the fitted power laws; the distribution of CTC across languages at each equal
vocabulary size and at the per-language optimal sizes; superword BPE against its BPE
twin.
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.analysis.inequity import algorithm_label
from jobs.reports.html import _html_table, _md_table

FIGURES = {
    "ctc_vs_vocab": "CTC on the evaluation text against vocabulary size, per language (points measured, lines "
                    "fitted power laws), one panel per algorithm.",
    "ctc_equal_vs_optimal": "CTC across languages at each equal vocabulary size and at each language's optimal "
                            "size (measured in the second pass where trained, else predicted by the fit).",
    "superword_vs_bpe": "Superword BPE CTC relative to byte-level BPE with the same language, vocabulary size "
                        "and training bytes (below 1: fewer tokens).",
}


def _f(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e5 else f"{v:.{digits}f}"
    return str(v)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ctc_vs_vocab(ctc: pa.Table, fits: pa.Table, path: Path) -> Path | None:
    rows = ctc.to_pylist()
    if not rows:
        return None
    plt = _plt()
    labels = sorted({algorithm_label(r) for r in rows})
    langs = sorted({r["lang"] for r in rows})
    cmap = plt.get_cmap("tab20")
    color = {lang: cmap(i % 20) for i, lang in enumerate(langs)}
    fit_by = {(f["lang"], f["algorithm"], f["pre_tokenizer"], f["train_bytes"]): f for f in fits.to_pylist()}
    n = len(labels)
    cols = min(3, n)
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(5 * cols, 3.8 * math.ceil(n / cols)), squeeze=False)
    for ax, label in zip(axes.flat, labels, strict=False):
        groups = defaultdict(list)
        for r in rows:
            if algorithm_label(r) == label:
                groups[(r["lang"], r["pre_tokenizer"], r["train_bytes"])].append(r)
        for (lang, pt, tb), rs in sorted(groups.items()):
            rs.sort(key=lambda r: r["vocab_size"])
            ax.scatter([r["vocab_size"] for r in rs], [r["ctc"] for r in rs], color=color[lang], s=14)
            f = fit_by.get((lang, label, pt, tb))
            if f:
                v = np.geomspace(f["v_min"], f["v_max"], 50)
                ax.plot(v, f["a"] * v ** f["b"] + (f["c"] or 0), color=color[lang], lw=1,
                        label=f"{lang} b={f['b']:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("vocabulary size")
        ax.set_ylabel("CTC")
        ax.legend(fontsize=6, ncol=2)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"))  # vector copy beside the PNG
    plt.close(fig)
    return path


def plot_equal_vs_optimal(ctc: pa.Table, optimal: pa.Table, path: Path) -> Path | None:
    opt = optimal.to_pylist()
    if not opt:
        return None
    plt = _plt()
    rows = ctc.to_pylist()
    labels = sorted({r["algorithm"] for r in opt})
    cols = min(3, len(labels))
    nrows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.8 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    for ax, label in zip(axes.flat, labels, strict=False):
        o = [r for r in opt if r["algorithm"] == label]
        langs = {r["lang"] for r in o}
        sizes = sorted({r["vocab_size"] for r in rows if algorithm_label(r) == label})
        data, names = [], []
        for v in sizes:
            data.append([r["ctc"] for r in rows if algorithm_label(r) == label and r["vocab_size"] == v
                         and r["lang"] in langs])
            names.append(f"V={v}")
        measured = all(r["ctc_measured"] is not None for r in o)
        data.append([r["ctc_measured"] if measured else r["ctc_predicted"] for r in o])
        names.append("optimal\n(" + ("measured" if measured else "predicted") + ")")
        ax.boxplot(data, showfliers=False)
        for i, d in enumerate(data, start=1):
            ax.scatter(np.full(len(d), i) + np.linspace(-0.12, 0.12, len(d)), d, s=10, alpha=0.7)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("CTC across languages")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"))  # vector copy beside the PNG
    plt.close(fig)
    return path


def superword_pairs(ctc: pa.Table) -> list[dict]:
    """(lang, V, bytes, transition, ratio) of superbpe CTC over byte-level hf-bpe CTC."""
    bpe = {(r["lang"], r["vocab_size"], r["train_bytes"]): r["ctc"] for r in ctc.to_pylist()
           if r["algorithm"] == "hf-bpe" and r["pre_tokenizer"] == "bytelevel"}
    out = []
    for r in ctc.to_pylist():
        k = (r["lang"], r["vocab_size"], r["train_bytes"])
        if r["algorithm"] == "superbpe" and k in bpe:
            out.append({"lang": r["lang"], "vocab_size": r["vocab_size"], "train_bytes": r["train_bytes"],
                        "label": algorithm_label(r), "ratio": r["ctc"] / bpe[k]})
    return out


def plot_superword(ctc: pa.Table, path: Path) -> Path | None:
    pairs = superword_pairs(ctc)
    if not pairs:
        return None
    plt = _plt()
    langs = sorted({p["lang"] for p in pairs})
    labels = sorted({p["label"] for p in pairs})
    sizes = sorted({p["vocab_size"] for p in pairs})
    fig, axes = plt.subplots(1, len(labels), figsize=(max(5, 0.5 * len(langs) * len(sizes) / 2) * len(labels) / 1.5,
                                                      3.8), squeeze=False)
    width = 0.8 / len(sizes)
    for ax, label in zip(axes.flat, labels, strict=True):
        for j, v in enumerate(sizes):
            vals = {p["lang"]: p["ratio"] for p in pairs if p["label"] == label and p["vocab_size"] == v}
            ax.bar(np.arange(len(langs)) + j * width, [vals.get(lang, np.nan) for lang in langs], width,
                   label=f"V={v}")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(langs)) + 0.4 - width / 2, langs, rotation=45, ha="right", fontsize=7)
        lo = min(p["ratio"] for p in pairs)
        ax.set_ylim(min(0.9, lo - 0.02), 1.05)
        ax.set_title(f"{label} / hf-bpe", fontsize=10)
        ax.set_ylabel("CTC ratio")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".svg"))  # vector copy beside the PNG
    plt.close(fig)
    return path


def _sections(t: dict[str, pa.Table], status: dict | None) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, note, headers, rows) of every report table."""
    secs = []
    if status:
        secs.append(("Grid status", "", ["planned", "done", "failed", "remaining"],
                     [[str(status.get(k, "-")) for k in ("planned", "done", "failed", "remaining")]]))
        if status.get("failures"):
            secs.append(("Failed cells", "Recorded with their reason; the rest of the grid completed.",
                         ["cell", "lang", "algorithm", "V", "reason", "error"],
                         [[f[0][:8], f[1], f[2], str(f[3]), f[4] or "", (f[5] or "")[:90]]
                          for f in status["failures"][:40]]))
    fits = t["fits"].to_pylist()
    secs.append(("Power-law fits CTC(V) = a·V^b", "rmse_rel: relative error at the fitted sizes; loo: mean "
                 "leave-one-out relative prediction error.",
                 ["lang", "algorithm", "pre-tok", "bytes", "n", "a", "b", "±se(b)", "R²", "rmse_rel", "loo"],
                 [[f["lang"], f["algorithm"], f["pre_tokenizer"], str(f["train_bytes"]), str(f["n_points"]),
                   _f(f["a"]), _f(f["b"]), _f(f["b_se"]), _f(f["r2"]), _f(f["rmse_rel"]), _f(f["loo_rel_error"])]
                  for f in fits]))
    opt = t["optimal"].to_pylist()
    secs.append(("Optimal vocabulary size per language", "Vocabulary size at which each language reaches the "
                 "target CTC (the target minimising cross-language variance unless the spec fixes one); interval: "
                 "95% from the fit's parameter covariance; measured: second-pass tokenizer trained at v_opt.",
                 ["lang", "algorithm", "target", "v_opt", "95% interval", "clipped", "extrap.", "predicted", "measured"],
                 [[o["lang"], o["algorithm"], _f(o["target_ctc"], 6), str(o["v_opt"]),
                   f"[{_f(o['v_opt_lo'], 4)}, {_f(o['v_opt_hi'], 4)}]" if o["v_opt_lo"] else "-",
                   "yes" if o["clipped"] else "", "yes" if o["extrapolated"] else "", _f(o["ctc_predicted"], 6),
                   _f(o["ctc_measured"])] for o in opt]))
    tests = t["tests"].to_pylist()
    ft = [r for r in tests if r["test"] == "f_equal_vs_optimal"]
    secs.append(("F-test: CTC variance at equal vs optimal vocabulary size", "F = var(equal) / var(optimal); "
                 "one-sided p for a reduced variance. 'predicted' uses fitted CTCs (optimistic by construction); "
                 "'measured' uses the second-pass tokenizers.",
                 ["group", "basis", "n", "var equal", "var optimal", "F", "p"],
                 [[r["group"], r["basis"], str(r["n1"]), _f(r["stat1"], 4), _f(r["stat2"], 4), _f(r["statistic"], 4),
                   _f(r["p_value"], 3)] for r in ft]))
    pt = [r for r in tests if r["test"] == "paired_algorithms"]
    secs.append(("Paired tests between algorithms", "Pairs: same language, vocabulary size and training bytes. "
                 "Ratio: median CTC(first)/CTC(second). Wilcoxon signed-rank and paired t on log CTC.",
                 ["pair", "n", "median ratio", "Wilcoxon W", "p (Wilcoxon)", "p (t)"],
                 [[r["group"], str(r["n1"]), _f(r["stat1"], 4), _f(r["statistic"], 4), _f(r["p_value"], 3),
                   _f(r["p_value_t"], 3)] for r in pt]))
    reg = t["regressions"].to_pylist()
    if reg:
        by_feat = defaultdict(list)
        for r in reg:
            by_feat[r["feature"]].append(r)
        secs.append(("Regression of log CTC on language features", "R² over the (algorithm, V) slices: mean, min, "
                     "max; n languages per slice. With few languages the combined model is nearly saturated — read "
                     "adjusted R².",
                     ["feature", "slices", "n", "mean R²", "min R²", "max R²", "mean adj. R²", "mean slope"],
                     [[f, str(len(rs)), str(rs[0]["n"]), _f(float(np.mean([r["r2"] for r in rs]))),
                       _f(float(np.min([r["r2"] for r in rs]))), _f(float(np.max([r["r2"] for r in rs]))),
                       _f(float(np.mean([r["adj_r2"] for r in rs])) if all(r["adj_r2"] is not None for r in rs)
                          else None),
                       _f(float(np.mean([r["slope"] for r in rs])) if rs[0]["slope"] is not None else None)]
                      for f, rs in sorted(by_feat.items())]))
    feats = t["features"].to_pylist()
    secs.append(("Language features", "From the evaluation text (word length, whitespace, bytes per char) and the "
                 "training sample (similarity: share of eval words seen in training).",
                 ["lang", "script", "word chars", "whitespace", "bytes/char", "train~eval", "byte premium",
                  "train bytes"],
                 [[f["lang"], f["script"], _f(f["mean_word_chars"]), _f(f["whitespace_share"]),
                   _f(f["bytes_per_char"]), _f(f["train_eval_similarity"]), _f(f["byte_premium"]),
                   str(f["train_bytes_available"])] for f in feats]))
    sw = superword_pairs(t["ctc"])
    if sw:
        secs.append(("Superword BPE vs byte-level BPE", "CTC ratio superbpe / hf-bpe (below 1: fewer tokens).",
                     ["lang", "V", "bytes", "superbpe", "ratio"],
                     [[p["lang"], str(p["vocab_size"]), str(p["train_bytes"]), p["label"], _f(p["ratio"], 4)]
                      for p in sw]))
    return secs


def render_inequity_report(tables: dict[str, pa.Table], out_dir, *, title: str = "Crosslingual tokenizer inequity",
                           status: dict | None = None, notes: list[str] | None = None) -> dict[str, Path]:
    """Write report.md, index.html and the PNG figures into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = {
        "ctc_vs_vocab": plot_ctc_vs_vocab(tables["ctc"], tables["fits"], out_dir / "ctc_vs_vocab.png"),
        "ctc_equal_vs_optimal": plot_equal_vs_optimal(tables["ctc"], tables["optimal"],
                                                      out_dir / "ctc_equal_vs_optimal.png"),
        "superword_vs_bpe": plot_superword(tables["ctc"], out_dir / "superword_vs_bpe.png"),
    }
    secs = _sections(tables, status)
    md = [f"# {title}", ""]
    hs = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
          "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
          "font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px}.num{text-align:right}</style>",
          f"<h1>{html.escape(title)}</h1>"]
    for n in notes or []:
        md += [n, ""]
        hs.append(f"<p>{html.escape(n)}</p>")
    for stem, p in figs.items():
        if p is None:
            continue
        md += [f"![{FIGURES[stem]}]({p.name})", "", f"*{FIGURES[stem]}*", ""]
        b64 = base64.b64encode(p.read_bytes()).decode()
        hs.append(f"<figure><img src='data:image/png;base64,{b64}' style='max-width:100%'>"
                  f"<figcaption>{html.escape(FIGURES[stem])}</figcaption></figure>")
    for title_, note, headers, rows in secs:
        right = set(range(1, len(headers)))
        md += [f"## {title_}", ""] + ([note, ""] if note else []) + [_md_table(headers, rows, right) if rows
                                                                      else "(none)", ""]
        hs += [f"<h2>{html.escape(title_)}</h2>"] + ([f"<p>{html.escape(note)}</p>"] if note else []) + \
              [_html_table(headers, rows, right) if rows else "<p>(none)</p>"]
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "index.html"}
    paths["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths["html"].write_text("\n".join(hs) + "\n", encoding="utf-8")
    return {**paths, **{k: v for k, v in figs.items() if v is not None}}
