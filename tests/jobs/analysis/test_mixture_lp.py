"""The mixture LP: exact recovery on a controlled mixture, exact violation search, lazy = full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from jobs.analysis.mixture.lazy import LazyLP
from jobs.analysis.mixture.problem import (
    MixtureProblem,
    find_rows,
    replicate_weights,
    row_coef,
    segment_slots,
)
from jobs.analysis.mixture.solve import solve_full, solve_mixture
from jobs.analysis.mixture.trajectory import trajectory_for_texts
from jobs.corpus.samples import flores_texts
from jobs.mixture_eval import mixture_corpus
from tokenizers_registry.formats import load_merges
from tokenizers_registry.training import train_hf

LANGS = ["eng_Latn", "deu_Latn", "rus_Cyrl", "spa_Latn"]


@pytest.fixture(scope="module")
def controlled(tmp_path_factory):
    """An HF byte-level BPE trained on known byte shares of four FLORES languages."""
    flores = shared_path("flores200", "flores200_dev_devtest.parquet")
    train = {lang: flores_texts(flores, lang, ("dev",))[:250] for lang in LANGS}
    beta = np.array([0.1, 0.2, 0.3, 0.4])
    parts = mixture_corpus(train, beta, 120_000)
    corpus = [x for lang in LANGS for x in parts[lang]]
    np.random.default_rng(0).shuffle(corpus)
    path = train_hf("bpe", corpus, 257 + 500, tmp_path_factory.mktemp("mix") / "tokenizer.json")
    ml = load_merges(path, "hf-tokenizer-json", {}, "mix")
    beta = np.array([sum(len(x.encode()) for x in parts[lang]) for lang in LANGS], float)
    held = {lang: flores_texts(flores, lang, ("devtest",))[:250] for lang in LANGS}
    return ml, parts, beta / beta.sum(), held


@pytest.mark.shared
def test_lp_recovers_exact_proportions_in_sample(controlled):
    ml, parts, beta, _ = controlled
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, parts[lang], 500) for lang in LANGS], 500)
    sol = solve_mixture(prob)
    assert sol.status == "Optimal" and sol.objective < 1e-6 and sol.gap == 0.0  # exact: no row violated
    mse = np.mean((sol.proportion - beta) ** 2)
    # a solver that ignores the constraints (uniform answer) scores ~1e-2; a near miss ~1e-5
    assert mse < 1e-10, (sol.proportion, beta)
    assert np.mean((0.25 - beta) ** 2) > 1e-3


@pytest.mark.shared
def test_lazy_and_full_lp_agree_held_out(controlled):
    ml, _, beta, held = controlled
    T = 120
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, held[lang], T) for lang in LANGS], T)
    lazy = solve_mixture(prob, init_k=1)
    # every pair present at each step, from all categories' counts
    universe = np.unique(np.concatenate([tr.init_pair for tr in prob.trajs] + [tr.delta_pair for tr in prob.trajs]))
    all_pairs = []
    for t in range(T):
        c = prob.exact(universe, np.full(len(universe), t))
        all_pairs.append(universe[(c > 0).any(axis=1)])
    full, full_obj = solve_full(prob, all_pairs, return_objective=True)
    assert lazy.objective > 0  # held-out samples: the LP needs slack, so this is not a trivial feasibility check
    assert lazy.n_constraints < sum(len(p) for p in all_pairs) / 5  # lazy never materialised most rows
    assert np.allclose(prob.to_bytes(full), lazy.proportion, atol=1e-5)
    assert np.isclose(lazy.objective, full_obj, rtol=1e-7)
    assert np.mean((lazy.proportion - beta) ** 2) < 3e-3
    # the direct (non-compact) row form is the same LP
    direct = solve_mixture(prob, init_k=1, compact=False)
    assert np.isclose(direct.objective, full_obj, rtol=1e-7)
    # merge bootstrap: every replicate is re-converged, so it is the optimum of its reweighted full LP
    boot = solve_mixture(prob, init_k=1, n_bootstrap=2, seed=5)
    for b in range(2):
        w = replicate_weights(prob, 5, b + 1)
        _, obj_b = solve_full(prob, all_pairs, step_weights=w, return_objective=True)
        assert np.isclose(boot.boot_objective[b], obj_b, rtol=1e-7), b
    assert np.isclose(boot.objective, full_obj, rtol=1e-7)


@pytest.mark.shared
def test_violation_search_is_exact(controlled):
    """find_rows (segment walk) against brute force over all pairs at every step: every pair that
    violates anywhere is found, at a step where it does violate, with the right coefficients."""
    ml, _, _, held = controlled
    T = 80
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, held[lang], T, top_k=2) for lang in LANGS], T)
    rng = np.random.default_rng(1)
    universe = np.unique(np.concatenate([tr.init_pair for tr in prob.trajs] + [tr.delta_pair for tr in prob.trajs]))
    counts = np.stack([prob.exact(universe, np.full(len(universe), t)) for t in range(T)])  # T x pairs x n
    for _ in range(3):
        alpha = rng.dirichlet(np.ones(prob.n))
        vt = rng.exponential(0.5, T) * (rng.random(T) < 0.3)
        vp = (universe[:5], np.full(5, 2.0))
        thr = alpha @ prob.M + vt
        tol = 1e-9 * np.abs(prob.M).max()
        viol = counts @ alpha - np.r_[np.full(5, 2.0), np.zeros(len(universe) - 5)][None, :] - thr[:, None]

        for t in range(T):
            viol[t, universe == prob.merged_pair[t]] = -np.inf
        violators = set(universe[(viol > tol).any(axis=0)].tolist())
        st, pr, sl = find_rows(prob, alpha, vt, vp, per_step=10**6)
        assert set(pr.tolist()) == violators and len(violators) > 0
        col = {int(p): j for j, p in enumerate(universe)}
        # expand=True: every violated (t, p) of the full LP, each once
        assert len(set(zip(st.tolist(), pr.tolist(), strict=True))) == len(st) == int((viol > tol).sum())
        for t, p, c, s in zip(st.tolist(), pr.tolist(), row_coef(prob, st, pr), sl.tolist(), strict=True):
            assert viol[t, col[p]] > tol
            assert np.allclose(c, prob.M[:, t] - counts[t, col[p]])
            # the segment slot: counts are constant from s to t, and change at s (or s = 0)
            assert s <= t and np.array_equal(counts[s, col[p]], counts[t, col[p]])
            assert s == 0 or not np.array_equal(counts[s - 1, col[p]], counts[s, col[p]])
        assert np.array_equal(segment_slots(prob, pr, st), sl)
        # expand=False: each violating pair still found (at its most violated step per segment)
        st0, pr0, _ = find_rows(prob, alpha, vt, vp, per_step=10**6, expand=False)
        assert set(pr0.tolist()) == violators and all(viol[t, col[p]] > tol for t, p in zip(st0, pr0, strict=True))
        st1, _, _ = find_rows(prob, alpha, vt, vp, per_step=1)
        assert len(st1) == len(set(st1.tolist())) and set(st1.tolist()) == set(st.tolist())


@pytest.mark.shared
def test_bootstrap_intervals(controlled):
    ml, _, _, held = controlled
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, held[lang], 200) for lang in LANGS], 200)
    sol = solve_mixture(prob, n_bootstrap=8)
    assert sol.n_bootstrap == 8 and sol.boot.shape == (8, len(LANGS)) and sol.bootstrap == "merges"
    assert np.isclose(sol.boot.sum(axis=1), 1).all() and (sol.boot >= 0).all()
    assert (sol.boot.max(axis=0) > sol.boot.min(axis=0)).all()  # the reweighted merges moved every category
    # the interval is the replicates' 2.5 and 97.5 percentiles (linear interpolation between
    # order statistics, numpy's default): rank q·(B − 1) = 0.175 and 6.825 of 8
    s = np.sort(sol.boot, axis=0)
    assert np.allclose(sol.lo, s[0] + 0.175 * (s[1] - s[0]), rtol=0, atol=1e-15)
    assert np.allclose(sol.hi, s[6] + 0.825 * (s[7] - s[6]), rtol=0, atol=1e-15)
    assert np.array_equal(sol.lo, np.percentile(sol.boot, 2.5, axis=0))
    assert np.array_equal(sol.hi, np.percentile(sol.boot, 97.5, axis=0))


@pytest.mark.shared
def test_merges_absent_from_every_sample_are_skipped(controlled):
    """Without the Russian sample, the tokenizer's Cyrillic merges occur in no sample: they are
    left out of the LP (as in the paper's code), and lazy = full LP holds on the remaining steps."""
    ml, _, _, held = controlled
    T, langs = 300, [x for x in LANGS if x != "rus_Cyrl"]
    trajs = [trajectory_for_texts(ml, held[lang], T) for lang in langs]
    prob = MixtureProblem(langs, trajs, T)
    steps = np.arange(T)
    # cross-check against the count index (initial counts + deltas), not the stored merged counts
    present = (prob.exact(prob.merged_pair, steps) > 0).any(axis=1)
    assert np.array_equal(prob.used, present)
    skipped = np.flatnonzero(~prob.used)
    assert len(skipped) >= 10, len(skipped)
    # byte-level symbols: Cyrillic's UTF-8 lead bytes 0xD0 / 0xD1 are shown as "Ð" / "Ñ"
    cyrillic = [any(ch in "ÐÑ" for ch in "".join(ml.merges[t])) for t in skipped]
    assert np.mean(cyrillic) > 0.5, [ml.merges[t] for t in skipped]
    universe = np.unique(np.concatenate([tr.init_pair for tr in trajs] + [tr.delta_pair for tr in trajs]))
    all_pairs = [universe[(prob.exact(universe, np.full(len(universe), t)) > 0).any(axis=1)] for t in range(T)]
    sol = solve_mixture(prob, init_k=1)
    full, full_obj = solve_full(prob, all_pairs, return_objective=True)
    assert sol.status == "Optimal" and np.isclose(sol.objective, full_obj, rtol=1e-7)
    assert sol.merges_used == T - len(skipped) and not np.isin(sol.rows[0], skipped).any()
    # keeping them (skip_absent=False) is the literal LP: every pair present at a skipped step
    # must then be paid for, so the optimum is larger, and the lazy LP still matches the full one
    keep = MixtureProblem(langs, trajs, T, skip_absent=False)
    lit, lit_obj = solve_mixture(keep, init_k=1), solve_full(keep, all_pairs, return_objective=True)[1]
    assert keep.used.all() and np.isclose(lit.objective, lit_obj, rtol=1e-7) and lit_obj > full_obj * 1.01
    # seeding with the literal LP's rows (as the sample bootstrap seeds replicates): rows of skipped
    # steps are dropped, and the optimum is the same
    assert np.isin(lit.rows[0], skipped).any()
    for method in ("lazy", "bundle"):
        seeded = solve_mixture(prob, init_k=1, seed_rows=lit.rows, method=method, gap_tolerance=1e-8)
        assert not np.isin(seeded.rows[0], skipped).any(), method
        assert np.isclose(seeded.upper if method == "bundle" else seeded.objective, full_obj, rtol=1e-7), method


def held_out_problem(ml, held, T):
    """The held-out problem and, per step, every pair present in any category (for the full LP)."""
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, held[lang], T) for lang in LANGS], T)
    universe = np.unique(np.concatenate([tr.init_pair for tr in prob.trajs] + [tr.delta_pair for tr in prob.trajs]))
    all_pairs = []
    for t in range(T):
        c = prob.exact(universe, np.full(len(universe), t))
        all_pairs.append(universe[(c > 0).any(axis=1)])
    return prob, all_pairs


