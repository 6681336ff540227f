"""Ordered BPE merges for every BPE format tokatlas loads, plus the matching pre-tokenizer.

Data mixture inference (Hayase et al. 2024) needs two things from a BPE tokenizer:
the ordered merge list and the exact way text becomes "words" of initial symbols
before merging. `load_merges(path, fmt, params)` returns both as a `MergeList`.

Symbols are strings in the tokenizer's own alphabet (byte-level formats use the GPT-2
`bytes_to_unicode` mapping, CLIP adds `</w>` to a word's last symbol) and integer ids:

    ord(c)                 a single character (a mapped byte for byte-level formats)
    ord(c) + END_OFFSET    c</w> (CLIP's end-of-word symbol)
    MERGED_BASE + t        the symbol first produced by merge t

so ids agree across samples without a shared table, and a pair fits in one int64
(`pair_key`). Rank formats (tiktoken, Tekken) and SentencePiece BPE store ranks or
scores instead of merges: merge t is derived by re-running BPE on token t's symbols
with lower-ranked tokens only, which must end in exactly two parts.
"""

from __future__ import annotations

import base64
import gzip
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.formats._common import bytes_to_unicode

END_OFFSET = 0x110000
MERGED_BASE = 0x220000
PAIR_SHIFT = 22  # ids < 2**22, so a pair key < 2**44
BPE_FORMATS = ("hf-tokenizer-json", "tiktoken-ranks", "tekken-json", "sentencepiece-model", "clip-merges")
CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
SP_SPACE = "\u2581"




def map_bytes(b: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[x] for x in b)


def pair_key(left: int | np.ndarray, right: int | np.ndarray):
    return (np.int64(left) << PAIR_SHIFT) | np.int64(right) if isinstance(left, np.ndarray) else (left << PAIR_SHIFT) | right


def split_pair_key(key):
    return key >> PAIR_SHIFT, key & ((1 << PAIR_SHIFT) - 1)


def base_symbol_id(sym: str) -> int | None:
    """Id of a one-character symbol (or CLIP's c</w>); None for anything longer."""
    if len(sym) == 1:
        return ord(sym)
    if len(sym) == 5 and sym.endswith("</w>"):
        return ord(sym[0]) + END_OFFSET
    return None


# -- pre-tokenizers: text -> words -> initial symbol ids ------------------------------------
class Pretokenizer:
    """Normalise and split text exactly as the tokenizer does before BPE."""

    end_of_word = False  # CLIP: the last symbol of a word carries </w>

    def words(self, text: str) -> list[str]:
        raise NotImplementedError

    def count_words(self, texts: Iterable[str]) -> Counter:
        c: Counter = Counter()
        for t in texts:
            c.update(self.words(t))
        return c

    def symbols(self, word: str) -> list[int]:
        ids = [ord(c) for c in word]
        if self.end_of_word and ids:
            ids[-1] += END_OFFSET
        return ids


# Python's `regex` has no backtrack limit (fancy-regex, which tiktoken uses, has one and panics):
# a pattern that backtracks catastrophically fails its cell instead of hanging the job.
REGEX_SECONDS = 30


class RegexBytePretokenizer(Pretokenizer):
    """tiktoken / Tekken: split by the regex, UTF-8 encode, map bytes to characters."""

    def __init__(self, pattern: str):
        import regex

        self.pattern = pattern
        self._re = regex.compile(pattern)

    def words(self, text: str) -> list[str]:
        try:
            found = self._re.findall(text, timeout=REGEX_SECONDS)
        except TimeoutError:
            raise TimeoutError(f"pre-tokenization pattern {self.pattern!r} ran over {REGEX_SECONDS} s on one "
                               f"text of {len(text)} characters (catastrophic backtracking)") from None
        return [map_bytes(w.encode("utf-8")) for w in found]


class HFPretokenizer(Pretokenizer):
    """HF tokenizer.json: the library's own normaliser and pre-tokenizer."""

    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))

    def words(self, text: str) -> list[str]:
        if self._tok.normalizer is not None:
            text = self._tok.normalizer.normalize_str(text)
        if self._tok.pre_tokenizer is None:
            return [text] if text else []
        return [w for w, _ in self._tok.pre_tokenizer.pre_tokenize_str(text)]


