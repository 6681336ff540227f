"""Trim rank-based byte-level BPE files: tiktoken rank files and Mistral Tekken JSON.

The rank is both the id and the merge priority, so compacting the kept ranks in their
original order keeps every relative priority. The 256 single bytes are always kept (no
text becomes unencodable), and each kept token keeps the tokens tiktoken builds on the
way to it (`trim.bpe.rank_intermediates`).

- tiktoken: a new rank file (`base64 rank` per line, compacted ranks) plus loader params
  `{"pattern", "special_tokens"}` with the special ids compacted after the ranks.
  Placeholder ranks (Whisper's empty line) are dropped: no text can produce them.
- Tekken: ids 0..n_special-1 stay the special block (all kept); the kept ranks are
  renumbered 0..k-1 and `default_vocab_size` / `num_vocab_tokens` are updated, so
  mistral-common's Tekkenizer loads the file with the same id layout.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import numpy as np

from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.formats.tiktoken_ranks import parse_rank_file
from tokenizers_registry.trim.base import FormatTrimmer
from tokenizers_registry.trim.bpe import rank_intermediates


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
        self.pattern = params.get("pattern")
        if not self.pattern:
            raise ConfigError(f"{path}: tiktoken rank files need the loader parameter 'pattern'")
        self.ranks, placeholders = parse_rank_file(self.path)
        self.specials = {str(k): int(v) for k, v in (params.get("special_tokens") or {}).items()}
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


class TekkenTrimmer(RankTrimmer):
    fmt = "tekken-json"

    def __init__(self, path: Path, params: dict | None = None):
        from tokenizers_registry.formats.tekken_json import _special_names

        self.path = Path(path)
        self.doc = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(self.doc, dict) or "config" not in self.doc or "vocab" not in self.doc:
            raise TokenizerFileError(f"{path}: not a Tekken file (needs 'config' and 'vocab')")
        cfg = self.doc["config"]
        self.n_special = int(cfg["default_num_special_tokens"])
        n_inner = int(cfg["default_vocab_size"]) - self.n_special
        self.entries = self.doc["vocab"][:n_inner]
        self.ranks = {}
        for i, e in enumerate(self.entries):
            if e["rank"] != i:
                raise TokenizerFileError(f"{path}: vocab entry {i} has rank {e['rank']}")
            self.ranks[base64.b64decode(e["token_bytes"])] = i + self.n_special
        self.specials = {name: i for i, name in enumerate(_special_names(self.doc, self.n_special))}
        self._index()

    def write(self, keep: np.ndarray, out_dir: Path) -> tuple[Path, dict]:
        keep_list = [int(i) for i in keep]
        if keep_list[:self.n_special] != list(range(self.n_special)):
            raise AssertionError("Tekken trims must keep the whole special-token block")
        doc = copy.deepcopy(self.doc)
        vocab = []
        for n, o in enumerate(keep_list[self.n_special:]):
            e = dict(self.entries[o - self.n_special])
            e["rank"] = n
            vocab.append(e)
        doc["vocab"] = vocab
        doc["config"]["default_vocab_size"] = self.n_special + len(vocab)
        doc["config"]["num_vocab_tokens"] = len(vocab)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / self.path.name
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path, {}
