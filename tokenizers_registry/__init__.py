"""Tokenizer specs and the registry, one package per file format (`formats/`: loader, trimmer,
merges, listed in one table), the shared trimming and merge-list machinery, training, and the
artifact store."""

from schemas.errors import ConfigError, TokatlasError, TokenizerFileError
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats import FORMATS, load_format, sniff_format
from tokenizers_registry.registry import Registry, TokenizerSpec, load_tokenizer, tokenizer_id_for

__all__ = [
    "FORMATS", "ConfigError", "Registry", "TokatlasError", "Tokenizer", "TokenizerFileError",
    "TokenizerSpec", "load_format", "load_tokenizer", "sniff_format", "tokenizer_id_for",
]
