"""Static report site: an index page at the output root and one page per report family.

    <out>/index.html                    navigation and one card per family present
    <out>/site/<family>.html            premium | grid | mixture | coverage
    <out>/site/fig/<stem>.png, .svg     every figure in both formats (PNG shown, SVG linked)
    <out>/site/assets/site.css, .js     copied from jobs/reports/site_assets (vanilla JS, no network)

Each family is built only from the Parquet datasets present under the output root (see
jobs/store/layout.py and schemas/); links are relative, so the site opens from file:// with no
server. Tables sort by a header click and filter by a text box; `#sort=<table>:<col>[:desc]`
and `#filter=<table>:<text>` in the URL do the same. Plain Python: no Spark, no Prefect.

    python -m jobs.reports.site --out OUT
"""

from __future__ import annotations

import argparse
import contextlib
import html
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ASSETS = Path(__file__).with_name("site_assets")
FAMILIES = {  # page stem -> navigation title, one-line description
    "premium": ("Token premium", "How many more tokens each language needs than the reference, per tokenizer."),
    "grid": ("Training grids", "CTC against vocabulary size for tokenizers trained per language, power-law fits "
                               "and the vocabulary size that equalises languages."),
    "mixture": ("Data mixtures", "Training-data mix of BPE tokenizers recovered from their merge lists, with "
                                 "bootstrap intervals."),
    "coverage": ("Coverage & trimming", "How much of each vocabulary a language uses, and trimmed tokenizers."),
}


# -- page model ------------------------------------------------------------------------------------
@dataclass
class Col:
    key: str
    label: str
    num: bool = False  # numeric cells are (text, value) pairs; they sort by value and align right
    wrap: bool = False  # long text may wrap (other cells stay on one line)


@dataclass
class Table:
    id: str
    title: str
    cols: list[Col]
    rows: list[list]
    note: str = ""


@dataclass
class Figure:
    stem: str  # files fig/<stem>.png and fig/<stem>.svg
    caption: str


@dataclass
class Section:
    id: str
    title: str
    lead: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Page:
    family: str
    sections: list[Section]

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(s).lower()).strip("-") or "x"


