"""Loader of Mistral Tekken JSON: `config` {pattern, default_vocab_size, default_num_special_tokens, ...}
and `vocab` [{rank, token_bytes (base64), token_str}], with the semantics of mistral-common's
`Tekkenizer`:

- ids 0 .. num_special-1 are special tokens (`special_tokens` in the file, else Mistral's
  deprecated list, padded with `<SPECIAL_i>` fillers); all are in `special_ids`;
- only the first `default_vocab_size - num_special` ranks are used, and id = rank + num_special;
- vocab_size = default_vocab_size.

Encoding is tiktoken's ordinary encoding (specials are never produced from text), so
`unk_id` is None: the byte-level vocabulary covers every input.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import TokenizerFileError
from tokenizers_registry.formats._common import encode_threads
from tokenizers_registry.formats.tiktoken_ranks.loader import RankBPETokenizer


@dataclass
class TekkenFile:
    """A checked Tekken file: `ranks` maps the used ranks' token bytes to their ids (rank + n_special)."""

    doc: dict
    pattern: str
    vocab_size: int
    n_special: int
    ranks: dict[bytes, int]

    @property
    def entries(self) -> list[dict]:
        """The used `vocab` entries, in rank order."""
        return self.doc["vocab"][:self.vocab_size - self.n_special]


def read_tekken(path: Path) -> TekkenFile:
    """Parse and check a Tekken file; errors name the file and what breaks the layout."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "config" not in doc or "vocab" not in doc:
        raise TokenizerFileError(f"{path}: not a Tekken file (needs 'config' and 'vocab')")
    config = doc["config"]
    vocab_size = int(config["default_vocab_size"])
    n_special = int(config["default_num_special_tokens"])
    n_inner = vocab_size - n_special
    entries = doc["vocab"]
    if n_inner <= 256 or len(entries) < n_inner:
        raise TokenizerFileError(
            f"{path}: default_vocab_size {vocab_size} - {n_special} specials needs {n_inner} ranks "
            f"(at least 257); the file has {len(entries)}")
    if "special_tokens" in doc and len(doc["special_tokens"]) > n_special:
        raise TokenizerFileError(f"{path}: {len(doc['special_tokens'])} special tokens but only {n_special} slots")
    ranks: dict[bytes, int] = {}
    for i, e in enumerate(entries[:n_inner]):
        token = base64.b64decode(e["token_bytes"], validate=True)
        if e["rank"] != i or (i < 256 and token != bytes([i])) or token in ranks:
            raise TokenizerFileError(f"{path}: vocab entry {i} (rank {e['rank']}, {token!r}) breaks the Tekken layout")
        ranks[token] = i + n_special  # shifting every rank keeps the merge order
    return TekkenFile(doc, config["pattern"], vocab_size, n_special, ranks)


def special_names(doc: dict, n_special: int) -> list[str]:
    """Names of ids 0..n_special-1, for vocab(); ids do not depend on them."""
    listed = doc.get("special_tokens")
    if listed is None:
        try:  # the names mistral-common gives files without a special_tokens list
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer

            listed = [{"rank": t["rank"], "token_str": getattr(t["token_str"], "value", t["token_str"])}
                      for t in Tekkenizer.DEPRECATED_SPECIAL_TOKENS]
        except Exception:
            listed = []
    names = [f"<SPECIAL_{i}>" for i in range(n_special)]
    for t in listed:
        if 0 <= int(t["rank"]) < n_special:
            names[int(t["rank"])] = str(t["token_str"])
    return names


def load(path: Path, params: dict) -> RankBPETokenizer:
    f = read_tekken(path)
    names = special_names(f.doc, f.n_special)
    specials = {name: i for i, name in enumerate(names)}
    if len(specials) != f.n_special:
        raise TokenizerFileError(f"{path}: special token names are not unique")
    # Given to tiktoken for vocab() and decoding only: encode_ordinary never matches them.
    tok = RankBPETokenizer(
        name=path.name, fmt="tekken-json", pattern=f.pattern, ranks=f.ranks,
        special_tokens=specials, vocab_size=f.vocab_size, special_ids=frozenset(range(f.n_special)),
        threads=encode_threads(params))
    tok.num_special_tokens = f.n_special
    return tok
