"""Helpers shared by the format loaders: thread count, chunked threaded encoding, offsets,
and the probe a tokenizer must pass to be registered."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from schemas.errors import FATAL, TokenizerFileError
from schemas.names import printable
from tokenizers_registry.base import Tokenizer

# Below this many texts per thread, a thread hand-off costs more than it saves.
MIN_TEXTS_PER_THREAD = 32


def encode_threads(params: dict) -> int:
    """Encoder threads: params['num_threads'], else $TOKATLAS_ENCODE_THREADS, else the CPU count.

    Thread count never changes token ids, so it need not be part of the tokenizer id;
    the environment variable lets a Spark executor size it without re-registering.
    """
    n = params.get("num_threads") or os.environ.get("TOKATLAS_ENCODE_THREADS") or os.cpu_count() or 1
    return max(1, int(n))


class ChunkedEncoder:
    """Apply a per-text encode function (one that releases the GIL) over a batch.

    The batch is cut into one contiguous chunk per thread of a persistent pool:
    creating a pool, or a future per text, per call costs more than it gains
    (tiktoken's own `encode_ordinary_batch` does both).
    """

    def __init__(self, fn: Callable[[str], list[int]], threads: int):
        self.fn = fn
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _chunk(self, texts: Sequence[str]) -> list[list[int]]:
        fn = self.fn
        return [fn(t) for t in texts]

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        n_chunks = min(self.threads, len(texts) // MIN_TEXTS_PER_THREAD)
        if n_chunks <= 1:
            return self._chunk(texts)
        with self._lock:  # created lazily: loaders run before a fork in some Spark setups
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tokatlas-encode")
        size = -(-len(texts) // n_chunks)
        chunks = [texts[i:i + size] for i in range(0, len(texts), size)]
        out: list[list[int]] = []
        for part in self._pool.map(self._chunk, chunks):
            out.extend(part)
        return out


def _tiktoken_fixed_index(text: str) -> np.ndarray | None:
    """For text with surrogates: original index of each char of tiktoken's repaired text.

    tiktoken re-decodes such text through UTF-16 with errors='replace': a surrogate
    pair becomes one char, a lone surrogate one U+FFFD.
    """
    idx = []
    i, n = 0, len(text)
    while i < n:
        idx.append(i)
        if "\ud800" <= text[i] <= "\udbff" and i + 1 < n and "\udc00" <= text[i + 1] <= "\udfff":
            i += 2
        else:
            i += 1
    return np.asarray(idx, dtype=np.int64)


def char_starts_from_byte_lengths(text: str, token_byte_lengths: np.ndarray) -> list[int]:
    """Char offset in `text` where each token starts, from the tokens' UTF-8 byte lengths.

    A token that starts inside a multi-byte character gets that character's offset,
    so the bytes of one character split over several tokens share a start.
    """
    if not len(token_byte_lengths):
        return []
    byte_starts = np.empty(len(token_byte_lengths), dtype=np.int64)
    byte_starts[0] = 0
    np.cumsum(token_byte_lengths[:-1], out=byte_starts[1:])
    if text.isascii():
        return byte_starts.tolist()
    orig_index = None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: tiktoken encodes its repaired text
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        data = fixed.encode("utf-8")
        orig_index = _tiktoken_fixed_index(text)
        if len(orig_index) != len(fixed):  # not the repair we model: clip instead of mapping
            orig_index = None
    b = np.frombuffer(data, dtype=np.uint8)
    char_of_byte = np.cumsum((b & 0xC0) != 0x80) - 1  # continuation bytes are 10xxxxxx
    starts = char_of_byte[np.minimum(byte_starts, len(b) - 1)]
    if orig_index is not None:
        starts = orig_index[starts]
    return np.minimum(starts, len(text)).tolist()


def char_starts_batch(texts: Sequence[str], ids: list[list[int]],
                      byte_lengths: np.ndarray) -> list[list[int]]:
    """`char_starts_from_byte_lengths` for a whole batch of byte-level encodings at once.

    Works on the batch's concatenated UTF-8, so the numpy work is a few calls per batch
    rather than per text. `byte_lengths[id]` is the token's byte length; the tokens of
    each text must spell its UTF-8 exactly (true of tiktoken); otherwise, and for text
    with surrogates, it falls back to the per-text path.
    """
    if not len(ids):
        return []
    lens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lens.sum()))
    tok_bytes = byte_lengths[flat]
    try:
        data = "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        data = None
    if data is None or int(tok_bytes.sum()) != len(data):
        bounds = np.cumsum(lens)
        return [char_starts_from_byte_lengths(t, tok_bytes[e - n:e])
                for t, n, e in zip(texts, lens, bounds, strict=True)]
    byte_starts = np.cumsum(tok_bytes) - tok_bytes
    b = np.frombuffer(data, dtype=np.uint8)
    char_of_byte = np.cumsum((b & 0xC0) != 0x80) - 1
    text_char_starts = np.cumsum([0, *(len(t) for t in texts[:-1])])
    starts = char_of_byte[byte_starts] - np.repeat(text_char_starts, lens)
    return [part.tolist() for part in np.split(starts, np.cumsum(lens)[:-1])]


def monotone(starts: list[int]) -> list[int]:
    """Starts made non-decreasing (a library may report a token's offset before the previous one's)."""
    arr = np.asarray(starts, dtype=np.int64)
    if len(arr) < 2 or not (arr[1:] < arr[:-1]).any():
        return starts
    return np.maximum.accumulate(arr).tolist()


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (byte-level BPE, CLIP and merges use it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


# Ordinary text every tokenizer must encode to be registered. Long runs are where a pre-tokenization
# pattern that backtracks exponentially, e.g. `(\p{L}|\p{L})*(?=\d)`, exceeds its engine's limit
# (fancy-regex's backtrack limit in tiktoken, Oniguruma's retry limit in HF tokenizers), and
# tiktoken panics on a pattern that matches the empty string (here, before a number).
PROBE_TEXTS = (
    ("200 letters then a digit", "abcdefghij" * 20 + "1"),
    ("200 letters then a space", "abcdefghij" * 20 + " x"),
    ("200 accented letters then punctuation", "äöüßéèçñ" * 25 + "."),
    ("200 digits", "0123456789" * 20),
    ("200 spaces", " " * 200 + "x"),
    ("numbers after spaces", "at 10 am, 42 of 7"),
    ("text in several scripts", "The quick brown fox jumps!\n\tПривет, мир. 日本語のテキスト。 مرحبا بالعالم"),
)
_BACKTRACK = ("BacktrackLimitExceeded", "retry-limit-in-match")  # fancy-regex's and Oniguruma's words


def check_encodes(tok: Tokenizer, name: str, path) -> None:
    """Refuse, in one line naming the file and tokenizer, a tokenizer that panics or exceeds its
    regex engine's limit on `PROBE_TEXTS`.

    An ordinary exception is not refused: a vocabulary that cannot cover a script (e.g. no UNK
    token) is a per-cell failure at run time, not a broken tokenizer.
    """
    for what, text in PROBE_TEXTS:
        try:
            tok.encode_batch([text])
        except BaseException as e:  # a Rust panic (pyo3's PanicException) is a BaseException
            if isinstance(e, FATAL):
                raise
            msg = printable(str(e))[:300]
            backtracks = any(w in msg for w in _BACKTRACK)
            if isinstance(e, Exception) and not backtracks:
                continue
            hint = "; its pre-tokenization pattern backtracks too much for its regex engine" if backtracks else ""
            raise TokenizerFileError(f"{path}: tokenizer {name!r} cannot encode ordinary text ({what}): "
                                     f"{type(e).__name__}: {msg}{hint}") from None
