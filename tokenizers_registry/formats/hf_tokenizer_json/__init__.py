"""Hugging Face `tokenizer.json` files (BPE, Unigram, WordPiece, WordLevel), run on `tokenizers`.

`loader.py` parses (`read_document`, `parse_merges`) and loads them, `trim.py` trims BPE, Unigram
and WordPiece models by editing the JSON, `merges.py` gives a BPE's merges and its exact
pre-tokenizer. Imports `tokenizers_registry` only.
"""
