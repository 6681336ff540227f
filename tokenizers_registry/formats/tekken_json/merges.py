"""Merges of a Tekken file: derived from the used ranks the loader's parser reads, split by its pattern."""

from __future__ import annotations

from pathlib import Path

from tokenizers_registry.formats.tekken_json.loader import read_tekken
from tokenizers_registry.merges import MergeList, rank_merge_list


def load_merges(path: Path, params: dict, name: str) -> MergeList:
    f = read_tekken(path)
    return rank_merge_list(name, "tekken-json", sorted(f.ranks, key=f.ranks.__getitem__), f.pattern)
