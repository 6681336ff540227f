"""The `mixture` CLI subcommand, parameter checks, and the flow end to end with re-runs."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from flows.mixture_flow import MixtureParams, add_cli
from tokenizers_registry.base import ConfigError


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
    m.write_text("{}")
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
    import jobs.mixture_lp

    monkeypatch.setattr(jobs.mixture_lp, "LP_VERSION", jobs.mixture_lp.LP_VERSION + 1)
    again = mixture_inference(dataclasses.replace(p, lp_T=200))["estimates"]["gpt2"]
    assert again["reused"] is False and again["proportion"] == third["proportion"]
    # the matching method (OR-Tools worker) through the flow, with a merge bootstrap: the same LP optimum
    from jobs.matching_worker import ortools_available

    if ortools_available():
        matched = mixture_inference(dataclasses.replace(p, lp_T=200, lp_method="matching", n_bootstrap=2,
                                                        gap_tolerance=1e-9))["estimates"]["gpt2"]
        assert matched["reused"] is False and matched["n_bootstrap"] == 2
        assert "not converged" not in matched["status"], matched["status"]
        assert np.allclose(matched["proportion"], third["proportion"], atol=1e-6), (matched, third)
        assert all(lo <= hi for lo, hi in zip(matched["lo"], matched["hi"], strict=True))
        assert {r["n_bootstrap"] for r in pq.read_table(path).to_pylist()} == {2}

    # pair counting in a spark-submit'ed driver writes the same trajectories as in-process
    sub = tmp_path / "submitted"
    fourth = mixture_inference(dataclasses.replace(p, out=str(sub), spark_launcher="spark-submit",
                                                   spark_master="local[1]"))["estimates"]["gpt2"]
    assert fourth["proportion"] == first["proportion"] and fourth["reused"] is False
    for cat in first["categories"]:
        rel = f"mixture/trajectories/tokenizer=gpt2/category={cat}/steps.parquet"
        assert pq.read_table(sub / rel).equals(pq.read_table(out / rel))


def test_controlled_flow_recovers_known_mixtures(prefect_harness, spark, tmp_path):
    """`mixture eval` under Prefect: BPE trained on a known mixture of 3 FLORES languages, attacked
    in-sample (exact: only the solver could err) and held out, with the lazy LP and, through the
    Spark task's own worker process, the matching method."""
    import json

    from conftest import shared_path

    from flows.mixture_flow import ControlledParams, mixture_controlled
    from jobs.matching_worker import ortools_available
    from jobs.mixture_eval import SUMMARY_COLUMNS

    methods = ["lazy"] + (["matching"] if ortools_available() else [])
    for method in methods:
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
            if r["kind"] == "in_sample":
                assert r["mse"] < 1e-12, r  # the training text itself: recovery must be exact
            else:  # held-out sentences: sampling error, still far better than guessing uniform
                assert r["mse"] < r["mse_uniform"] / 10, r
        summary = {s["kind"]: s for s in res["summary"]}
        assert set(summary) == {"held_out", "in_sample"} and summary["in_sample"]["trials"] == 2
        assert summary["in_sample"]["log10_mse"] < -12 and summary["in_sample"]["lp_method"] == method
        header = "| " + " | ".join(SUMMARY_COLUMNS) + " |"
        assert (out / "reports" / "mixture_eval" / "report.md").read_text().startswith(header)