def _num(v, fmt: str = "{:.2f}"):
    """A numeric cell: (display text, sort value); missing values show '-' and sort last."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ("-", None)
    return (fmt.format(v), v)


def _pct(v, digits: int = 1):
    return _num(None if v is None else 100 * v, f"{{:.{digits}f}}%")


def _int(v):
    return _num(v, "{:,}")


def _n(k: int, noun: str) -> str:
    return f"{k:,} {noun}{'' if k == 1 else 's'}"


# -- figures -----------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, fig_dir: Path, stem: str) -> None:
    plt = _plt()
    fig.savefig(fig_dir / f"{stem}.png", dpi=100)
    fig.savefig(fig_dir / f"{stem}.svg")
    plt.close(fig)


def _grid_axes(n: int, w: float, h: float, **kw):
    plt = _plt()
    cols = min(3, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


# -- premium -----------------------------------------------------------------------------------------
def premium_files(out) -> list[Path]:
    return sorted(Path(out).glob("premium/corpus=*/reference=*.parquet"))


def premium_page(out, fig_dir: Path) -> Page | None:
    from jobs.reports.premium import _Data, plot_by_language, plot_heatmap

    sections = []
    for path in premium_files(out):
        table = pq.read_table(path)
        corpus, ref = path.parent.name.split("=", 1)[1], path.stem.split("=", 1)[1]
        sid = f"premium-{_slug(corpus)}-{_slug(ref)}"
        sec = Section(sid, f"{corpus}, reference {ref}",
                      f"{table.num_rows} (tokenizer, language) cells from <code>{html.escape(_rel(path, out))}"
                      f"</code>. Premium (CTC) = the language's corpus token count / {html.escape(ref)}'s, same "
                      "tokenizer; above 1 the language pays more for the same content.")
        if table.num_rows:
            d = _Data(table)
            _save(plot_heatmap(d), fig_dir, f"{sid}-heatmap")
            sec.figures.append(Figure(f"{sid}-heatmap", "Premium heatmap, languages x tokenizers: blue is cheaper "
                                      "than the reference, red more expensive, grey missing."))
            _save(plot_by_language(d), fig_dir, f"{sid}-by-language")
            sec.figures.append(Figure(f"{sid}-by-language", "Per-language ranking: every tokenizer's premium per "
                                      "language (log scale), most expensive languages on top; bar = median."))
            sec.tables.append(_tokenizer_table(d, sid))
            sec.tables.append(_ranking_table(table, ref, sid))
        sec.tables.append(_premium_cells_table(table, sid))
        sections.append(sec)
    return Page("premium", sections) if sections else None


def _tokenizer_table(d, sid: str) -> Table:
    rows = []
    for j, t in enumerate(d.ids):
        p = np.where(d.is_ref, np.nan, d.P[:, j])
        ok = np.isfinite(p)
        worst = f"{d.langs[int(np.nanargmax(p))]}" if ok.any() else "-"
        rows.append([d.labels[t], _int(int(ok.sum())), _num(float(d.tok_median[j])),
                     _num(float(np.nanmax(p)) if ok.any() else None), _int(int((p[ok] > 2).sum())), worst])
    return Table(f"{sid}-tokenizers", "Tokenizers, fairest first",
                 [Col("tokenizer", "tokenizer"), Col("languages", "languages", True),
                  Col("median", "median premium", True), Col("max", "max premium", True),
                  Col("over2", "languages > 2x", True), Col("worst", "most expensive language")], rows)


def _ranking_table(table: pa.Table, ref: str, sid: str) -> Table:
    """One row per language (the reference left out): its tokenizers from fewest tokens to most."""
    by_lang: dict[str, list[tuple[float, str]]] = {}
    for r in table.select(["lang", "tokenizer_name", "tokenizer_id", "premium_ctc"]).to_pylist():
        if r["lang"] != ref and r["premium_ctc"] is not None:
            by_lang.setdefault(r["lang"], []).append((r["premium_ctc"], r["tokenizer_name"] or r["tokenizer_id"]))
    rows = []
    for lang, cells in sorted(by_lang.items()):
        cells.sort()
        vals = [v for v, _ in cells]
        rows.append([lang, _num(float(np.median(vals))), cells[0][1], _num(cells[0][0]), cells[-1][1],
                     _num(cells[-1][0]), _num(cells[-1][0] / cells[0][0] if cells[0][0] else None),
                     " < ".join(f"{n} {v:.2f}" for v, n in cells)])
    return Table(f"{sid}-ranking", "Per-language ranking of tokenizers",
                 [Col("lang", "language"), Col("median", "median premium", True), Col("best", "best tokenizer"),
                  Col("best_premium", "its premium", True), Col("worst", "worst tokenizer"),
                  Col("worst_premium", "its premium", True), Col("spread", "worst / best", True),
                  Col("ranking", "ranking (fewest tokens first)", wrap=True)], rows,
                 "Filter by a language code to see its ranking; sort by 'worst / best' to find the languages where "
                 "the choice of tokenizer matters most.")


def _premium_cells_table(table: pa.Table, sid: str) -> Table:
    rows_in = table.to_pylist()
    rank: dict[tuple[str, str], int] = {}
    by_lang: dict[str, list] = {}
    for r in rows_in:
        if r["premium_ctc"] is not None:
            by_lang.setdefault(r["lang"], []).append((r["premium_ctc"], r["tokenizer_id"]))
    for lang, cells in by_lang.items():
        for v, t in cells:  # ties share the better rank (e.g. every tokenizer on the reference)
            rank[(lang, t)] = 1 + sum(w < v for w, _ in cells)
    rows = []
    for r in sorted(rows_in, key=lambda r: (r["lang"], r["tokenizer_name"] or "", r["tokenizer_id"])):
        ci = "-" if r["premium_ctc_lo"] is None else f"[{r['premium_ctc_lo']:.2f}, {r['premium_ctc_hi']:.2f}]"
        rows.append([r["lang"], r["tokenizer_name"] or r["tokenizer_id"], _int(rank.get((r["lang"], r["tokenizer_id"]))),
                     _num(r["premium_ctc"], "{:.3f}"), ci, _num(r["premium_mean"], "{:.3f}"),
                     _num(r["bytes_per_token"]), _num(r["chars_per_token"]), _num(r["fertility"]),
                     _pct(r["unk_rate"], 2), _pct(r["continued_word_rate"]), _int(r["ctc"]), _int(r["n_sentences"])])
    return Table(f"{sid}-cells", "All cells",
                 [Col("lang", "language"), Col("tokenizer", "tokenizer"), Col("rank", "rank in language", True),
                  Col("premium_ctc", "premium (CTC)", True), Col("ci", "95% CI"),
                  Col("premium_mean", "mean of ratios", True), Col("bytes_per_token", "bytes / token", True),
                  Col("chars_per_token", "chars / token", True), Col("fertility", "fertility", True),
                  Col("unk_rate", "UNK rate", True), Col("continued", "continued words", True),
                  Col("ctc", "CTC", True), Col("n_sentences", "sentences", True)], rows,
                 "Rank 1 = the tokenizer that needs the fewest tokens for this language. CI: paired bootstrap over "
                 "sentences (docs/premium.md).")


# -- grid / inequity ---------------------------------------------------------------------------------
def grid_dirs(out) -> list[Path]:
    return sorted(d for d in Path(out).glob("grid/*/analysis") if (d / "ctc.parquet").exists())


def grid_page(out, fig_dir: Path) -> Page | None:
    from jobs.analysis.inequity import algorithm_label
    from jobs.reports.inequity import plot_ctc_vs_vocab, plot_equal_vs_optimal

    sections = []
    for d in grid_dirs(out):
        name = d.parent.name
        sid = f"grid-{_slug(name)}"
        t = {k: pq.read_table(d / f"{k}.parquet") for k in ("ctc", "fits", "optimal")
             if (d / f"{k}.parquet").exists()}
        ctc = t["ctc"]
        fits = t.get("fits")
        sec = Section(sid, f"Grid {name}", f"{ctc.num_rows} trained tokenizers with a measured CTC, from "
                      f"<code>{html.escape(_rel(d, out))}</code>.")
        # The inequity report's own plots: they save the SVG beside the PNG.
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
            [[r["lang"], algorithm_label(r), r["pre_tokenizer"] or "-", _int(r["vocab_size"]),
              _int(r["actual_vocab_size"]), _int(r["train_bytes"]), _int(r["ctc"]),
              _num(r["n_bytes"] / r["ctc"] if r["ctc"] and r["n_bytes"] is not None else None)]
             for r in sorted(ctc.to_pylist(), key=lambda r: (r["lang"], algorithm_label(r), r["vocab_size"]))]))
        if fits is not None:
            sec.tables.append(Table(
                f"{sid}-fits", "Power-law fits CTC(V) = a V^b (+ c)",
                [Col("lang", "language"), Col("algorithm", "algorithm"), Col("pre_tokenizer", "pre-tokenizer"),
                 Col("train_bytes", "training bytes", True), Col("n_points", "sizes", True),
                 Col("b", "exponent b", True), Col("r2", "R\u00b2", True), Col("rmse_rel", "rel. RMSE", True),
                 Col("loo", "leave-one-out error", True)],
                [[r["lang"], r["algorithm"], r["pre_tokenizer"] or "-", _int(r["train_bytes"]), _int(r["n_points"]),
                  _num(r["b"], "{:.3f}"), _num(r["r2"], "{:.3f}"), _pct(r["rmse_rel"], 2),
                  _pct(r["loo_rel_error"], 2)] for r in fits.to_pylist()]))
        if "optimal" in t:
            sec.tables.append(Table(
                f"{sid}-optimal", "Optimal vocabulary size per language",
                [Col("lang", "language"), Col("algorithm", "algorithm"), Col("target", "target CTC", True),
                 Col("v_opt", "optimal vocabulary", True), Col("v_lo", "95% low", True), Col("v_hi", "95% high", True),
                 Col("flags", "flags"), Col("predicted", "predicted CTC", True), Col("measured", "measured CTC", True)],
                [[r["lang"], r["algorithm"], _num(r["target_ctc"], "{:,.0f}"), _int(r["v_opt"]),
                  _num(r["v_opt_lo"], "{:,.0f}"), _num(r["v_opt_hi"], "{:,.0f}"),
                  ", ".join(k for k in ("clipped", "extrapolated") if r[k]) or "-",
                  _num(r["ctc_predicted"], "{:,.0f}"), _int(r["ctc_measured"])] for r in t["optimal"].to_pylist()],
                "Target: the CTC minimising cross-language variance unless the spec fixes one (docs/grid.md)."))
        sections.append(sec)
    return Page("grid", sections) if sections else None


# -- mixture -----------------------------------------------------------------------------------------
def mixture_files(out) -> list[Path]:
    return sorted(Path(out).glob("mixture/estimates/*.parquet"))


def plot_mixture(rows: list[dict]):
    """Horizontal bars of each tokenizer's inferred shares with their 95% bootstrap intervals."""
    toks = sorted({r["tokenizer"] for r in rows})
    mean = {}
    for r in rows:
        mean.setdefault(r["category"], []).append(r["proportion"] or 0.0)
    cats = sorted(mean, key=lambda c: (-float(np.mean(mean[c])), c))
    fig, axes = _grid_axes(len(toks), 4.6, 0.26 * len(cats) + 1.5, sharey=True)
    y = np.arange(len(cats))
    for ax, t in zip(axes, toks, strict=True):
        by = {r["category"]: r for r in rows if r["tokenizer"] == t}
        p = np.array([100 * (by[c]["proportion"] or 0.0) if c in by else np.nan for c in cats])
        lo = np.array([100 * by[c]["proportion_lo"] if c in by and by[c]["proportion_lo"] is not None else np.nan
                       for c in cats])
        hi = np.array([100 * by[c]["proportion_hi"] if c in by and by[c]["proportion_hi"] is not None else np.nan
                       for c in cats])
        err = np.vstack([np.nan_to_num(np.clip(p - lo, 0, None)), np.nan_to_num(np.clip(hi - p, 0, None))])
        ax.barh(y, np.nan_to_num(p), xerr=err, color="#4c83bf", ecolor="0.15", capsize=2, height=0.7)
        ax.set_yticks(y, cats, fontsize=8)
        ax.set_ylim(len(cats) - 0.5, -0.5)
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("% of training bytes")
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def mixture_page(out, fig_dir: Path) -> Page | None:
    files = mixture_files(out)
    if not files:
        return None
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    rows = table.to_pylist()
    sec = Section("mixture-estimates", "Inferred training mixtures",
                  f"{len({r['tokenizer'] for r in rows})} tokenizers, {len(rows)} (tokenizer, category) estimates from "
                  "<code>mixture/estimates/</code>. Shares are of the listed categories only (docs/mixture.md).")
    if rows:
        _save(plot_mixture(rows), fig_dir, "mixture-bars")
        sec.figures.append(Figure("mixture-bars", "Inferred share of training bytes per category, with 95% "
                                  "bootstrap intervals (whiskers), one panel per tokenizer."))
    sec.tables.append(Table(
        "mixture-estimates", "Estimates",
        [Col("tokenizer", "tokenizer"), Col("category", "category"), Col("proportion", "share", True),
         Col("lo", "95% low", True), Col("hi", "95% high", True), Col("T", "merges", True),
         Col("status", "LP status"), Col("bootstrap", "bootstrap")],
        [[r["tokenizer"], r["category"], _pct(r["proportion"], 2), _pct(r["proportion_lo"], 2),
          _pct(r["proportion_hi"], 2), _int(r["T"]), r["status"] or "-",
          f"{r['n_bootstrap'] or 0} x {r['bootstrap'] or '-'}"]
         for r in sorted(rows, key=lambda r: (r["tokenizer"], -(r["proportion"] or 0), r["category"]))]))
    return Page("mixture", [sec])


