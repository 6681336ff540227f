"""tiktoken rank files (GPT-2, cl100k, o200k, Qwen, Whisper): one `base64(token bytes) rank` per line.

`loader.py` parses and loads them on tiktoken, `trim.py` trims them (its `RankTrimmer` serves
every rank-based format), `merges.py` derives their merges. Imports `tokenizers_registry` only.
"""