@pytest.mark.shared
def test_continuation_reaches_the_full_lp_optimum(controlled):
    """Continuation (search a subset of steps first, then all) ends at the full LP's optimum."""
    ml, _, _, held = controlled
    T = 120
    prob, all_pairs = held_out_problem(ml, held, T)
    full, full_obj = solve_full(prob, all_pairs, return_objective=True)
    assert full_obj > 0
    for kind in ("stride", "prefix"):
        stages = []
        sol = solve_mixture(prob, init_k=1, continuation=2, continuation_kind=kind, log=stages.append)
        # two subset stages ran and logged, then the search over every step converged
        assert sum(m.startswith("stage ") for m in stages) == 2, (kind, stages)
        assert sol.status == "Optimal", (kind, sol.status)
        assert np.isclose(sol.objective, full_obj, rtol=1e-7), kind
        assert np.allclose(prob.to_bytes(full), sol.proportion, atol=1e-5), kind
    # a solve stopped early brackets the optimum: restricted objective <= optimum <= certified upper bound
    for rounds in (1, 2, 3):
        part = solve_mixture(prob, init_k=1, max_rounds=rounds)
        assert "not converged" in part.status and part.gap > 0, (rounds, part.status)
        assert np.isclose(part.gap, (part.upper - part.objective) / part.upper)
        assert part.objective <= full_obj * (1 + 1e-9) and full_obj <= part.upper * (1 + 1e-9), (rounds, part.upper)
    # stopped inside a continuation stage: still certified against every step
    part = solve_mixture(prob, init_k=1, max_rounds=1, continuation=2)
    assert "continuation stage 1 of 3" in part.status and part.gap > 0, part.status
    assert part.objective <= full_obj * (1 + 1e-9) and full_obj <= part.upper * (1 + 1e-9)
    assert solve_mixture(prob, init_k=1).gap < 1e-12  # converged: only float round-off remains
    with pytest.raises(ValueError, match="continuation_kind"):
        solve_mixture(prob, continuation=1, continuation_kind="random")