# -- coverage and trimming ---------------------------------------------------------------------------
def coverage_dirs(out) -> list[Path]:
    return sorted(d for d in Path(out).glob("coverage/corpus=*") if (d / "coverage.parquet").exists())


def trim_runs(out) -> list[Path]:
    return sorted(p.parent for p in Path(out).glob("trim/*/*/summary.parquet"))


def plot_coverage_curves(curve: pa.Table, names: dict[str, str]):
    tids = sorted(set(curve["tokenizer_id"].to_pylist()), key=lambda t: names.get(t, t))
    fig, axes = _grid_axes(len(tids), 5.2, 3.9)
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


def coverage_page(out, fig_dir: Path) -> Page | None:
    sections = []
    for d in coverage_dirs(out):
        corpus = d.name.split("=", 1)[1]
        sid = f"coverage-{_slug(corpus)}"
        cov = pq.read_table(d / "coverage.parquet")
        names = dict(zip(cov["tokenizer_id"].to_pylist(), cov["tokenizer_name"].to_pylist(), strict=True))
        sec = Section(sid, f"Vocabulary coverage on {corpus}",
                      f"{cov.num_rows} (tokenizer, language) rows from <code>{html.escape(_rel(d, out))}</code>; "
                      "special tokens excluded.")
        if (d / "curve.parquet").exists():
            curve = pq.read_table(d / "curve.parquet")
            if curve.num_rows:
                _save(plot_coverage_curves(curve, names), fig_dir, f"{sid}-curves")
                sec.figures.append(Figure(f"{sid}-curves", "Coverage curves: share of each language's tokens "
                                          "covered by its k most frequent ids (dotted: 90% and 99%)."))
        sec.tables.append(Table(
            f"{sid}-coverage", "Coverage per language",
            [Col("tokenizer", "tokenizer"), Col("lang", "language"), Col("n_tokens", "tokens", True),
             Col("vocab_used", "vocab used", True), Col("share", "used share", True), Col("p90", "ids for 90%", True),
             Col("p99", "ids for 99%", True), Col("p999", "ids for 99.9%", True),
             Col("saved", "params saved (tied)", True)],
            [[r["tokenizer_name"] or r["tokenizer_id"], r["lang"], _int(r["n_tokens"]), _int(r["vocab_used"]),
              _pct(r["vocab_used_share"], 2), _int(r["vocab_p90"]), _int(r["vocab_p99"]), _int(r["vocab_p999"]),
              _int(r["params_saved_tied"])]
             for r in sorted(cov.to_pylist(), key=lambda r: (r["tokenizer_name"] or "", r["lang"]))]))
        if (d / "union.parquet").exists():
            union = pq.read_table(d / "union.parquet").to_pylist()
            sec.tables.append(Table(
                f"{sid}-union", "Vocabulary a set of languages needs",
                [Col("tokenizer", "tokenizer"), Col("set", "language set"), Col("languages", "languages"),
                 Col("union_used", "ids used", True), Col("union_p99", "union of 99% sets", True),
                 Col("vocab_size", "vocabulary", True), Col("saved", "params saved (tied)", True)],
                [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["language_set"], r["languages"],
                  _int(r["union_used"]), _int(r["union_p99"]), _int(r["vocab_size"]), _int(r["params_saved_tied"])]
                 for r in union]))
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
            [[r["tokenizer_name"] or r["tokenizer_id"], r["languages"], _int(r["min_frequency"]),
              _int(r["vocab_before"]), _int(r["vocab_after"]), _int(r["n_closure"]), _int(r["used_tokens_dropped"]),
              _int(r["params_saved_tied"])] for r in summ]))
        if faith:
            sec.tables.append(Table(
                "trim-faithfulness", "Faithfulness (re-encoding check)",
                [Col("tokenizer", "tokenizer"), Col("lang", "language"), Col("split", "split"), Col("role", "role"),
                 Col("n", "sentences", True), Col("share", "identical", True), Col("miss", "misses (dropped)", True),
                 Col("other", "misses (other)", True)],
                [[names.get(r["tokenizer_id"], r["tokenizer_id"]), r["lang"], r["split"], r["role"] or "-",
                  _int(r["n_sentences"]), _pct(r["identical_share"], 2), _int(r["n_miss_dropped"]),
                  _int(r["n_miss_other"])] for r in faith]))
        sections.append(sec)
    return Page("coverage", sections) if sections else None


