"""CLIP's `bpe_simple_vocab_16e6.txt.gz` (OpenAI CLIP / open_clip SimpleTokenizer): merges only.

`loader.py` reads the merges (`read_merges`) and builds the tokenizer on `tokenizers`,
`merges.py` gives the merges with SimpleTokenizer's pre-tokenizer. Not trimmable (no trimmer).
Imports `tokenizers_registry` only.
"""
