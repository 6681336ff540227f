"""Trimming real tokenizers of every format, checked with each format's own library.

For every tokenizer: counts on a FLORES trimming text (3 languages, dev), trim with
min_frequency 1, then re-encode with the trimmed file loaded by its own library
(tiktoken / tokenizers / sentencepiece / mistral-common) and compare with the original
ids mapped through the id map: 100% identical on the trimming text is required. The
held-out share (devtest) is measured, and every held-out miss must use a dropped token.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.trim import check_faithfulness, id_lookup
from schemas.errors import ConfigError
from tokenizers_registry.formats import load_format, open_trimmer
from tokenizers_registry.trim.plan import plan_keep

pytestmark = pytest.mark.shared

LANGS = ["eng_Latn", "fra_Latn", "zho_Hans"]
N_TRIM, N_HELD = 150, 150


def flores(split: str, n: int) -> list[str]:
    t = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["lang", "split", "text"],
                      filters=[("lang", "in", LANGS), ("split", "=", split)]).to_pylist()
    out = []
    for lang in LANGS:
        out += [r["text"] for r in t if r["lang"] == lang][:n]
    return out


@pytest.fixture(scope="module")
def texts():
    return flores("dev", N_TRIM), flores("devtest", N_HELD)


def manifest_entry(name: str) -> tuple[Path, str, dict]:
    m = json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())
    e = next(x for x in m["tokenizers"] if x["name"] == name)
    params = {"pattern": e["pattern"]} if e["format"] == "tiktoken-ranks" else {}
    return shared_path("tokenizers", e["file"]), e["format"], params


# -- native encoders: each format's own library, not our loaders ---------------------------------
def native_encoder(path: Path, fmt: str, params: dict):
    if fmt == "tiktoken-ranks":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        enc = tiktoken.Encoding(path.name, pat_str=params["pattern"], mergeable_ranks=load_tiktoken_bpe(str(path)),
                                special_tokens=params.get("special_tokens") or {})
        return enc.encode_ordinary
    if fmt == "hf-tokenizer-json":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        tok.no_truncation()
        return lambda t: tok.encode(t, add_special_tokens=False).ids
    if fmt == "sentencepiece-model":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(path))
        return lambda t: sp.encode(t)
    if fmt == "tekken-json":
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer

        tk = Tekkenizer.from_file(str(path))
        return lambda t: tk.encode(t, bos=False, eos=False)
    raise AssertionError(fmt)


def trim_and_check(path: Path, fmt: str, params: dict, texts, out_dir: Path, **rule) -> dict:
    trim_texts, held_texts = texts
    original = load_format(fmt, path, params)
    counts = np.zeros(original.vocab_size, np.int64)
    for ids in original.encode_batch(trim_texts):
        np.add.at(counts, np.asarray(ids, dtype=np.int64), 1)
    trimmer = open_trimmer(path, fmt, params)
    plan = plan_keep(trimmer, counts, **rule)
    new_path, new_params = trimmer.write(plan.keep, out_dir)
    loader_params = {**params, **new_params}
    lut = id_lookup(plan.keep, trimmer.vocab_size)
    native_old, native_new = native_encoder(path, fmt, params), native_encoder(new_path, fmt, loader_params)
    identical = sum(np.array_equal(lut[np.asarray(native_old(t), dtype=np.int64)], native_new(t)) for t in trim_texts)
    held = check_faithfulness(original, load_format(fmt, new_path, loader_params), lut, held_texts)
    return {"plan": plan, "trimmer": trimmer, "path": new_path, "params": loader_params, "lut": lut,
            "counts": counts, "trim_identical": identical, "held": held, "original": original}


def assert_common(r: dict, texts) -> None:
    plan, trimmer = r["plan"], r["trimmer"]
    assert r["trim_identical"] == len(texts[0]), "trimmed tokenizer must segment the trimming text identically"
    assert plan.stats["used_tokens_dropped"] == 0
    assert np.all(np.diff(plan.keep) > 0) and len(plan.keep) < trimmer.vocab_size
    assert set(np.flatnonzero(r["counts"]).tolist()) <= set(plan.keep.tolist())
    assert trimmer.special_ids() <= set(plan.keep.tolist())
    # the id map names the same token on both sides
    new = open_trimmer(r["path"], trimmer.fmt, r["params"])
    assert new.vocab_size == len(plan.keep)
    for new_id, old_id in enumerate(plan.keep.tolist()):
        assert new.token_text(new_id) == trimmer.token_text(old_id)
    assert new.special_ids() == {int(r["lut"][i]) for i in trimmer.special_ids()}
    held = r["held"]
    assert held.n_miss_other == 0, f"held-out misses without a dropped token: {held.example}"
    assert held.n_identical + held.n_miss_dropped == held.n_sentences


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "whisper-multilingual"])  # whisper: a placeholder rank
def test_tiktoken_rank_files(name, texts, tmp_path):
    path, fmt, params = manifest_entry(name)
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(r["path"]))
    assert sorted(ranks.values()) == list(range(len(r["plan"].keep)))  # compacted ranks
    assert all(bytes([b]) in ranks for b in range(256))  # byte-level: every byte still encodable
    old = load_tiktoken_bpe(str(path))
    kept = sorted(ranks, key=ranks.get)
    assert [old[t] for t in kept] == sorted(old[t] for t in kept)  # relative order of ranks kept
    assert r["trimmer"].n_merges(set(r["plan"].keep.tolist())) == len(ranks) - 256


def test_tiktoken_special_tokens_are_kept_and_compacted(texts, tmp_path):
    path, fmt, params = manifest_entry("gpt2")
    params = {**params, "special_tokens": {"<|endoftext|>": 50256}}
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    assert r["params"]["special_tokens"] == {"<|endoftext|>": len(r["plan"].keep) - 1}
    assert load_format(fmt, r["path"], r["params"]).special_ids == frozenset({len(r["plan"].keep) - 1})


def test_hf_byte_level_bpe_claude(texts, tmp_path):
    path, fmt, params = manifest_entry("claude-legacy")
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    old = json.loads(path.read_text())
    new = json.loads(r["path"].read_text())
    for a in old["added_tokens"]:  # added/special tokens kept, ids remapped
        assert {"content": a["content"], "id": int(r["lut"][a["id"]])} in [
            {"content": b["content"], "id": b["id"]} for b in new["added_tokens"]]
    vocab = new["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in new["model"]["merges"]]
    assert all(a in vocab and b in vocab and a + b in vocab for a, b in merges)  # merges whose result is dropped are gone
    old_merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in old["model"]["merges"]]
    pos = {m: i for i, m in enumerate(old_merges)}
    assert [pos[m] for m in merges] == sorted(pos[m] for m in merges)  # merge order kept
    assert len(merges) < len(old_merges)
    from tokenizers_registry.formats._common import bytes_to_unicode

    assert all(c in vocab for c in bytes_to_unicode().values())  # the 256 byte symbols


def test_hf_wordpiece_minilm(texts, tmp_path):
    path, fmt, params = manifest_entry("minilm-wordpiece")
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    new = json.loads(r["path"].read_text())
    vocab = new["model"]["vocab"]
    old = json.loads(path.read_text())["model"]["vocab"]
    for tok in vocab:  # continuation forms consistent for single characters
        base = tok[2:] if tok.startswith("##") else tok
        if len(base) == 1 and not tok.startswith("["):
            other = base if tok.startswith("##") else "##" + base
            assert other not in old or other in vocab, tok
    pp = new["post_processor"]["special_tokens"]
    assert pp["[CLS]"]["ids"] == [vocab["[CLS]"]] and pp["[SEP]"]["ids"] == [vocab["[SEP]"]]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(r["path"]))
    tok.no_padding()
    full = tok.encode("hello world")  # the post-processor still adds CLS/SEP, with the new ids
    assert full.ids[0] == vocab["[CLS]"] and full.ids[-1] == vocab["[SEP]"]
    assert new["padding"]["pad_id"] == vocab["[PAD]"]


def test_sentencepiece_bpe_byte_fallback_mistral(texts, tmp_path):
    path, fmt, params = manifest_entry("mistral-v1")
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(r["path"]))
    assert sum(sp.is_byte(i) for i in range(sp.get_piece_size())) == 256
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert sp.decode(sp.encode("Ωμέγα ✓ 字")) == "Ωμέγα ✓ 字"  # unseen text still round-trips via bytes


def test_tekken(texts, tmp_path):
    path, fmt, params = manifest_entry("mistral-tekken-240718")
    r = trim_and_check(path, fmt, params, texts, tmp_path)
    assert_common(r, texts)
    doc = json.loads(r["path"].read_text())
    n_special = doc["config"]["default_num_special_tokens"]
    assert r["plan"].keep[:n_special].tolist() == list(range(n_special))
    assert doc["config"]["default_vocab_size"] == len(r["plan"].keep) == n_special + len(doc["vocab"])
    assert [base64.b64decode(e["token_bytes"]) for e in doc["vocab"][:256]] == [bytes([b]) for b in range(256)]


def _train_corpus() -> list[str]:
    return flores("dev", 400)


def test_sentencepiece_unigram_trained(texts, tmp_path):
    from tokenizers_registry.training import train_sentencepiece

    path = train_sentencepiece("unigram", _train_corpus(), 3000, tmp_path / "sp_unigram.model")
    r = trim_and_check(path, "sentencepiece-model", {}, texts, tmp_path / "out")
    assert_common(r, texts)
    reasons = set(r["plan"].reason.values())
    assert {"special", "unk", "byte", "pinned", "frequency"} <= reasons and "closure" not in reasons


def test_hf_unigram_trained(texts, tmp_path):
    from tokenizers_registry.training import train_hf

    path = train_hf("unigram", _train_corpus(), 3000, tmp_path / "hf_unigram.tokenizer.json")
    r = trim_and_check(path, "hf-tokenizer-json", {}, texts, tmp_path / "out")
    assert_common(r, texts)
    new = json.loads(r["path"].read_text())
    assert new["model"]["vocab"][new["model"]["unk_id"]][0] == "<unk>"
    old_scores = [s for _, s in json.loads(path.read_text())["model"]["vocab"]]
    assert min(s for _, s in new["model"]["vocab"]) == min(old_scores)  # pinned: unknown scoring unchanged


def test_top_n_drops_used_tokens_and_every_miss_is_explained(texts, tmp_path):
    path, fmt, params = manifest_entry("gpt2")
    r = trim_and_check(path, fmt, params, texts, tmp_path, top_n=300)
    plan, counts = r["plan"], r["counts"]
    top = sorted(np.flatnonzero(counts).tolist(), key=lambda i: (-counts[i], i))[:300]
    assert set(top) <= set(plan.keep.tolist())
    assert {i for i, why in plan.reason.items() if why == "frequency"} == set(top) - set(r["trimmer"].structural())
    assert plan.stats["used_tokens_dropped"] == int((r["counts"] > 0).sum()) - int(
        np.isin(np.flatnonzero(r["counts"]), plan.keep).sum()) > 0
    # the trimmed tokenizer still loads and runs; now the trimming text differs where dropped tokens were used
    original, trimmed = r["original"], load_format(fmt, r["path"], r["params"])
    f = check_faithfulness(original, trimmed, r["lut"], texts[0])
    uses_dropped = sum(bool((r["lut"][np.asarray(ids)] < 0).any()) for ids in original.encode_batch(texts[0]))
    assert f.n_miss_dropped == uses_dropped and f.n_miss_other == 0
    assert f.n_identical == len(texts[0]) - uses_dropped < len(texts[0])
    assert r["trim_identical"] == f.n_identical


def test_min_frequency_above_one(texts, tmp_path):
    path, fmt, params = manifest_entry("mistral-v1")
    r = trim_and_check(path, fmt, params, texts, tmp_path, min_frequency=3)
    counts, keep = r["counts"], set(r["plan"].keep.tolist())
    assert all(i in keep for i in np.flatnonzero(counts >= 3).tolist())
    freq_kept = {i for i, why in r["plan"].reason.items() if why == "frequency"}
    fixed = set(r["trimmer"].structural()) | r["trimmer"].special_ids()
    assert freq_kept == {i for i in np.flatnonzero(counts >= 3).tolist() if i not in fixed}
    assert 0 < r["plan"].stats["used_tokens_dropped"] == int(((counts > 0) & (counts < 3)).sum()) - len(
        {i for i in np.flatnonzero((counts > 0) & (counts < 3)).tolist() if i in keep})


def test_user_tokens_and_errors(texts, tmp_path):
    path, fmt, params = manifest_entry("cl100k_base")
    trimmer = open_trimmer(path, fmt, params)
    counts = np.zeros(trimmer.vocab_size, np.int64)
    plan = plan_keep(trimmer, counts, keep_tokens=[" the", "hello"])
    hello = trimmer.id_of("hello")
    assert plan.reason[hello] == "user" and len(plan.keep) > 256 + 1
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        plan_keep(trimmer, counts, keep_tokens=["\u2603no-such-token\u2603"])
    with pytest.raises(ConfigError, match="min_frequency"):
        plan_keep(trimmer, counts, min_frequency=0)
    clip, clip_fmt, _ = manifest_entry("clip")
    with pytest.raises(ConfigError, match="trimming supports"):
        open_trimmer(clip, clip_fmt, {})