BUILDERS = {"premium": premium_page, "grid": grid_page, "mixture": mixture_page, "coverage": coverage_page}


# -- HTML --------------------------------------------------------------------------------------------
def _rel(p: Path, out) -> str:
    try:
        return str(Path(p).relative_to(out))
    except ValueError:
        return str(p)


def _nav(families: list[str], active: str | None, prefix: str) -> str:
    home = "index.html" if prefix else "../index.html"
    links = "".join(f'<a href="{prefix}{f}.html"{" class=active" if f == active else ""}>'
                    f"{html.escape(FAMILIES[f][0])}</a>" for f in families)
    return (f'<header class="top"><a class="brand" href="{home}">tokatlas</a>'
            f'<nav class="families">{links}</nav></header>')


def _doc(title: str, families: list[str], active: str | None, body: str, *, at_root: bool) -> str:
    assets = "site/assets" if at_root else "assets"
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><link rel=\"stylesheet\" href=\"{assets}/site.css\"></head><body>"
            f"{_nav(families, active, 'site/' if at_root else '')}<main>{body}</main>"
            "<footer>Generated by tokatlas (jobs/reports/site.py) from the Parquet datasets under this folder.</footer>"
            f"<script src=\"{assets}/site.js\"></script></body></html>")


def _figure_html(f: Figure, prefix: str = "") -> str:
    src = f"{prefix}fig/{f.stem}"
    return (f'<figure id="fig-{f.stem}"><a href="{src}.svg"><img src="{src}.png" alt="{html.escape(f.caption)}">'
            f"</a><figcaption>{html.escape(f.caption)} <a href=\"{src}.png\">PNG</a> \u00b7 "
            f"<a href=\"{src}.svg\">SVG</a></figcaption></figure>")


