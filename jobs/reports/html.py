"""The report toolkit shared by every report family: Markdown and HTML tables, escaping, CSS.
"""

from __future__ import annotations

import html
import textwrap

from schemas.names import printable

_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "`": "\\`", "<": "&lt;"})


def markdown_cell(text) -> str:
    """`text` safe in a Markdown table cell or inline text: `\\`, `|` and backticks escaped, `<` as
    `&lt;` (no HTML), newlines and terminal control characters shown as escapes (`printable`)."""
    return printable(str(text).translate(_MD_ESCAPES))


def _md_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A pipe table padded to column widths, so it reads as a table in a terminal too; every cell
    escaped with `markdown_cell` (names come from registries and corpora)."""
    headers = [markdown_cell(h) for h in headers]
    rows = [[markdown_cell(c) for c in r] for r in rows]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(cells)) + " |"
    sep = "|" + "|".join(("-" * (w[i] + 1) + ":") if i in right else ("-" * (w[i] + 2)) for i in range(len(w))) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _html_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in right else ""}>{html.escape(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _wrap(s: str, indent: str = "") -> str:
    """Prose wrapped for a terminal (Markdown renders it as one paragraph anyway)."""
    return textwrap.fill(s, width=100, subsequent_indent=indent, break_on_hyphens=False)


def _md_inline(s: str) -> str:
    """Escape, then turn **bold** into <b>."""
    parts = html.escape(s).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f2f2f2}td.num{text-align:right}"
        "tbody tr:nth-child(even){background:#fafafa}figure{margin:2em 0}img{max-width:100%}"
        "figcaption{color:#555;font-size:14px}")