@lru_cache(maxsize=65536)
def _sp_class(ch: str) -> str:
    """Character class SentencePiece's trainer refuses to merge across (script, digit)."""
    if ch.isdigit():
        return "digit:" + ch  # split_digits: every digit is its own word
    if ch == SP_SPACE:
        return "space"
    cat = unicodedata.category(ch)
    if cat[0] in "LM":
        import regex

        for script in ("Han", "Hiragana", "Katakana"):
            if regex.match(rf"\p{{Script={script}}}", ch):
                return "Han"  # SentencePiece treats these as one script
        name = unicodedata.name(ch, "")
        return name.split(" ")[0] if name else "Other"
    return "Common"


class SentencePiecePretokenizer(Pretokenizer):
    """SentencePiece BPE: identity/NFKC normaliser, dummy prefix, spaces as U+2581.

    Words start at each U+2581 and are cut where the trainer would not merge
    (script changes, digits when split_digits), so competitor pairs are ones the
    trainer could have chosen.
    """

    def __init__(self, add_dummy_prefix: bool = True, nfkc: bool = False, split_digits: bool = True,
                 split_by_script: bool = True):
        self.add_dummy_prefix, self.nfkc = add_dummy_prefix, nfkc
        self.split_digits, self.split_by_script = split_digits, split_by_script

    def normalize(self, text: str) -> str:
        if self.nfkc:
            text = unicodedata.normalize("NFKC", text)
        text = text.replace(" ", SP_SPACE)
        return SP_SPACE + text if self.add_dummy_prefix and text else text

    def words(self, text: str) -> list[str]:
        text = self.normalize(text)
        out: list[str] = []
        start, prev = 0, None
        for i, ch in enumerate(text):
            cls = _sp_class(ch) if (self.split_by_script or self.split_digits) else "x"
            if not self.split_by_script and not cls.startswith("digit"):
                cls = "x"
            if i > start and (ch == SP_SPACE or cls.startswith("digit") or
                              (prev != cls and prev != "space")):
                out.append(text[start:i])
                start = i
            prev = cls
        if start < len(text):
            out.append(text[start:])
        return out


class ClipPretokenizer(Pretokenizer):
    """CLIP: whitespace-normalised, lower-cased, regex split, byte-mapped, </w> on the last symbol."""

    end_of_word = True

    def __init__(self):
        import regex

        self._re = regex.compile(CLIP_PATTERN, regex.IGNORECASE)

    def words(self, text: str) -> list[str]:
        import html

        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        return [map_bytes(w.encode("utf-8")) for w in self._re.findall(text)]


# -- merge lists -----------------------------------------------------------------------
@dataclass
class MergeList:
    """Ordered merges over symbol strings, their ids, and the tokenizer's pre-tokenizer."""

    name: str
    format: str
    merges: list[tuple[str, str]]
    pretokenizer: Pretokenizer
    n_candidates: int = 0  # tokens/merges in the file that should yield a merge
    skipped: list[str] = field(default_factory=list)  # tokens that did not derive or merges with unknown parts
    n_dropped_manual: int = 0  # SentencePiece pieces dropped as manual additions (extreme scores)
    left: np.ndarray = field(init=False, repr=False)
    right: np.ndarray = field(init=False, repr=False)
    new: np.ndarray = field(init=False, repr=False)
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        ids: dict[str, int] = {}
        kept, left, right, new = [], [], [], []
        for a, b in self.merges:
            ia = ids.get(a, base_symbol_id(a))
            ib = ids.get(b, base_symbol_id(b))
            if ia is None or ib is None:
                self.skipped.append(a + b)  # a part no earlier merge produced: can never apply
                continue
            t = len(kept)
            kept.append((a, b))
            left.append(ia)
            right.append(ib)
            new.append(ids.setdefault(a + b, MERGED_BASE + t))
        self.merges = kept
        self.left = np.array(left, dtype=np.int64)
        self.right = np.array(right, dtype=np.int64)
        self.new = np.array(new, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.merges)

    @property
    def n_derived(self) -> int:
        return len(self.merges)

    def symbol_strings(self) -> dict[int, str]:
        """id -> symbol string for merged symbols (base ids decode with `symbol_string`)."""
        return {int(n): a + b for (a, b), n in zip(self.merges, self.new, strict=True)}

    def symbol_string(self, sid: int, table: dict[int, str] | None = None) -> str:
        if sid >= MERGED_BASE:
            return (table or self.symbol_strings())[sid]
        if sid >= END_OFFSET:
            return chr(sid - END_OFFSET) + "</w>"
        return chr(sid)

    def ranks(self, T: int | None = None) -> dict[tuple[int, int], tuple[int, int]]:
        """(left, right) -> (merge index, new id) for the first T merges."""
        T = len(self) if T is None else T
        out: dict[tuple[int, int], tuple[int, int]] = {}
        for t in range(min(T, len(self))):
            out.setdefault((int(self.left[t]), int(self.right[t])), (t, int(self.new[t])))
        return out

    def encode_word(self, syms: Sequence[int], ranks: dict) -> list[int]:
        """Classic merge-list BPE on one word: repeatedly apply the lowest-ranked adjacent pair."""
        syms = list(syms)
        while len(syms) > 1:
            best = None
            for i in range(len(syms) - 1):
                r = ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best is None or r[0] < best[0]):
                    best = r
            if best is None:
                break
            t, n = best
            a, b = int(self.left[t]), int(self.right[t])
            out, i = [], 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(n)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            syms = out
        return syms

    def encode_text(self, text: str, T: int | None = None) -> list[str]:
        """Token strings of `text` under the first T derived merges (for round-trip checks)."""
        if ("ranks", T) not in self._cache:
            self._cache[("ranks", T)] = self.ranks(T)
            self._cache["table"] = self.symbol_strings()
        ranks, table = self._cache[("ranks", T)], self._cache["table"]
        out: list[str] = []
        for w in self.pretokenizer.words(text):
            out.extend(self.symbol_string(s, table) for s in self.encode_word(self.pretokenizer.symbols(w), ranks))
        return out

    def summary(self) -> dict:
        return {"name": self.name, "format": self.format, "n_candidates": self.n_candidates,
                "n_derived": self.n_derived, "n_skipped": len(self.skipped),
                "n_dropped_manual": self.n_dropped_manual, "skipped_examples": self.skipped[:10]}