def _table_html(t: Table) -> str:
    head = "".join(f'<th data-key="{html.escape(c.key)}"{" class=num" if c.num else ""}>{html.escape(c.label)}</th>'
                   for c in t.cols)
    body = []
    for row in t.rows:
        tds = []
        for c, cell in zip(t.cols, row, strict=True):
            if c.num:
                text, v = cell
                dv = "" if v is None else repr(float(v)) if isinstance(v, float) else str(v)
                tds.append(f'<td class="num" data-v="{dv}">{html.escape(text)}</td>')
            else:
                tds.append(f"<td{' class=wrap' if c.wrap else ''}>{html.escape(str(cell))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return (f'<h3>{html.escape(t.title)}</h3>{note}<div class="tablebox"><div class="tools">'
            f'<input type="search" placeholder="filter rows\u2026" data-filter-for="{t.id}" aria-label="filter '
            f'{html.escape(t.title)}"><span class="count" data-count-for="{t.id}">{len(t.rows)} rows</span></div>'
            f'<div class="scroll"><table class="sortable" id="{t.id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div></div>")


def _page_html(page: Page, families: list[str]) -> str:
    title, lead = FAMILIES[page.family]
    toc = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in page.sections)
    body = [f"<h1>{html.escape(title)}</h1><p class=\"lead\">{html.escape(lead)}</p>",
            f'<ul class="toc">{toc}</ul>' if len(page.sections) > 1 else ""]
    for s in page.sections:
        body.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>')
        if s.lead:
            body.append(f'<p class="note">{s.lead}</p>')  # leads are built here, escaped where they take data
        if s.figures:
            body.append('<div class="figs">' + "".join(_figure_html(f) for f in s.figures) + "</div>")
        body += [_table_html(t) for t in s.tables]
        body.append("</section>")
    return _doc(f"tokatlas: {title}", families, page.family, "".join(body), at_root=False)


