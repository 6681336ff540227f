"""Loader of Hugging Face `tokenizer.json` (BPE, Unigram, WordPiece, WordLevel) via `tokenizers`.

- Encoding adds no special tokens (no post-processor template), and padding and
  truncation stored in the file are switched off.
- Special added tokens written in the text are encoded as text (`encode_special_tokens`),
  as every other format here does: "[CLS]" in a sentence is four characters, not a control token.
- `special_ids` are the added tokens marked special, minus `unk_id`: an unknown token stands
  for text and counts as a token. `unk_id` is the model's unk token when it is in the vocab.
- starts are the encodings' char offsets into the original text (normalizers are aligned).
- A BPE whose `unk_token` is missing from the vocab makes `tokenizers` raise on text it
  cannot cover; that surfaces from encode_batch as an exception (a failed cell).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

from schemas.errors import TokenizerFileError
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats._common import monotone

ALGORITHMS = {"BPE": "bpe", "Unigram": "unigram", "WordPiece": "wordpiece", "WordLevel": "wordlevel"}


def describe_pre_tokenizer(node: dict | None) -> str:
    """A short readable description of a `pre_tokenizer` JSON node."""
    if not node:
        return "none"
    kind = node.get("type", "?")
    if kind == "Sequence":
        return " + ".join(describe_pre_tokenizer(p) for p in node.get("pretokenizers", []))
    if kind == "Split":
        pattern = node.get("pattern", {})
        regex = pattern.get("Regex", pattern.get("String"))
        return f"Split({regex!r}, behavior={node.get('behavior')}, invert={node.get('invert')})"
    if kind == "ByteLevel":
        return (f"ByteLevel(add_prefix_space={node.get('add_prefix_space')}, "
                f"use_regex={node.get('use_regex', True)})")  # use_regex = the GPT-2 pattern
    if kind == "Metaspace":
        return f"Metaspace(replacement={node.get('replacement')!r}, prepend_scheme={node.get('prepend_scheme')})"
    if kind == "Digits":
        return f"Digits(individual_digits={node.get('individual_digits')})"
    return kind


def parse_merges(raw: list) -> list[tuple[str, str]]:
    """Merges in either JSON form: "a b" strings (older files) or [a, b] pairs."""
    out = []
    for m in raw:
        if isinstance(m, str):
            parts = m.split(" ")
            if len(parts) != 2:
                raise ValueError(f"merge {m!r} is not two space-separated tokens")
            out.append((parts[0], parts[1]))
        else:
            a, b = m
            out.append((a, b))
    return out


class HFJsonTokenizer(Tokenizer):
    format = "hf-tokenizer-json"

    def __init__(self, tok: HFTokenizer, model: dict, pre_tokenizer: dict | None, path: Path):
        self._tok = tok
        tok.no_padding()
        tok.no_truncation()
        if hasattr(tok, "encode_special_tokens"):
            tok.encode_special_tokens = True
        kind = model.get("type") or type(tok.model).__name__
        if kind not in ALGORITHMS:
            raise TokenizerFileError(f"{path}: unsupported tokenizers model type {kind!r}")
        self.algorithm = ALGORITHMS[kind]
        self.pre_tokenizer = describe_pre_tokenizer(pre_tokenizer)
        self._vocab = tok.get_vocab(with_added_tokens=True)
        self._vocab_size = max(tok.get_vocab_size(with_added_tokens=True), max(self._vocab.values(), default=-1) + 1)
        if kind == "Unigram":
            unk = model.get("unk_id")
        else:
            unk = self._vocab.get(model["unk_token"]) if model.get("unk_token") is not None else None
        self._unk = unk
        self._special = frozenset(i for i, t in tok.get_added_tokens_decoder().items() if t.special) - {unk}
        self._fast = getattr(tok, "encode_batch_fast", tok.encode_batch)  # fast: no offsets
        self._merges: list[tuple[str, str]] | None = None

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special

    @property
    def unk_id(self) -> int | None:
        return self._unk

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._fast(list(texts), add_special_tokens=False)]

    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        return [(e.ids, monotone([s for s, _ in e.offsets]))
                for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def vocab(self) -> dict[str | bytes, int]:
        return dict(self._vocab)

    def merges(self) -> list[tuple[str, str]] | None:
        if self.algorithm != "bpe":
            return None
        if self._merges is None:  # from the loaded model, so both JSON forms arrive normalized
            self._merges = parse_merges(json.loads(self._tok.to_str())["model"].get("merges", []))
        return list(self._merges)


def read_document(path: Path) -> tuple[str, dict]:
    """(text, parsed JSON) of a tokenizer.json; a document without a 'model' object is refused."""
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise TokenizerFileError(f"{path}: not a tokenizer.json (no 'model' object)")
    return text, doc


def load(path: Path, params: dict) -> HFJsonTokenizer:
    text, doc = read_document(path)
    return HFJsonTokenizer(HFTokenizer.from_str(text), doc["model"], doc.get("pre_tokenizer"), path)
