"""Merges of a Hugging Face BPE `tokenizer.json` (as the loader parses them), with the library's
own normaliser and pre-tokenizer."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

from schemas.errors import ConfigError
from tokenizers_registry.formats.hf_tokenizer_json.loader import parse_merges, read_document
from tokenizers_registry.merges import MergeList, Pretokenizer


class HFPretokenizer(Pretokenizer):
    """HF tokenizer.json: the library's own normaliser and pre-tokenizer."""

    def __init__(self, text: str):
        self._tok = HFTokenizer.from_str(text)

    def words(self, text: str) -> list[str]:
        if self._tok.normalizer is not None:
            text = self._tok.normalizer.normalize_str(text)
        if self._tok.pre_tokenizer is None:
            return [text] if text else []
        return [w for w, _ in self._tok.pre_tokenizer.pre_tokenize_str(text)]


def load_merges(path: Path, params: dict, name: str) -> MergeList:
    text, doc = read_document(path)
    model = doc["model"]
    if model.get("type") != "BPE":
        raise ConfigError(f"{path}: not a BPE tokenizer (model type {model.get('type')!r}); no merges to infer from")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise ConfigError(f"{path}: BPE with subword prefix/suffix is not supported by mixture inference")
    merges = parse_merges(model.get("merges") or [])
    return MergeList(name, "hf-tokenizer-json", merges, HFPretokenizer(text), n_candidates=len(merges))