def test_tree_cover_partitions_each_range():
    from jobs.analysis.mixture.matching import tree_cover

    rng = np.random.default_rng(0)
    L = 64
    lo = rng.integers(0, L, 500)
    hi = np.minimum(lo + rng.integers(1, L, 500), L)
    seg, node = tree_cover(lo, hi, L)
    for i in range(len(lo)):
        leaves = []
        for v in node[seg == i]:
            depth = int(v).bit_length() - 1  # node v covers 2^(log2 L − depth) leaves
            width = L >> depth
            first = (v - (1 << depth)) * width
            leaves += range(first, first + width)
        assert sorted(leaves) == list(range(lo[i], hi[i])), i  # exact cover, no overlap
        assert len(node[seg == i]) <= 2 * np.log2(L)


# HiGHS (highspy), then OR-Tools' min-cost flow (`match_segments`), then HiGHS again, in one fresh
# process whose first import is argv[1]: ortools bundles its own HiGHS, and with highspy 1.15.x the
# second of the two to be imported failed to load (undefined symbols)
ONE_PROCESS = r"""
import json, sys
import numpy as np
if sys.argv[1] == "ortools":
    from ortools.graph.python import min_cost_flow  # noqa: F401
import highspy
from jobs.analysis.mixture.matching import match_segments

def lp():  # min x + 2y subject to x + y >= 3, y >= 1: optimum 4 at (2, 1)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.addVars(2, np.zeros(2), np.full(2, highspy.kHighsInf))
    h.changeColsCost(2, np.arange(2), np.array([1.0, 2.0]))
    h.addRow(3.0, highspy.kHighsInf, 2, np.arange(2), np.ones(2))
    h.addRow(1.0, highspy.kHighsInf, 1, np.array([1]), np.ones(1))
    h.run()
    return [h.getInfo().objective_function_value, list(h.getSolution().col_value)]

first = lp()
# pair 0 may take leaf 0-1 (weight 3) or leaf 2-3 (weight 4), pair 1 leaf 0 (2), pair 2 leaf 3 (1,
# but leaf 3 costs 5): the best matching is pair 0 on leaf 2 and pair 1 on leaf 0, weight 6
seg, leaf = match_segments(np.array([0, 0, 1, 2]), np.array([3.0, 4.0, 2.0, 1.0]), np.array([0, 2, 0, 3]),
                           np.array([2, 4, 1, 4]), np.array([0.0, 0.0, 0.0, 5.0]), np.ones(4, np.int64), 1e6)
print(json.dumps({"modules": sorted(m for m in ("highspy", "ortools") if m in sys.modules),
                  "lp": [first, lp()], "matching": [seg.tolist(), leaf.tolist()]}))
"""


