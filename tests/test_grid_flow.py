"""The grid flow end to end under real Prefect and Spark, and the `tokatlas grid` CLI."""

from __future__ import annotations

import json
import textwrap

import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from schemas import check_schema
from schemas.grid import GRID_CTC, GRID_FEATURES, GRID_FITS, GRID_OPTIMAL, GRID_TESTS
from tokenizers_registry.base import ConfigError

SPEC = """
name: flowtest
languages: [eng_Latn, fin_Latn, tur_Latn]
algorithms: [hf-bpe, sp-bpe]
vocab_sizes: [400, 800, 1600]
train_bytes: [20000]
data:
  train: [{kind: flores, path: FLORES, splits: [dev]}]
  eval: {kind: flores, path: FLORES, splits: [devtest]}
analysis: {second_pass: true, optimal_min_vocab: 300, optimal_max_vocab: 3000}
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("spec") / "grid.yaml"
    p.write_text(textwrap.dedent(SPEC).replace("FLORES", str(shared_path("flores200", "flores200_dev_devtest.parquet"))))
    return p


@pytest.fixture(scope="module")
def first_run(spark, prefect_harness, spec_file, tmp_path_factory):
    from flows.grid_flow import GridParams, tokenizer_grid

    out = tmp_path_factory.mktemp("gridflow")
    return out, tokenizer_grid(GridParams(spec=str(spec_file), out=str(out)))


def test_flow_trains_measures_and_reports(first_run):
    out, r = first_run
    assert r["status"]["planned"] == 18 and r["status"]["done"] == 18 and r["status"]["remaining"] == 0
    assert r["ctc"]["computed"] == 18
    sp = r["second_pass"]["status"]
    assert sp["planned"] == 6 and sp["done"] + sp["failed"] == 6 and sp["remaining"] == 0
    d = out / "grid" / "flowtest" / "analysis"
    for name, ds in (("ctc", GRID_CTC), ("features", GRID_FEATURES), ("fits", GRID_FITS), ("optimal", GRID_OPTIMAL),
                     ("tests", GRID_TESTS)):
        check_schema(pq.read_schema(d / f"{name}.parquet"), ds, files=False)
    fits = pq.read_table(d / "fits.parquet").to_pylist()
    assert len(fits) == 6 and all(f["b"] < 0 for f in fits)
    opt = pq.read_table(d / "optimal.parquet").to_pylist()
    assert len(opt) == 6
    measured = [o for o in opt if o["ctc_measured"] is not None]
    assert len(measured) == sp["done"]
    for o in measured:  # the tokenizer trained at v_opt lands near the predicted CTC
        assert abs(o["ctc_measured"] / o["ctc_predicted"] - 1) < 0.15
    tests = pq.read_table(d / "tests.parquet").to_pylist()
    assert {t["test"] for t in tests} == {"f_equal_vs_optimal", "paired_algorithms"}
    if sp["failed"] == 0:
        assert {t["basis"] for t in tests if t["test"] == "f_equal_vs_optimal"} == {"measured"}
    html = (out / "reports" / "grid-flowtest" / "index.html").read_text()
    assert "Power-law fits" in html and "data:image/png;base64," in html


def test_rerun_trains_nothing(first_run, spec_file):
    from flows.grid_flow import GridParams, tokenizer_grid

    out, _ = first_run
    r = tokenizer_grid(GridParams(spec=str(spec_file), out=str(out)))
    assert r["train"]["trained"] == 0 and r["train"]["skipped"] == 18
    assert r["second_pass"]["train"]["trained"] == 0
    assert r["ctc"]["computed"] == 0 and r["ctc"]["skipped"] == 18


def test_cli_status(first_run, spec_file, capsys):
    from flows.cli import main

    out, _ = first_run
    assert main(["grid", "status", "--spec", str(spec_file), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["planned"], s["done"], s["failed"], s["remaining"]) == (18, 18, 0, 0)
    assert main(["grid", "status", "--spec", str(spec_file), "--out", str(out / "nothing")]) == 0
    assert "planned 18, done 0, failed 0, remaining 18" in capsys.readouterr().out


def test_bad_spec_fails_before_spark(tmp_path):
    from flows.grid_flow import GridParams

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlanguages: [eng_Latn]\nalgorithms: [hf-bpe]\nvocab_sizes: [100]\ntrain_bytes: [1]\n"
                   "data: {train: [], eval: {kind: flores, path: /nope.parquet}}\n")
    with pytest.raises(ConfigError, match="data.eval: path /nope.parquet does not exist"):
        GridParams(spec=str(bad)).checked()