def _index_html(pages: dict[str, Page], out: Path) -> str:
    fams = list(pages)
    cards = []
    for f, page in pages.items():
        title, lead = FAMILIES[f]
        thumb = ""
        if page.figures:
            fig = page.figures[0]
            thumb = (f'<a class="thumb" href="site/{f}.html"><img src="site/fig/{fig.stem}.png" '
                     f'alt="{html.escape(fig.caption)}"></a>')
        n_rows = sum(len(t.rows) for t in page.tables)
        cards.append(f'<div class="card" id="card-{f}"><h2><a href="site/{f}.html">{html.escape(title)}</a></h2>'
                     f"<p>{html.escape(lead)}</p>{thumb}<p class=\"stats\">{_n(len(page.sections), 'section')} \u00b7 "
                     f"{_n(len(page.figures), 'figure')} \u00b7 {_n(len(page.tables), 'table')} \u00b7 "
                     f"{_n(n_rows, 'row')}</p></div>")
    body = ["<h1>tokatlas reports</h1>",
            f'<p class="lead">Reports built from the datasets under <code>{html.escape(out.name or str(out))}</code>. '
            "Every table sorts by a click on its header and filters with the box above it; every figure is saved "
            "as PNG and SVG.</p>"]
    body.append(f'<div class="cards">{"".join(cards)}</div>' if cards else
                "<p>No report datasets found yet: run <code>tokatlas run</code>, <code>tokatlas grid run</code>, "
                "<code>tokatlas mixture infer</code> or <code>tokatlas trim</code> with this output root.</p>")
    reports = sorted(p.parent for p in out.glob("reports/*/index.html"))
    if reports:
        body.append("<h2>Per-run reports</h2><ul class=\"links\">" + "".join(
            f'<li><a href="reports/{html.escape(p.name)}/index.html">{html.escape(p.name)}</a></li>'
            for p in reports) + "</ul>")
    return _doc("tokatlas reports", fams, None, "".join(body), at_root=True)