@pytest.mark.parametrize("first", ["highspy", "ortools"])
def test_highs_and_ortools_solve_in_one_process(first):
    root = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", ONE_PROCESS, first], cwd=root, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["modules"] == ["highspy", "ortools"]
    assert out["lp"] == [[4.0, [2.0, 1.0]], [4.0, [2.0, 1.0]]]
    assert out["matching"] == [[2, 1], [0, 2]]


@pytest.mark.shared
def test_matching_method_reaches_the_full_lp_optimum(controlled):
    """The matching oracle computes f(α) exactly (checked against the fixed-α LP), its edges are a
    matching, and the staged solve ends at the full LP's optimum, also when it stops early."""
    from jobs.analysis.mixture.cover import CoverLP, oracle
    from jobs.analysis.mixture.matching import matching

    ml, _, _, held = controlled
    T = 120
    prob, all_pairs = held_out_problem(ml, held, T)
    full, full_obj = solve_full(prob, all_pairs, return_objective=True)
    rng = np.random.default_rng(4)
    for _ in range(3):
        a = rng.dirichlet(np.ones(prob.n))
        f, f_up, _, _ = oracle(CoverLP(prob), a, rounds=1, max_rounds=10_000)
        assert np.isclose(f, f_up)
        m = matching(prob, a)
        assert m.complete and m.violating > 5 and len(m.steps) > 10
        assert abs(m.value - f) <= m.error + 1e-9 * f, (m.value, f)
        assert len(np.unique(m.steps)) == len(m.steps) and len(np.unique(m.pairs)) == len(m.pairs)
        w = row_coef(prob, m.steps, m.pairs) @ a  # each edge's weight is −(its row's α part)
        assert np.isclose(-w.sum(), m.value) and (w <= 1e-9 * np.abs(prob.M).max()).all()
        assert (m.slots == segment_slots(prob, m.pairs, m.steps)).all()
        t = matching(prob, a, max_segments=5)  # the 5 most violated segments only: a lower bound
        assert not t.complete and len(t.steps) <= 5 and t.value <= m.value + 1e-9
    from jobs.analysis.mixture.matching import solve_matching

    sol = solve_mixture(prob, method="matching", init_k=1, gap_tolerance=1e-9)  # T < 1,000: one stage
    logs = []
    staged = solve_matching(prob, stages=[40, 80], init_k=1, gap_tolerance=1e-9, stage_tolerance=0.0,
                            ipm_rows=0, log=logs.append)  # and every re-solve after new rows by interior point
    assert [m.split(" round")[0] for m in logs if m.startswith("stage")][::-1][0] == "stage 3/3 (T = 120)"
    assert any("interior point" in m for m in logs) and not any("simplex" in m for m in logs)
    assert any(m.startswith("stage 1/3 (T = 40)") for m in logs)
    # every simplex solve abandoned at once (time box 0 s) for interior point: the same optimum
    logs = []
    abandoned = solve_matching(prob, init_k=1, gap_tolerance=1e-9, ipm_rows=10**9, simplex_seconds=0.0,
                               log=logs.append)
    rounds = [m for m in logs if " round " in m]
    assert rounds and all("; simplex stopped at 0 s, then interior point " in m for m in rounds), logs
    # a network truncated to the 5 most violated segments: more rounds, certified by complete matchings
    logs = []
    trunc = solve_matching(prob, init_k=1, gap_tolerance=1e-9, max_segments=5, log=logs.append)
    assert any("truncated" in m for m in logs) and any("complete matching" in m for m in logs)
    for s_ in (sol, staged, abandoned, trunc):
        assert np.isclose(s_.objective, full_obj, rtol=1e-7)
        assert s_.gap <= 1e-9 and full_obj <= s_.upper * (1 + 1e-9)
        assert np.allclose(prob.to_bytes(full), s_.proportion, atol=1e-5)
    # the rows with a nonzero dual (what bootstrap replicates start from) hold the optimum alone
    bst, bpr = sol.binding_rows
    assert 0 < len(bst) < sol.n_constraints
    alone = LazyLP(prob)
    alone.add_rows(bst, bpr, segment_slots(prob, bpr, bst))
    assert np.isclose(alone.solve()[4], sol.objective, rtol=1e-9)
    # fewer rounds than the lazy search
    lazy = solve_mixture(prob, init_k=1)
    assert sol.n_rounds < lazy.n_rounds, (sol.n_rounds, lazy.n_rounds)
    # stopped in the first of three stages: the bracket is still certified against the full LP
    part = solve_matching(prob, stages=[40, 80], init_k=1, max_rounds=1)
    assert "stopped in stage 1 of 3" in part.status and part.gap > 0, part.status
    assert part.objective <= full_obj * (1 + 1e-9) and full_obj <= part.upper * (1 + 1e-9)
    # merge bootstrap: each replicate (a step drawn k times may be matched k times) is re-converged
    # to the optimum of its reweighted full LP
    boot = solve_mixture(prob, method="matching", init_k=1, gap_tolerance=1e-9, n_bootstrap=2, seed=5)
    for b in range(2):
        w = replicate_weights(prob, 5, b + 1)
        assert w.max() > 1  # some merge drawn twice: capacities above 1 are exercised
        _, obj_b = solve_full(prob, all_pairs, step_weights=w, return_objective=True)
        assert np.isclose(boot.boot_objective[b], obj_b, rtol=1e-7), b
    assert boot.n_bootstrap == 2 and np.all(boot.lo <= boot.hi + 1e-12)
    assert np.isclose(boot.objective, full_obj, rtol=1e-7)