def derive_from_ranks(tokens: Sequence[Sequence[str]]) -> tuple[list[tuple[str, str]], list[str], int]:
    """Merges from tokens in rank order, each given as its sequence of base symbols.

    Token r's merge is what BPE with tokens of rank < r leaves on its own symbols,
    provided that is exactly two parts; otherwise the token is reported and skipped.
    Returns (merges, skipped token strings, number of multi-symbol tokens).
    """
    rank: dict[str, int] = {}
    merges: list[tuple[str, str]] = []
    skipped: list[str] = []
    n_multi = 0
    for r, syms in enumerate(tokens):
        s = "".join(syms)
        if len(syms) <= 1:
            rank.setdefault(s, r)
            continue
        n_multi += 1
        parts = list(syms)
        while len(parts) > 2:
            best_i, best_r = -1, r
            for i in range(len(parts) - 1):
                q = rank.get(parts[i] + parts[i + 1])
                if q is not None and q < best_r:
                    best_i, best_r = i, q
            if best_i < 0:
                break
            parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        if len(parts) == 2 and parts[0] in rank and parts[1] in rank:
            merges.append((parts[0], parts[1]))
            rank.setdefault(s, r)
        else:
            skipped.append(s)
    return merges, skipped, n_multi


# -- per-format readers -----------------------------------------------------------------
def read_tiktoken_ranks(path: Path) -> list[tuple[bytes, int]]:
    out = []
    with open(path, "rb") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue  # Whisper's empty placeholder rank
            out.append((base64.b64decode(parts[0]), int(parts[1])))
    out.sort(key=lambda x: x[1])
    return out


def read_tekken(path: Path) -> tuple[list[tuple[bytes, int]], str]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    cfg = doc["config"]
    # mistral-common keeps the first default_vocab_size - num_special ranks
    n = cfg.get("default_vocab_size", len(doc["vocab"]) + cfg.get("default_num_special_tokens", 0))
    n -= cfg.get("default_num_special_tokens", 0)
    vocab = sorted(doc["vocab"], key=lambda v: v["rank"])[:n]
    return [(base64.b64decode(v["token_bytes"]), v["rank"]) for v in vocab], cfg["pattern"]


def _from_ranks(name, fmt, ranks, pattern) -> MergeList:
    table = bytes_to_unicode()
    tokens = [[table[x] for x in b] for b, _ in ranks]
    merges, skipped, n = derive_from_ranks(tokens)
    return MergeList(name, fmt, merges, RegexBytePretokenizer(pattern), n_candidates=n, skipped=skipped)


