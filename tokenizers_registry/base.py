"""The small interface every tokenizer format implements, and the error taxonomy."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence


class TokatlasError(Exception):
    """Base of tokatlas errors."""


class ConfigError(TokatlasError):
    """Bad configuration or arguments: fail fast, before Spark starts."""


class TokenizerFileError(TokatlasError):
    """A tokenizer artifact is missing, corrupt, of an unknown format, or fails its checksum.

    The message always names the file.
    """


class TransientError(TokatlasError):
    """A failure worth retrying (a lost executor, a dropped connection); the only kind flows retry."""


# What a per-item guard (a cell, a registration probe) never records as the item's own failure.
# Everything else is, including a Rust panic in a tokenizer library, which pyo3 raises as
# `PanicException`: a BaseException, so `except Exception` misses it.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


# A name that becomes a path component or a hive partition value: no separators, no `..`,
# no `=`, no control characters, nothing a shell or a filesystem reads specially.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(value, what: str = "name") -> str:
    """`value` if it is safe as one path component, else ConfigError naming `what` and the rule."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"invalid {what} {printable(repr(value))}: use 1-128 letters, digits, '.', '_', "
                          f"'+' or '-', starting with a letter or digit (no '/', '..', '=' or spaces)")
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with terminal control characters (ESC, BEL, C1, bidi overrides)
    and lone surrogates shown as escapes, so that printing it can neither drive a terminal nor raise.

    Newlines and tabs are kept when `newlines` is true; otherwise shown as \\n and \\t too.
    """
    s = str(text)
    if not newlines:
        s = s.replace("\n", "\\n").replace("\t", "\\t")
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)


class Tokenizer(ABC):
    """A loaded tokenizer.

    Implementations never add special tokens (BOS/EOS) when encoding, never execute
    code or unpickle anything from the artifact, and are loaded once per worker.
    """

    format: str  # registry format name, e.g. "tiktoken-ranks"
    algorithm: str  # bpe | unigram | wordpiece | wordlevel
    pre_tokenizer: str  # regex or short description of the pre-tokenization

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @property
    @abstractmethod
    def special_ids(self) -> frozenset[int]:
        """Ids of special/control tokens (excluded from counts)."""

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown token, or None (byte-level tokenizers have none)."""
        return None

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, with no special tokens added."""

    @abstractmethod
    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, starts) per text; starts[i] is the character offset in the original text
        where token i begins (non-decreasing). Used for continued-word counts."""

    @abstractmethod
    def vocab(self) -> dict[str | bytes, int]:
        """Token (str, or bytes for byte-level rank formats) to id."""

    def merges(self) -> list[tuple[str | bytes, str | bytes]] | None:
        """Ordered BPE merges where the format has or implies them, else None."""
        return None

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0]
