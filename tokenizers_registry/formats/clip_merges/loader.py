"""Loader of CLIP's `bpe_simple_vocab_16e6.txt.gz` (OpenAI CLIP / open_clip SimpleTokenizer), run on
a `tokenizers` BPE built the way transformers' CLIPConverter builds it.

File: a header line containing `#version`, then merges "a b"; the first 49152-256-2 = 48894 are used.
Vocab: the 256 byte-level chars, the same + "</w>", each merge joined, then
<|startoftext|> and <|endoftext|> (the two `special_ids`). No unk: byte-level.

Text handling: NFC, whitespace runs -> " ", lower-case, the CLIP regex
('s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^\\s\\p{L}\\p{N}]+; whitespace dropped), byte-level
chars, BPE with "</w>" on each word's last symbol. Deliberately skipped: the original's
ftfy.fix_text (of which NFC is kept) and html.unescape; and the special-token strings are
not matched in text (they are encoded as text, like every format here).
Known difference: `tokenizers` lower-cases per character, so a word-final capital sigma
becomes σ where Python's str.lower() gives ς.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Regex, models, normalizers, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from schemas.errors import TokenizerFileError
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats._common import bytes_to_unicode, monotone

N_MERGES = 49152 - 256 - 2
SPECIALS = ("<|startoftext|>", "<|endoftext|>")
CLIP_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def n_merges_param(params: dict) -> int:
    """Merges used: the loader parameter 'n_merges', else CLIP's 49152 - 256 - 2."""
    return int(params.get("n_merges", N_MERGES))


def read_merges(path: Path, n_merges: int = N_MERGES) -> list[tuple[str, str]]:
    """The first `n_merges` merges of the file; errors name the file and line."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not lines or "#version" not in lines[0]:  # OpenAI's file starts '"bpe_simple_vocab_16e6.txt#version: 0.2'
        raise TokenizerFileError(f"{path}: not a CLIP merges file (no '#version' in the first line)")
    raw = lines[1:n_merges + 1]
    if len(raw) < n_merges:
        raise TokenizerFileError(f"{path}: {len(raw)} merges, CLIP needs {n_merges}")
    merges = []
    for i, line in enumerate(raw, 2):
        parts = line.split()
        if len(parts) != 2:
            raise TokenizerFileError(f"{path}: line {i} is not a merge 'a b': {line[:80]!r}")
        merges.append((parts[0], parts[1]))
    return merges


class ClipTokenizer(Tokenizer):
    format = "clip-merges"
    algorithm = "bpe"

    def __init__(self, merges: list[tuple[str, str]]):
        chars = list(bytes_to_unicode().values())
        vocab_list = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + list(SPECIALS)
        vocab = {t: i for i, t in enumerate(vocab_list)}
        if len(vocab) != len(vocab_list):
            raise ValueError("merges produce duplicate tokens")
        tok = HFTokenizer(models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="",
                                     end_of_word_suffix="</w>", fuse_unk=False, unk_token=None))
        tok.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        self._tok = tok
        self._fast = getattr(tok, "encode_batch_fast", tok.encode_batch)
        self._vocab = vocab
        self._merges = merges
        self._special = frozenset(vocab[s] for s in SPECIALS)
        self.pre_tokenizer = f"lowercase + {CLIP_PATTERN} + ByteLevel"

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._fast(list(texts), add_special_tokens=False)]

    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        return [(e.ids, monotone([s for s, _ in e.offsets]))
                for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def vocab(self) -> dict[str | bytes, int]:
        return dict(self._vocab)

    def merges(self) -> list[tuple[str, str]]:
        return list(self._merges)


def load(path: Path, params: dict) -> ClipTokenizer:
    return ClipTokenizer(read_merges(path, n_merges_param(params)))
