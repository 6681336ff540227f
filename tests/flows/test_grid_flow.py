"""The grid flow end to end under real Prefect and Spark, and the `tokatlas grid` CLI."""

from __future__ import annotations

import json
import textwrap

import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from schemas import check_schema
from schemas.errors import ConfigError
from schemas.grid import GRID_CTC, GRID_FEATURES, GRID_FITS, GRID_OPTIMAL, GRID_TESTS

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


def _library_vocab_size(path) -> int:
    if path.suffix == ".model":
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path)).get_vocab_size(with_added_tokens=True)


def test_flow_trains_measures_and_reports(first_run):
    from jobs.train_grid import read_cells

    out, r = first_run
    assert r["status"]["planned"] == 18 and r["status"]["done"] == 18 and r["status"]["remaining"] == 0
    assert r["ctc"]["computed"] == 18
    sp = r["second_pass"]["status"]
    assert (sp["planned"], sp["done"], sp["failed"], sp["remaining"]) == (6, 6, 0, 0), sp
    d = out / "grid" / "flowtest" / "analysis"
    for name, ds in (("ctc", GRID_CTC), ("features", GRID_FEATURES), ("fits", GRID_FITS), ("optimal", GRID_OPTIMAL),
                     ("tests", GRID_TESTS)):
        check_schema(pq.read_schema(d / f"{name}.parquet"), ds, files=False)
    fits = pq.read_table(d / "fits.parquet").to_pylist()
    assert len(fits) == 6 and all(f["b"] < 0 for f in fits)
    opt = pq.read_table(d / "optimal.parquet").to_pylist()
    assert sorted((o["lang"], o["algorithm"]) for o in opt) == [
        (lang, alg) for lang in ("eng_Latn", "fin_Latn", "tur_Latn") for alg in ("hf-bpe", "sp-bpe")]
    # the second pass: one cell per optimal row, at its v_opt, trained ok, with the vocabulary
    # size its own library reads from the stored artifact
    cells = {c["cell_id"]: c for c in read_cells(out).to_pylist()}
    for o in opt:
        c = cells[o["cell_id"]]
        assert (c["lang"], c["algorithm"], c["vocab_size"], c["status"]) == (o["lang"], o["algorithm"], o["v_opt"],
                                                                            "ok"), (o, c["error"])
        assert 300 <= o["v_opt"] <= 3000 and o["actual_vocab_size"] == c["actual_vocab_size"]
        assert c["actual_vocab_size"] == _library_vocab_size(out / "registry" / c["artifact_uri"])
        assert abs(o["ctc_measured"] / o["ctc_predicted"] - 1) < 0.15  # lands near the predicted CTC
    tests = pq.read_table(d / "tests.parquet").to_pylist()
    assert {t["test"] for t in tests} == {"f_equal_vs_optimal", "paired_algorithms"}
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


def test_flow_through_spark_submit_equals_in_process(spark, prefect_harness, tmp_path):
    """Launcher "spark-submit": plan, train and CTC each run in their own driver and give the
    same cells, tokenizer ids and CTC as the in-process flow."""
    from flows.grid_flow import GridParams, tokenizer_grid
    from jobs.grid_analysis import read_ctc
    from jobs.train_grid import read_cells

    spec = tmp_path / "tiny.yaml"
    spec.write_text(textwrap.dedent(SPEC).replace("FLORES", str(shared_path("flores200", "flores200_dev_devtest.parquet")))
                    .replace("name: flowtest", "name: tiny").replace("[eng_Latn, fin_Latn, tur_Latn]", "[eng_Latn, fin_Latn]")
                    .replace("second_pass: true", "second_pass: false"))
    got = {}
    for launcher in ("in-process", "spark-submit"):
        out = tmp_path / launcher
        r = tokenizer_grid(GridParams(spec=str(spec), out=str(out), spark_launcher=launcher,
                                      spark_master="local[1]" if launcher == "spark-submit" else None))
        ids = [c["cell_id"] for c in read_cells(out).to_pylist()]
        manifest = json.loads((out / "grid" / "tiny" / "samples" / "samples.json").read_text())
        ctc = sorted((x["cell_id"], x["ctc"]) for x in read_ctc(out, ids, manifest).to_pylist())
        tok = sorted((c["cell_id"], c["status"], c["actual_vocab_size"]) for c in read_cells(out).to_pylist())
        got[launcher] = (r["status"]["done"], tok, ctc)
    assert got["spark-submit"][0] == got["in-process"][0] > 0
    assert got["spark-submit"] == got["in-process"]
