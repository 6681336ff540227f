"""Superword BPE in the style of SuperBPE (Liu et al. 2025), saved as an HF `tokenizer.json`.

Stage 1 learns an ordinary byte-level BPE (GPT-2 regex pre-tokenization, so no token
crosses whitespace) up to the transition vocabulary size. Stage 2 continues learning
merges over whole lines with no pre-tokenization, so merges may join words: each line
is encoded with the stage-1 tokenizer, every stage-1 token becomes one private-use
character, and the HF BPE trainer learns merges over those character strings. The
merges are translated back to byte-level strings and appended after the stage-1 merges.

The artifact is a plain HF BPE `tokenizer.json` whose pre-tokenizer is
`ByteLevel(use_regex=False)` (bytes to characters, no splitting): the registry's
`hf-tokenizer-json` loader and the encode job use it like any other tokenizer. At
encode time merges apply in rank order over the whole text, stage-1 merges first;
they were learned inside pre-tokens, so they reproduce the stage-1 segmentation except
at rare pre-token boundaries (e.g. runs of spaces), as in SuperBPE's own release.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from schemas.errors import ConfigError

_PLANE_15 = 0xF0000  # supplementary private use areas: never in the byte-level alphabet
_PLANE_SIZE = 65534


def _symbol(i: int) -> str:
    if i < _PLANE_SIZE:
        return chr(_PLANE_15 + i)
    if i < 2 * _PLANE_SIZE:
        return chr(0x100000 + i - _PLANE_SIZE)
    raise ConfigError(f"superbpe supports stage-1 vocabularies below {2 * _PLANE_SIZE}, not {i}")


def _unsymbol(c: str) -> int:
    o = ord(c)
    return o - _PLANE_15 if o < 0x100000 else o - 0x100000 + _PLANE_SIZE


def train_superbpe(texts: Sequence[str], vocab_size: int, transition_vocab: int, path: str | Path,
                   *, max_token_chars: int | None = None) -> Path:
    """Train a superword BPE with `transition_vocab` stage-1 tokens and `vocab_size` in all.

    `max_token_chars` bounds stage-2 tokens (in stage-1 tokens); None means no bound.
    Writes `tokenizer.json` to `path` and returns it.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from tokenizers_registry.training import train_hf_variant

    if not 0 < transition_vocab <= vocab_size:
        raise ConfigError(f"superbpe transition {transition_vocab} must be in (0, vocab size {vocab_size}]")
    path = Path(path)
    stage1_path = train_hf_variant("bpe", texts, transition_vocab, path.with_name(path.name + ".stage1"),
                                   "bytelevel")
    stage1 = Tokenizer.from_file(str(stage1_path))
    doc = json.loads(stage1.to_str())
    stage1_path.unlink()
    vocab: dict[str, int] = doc["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in doc["model"]["merges"]]
    by_id = {i: t for t, i in vocab.items()}
    n_new = vocab_size - max(len(vocab), stage1.get_vocab_size(with_added_tokens=True))
    if n_new > 0:
        lines = ["".join(_symbol(i) for i in e.ids) for e in stage1.encode_batch(list(texts), add_special_tokens=False)]
        alphabet = sorted({c for line in lines for c in line})
        tok2 = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + n_new, initial_alphabet=alphabet,
                                      special_tokens=[], show_progress=False, limit_alphabet=len(alphabet),
                                      max_token_length=max_token_chars)
        tok2.train_from_iterator(lines, trainer=trainer, length=len(lines))
        doc2 = json.loads(tok2.to_str())

        def to_bytes_str(sym: str) -> str:
            return "".join(by_id[_unsymbol(c)] for c in sym)

        next_id = max(vocab.values()) + 1
        for m in doc2["model"]["merges"]:
            a, b = m.split(" ") if isinstance(m, str) else m
            a, b = to_bytes_str(a), to_bytes_str(b)
            merged = a + b
            if merged not in vocab:  # a superword can equal a stage-1 token reached another way
                vocab[merged] = next_id
                next_id += 1
            merges.append((a, b))
    doc["model"]["vocab"] = vocab
    doc["model"]["merges"] = [list(m) for m in merges]
    doc["pre_tokenizer"] = json.loads(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).__getstate__())
    doc["decoder"] = json.loads(decoders.ByteLevel().__getstate__())
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    Tokenizer.from_str(text)  # the assembled file must load, or the cell fails here
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
