"""Test helpers that build small real tokenizers from shared data."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from conftest import shared_path


def english_lines(n: int = 300) -> list[str]:
    """The first `n` English FLORES-200 dev sentences."""
    table = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["text"],
                          filters=[("lang", "=", "eng_Latn"), ("split", "=", "dev")])
    return table["text"].to_pylist()[:n]


def make_english_only_bpe(path: str | Path, n_lines: int = 300, vocab_size: int = 500) -> Path:
    """Write a character-level BPE `tokenizer.json` trained on English lines, whose
    `unk_token` ("[UNK]") is not in its vocab, and return its path.

    `tokenizers` raises a plain `Exception("Unk token `[UNK]` not found in the vocabulary")`
    when such a tokenizer meets a character it has never seen (e.g. any Chinese text):
    the per-cell failure the encode job must record.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False)
    tok.train_from_iterator(english_lines(n_lines), trainer=trainer)
    assert tok.token_to_id("[UNK]") is None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path
