"""Grid family (tokenizers trained per language over vocabulary sizes): the inequity report
(Markdown and a self-contained HTML page with plots) and the site page.

Input: the tables of `jobs.analysis.grid.analyse`. Figures (matplotlib Agg, saved as PNG
and SVG beside the pages and embedded in the HTML): CTC against vocabulary size per language
with the fitted power laws; the distribution of CTC across languages at each equal
vocabulary size and at the per-language optimal sizes; superword BPE against its BPE
twin.
"""

from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.analysis.grid import algorithm_label
from jobs.reports.html import (
    Col,
    Figure,
    Page,
    Section,
    Table,
    axes_grid,
    fmt_sig,
    html_table,
    int_cell,
    md_table,
    num_cell,
    pct_cell,
    png_data_uri,
    pyplot,
    rel_path,
    save_figure,
    slug,
)
from jobs.store.layout import grid_analysis_dirs

FIGURES = {
    "ctc_vs_vocab": "CTC on the evaluation text against vocabulary size, per language (points measured, lines "
                    "fitted power laws), one panel per algorithm.",
    "ctc_equal_vs_optimal": "CTC across languages at each equal vocabulary size and at each language's optimal "
                            "size (measured in the second pass where trained, else predicted by the fit).",
    "superword_vs_bpe": "Superword BPE CTC relative to byte-level BPE with the same language, vocabulary size "
                        "and training bytes (below 1: fewer tokens).",
}


