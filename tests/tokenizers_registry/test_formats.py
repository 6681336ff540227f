"""Format loaders against the libraries' own encoders, on real tokenizer files and FLORES text."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import regex
from conftest import shared_path
from helpers import make_english_only_bpe

from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.formats import load_format, sniff_format
from tokenizers_registry.formats._common import bytes_to_unicode, char_starts_from_byte_lengths
from tokenizers_registry.formats.hf_tokenizer_json.loader import parse_merges

LANGS = ["eng_Latn", "zho_Hans", "arb_Arab", "hin_Deva", "tha_Thai", "rus_Cyrl", "jpn_Jpan", "amh_Ethi"]
N_PER_LANG = 50
TIKTOKEN = ["gpt2", "whisper-multilingual", "cl100k_base", "o200k_base", "qwen"]
ALL = [*TIKTOKEN, "claude-legacy", "mistral-tekken-240718", "mistral-v1", "clip", "minilm-wordpiece"]
# Extra strings that exercise edge cases: whitespace runs, specials as text, surrogates aside.
EDGE = ["", " ", "  leading and trailing  ", "a\n\nb\tc", "[CLS] <s> </s> <|endoftext|> <EOT>",
        "naïve café 😀 e\u0301", "x" * 300, "日本語とEnglish混在123456"]


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tok_dir() -> Path:
    return shared_path("tokenizers")


@pytest.fixture(scope="module")
def manifest(tok_dir) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads((tok_dir / "MANIFEST.json").read_text())["tokenizers"]}


@pytest.fixture(scope="module")
def by_lang() -> dict[str, list[str]]:
    table = pq.read_table(
        shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["lang", "sentence_id", "text"],
        filters=[("split", "=", "dev"), ("sentence_id", "<", N_PER_LANG), ("lang", "in", LANGS)])
    out: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for row in table.sort_by([("lang", "ascending"), ("sentence_id", "ascending")]).to_pylist():
        out[row["lang"]].append(row["text"])
    assert all(len(v) == N_PER_LANG for v in out.values())
    return out


@pytest.fixture(scope="module")
def texts(by_lang) -> list[str]:
    return [t for lang in LANGS for t in by_lang[lang]] + EDGE


def params_for(entry: dict) -> dict:
    return {"pattern": entry["pattern"]} if entry["format"] == "tiktoken-ranks" else {}


@pytest.fixture(scope="module")
def load(manifest, tok_dir):
    """name -> our loaded tokenizer, each loaded once for the module."""
    cache = {}

    def get(name: str):
        if name not in cache:
            e = manifest[name]
            cache[name] = load_format(e["format"], tok_dir / e["file"], params_for(e))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def encoded(load, texts):
    """name -> encode_batch_with_starts(texts), computed once."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load(name).encode_batch_with_starts(texts)
        return cache[name]

    return get


# -- exact ids against each library ----------------------------------------------------
@pytest.mark.parametrize("name", TIKTOKEN)
def test_tiktoken_ids_equal_tiktoken(name, manifest, tok_dir, load, texts):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    e = manifest[name]
    # Whisper's "= 50256" loads as b"" -> 50256 here; tiktoken never emits it.
    ref = tiktoken.Encoding(name, pat_str=e["pattern"], mergeable_ranks=load_tiktoken_bpe(str(tok_dir / e["file"])),
                            special_tokens={})
    tok = load(name)
    assert tok.encode_batch(texts) == [ref.encode_ordinary(t) for t in texts]
    assert tok.format == "tiktoken-ranks" and tok.algorithm == "bpe" and tok.pre_tokenizer == e["pattern"]
    assert tok.vocab_size == ref.max_token_value + 1


@pytest.mark.parametrize("name", ["claude-legacy", "minilm-wordpiece"])
def test_hf_ids_equal_tokenizers(name, manifest, tok_dir, load, texts):
    from tokenizers import Tokenizer

    ref = Tokenizer.from_file(str(tok_dir / manifest[name]["file"]))
    ref.no_padding()  # minilm's file pads and truncates to 128
    ref.no_truncation()
    expected = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    got = load(name).encode_batch(texts)
    # EDGE holds special-token strings, which we encode as text; compare FLORES exactly.
    n = len(texts) - len(EDGE)
    assert got[:n] == expected[:n]


