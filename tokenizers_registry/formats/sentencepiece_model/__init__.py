"""SentencePiece `.model` protos (Unigram, BPE, word, char), read with protobuf from sentencepiece's own
descriptor (`proto.py`: its message classes in a private descriptor pool).

`loader.py` parses (`parse_model`) and loads them, `trim.py` trims Unigram and BPE models,
`merges.py` derives a BPE model's merges and its pre-tokenizer. Imports `tokenizers_registry` only.
"""