def plot_ctc_vs_vocab(ctc: pa.Table, fits: pa.Table, path: Path) -> Path | None:
    rows = ctc.to_pylist()
    if not rows:
        return None
    labels = sorted({algorithm_label(r) for r in rows})
    langs = sorted({r["lang"] for r in rows})
    cmap = pyplot().get_cmap("tab20")
    color = {lang: cmap(i % 20) for i, lang in enumerate(langs)}
    fit_by = {(f["lang"], f["algorithm"], f["pre_tokenizer"], f["train_bytes"]): f for f in fits.to_pylist()}
    fig, axes = axes_grid(len(labels), 5, 3.8)
    for ax, label in zip(axes, labels, strict=True):
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
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def plot_equal_vs_optimal(ctc: pa.Table, optimal: pa.Table, path: Path) -> Path | None:
    opt = optimal.to_pylist()
    if not opt:
        return None
    rows = ctc.to_pylist()
    labels = sorted({r["algorithm"] for r in opt})
    fig, axes = axes_grid(len(labels), 4.6, 3.8)
    for ax, label in zip(axes, labels, strict=True):
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
    return save_figure(fig, path, dpi=110)


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
    plt = pyplot()
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
    return save_figure(fig, path, dpi=110)


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
                   fmt_sig(f["a"]), fmt_sig(f["b"]), fmt_sig(f["b_se"]), fmt_sig(f["r2"]), fmt_sig(f["rmse_rel"]), fmt_sig(f["loo_rel_error"])]
                  for f in fits]))
    opt = t["optimal"].to_pylist()
    secs.append(("Optimal vocabulary size per language", "Vocabulary size at which each language reaches the "
                 "target CTC (the target minimising cross-language variance unless the spec fixes one); interval: "
                 "95% from the fit's parameter covariance; measured: second-pass tokenizer trained at v_opt.",
                 ["lang", "algorithm", "target", "v_opt", "95% interval", "clipped", "extrap.", "predicted", "measured"],
                 [[o["lang"], o["algorithm"], fmt_sig(o["target_ctc"], 6), str(o["v_opt"]),
                   f"[{fmt_sig(o['v_opt_lo'], 4)}, {fmt_sig(o['v_opt_hi'], 4)}]" if o["v_opt_lo"] else "-",
                   "yes" if o["clipped"] else "", "yes" if o["extrapolated"] else "", fmt_sig(o["ctc_predicted"], 6),
                   fmt_sig(o["ctc_measured"])] for o in opt]))
    tests = t["tests"].to_pylist()
    ft = [r for r in tests if r["test"] == "f_equal_vs_optimal"]
    secs.append(("F-test: CTC variance at equal vs optimal vocabulary size", "F = var(equal) / var(optimal); "
                 "one-sided p for a reduced variance. 'predicted' uses fitted CTCs (optimistic by construction); "
                 "'measured' uses the second-pass tokenizers.",
                 ["group", "basis", "n", "var equal", "var optimal", "F", "p"],
                 [[r["group"], r["basis"], str(r["n1"]), fmt_sig(r["stat1"], 4), fmt_sig(r["stat2"], 4), fmt_sig(r["statistic"], 4),
                   fmt_sig(r["p_value"], 3)] for r in ft]))
    pt = [r for r in tests if r["test"] == "paired_algorithms"]
    secs.append(("Paired tests between algorithms", "Pairs: same language, vocabulary size and training bytes. "
                 "Ratio: median CTC(first)/CTC(second). Wilcoxon signed-rank and paired t on log CTC.",
                 ["pair", "n", "median ratio", "Wilcoxon W", "p (Wilcoxon)", "p (t)"],
                 [[r["group"], str(r["n1"]), fmt_sig(r["stat1"], 4), fmt_sig(r["statistic"], 4), fmt_sig(r["p_value"], 3),
                   fmt_sig(r["p_value_t"], 3)] for r in pt]))
    reg = t["regressions"].to_pylist()
    if reg:
        by_feat = defaultdict(list)
        for r in reg:
            by_feat[r["feature"]].append(r)
        secs.append(("Regression of log CTC on language features", "R² over the (algorithm, V) slices: mean, min, "
                     "max; n languages per slice. With few languages the combined model is nearly saturated — read "
                     "adjusted R².",
                     ["feature", "slices", "n", "mean R²", "min R²", "max R²", "mean adj. R²", "mean slope"],
                     [[f, str(len(rs)), str(rs[0]["n"]), fmt_sig(float(np.mean([r["r2"] for r in rs]))),
                       fmt_sig(float(np.min([r["r2"] for r in rs]))), fmt_sig(float(np.max([r["r2"] for r in rs]))),
                       fmt_sig(float(np.mean([r["adj_r2"] for r in rs])) if all(r["adj_r2"] is not None for r in rs)
                          else None),
                       fmt_sig(float(np.mean([r["slope"] for r in rs])) if rs[0]["slope"] is not None else None)]
                      for f, rs in sorted(by_feat.items())]))
    feats = t["features"].to_pylist()
    secs.append(("Language features", "From the evaluation text (word length, whitespace, bytes per char) and the "
                 "training sample (similarity: share of eval words seen in training).",
                 ["lang", "script", "word chars", "whitespace", "bytes/char", "train~eval", "byte premium",
                  "train bytes"],
                 [[f["lang"], f["script"], fmt_sig(f["mean_word_chars"]), fmt_sig(f["whitespace_share"]),
                   fmt_sig(f["bytes_per_char"]), fmt_sig(f["train_eval_similarity"]), fmt_sig(f["byte_premium"]),
                   str(f["train_bytes_available"])] for f in feats]))
    sw = superword_pairs(t["ctc"])
    if sw:
        secs.append(("Superword BPE vs byte-level BPE", "CTC ratio superbpe / hf-bpe (below 1: fewer tokens).",
                     ["lang", "V", "bytes", "superbpe", "ratio"],
                     [[p["lang"], str(p["vocab_size"]), str(p["train_bytes"]), p["label"], fmt_sig(p["ratio"], 4)]
                      for p in sw]))
    return secs