def test_sentencepiece_ids_equal_sentencepiece(tok_dir, load, texts):
    import sentencepiece as spm

    ref = spm.SentencePieceProcessor(model_file=str(tok_dir / "mistral_v1.model"))
    tok = load("mistral-v1")
    assert tok.encode_batch(texts) == [ref.encode(t) for t in texts]
    assert tok.algorithm == "bpe" and tok.vocab_size == ref.get_piece_size() == 32000


@pytest.fixture(scope="module")
def tekken_ref(tok_dir):
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    return Tekkenizer.from_file(tok_dir / "mistral_tekken_240718.json")


def test_tekken_ids_equal_mistral_common(tekken_ref, load, texts):
    ref = tekken_ref
    tok = load("mistral-tekken-240718")
    assert tok.encode_batch(texts) == [ref.encode(t, bos=False, eos=False) for t in texts]
    assert tok.vocab_size == ref.n_words == 131072
    assert tok.special_ids == frozenset(ref.special_ids) == frozenset(range(1000))
    assert tok.vocab()["<s>"] == ref.bos_id == 1


class ReferenceClip:
    """open_clip's SimpleTokenizer (bpe() with its cache and pair loop), minus ftfy and
    html.unescape; NFC stands in for ftfy's final normalization step."""

    def __init__(self, path: Path):
        self.byte_encoder = bytes_to_unicode()
        with gzip.open(path) as f:
            merges = f.read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab)), strict=True))
        self.bpe_ranks = dict(zip(merges, range(len(merges)), strict=True))
        self.cache: dict[str, str] = {}
        self.pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    @staticmethod
    def get_pairs(word):
        return {(a, b) for a, b in zip(word, word[1:], strict=False)}

    def bpe(self, token: str) -> str:
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = self.get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = self.get_pairs(word)
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        text = regex.sub(r"\s+", " ", text).strip().lower()  # whitespace_clean, then .lower()
        ids = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids


def test_clip_ids_equal_reference_simple_tokenizer(tok_dir, load, texts):
    ref = ReferenceClip(tok_dir / "clip_bpe_simple_vocab_16e6.txt.gz")
    tok = load("clip")
    extra = ["A photo of a CAT, isn't it?", "It's 3 o'clock -- we'll see!!", "naïve CAFÉ"]
    # The reference leaves the special-token alternatives out of its regex, as we do:
    # EDGE's "<|endoftext|>" is text on both sides (open_clip would emit 49407).
    assert tok.encode_batch(texts + extra) == [ref.encode(t) for t in texts + extra]
    assert 49407 not in tok.encode("<|endoftext|>")


def test_clip_known_difference_final_sigma(tok_dir, load):
    """`tokenizers` lower-cases per character (Σ -> σ); str.lower() gives word-final ς."""
    ref = ReferenceClip(tok_dir / "clip_bpe_simple_vocab_16e6.txt.gz")
    tok = load("clip")
    assert tok.encode("ΟΔΟΣ") == ref.encode("οδοσ")
    assert tok.encode("ΟΔΟΣ") != ref.encode("ΟΔΟΣ") == ref.encode("οδος")


# -- starts ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_starts_are_valid(name, load, encoded, texts):
    out = encoded(name)
    assert [ids for ids, _ in out] == load(name).encode_batch(texts)
    for text, (ids, starts) in zip(texts, out, strict=True):
        assert len(starts) == len(ids)
        assert all(isinstance(s, int) for s in starts[:3])
        assert all(a <= b for a, b in zip(starts, starts[1:], strict=False)), text[:40]
        assert all(0 <= s <= len(text) for s in starts), text[:40]
    eng = out[0]
    assert eng[1][0] == 0 and len(set(eng[1])) > len(eng[0]) // 2  # English words mostly start fresh tokens


def _char_of_byte_offset(text: str, offset: int) -> int:
    """Index of the char containing byte `offset` of text's UTF-8 (slow, obviously right)."""
    return len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


@pytest.mark.parametrize("name", [*TIKTOKEN, "mistral-tekken-240718"])
def test_rank_formats_decode_and_starts_exactly(name, load, encoded, texts):
    tok = load(name)
    for text, (ids, starts) in zip(texts, encoded(name), strict=True):
        pieces = [tok.token_bytes(i) for i in ids]
        assert b"".join(pieces) == text.encode("utf-8")
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])[:-1]]).astype(int) if ids else []
        assert starts == [_char_of_byte_offset(text, int(o)) for o in offsets]


