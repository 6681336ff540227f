"""Training job on Spark with real trainers: failures recorded, re-runs train nothing,
ids stable across runs and output roots, CTC checked against the libraries directly."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.analysis.grid_spec import AnalysisSpec, DataSpec, GridSpec, Source, check_spec
from jobs.grid_analysis import compute_ctc, read_ctc
from jobs.store.layout import grid_cell_path, grid_sample_file
from jobs.train_grid import grid_status, plan_grid, read_cells, train_cells
from schemas import check_schema
from schemas.grid import GRID_CELLS, GRID_CTC
from tokenizers_registry.registry import Registry, load_tokenizer

LANGS = ("eng_Latn", "fin_Latn")


def _spec(name="t", algorithms=("hf-bpe", "sp-unigram", "superbpe"), vocab_sizes=(100, 400, 800),
          languages=LANGS, train_bytes=(30000,)) -> GridSpec:
    flores = str(shared_path("flores200", "flores200_dev_devtest.parquet"))
    udhr = str(shared_path("udhr", "udhr_articles.parquet"))
    return check_spec(GridSpec(
        name=name, languages=languages, algorithms=algorithms, vocab_sizes=vocab_sizes, train_bytes=train_bytes,
        data=DataSpec(train=(Source("flores", flores, ("dev",)), Source("udhr", udhr)),
                      eval=Source("flores", flores, ("devtest",))),
        analysis=AnalysisSpec()))


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    spec = _spec()
    cells, manifest = plan_grid(spec, out)
    first = train_cells(spark, out, spec, cells)
    return out, spec, cells, manifest, first


def test_samples_are_disjoint_from_evaluation_text(trained):
    out, spec, _, manifest, _ = trained
    for lang in LANGS:
        train = set(pq.read_table(grid_sample_file(out, spec.name, lang, "train"))["text"].to_pylist())
        ev = pq.read_table(grid_sample_file(out, spec.name, lang, "eval"))["text"].to_pylist()
        assert len(ev) == 1012 == manifest[lang]["n_eval"]  # FLORES devtest
        assert not train & set(ev)
        # FLORES dev (997 lines) plus the 31 UDHR units (preamble + 30 articles)
        assert manifest[lang]["n_train_lines"] + manifest[lang]["n_dropped_overlap"] == 997 + 31


def test_impossible_cells_fail_with_reasons_and_the_rest_complete(trained):
    out, _, cells, _, first = trained
    assert len(cells) == 18
    assert first.trained == 12 and first.failed == 6 and first.skipped == 0
    rows = read_cells(out, [c.cell_id for c in cells])
    check_schema(rows.schema, GRID_CELLS, files=False)
    by = {(r["lang"], r["algorithm"], r["vocab_size"]): r for r in rows.to_pylist()}
    for lang in LANGS:
        # V=100 is below every algorithm's alphabet: byte-level ones produce 257+ tokens,
        # SentencePiece refuses to train.
        assert by[(lang, "hf-bpe", 100)]["reason"] == "vocab_exceeded"
        assert by[(lang, "superbpe", 100)]["reason"] == "vocab_exceeded"
        assert by[(lang, "sp-unigram", 100)]["reason"] == "trainer_error"
        assert "required_chars" in by[(lang, "sp-unigram", 100)]["error"]
        for alg in ("hf-bpe", "sp-unigram", "superbpe"):
            assert by[(lang, alg, 100)]["status"] == "failed" and by[(lang, alg, 100)]["tokenizer_id"] is None
            for v in (400, 800):
                r = by[(lang, alg, v)]
                assert r["status"] == "ok", r["error"]
                assert 0.95 * v <= r["actual_vocab_size"] <= 1.05 * v
                assert r["bytes_seen"] >= 30000 and not r["data_limited"]
                assert r["train_seconds"] > 0 and r["task_seconds"] >= r["train_seconds"]
    st = grid_status(out, cells)
    assert (st.planned, st.done, st.failed, st.remaining) == (18, 12, 6, 0)


def test_trained_tokenizers_are_registered_and_load(trained):
    out, _, cells, _, first = trained
    reg = Registry(out / "registry")
    specs = {s.tokenizer_id: s for s in reg.specs()}
    ok = [r for r in read_cells(out, [c.cell_id for c in cells]).to_pylist() if r["status"] == "ok"]
    assert first.registered == len(specs) == len(ok) == 12
    for r in ok:
        s = specs[r["tokenizer_id"]]
        assert s.vocab_size == r["actual_vocab_size"] and s.sha256 == r["sha256"]
        assert reg.artifact_path(s).is_file()
        tok = load_tokenizer(s, reg.root)
        assert len(tok.encode("Ihmisoikeuksien yleismaailmallinen julistus")) > 0
    assert {s.algorithm for s in specs.values()} == {"bpe", "unigram", "superbpe"}


def test_rerun_trains_nothing_and_ids_are_stable(spark, trained):
    out, spec, cells, _, _ = trained
    before = {c.cell_id: grid_cell_path(out, c.cell_id).stat().st_mtime_ns for c in cells}
    n_reg = len(Registry(out / "registry").specs())
    again, _ = plan_grid(_spec(), out)
    assert [c.cell_id for c in again] == [c.cell_id for c in cells]
    s = train_cells(spark, out, spec, again)
    assert (s.trained, s.failed, s.skipped, s.registered) == (0, 0, 18, 0)
    assert {c.cell_id: grid_cell_path(out, c.cell_id).stat().st_mtime_ns for c in cells} == before
    assert len(Registry(out / "registry").specs()) == n_reg
    retry = train_cells(spark, out, spec, again, retry_failed=True)  # only the failed cells run again
    assert (retry.trained, retry.failed, retry.skipped) == (0, 6, 12)


def test_same_cells_in_a_fresh_root_give_the_same_tokenizer_ids(spark, trained, tmp_path):
    out, _, cells, _, _ = trained
    sub = _spec(vocab_sizes=(400,), languages=("fin_Latn",))
    cells2, _ = plan_grid(sub, tmp_path)
    s = train_cells(spark, tmp_path, sub, cells2)
    assert s.trained == 3
    first = {r["cell_id"]: r for r in read_cells(out, [c.cell_id for c in cells]).to_pylist()}
    for r in read_cells(tmp_path, [c.cell_id for c in cells2]).to_pylist():
        assert r["cell_id"] in first  # same cell, same id, in another output root
        assert r["tokenizer_id"] == first[r["cell_id"]]["tokenizer_id"]  # these trainers are deterministic


def test_ctc_matches_the_libraries_and_falls_with_vocabulary(spark, trained):
    import sentencepiece as spm
    from tokenizers import Tokenizer

    out, spec, cells, manifest, _ = trained
    res = compute_ctc(spark, out, spec.name, [c.cell_id for c in cells], manifest)
    assert (res["computed"], res["skipped"], res["failed"]) == (12, 0, [])
    assert compute_ctc(spark, out, spec.name, [c.cell_id for c in cells], manifest)["skipped"] == 12
    ctc = read_ctc(out, [c.cell_id for c in cells], manifest)
    check_schema(ctc.schema, GRID_CTC, files=False)
    assert ctc.num_rows == 12
    reg = Registry(out / "registry")
    for r in ctc.to_pylist():
        joined = " ".join(pq.read_table(grid_sample_file(out, spec.name, r["lang"], "eval"))["text"].to_pylist())
        path = reg.artifact_path(reg.get(r["tokenizer_id"]))
        if path.suffix == ".model":
            expected = len(spm.SentencePieceProcessor(model_file=str(path)).encode(joined))
        else:
            expected = len(Tokenizer.from_file(str(path)).encode(joined, add_special_tokens=False).ids)
        assert r["ctc"] == expected
        assert r["n_sentences"] == 1012 and r["n_bytes"] == len(joined.encode())
    by = {(r["lang"], r["algorithm"], r["vocab_size"]): r["ctc"] for r in ctc.to_pylist()}
    for lang in LANGS:
        for alg in ("hf-bpe", "sp-unigram", "superbpe"):
            assert by[(lang, alg, 800)] < by[(lang, alg, 400)]
        for v in (400, 800):  # superword merges only add to its BPE stage
            assert by[(lang, "superbpe", v)] < by[(lang, "hf-bpe", v)]


def test_byte_premium_scales_budgets(tmp_path):
    import dataclasses

    from jobs.analysis.grid_spec import expand, plan
    from jobs.train_grid import prepare_samples

    spec = check_spec(dataclasses.replace(_spec(languages=("eng_Latn", "rus_Cyrl")), scale_by_byte_premium=True))
    manifest = prepare_samples(spec, tmp_path)
    t = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["lang", "split", "text"],
                      filters=[("lang", "in", ["eng_Latn", "rus_Cyrl"]), ("split", "=", "dev")])
    size = {lang: sum(len(x.encode()) for x, g in zip(t["text"].to_pylist(), t["lang"].to_pylist(), strict=True)
                      if g == lang) for lang in ("eng_Latn", "rus_Cyrl")}
    assert manifest["eng_Latn"]["byte_premium"] == 1.0
    assert manifest["rus_Cyrl"]["byte_premium"] == pytest.approx(size["rus_Cyrl"] / size["eng_Latn"])
    assert 1.5 < manifest["rus_Cyrl"]["byte_premium"] < 2.5  # Cyrillic: two bytes per letter
    budgets = {c.lang: c.byte_budget for c in plan(expand(spec), manifest) if c.vocab_size == 400
               and c.algorithm == "hf-bpe"}
    assert budgets == {"eng_Latn": 30000, "rus_Cyrl": round(30000 * manifest["rus_Cyrl"]["byte_premium"])}


def test_samples_prepared_on_spark_equal_the_driver_loop(spark, tmp_path):
    """One Spark task per language writes the same samples and manifest as the loop."""
    from jobs.train_grid import prepare_samples

    spec = _spec(languages=("eng_Latn", "fin_Latn", "rus_Cyrl"))
    loop = prepare_samples(spec, tmp_path / "loop")
    on_spark = prepare_samples(spec, tmp_path / "spark", spark)
    assert on_spark == loop
    for lang in spec.languages:
        for kind in ("train", "eval"):
            a = pq.read_table(grid_sample_file(tmp_path / "loop", spec.name, lang, kind))
            b = pq.read_table(grid_sample_file(tmp_path / "spark", spec.name, lang, kind))
            assert a.equals(b) and a.num_rows > 0
    assert loop["rus_Cyrl"]["byte_premium_measured"] > 1.5


def test_a_language_without_evaluation_text_fails_on_spark_with_its_name(spark, tmp_path):
    from jobs.train_grid import prepare_samples
    from schemas.errors import ConfigError

    spec = _spec(languages=("eng_Latn", "xyz_Latn"))
    with pytest.raises(ConfigError, match="no evaluation text for xyz_Latn"):
        prepare_samples(spec, tmp_path, spark)
