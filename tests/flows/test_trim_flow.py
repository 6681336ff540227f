"""The vocab-trim Prefect flow end to end (real Spark, real Prefect, real gpt2 and FLORES),
the `tokatlas trim` CLI entry, parameter checks, and embedding surgery."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from test_token_freqs import LANGS, write_small_corpus

from flows.trim_flow import TrimParams, add_cli, vocab_trim
from jobs.runtime.params import params_from_args
from jobs.store.layout import registry_dir
from jobs.trim import TrimRequest, trim_tokenizer
from schemas import check_schema
from schemas.errors import ConfigError
from schemas.trim import FAITHFULNESS, ID_MAP, TRIM_SUMMARY, VOCAB_COVERAGE
from tokenizers_registry.formats import load_format
from tokenizers_registry.registry import Registry
from tokenizers_registry.trim.surgery import trim_matrix_file

pytestmark = pytest.mark.shared
VOCAB = 50257  # gpt2's 50,256 ranks + a padding row, as models often have


def test_cli_registers_trim():
    ap = argparse.ArgumentParser()
    add_cli(ap.add_subparsers(dest="cmd"))
    a = ap.parse_args(["trim", "--tokenizer", "gpt2", "--languages", "eng_Latn,fra_Latn", "--min-frequency", "2",
                       "--top-n", "5000", "--keep-tokens", "a,b", "--language-set", "eu=deu_Latn,fra_Latn",
                       "--out", "o"])
    p = params_from_args(TrimParams, a)
    assert p.language_sets == {"eu": ["deu_Latn", "fra_Latn"]}
    assert p.checked().coverage_languages == ["eng_Latn", "fra_Latn", "deu_Latn"]
    with pytest.raises(ConfigError, match="NAME=lang"):
        params_from_args(TrimParams, ap.parse_args(["trim", "--tokenizer", "g", "--languages", "eng_Latn",
                                                    "--language-set", "eu"]))
    assert (p.tokenizer, p.languages, p.min_frequency, p.top_n, p.keep_tokens, p.out) == (
        "gpt2", ["eng_Latn", "fra_Latn"], 2, 5000, ["a", "b"], "o")
    assert (p.splits, p.heldout_splits) == (["dev"], ["devtest"]) and callable(a.func)


@pytest.mark.parametrize("kwargs, match", [
    ({"languages": []}, "--languages"),
    ({"languages": ["english"]}, "iso639_3_Script"),
    ({"min_frequency": 0}, "min-frequency"),
    ({"top_n": 0}, "top-n"),
    ({"embeddings": "/no/such/emb.npy"}, "does not exist"),
    ({"heldout_splits": ["dev"]}, "overlap"),
])
def test_params_fail_fast(kwargs, match):
    base = {"tokenizer": "gpt2", "languages": ["eng_Latn"]}
    with pytest.raises(ConfigError, match=match):
        TrimParams(**{**base, **kwargs}).checked()


def test_surgery_formats(tmp_path):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 4)).astype(np.float32)  # 10 ids + 2 padding rows
    keep = np.array([0, 3, 4, 9])
    np.save(tmp_path / "e.npy", emb)
    np.savez(tmp_path / "m.npz", wte=emb, lm_head_t=emb.T.copy(), bias=emb[:, 0].copy(), other=np.ones((3, 3)))
    shapes = trim_matrix_file(tmp_path / "e.npy", keep, 10, tmp_path / "e2.npy")
    assert np.array_equal(np.load(tmp_path / "e2.npy"), emb[keep]) and shapes[""] == ((12, 4), (4, 4))
    trim_matrix_file(tmp_path / "m.npz", keep, 10, tmp_path / "m2.npz")
    with np.load(tmp_path / "m2.npz") as z:
        assert np.array_equal(z["wte"], emb[keep]) and np.array_equal(z["lm_head_t"], emb.T[:, keep])
        assert np.array_equal(z["bias"], emb[keep, 0]) and np.array_equal(z["other"], np.ones((3, 3)))
    np.save(tmp_path / "small.npy", emb[:5])
    with pytest.raises(ConfigError, match="no axis"):
        trim_matrix_file(tmp_path / "small.npy", keep, 10, tmp_path / "x.npy")
    try:
        from safetensors.numpy import load_file, save_file
    except ImportError:
        with pytest.raises(ConfigError, match="safetensors"):
            (tmp_path / "w.safetensors").write_bytes(b"")
            trim_matrix_file(tmp_path / "w.safetensors", keep, 10, tmp_path / "w2.safetensors")
    else:
        save_file({"wte": emb}, str(tmp_path / "w.safetensors"))
        trim_matrix_file(tmp_path / "w.safetensors", keep, 10, tmp_path / "w2.safetensors")
        assert np.array_equal(load_file(str(tmp_path / "w2.safetensors"))["wte"], emb[keep])


def test_flow_end_to_end(spark, prefect_harness, tmp_path):
    out = tmp_path / "out"
    write_small_corpus(out)
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(VOCAB, 8)).astype(np.float32)
    np.save(tmp_path / "emb.npy", emb)
    np.save(tmp_path / "head.npy", emb.T.copy())  # a (hidden, vocab) output head
    params = TrimParams(out=str(out), tokenizer="gpt2", tokenizer_manifest=str(shared_path("tokenizers",
                        "MANIFEST.json")), languages=["eng_Latn", "fra_Latn"], coverage_languages=["eng_Latn"],
                        language_sets={"latin": ["eng_Latn", "fra_Latn"], "cjk": ["zho_Hans"]},
                        hidden_size=8, embeddings=str(tmp_path / "emb.npy"), head=str(tmp_path / "head.npy"))
    res = vocab_trim(params)
    trim = res["trim"]
    run = res["trim"]["run_dir"]
    s = trim["summary"]
    assert s["vocab_before"] == 50256 and s["vocab_after"] < 20000 and s["used_tokens_dropped"] == 0
    faith = pq.read_table(f"{run}/faithfulness.parquet")
    check_schema(faith.schema, FAITHFULNESS, files=False)
    rows = {(r["lang"], r["split"]): r for r in faith.to_pylist()}
    assert set(rows) == {(lang, split) for lang in ("eng_Latn", "fra_Latn") for split in ("dev", "devtest")}
    for lang in ("eng_Latn", "fra_Latn"):
        assert rows[(lang, "dev")]["identical_share"] == 1.0 and rows[(lang, "dev")]["n_sentences"] == 80
        assert rows[(lang, "devtest")]["n_miss_other"] == 0
    id_map = pq.read_table(f"{run}/id_map.parquet")
    check_schema(id_map.schema, ID_MAP, files=False)
    check_schema(pq.read_schema(f"{run}/summary.parquet"), TRIM_SUMMARY, files=False)
    old = id_map["old_id"].to_numpy()
    assert np.array_equal(id_map["new_id"].to_numpy(), np.arange(len(old))) and len(old) == s["vocab_after"]
    assert np.array_equal(np.load(f"{run}/embeddings.npy"), emb[old])
    assert np.array_equal(np.load(f"{run}/head.npy"), emb.T[:, old])
    # the trimmed tokenizer is registered and loads through the registry's loader
    reg = Registry(registry_dir(out))
    spec = reg.get(trim["registered"])
    tok = load_format(spec.format, reg.artifact_path(spec), spec.params)
    assert tok.vocab_size == s["vocab_after"]
    cov = pq.read_table(res["coverage"]["paths"]["coverage"])
    check_schema(cov.schema, VOCAB_COVERAGE, files=False)
    assert sorted(cov["lang"].to_pylist()) == sorted(LANGS)  # the sets' languages joined the report
    union = {r["language_set"]: r for r in pq.read_table(res["coverage"]["paths"]["union"]).to_pylist()}
    assert set(union) == {"all", "trimmed", "latin", "cjk"} and union["cjk"]["languages"] == "zho_Hans"
    assert union["latin"]["union_used"] == union["trimmed"]["union_used"] < union["all"]["union_used"]
    md = Path(res["report"]["markdown"]).read_text(encoding="utf-8")
    assert "Faithfulness" in md and "eng_Latn" in md and "zho_Hans" in md
    # a re-run replaces the run directory (no duplicates), skips counted cells
    again = vocab_trim(params)
    assert again["token_freqs"]["cells_skipped"] == len(LANGS) and again["trim"]["run_dir"] == run
    assert pq.read_table(f"{run}/id_map.parquet").equals(id_map)
    assert json.loads(Path(run, "trim.json").read_text())["summary"]["vocab_after"] == s["vocab_after"]
    # a bad embedding file fails with a clear error and leaves no half-written run directory
    np.save(tmp_path / "short.npy", emb[:100])
    with pytest.raises(ConfigError, match="no axis"):
        trim_tokenizer(out, TrimRequest(tokenizer="gpt2", languages=["eng_Latn"], embeddings=str(tmp_path / "short.npy"),
                                        register=False))
    assert not [p for p in (out / "trim" / "gpt2").iterdir() if p.name.startswith(".")]


def test_flow_through_spark_submit_equals_in_process(spark, prefect_harness, tmp_path):
    """With launcher "spark-submit" the token_freqs step runs in its own driver; the counts
    and the trimmed vocabulary equal those of the in-process run."""
    import pyarrow.dataset as pads

    results = {}
    for launcher in ("in-process", "spark-submit"):
        out = tmp_path / launcher
        write_small_corpus(out)
        params = TrimParams(out=str(out), tokenizer="gpt2", languages=["eng_Latn", "fra_Latn"],
                            tokenizer_manifest=str(shared_path("tokenizers", "MANIFEST.json")),
                            spark_launcher=launcher, spark_master="local[1]" if launcher == "spark-submit" else None)
        res = vocab_trim(params)
        freqs = pads.dataset(out / "token_freqs", format="parquet", partitioning="hive").to_table()
        key = freqs.column_names
        rows = sorted(tuple(r[c] for c in key) for r in freqs.select(key).to_pylist())
        ids = pq.read_table(f"{res['trim']['run_dir']}/id_map.parquet")["old_id"].to_pylist()
        results[launcher] = (res["token_freqs"]["cells_ok"], rows, ids)
    assert results["spark-submit"][0] == 2  # (gpt2) × (eng_Latn, fra_Latn)
    assert results["spark-submit"] == results["in-process"]