def test_hf_byte_level_decodes_to_normalized_text(load, encoded, texts):
    tok = load("claude-legacy")
    for text, (ids, _) in zip(texts, encoded("claude-legacy"), strict=True):
        assert tok._tok.decode(ids) == unicodedata.normalize("NFKC", text)


def test_sentencepiece_decodes_to_text(load, encoded, texts):
    tok = load("mistral-v1")
    n = len(texts) - len(EDGE)  # EDGE's leading spaces are ambiguous with the dummy prefix on decode
    for text, (ids, _) in zip(texts[:n], encoded("mistral-v1")[:n], strict=True):
        assert tok._sp.decode(ids) == text


def test_sentencepiece_proto_offsets_match_offset_mapping(load, encoded, texts):
    """The fallback for older sentencepiece (byte `begin` -> char) agrees with offset_mapping."""
    tok = load("mistral-v1")
    assert tok._offset_mode == "offset_mapping"
    alt = [tok._from_proto(t, tok._sp.encode(t, return_type="proto")) for t in texts]
    assert alt == encoded("mistral-v1")


def test_char_starts_handle_lone_surrogates(load):
    tok = load("gpt2")
    text = "a\ud83d b \ud83d\ude00 c"  # a lone surrogate, then a pair as two code points
    other = "\U0001F980 b"  # a 4-byte char GPT-2 splits over several tokens
    (ids, starts), (ids2, starts2) = tok.encode_batch_with_starts([text, other])
    assert ids == tok.encode(text)
    assert len(starts) == len(ids) and starts == sorted(starts) and max(starts) <= len(text)
    assert starts[:2] == [0, 1] and starts[-1] == len(text) - 2  # "a", the surrogate, ..., " c"
    assert ids2 == tok.encode(other) and len(ids2) > 2 and starts2 == [0] * (len(ids2) - 1) + [1]
    assert char_starts_from_byte_lengths("", np.zeros(0, np.int64)) == []


@pytest.mark.parametrize("name", ALL)
def test_empty_batch_and_empty_text(name, load):
    tok = load(name)
    assert tok.encode_batch([]) == [] and tok.encode_batch_with_starts([]) == []
    assert tok.encode_batch([""]) == [[]]
    assert [tuple(x) for x in tok.encode_batch_with_starts(["", "a"])][0] == ([], [])


# -- specials and unknowns ----------------------------------------------------------------
def test_specials_are_not_added(tok_dir, load, texts, encoded, tekken_ref):
    import sentencepiece as spm
    from tokenizers import Tokenizer

    flores = texts[: len(texts) - len(EDGE)]
    ours = {n: [ids for ids, _ in encoded(n)][: len(flores)] for n in ALL}
    for name in ALL:
        specials = load(name).special_ids
        assert not any(i in specials for ids in ours[name] for i in ids), name
    minilm = Tokenizer.from_file(str(tok_dir / "minilm_wordpiece.tokenizer.json"))
    minilm.no_padding()
    minilm.no_truncation()
    with_cls_sep = [len(e.ids) for e in minilm.encode_batch(flores, add_special_tokens=True)]
    assert [len(x) + 2 for x in ours["minilm-wordpiece"]] == with_cls_sep
    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / "mistral_v1.model"))
    assert [len(x) + 2 for x in ours["mistral-v1"]] == [len(x) for x in sp.encode(flores, add_bos=True, add_eos=True)]
    assert [len(x) + 2 for x in ours["mistral-tekken-240718"]] == [
        len(tekken_ref.encode(t, bos=True, eos=True)) for t in flores]


def test_special_strings_in_text_are_text(load):
    assert 101 not in load("minilm-wordpiece").encode("[CLS] hello [SEP]")
    assert 0 not in load("claude-legacy").encode("<EOT> hi")
    assert not set(load("mistral-tekken-240718").encode("<s> hi </s>")) & set(range(1000))
    assert not set(load("mistral-v1").encode("<s> hi </s>")) & {1, 2}