# -- build -------------------------------------------------------------------------------------------
@dataclass
class SiteResult:
    index: Path
    pages: dict[str, Path]
    figures: dict[str, list[str]]  # family -> figure stems, in page order
    tables: dict[str, int]  # table id -> rows


def build_site(out) -> SiteResult:
    """Build the site from what exists under `out`, replacing <out>/site and <out>/index.html.

    Everything is written into a hidden build folder first and swapped in at the end, so a
    reader never sees a half-written site.
    """
    from schemas.errors import ConfigError

    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"output root {out} does not exist (run a flow with --out {out} first)")
    build = out / f".site-build-{uuid.uuid4().hex}"
    fig_dir = build / "fig"
    try:
        fig_dir.mkdir(parents=True)
        shutil.copytree(ASSETS, build / "assets")
        pages: dict[str, Page] = {}
        for fam, builder in BUILDERS.items():
            page = builder(out, fig_dir)
            if page is not None:
                pages[fam] = page
        for fam, page in pages.items():
            (build / f"{fam}.html").write_text(_page_html(page, list(pages)), encoding="utf-8")
        index_text = _index_html(pages, out)
        _swap(build, out / "site")
        tmp = out / f".index.html.{uuid.uuid4().hex}.tmp"
        tmp.write_text(index_text, encoding="utf-8")
        os.replace(tmp, out / "index.html")
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return SiteResult(out / "index.html", {f: out / "site" / f"{f}.html" for f in pages},
                      {f: [x.stem for x in p.figures] for f, p in pages.items()},
                      {t.id: len(t.rows) for p in pages.values() for t in p.tables})


def _swap(new: Path, dest: Path) -> None:
    """Put directory `new` at `dest`, moving the old one aside first (two renames, no copy)."""
    old = dest.with_name(f".site-old-{uuid.uuid4().hex}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(dest, old)
    try:
        os.rename(new, dest)
    except OSError:
        if not dest.exists():  # a concurrent build that just swapped in is as fresh as ours
            raise
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root holding the datasets")
    a = ap.parse_args(argv)
    r = build_site(a.out)
    print(f"site: {r.index} ({', '.join(r.pages) or 'no report datasets found'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
