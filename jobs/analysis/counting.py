"""Per-sentence counting: tokens, unknown tokens, words and continued words.

Pure functions over a loaded tokenizer and a list of texts, vectorised with numpy so
the only per-token work is inside the tokenizer library. Used by the encode job on
Spark workers and directly by tests and benchmarks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from schemas.languages import word_segmentation
from tokenizers_registry.base import Tokenizer

_WORD = re.compile(r"\S+")
_CHAR = re.compile(r"\S")


@dataclass
class SentenceCounts:
    """Counts for a batch of texts, one array element per text."""

    n_tokens: np.ndarray
    n_unk: np.ndarray
    n_words: np.ndarray
    n_continued_words: np.ndarray  # -1 where not computed (word_stats=False)
    word_segmentation: str


def _flatten(id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(x) for x in id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def _per_text_sum(mask: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum a per-token boolean mask within each text."""
    if not len(lengths):
        return np.zeros(0, dtype=np.int64)
    csum = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    ends = np.cumsum(lengths)
    return csum[ends] - csum[ends - lengths]


def word_spans(text: str, segmentation: str) -> list[tuple[int, int]]:
    """Character spans of the words of `text`: runs of non-space, or single non-space chars."""
    if segmentation == "character":
        return [(i, i + 1) for i, c in enumerate(text) if not c.isspace()]
    return [m.span() for m in _WORD.finditer(text)]


def count_words(texts: Sequence[str], segmentation: str) -> np.ndarray:
    if segmentation == "character":
        return np.array([sum(not c.isspace() for c in t) for t in texts], dtype=np.int64)
    return np.array([len(t.split()) for t in texts], dtype=np.int64)


def word_stats_batch(texts: Sequence[str], starts: Sequence[Sequence[int]],
                     segmentation: str) -> tuple[np.ndarray, np.ndarray]:
    """(words, words covered by >= 2 tokens) per text, for a whole batch in a few numpy calls.

    A token covers a word if it starts inside it, or starts before it and is still
    running at its first character (e.g. GPT-2's " word" token starts at the space).
    Zero-length tokens (bytes of one character split over several tokens) start inside
    the word and so count, which is what makes a split character a continued word.
    `starts[i]` are text i's token start offsets, non-decreasing. The texts are joined
    by newlines, which no word spans, so one regex pass and one `searchsorted` serve all.
    """
    n = len(texts)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    off = np.concatenate([[0], np.cumsum(lens + 1)[:-1]])
    pattern = _CHAR if segmentation == "character" else _WORD
    spans = [m.span() for m in pattern.finditer("\n".join(texts))]
    ws = np.fromiter((a for a, _ in spans), dtype=np.int64, count=len(spans))
    we = np.fromiter((b for _, b in spans), dtype=np.int64, count=len(spans))
    word_text = np.searchsorted(off, ws, side="right") - 1
    n_words = np.bincount(word_text, minlength=n)
    per_text = np.fromiter((len(x) for x in starts), dtype=np.int64, count=n)
    st = np.fromiter(chain.from_iterable(starts), dtype=np.int64, count=int(per_text.sum()))
    if not len(st) or not len(ws):
        return n_words, np.zeros(n, np.int64)
    st += np.repeat(off, per_text)
    ends = np.empty_like(st)  # a token runs to the next token's start, the last one to its text's end
    ends[:-1] = st[1:]
    has = per_text > 0
    ends[np.cumsum(per_text)[has] - 1] = (off + lens)[has]
    first_inside = np.searchsorted(st, ws, side="left")
    inside = np.searchsorted(st, we, side="left") - first_inside
    prev = first_inside - 1
    running = (prev >= 0) & (ends[np.maximum(prev, 0)] > ws)
    continued = (inside + running) >= 2
    return n_words, np.bincount(word_text, weights=continued, minlength=n).astype(np.int64)


def continued_words(text: str, starts: Sequence[int], segmentation: str) -> tuple[int, int]:
    """(words, words covered by >= 2 tokens) for one text; see `word_stats_batch`."""
    words, cont = word_stats_batch([text], [starts], segmentation)
    return int(words[0]), int(cont[0])


def count_batch(tok: Tokenizer, texts: Sequence[str], script: str, *, word_stats: bool = True) -> SentenceCounts:
    """Count tokens (special tokens excluded), unknowns, words and continued words per text."""
    seg = word_segmentation(script)
    if word_stats:
        encoded = tok.encode_batch_with_starts(texts)
        ids = [e[0] for e in encoded]
    else:
        encoded = None
        ids = tok.encode_batch(texts)
    specials = tok.special_ids
    unk = tok.unk_id
    if not specials and unk is None:  # byte-level rank formats: nothing to inspect per token
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.zeros(0, dtype=np.int64)
    else:
        flat, lengths = _flatten(ids)
    if specials:
        special_mask = np.isin(flat, np.fromiter(specials, dtype=np.int64))
        n_tokens = lengths - _per_text_sum(special_mask, lengths)
    else:
        n_tokens = lengths
    n_unk = _per_text_sum(flat == unk, lengths) if unk is not None else np.zeros(len(texts), np.int64)
    if encoded is None:
        n_words = count_words(texts, seg)
        n_cont = np.full(len(texts), -1, dtype=np.int64)
    else:
        n_words, n_cont = word_stats_batch(texts, [e[1] for e in encoded], seg)
    return SentenceCounts(n_tokens, n_unk, n_words, n_cont, seg)


def count_tokens(tok: Tokenizer, text: str) -> int:
    """Tokens of one text, special tokens excluded (used for the corpus-level count)."""
    ids = tok.encode_batch([text])[0]
    specials = tok.special_ids
    return sum(1 for i in ids if i not in specials) if specials else len(ids)