def test_special_and_unk_ids(load):
    minilm = load("minilm-wordpiece")
    assert minilm.unk_id == 100 and 100 not in minilm.special_ids
    assert minilm.special_ids == frozenset({0, 101, 102, 103})
    assert minilm.encode("界") == [100]  # a character the uncased BERT vocab lacks
    sp = load("mistral-v1")
    assert sp.unk_id == 0 and sp.special_ids == frozenset({1, 2})
    assert load("claude-legacy").special_ids == frozenset(range(5)) and load("claude-legacy").unk_id is None
    assert load("clip").special_ids == frozenset({49406, 49407}) and load("clip").unk_id is None
    for name in TIKTOKEN:
        assert load(name).special_ids == frozenset() and load(name).unk_id is None


def test_tiktoken_special_tokens_param(manifest, tok_dir):
    e = manifest["gpt2"]
    tok = load_format("tiktoken-ranks", tok_dir / e["file"],
                      {"pattern": e["pattern"], "special_tokens": {"<|endoftext|>": 50256}})
    assert tok.special_ids == frozenset({50256}) and tok.vocab_size == 50257
    assert tok.vocab()["<|endoftext|>"] == 50256
    assert 50256 not in tok.encode("a <|endoftext|> b")  # encode_ordinary: text, not the special


def test_algorithms_and_pre_tokenizers(load, manifest):
    expected = {"claude-legacy": "bpe", "minilm-wordpiece": "wordpiece", "mistral-v1": "bpe", "clip": "bpe",
                "mistral-tekken-240718": "bpe", **{n: "bpe" for n in TIKTOKEN}}
    for name, algo in expected.items():
        tok = load(name)
        assert tok.algorithm == algo, name
        assert tok.format == manifest[name]["format"]
        assert tok.pre_tokenizer
    assert load("mistral-tekken-240718").pre_tokenizer.startswith("[^\\r\\n\\p{L}\\p{N}]?")
    assert "ByteLevel" in load("claude-legacy").pre_tokenizer


# -- vocab and merges ---------------------------------------------------------------------
def test_vocab_sizes(load):
    sizes = {"gpt2": 50256, "whisper-multilingual": 50257, "cl100k_base": 100256, "o200k_base": 199998,
             "qwen": 151643, "claude-legacy": 65000, "mistral-tekken-240718": 131072, "mistral-v1": 32000,
             "clip": 49408, "minilm-wordpiece": 30522}
    for name, size in sizes.items():
        tok = load(name)
        assert tok.vocab_size == size, name
        assert max(tok.vocab().values()) < size, name


def test_hf_merges(load, tmp_path):
    merges = load("claude-legacy").merges()
    assert len(merges) == 64739 and merges[0] == ("Ġ", "Ġ") and merges[2] == ("i", "n")
    assert load("minilm-wordpiece").merges() is None
    assert parse_merges(["a b", ["c", "d e"]]) == [("a", "b"), ("c", "d e")]
    with pytest.raises(ValueError):
        parse_merges(["a b c"])
    # One small BPE written with "a b" string merges (older files) and with [a, b] pairs.
    doc = json.loads(make_english_only_bpe(tmp_path / "small.json").read_text())
    pairs = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in doc["model"]["merges"]]
    assert len(pairs) > 100
    for form, raw in (("str", [" ".join(m) for m in pairs]), ("list", [list(m) for m in pairs])):
        doc["model"]["merges"] = raw
        p = tmp_path / f"{form}.json"
        p.write_text(json.dumps(doc))
        assert load_format("hf-tokenizer-json", p).merges() == pairs, form


def test_sentencepiece_bpe_merges(load):
    tok = load("mistral-v1")
    merges = tok.merges()
    vocab = tok.vocab()
    pieces = tok._pieces
    eligible = [p for p, s, t in pieces if t == 1 and len(p) >= 2 and s > -1e8]
    assert len(merges) == len(eligible) == 28432  # every learned piece has a merge here
    assert merges[0] == ("▁", "t") and merges[1] == ("i", "n")
    made = [a + b for a, b in merges]
    assert len(set(made)) == len(made) and all(m in vocab for m in made)
    assert "▁▁" not in made  # manual whitespace pieces (score -1e9) are not merges
    available = {p for p, _, t in pieces if t == 1 and len(p) == 1}
    for (a, b), m in zip(merges, made, strict=True):  # each merge uses only earlier results
        assert a in available and b in available, (a, b)
        available.add(m)
    assert load("minilm-wordpiece").merges() is None


