"""Loader of SentencePiece `.model` protos (Unigram, BPE, word, char), loaded from bytes.

- Encoding adds no BOS/EOS; batches use SentencePiece's own threads.
- `special_ids` are the CONTROL pieces (<s>, </s>, ...); the UNKNOWN piece is `unk_id`,
  not special, because an unknown token stands for text and counts as a token.
  USER_DEFINED pieces are matched in text like normal pieces, so they are not special.
- starts come from SentencePiece's offset mapping, which refers to the original text
  (before normalization); byte-fallback pieces of one character share its start.
- merges() (BPE only) are derived from the pieces: see `derive_bpe_merges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from schemas.errors import TokenizerFileError
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats._common import encode_threads, monotone
from tokenizers_registry.formats.sentencepiece_model.proto import ModelProto
from tokenizers_registry.merges import derive_from_ranks

ALGORITHMS = {1: "unigram", 2: "bpe", 3: "wordlevel", 4: "char"}

_Piece = ModelProto.SentencePiece


def parse_model(data: bytes, path: Path) -> ModelProto:
    """The ModelProto of a `.model` file's bytes; a model without pieces is refused."""
    model = ModelProto()
    model.ParseFromString(data)
    if not model.pieces:
        raise TokenizerFileError(f"{path}: SentencePiece model has no pieces")
    return model


def derive_bpe_merges(pieces: Sequence[tuple[str, float, int]]) -> tuple[list[tuple[str, str]], list[str], int, int]:
    """Ordered merges of a SentencePiece BPE model from its (piece, score, type) list.

    A SentencePiece BPE model stores pieces with score = -(merge step), not merges. The
    alphabet is the single-character NORMAL pieces; the merges come from the longer NORMAL
    pieces by score descending (ties by id), each derived as `derive_from_ranks` does.
    Pieces scored far outside the trainer's range 0, -1, -2, ... were added by hand (e.g.
    mistral_v1's whitespace runs at -1e9) and never came from a merge: they are dropped.
    Returns (merges, pieces that did not derive, candidate pieces, dropped manual pieces).
    """
    normal = [(i, p, s) for i, (p, s, t) in enumerate(pieces) if t == _Piece.NORMAL]
    bound = 10.0 * len(pieces)
    kept = sorted((x for x in normal if abs(x[2]) <= bound), key=lambda x: (-x[2], x[0]))
    n_dropped = sum(1 for _, p, s in normal if abs(s) > bound and len(p) > 1)
    chars = [p for _, p, _ in normal if len(p) == 1]  # the alphabet, whatever their score
    merges, skipped, n = derive_from_ranks([list(p) for p in chars] + [list(p) for _, p, _ in kept if len(p) > 1])
    return merges, skipped, n, n_dropped


class SentencePieceTokenizer(Tokenizer):
    format = "sentencepiece-model"

    def __init__(self, proto_bytes: bytes, params: dict, path: Path):
        model = parse_model(proto_bytes, path)
        self._sp = spm.SentencePieceProcessor(model_proto=proto_bytes)
        self._threads = encode_threads(params)
        self.algorithm = ALGORITHMS.get(model.trainer_spec.model_type, "unigram")
        ns = model.normalizer_spec
        self.pre_tokenizer = (
            f"sentencepiece(normalizer={ns.name or 'identity'}, add_dummy_prefix={ns.add_dummy_prefix}, "
            f"remove_extra_whitespaces={ns.remove_extra_whitespaces}, "
            f"split_by_whitespace={model.trainer_spec.split_by_whitespace}, "
            f"split_digits={model.trainer_spec.split_digits}, byte_fallback={model.trainer_spec.byte_fallback})")
        self._pieces = [(p.piece, p.score, p.type) for p in model.pieces]
        self._special = frozenset(i for i, (_, _, t) in enumerate(self._pieces) if t == _Piece.CONTROL)
        unk = [i for i, (_, _, t) in enumerate(self._pieces) if t == _Piece.UNKNOWN]
        self._unk = unk[0] if unk else None
        self._offset_mode = self._detect_offset_mode()
        self._merges: list[tuple[str, str]] | None = None

    def _detect_offset_mode(self) -> str:
        """'offset_mapping' (newer sentencepiece: char offsets) or 'immutable_proto' (bytes)."""
        try:
            self._sp.encode(["a"], return_type="offset_mapping")
            return "offset_mapping"
        except (TypeError, ValueError):
            return "immutable_proto"

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special

    @property
    def unk_id(self) -> int | None:
        return self._unk

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._sp.encode(list(texts), add_bos=False, add_eos=False, num_threads=self._threads)

    def encode_batch_with_starts(self, texts: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        texts = list(texts)
        if self._offset_mode == "offset_mapping":
            out = self._sp.encode(texts, return_type="offset_mapping", add_bos=False, add_eos=False,
                                  num_threads=self._threads)
            return [(r["ids"], monotone([s for s, _ in r["offsets"]])) for r in out]
        return [self._from_proto(t, self._sp.encode(t, out_type="immutable_proto", add_bos=False, add_eos=False))
                for t in texts]

    @staticmethod
    def _from_proto(text: str, proto) -> tuple[list[int], list[int]]:
        """(ids, char starts) from a proto whose pieces carry byte offsets `begin`."""
        ids = [p.id for p in proto.pieces]
        begins = np.fromiter((p.begin for p in proto.pieces), dtype=np.int64, count=len(ids))
        if text.isascii() or not len(ids):
            return ids, monotone(begins.tolist())
        b = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        char_of_byte = np.append(np.cumsum((b & 0xC0) != 0x80) - 1, len(text))
        return ids, monotone(char_of_byte[np.minimum(begins, len(b))].tolist())

    def vocab(self) -> dict[str | bytes, int]:
        return {p: i for i, (p, _, _) in enumerate(self._pieces)}

    def merges(self) -> list[tuple[str, str]] | None:
        if self.algorithm != "bpe":
            return None
        if self._merges is None:
            self._merges = derive_bpe_merges(self._pieces)[0]
        return list(self._merges)


def load(path: Path, params: dict) -> SentencePieceTokenizer:
    return SentencePieceTokenizer(path.read_bytes(), params, path)
