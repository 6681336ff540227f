"""Train tokenizers with the libraries' own trainers and save them as registry artifacts.

HF `tokenizers` (BPE, Unigram, WordPiece) writes `tokenizer.json`; SentencePiece
(BPE, Unigram) writes a `.model` proto; the superword BPE (`tokenizers_registry.superbpe`)
writes an HF `tokenizer.json`. Training is single-threaded where the library allows it so
the same input gives the same bytes, hence the same tokenizer id. Two HF trainers are not
reproducible byte for byte: Unigram sums its EM scores in thread order and orders equal
scores arbitrarily (removed here by rounding the scores and sorting ties) and WordPiece breaks ties between equally
frequent pairs in hash order (its vocabulary can differ between runs).

`train_grid_cell` is the one entry point the training grid uses: an algorithm label
(`ALGORITHMS`), a pre-tokenizer variant (`PRE_TOKENIZERS`) and, for the superword BPE,
a transition vocabulary size.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from schemas.errors import ConfigError

HF_ALGORITHMS = ("bpe", "unigram", "wordpiece")
SP_ALGORITHMS = ("bpe", "unigram")

# Grid algorithm label -> (library, algorithm).
ALGORITHMS = {
    "hf-bpe": ("hf", "bpe"),
    "hf-unigram": ("hf", "unigram"),
    "hf-wordpiece": ("hf", "wordpiece"),
    "sp-bpe": ("sp", "bpe"),
    "sp-unigram": ("sp", "unigram"),
    "superbpe": ("superbpe", "bpe"),
}

# Pre-tokenizer variants each algorithm supports; the first is its default.
PRE_TOKENIZERS = {
    "hf-bpe": ("bytelevel", "whitespace", "metaspace"),
    "hf-unigram": ("metaspace", "bytelevel"),
    "hf-wordpiece": ("whitespace",),
    "sp-bpe": ("whitespace", "none"),  # SentencePiece split_by_whitespace true / false
    "sp-unigram": ("whitespace", "none"),
    "superbpe": ("bytelevel",),  # stage 1 only; stage 2 has none by construction
}

ARTIFACT_NAMES = {"hf": "tokenizer.json", "sp": "tokenizer.model", "superbpe": "tokenizer.json"}

UNIGRAM_SCORE_DIGITS = 9  # rounding that removes the HF Unigram trainer's thread-order float noise


def _hf_parts(algorithm: str, pre_tokenizer: str, vocab_size: int):
    """(tokenizer, trainer) for an HF algorithm and pre-tokenizer variant."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    byte_level = pre_tokenizer == "bytelevel"
    alphabet = pre_tokenizers.ByteLevel.alphabet() if byte_level else []
    if algorithm == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None if byte_level else "[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=alphabet, show_progress=False)
    elif algorithm == "unigram":
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<unk>"], unk_token="<unk>",
                                          initial_alphabet=alphabet, show_progress=False)
    elif algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False)
    else:
        raise ConfigError(f"unknown HF algorithm {algorithm!r}; known: {', '.join(HF_ALGORITHMS)}")
    tok.normalizer = normalizers.NFC()
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    elif pre_tokenizer == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
    elif pre_tokenizer == "whitespace":
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()
    else:
        raise ConfigError(f"unknown HF pre-tokenizer variant {pre_tokenizer!r}")
    return tok, trainer


def _canonical_unigram(text: str) -> str:
    """Round the scores and order equal-score pieces by text: the trainer's thread-order float
    noise and tie order then no longer change the artifact. Special tokens keep their ids."""
    doc = json.loads(text)
    special = {t["id"] for t in doc.get("added_tokens", [])}
    vocab = [[p, round(s, UNIGRAM_SCORE_DIGITS)] for p, s in doc["model"]["vocab"]]
    keep = [v for i, v in enumerate(vocab) if i in special]
    rest = sorted((v for i, v in enumerate(vocab) if i not in special), key=lambda v: (-v[1], v[0]))
    # The trainer appends required characters it did not keep, in hash order, with scores
    # falling by a fixed step (then flat): give that run's scores to its characters in sorted order.
    tail = len(rest)
    while tail > 1 and len(rest[tail - 1][0]) == 1 and len(rest[tail - 2][0]) == 1 and \
            min(abs(rest[tail - 2][1] - rest[tail - 1][1] - d) for d in (0.0, 1e-4)) < 1e-7:
        tail -= 1
    if len(rest) - tail > 1:
        scores = [v[1] for v in rest[tail:]]
        rest[tail:] = [[p, sc] for (p, _), sc in zip(sorted(rest[tail:]), scores, strict=True)]
    if any(i != n for n, i in enumerate(sorted(special))):
        raise ValueError("unigram special tokens are expected at the first ids")
    doc["model"]["vocab"] = keep + rest
    return json.dumps(doc, ensure_ascii=False, indent=None, separators=(",", ":"))


def train_hf_variant(algorithm: str, texts: Sequence[str], vocab_size: int, path: str | Path,
                     pre_tokenizer: str) -> Path:
    """Train an HF tokenizer with an explicit pre-tokenizer variant; write `tokenizer.json`."""
    tok, trainer = _hf_parts(algorithm, pre_tokenizer, vocab_size)
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if algorithm == "unigram":
        path.write_text(_canonical_unigram(tok.to_str()), encoding="utf-8")
    else:
        tok.save(str(path))
    return path


def train_hf(algorithm: str, texts: Sequence[str], vocab_size: int, path: str | Path,
             *, byte_level: bool = True) -> Path:
    """Train an HF tokenizer on `texts` and write `tokenizer.json` to `path`.

    Pre-tokenization: byte-level BPE (or whitespace BPE with `byte_level=False`),
    Metaspace Unigram, whitespace WordPiece.
    """
    if algorithm not in HF_ALGORITHMS:
        raise ConfigError(f"unknown HF algorithm {algorithm!r}; known: {', '.join(HF_ALGORITHMS)}")
    variant = {"bpe": "bytelevel" if byte_level else "whitespace", "unigram": "metaspace",
               "wordpiece": "whitespace"}[algorithm]
    return train_hf_variant(algorithm, texts, vocab_size, path, variant)


def train_sentencepiece(algorithm: str, texts: Iterable[str], vocab_size: int, path: str | Path,
                        *, character_coverage: float = 0.9995, byte_fallback: bool = True,
                        split_by_whitespace: bool = True) -> Path:
    """Train a SentencePiece model on `texts` and write the `.model` proto to `path`."""
    import sentencepiece as spm

    if algorithm not in SP_ALGORITHMS:
        raise ConfigError(f"unknown SentencePiece algorithm {algorithm!r}; known: {', '.join(SP_ALGORITHMS)}")
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=buf, vocab_size=vocab_size, model_type=algorithm,
        character_coverage=character_coverage, byte_fallback=byte_fallback, num_threads=1,
        hard_vocab_limit=False, minloglevel=2, max_sentence_length=1 << 16,
        split_by_whitespace=split_by_whitespace,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def check_variant(algorithm: str, pre_tokenizer: str) -> None:
    """ConfigError unless `algorithm` is a grid algorithm label supporting `pre_tokenizer`."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    if pre_tokenizer not in PRE_TOKENIZERS[algorithm]:
        raise ConfigError(f"algorithm {algorithm} has no pre-tokenizer variant {pre_tokenizer!r}; "
                          f"it supports {', '.join(PRE_TOKENIZERS[algorithm])}")