def load_hf_json(path: Path, name: str) -> MergeList:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    model = doc.get("model") or {}
    if model.get("type") != "BPE":
        raise ConfigError(f"{path}: not a BPE tokenizer (model type {model.get('type')!r}); no merges to infer from")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise ConfigError(f"{path}: BPE with subword prefix/suffix is not supported by mixture inference")
    raw = model.get("merges") or []
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in raw]
    return MergeList(name, "hf-tokenizer-json", merges, HFPretokenizer(path), n_candidates=len(merges))


def load_sentencepiece(path: Path, name: str) -> MergeList:
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(Path(path).read_bytes())
    if m.trainer_spec.model_type != pb.TrainerSpec.BPE:
        raise ConfigError(f"{path}: SentencePiece model is not BPE; no merges to infer from")
    normal = [(i, p.piece, p.score) for i, p in enumerate(m.pieces) if p.type == pb.ModelProto.SentencePiece.NORMAL]
    # The trainer scores pieces -0, -1, -2, ...; pieces far outside that range were added by hand
    # (e.g. Mistral's whitespace runs at -1e9) and never came from a merge.
    bound = 10.0 * len(m.pieces)
    kept = [x for x in normal if abs(x[2]) <= bound]
    dropped = [x for x in normal if abs(x[2]) > bound and len(x[1]) > 1]
    kept.sort(key=lambda x: (-x[2], x[0]))
    chars = [x for x in normal if len(x[1]) == 1]  # single characters are the alphabet, whatever their score
    tokens = [list(p) for _, p, _ in chars] + [list(p) for _, p, _ in kept if len(p) > 1]
    merges, skipped, n = derive_from_ranks(tokens)
    ns = m.normalizer_spec
    pre = SentencePiecePretokenizer(add_dummy_prefix=ns.add_dummy_prefix, nfkc="nfkc" in ns.name,
                                    split_digits=m.trainer_spec.split_digits,
                                    split_by_script=m.trainer_spec.split_by_unicode_script)
    return MergeList(name, "sentencepiece-model", merges, pre, n_candidates=n, skipped=skipped,
                     n_dropped_manual=len(dropped))


def load_clip(path: Path, name: str) -> MergeList:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    # CLIP's SimpleTokenizer uses lines[1 : 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1] if line.strip()]
    return MergeList(name, "clip-merges", merges, ClipPretokenizer(), n_candidates=len(merges))


def load_merges(path: str | Path, fmt: str, params: dict | None = None, name: str | None = None) -> MergeList:
    """Ordered merges and pre-tokenizer of a BPE tokenizer file of format `fmt`.

    params: `pattern` (pre-tokenization regex) is required for tiktoken-ranks.
    """
    path = Path(path)
    params = dict(params or {})
    name = name or path.name.split(".")[0]
    if not path.is_file():
        raise TokenizerFileError(f"{path}: no such tokenizer file")
    if fmt == "tiktoken-ranks":
        if not params.get("pattern"):
            raise ConfigError(f"{path}: tiktoken-ranks needs a pre-tokenization pattern")
        return _from_ranks(name, fmt, read_tiktoken_ranks(path), params["pattern"])
    if fmt == "tekken-json":
        ranks, pattern = read_tekken(path)
        return _from_ranks(name, fmt, ranks, params.get("pattern") or pattern)
    if fmt == "hf-tokenizer-json":
        return load_hf_json(path, name)
    if fmt == "sentencepiece-model":
        return load_sentencepiece(path, name)
    if fmt == "clip-merges":
        return load_clip(path, name)
    raise ConfigError(f"{path}: format {fmt!r} has no BPE merges; BPE formats: {', '.join(BPE_FORMATS)}")


def manifest_entries(manifest: str | Path, names: Sequence[str] | None = None, bpe_only: bool = True, *,
                     allow_outside: bool = False) -> list[dict]:
    """Tokenizer entries of a MANIFEST.json as {name, format, path, params} (BPE ones by default),
    read and checked by `registry.read_manifest`."""
    from tokenizers_registry.registry import read_manifest

    out = []
    for e in read_manifest(manifest, allow_outside=allow_outside):
        fmt = e.get("format")
        if names and e["name"] not in names:
            continue
        if bpe_only and (fmt not in BPE_FORMATS or "wordpiece" in e["name"]):
            continue
        params = {"pattern": e["pattern"]} if fmt == "tiktoken-ranks" and e.get("pattern") else {}
        out.append({"name": e["name"], "format": fmt, "path": str(e["path"]), "params": params})
    return out
