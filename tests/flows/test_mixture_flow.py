"""The `mixture` CLI subcommand, parameter checks, and the flow end to end with re-runs."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from flows.mixture_flow import MixtureParams, add_cli
from schemas.errors import ConfigError


def test_add_cli_registers_mixture_subcommands():
    ap = argparse.ArgumentParser()
    add_cli(ap.add_subparsers(dest="cmd"))
    a = ap.parse_args(["mixture", "infer", "--tokenizer-manifest", "m.json", "--flores", "f.parquet", "--T", "500",
                       "--bootstrap-unit", "samples", "--out", "o"])
    assert (a.cmd, a.mixture_cmd, a.T, a.bootstrap_unit, a.code_bytes) == ("mixture", "infer", 500, "samples", 300_000)
    assert (a.lp_T, a.reuse_counts) == (None, True)
    a = ap.parse_args(["mixture", "infer", "--tokenizer-manifest", "m.json", "--flores", "f.parquet", "--T", "500",
                       "--lp-T", "200", "--no-reuse-counts"])
    assert (a.lp_T, a.reuse_counts) == (200, False)
    a = ap.parse_args(["mixture", "eval", "--flores", "f.parquet", "--n", "5,10"])
    assert a.mixture_cmd == "eval" and a.n == "5,10" and callable(a.func) and a.code is False
    assert ap.parse_args(["mixture", "eval", "--flores", "f.parquet", "--code"]).code is True


def test_params_fail_fast(tmp_path):
    with pytest.raises(ConfigError, match="manifest"):
        MixtureParams(tokenizer_manifest=str(tmp_path / "missing.json")).checked()
    m = tmp_path / "m.json"
    m.write_text('{"tokenizers": []}')
    f = tmp_path / "f.parquet"
    f.write_text("")
    with pytest.raises(ConfigError, match="bootstrap unit"):
        MixtureParams(tokenizer_manifest=str(m), flores=str(f), bootstrap_unit="words").checked()
    with pytest.raises(ConfigError, match="lp_T"):
        MixtureParams(tokenizer_manifest=str(m), flores=str(f), T=100, lp_T=200).checked()
    assert MixtureParams(tokenizer_manifest=str(m), flores=str(f), T=100, lp_T=50).checked().lp_T == 50


def test_mixture_flow_end_to_end_and_a_rerun_reuses_counts_and_solutions(prefect_harness, spark, tmp_path,
                                                                         monkeypatch):
    """The real flow under Prefect on gpt2 × 3 FLORES languages + Python code; an identical
    re-run counts and solves nothing; a changed LP parameter re-solves from the same counts."""
    import dataclasses

    import pyarrow.parquet as pq
    from conftest import shared_path
    from helpers import write_manifest_subset

    from flows.mixture_flow import mixture_inference
    from schemas import check_schema
    from schemas.mixture import MIXTURE_ESTIMATES

    out = tmp_path / "out"
    p = MixtureParams(out=str(out), tokenizer_manifest=str(write_manifest_subset(tmp_path / "m.json", ["gpt2"])),
                      flores=str(shared_path("flores200", "flores200_dev_devtest.parquet")),
                      languages=["eng_Latn", "deu_Latn", "rus_Cyrl"], code_bytes=20_000, T=300, n_bootstrap=0)
    first = mixture_inference(p)["estimates"]["gpt2"]
    assert sorted(first["categories"]) == ["code_python", "deu_Latn", "eng_Latn", "rus_Cyrl"]
    assert abs(sum(first["proportion"]) - 1) < 1e-9 and first["reused"] is False and first["T"] == 300
    path = out / "mixture" / "estimates" / "tokenizer=gpt2.parquet"
    check_schema(pq.read_schema(path), MIXTURE_ESTIMATES, files=False)
    assert pq.read_table(path).num_rows == 4
    # the LP's steps: merges of the first 300 whose pair occurs in some sample, in the table and the report
    assert 0 < first["merges_used"] <= 300
    assert set(pq.read_table(path, columns=["merges_used"]).column(0).to_pylist()) == {first["merges_used"]}
    assert f"| gpt2 | 300 | {first['merges_used']} |" in (out / "reports" / "mixture" / "report.md").read_text()

    second = mixture_inference(p)["estimates"]["gpt2"]
    assert second["reused"] is True and second["proportion"] == first["proportion"]
    cells = pq.read_table(out / "mixture" / "cells").to_pylist()
    assert sorted(c["category"] for c in cells) == sorted(first["categories"])
    assert {c["status"] for c in cells} == {"reused"}

    third = mixture_inference(dataclasses.replace(p, lp_T=200))["estimates"]["gpt2"]
    assert third["reused"] is False and third["T"] == 200
    assert {c["status"] for c in pq.read_table(out / "mixture" / "cells").to_pylist()} == {"reused"}
    # a new LP definition (LP_VERSION) is a changed input too: the saved solution is not reused
    import jobs.analysis.mixture.problem

    monkeypatch.setattr(jobs.analysis.mixture.problem, "LP_VERSION", jobs.analysis.mixture.problem.LP_VERSION + 1)
    again = mixture_inference(dataclasses.replace(p, lp_T=200))["estimates"]["gpt2"]
    assert again["reused"] is False and again["proportion"] == third["proportion"]
    # pair counting in a spark-submit'ed driver writes the same trajectories as in-process
    sub = tmp_path / "submitted"
    fourth = mixture_inference(dataclasses.replace(p, out=str(sub), spark_launcher="spark-submit",
                                                   spark_master="local[1]"))["estimates"]["gpt2"]
    assert fourth["proportion"] == first["proportion"] and fourth["reused"] is False
    for cat in first["categories"]:
        rel = f"mixture/trajectories/tokenizer=gpt2/category={cat}/steps.parquet"
        assert pq.read_table(sub / rel).equals(pq.read_table(out / rel))

    # the matching method (OR-Tools) through the flow, with a merge bootstrap: the same LP optimum
    matched = mixture_inference(dataclasses.replace(p, lp_T=200, lp_method="matching", n_bootstrap=2,
                                                    gap_tolerance=1e-9))["estimates"]["gpt2"]
    assert matched["reused"] is False and matched["n_bootstrap"] == 2
    assert "not converged" not in matched["status"], matched["status"]
    assert np.allclose(matched["proportion"], third["proportion"], atol=1e-6), (matched, third)
    assert all(lo <= hi for lo, hi in zip(matched["lo"], matched["hi"], strict=True))
    assert {r["n_bootstrap"] for r in pq.read_table(path).to_pylist()} == {2}


@pytest.mark.parametrize("method", ["lazy", "matching"])
def test_controlled_flow_recovers_known_mixtures(prefect_harness, spark, tmp_path, method):
    """`mixture eval` under Prefect: BPE trained on a known mixture of 3 FLORES languages, attacked
    in-sample (exact: only the solver could err) and held out, with the lazy LP and the matching
    method. Every score is recomputed here from the true and estimated proportions the run wrote."""
    import json

    from conftest import shared_path

    from flows.mixture_flow import ControlledParams, mixture_controlled
    from jobs.mixture_eval import SUMMARY_COLUMNS

    out = tmp_path / method
    p = ControlledParams(out=str(out), flores=str(shared_path("flores200", "flores200_dev_devtest.parquet")),
                         n=(3,), T=(150,), sample_lines=(200,), trials=2, train_bytes=40_000, lp_method=method)
    res = mixture_controlled(p)
    rows = json.loads((out / "reports" / "mixture_eval" / "trials.json").read_text())
    assert sorted((r["kind"], r["seed"]) for r in rows) == sorted(
        (k, s) for k in ("held_out", "in_sample") for s in {r["seed"] for r in rows})
    assert len(rows) == 4 and {r["lp_method"] for r in rows} == {method}
    for r in rows:
        assert r["n"] == 3 and r["T"] == 150 and "not converged" not in r["status"]
        true, est, guess = (np.array(r[k]) for k in ("true_proportion", "estimated_proportion", "random_guess"))
        assert len(r["langs"].split(",")) == len(true) == len(est) == len(guess) == 3
        assert np.isclose(true.sum(), 1) and (true > 0).all() and np.isclose(est.sum(), 1) and (est >= 0).all()
        mse = float(np.mean((est - true) ** 2))
        assert r["mse"] == mse and r["mse_random"] == float(np.mean((guess - true) ** 2))
        assert r["mse_uniform"] == float(np.mean((1 / 3 - true) ** 2))
        if r["kind"] == "in_sample":
            assert mse < 1e-12, r  # the training text itself: recovery must be exact
        else:  # held-out sentences: sampling error, still far better than guessing uniform
            assert mse < r["mse_uniform"] / 10, r
    summary = {s["kind"]: s for s in res["summary"]}
    assert set(summary) == {"held_out", "in_sample"} and summary["in_sample"]["trials"] == 2
    for kind, s in summary.items():  # the summary is the mean log10 of those MSEs
        mses = [np.mean((np.array(r["estimated_proportion"]) - r["true_proportion"]) ** 2) for r in rows
                if r["kind"] == kind]
        assert s["log10_mse"] == pytest.approx(np.mean(np.log10(np.maximum(mses, 1e-300))), rel=1e-12)
    assert summary["in_sample"]["log10_mse"] < -12 and summary["in_sample"]["lp_method"] == method
    header = "| " + " | ".join(SUMMARY_COLUMNS) + " |"
    assert (out / "reports" / "mixture_eval" / "report.md").read_text().startswith(header)


KNOWN_MIX = {"eng_Latn": 4, "deu_Latn": 1, "rus_Cyrl": 2}  # copies of each language's FLORES text


def test_infer_recovers_the_mixture_of_a_tokenizer_trained_on_known_shares(prefect_harness, spark, tmp_path):
    """`tokatlas mixture infer` on a byte-level BPE trained here (HF tokenizers) on 4 copies of the
    English FLORES dev+devtest text, 1 of German and 2 of Russian: the true byte shares are
    4·b_eng : b_deu : 2·b_rus. The samples `infer` counts are those very texts, so each
    category's pair counts are its share of the training counts: the true proportions satisfy
    every LP row with zero slack, and the tight rows (ties among the late merges' counts) pin
    them; the LP's optimum is them up to round-off (measured: < 1e-16). So the bound is 1e-9,
    where a wrong count, merge order or byte conversion misses by 1e-3 or more (training on the
    dev half only, i.e. sampling noise alone, already misses by ~2e-3)."""
    import hashlib
    import json

    import pyarrow.parquet as pq
    from conftest import shared_path
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from flows.cli import main

    T = 300
    flores = shared_path("flores200", "flores200_dev_devtest.parquet")
    t = pq.read_table(flores, columns=["lang", "split", "sentence_id", "text"],
                      filters=[("lang", "in", list(KNOWN_MIX))]).to_pylist()
    texts = {lang: [r["text"] for r in t if r["lang"] == lang] for lang in KNOWN_MIX}
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=256 + T, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([x for lang, k in KNOWN_MIX.items() for x in texts[lang] * k], trainer=trainer)
    d = tmp_path / "tokenizers"
    d.mkdir()
    tok.save(str(d / "known_mix.tokenizer.json"))
    assert len(json.loads((d / "known_mix.tokenizer.json").read_text())["model"]["merges"]) == T
    (d / "MANIFEST.json").write_text(json.dumps({"tokenizers": [{
        "name": "known-mix", "file": "known_mix.tokenizer.json", "format": "hf-tokenizer-json",
        "sha256": hashlib.sha256((d / "known_mix.tokenizer.json").read_bytes()).hexdigest()}]}))
    out = tmp_path / "out"
    assert main(["mixture", "infer", "--tokenizer-manifest", str(d / "MANIFEST.json"), "--flores", str(flores),
                 "--languages", ",".join(KNOWN_MIX), "--code-bytes", "0", "--T", str(T), "--bootstrap", "0",
                 "--out", str(out)]) == 0
    rows = {r["category"]: r for r in pq.read_table(out / "mixture" / "estimates" / "tokenizer=known-mix.parquet")
            .to_pylist()}
    assert sorted(rows) == sorted(KNOWN_MIX)
    b = {lang: k * sum(len(x.encode("utf-8")) for x in texts[lang]) for lang, k in KNOWN_MIX.items()}
    for lang, r in rows.items():
        assert abs(r["proportion"] - b[lang] / sum(b.values())) < 1e-9, (lang, r["proportion"], b)
        assert r["merges_used"] == T  # every merge's pair occurs in the samples (they are the training text)
        assert r["objective"] < 1e-9 and r["status"] == "Optimal", r
