"""One package per tokenizer file format, and the one table that lists them.

`tokenizers_registry/formats/<format>/` holds everything about a format: `loader.py`
(`load(path, params) -> Tokenizer`, plus the strict parser of the file), and where the format
supports them `trim.py` (its `FormatTrimmer`) and `merges.py` (`load_merges(path, params, name)
-> MergeList`, built from the loader's parser). `FORMATS` names, per format, its package and
what it supports; `load_format`, `open_trimmer`, `load_merges` and `sniff_format` all read it.
Format packages are imported only when used. Everything reads data only: JSON, protobuf, text;
nothing is unpickled or executed.
"""

from __future__ import annotations

import gzip
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.base import Tokenizer

if TYPE_CHECKING:
    from tokenizers_registry.merges import MergeList
    from tokenizers_registry.trim.plan import FormatTrimmer


@dataclass(frozen=True)
class Format:
    """A format's package under `tokenizers_registry.formats`, what it supports, and how to recognise its files."""

    package: str
    trimmer: str | None = None  # class in <package>.trim; None: the format cannot be trimmed
    merges: bool = False  # <package>.merges gives the ordered BPE merges (mixture inference)
    suffixes: tuple[str, ...] = ()  # a lower-cased file name ending so is this format
    gzip_header: str | None = None  # gzip text whose first line contains this
    json_head: tuple[tuple[str, ...], ...] = ()  # .json whose first 4 KiB hold every string of one group
    json_keys: tuple[str, ...] = ()  # .json object with all these top-level keys

    def module(self, part: str):
        return importlib.import_module(f"{__name__}.{self.package}.{part}")


# Sniffing tries formats in this order: Tekken before HF, because a Tekken config also has "version".
FORMATS: dict[str, Format] = {
    "tiktoken-ranks": Format("tiktoken_ranks", trimmer="TiktokenTrimmer", merges=True, suffixes=(".tiktoken",)),
    "sentencepiece-model": Format("sentencepiece_model", trimmer="SentencePieceTrimmer", merges=True,
                                  suffixes=(".model",)),
    "clip-merges": Format("clip_merges", merges=True, gzip_header="#version"),  # '"bpe_simple_vocab_16e6.txt#version: 0.2'
    "tekken-json": Format("tekken_json", trimmer="TekkenTrimmer", merges=True,
                          json_head=(('"config"', '"vocab"', '"token_bytes"'),), json_keys=("config", "vocab")),
    "hf-tokenizer-json": Format("hf_tokenizer_json", trimmer="HFJsonTrimmer", merges=True,
                                json_head=(('"model"',), ('"version"',), ('"added_tokens"',)), json_keys=("model",)),
}

# Ids a loaded tokenizer may declare. The largest real vocabularies hold a few hundred
# thousand ids; jobs size per-id arrays by vocab_size, so a file declaring an id of
# 2**32 would make them allocate tens of gigabytes.
MAX_VOCAB_SIZE = 1 << 24
GZIP_MAGIC = b"\x1f\x8b"


def _names(supports: Callable[[Format], object] = bool) -> str:
    return ", ".join(sorted(name for name, f in FORMATS.items() if supports(f)))


def _read(fmt: str, path: Path, what: str, read: Callable[[], object]):
    """Run a format's reader; any failure but a TokenizerFileError or ConfigError (e.g. a missing
    loader parameter), which pass through, becomes a TokenizerFileError naming the file."""
    try:
        return read()
    except (TokenizerFileError, ConfigError):
        raise
    except Exception as e:  # corrupt files raise anything from JSON, protobuf or the libraries
        raise TokenizerFileError(f"{path}: cannot {what} {fmt}: {type(e).__name__}: {e}") from e


def check_format(fmt: str, path: str | Path) -> Format:
    """The table entry of `fmt`; a TokenizerFileError naming the file and the known formats if none."""
    if fmt not in FORMATS:
        raise TokenizerFileError(f"{path}: unknown tokenizer format {fmt!r}; known: {_names()}")
    return FORMATS[fmt]


def load_format(fmt: str, path: str | Path, params: dict | None = None) -> Tokenizer:
    """Load `path` as format `fmt`; failures are TokenizerFileErrors naming the file."""
    load = check_format(fmt, path).module("loader").load
    path = Path(path)
    tok = _read(fmt, path, "load as", lambda: load(path, dict(params or {})))
    if not 0 < tok.vocab_size <= MAX_VOCAB_SIZE:
        raise TokenizerFileError(f"{path}: declares {tok.vocab_size} token ids; a tokenizer may have 1 to "
                                 f"{MAX_VOCAB_SIZE} (an id that large is a corrupt or hostile file)")
    return tok


def open_trimmer(path: str | Path, fmt: str, params: dict | None = None) -> FormatTrimmer:
    """The trimmer of a tokenizer file; ConfigError for formats that cannot be trimmed."""
    f = FORMATS.get(fmt)
    if f is None or f.trimmer is None:
        raise ConfigError(f"{path}: trimming supports {_names(lambda f: f.trimmer)}, not {fmt!r}")
    path = Path(path)
    trimmer = getattr(f.module("trim"), f.trimmer)
    return _read(fmt, path, "open for trimming as", lambda: trimmer(path, dict(params or {})))


def load_merges(path: str | Path, fmt: str, params: dict | None = None, name: str | None = None) -> MergeList:
    """Ordered merges and exact pre-tokenizer of a BPE tokenizer file of format `fmt`, read by the
    format's own parser (tiktoken-ranks needs the loader parameter `pattern`)."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerFileError(f"{path}: no such tokenizer file")
    f = FORMATS.get(fmt)
    if f is None or not f.merges:
        raise ConfigError(f"{path}: format {fmt!r} has no BPE merges; BPE formats: {_names(lambda f: f.merges)}")
    load = f.module("merges").load_merges
    return _read(fmt, path, "read merges as", lambda: load(path, dict(params or {}), name or path.name.split(".")[0]))


def sniff_format(path: str | Path) -> str:
    """Guess a file's format from its name and first bytes (the table's hints); error names the file when unsure."""
    path = Path(path)
    name = path.name.lower()
    with open(path, "rb") as f:
        head = f.read(4096)
    for fmt, f in FORMATS.items():
        if f.suffixes and name.endswith(f.suffixes):
            return fmt
    if name.endswith(".txt.gz") or head[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as g:
                first = g.readline()
        except Exception as e:
            raise TokenizerFileError(f"{path}: gzip file cannot be read: {e}") from e
        for fmt, f in FORMATS.items():
            if f.gzip_header and f.gzip_header in first:
                return fmt
    if name.endswith(".json"):
        text = head.decode("utf-8", errors="replace")
        for fmt, f in FORMATS.items():
            if any(all(s in text for s in group) for group in f.json_head):
                return fmt
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except Exception as e:
            raise TokenizerFileError(f"{path}: not valid JSON: {e}") from e
        for fmt, f in FORMATS.items():
            if f.json_keys and isinstance(doc, dict) and all(k in doc for k in f.json_keys):
                return fmt
    raise TokenizerFileError(f"{path}: cannot tell the tokenizer format; pass one of: {_names()}")
