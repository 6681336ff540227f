"""Merges of CLIP's merges file (as the loader reads them) and the original SimpleTokenizer's
text handling: html-unescaped, whitespace-normalised, lower-cased, regex split, byte-mapped,
`</w>` on each word's last symbol."""

from __future__ import annotations

from pathlib import Path

from tokenizers_registry.formats.clip_merges.loader import n_merges_param, read_merges
from tokenizers_registry.merges import MergeList, Pretokenizer, map_bytes

# SimpleTokenizer's own pattern: the loader's, plus the two special tokens matched whole.
SIMPLE_TOKENIZER_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


class ClipPretokenizer(Pretokenizer):
    """CLIP: whitespace-normalised, lower-cased, regex split, byte-mapped, </w> on the last symbol."""

    end_of_word = True

    def __init__(self):
        import regex

        self._re = regex.compile(SIMPLE_TOKENIZER_PATTERN, regex.IGNORECASE)

    def words(self, text: str) -> list[str]:
        import html

        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        return [map_bytes(w.encode("utf-8")) for w in self._re.findall(text)]


def load_merges(path: Path, params: dict, name: str) -> MergeList:
    merges = read_merges(path, n_merges_param(params))
    return MergeList(name, "clip-merges", merges, ClipPretokenizer(), n_candidates=len(merges))
