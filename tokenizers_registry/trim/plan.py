"""What every format trimmer provides, and the keep rule they share.

The rule is vocabtrimmer's (Ushio et al. 2023): keep the tokens whose count in the
trimming text is >= `min_frequency`, optionally only the `top_n` most frequent of
those, plus special and user-listed tokens always. On top of the rule each format adds
what it needs to stay a working tokenizer (`structural()`: unknown token, the 256 byte
tokens, the base alphabet, score-defining pieces) and what kept tokens' merges need
(`close()`). New ids are the kept old ids compacted in their original order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from schemas.errors import ConfigError

# Precedence of the reasons recorded in the id map (first that applies wins).
REASONS = ("special", "unk", "byte", "alphabet", "pinned", "user", "frequency", "closure")


class FormatTrimmer(ABC):
    """One tokenizer file, opened for trimming (reads data only, never executes anything)."""

    fmt: str
    algorithm: str

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Ids of the original, special tokens included (max id + 1)."""

    @abstractmethod
    def token_text(self, token_id: int) -> str | None:
        """Readable form of a token (bytes as UTF-8 with backslash escapes), None for a hole."""

    @abstractmethod
    def id_of(self, token: str) -> int | None:
        """Id of a token written as text (rank formats: its UTF-8 bytes), None when absent."""

    @abstractmethod
    def special_ids(self) -> set[int]:
        """Special/control token ids: always kept, never counted."""

    @abstractmethod
    def structural(self) -> dict[int, str]:
        """Ids kept whatever the counts say, with the reason (see REASONS)."""

    def close(self, keep: set[int]) -> set[int]:
        """The smallest superset of `keep` whose tokens' merges are all still possible."""
        return set(keep)

    def n_merges(self, keep: set[int] | None = None) -> int | None:
        """Merges of the original (keep=None) or of a trimmed vocabulary; None when not a BPE."""
        return None

    @abstractmethod
    def write(self, keep: np.ndarray, out_dir: Path) -> tuple[Path, dict]:
        """Write the trimmed tokenizer keeping the sorted old ids `keep`; returns (file, loader params)."""


@dataclass
class KeepPlan:
    """Kept old ids (sorted; new id = position) and why each was kept."""

    keep: np.ndarray
    reason: dict[int, str]
    n_by_frequency: int
    n_structural: int
    n_closure: int
    stats: dict = field(default_factory=dict)

    def id_map(self) -> dict[int, int]:
        return {int(o): n for n, o in enumerate(self.keep.tolist())}


def frequency_rule(counts: np.ndarray, *, min_frequency: int = 1, top_n: int | None = None,
                   exclude: Iterable[int] = ()) -> np.ndarray:
    """Ids with count >= min_frequency (never ids in `exclude`), limited to the `top_n` most
    frequent when given (ties broken by the smaller id). Returns sorted ids."""
    if min_frequency < 1:
        raise ConfigError(f"min_frequency must be >= 1 (a token that never occurs is not 'used'), got {min_frequency}")
    if top_n is not None and top_n < 0:
        raise ConfigError(f"top_n must be >= 0, got {top_n}")
    counts = np.asarray(counts, dtype=np.int64)
    ok = counts >= min_frequency
    ex = np.fromiter((i for i in exclude if 0 <= i < len(counts)), dtype=np.int64)
    ok[ex] = False
    ids = np.flatnonzero(ok)
    if top_n is not None and len(ids) > top_n:
        order = np.lexsort((ids, -counts[ids]))  # by count descending, then id ascending
        ids = np.sort(ids[order[:top_n]])
    return ids


def plan_keep(trimmer: FormatTrimmer, counts: np.ndarray, *, min_frequency: int = 1, top_n: int | None = None,
              keep_tokens: Iterable[str] = ()) -> KeepPlan:
    """Apply the keep rule, add the format's structural ids and close under merges."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) > trimmer.vocab_size:
        raise ConfigError(f"counts cover {len(counts)} ids but the tokenizer has only {trimmer.vocab_size}")
    if len(counts) < trimmer.vocab_size:
        counts = np.concatenate([counts, np.zeros(trimmer.vocab_size - len(counts), np.int64)])
    specials = trimmer.special_ids()
    reason: dict[int, str] = {i: "special" for i in specials}
    for i, r in trimmer.structural().items():
        reason.setdefault(i, r)
    missing = []
    for tok in keep_tokens:
        i = trimmer.id_of(tok)
        if i is None:
            missing.append(tok)
        else:
            reason.setdefault(i, "user")
    if missing:
        raise ConfigError(f"tokens to keep are not in the vocabulary: {missing[:10]}")
    n_structural = len(reason)
    by_freq = frequency_rule(counts, min_frequency=min_frequency, top_n=top_n, exclude=specials)
    n_by_frequency = 0
    for i in by_freq.tolist():
        if i not in reason:
            reason[i] = "frequency"
            n_by_frequency += 1
    closed = trimmer.close(set(reason))
    n_closure = 0
    for i in closed:
        if i not in reason:
            reason[i] = "closure"
            n_closure += 1
    keep = np.array(sorted(reason), dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    dropped_used = int(len(used) - np.isin(used, keep).sum())
    return KeepPlan(keep=keep, reason=reason, n_by_frequency=n_by_frequency, n_structural=n_structural,
                    n_closure=n_closure, stats={"used_tokens_dropped": dropped_used})
