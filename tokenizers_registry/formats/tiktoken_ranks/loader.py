"""Loader of tiktoken rank files: one `base64(token bytes) rank` per line.

The file holds no pre-tokenization regex, so `params['pattern']` is required;
`params['special_tokens']` ({str: id}) is optional. Encoding is tiktoken's
`encode_ordinary`: text that looks like a special token is encoded as text.

Placeholder lines (a rank with empty bytes, e.g. Whisper's `= 50256`, or a bare
rank) reserve their id without a token; they are kept in `placeholder_ranks`.
`merges()` is None here; `merges.py` derives the merges from the ranks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tiktoken

from schemas.errors import ConfigError, TokenizerFileError
from schemas.names import printable
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats._common import (
    ChunkedEncoder,
    char_starts_batch,
    encode_threads,
)


class RankBPETokenizer(Tokenizer):
    """Byte-level BPE on tiktoken: `ranks` map token bytes to their final ids.

    Merge priority is the id order, so ids may be shifted by a constant (Tekken's
    special-token block) without changing any segmentation.
    """

    algorithm = "bpe"

    def __init__(self, *, name: str, fmt: str, pattern: str, ranks: dict[bytes, int],
                 special_tokens: dict[str, int], vocab_size: int, special_ids: frozenset[int],
                 threads: int):
        self.format = fmt
        self.pre_tokenizer = pattern
        self._ranks = ranks
        self._special_tokens = dict(special_tokens)
        self._vocab_size = vocab_size
        self._special_ids = special_ids
        try:
            self._enc = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks,
                                          special_tokens=self._special_tokens)
        except ValueError as e:  # the pattern is compiled here, by the engine that will run it
            raise ConfigError(f"{name}: pre-tokenization pattern does not compile in tiktoken's regex engine "
                              f"(fancy-regex): {printable(str(e))}") from None
        # Byte length per id, for starts without a per-token Python loop; specials/holes are 0.
        lengths = np.zeros(vocab_size, dtype=np.int64)
        lengths[np.fromiter(ranks.values(), dtype=np.int64, count=len(ranks))] = np.fromiter(
            (len(b) for b in ranks), dtype=np.int64, count=len(ranks))
        self._byte_lengths = lengths
        self._encode_many = ChunkedEncoder(self._enc.encode_ordinary, threads)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special_ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._encode_many(texts)

    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        ids = self._encode_many(texts)
        return list(zip(ids, char_starts_batch(texts, ids, self._byte_lengths), strict=True))

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def vocab(self) -> dict[str | bytes, int]:
        out: dict[str | bytes, int] = dict(self._ranks)
        out.update(self._special_tokens)
        return out

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of a (non-special) token id."""
        return self._enc.decode_single_token_bytes(token_id)


def parse_rank_file(path: Path) -> tuple[dict[bytes, int], list[int]]:
    """(token bytes -> rank, placeholder ranks). Errors name the file and line."""
    ranks: dict[bytes, int] = {}
    placeholders: list[int] = []
    seen_ranks: set[int] = set()
    data = path.read_bytes()
    for lineno, line in enumerate(data.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue  # blank line: nothing to reserve
        try:
            if len(parts) == 1:  # a bare rank: a reserved id with no token
                token, rank = b"", int(parts[0])
            elif len(parts) == 2:
                # "=" is how an empty token (Whisper's placeholder) is written; strict decoding refuses it
                token = b"" if not parts[0].strip(b"=") else base64.b64decode(parts[0], validate=True)
                rank = int(parts[1])
            else:
                raise ValueError(f"expected 'base64 rank', got {len(parts)} fields")
        except (ValueError, binascii.Error):  # the line is not quoted: the file may be anything (/etc/passwd)
            raise TokenizerFileError(f"{path}: line {lineno} is not '<base64 token> <integer rank>'") from None
        if rank < 0 or rank in seen_ranks:
            raise TokenizerFileError(f"{path}: line {lineno}: rank {rank} is negative or repeated")
        seen_ranks.add(rank)
        if not token:
            placeholders.append(rank)
        elif token in ranks:
            raise TokenizerFileError(f"{path}: line {lineno}: token {token!r} appears twice")
        else:
            ranks[token] = rank
    if not ranks:
        raise TokenizerFileError(f"{path}: no ranks found; not a tiktoken rank file")
    missing = [i for i in range(256) if bytes([i]) not in ranks]
    if missing:
        # tiktoken panics (a BaseException, not Exception) mid-encode on such bytes: refuse now.
        raise TokenizerFileError(
            f"{path}: {len(missing)} single bytes have no rank (e.g. {missing[:5]}); "
            "a byte-level BPE needs all 256")
    return ranks, placeholders


def pattern_param(path: Path, params: dict) -> str:
    """The required loader parameter 'pattern' (the file holds no pre-tokenization regex)."""
    pattern = params.get("pattern")
    if not pattern:
        raise ConfigError(f"{path}: tiktoken rank files need a pre-tokenization pattern "
                          "(loader parameter 'pattern', e.g. from MANIFEST.json)")
    return pattern


def special_tokens_param(params: dict) -> dict[str, int]:
    """The optional loader parameter 'special_tokens' ({str: id})."""
    return {str(k): int(v) for k, v in (params.get("special_tokens") or {}).items()}


def load(path: Path, params: dict) -> RankBPETokenizer:
    pattern = pattern_param(path, params)
    ranks, placeholders = parse_rank_file(path)
    special_tokens = special_tokens_param(params)
    clash = set(special_tokens.values()) & (set(ranks.values()) | set(placeholders))
    if clash:
        raise ConfigError(f"{path}: special token ids {sorted(clash)[:5]} collide with ranks in the file")
    all_ids = [*ranks.values(), *placeholders, *special_tokens.values()]
    tok = RankBPETokenizer(
        name=path.name, fmt="tiktoken-ranks", pattern=pattern, ranks=ranks,
        special_tokens=special_tokens, vocab_size=max(all_ids) + 1,
        special_ids=frozenset(special_tokens.values()), threads=encode_threads(params))
    tok.placeholder_ranks = sorted(placeholders)
    return tok
