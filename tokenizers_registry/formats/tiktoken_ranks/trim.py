"""Trim tiktoken rank files (and, through `RankTrimmer`, every rank-based byte-level BPE).

The rank is both the id and the merge priority, so compacting the kept ranks in their
original order keeps every relative priority. The 256 single bytes are always kept (no
text becomes unencodable), and each kept token keeps the tokens tiktoken builds on the
way to it (`trim.bpe.rank_intermediates`).

The trimmed file is a new rank file (`base64 rank` per line, compacted ranks) plus loader
params `{"pattern", "special_tokens"}` with the special ids compacted after the ranks.
Placeholder ranks (Whisper's empty line) are dropped: no text can produce them.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from tokenizers_registry.formats.tiktoken_ranks.loader import (
    parse_rank_file,
    pattern_param,
    special_tokens_param,
)
from tokenizers_registry.trim.bpe import rank_intermediates
from tokenizers_registry.trim.plan import FormatTrimmer


class RankTrimmer(FormatTrimmer):
    """Shared part: `self.ranks` maps token bytes to id; `self.specials` maps name to id."""

    algorithm = "bpe"
    ranks: dict[bytes, int]
    specials: dict[str, int]

    def _index(self, placeholders: list[int] = ()) -> None:
        self.by_id = {i: b for b, i in self.ranks.items()}
        # placeholder ranks are ids without a token: part of the id space, never kept
        self._vocab_size = max([*self.ranks.values(), *self.specials.values(), *placeholders]) + 1
        self._special_by_id = {i: s for s, i in self.specials.items()}

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_text(self, token_id: int) -> str | None:
        if token_id in self._special_by_id:
            return self._special_by_id[token_id]
        b = self.by_id.get(token_id)
        return None if b is None else b.decode("utf-8", errors="backslashreplace")

    def id_of(self, token: str) -> int | None:
        if token in self.specials:
            return self.specials[token]
        return self.ranks.get(token.encode("utf-8"))

    def special_ids(self) -> set[int]:
        return set(self.specials.values())

    def structural(self) -> dict[int, str]:
        return {self.ranks[bytes([b])]: "byte" for b in range(256)}

    def close(self, keep: set[int]) -> set[int]:
        out = set(keep)
        for i in keep:
            b = self.by_id.get(i)
            if b is None or len(b) < 2:
                continue
            for part in rank_intermediates(b, self.ranks) or ():
                out.add(self.ranks[part])
        return out

    def n_merges(self, keep: set[int] | None = None) -> int | None:
        """Multi-byte tokens (each is one merge of a rank BPE)."""
        return sum(1 for b, i in self.ranks.items() if len(b) >= 2 and (keep is None or i in keep))


class TiktokenTrimmer(RankTrimmer):
    fmt = "tiktoken-ranks"

    def __init__(self, path: Path, params: dict | None = None):
        params = dict(params or {})
        self.path = Path(path)
        self.pattern = pattern_param(self.path, params)
        self.ranks, placeholders = parse_rank_file(self.path)
        self.specials = special_tokens_param(params)
        self._index(placeholders)

    def write(self, keep: np.ndarray, out_dir: Path) -> tuple[Path, dict]:
        new_id = {int(o): n for n, o in enumerate(keep)}
        lines = [base64.b64encode(self.by_id[o]) + b" " + str(n).encode()
                 for o, n in new_id.items() if o in self.by_id]
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / self.path.name
        path.write_bytes(b"\n".join(lines) + b"\n")
        specials = {s: new_id[i] for s, i in self.specials.items()}
        params = {"pattern": self.pattern}
        if specials:
            params["special_tokens"] = specials
        return path, params
