"""Vocabulary trimming per tokenizer file format (see docs/trim.md).

    trimmer = open_trimmer(path, fmt, params)
    plan = plan_keep(trimmer, counts, min_frequency=1, top_n=None, keep_tokens=[...])
    file, loader_params = trimmer.write(plan.keep, out_dir)
"""

from __future__ import annotations

from pathlib import Path

from schemas.errors import ConfigError
from tokenizers_registry.trim.base import (
    REASONS,
    FormatTrimmer,
    KeepPlan,
    frequency_rule,
    plan_keep,
)

TRIMMERS = {
    "hf-tokenizer-json": "tokenizers_registry.trim.hf_json:HFJsonTrimmer",
    "sentencepiece-model": "tokenizers_registry.trim.sentencepiece_model:SentencePieceTrimmer",
    "tiktoken-ranks": "tokenizers_registry.trim.ranks:TiktokenTrimmer",
    "tekken-json": "tokenizers_registry.trim.ranks:TekkenTrimmer",
}


def open_trimmer(path: str | Path, fmt: str, params: dict | None = None) -> FormatTrimmer:
    """The trimmer of a tokenizer file; ConfigError for formats that cannot be trimmed."""
    import importlib

    if fmt not in TRIMMERS:
        raise ConfigError(f"{path}: trimming supports {', '.join(sorted(TRIMMERS))}, not {fmt!r}")
    module, cls = TRIMMERS[fmt].split(":")
    return getattr(importlib.import_module(module), cls)(Path(path), params or {})


__all__ = ["REASONS", "TRIMMERS", "FormatTrimmer", "KeepPlan", "frequency_rule", "open_trimmer", "plan_keep"]
