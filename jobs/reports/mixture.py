"""Mixture family (training-data mixtures inferred from merge lists): the inference report
(Markdown table + heatmap PNG), the controlled evaluation's report, and the site page.

    <out>/reports/mixture/{report.md,mixtures.png}          write_mixture_report
    <out>/reports/mixture_eval/{report.md,trials.json}      write_controlled_report
"""

from __future__ import annotations

import json
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
    axes_grid,
    int_cell,
    markdown_cell,
    pct_cell,
    pyplot,
    save_figure,
)
from jobs.store.layout import estimates_files, report_dir


def write_mixture_report(out: str | Path, estimates: dict[str, dict], title: str = "Inferred mixtures") -> Path:
    """Markdown table (categories x tokenizers, % of bytes with 95% interval) and a heatmap PNG.

    estimates: tokenizer -> {"categories": [...], "proportion": [...], "lo": [...]|None, "hi": [...]|None,
    "status": str, "n_constraints": int, "T": int, "merges": {...}}.
    """
    d = report_dir(out, "mixture")
    d.mkdir(parents=True, exist_ok=True)
    toks = list(estimates)
    cats = sorted({c for e in estimates.values() for c in e["categories"]})
    M = np.full((len(cats), len(toks)), np.nan)
    cell = [["" for _ in toks] for _ in cats]
    for j, t in enumerate(toks):
        e = estimates[t]
        for k, c in enumerate(e["categories"]):
            i = cats.index(c)
            M[i, j] = e["proportion"][k] * 100
            s = f"{M[i, j]:.1f}"
            if e.get("lo") is not None:
                s += f" [{e['lo'][k] * 100:.1f}, {e['hi'][k] * 100:.1f}]"
            cell[i][j] = s
    # names come from manifests and category files: escaped
    md = [f"# {markdown_cell(title)}", "", "Share of training bytes (%) among the listed categories, with the 95% bootstrap "
          "interval in brackets (see the tokenizer table for the resampling unit).", ""]
    md.append("| category | " + " | ".join(map(markdown_cell, toks)) + " |")
    md.append("|---|" + "---|" * len(toks))
    order = np.argsort(-np.nan_to_num(np.nanmean(M, axis=1)))
    for i in order:
        md.append(f"| {markdown_cell(cats[i])} | " + " | ".join(cell[i]) + " |")
    md += ["", "| tokenizer | T | merges used by the LP | merges derived | skipped | LP status | constraints | rounds "
           "| LP s | bootstrap |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in toks:
        e = estimates[t]
        m = e.get("merges", {})
        md.append(f"| {markdown_cell(t)} | {e['T']} | {e.get('merges_used', '')} | {m.get('n_derived', '')} of {m.get('n_candidates', '')} | "
                  f"{m.get('n_skipped', '')} (+{m.get('n_dropped_manual', 0)} manual) | {e['status']} | "
                  f"{e['n_constraints']} | {e.get('n_rounds', '')} | {e.get('lp_seconds', 0):.1f} | "
                  f"{e.get('n_bootstrap', 0)} x {e.get('bootstrap', '')} |")
    (d / "report.md").write_text("\n".join(md) + "\n")
    fig, ax = pyplot().subplots(figsize=(1.2 * len(toks) + 3, 0.32 * len(cats) + 1.5))
    im = ax.imshow(M[order], aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(toks)), toks, rotation=45, ha="right")
    ax.set_yticks(range(len(cats)), [cats[i] for i in order])
    fig.colorbar(im, ax=ax, label="% of training bytes")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, d / "mixtures.png", dpi=110, svg=False)
    return d


def markdown_table(rows: list[dict], cols: list[str]) -> str:
    """`rows` as a Markdown table of `cols`, floats to three significant digits, every cell escaped."""
    fmt = lambda v: markdown_cell(f"{v:.3g}" if isinstance(v, float) else v)  # noqa: E731
    lines = ["| " + " | ".join(map(markdown_cell, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_controlled_report(out: str | Path, trials: list[dict], summary: list[dict],
                            cols: list[str]) -> tuple[Path, str]:
    """The controlled evaluation's per-trial rows (trials.json) and summary table (report.md);
    returns the folder and the table."""
    d = report_dir(out, "mixture_eval")
    d.mkdir(parents=True, exist_ok=True)
    (d / "trials.json").write_text(json.dumps(trials, indent=1))
    table = markdown_table(summary, cols)
    (d / "report.md").write_text(table + "\n")
    return d, table


# -- the site page ---------------------------------------------------------------------------------
def plot_mixture(rows: list[dict]):
    """Horizontal bars of each tokenizer's inferred shares with their 95% bootstrap intervals."""
    toks = sorted({r["tokenizer"] for r in rows})
    mean = {}
    for r in rows:
        mean.setdefault(r["category"], []).append(r["proportion"] or 0.0)
    cats = sorted(mean, key=lambda c: (-float(np.mean(mean[c])), c))
    fig, axes = axes_grid(len(toks), 4.6, 0.26 * len(cats) + 1.5, sharey=True)
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


def site_page(out, fig_dir: Path) -> Page | None:
    """One section: the inferred shares of every tokenizer's estimates file, as bars and a table."""
    files = estimates_files(out)
    if not files:
        return None
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    rows = table.to_pylist()
    sec = Section("mixture-estimates", "Inferred training mixtures",
                  f"{len({r['tokenizer'] for r in rows})} tokenizers, {len(rows)} (tokenizer, category) estimates from "
                  "<code>mixture/estimates/</code>. Shares are of the listed categories only (docs/mixture.md).")
    if rows:
        save_figure(plot_mixture(rows), fig_dir / "mixture-bars.png", dpi=100)
        sec.figures.append(Figure("mixture-bars", "Inferred share of training bytes per category, with 95% "
                                  "bootstrap intervals (whiskers), one panel per tokenizer."))
    sec.tables.append(Table(
        "mixture-estimates", "Estimates",
        [Col("tokenizer", "tokenizer"), Col("category", "category"), Col("proportion", "share", True),
         Col("lo", "95% low", True), Col("hi", "95% high", True), Col("T", "merges", True),
         Col("status", "LP status"), Col("bootstrap", "bootstrap")],
        [[r["tokenizer"], r["category"], pct_cell(r["proportion"], 2), pct_cell(r["proportion_lo"], 2),
          pct_cell(r["proportion_hi"], 2), int_cell(r["T"]), r["status"] or "-",
          f"{r['n_bootstrap'] or 0} x {r['bootstrap'] or '-'}"]
         for r in sorted(rows, key=lambda r: (r["tokenizer"], -(r["proportion"] or 0), r["category"]))]))
    return Page("mixture", [sec])
