"""The error taxonomy, in one neutral place every layer may import.

    ConfigError         fatal: bad input or configuration; one line, exit 2, never retried
    TokenizerFileError  a corrupt or unsafe tokenizer file; fails that tokenizer's cells
    TransientError      worth retrying (lost executor, network); always retried
    SchemaMismatch      a table that does not match its dataset's contract
    FATAL               what is never caught per cell (interrupts and exits)
"""

from __future__ import annotations


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


class SchemaMismatch(ValueError):
    """A table does not match its dataset's schema."""
