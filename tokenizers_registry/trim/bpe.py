"""Merge closure for BPE vocabularies: which tokens a kept token's merges need.

Why closure is enough for identical segmentation: a BPE encoder repeatedly applies the
highest-priority merge available. If every merge applied in the original run is still
present, and the trimmed merge set is a subset of the original one in the same order,
the highest-priority available merge is the same at every step, so the run is the same.
The merges applied while building a final token t inside a word are exactly those of
encoding t's own symbols in isolation (merges never cross the boundary of a symbol that
ends up whole), so keeping the intermediates of t's isolated run keeps every merge the
original run used, provided every final token of the original run is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence


def isolated_run(symbols: Sequence, priority: Callable[[object], float | None]) -> tuple[list, list]:
    """Run BPE on `symbols` alone: repeatedly merge the adjacent pair whose concatenation has
    the best (lowest) priority, leftmost on ties. Returns (final parts, intermediates in order)."""
    parts = list(symbols)
    made = []
    while len(parts) > 1:
        best, at = None, -1
        for i in range(len(parts) - 1):
            p = priority(parts[i] + parts[i + 1])
            if p is not None and (best is None or p < best):
                best, at = p, i
        if at < 0:
            break
        parts[at:at + 2] = [parts[at] + parts[at + 1]]
        made.append(parts[at])
    return parts, made


def rank_intermediates(token: bytes, ranks: Mapping[bytes, int]) -> list[bytes] | None:
    """Tokens a byte-level rank BPE (tiktoken) builds on the way to `token`; None when BPE on
    the token's own bytes does not end in the token (it is then only produced whole, by
    tiktoken's 'the piece is a token' shortcut, and needs nothing)."""
    parts, made = isolated_run([token[i:i + 1] for i in range(len(token))], ranks.get)
    return made if len(parts) == 1 else None


def scored_intermediates(piece: str, scores: Mapping[str, float]) -> list[str] | None:
    """The same for SentencePiece BPE, where the highest score merges first."""
    def priority(s):
        v = scores.get(s)
        return None if v is None else -v

    parts, made = isolated_run(list(piece), priority)
    return made if len(parts) == 1 else None


def close_explicit(keep: set[Hashable], producers: Mapping[Hashable, list[tuple[Hashable, Hashable]]]) -> set:
    """Close a set of tokens under explicit merges: every merge whose result is kept keeps its parts.

    `producers[t]` lists the merges (a, b) whose result is t (an HF file may list several).
    """
    out = set(keep)
    todo = list(out)
    while todo:
        t = todo.pop()
        for a, b in producers.get(t, ()):
            for part in (a, b):
                if part not in out:
                    out.add(part)
                    todo.append(part)
    return out