def test_clip_vocab_and_merges(load):
    tok = load("clip")
    merges = tok.merges()
    assert len(merges) == 48894 and merges[0] == ("i", "n")
    vocab = tok.vocab()
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    assert vocab["!"] == 0 and vocab["!</w>"] == 256 and vocab["in"] == 512


# -- errors --------------------------------------------------------------------------------
def test_tiktoken_needs_pattern(tok_dir):
    with pytest.raises(ConfigError, match="gpt2.tiktoken.*pre-tokenization pattern"):
        load_format("tiktoken-ranks", tok_dir / "gpt2.tiktoken", {})


def test_tiktoken_placeholder_rank_is_recorded(load):
    tok = load("whisper-multilingual")
    assert tok.placeholder_ranks == [50256]
    assert tok.vocab_size == 50257 and 50256 not in tok.vocab().values()


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


@pytest.mark.parametrize("garbage", [b"not base64!! 5\n", b"QUJD\n", b"QUJD notanumber\n", b"IQ== 12\n"])
def test_tiktoken_bad_lines_raise_naming_file(tok_dir, manifest, tmp_path, garbage):
    bad = _copy(tok_dir / "gpt2.tiktoken", tmp_path / "bad.tiktoken")
    with open(bad, "ab") as f:
        f.write(garbage)  # the last is a repeated token ("!") with a repeated rank
    with pytest.raises(TokenizerFileError, match="bad.tiktoken.*line 50257"):
        load_format("tiktoken-ranks", bad, {"pattern": manifest["gpt2"]["pattern"]})


def test_tiktoken_missing_single_byte_raises(tok_dir, manifest, tmp_path):
    lines = (tok_dir / "gpt2.tiktoken").read_bytes().splitlines()
    drop = base64.b64encode(b"\xff")
    kept = [ln for ln in lines if ln.split()[0] != drop]
    bad = tmp_path / "nobyte.tiktoken"
    bad.write_bytes(b"\n".join(kept) + b"\n")
    with pytest.raises(TokenizerFileError, match="nobyte.tiktoken.*single bytes"):
        load_format("tiktoken-ranks", bad, {"pattern": manifest["gpt2"]["pattern"]})


@pytest.mark.parametrize(("fmt", "name"), [
    ("hf-tokenizer-json", "claude_legacy.tokenizer.json"),
    ("sentencepiece-model", "mistral_v1.model"),
    ("tekken-json", "mistral_tekken_240718.json"),
    ("clip-merges", "clip_bpe_simple_vocab_16e6.txt.gz"),
])
def test_truncated_files_raise_naming_file(tok_dir, tmp_path, fmt, name):
    data = (tok_dir / name).read_bytes()
    bad = tmp_path / ("cut_" + name)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(TokenizerFileError, match="cut_"):
        load_format(fmt, bad, {})


def test_unknown_format_and_sniffing(tok_dir, manifest, tmp_path):
    for e in manifest.values():
        assert sniff_format(tok_dir / e["file"]) == e["format"], e["file"]
    with pytest.raises(TokenizerFileError, match="unknown tokenizer format 'nope'"):
        load_format("nope", tok_dir / "gpt2.tiktoken")
    odd = tmp_path / "what.bin"
    odd.write_bytes(b"\x00\x01")
    with pytest.raises(TokenizerFileError, match="what.bin"):
        sniff_format(odd)


# -- a BPE whose unk token is not in its vocab -------------------------------------------------
def test_english_only_bpe_raises_on_uncovered_text(tmp_path):
    path = make_english_only_bpe(tmp_path / "english_only.json")
    tok = load_format("hf-tokenizer-json", path)
    assert tok.unk_id is None  # "[UNK]" is named by the model but absent from the vocab
    assert tok.encode_batch(["The cat sat."])[0]
    # This is how it surfaces: `tokenizers` raises a plain Exception for the whole batch.
    with pytest.raises(Exception, match="Unk token `\\[UNK\\]` not found in the vocabulary"):
        tok.encode_batch(["The cat sat.", "猫が座った。"])
    with pytest.raises(Exception, match="Unk token"):
        tok.encode_batch_with_starts(["猫"])
