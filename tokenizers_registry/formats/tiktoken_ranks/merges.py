"""Merges of a tiktoken rank file: derived from the ranks the loader's parser reads."""

from __future__ import annotations

from pathlib import Path

from tokenizers_registry.formats.tiktoken_ranks.loader import parse_rank_file, pattern_param
from tokenizers_registry.merges import MergeList, rank_merge_list


def load_merges(path: Path, params: dict, name: str) -> MergeList:
    pattern = pattern_param(path, params)
    ranks, _ = parse_rank_file(path)  # placeholder ranks have no token, hence no merge
    return rank_merge_list(name, "tiktoken-ranks", sorted(ranks, key=ranks.__getitem__), pattern)
