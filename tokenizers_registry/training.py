"""Train tokenizers with the libraries' own trainers and save them as registry artifacts.

HF `tokenizers` (BPE, Unigram, WordPiece) writes `tokenizer.json`; SentencePiece
(BPE, Unigram) writes a `.model` proto. Training is single-threaded where the
library allows it so the same input gives the same bytes, hence the same tokenizer id.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers_registry.base import ConfigError

HF_ALGORITHMS = ("bpe", "unigram", "wordpiece")
SP_ALGORITHMS = ("bpe", "unigram")


def train_hf(algorithm: str, texts: Sequence[str], vocab_size: int, path: str | Path,
             *, byte_level: bool = True) -> Path:
    """Train an HF tokenizer on `texts` and write `tokenizer.json` to `path`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if algorithm == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None if byte_level else "[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if byte_level else [],
                                      show_progress=False)
    elif algorithm == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<unk>"], unk_token="<unk>",
                                          show_progress=False)
        byte_level = False
    elif algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False)
        byte_level = False
    else:
        raise ConfigError(f"unknown HF algorithm {algorithm!r}; known: {', '.join(HF_ALGORITHMS)}")
    tok.normalizer = normalizers.NFC()
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif algorithm == "unigram":
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def train_sentencepiece(algorithm: str, texts: Iterable[str], vocab_size: int, path: str | Path,
                        *, character_coverage: float = 0.9995, byte_fallback: bool = True) -> Path:
    """Train a SentencePiece model on `texts` and write the `.model` proto to `path`."""
    import sentencepiece as spm

    if algorithm not in SP_ALGORITHMS:
        raise ConfigError(f"unknown SentencePiece algorithm {algorithm!r}; known: {', '.join(SP_ALGORITHMS)}")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size, model_type=algorithm,
        character_coverage=character_coverage, byte_fallback=byte_fallback, num_threads=1,
        hard_vocab_limit=False, minloglevel=2, max_sentence_length=1 << 16,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path