@pytest.mark.shared
def test_auto_method_picks_matching_from_auto_matching_t(controlled, monkeypatch):
    """auto: the lazy LP below AUTO_MATCHING_T, the matching method from it."""
    import jobs.analysis.mixture.solve

    ml, _, _, held = controlled
    T = 120
    prob, _ = held_out_problem(ml, held, T)
    assert solve_mixture(prob, method="auto").status == "Optimal"
    monkeypatch.setattr(jobs.analysis.mixture.solve, "AUTO_MATCHING_T", T)
    assert "stopped in stage 1 of 1 after 1 rounds" in solve_mixture(prob, method="auto", max_rounds=1).status


@pytest.mark.shared
def test_bundle_method_brackets_and_reaches_the_full_lp_optimum(controlled, monkeypatch):
    """The level bundle method (jobs.analysis.mixture.bundle): cuts from inexact oracles are valid lower
    bounds, its upper bound is a feasible point's objective, and it converges to the full LP's optimum."""
    from jobs.analysis.mixture.cover import CoverLP, oracle

    ml, _, _, held = controlled
    T = 120
    prob, all_pairs = held_out_problem(ml, held, T)
    full, full_obj = solve_full(prob, all_pairs, return_objective=True)
    # cuts: a one-round oracle at α1 gives g with g · α2 <= f(α2) for every α2, and f(α1) in [lower, upper]
    rng = np.random.default_rng(3)
    lp = CoverLP(prob)
    a1 = rng.dirichlet(np.ones(prob.n))
    lo, up, g, _ = oracle(lp, a1, rounds=1, max_rounds=1)
    assert np.isclose(g @ a1, lo)
    exact = CoverLP(prob)
    f1, f1_up, _, _ = oracle(exact, a1, rounds=1, max_rounds=10_000)
    assert np.isclose(f1, f1_up) and lo <= f1 * (1 + 1e-9) <= up * (1 + 1e-9) and lo < up
    for _ in range(5):
        a2 = rng.dirichlet(np.ones(prob.n))
        f2, _, _, _ = oracle(exact, a2, rounds=1, max_rounds=10_000)
        assert g @ a2 <= f2 * (1 + 1e-9) + 1e-9
    assert full_obj <= f1 * (1 + 1e-9)  # the optimum is below f anywhere
    # the solve (to 1e-8: HiGHS 1.16 stalls near 3e-9, see STALL_ITERATIONS): bounds bracket the optimum
    logs = []
    sol = solve_mixture(prob, method="bundle", gap_tolerance=1e-8, init_k=1, log=logs.append)
    assert "converged to certified gap" in sol.status and sol.gap <= 1e-8, sol.status
    assert sol.objective <= full_obj * (1 + 1e-9) and full_obj <= sol.upper * (1 + 1e-9)
    assert np.isclose(sol.upper, full_obj, rtol=1e-8)
    assert np.allclose(prob.to_bytes(full), sol.proportion, atol=1e-4), (prob.to_bytes(full), sol.proportion)
    assert len(logs) == sol.n_rounds > 1
    # stopped after two iterations: not converged, still a certified bracket
    part = solve_mixture(prob, method="bundle", init_k=1, max_rounds=2)
    assert "not converged" in part.status and part.gap > 1e-6, part.status
    assert part.objective <= full_obj * (1 + 1e-9) and full_obj <= part.upper * (1 + 1e-9)
    with pytest.raises(ValueError, match="method"):
        solve_mixture(prob, method="simplex")
    # merge bootstrap: each replicate is solved to the gap, so it matches its reweighted full LP
    boot = solve_mixture(prob, method="bundle", gap_tolerance=1e-8, init_k=1, n_bootstrap=2, seed=5)
    for b in range(2):
        w = replicate_weights(prob, 5, b + 1)
        _, obj_b = solve_full(prob, all_pairs, step_weights=w, return_objective=True)
        assert np.isclose(boot.boot_objective[b], obj_b, rtol=1e-7), b
    assert boot.n_bootstrap == 2 and np.all(boot.lo <= boot.hi + 1e-12)
