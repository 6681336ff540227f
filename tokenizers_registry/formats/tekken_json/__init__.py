"""Mistral Tekken JSON: a byte-level rank BPE with a special-token block before the ranks.

`loader.py` parses (`read_tekken`) and loads it on the tiktoken loader's `RankBPETokenizer`,
`trim.py` trims it and `merges.py` derives its merges. Imports `tokenizers_registry` only.
"""
