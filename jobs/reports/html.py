"""The report toolkit shared by every report family and the site.

Markdown and HTML tables with escaping, the report pages' CSS and page shell, number formatting,
matplotlib figures (Agg backend, PNG and SVG files), and the site's page model (`Page` of
`Section`s holding `Figure`s and `Table`s of `Col`s), which each family's `site_page` returns
and `jobs.reports.site` renders.
"""

from __future__ import annotations

import base64
import html
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from schemas.names import printable

_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "`": "\\`", "<": "&lt;"})


# -- Markdown and HTML ---------------------------------------------------------------------------------
def markdown_cell(text) -> str:
    """`text` safe in a Markdown table cell or inline text: `\\`, `|` and backticks escaped, `<` as
    `&lt;` (no HTML), newlines and terminal control characters shown as escapes (`printable`)."""
    return printable(str(text).translate(_MD_ESCAPES))


def md_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A pipe table padded to column widths, so it reads as a table in a terminal too; every cell
    escaped with `markdown_cell` (names come from registries and corpora)."""
    headers = [markdown_cell(h) for h in headers]
    rows = [[markdown_cell(c) for c in r] for r in rows]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(cells)) + " |"
    sep = "|" + "|".join(("-" * (w[i] + 1) + ":") if i in right else ("-" * (w[i] + 2)) for i in range(len(w))) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def html_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in right else ""}>{html.escape(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def wrap(s: str, indent: str = "") -> str:
    """Prose wrapped for a terminal (Markdown renders it as one paragraph anyway)."""
    return textwrap.fill(s, width=100, subsequent_indent=indent, break_on_hyphens=False)


def md_inline(s: str) -> str:
    """Escape, then turn **bold** into <b>."""
    parts = html.escape(s).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
       "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f2f2f2}td.num{text-align:right}"
       "tbody tr:nth-child(even){background:#fafafa}figure{margin:2em 0}img{max-width:100%}"
       "figcaption{color:#555;font-size:14px}")


def png_data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def embedded_figure(stem: str, png: bytes, caption: str) -> str:
    """A report page's figure: the PNG inline, so index.html stands alone."""
    return (f'<figure><img alt="{stem}" src="{png_data_uri(png)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def html_page(title: str, body: list[str]) -> str:
    """A self-contained report page (CSS inline, no links out)."""
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


# -- numbers -------------------------------------------------------------------------------------------
def _missing(v) -> bool:
    return v is None or not math.isfinite(v)


def fmt_fixed(v, digits: int = 2) -> str:
    """Fixed-point text, '-' when missing or not finite."""
    return "-" if _missing(v) else f"{v:.{digits}f}"


def fmt_sig(v, digits: int = 3) -> str:
    """Floats fixed-point in [1e-3, 1e5) and `digits` significant digits outside it; other values as text."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e5 else f"{v:.{digits}f}"
    return str(v)


def fmt_int(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def fmt_pct(v, digits: int = 1) -> str:
    """A share as a percentage ('0.125' -> '12.5%')."""
    return "-" if _missing(v) else f"{100 * v:.{digits}f}%"


# -- figures ---------------------------------------------------------------------------------------------
def pyplot():
    """matplotlib.pyplot on the Agg backend (no display, same pixels everywhere)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def axes_grid(n: int, w: float, h: float, **kw):
    """A figure of `n` panels of w x h inches, three to a row; returns (figure, the n axes)."""
    cols = min(3, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def save_figure(fig, png: Path, *, dpi: int, svg: bool = True) -> Path:
    """Write `fig` to `png` (and, with `svg`, a vector copy beside it), then close it."""
    fig.savefig(png, dpi=dpi)
    if svg:
        fig.savefig(png.with_suffix(".svg"))
    pyplot().close(fig)
    return png


# -- site page model ---------------------------------------------------------------------------------------
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
    lead: str = ""  # HTML: built by the family module, which escapes the data it puts in
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


def num_cell(v, fmt: str = "{:.2f}"):
    """A numeric site cell: (display text, sort value); missing values show '-' and sort last."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ("-", None)
    return (fmt.format(v), v)


def pct_cell(v, digits: int = 1):
    return num_cell(None if v is None else 100 * v, f"{{:.{digits}f}}%")


def int_cell(v):
    return num_cell(v, "{:,}")


def slug(s: str) -> str:
    """`s` as an HTML id / file stem part."""
    return "".join(c if c.isalnum() else "-" for c in str(s).lower()).strip("-") or "x"


def rel_path(p: Path, out) -> str:
    """`p` relative to the output root when under it (page leads name their source files)."""
    try:
        return str(Path(p).relative_to(out))
    except ValueError:
        return str(p)
