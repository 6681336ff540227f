"""Token-premium family: the report (terminal-readable Markdown and a self-contained HTML page with
plots) and the site page.

Input is a `schemas.PREMIUM` table of one corpus and reference (several tokenizers).
Plots are rendered with matplotlib's Agg backend; the HTML embeds them as base64 PNGs,
and every figure is also saved beside it (the main one as SVG too). The site page has one
section per premium table under the output root.
"""

from __future__ import annotations

import html
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.reports.html import (
    Col,
    Figure,
    Page,
    Section,
    Table,
    embedded_figure,
    fmt_fixed,
    html_page,
    html_table,
    int_cell,
    markdown_cell,
    md_inline,
    md_table,
    num_cell,
    pct_cell,
    pyplot,
    rel_path,
    save_figure,
    slug,
    wrap,
)
from jobs.store.layout import premium_files

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
FIGURES = {  # file stem -> caption
    "premium_by_language": "Token premium (CTC) per language and tokenizer, most expensive on top; "
                           "the dashed line is the reference (premium 1).",
    "premium_heatmap": "Token premium (CTC), languages x tokenizers; blue is cheaper than the reference, "
                       "red more expensive, grey missing.",
    "premium_extremes": "Most and least expensive languages (by median premium) with 95% bootstrap intervals.",
    "premium_why": "Why: bytes per token and fertility (tokens per word) against the premium.",
}


class _Data:
    """The premium table as languages x tokenizers matrices, languages sorted by median premium."""

    def __init__(self, table: pa.Table):
        import pyarrow.compute as pc

        def most_common(name):
            vals = [x for x in table[name].to_pylist() if x]
            return Counter(vals).most_common(1)[0][0] if vals else ""

        metric = self.metric = "premium_ctc"  # the headline definition; mean-of-ratios is in the tables
        # One corpus and reference per report: a concatenated table is cut down to the main one.
        self.reference, self.corpus = most_common("reference_lang"), most_common("corpus")
        if table.num_rows:
            table = table.filter(pc.and_(pc.equal(table["reference_lang"], self.reference),
                                         pc.equal(table["corpus"], self.corpus)))
        ids = sorted(set(table["tokenizer_id"].to_pylist()))
        names = {}
        for t, n in zip(table["tokenizer_id"].to_pylist(), table["tokenizer_name"].to_pylist(), strict=True):
            names.setdefault(t, n or t[:12])
        dup = Counter(names.values())
        self.labels = {t: (f"{n} ({t[:8]})" if dup[n] > 1 else n) for t, n in names.items()}
        langs = sorted(set(table["lang"].to_pylist()))
        li = pc.index_in(table["lang"], value_set=pa.array(langs, pa.string())).to_numpy(zero_copy_only=False)
        ti = pc.index_in(table["tokenizer_id"], value_set=pa.array(ids, pa.string())).to_numpy(zero_copy_only=False)
        fields = [metric, f"{metric}_lo", f"{metric}_hi", "premium_mean", "premium_mean_lo", "premium_mean_hi",
                  "bytes_per_token", "fertility", "n_sentences", "n_reference_zero", "unk_rate"]
        m = {}
        for f in fields:
            m[f] = np.full((len(langs), len(ids)), np.nan)
            if table.num_rows:
                m[f][li, ti] = pc.fill_null(table[f].cast(pa.float64()), np.nan).to_numpy()
        # Languages: most expensive first; tokenizers: fairest (lowest median) first.
        lang_med = _nanmedian(m[metric], axis=1)
        tok_med = _nanmedian(np.where(self._is_ref(langs)[:, None], np.nan, m[metric]), axis=0)
        lo = np.argsort(np.where(np.isnan(lang_med), np.inf, -lang_med), kind="stable")  # missing last
        to = np.argsort(np.where(np.isnan(tok_med), np.inf, tok_med), kind="stable")
        self.langs = [langs[i] for i in lo]
        self.ids = [ids[j] for j in to]
        self.lang_median = lang_med[lo]
        self.tok_median = tok_med[to]
        self.m = {f: v[lo][:, to] for f, v in m.items()}
        self.n_bootstrap = max((x for x in table["n_bootstrap"].to_pylist() if x), default=0)

    def _is_ref(self, langs):
        return np.array([x == self.reference for x in langs], dtype=bool)

    @property
    def is_ref(self) -> np.ndarray:
        return self._is_ref(self.langs)

    @property
    def P(self) -> np.ndarray:
        return self.m[self.metric]

    def with_data(self) -> list[int]:
        """Tokenizer columns with at least one premium (the others stay out of legends)."""
        return [j for j in range(len(self.ids)) if np.isfinite(self.P[:, j]).any()]


