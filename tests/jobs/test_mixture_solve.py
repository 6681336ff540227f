"""LP solves as Spark tasks (jobs.mixture_solve): replicates run anywhere and equal the in-process
bootstrap, finished units are skipped on re-run, and a failing tokenizer fails alone."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.analysis.mixture.problem import replicate_weights
from jobs.analysis.mixture.solve import load_problem, solve_full, solve_mixture
from jobs.analysis.mixture.trajectory import (
    resample,
    trajectory_for_texts,
    write_trajectory,
)
from jobs.corpus.samples import flores_texts
from jobs.mixture_solve import load_solution, solve_job
from jobs.store.layout import (
    estimates_path,
    replicate_path,
    solution_file,
    solve_dir,
    trajectory_dir,
)
from tokenizers_registry.formats import load_merges
from tokenizers_registry.registry import manifest_entries

LANGS = ["eng_Latn", "deu_Latn", "rus_Cyrl"]
T = 120


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """gpt2 trajectories of three FLORES languages, and a copy ("broken") with one unreadable file."""
    out = tmp_path_factory.mktemp("solve")
    e = manifest_entries(shared_path("tokenizers", "MANIFEST.json"), ["gpt2"])[0]
    ml = load_merges(e["path"], e["format"], e["params"], e["name"])
    flores = shared_path("flores200", "flores200_dev_devtest.parquet")
    for lang in LANGS:
        texts = flores_texts(flores, lang, ("dev",))[:200]
        tr = trajectory_for_texts(ml, texts, T, top_k=3)
        for tok in ("gpt2", "broken"):
            write_trajectory(tr, trajectory_dir(out, tok, lang), {"tokenizer": tok, "category": lang})
        for b in (1, 2):  # sample-bootstrap replicates, as the counting job writes them
            rt = trajectory_for_texts(ml, resample(texts, b), T, top_k=3)
            write_trajectory(rt, trajectory_dir(out, "gpt2", lang, b), {"tokenizer": "gpt2", "category": lang})
    (trajectory_dir(out, "broken", "deu_Latn") / "deltas.parquet").write_bytes(b"not parquet")
    return out


def key(s: dict) -> tuple[str, str, str]:
    return s["out"], s["tokenizer"], s["fingerprint"]


def spec(out, tokenizer, method="lazy", B=3, fingerprint="fp1"):
    return {"out": str(out), "tokenizer": tokenizer, "categories": LANGS, "T": T, "n_bootstrap": B, "unit": "merges",
            "method": method, "gap_tolerance": 1e-9, "max_seconds": None, "fingerprint": fingerprint, "seed": 0}


@pytest.mark.shared
@pytest.mark.parametrize("method", ["lazy", "matching"])
def test_spark_replicates_equal_the_in_process_bootstrap(spark, out, method):
    s = spec(out, "gpt2", method, fingerprint=f"fp-{method}")
    [row] = solve_job(spark, [s])
    assert row["error"] is None, row["error"]
    res = row["result"]
    prob = load_problem(out, "gpt2", LANGS, T)
    ref = solve_mixture(prob, method=method, gap_tolerance=1e-9, n_bootstrap=3, seed=0)
    assert np.allclose(res["proportion"], ref.proportion, atol=1e-9)
    assert np.allclose(res["lo"], ref.lo, atol=1e-9) and np.allclose(res["hi"], ref.hi, atol=1e-9)
    # each replicate written by a Spark task is the optimum of its reweighted full LP
    universe = np.unique(np.concatenate([np.r_[tr.init_pair, tr.delta_pair] for tr in prob.trajs]))
    all_pairs = [universe[(prob.exact(universe, np.full(len(universe), t)) > 0).any(axis=1)] for t in range(T)]
    for b in (1, 2, 3):
        r = json.loads(replicate_path(*key(s), b).read_text())
        _, obj = solve_full(prob, all_pairs, step_weights=replicate_weights(prob, 0, b), return_objective=True)
        assert np.isclose(r["objective"], obj, rtol=1e-7), (b, r["objective"], obj)
    boot = np.array([json.loads(replicate_path(*key(s), b).read_text())["proportion"] for b in (1, 2, 3)])
    assert np.allclose(res["lo"], np.percentile(boot, 2.5, axis=0)) and res["n_bootstrap"] == 3
    table = pq.read_table(estimates_path(out, "gpt2")).to_pylist()
    assert [r["proportion_hi"] for r in table] == res["hi"] and {r["bootstrap"] for r in table} == {"merges"}


@pytest.mark.shared
def test_rerun_skips_finished_units_and_a_bad_tokenizer_fails_alone(spark, out):
    good, bad = spec(out, "gpt2", fingerprint="fp-resume"), spec(out, "broken", fingerprint="fp-resume")
    first = {r["tokenizer"]: r for r in solve_job(spark, [good, bad])}
    assert first["gpt2"]["error"] is None
    err = first["broken"]["error"]
    assert first["broken"]["result"] is None and err.startswith("broken main solve:") and "deltas.parquet" in err
    assert not solution_file(*key(bad)).exists() and not estimates_path(out, "broken").exists()
    # a crash after replicate 1: replicates 2 and 3 lost, a temp file left behind
    main = solution_file(*key(good))
    kept = {p: p.stat().st_mtime_ns for p in (main, replicate_path(*key(good), 1))}
    for b in (2, 3):
        replicate_path(*key(good), b).unlink()
    (solve_dir(*key(good)) / ".replicate=2.json.dead.tmp").write_text("{")
    [again] = solve_job(spark, [good])
    timeless = lambda r: {k: v for k, v in r.items() if k != "lp_seconds"}  # noqa: E731
    assert timeless(again["result"]) == timeless(first["gpt2"]["result"])  # replicates 2, 3 solved again: same
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # main solve and replicate 1 not redone
    assert [line.split(":")[0] for line in again["log"]] == ["replicate 2", "replicate 3"]
    assert load_solution(main).method == "lazy"
    # another fingerprint (changed inputs) solves afresh and removes the old units
    fresh = spec(out, "gpt2", fingerprint="fp-new", B=1)
    [new] = solve_job(None, [fresh])  # no Spark session: the same units in this process
    assert new["result"]["proportion"] == first["gpt2"]["result"]["proportion"] and new["result"]["n_bootstrap"] == 1
    assert not solve_dir(*key(good)).exists() and solution_file(*key(fresh)).exists()


@pytest.mark.shared
def test_sample_bootstrap_replicates_solve_the_resampled_trajectories(spark, out):
    """unit="samples": replicate b is the optimum of the LP over replicate b's recounted trajectories."""
    s = {**spec(out, "gpt2", "matching", B=2, fingerprint="fp-samples"), "unit": "samples"}
    [row] = solve_job(spark, [s])
    assert row["error"] is None, row["error"]
    assert row["result"]["bootstrap"] == "samples" and row["result"]["n_bootstrap"] == 2
    for b in (1, 2):
        rep = json.loads(replicate_path(*key(s), b).read_text())
        ref = solve_mixture(load_problem(out, "gpt2", LANGS, T, replicate=b), method="lazy")
        assert np.isclose(rep["objective"], ref.objective, rtol=1e-7), (b, rep["objective"], ref.objective)
        assert np.allclose(rep["proportion"], ref.proportion, atol=1e-5)
    main = solve_mixture(load_problem(out, "gpt2", LANGS, T), method="lazy")
    assert not np.allclose(main.proportion, ref.proportion, atol=1e-3)  # the resample moved the estimate
