"""Trim a Mistral Tekken JSON (a rank-based byte-level BPE, see `tiktoken_ranks.trim.RankTrimmer`).

Ids 0..n_special-1 stay the special block (all kept); the kept ranks are renumbered 0..k-1
and `default_vocab_size` / `num_vocab_tokens` are updated, so mistral-common's Tekkenizer
loads the file with the same id layout.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from tokenizers_registry.formats.tekken_json.loader import read_tekken, special_names
from tokenizers_registry.formats.tiktoken_ranks.trim import RankTrimmer


class TekkenTrimmer(RankTrimmer):
    fmt = "tekken-json"

    def __init__(self, path: Path, params: dict | None = None):
        self.path = Path(path)
        f = read_tekken(self.path)
        self.doc, self.n_special, self.entries, self.ranks = f.doc, f.n_special, f.entries, f.ranks
        self.specials = {name: i for i, name in enumerate(special_names(self.doc, self.n_special))}
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
