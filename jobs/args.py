"""Argument helpers shared by every job's `main(argv)` and the CLI."""

from __future__ import annotations


def csv_list(s: str | None) -> list[str] | None:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> None."""
    return [x.strip() for x in s.split(",") if x.strip()] or None if s else None
