"""One loader module per tokenizer file format, behind `load_format`.

Each module exposes `load(path: Path, params: dict) -> Tokenizer`. Loaders read
data only: JSON, protobuf, text. Nothing is unpickled or executed.
"""

from __future__ import annotations

import gzip
import importlib
import json
from pathlib import Path

from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.base import Tokenizer

FORMATS: dict[str, str] = {
    "hf-tokenizer-json": "tokenizers_registry.formats.hf_json",
    "sentencepiece-model": "tokenizers_registry.formats.sentencepiece_model",
    "tiktoken-ranks": "tokenizers_registry.formats.tiktoken_ranks",
    "tekken-json": "tokenizers_registry.formats.tekken_json",
    "clip-merges": "tokenizers_registry.formats.clip_merges",
}

# Ids a loaded tokenizer may declare. The largest real vocabularies hold a few hundred
# thousand ids; jobs size per-id arrays by vocab_size, so a file declaring an id of
# 2**32 would make them allocate tens of gigabytes.
MAX_VOCAB_SIZE = 1 << 24


def load_format(fmt: str, path: str | Path, params: dict | None = None) -> Tokenizer:
    """Load `path` as format `fmt`; any failure becomes a TokenizerFileError naming the file
    (a ConfigError, e.g. a missing loader parameter, passes through unchanged)."""
    if fmt not in FORMATS:
        raise TokenizerFileError(f"{path}: unknown tokenizer format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    module = importlib.import_module(FORMATS[fmt])
    try:
        tok = module.load(Path(path), dict(params or {}))
    except (TokenizerFileError, ConfigError):
        raise
    except Exception as e:  # corrupt files raise anything from JSON, protobuf or the libraries
        raise TokenizerFileError(f"{path}: cannot load as {fmt}: {type(e).__name__}: {e}") from e
    if not 0 < tok.vocab_size <= MAX_VOCAB_SIZE:
        raise TokenizerFileError(f"{path}: declares {tok.vocab_size} token ids; a tokenizer may have 1 to "
                                 f"{MAX_VOCAB_SIZE} (an id that large is a corrupt or hostile file)")
    return tok


def sniff_format(path: str | Path) -> str:
    """Guess a file's format from its name and first bytes; error names the file when unsure."""
    path = Path(path)
    name = path.name.lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    if name.endswith(".tiktoken"):
        return "tiktoken-ranks"
    if name.endswith(".model"):
        return "sentencepiece-model"
    if name.endswith(".txt.gz") or head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                first = f.readline()
        except Exception as e:
            raise TokenizerFileError(f"{path}: gzip file cannot be read: {e}") from e
        if "#version" in first:  # CLIP's header is '"bpe_simple_vocab_16e6.txt#version: 0.2'
            return "clip-merges"
    if name.endswith(".json"):
        text = head.decode("utf-8", errors="replace")
        if '"config"' in text and '"vocab"' in text and '"token_bytes"' in text:
            return "tekken-json"
        if '"model"' in text or '"version"' in text or '"added_tokens"' in text:
            return "hf-tokenizer-json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except Exception as e:
            raise TokenizerFileError(f"{path}: not valid JSON: {e}") from e
        if isinstance(doc, dict) and "config" in doc and "vocab" in doc:
            return "tekken-json"
        if isinstance(doc, dict) and "model" in doc:
            return "hf-tokenizer-json"
    raise TokenizerFileError(
        f"{path}: cannot tell the tokenizer format; pass one of: {', '.join(sorted(FORMATS))}"
    )
