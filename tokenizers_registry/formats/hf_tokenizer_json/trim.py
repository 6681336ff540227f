"""Trim a Hugging Face `tokenizer.json` (BPE, Unigram, WordPiece) by editing its JSON.

- Every id in the file is remapped: model vocab, `added_tokens`, the Unigram `unk_id`,
  post-processor special-token ids and the padding id.
- Always kept: added tokens (special or not: they are matched in text before the model),
  the unknown token; BPE: the base alphabet (tokens no merge produces: for a byte-level
  BPE the 256 byte symbols) and `<0xNN>` byte-fallback tokens; Unigram: `<0xNN>` tokens
  with byte fallback and the lowest-scored piece, because `tokenizers` scores unknown
  characters relative to the vocabulary's minimum score.
- BPE: closed under merges (every merge whose result is kept keeps both parts); merges
  whose result is dropped are removed, the rest keep their order.
- WordPiece: continuation forms stay consistent: a kept single character keeps its
  '##' form and the other way round, so a word spelled with kept characters is never
  split differently at a character boundary than the other form would allow.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np

from schemas.errors import TokenizerFileError
from tokenizers_registry.formats.hf_tokenizer_json.loader import parse_merges, read_document
from tokenizers_registry.trim.bpe import close_explicit
from tokenizers_registry.trim.plan import FormatTrimmer

_BYTE_TOKEN = re.compile(r"^<0x[0-9A-F]{2}>$")


class HFJsonTrimmer(FormatTrimmer):
    fmt = "hf-tokenizer-json"

    def __init__(self, path: Path, params: dict | None = None):
        self.path = Path(path)
        _, self.doc = read_document(self.path)
        model = self.doc["model"]
        self.kind = model.get("type")
        self.algorithm = {"BPE": "bpe", "Unigram": "unigram", "WordPiece": "wordpiece"}.get(self.kind)
        if self.algorithm is None:
            raise TokenizerFileError(f"{path}: trimming supports BPE, Unigram and WordPiece models, not {self.kind!r}")
        self.model = model
        if self.kind == "Unigram":
            self.tokens = {i: p for i, (p, _) in enumerate(model["vocab"])}
            self.scores = [float(s) for _, s in model["vocab"]]
        else:
            self.tokens = {int(i): t for t, i in model["vocab"].items()}
        self.added = {int(a["id"]): a for a in self.doc.get("added_tokens") or []}
        for i, a in self.added.items():
            self.tokens.setdefault(i, a["content"])
        self.ids = {t: i for i, t in self.tokens.items()}
        self._vocab_size = max(self.tokens) + 1
        self.merges = parse_merges(model.get("merges") or []) if self.kind == "BPE" else []
        prefix = model.get("continuing_subword_prefix") or ""
        self.prefix = prefix

        def result(a: str, b: str) -> str:
            return a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)

        self.merge_results = [result(a, b) for a, b in self.merges]
        self.producers: dict[int, list[tuple[int, int]]] = {}
        for (a, b), r in zip(self.merges, self.merge_results, strict=True):
            ia, ib, ir = self.ids.get(a), self.ids.get(b), self.ids.get(r)
            if ia is None or ib is None or ir is None:
                raise TokenizerFileError(f"{path}: merge {a!r} {b!r} names a token missing from the vocab")
            self.producers.setdefault(ir, []).append((ia, ib))

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def token_text(self, token_id: int) -> str | None:
        return self.tokens.get(token_id)

    def id_of(self, token: str) -> int | None:
        return self.ids.get(token)

    def special_ids(self) -> set[int]:
        return {i for i, a in self.added.items() if a.get("special")}

    def _unk_id(self) -> int | None:
        if self.kind == "Unigram":
            return self.model.get("unk_id")
        unk = self.model.get("unk_token")
        return self.ids.get(unk) if unk is not None else None

    def structural(self) -> dict[int, str]:
        out: dict[int, str] = {}
        unk = self._unk_id()
        if unk is not None:
            out[unk] = "unk"
        for i in self.added:
            out.setdefault(i, "user")  # added tokens are matched before the model: part of the user's vocabulary
        if self.model.get("byte_fallback"):
            for i, t in self.tokens.items():
                if _BYTE_TOKEN.match(t):
                    out.setdefault(i, "byte")
        if self.kind == "BPE":
            produced = set(self.merge_results)
            suffix = self.model.get("end_of_word_suffix") or ""
            for i, t in self.tokens.items():
                core = t[len(self.prefix):] if self.prefix and t.startswith(self.prefix) else t
                core = core[:-len(suffix)] if suffix and core.endswith(suffix) else core
                if t not in produced and len(core) == 1 and i not in self.added:
                    out.setdefault(i, "alphabet")
        if self.kind == "Unigram" and self.scores:
            out.setdefault(int(np.argmin(self.scores)), "pinned")
        return out

    def close(self, keep: set[int]) -> set[int]:
        if self.kind == "BPE":
            return close_explicit(keep, self.producers)
        if self.kind == "WordPiece" and self.prefix:
            out = set(keep)
            for i in keep:
                t = self.tokens[i]
                other = t[len(self.prefix):] if t.startswith(self.prefix) else self.prefix + t
                if len(other.removeprefix(self.prefix)) == 1 and other in self.ids and i not in self.added:
                    out.add(self.ids[other])
            return out
        return set(keep)

    def n_merges(self, keep: set[int] | None = None) -> int | None:
        if self.kind != "BPE":
            return None
        if keep is None:
            return len(self.merges)
        return sum(1 for r in self.merge_results if self.ids[r] in keep)

    def write(self, keep: np.ndarray, out_dir: Path) -> tuple[Path, dict]:
        keep_list = [int(i) for i in keep]
        new_id = {o: n for n, o in enumerate(keep_list)}
        doc = copy.deepcopy(self.doc)
        model = doc["model"]
        if self.kind == "Unigram":
            model["vocab"] = [list(self.model["vocab"][o]) for o in keep_list if o < len(self.model["vocab"])]
            if model.get("unk_id") is not None:
                model["unk_id"] = new_id[int(model["unk_id"])]
        else:
            model["vocab"] = {self.tokens[o]: new_id[o] for o in keep_list if self.tokens[o] in self.model["vocab"]}
        if self.kind == "BPE":
            kept = []
            for (a, b), r in zip(self.merges, self.merge_results, strict=True):
                if self.ids[r] in new_id:
                    if self.ids[a] not in new_id or self.ids[b] not in new_id:
                        raise AssertionError(f"closure broken: merge {a!r} {b!r} kept without its parts")
                    kept.append([a, b])
            model["merges"] = kept
        doc["added_tokens"] = [{**a, "id": new_id[int(a["id"])]} for a in doc.get("added_tokens") or []]
        _remap_post_processor(doc.get("post_processor"), new_id, self.ids)
        if isinstance(doc.get("padding"), dict) and doc["padding"].get("pad_id") in new_id:
            doc["padding"]["pad_id"] = new_id[doc["padding"]["pad_id"]]
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / self.path.name
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path, {}


def _remap_post_processor(node, new_id: dict[int, int], ids: dict[str, int]) -> None:
    """Rewrite special-token ids inside a post-processor node (Template/Bert/Roberta/Sequence)."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "Sequence":
        for p in node.get("processors", []):
            _remap_post_processor(p, new_id, ids)
    elif kind == "TemplateProcessing":
        for spec in (node.get("special_tokens") or {}).values():
            spec["ids"] = [new_id[int(i)] for i in spec.get("ids", [])]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            if isinstance(node.get(key), list) and len(node[key]) == 2:
                node[key][1] = new_id[int(node[key][1])]