def render_grid_report(tables: dict[str, pa.Table], out_dir, *, title: str = "Crosslingual tokenizer inequity",
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
        hs.append(f"<figure><img src='{png_data_uri(p.read_bytes())}' style='max-width:100%'>"
                  f"<figcaption>{html.escape(FIGURES[stem])}</figcaption></figure>")
    for title_, note, headers, rows in secs:
        right = set(range(1, len(headers)))
        md += [f"## {title_}", ""] + ([note, ""] if note else []) + [md_table(headers, rows, right) if rows
                                                                      else "(none)", ""]
        hs += [f"<h2>{html.escape(title_)}</h2>"] + ([f"<p>{html.escape(note)}</p>"] if note else []) + \
              [html_table(headers, rows, right) if rows else "<p>(none)</p>"]
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "index.html"}
    paths["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    paths["html"].write_text("\n".join(hs) + "\n", encoding="utf-8")
    return {**paths, **{k: v for k, v in figs.items() if v is not None}}


# -- the site page ---------------------------------------------------------------------------------
def site_page(out, fig_dir: Path) -> Page | None:
    """One section per analysed grid: the report's CTC and optimal-size plots, CTC, fit and optimum tables."""
    sections = []
    for d in grid_analysis_dirs(out):
        name = d.parent.name
        sid = f"grid-{slug(name)}"
        t = {k: pq.read_table(d / f"{k}.parquet") for k in ("ctc", "fits", "optimal")
             if (d / f"{k}.parquet").exists()}
        ctc = t["ctc"]
        fits = t.get("fits")
        sec = Section(sid, f"Grid {name}", f"{ctc.num_rows} trained tokenizers with a measured CTC, from "
                      f"<code>{html.escape(rel_path(d, out))}</code>.")
        if ctc.num_rows and fits is not None and plot_ctc_vs_vocab(ctc, fits, fig_dir / f"{sid}-ctc-vs-vocab.png"):
            sec.figures.append(Figure(f"{sid}-ctc-vs-vocab", "CTC against vocabulary size per language (points "
                                      "measured, lines fitted power laws), one panel per algorithm."))
        if "optimal" in t and ctc.num_rows and plot_equal_vs_optimal(ctc, t["optimal"],
                                                                      fig_dir / f"{sid}-equal-vs-optimal.png"):
            sec.figures.append(Figure(f"{sid}-equal-vs-optimal", "CTC across languages at each equal vocabulary "
                                      "size and at each language's optimal size."))
        sec.tables.append(Table(
            f"{sid}-ctc", "CTC per trained tokenizer",
            [Col("lang", "language"), Col("algorithm", "algorithm"), Col("pre_tokenizer", "pre-tokenizer"),
             Col("vocab_size", "vocabulary", True), Col("actual_vocab_size", "actual vocabulary", True),
             Col("train_bytes", "training bytes", True), Col("ctc", "CTC", True),
             Col("bytes_per_token", "bytes / token", True)],
            [[r["lang"], algorithm_label(r), r["pre_tokenizer"] or "-", int_cell(r["vocab_size"]),
              int_cell(r["actual_vocab_size"]), int_cell(r["train_bytes"]), int_cell(r["ctc"]),
              num_cell(r["n_bytes"] / r["ctc"] if r["ctc"] and r["n_bytes"] is not None else None)]
             for r in sorted(ctc.to_pylist(), key=lambda r: (r["lang"], algorithm_label(r), r["vocab_size"]))]))
        if fits is not None:
            sec.tables.append(Table(
                f"{sid}-fits", "Power-law fits CTC(V) = a V^b (+ c)",
                [Col("lang", "language"), Col("algorithm", "algorithm"), Col("pre_tokenizer", "pre-tokenizer"),
                 Col("train_bytes", "training bytes", True), Col("n_points", "sizes", True),
                 Col("b", "exponent b", True), Col("r2", "R\u00b2", True), Col("rmse_rel", "rel. RMSE", True),
                 Col("loo", "leave-one-out error", True)],
                [[r["lang"], r["algorithm"], r["pre_tokenizer"] or "-", int_cell(r["train_bytes"]),
                  int_cell(r["n_points"]), num_cell(r["b"], "{:.3f}"), num_cell(r["r2"], "{:.3f}"),
                  pct_cell(r["rmse_rel"], 2), pct_cell(r["loo_rel_error"], 2)] for r in fits.to_pylist()]))
        if "optimal" in t:
            sec.tables.append(Table(
                f"{sid}-optimal", "Optimal vocabulary size per language",
                [Col("lang", "language"), Col("algorithm", "algorithm"), Col("target", "target CTC", True),
                 Col("v_opt", "optimal vocabulary", True), Col("v_lo", "95% low", True), Col("v_hi", "95% high", True),
                 Col("flags", "flags"), Col("predicted", "predicted CTC", True), Col("measured", "measured CTC", True)],
                [[r["lang"], r["algorithm"], num_cell(r["target_ctc"], "{:,.0f}"), int_cell(r["v_opt"]),
                  num_cell(r["v_opt_lo"], "{:,.0f}"), num_cell(r["v_opt_hi"], "{:,.0f}"),
                  ", ".join(k for k in ("clipped", "extrapolated") if r[k]) or "-",
                  num_cell(r["ctc_predicted"], "{:,.0f}"), int_cell(r["ctc_measured"])]
                 for r in t["optimal"].to_pylist()],
                "Target: the CTC minimising cross-language variance unless the spec fixes one (docs/grid.md)."))
        sections.append(sec)
    return Page("grid", sections) if sections else None
