"""Merges of a SentencePiece BPE model (derived from the pieces the loader parses) and the
pre-tokenizer that cuts text where SentencePiece's trainer would never merge."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from schemas.errors import ConfigError
from tokenizers_registry.formats.sentencepiece_model.loader import (
    ALGORITHMS,
    derive_bpe_merges,
    parse_model,
)
from tokenizers_registry.merges import MergeList, Pretokenizer

SP_SPACE = "\u2581"


@lru_cache(maxsize=65536)
def _sp_class(ch: str) -> str:
    """Character class SentencePiece's trainer refuses to merge across (script, digit)."""
    if ch.isdigit():
        return "digit:" + ch  # split_digits: every digit is its own word
    if ch == SP_SPACE:
        return "space"
    cat = unicodedata.category(ch)
    if cat[0] in "LM":
        import regex

        for script in ("Han", "Hiragana", "Katakana"):
            if regex.match(rf"\p{{Script={script}}}", ch):
                return "Han"  # SentencePiece treats these as one script
        name = unicodedata.name(ch, "")
        return name.split(" ")[0] if name else "Other"
    return "Common"


class SentencePiecePretokenizer(Pretokenizer):
    """SentencePiece BPE: identity/NFKC normaliser, dummy prefix, spaces as U+2581.

    Words start at each U+2581 and are cut where the trainer would not merge
    (script changes, digits when split_digits), so competitor pairs are ones the
    trainer could have chosen.
    """

    def __init__(self, add_dummy_prefix: bool = True, nfkc: bool = False, split_digits: bool = True,
                 split_by_script: bool = True):
        self.add_dummy_prefix, self.nfkc = add_dummy_prefix, nfkc
        self.split_digits, self.split_by_script = split_digits, split_by_script

    def normalize(self, text: str) -> str:
        if self.nfkc:
            text = unicodedata.normalize("NFKC", text)
        text = text.replace(" ", SP_SPACE)
        return SP_SPACE + text if self.add_dummy_prefix and text else text

    def words(self, text: str) -> list[str]:
        text = self.normalize(text)
        out: list[str] = []
        start, prev = 0, None
        for i, ch in enumerate(text):
            cls = _sp_class(ch) if (self.split_by_script or self.split_digits) else "x"
            if not self.split_by_script and not cls.startswith("digit"):
                cls = "x"
            if i > start and (ch == SP_SPACE or cls.startswith("digit") or
                              (prev != cls and prev != "space")):
                out.append(text[start:i])
                start = i
            prev = cls
        if start < len(text):
            out.append(text[start:])
        return out


def load_merges(path: Path, params: dict, name: str) -> MergeList:
    m = parse_model(path.read_bytes(), path)
    if ALGORITHMS.get(m.trainer_spec.model_type) != "bpe":
        raise ConfigError(f"{path}: SentencePiece model is not BPE; no merges to infer from")
    merges, skipped, n, n_dropped = derive_bpe_merges([(p.piece, p.score, p.type) for p in m.pieces])
    ns = m.normalizer_spec
    pre = SentencePiecePretokenizer(add_dummy_prefix=ns.add_dummy_prefix, nfkc="nfkc" in ns.name,
                                    split_digits=m.trainer_spec.split_digits,
                                    split_by_script=m.trainer_spec.split_by_unicode_script)
    return MergeList(name, "sentencepiece-model", merges, pre, n_candidates=n, skipped=skipped,
                     n_dropped_manual=n_dropped)
