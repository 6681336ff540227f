"""Inequity analysis on synthetic counts with known answers, and the report."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from jobs.analysis.grid import (
    analyse,
    choose_targets,
    f_test,
    fit_all,
    fit_power_law,
    optimal_vocab,
    paired_tests,
    predict,
    regressions,
)
from jobs.reports.grid import render_grid_report
from schemas import check_schema, conform
from schemas.grid import (
    GRID_CTC,
    GRID_FEATURES,
    GRID_FITS,
    GRID_OPTIMAL,
    GRID_REGRESSIONS,
    GRID_TESTS,
)

SIZES = [500, 1000, 2000, 4000, 8000, 16000]


def test_power_law_recovers_known_parameters_exactly():
    f = fit_power_law(SIZES, [3.0e5 * v ** -0.25 for v in SIZES])
    assert f["a"] == pytest.approx(3.0e5, rel=1e-9)
    assert f["b"] == pytest.approx(-0.25, abs=1e-12)
    assert f["r2"] == pytest.approx(1.0) and f["rmse_rel"] < 1e-12 and f["loo_rel_error"] < 1e-12


def test_power_law_recovers_parameters_under_noise():
    rng = np.random.default_rng(7)
    bs = []
    for _ in range(200):
        y = [2.0e5 * v ** -0.3 * math.exp(rng.normal(0, 0.02)) for v in SIZES]
        bs.append(fit_power_law(SIZES, y)["b"])
    assert abs(np.mean(bs) + 0.3) < 0.003  # unbiased in log space
    f = fit_power_law(SIZES, [2.0e5 * v ** -0.3 * math.exp(rng.normal(0, 0.02)) for v in SIZES])
    # the reported standard error matches the spread over replicates (within 30%)
    assert f["b_se"] == pytest.approx(np.std(bs), rel=0.3)


def test_power_law_with_offset_recovers_c():
    f = fit_power_law(SIZES, [4.0e5 * v ** -0.5 + 20000 for v in SIZES], offset=True)
    assert f["a"] == pytest.approx(4.0e5, rel=1e-4)
    assert f["b"] == pytest.approx(-0.5, abs=1e-4)
    assert f["c"] == pytest.approx(20000, rel=1e-3)


def test_optimal_vocab_inverts_the_fit_with_an_interval():
    rng = np.random.default_rng(1)
    f = fit_power_law(SIZES, [3.0e5 * v ** -0.25 * math.exp(rng.normal(0, 0.01)) for v in SIZES])
    v, lo, hi = optimal_vocab(f, 40000.0)
    assert float(predict(f, v)) == pytest.approx(40000.0, rel=1e-9)
    assert lo < v < hi
    true_v = (40000 / 3.0e5) ** (1 / -0.25)
    assert lo < true_v < hi


def _ctc_table(params: dict, sizes=SIZES, algorithm="hf-bpe") -> pa.Table:
    rows = []
    for lang, (a, b) in params.items():
        for v in sizes:
            rows.append({"cell_id": f"{lang}-{algorithm}-{v}", "tokenizer_id": "t", "lang": lang, "algorithm": algorithm,
                         "pre_tokenizer": "bytelevel", "vocab_size": v, "train_bytes": 1000,
                         "byte_budget": 1000, "actual_vocab_size": v, "eval_version": "e", "n_sentences": 10,
                         "ctc": round(a * v ** b), "n_bytes": 1, "n_chars": 1, "n_unk": 0})
    return conform(pa.Table.from_pylist(rows), GRID_CTC)


LANG_PARAMS = {"aaa_Latn": (3.0e5, -0.25), "bbb_Latn": (4.0e5, -0.27), "ccc_Arab": (5.0e5, -0.26)}


def test_target_choice_and_optimal_sizes():
    _, fits = fit_all(_ctc_table(LANG_PARAMS))
    # A target reachable by every language inside the allowed range: variance 0.
    table, chosen = choose_targets(fits, 100, 100000)
    T = chosen[("hf-bpe", "bytelevel", 1000, None)]
    assert table.filter(pa.compute.field("chosen")).num_rows == 1
    for lang, (a, b) in LANG_PARAMS.items():
        v, _, _ = optimal_vocab(fits[(lang, "hf-bpe", "bytelevel", 1000, None)], T)
        assert v == pytest.approx((T / a) ** (1 / b), rel=1e-3)
    # With a tight range not every language reaches a common target: the chosen one minimises the spread.
    table, chosen = choose_targets(fits, 1500, 2000)
    rows = table.to_pylist()
    best = [r for r in rows if r["chosen"]]
    assert len(best) == 1
    assert best[0]["variance"] == pytest.approx(min(r["variance"] for r in rows), abs=1e-3)
    assert best[0]["variance"] > 1.0 and max(r["n_clipped"] for r in rows) == 3


def test_f_test_against_the_f_distribution():
    F, p = f_test([10.0, 20.0, 30.0, 40.0], [24.0, 25.0, 26.0, 25.0])
    assert pytest.approx((500 / 3) / (2 / 3)) == F
    from scipy import stats
    assert p == pytest.approx(stats.f.sf(250.0, 3, 3))
    assert p < 0.001


def test_paired_tests_detect_a_constant_ratio():
    a = _ctc_table(LANG_PARAMS, algorithm="hf-bpe")
    b = _ctc_table({k: (v[0] * 0.9, v[1]) for k, v in LANG_PARAMS.items()}, algorithm="sp-bpe")
    rows = paired_tests(pa.concat_tables([a, b]))
    assert len(rows) == 1
    r = rows[0]
    assert r["group"] == "hf-bpe vs sp-bpe" and r["n1"] == 18
    assert r["stat1"] == pytest.approx(1 / 0.9, rel=1e-3)
    assert r["p_value"] < 1e-3  # all 18 pairs one way: exact 2^-17; the tie-corrected normal approx ~2e-4
    assert r["p_value_t"] < 1e-10


def test_regression_finds_the_explaining_feature():
    langs = [f"l{i:02d}_Latn" for i in range(8)]
    langs = [lang.replace("l", "x", 1) for lang in langs]
    word = np.linspace(4, 9, 8)
    params = {lang: (1e5 * math.exp(0.3 * w), -0.25) for lang, w in zip(langs, word, strict=True)}
    ctc = _ctc_table(params, sizes=[1000, 2000])
    rng = np.random.default_rng(3)
    feats = conform(pa.Table.from_pylist([
        {"lang": lang, "script": "Latn" if i % 2 else "Cyrl", "mean_word_chars": float(w),
         "whitespace_share": float(rng.uniform(0.1, 0.2)), "bytes_per_char": float(rng.uniform(1, 2)),
         "train_eval_similarity": float(rng.uniform(0.4, 0.8))}
        for i, (lang, w) in enumerate(zip(langs, word, strict=True))]), GRID_FEATURES)
    reg = regressions(ctc, feats)
    check_schema(reg.schema, GRID_REGRESSIONS, files=False)
    by = {(r["vocab_size"], r["feature"]): r for r in reg.to_pylist()}
    for v in (1000, 2000):
        assert by[(v, "mean_word_chars")]["r2"] == pytest.approx(1.0, abs=1e-6)
        assert by[(v, "mean_word_chars")]["slope"] == pytest.approx(0.3, abs=1e-3)
        assert by[(v, "bytes_per_char")]["r2"] < 0.9
        assert by[(v, "combined")]["n_params"] == 6  # intercept, 4 features, 1 script dummy
        assert by[(v, "script")]["n_params"] == 2


def test_analyse_and_report(tmp_path):
    ctc = pa.concat_tables([_ctc_table(LANG_PARAMS), _ctc_table(LANG_PARAMS, algorithm="superbpe")])
    ctc = ctc.set_column(ctc.schema.get_field_index("transition_vocab"), "transition_vocab",
                         pa.array([None] * 18 + [int(v * 0.8) for v in SIZES] * 3, pa.int64()))
    ctc = ctc.set_column(ctc.schema.get_field_index("ctc"), "ctc",
                         pa.array([c if i < 18 else int(c * 0.95) for i, c in enumerate(ctc["ctc"].to_pylist())],
                                  pa.int64()))
    feats = conform(pa.Table.from_pylist([{"lang": lang, "script": lang[-4:], "mean_word_chars": 5.0 + i,
                                           "whitespace_share": 0.15, "bytes_per_char": 1.0 + i / 3,
                                           "train_eval_similarity": 0.6}
                                          for i, lang in enumerate(LANG_PARAMS)]), GRID_FEATURES)
    t = analyse(ctc, feats, vmin=100, vmax=100000)
    for name, ds in (("fits", GRID_FITS), ("optimal", GRID_OPTIMAL), ("tests", GRID_TESTS)):
        check_schema(t[name].schema, ds, files=False)
    assert t["fits"].num_rows == 6 and t["optimal"].num_rows == 6
    assert set(t["fits"]["algorithm"].to_pylist()) == {"hf-bpe", "superbpe@0.8"}
    f_rows = [r for r in t["tests"].to_pylist() if r["test"] == "f_equal_vs_optimal"]
    assert len(f_rows) == 12 and {r["basis"] for r in f_rows} == {"predicted"}
    paths = render_grid_report(t, tmp_path / "report", status={"planned": 36, "done": 36, "failed": 0,
                                                                "remaining": 0, "failures": []})
    md = paths["markdown"].read_text()
    for section in ("## Power-law fits", "## Optimal vocabulary size", "## F-test", "## Paired tests",
                    "## Superword BPE vs byte-level BPE"):
        assert section in md
    for fig in ("ctc_vs_vocab", "ctc_equal_vs_optimal", "superword_vs_bpe"):
        assert paths[fig].stat().st_size > 5000
    assert "data:image/png;base64," in paths["html"].read_text()
