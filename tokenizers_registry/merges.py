"""The `MergeList` every format's merge extraction returns, and the pieces those share.

Data mixture inference (Hayase et al. 2024) needs two things from a BPE tokenizer:
the ordered merge list and the exact way text becomes "words" of initial symbols
before merging. `tokenizers_registry.formats.load_merges(path, fmt, params)` returns both
as a `MergeList`, built by `formats/<format>/merges.py` from the format's own parser.

Symbols are strings in the tokenizer's own alphabet (byte-level formats use the GPT-2
`bytes_to_unicode` mapping, CLIP adds `</w>` to a word's last symbol) and integer ids:

    ord(c)                 a single character (a mapped byte for byte-level formats)
    ord(c) + END_OFFSET    c</w> (CLIP's end-of-word symbol)
    MERGED_BASE + t        the symbol first produced by merge t

so ids agree across samples without a shared table, and a pair fits in one int64
(`pair_key`). Rank formats (tiktoken, Tekken) and SentencePiece BPE store ranks or
scores instead of merges: merge t is derived by re-running BPE on token t's symbols
with lower-ranked tokens only, which must end in exactly two parts (`derive_from_ranks`).
Shared here: the pair keys, the byte-level regex pre-tokenizer of the rank formats, and
that derivation; pre-tokenizers peculiar to one format live in its `merges.py`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tokenizers_registry.formats._common import bytes_to_unicode

END_OFFSET = 0x110000
MERGED_BASE = 0x220000
PAIR_SHIFT = 22  # ids < 2**22, so a pair key < 2**44


def map_bytes(b: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[x] for x in b)


def pair_key(left: int | np.ndarray, right: int | np.ndarray):
    return (np.int64(left) << PAIR_SHIFT) | np.int64(right) if isinstance(left, np.ndarray) else (left << PAIR_SHIFT) | right


def split_pair_key(key):
    return key >> PAIR_SHIFT, key & ((1 << PAIR_SHIFT) - 1)


def base_symbol_id(sym: str) -> int | None:
    """Id of a one-character symbol (or CLIP's c</w>); None for anything longer."""
    if len(sym) == 1:
        return ord(sym)
    if len(sym) == 5 and sym.endswith("</w>"):
        return ord(sym[0]) + END_OFFSET
    return None


# -- pre-tokenizers: text -> words -> initial symbol ids ------------------------------------
class Pretokenizer:
    """Normalise and split text exactly as the tokenizer does before BPE."""

    end_of_word = False  # CLIP: the last symbol of a word carries </w>

    def words(self, text: str) -> list[str]:
        raise NotImplementedError

    def count_words(self, texts: Iterable[str]) -> Counter:
        c: Counter = Counter()
        for t in texts:
            c.update(self.words(t))
        return c

    def symbols(self, word: str) -> list[int]:
        ids = [ord(c) for c in word]
        if self.end_of_word and ids:
            ids[-1] += END_OFFSET
        return ids


# Python's `regex` has no backtrack limit (fancy-regex, which tiktoken uses, has one and panics):
# a pattern that backtracks catastrophically fails its cell instead of hanging the job.
REGEX_SECONDS = 30


class RegexBytePretokenizer(Pretokenizer):
    """tiktoken / Tekken: split by the regex, UTF-8 encode, map bytes to characters."""

    def __init__(self, pattern: str):
        import regex

        self.pattern = pattern
        self._re = regex.compile(pattern)

    def words(self, text: str) -> list[str]:
        try:
            found = self._re.findall(text, timeout=REGEX_SECONDS)
        except TimeoutError:
            raise TimeoutError(f"pre-tokenization pattern {self.pattern!r} ran over {REGEX_SECONDS} s on one "
                               f"text of {len(text)} characters (catastrophic backtracking)") from None
        return [map_bytes(w.encode("utf-8")) for w in found]


# -- merge lists -----------------------------------------------------------------------
@dataclass
class MergeList:
    """Ordered merges over symbol strings, their ids, and the tokenizer's pre-tokenizer."""

    name: str
    format: str
    merges: list[tuple[str, str]]
    pretokenizer: Pretokenizer
    n_candidates: int = 0  # tokens/merges in the file that should yield a merge
    skipped: list[str] = field(default_factory=list)  # tokens that did not derive or merges with unknown parts
    n_dropped_manual: int = 0  # SentencePiece pieces dropped as manual additions (extreme scores)
    left: np.ndarray = field(init=False, repr=False)
    right: np.ndarray = field(init=False, repr=False)
    new: np.ndarray = field(init=False, repr=False)
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        ids: dict[str, int] = {}
        kept, left, right, new = [], [], [], []
        for a, b in self.merges:
            ia = ids.get(a, base_symbol_id(a))
            ib = ids.get(b, base_symbol_id(b))
            if ia is None or ib is None:
                self.skipped.append(a + b)  # a part no earlier merge produced: can never apply
                continue
            t = len(kept)
            kept.append((a, b))
            left.append(ia)
            right.append(ib)
            new.append(ids.setdefault(a + b, MERGED_BASE + t))
        self.merges = kept
        self.left = np.array(left, dtype=np.int64)
        self.right = np.array(right, dtype=np.int64)
        self.new = np.array(new, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.merges)

    @property
    def n_derived(self) -> int:
        return len(self.merges)

    def symbol_strings(self) -> dict[int, str]:
        """id -> symbol string for merged symbols (base ids decode with `symbol_string`)."""
        return {int(n): a + b for (a, b), n in zip(self.merges, self.new, strict=True)}

    def symbol_string(self, sid: int, table: dict[int, str] | None = None) -> str:
        if sid >= MERGED_BASE:
            return (table or self.symbol_strings())[sid]
        if sid >= END_OFFSET:
            return chr(sid - END_OFFSET) + "</w>"
        return chr(sid)

    def ranks(self, T: int | None = None) -> dict[tuple[int, int], tuple[int, int]]:
        """(left, right) -> (merge index, new id) for the first T merges."""
        T = len(self) if T is None else T
        out: dict[tuple[int, int], tuple[int, int]] = {}
        for t in range(min(T, len(self))):
            out.setdefault((int(self.left[t]), int(self.right[t])), (t, int(self.new[t])))
        return out

    def encode_word(self, syms: Sequence[int], ranks: dict) -> list[int]:
        """Classic merge-list BPE on one word: repeatedly apply the lowest-ranked adjacent pair."""
        syms = list(syms)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r[0] < best[0]):
                    best = r
            if best is None:
                break
            t, n = best
            a, b = int(self.left[t]), int(self.right[t])
            out, i = [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(n)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        return syms

    def encode_text(self, text: str, T: int | None = None) -> list[str]:
        """Token strings of `text` under the first T derived merges (for round-trip checks)."""
        if ("ranks", T) not in self._cache:
            self._cache[("ranks", T)] = self.ranks(T)
            self._cache["table"] = self.symbol_strings()
        ranks, table = self._cache[("ranks", T)], self._cache["table"]
        out: list[str] = []
        for w in self.pretokenizer.words(text):
            out.extend(self.symbol_string(s, table) for s in self.encode_word(self.pretokenizer.symbols(w), ranks))
        return out

    def summary(self) -> dict:
        return {"name": self.name, "format": self.format, "n_candidates": self.n_candidates,
                "n_derived": self.n_derived, "n_skipped": len(self.skipped),
                "n_dropped_manual": self.n_dropped_manual, "skipped_examples": self.skipped[:10]}


def derive_from_ranks(tokens: Sequence[Sequence[str]]) -> tuple[list[tuple[str, str]], list[str], int]:
    """Merges from tokens in rank order, each given as its sequence of base symbols.

    Token r's merge is what BPE with tokens of rank < r leaves on its own symbols,
    provided that is exactly two parts; otherwise the token is reported and skipped.
    Returns (merges, skipped token strings, number of multi-symbol tokens).
    """
    rank: dict[str, int] = {}
    merges: list[tuple[str, str]] = []
    skipped: list[str] = []
    n_multi = 0
    for r, syms in enumerate(tokens):
        s = "".join(syms)
        if len(syms) <= 1:
            rank.setdefault(s, r)
            continue
        n_multi += 1
        parts = list(syms)
        while len(parts) > 2:
            best_i, best_r = -1, r
            for i in range(len(parts) - 1):
                q = rank.get(parts[i] + parts[i + 1])
                if q is not None and q < best_r:
                    best_i, best_r = i, q
            if best_i < 0:
                break
            parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        if len(parts) == 2 and parts[0] in rank and parts[1] in rank:
            merges.append((parts[0], parts[1]))
            rank.setdefault(s, r)
        else:
            skipped.append(s)
    return merges, skipped, n_multi


def rank_merge_list(name: str, fmt: str, tokens: Iterable[bytes], pattern: str) -> MergeList:
    """The MergeList of a byte-level rank BPE (tiktoken, Tekken) from its token bytes in rank order."""
    table = bytes_to_unicode()
    merges, skipped, n = derive_from_ranks([[table[x] for x in b] for b in tokens])
    return MergeList(name, fmt, merges, RegexBytePretokenizer(pattern), n_candidates=n, skipped=skipped)