def _nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """nanmedian without the all-NaN warning (missing rows/columns are expected)."""
    if a.size == 0:
        return np.full(a.shape[1 - axis], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(a, axis=axis)


# -- formatting ----------------------------------------------------------------------------------
def _ci(v, lo, hi) -> str:
    if not np.isfinite(v):
        return "-"
    return f"{v:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{v:.2f}"


# -- tables --------------------------------------------------------------------------------------
def tokenizer_summary(d: _Data) -> tuple[list[str], list[list[str]], set[int]]:
    headers = ["tokenizer", "languages", "median premium", "median mean-of-ratios", "max premium",
               "languages > 2x", "most expensive", "least expensive"]
    rows = []
    for j, t in enumerate(d.ids):
        p = np.where(d.is_ref, np.nan, d.P[:, j])
        ok = np.isfinite(p)
        if ok.any():
            hi, lo = int(np.nanargmax(p)), int(np.nanargmin(p))
            most, least = f"{d.langs[hi]} {p[hi]:.2f}", f"{d.langs[lo]} {p[lo]:.2f}"
        else:
            most = least = "-"
        pm = d.m["premium_mean"][:, j][~d.is_ref]
        pm_med = float(np.median(pm[np.isfinite(pm)])) if np.isfinite(pm).any() else np.nan
        rows.append([d.labels[t], str(int(ok.sum())), fmt_fixed(d.tok_median[j]), fmt_fixed(pm_med),
                     fmt_fixed(np.nanmax(p) if ok.any() else np.nan), str(int((p[ok] > 2).sum())), most, least])
    return headers, rows, {1, 2, 3, 4, 5}


def top_languages(d: _Data, n: int) -> tuple[list[str], list[list[str]], set[int]]:
    headers = ["#", "language", "median premium", "range over tokenizers", "worst tokenizer",
               "its premium (CTC) [95% CI]", "its mean-of-ratios [95% CI]"]
    rows = []
    for i in np.flatnonzero(~d.is_ref & np.isfinite(d.lang_median))[:n]:
        p = d.P[i]
        j = int(np.nanargmax(p))
        m = d.m
        k, n_tok = int(np.isfinite(p).sum()), len(d.with_data())
        spread = f"{np.nanmin(p):.2f} - {np.nanmax(p):.2f}" if k > 1 else f"{np.nanmax(p):.2f}"
        spread += f" ({k} of {n_tok})" if k < n_tok else ""
        rows.append([str(len(rows) + 1), d.langs[i], fmt_fixed(d.lang_median[i]), spread,
                     d.labels[d.ids[j]], _ci(p[j], m[f"{d.metric}_lo"][i, j], m[f"{d.metric}_hi"][i, j]),
                     _ci(m["premium_mean"][i, j], m["premium_mean_lo"][i, j], m["premium_mean_hi"][i, j])])
    return headers, rows, {0, 2}


def missing_cells(d: _Data, shown: int = 8) -> tuple[list[str], list[list[str]], set[int]]:
    headers = ["tokenizer", "cells without premium", "languages"]
    rows = []
    for j, t in enumerate(d.ids):
        miss = [x for x, v in zip(d.langs, d.P[:, j], strict=True) if not np.isfinite(v)]
        if not miss:
            continue
        if d.reference in miss:
            what = f"reference {d.reference} missing: all languages"
        else:
            what = ", ".join(sorted(miss)[:shown]) + (f", ... (+{len(miss) - shown})" if len(miss) > shown else "")
        rows.append([d.labels[t], str(len(miss)), what])
    return headers, rows, {1}


UNK_WARN = 0.01  # a cell with at least this share of unknown tokens gets flagged


def unknown_token_cells(d: _Data, shown: int = 6) -> tuple[list[str], list[list[str]], set[int]]:
    """Tokenizers with cells whose UNK rate is at least UNK_WARN: one unknown token can stand for
    a whole word, so those premiums understate what the language would cost without UNKs."""
    headers = ["tokenizer", f"cells with UNK rate >= {UNK_WARN:.0%}", "worst (UNK rate, premium)"]
    rows = []
    for j, t in enumerate(d.ids):
        u = d.m["unk_rate"][:, j]
        hit = np.flatnonzero(np.isfinite(u) & (u >= UNK_WARN))
        if not len(hit):
            continue
        worst = hit[np.argsort(-u[hit], kind="stable")][:shown]
        what = ", ".join(f"{d.langs[i]} ({u[i]:.0%}, {d.P[i, j]:.2f})" for i in worst)
        rows.append([d.labels[t], str(len(hit)), what + (f", ... (+{len(hit) - shown})" if len(hit) > shown else "")])
    return headers, rows, {1}


# -- plots ---------------------------------------------------------------------------------------
def _style(n: int):
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"]
    colors = [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]
    return colors, [MARKERS[i % len(MARKERS)] for i in range(n)]


def _log_axis(axis, values):
    from matplotlib.ticker import FixedLocator, NullFormatter

    v = values[np.isfinite(values) & (values > 0)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.5, 2.0)
    lo, hi = min(lo, 1.0) / 1.15, max(hi, 1.0) * 1.15
    ticks = [t for t in (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64) if lo <= t <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(lambda x, _: f"{x:g}")
    axis.set_minor_formatter(NullFormatter())
    return lo, hi


def _lang_fontsize(n):
    return 8 if n <= 60 else 7


def plot_by_language(d: _Data):
    plt = pyplot()
    n, colors, markers = len(d.langs), *_style(len(d.ids))
    shown = d.with_data()
    ncol = min(6, len(shown) + 1)
    # Fixed margins in inches (language codes have a fixed width): a layout engine would
    # measure all 200+ labels on every save, and this figure is saved twice (PNG, SVG).
    top = 0.5 + 0.22 * -(-(len(shown) + 1) // ncol)
    height = max(3.5, 0.17 * n + top + 0.7)
    fig, ax = plt.subplots(figsize=(9, height))
    fig.subplots_adjust(left=0.95 / 9, right=1 - 0.25 / 9, top=1 - top / height, bottom=0.6 / height)
    y = np.arange(n)
    P = d.P
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # languages without any premium
        lo, hi = np.nanmin(P, axis=1), np.nanmax(P, axis=1)
    ax.hlines(y, lo, hi, color="0.75", lw=1, zorder=1)
    for j in shown:
        ax.scatter(P[:, j], y, s=16, marker=markers[j], color=colors[j], label=d.labels[d.ids[j]], zorder=3,
                   edgecolors="none", alpha=0.9)
    ax.scatter(d.lang_median, y, marker="|", s=60, color="black", zorder=4, label="median")
    ax.axvline(1.0, color="0.3", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlim(*_log_axis(ax.xaxis, P))
    ax.set_yticks(y, d.langs, fontsize=_lang_fontsize(n))
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labeltop=True, top=True)  # tall figures: read the scale at both ends
    ax.set_xlabel(f"token premium (CTC) vs {d.reference}, log scale")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 1 - 0.08 / height), ncol=ncol, fontsize=8, frameon=False)
    return fig


def plot_heatmap(d: _Data):
    import matplotlib as mpl

    plt = pyplot()
    n, k = len(d.langs), len(d.ids)
    with np.errstate(all="ignore"):
        L = np.log2(d.P)
    fin = np.abs(L[np.isfinite(L)])
    vmax = max(1.0, float(np.percentile(fin, 98)) if len(fin) else 1.0)
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    fig, ax = plt.subplots(figsize=(2.6 + 0.55 * k, max(3.5, 0.17 * n + 2.2)))
    im = ax.imshow(np.ma.masked_invalid(L), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_yticks(np.arange(n), d.langs, fontsize=_lang_fontsize(n))
    ax.set_xticks(np.arange(k), [d.labels[t] for t in d.ids], rotation=60, ha="left", fontsize=8)
    ax.xaxis.tick_top()
    if n * k <= 400:  # small grids: print the numbers too
        for (i, j), v in np.ndenumerate(d.P):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(L[i, j]) > 0.6 * vmax else "black")
    ticks = [t for t in range(-int(np.ceil(vmax)), int(np.ceil(vmax)) + 1)]
    cb = fig.colorbar(im, ax=ax, shrink=min(1.0, 12 / max(n * 0.16, 1)), ticks=ticks, pad=0.02)
    cb.ax.set_yticklabels([f"{2.0 ** t:g}" for t in ticks])
    cb.set_label(f"premium vs {d.reference} (log scale)")
    fig.tight_layout()
    return fig


def plot_extremes(d: _Data, k: int):
    plt = pyplot()
    ranked = np.flatnonzero(~d.is_ref & np.isfinite(d.lang_median))
    if len(ranked) > 2 * k:
        groups = [("most expensive", ranked[:k]), ("least expensive", ranked[-k:])]
    else:
        groups = [("all languages", ranked)]
    colors, markers = _style(len(d.ids))
    rows = max(len(g) for _, g in groups) if ranked.size else 1
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), max(3.5, 0.3 * rows + 1.8)), squeeze=False,
                             layout="constrained")
    m, nt = d.m, len(d.ids)
    offsets = (np.arange(nt) - (nt - 1) / 2) * (0.7 / max(nt, 1))
    for ax, (label, idx) in zip(axes[0], groups, strict=True):
        y = np.arange(len(idx))
        for j in d.with_data():
            p, lo, hi = (m[f][idx, j] for f in (d.metric, f"{d.metric}_lo", f"{d.metric}_hi"))
            err = np.vstack([np.where(np.isfinite(lo), p - lo, 0), np.where(np.isfinite(hi), hi - p, 0)])
            ax.errorbar(p, y + offsets[j], xerr=np.nan_to_num(err), fmt=markers[j], ms=4, color=colors[j],
                        elinewidth=1, capsize=0, label=d.labels[d.ids[j]] if ax is axes[0][0] else None)
        ax.axvline(1.0, color="0.3", ls="--", lw=1)
        ax.set_xscale("log")
        vals = np.concatenate([m[f][idx].ravel() for f in (d.metric, f"{d.metric}_lo", f"{d.metric}_hi")]) \
            if len(idx) else np.array([1.0])
        ax.set_xlim(*_log_axis(ax.xaxis, vals))
        ax.set_yticks(y, [d.langs[i] for i in idx], fontsize=8)
        ax.set_ylim(len(idx) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{label} (premium with 95% CI)", fontsize=10)
        ax.set_xlabel(f"token premium (CTC) vs {d.reference}")
    fig.legend(loc="outside lower center", ncol=min(6, max(len(d.with_data()), 1)), fontsize=8, frameon=False)
    return fig


def plot_why(d: _Data):
    plt = pyplot()
    colors, markers = _style(len(d.ids))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, f, label in ((axes[0], "bytes_per_token", "UTF-8 bytes per token"),
                         (axes[1], "fertility", "fertility (tokens per word)")):
        x = d.m[f]
        ok = np.isfinite(x) & np.isfinite(d.P)
        for j in d.with_data():
            s = ok[:, j]
            ax.scatter(x[s, j], d.P[s, j], s=12, marker=markers[j], color=colors[j], alpha=0.7, edgecolors="none",
                       label=d.labels[d.ids[j]])
        if ok.any():
            ax.set_yscale("log")
            ax.set_ylim(*_log_axis(ax.yaxis, d.P[ok]))
            if f == "fertility":
                ax.set_xscale("log")
                ax.set_xlim(*_log_axis(ax.xaxis, x[ok]))
            # Name the five most expensive languages (at their worst tokenizer): the outliers
            # are what a reader asks about.
            worst = np.where(ok, d.P, -np.inf)
            for i in np.argsort(worst.max(axis=1))[::-1][:5]:
                j = int(np.argmax(worst[i]))
                if np.isfinite(worst[i, j]):
                    ax.annotate(d.langs[i], (x[i, j], d.P[i, j]), fontsize=7, xytext=(4, -3),
                                textcoords="offset points")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(1.0, color="0.3", ls="--", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel(f"token premium (CTC) vs {d.reference}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2, frameon=False)
    fig.tight_layout()
    return fig


# -- the report ------------------------------------------------------------------------------------
def _definitions(d: _Data, esc=str) -> list[str]:
    """The definitions list; `esc` escapes the names in it (markdown_cell for report.md)."""
    n_zero = int(np.nansum(d.m["n_reference_zero"]))
    ns = d.m["n_sentences"][np.isfinite(d.m["n_sentences"]) & (d.m["n_sentences"] > 0)]
    lines = [
        f"- **premium (CTC)** = corpus token count of the language / that of {esc(d.reference)}, same "
        "tokenizer; the corpus is the language's lines joined by single spaces and encoded once.",
        f"- **mean-of-ratios** = mean over aligned sentences of n_tokens(language) / n_tokens({esc(d.reference)}).",
        f"- **95% CI**: percentile bootstrap over sentences, {d.n_bootstrap} replicates, the same resampled "
        "sentences for every language and tokenizer (paired, so intervals are comparable). The corpus-level "
        "count cannot be resampled without re-encoding, so the CTC interval is that of the ratio of "
        "per-sentence totals, rescaled to the CTC premium.",
        f"- Aligned sentences per cell: {int(ns.min()) if len(ns) else 0}-{int(ns.max()) if len(ns) else 0}."
        + (f" {n_zero} aligned sentences with 0 reference tokens were left out of mean-of-ratios." if n_zero else ""),
    ]
    return lines


def render_premium_report(premium_table: pa.Table, out_dir, title: str = "Token premium", *,
                          top_n: int = 20, extremes: int = 30) -> dict[str, Path]:
    """Write report.md, index.html (PNG plots embedded) and the plot files to `out_dir`.

    Returns paths keyed: markdown, html, <figure>_png for each figure, premium_by_language_svg.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = _Data(premium_table)
    paths: dict[str, Path] = {}
    makers = {"premium_by_language": lambda: plot_by_language(d), "premium_heatmap": lambda: plot_heatmap(d),
              "premium_extremes": lambda: plot_extremes(d, extremes), "premium_why": lambda: plot_why(d)}
    for stem, make in makers.items():
        svg = stem == "premium_by_language"
        paths[f"{stem}_png"] = save_figure(make(), out / f"{stem}.png", dpi=110, svg=svg)
        if svg:
            paths[f"{stem}_svg"] = out / f"{stem}.svg"

    tables = [("Tokenizers (fairest first)", tokenizer_summary(d)),
              (f"Top {top_n} most expensive languages (by median premium over tokenizers)", top_languages(d, top_n))]
    unk = unknown_token_cells(d)
    if unk[1]:
        tables.append(("Premiums understated by unknown tokens (an UNK can stand for a whole word)", unk))
    miss = missing_cells(d)
    if miss[1]:
        tables.append(("Cells without a premium (failed cells or missing reference)", miss))
    def intro(esc=str):
        return (f"Corpus **{esc(d.corpus)}**, reference **{esc(d.reference)}**: {len(d.ids)} tokenizers x "
                f"{len(d.langs)} languages. Premium > 1 means the language needs more tokens than "
                f"{esc(d.reference)} for the same content.")

    md = [f"# {markdown_cell(title)}", "", wrap(intro(markdown_cell)), ""]
    for name, (h, rows, right) in tables:
        md += [f"## {name}", "", md_table(h, rows, right), ""]
    md += ["## Plots", ""] + [f"- {FIGURES[s]}  \n  `{s}.png`" + ("  (`.svg`)" if s == "premium_by_language" else "")
                              for s in FIGURES] + [""]
    md += [f"![premium by language]({'premium_by_language.png'})", "", "## Definitions", "",
           *(wrap(x, "  ") for x in _definitions(d, markdown_cell)), ""]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text("\n".join(md), encoding="utf-8")

    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{md_inline(intro())}</p>"]
    for name, (h, rows, right) in tables:
        body += [f"<h2>{html.escape(name)}</h2>", html_table(h, rows, right)]
    body.append("<h2>Plots</h2>")
    body += [embedded_figure(stem, paths[f"{stem}_png"].read_bytes(), caption) for stem, caption in FIGURES.items()]
    body += ["<h2>Definitions</h2>", "<ul>" + "".join(f"<li>{md_inline(x[2:])}</li>" for x in _definitions(d))
             + "</ul>"]
    paths["html"] = out / "index.html"
    paths["html"].write_text(html_page(title, body), encoding="utf-8")
    return paths


# -- the site page ---------------------------------------------------------------------------------
def site_page(out, fig_dir: Path) -> Page | None:
    """One section per premium table: heatmap, per-language ranking, tokenizer and cell tables."""
    sections = []
    for path in premium_files(out):
        table = pq.read_table(path)
        corpus, ref = path.parent.name.split("=", 1)[1], path.stem.split("=", 1)[1]
        sid = f"premium-{slug(corpus)}-{slug(ref)}"
        sec = Section(sid, f"{corpus}, reference {ref}",
                      f"{table.num_rows} (tokenizer, language) cells from <code>{html.escape(rel_path(path, out))}"
                      f"</code>. Premium (CTC) = the language's corpus token count / {html.escape(ref)}'s, same "
                      "tokenizer; above 1 the language pays more for the same content.")
        if table.num_rows:
            d = _Data(table)
            save_figure(plot_heatmap(d), fig_dir / f"{sid}-heatmap.png", dpi=100)
            sec.figures.append(Figure(f"{sid}-heatmap", "Premium heatmap, languages x tokenizers: blue is cheaper "
                                      "than the reference, red more expensive, grey missing."))
            save_figure(plot_by_language(d), fig_dir / f"{sid}-by-language.png", dpi=100)
            sec.figures.append(Figure(f"{sid}-by-language", "Per-language ranking: every tokenizer's premium per "
                                      "language (log scale), most expensive languages on top; bar = median."))
            sec.tables.append(_tokenizer_table(d, sid))
            sec.tables.append(_ranking_table(table, ref, sid))
        sec.tables.append(_cells_table(table, sid))
        sections.append(sec)
    return Page("premium", sections) if sections else None


def _tokenizer_table(d: _Data, sid: str) -> Table:
    rows = []
    for j, t in enumerate(d.ids):
        p = np.where(d.is_ref, np.nan, d.P[:, j])
        ok = np.isfinite(p)
        worst = f"{d.langs[int(np.nanargmax(p))]}" if ok.any() else "-"
        rows.append([d.labels[t], int_cell(int(ok.sum())), num_cell(float(d.tok_median[j])),
                     num_cell(float(np.nanmax(p)) if ok.any() else None), int_cell(int((p[ok] > 2).sum())), worst])
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
        rows.append([lang, num_cell(float(np.median(vals))), cells[0][1], num_cell(cells[0][0]), cells[-1][1],
                     num_cell(cells[-1][0]), num_cell(cells[-1][0] / cells[0][0] if cells[0][0] else None),
                     " < ".join(f"{n} {v:.2f}" for v, n in cells)])
    return Table(f"{sid}-ranking", "Per-language ranking of tokenizers",
                 [Col("lang", "language"), Col("median", "median premium", True), Col("best", "best tokenizer"),
                  Col("best_premium", "its premium", True), Col("worst", "worst tokenizer"),
                  Col("worst_premium", "its premium", True), Col("spread", "worst / best", True),
                  Col("ranking", "ranking (fewest tokens first)", wrap=True)], rows,
                 "Filter by a language code to see its ranking; sort by 'worst / best' to find the languages where "
                 "the choice of tokenizer matters most.")


def _cells_table(table: pa.Table, sid: str) -> Table:
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
        rows.append([r["lang"], r["tokenizer_name"] or r["tokenizer_id"],
                     int_cell(rank.get((r["lang"], r["tokenizer_id"]))), num_cell(r["premium_ctc"], "{:.3f}"), ci,
                     num_cell(r["premium_mean"], "{:.3f}"), num_cell(r["bytes_per_token"]),
                     num_cell(r["chars_per_token"]), num_cell(r["fertility"]), pct_cell(r["unk_rate"], 2),
                     pct_cell(r["continued_word_rate"]), int_cell(r["ctc"]), int_cell(r["n_sentences"])])
    return Table(f"{sid}-cells", "All cells",
                 [Col("lang", "language"), Col("tokenizer", "tokenizer"), Col("rank", "rank in language", True),
                  Col("premium_ctc", "premium (CTC)", True), Col("ci", "95% CI"),
                  Col("premium_mean", "mean of ratios", True), Col("bytes_per_token", "bytes / token", True),
                  Col("chars_per_token", "chars / token", True), Col("fertility", "fertility", True),
                  Col("unk_rate", "UNK rate", True), Col("continued", "continued words", True),
                  Col("ctc", "CTC", True), Col("n_sentences", "sentences", True)], rows,
                 "Rank 1 = the tokenizer that needs the fewest tokens for this language. CI: paired bootstrap over "
                 "sentences (docs/premium.md).")
