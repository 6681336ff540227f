"""Trim a SentencePiece `.model` by editing the ModelProto (`proto.ModelProto`, built from
sentencepiece's own descriptor): kept pieces are copied unchanged, in order, so scores and
types survive; nothing goes through a conversion.

- Always kept: CONTROL, UNKNOWN, USER_DEFINED, UNUSED and BYTE (<0xNN>) pieces. UNUSED
  pieces still take part in BPE merges before being re-split, so dropping one could
  change segmentation; USER_DEFINED pieces are matched in text before the model.
- Unigram: the lowest- and highest-scored NORMAL pieces are pinned: SentencePiece scores
  unknown characters from the minimum and user-defined pieces from the maximum score of
  the NORMAL pieces, so both stay what they were.
- BPE: each kept piece keeps the pieces its own merge run builds (see `trim.bpe`).
- `trainer_spec.vocab_size` and the unk/bos/eos/pad ids are updated to the new ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schemas.errors import TokenizerFileError
from tokenizers_registry.formats.sentencepiece_model.loader import parse_model
from tokenizers_registry.formats.sentencepiece_model.proto import ModelProto
from tokenizers_registry.trim.bpe import scored_intermediates
from tokenizers_registry.trim.plan import FormatTrimmer

_P = ModelProto.SentencePiece
_ALWAYS = {_P.CONTROL: "special", _P.UNKNOWN: "unk", _P.USER_DEFINED: "user", _P.UNUSED: "pinned", _P.BYTE: "byte"}


class SentencePieceTrimmer(FormatTrimmer):
    fmt = "sentencepiece-model"

    def __init__(self, path: Path, params: dict | None = None):
        self.path = Path(path)
        self.model = parse_model(self.path.read_bytes(), self.path)
        mt = self.model.trainer_spec.model_type
        self.algorithm = {1: "unigram", 2: "bpe"}.get(mt)
        if self.algorithm is None:
            raise TokenizerFileError(f"{path}: trimming supports Unigram and BPE SentencePiece models (type {mt})")
        self.pieces = [(p.piece, p.score, p.type) for p in self.model.pieces]
        self.ids = {p: i for i, (p, _, _) in enumerate(self.pieces)}
        # the pieces BPE merges may produce (SentencePiece's pieces_ map)
        self.scores = {p: s for p, s, t in self.pieces if t in (_P.NORMAL, _P.USER_DEFINED, _P.UNUSED)}

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def token_text(self, token_id: int) -> str | None:
        return self.pieces[token_id][0] if 0 <= token_id < len(self.pieces) else None

    def id_of(self, token: str) -> int | None:
        return self.ids.get(token)

    def special_ids(self) -> set[int]:
        return {i for i, (_, _, t) in enumerate(self.pieces) if t == _P.CONTROL}

    def structural(self) -> dict[int, str]:
        out = {i: _ALWAYS[t] for i, (_, _, t) in enumerate(self.pieces) if t in _ALWAYS}
        if self.algorithm == "unigram":
            normal = [(s, i) for i, (_, s, t) in enumerate(self.pieces) if t == _P.NORMAL]
            if normal:
                out.setdefault(min(normal)[1], "pinned")
                out.setdefault(max(normal)[1], "pinned")
        return out

    def close(self, keep: set[int]) -> set[int]:
        if self.algorithm != "bpe":
            return set(keep)
        out = set(keep)
        for i in keep:
            piece, _, t = self.pieces[i]
            if t != _P.NORMAL or len(piece) < 2:
                continue
            for s in scored_intermediates(piece, self.scores) or ():
                out.add(self.ids[s])
        return out

    def n_merges(self, keep: set[int] | None = None) -> int | None:
        """BPE: pieces of >= 2 characters a merge can build (SentencePiece stores no merge list)."""
        if self.algorithm != "bpe":
            return None
        return sum(1 for i, (p, _, t) in enumerate(self.pieces)
                   if t == _P.NORMAL and len(p) >= 2 and (keep is None or i in keep))

    def write(self, keep: np.ndarray, out_dir: Path) -> tuple[Path, dict]:
        keep_list = [int(i) for i in keep]
        new_id = {o: n for n, o in enumerate(keep_list)}
        m = ModelProto()
        m.CopyFrom(self.model)
        del m.pieces[:]
        for o in keep_list:
            m.pieces.add().CopyFrom(self.model.pieces[o])
        ts = m.trainer_spec
        ts.vocab_size = len(keep_list)
        for field, piece_field in (("unk_id", "unk_piece"), ("bos_id", "bos_piece"), ("eos_id", "eos_piece"),
                                   ("pad_id", "pad_piece")):
            old = getattr(ts, field)
            if old >= 0:
                piece = getattr(ts, piece_field) or (self.pieces[old][0] if old < len(self.pieces) else None)
                setattr(ts, field, new_id.get(self.ids.get(piece, old), -1))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / self.path.name
        path.write_bytes(m.SerializeToString())
        return path, {}
