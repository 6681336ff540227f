"""The mixture LP solved by lazy rows that a maximum-weight matching names (method="matching").

For a fixed α the LP is a cover problem, min Σ v_t + Σ v_p subject to v_t + v_p ≥ d_p(t) with
d_p(t) = α·c̃(p, t) − α·c̃(m_t, t). Its dual is a maximum-weight bipartite matching between
merges and competing pairs, and the rows (t, p) of the matched edges are the tight rows of the
optimal cover at α. The lazy search of `jobs.analysis.mixture.solve` adds each step's most violated row
under the current (α, v); at T = 30,000 the optimal cover is a deep staircase (thousands of
pairs with v_p > 0, each step held down by its own pair) that it discovers one layer per round,
for hundreds of rounds. The matching names the whole staircase at once, so the restricted LP
becomes exact at the current α after one round (docs/mixture.md, "The matching method").

The matching is a min-cost flow. A pair's weight is constant on a segment of steps (between
two of its count events), so a segment reaches its steps through the O(log T) nodes of a
segment tree over the steps instead of one arc per (step, pair): source → pair (capacity 1)
→ segment (cost −weight) → tree nodes → leaf step (cost: the step's threshold) → sink.
OR-Tools' network simplex (`SimpleMinCostFlow`) solves it in this process, beside highspy (ortools
bundles its own HiGHS; the two import together from highspy 1.16 on, see pyproject.toml).

The solve runs in stages over prefixes of the merge list (T/3^k, ..., T/3, T): each stage
starts from the previous stage's α and tight rows (rows of a prefix are rows of the full LP),
so the expensive last stage begins near its optimum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from jobs.analysis.mixture.lazy import LazyLP
from jobs.analysis.mixture.problem import (
    MixtureProblem,
    MixtureSolution,
    _range_argmin,
    find_rows,
    initial_rows,
    lp_rows,
    row_coef,
    segment_slots,
    segment_values,
    step_thresholds,
)
from schemas.errors import ConfigError

MAX_SEGMENTS = 250_000  # most violated pair segments per flow: enough at T = 30,000 (docs/mixture.md)
FIRST_STAGE = 1_000  # merges of the first stage
STAGE_RATIO = 3  # each stage has this many times the merges of the one before
STAGE_TOLERANCE = 1e-3  # gap (certified, or the matching's estimate) that ends a stage before the last
COST_RANGE = 1e12  # largest integer arc cost: leaves room for OR-Tools' cost scaling in int64
# HiGHS rows from which a re-solve after new rows uses interior point + crossover instead of the
# warm dual simplex (a third of it for a model's first, cold solve). Measured (docs/mixture.md):
# equal at 36k rows, IPM 0.78x the warm repair's time at 99k rows and 0.56x at 112k (T = 30,000,
# n = 100), but up to 5x slower at 55-75k rows in a T = 10,000 bootstrap
IPM_ROWS = 90_000
# A simplex re-solve still running after this long is abandoned for interior point + crossover
# (`LazyLP.solve`): healthy warm re-solves below IPM_ROWS took <= 41 s at T = 30,000, but warm
# simplex solves after a bootstrap replicate's reweighting took 341 s (dual) and > 500 s (primal,
# unfinished) where interior point took 232 s (docs/mixture.md)
SIMPLEX_SECONDS = 120.0


@dataclass
class Matching:
    """The maximum-weight matching at one α, as LP rows."""

    steps: np.ndarray
    pairs: np.ndarray
    slots: np.ndarray  # first step of each matched pair's segment (LazyLP.add_rows)
    value: float  # Σ matched weights: f(α) when `complete`, else a lower bound on it
    error: float  # bound on what rounding the costs can lose: f(α) ≤ value + error when complete
    violating: int  # pair segments with a positive weight at some step
    complete: bool  # all of them were in the network (else the `max_segments` most violated)


def _min_cost_flow():
    """OR-Tools' min-cost flow module, imported on first use (ortools is heavy)."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError as e:
        raise ConfigError(f"the mixture LP's matching method cannot import OR-Tools (a dependency of tokatlas: "
                          f"pip install -e .): {e}") from None
    return min_cost_flow


def tree_cover(lo: np.ndarray, hi: np.ndarray, leaves: int) -> tuple[np.ndarray, np.ndarray]:
    """The canonical nodes of a heap-ordered segment tree with `leaves` (a power of two) leaves
    that cover each range [lo, hi): (range index, node), O(log leaves) nodes per range."""
    lo, hi = lo + leaves, hi + leaves
    rng = np.arange(len(lo))
    out_r, out_n = [], []
    while True:
        act = lo < hi
        if not act.any():
            break
        m = act & (lo & 1 == 1)
        out_r.append(rng[m])
        out_n.append(lo[m])
        lo = np.where(m, lo + 1, lo)
        m = act & (hi & 1 == 1)
        hi = np.where(m, hi - 1, hi)
        out_r.append(rng[m])
        out_n.append(hi[m])
        lo >>= 1
        hi >>= 1
    return np.concatenate(out_r), np.concatenate(out_n)


def match_segments(pair: np.ndarray, weight: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   leaf_cost: np.ndarray, leaf_cap: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight b-matching of segments to leaves: at most one segment per pair (ids
    0..P-1), at most leaf_cap[i] segments on leaf i; segment s may take a leaf in [lo, hi) and
    gains weight − leaf_cost (costs are rounded to multiples of 1/scale). Returns the matched
    (segments, leaves), by OR-Tools' network simplex."""
    min_cost_flow = _min_cost_flow()
    n_leaves, S = len(leaf_cost), len(pair)
    P = int(pair.max()) + 1 if S else 0
    L = 1 << max(n_leaves - 1, 0).bit_length()  # leaves of the segment tree: a power of two ≥ n_leaves
    src, snk, pbase = 0, 1, 2
    sbase = pbase + P
    tbase = sbase + S  # tree node v (heap order, 1..2L-1) is graph node tbase + v
    seg, node = tree_cover(lo, hi, L)
    inner = np.arange(1, L)
    tails = [np.full(P, src), pbase + pair, sbase + seg, tbase + inner, tbase + inner, tbase + L + np.arange(n_leaves)]
    heads = [pbase + np.arange(P), sbase + np.arange(S), tbase + node, tbase + 2 * inner, tbase + 2 * inner + 1,
             np.full(n_leaves, snk)]
    caps = [np.ones(P), np.ones(S), np.ones(len(seg)), np.full(L - 1, P), np.full(L - 1, P), leaf_cap]
    costs = [np.zeros(P), -np.round(weight * scale), np.zeros(len(seg)), np.zeros(L - 1), np.zeros(L - 1),
             np.round(leaf_cost * scale)]
    # a direct source → sink arc lets pairs stay unmatched
    tails, heads, caps, costs = (np.r_[np.concatenate(x), y].astype(np.int64)
                                 for x, y in ((tails, src), (heads, snk), (caps, P), (costs, 0)))
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supply = np.zeros(tbase + 2 * L, np.int64)
    supply[src], supply[snk] = P, -P
    flow.set_nodes_supplies(np.arange(len(supply)), supply)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow status {status}")
    F = flow.flows(np.arange(flow.num_arcs()))
    off = np.cumsum([0, P, S, len(seg), L - 1])
    f_cover, f_left = F[off[2]:off[3]], F[off[3]:off[4]]
    # decompose: each unit entering a tree node goes left or right as the flows on its two arcs
    # say; which unit goes where does not matter (every unit below a node fits every leaf below it)
    units: list[list[int]] = [[] for _ in range(2 * L)]
    for s, v in zip(seg[f_cover > 0].tolist(), node[f_cover > 0].tolist(), strict=True):
        units[v].append(s)
    for v in range(1, L):
        u = units[v]
        if u:
            k = int(f_left[v - 1])
            units[2 * v].extend(u[:k])
            units[2 * v + 1].extend(u[k:])
    segs = [s for i in range(n_leaves) for s in units[L + i]]
    leaves = [i for i in range(n_leaves) for _ in units[L + i]]
    return np.array(segs, np.int64), np.array(leaves, np.int64)


def matching(prob: MixtureProblem, alpha: np.ndarray, step_weights: np.ndarray | None = None,
             complete: bool = False, max_segments: int = MAX_SEGMENTS) -> Matching:
    """The maximum-weight matching at α, of the `max_segments` most violated pair segments (all
    of them with complete=True: exact f(α), more memory); with integer step weights (a
    merge-bootstrap replicate, whose v_t cost w_t) step t may be matched to up to w_t pairs,
    which is the dual of the weighted cover."""
    ev = prob.events()
    thr = step_thresholds(prob, alpha, np.zeros(prob.T))
    idx, w = segment_values(prob, alpha, (np.zeros(0, np.int64), np.zeros(0)), thr.min())
    a, b = ev.slot[idx], ev.seg_end[idx]
    best = w - thr[_range_argmin(thr, a, b)] if len(idx) else np.zeros(0)
    keep = best > 0
    idx, w, a, b, best = idx[keep], w[keep], a[keep], b[keep], best[keep]
    violating = len(idx)
    if violating > max_segments and not complete:
        o = np.argpartition(-best, max_segments)[: max_segments]
        idx, w, a, b = idx[o], w[o], a[o], b[o]
    cap = np.ones(prob.T, np.int64) if step_weights is None else np.rint(step_weights).astype(np.int64)
    steps = np.flatnonzero(prob.used & (cap > 0))
    lo, hi = np.searchsorted(steps, a), np.searchsorted(steps, b)
    ok = hi > lo  # a segment whose steps all have weight 0 cannot be matched
    idx, w, lo, hi = idx[ok], w[ok], lo[ok], hi[ok]
    _, pair = np.unique(ev.pair[idx], return_inverse=True)
    cost = thr[steps]
    top = max(float(np.abs(w).max()) if len(w) else 0.0, float(np.abs(cost).max()) if len(cost) else 0.0, 1.0)
    scale = COST_RANGE / top
    if len(idx):
        seg, leaf = match_segments(pair, w, lo, hi, cost, cap[steps], scale)
    else:
        seg, leaf = np.zeros(0, np.int64), np.zeros(0, np.int64)
    st, s = steps[leaf], idx[seg]
    value = float((w[seg] - thr[st]).sum())
    # each edge's rounded weight is off by at most 1/scale; a matching has ≤ Σ capacities edges
    return Matching(st, ev.pair[s], ev.slot[s], value, 2.0 * float(cap[steps].sum()) / scale, violating,
                    complete or violating <= max_segments)


def _relative_gap(upper: float, lower: float) -> float:
    return (upper - lower) / upper if upper > 0 else 0.0


def default_stages(T: int, first: int = FIRST_STAGE, ratio: int = STAGE_RATIO) -> list[int]:
    """Prefix lengths T/ratio^k ≥ first, ..., T/ratio, T."""
    stages = [T]
    while stages[0] // ratio >= first:
        stages.insert(0, stages[0] // ratio)
    return stages


def tight_rows(lp: LazyLP, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The rows of lp that hold with equality at its last solution (slack ≤ tol · largest count)."""
    prob = lp.prob
    st, pr = lp.rows()
    x = np.asarray(lp.h.getSolution().col_value)
    n, T = prob.n, prob.T
    vp = x[lp.vp_col[np.searchsorted(lp.vp_key, pr)]] if len(pr) else np.zeros(0)
    slack = row_coef(prob, st, pr) @ x[:n] + x[n:n + T][st] + vp
    keep = slack <= tol * max(float(np.abs(prob.M).max()), 1.0)
    return st[keep], pr[keep]


def _converge(lp: LazyLP, max_segments: int, tol: float, deadline: float | None, max_rounds: int | None,
              step_weights: np.ndarray | None = None, log=None, label: str = "", estimate: bool = False,
              ipm_rows: int | None = IPM_ROWS, simplex_seconds: float | None = SIMPLEX_SECONDS):
    """Rounds on one LP until exact, certified gap ≤ tol, or a limit: (α, v_t, v_p, HiGHS status,
    objective, upper bound, gap, exact, rounds, done). estimate=True also ends when the matching's
    value (a lower bound on f(α) if its network was truncated) is within tol of the objective: an
    uncertified gap, good enough for a stage that only warms up the next one."""
    from jobs.analysis.mixture.cover import repaired_upper

    prob = lp.prob
    w = np.ones(prob.T) if step_weights is None else np.asarray(step_weights, float)
    rounds = 0
    while True:
        t0 = time.time()
        alpha, vt, vp, status, obj = lp.solve(ipm_rows, simplex_seconds)
        t_lp = time.time() - t0
        rounds += 1
        stats = {}
        st, pr, sl, viol = find_rows(prob, alpha, vt, vp, expand=False, return_violation=True, stats=stats)
        exact = not (viol > 0).any()
        upper, note = obj, ""
        if not exact:
            upper = repaired_upper(prob, alpha, vt, vp, obj, stats["repair"], w)
            lp.add_rows(st, pr, sl)
            note = f", +{len(st)} violated rows"
        gap = _relative_gap(upper, obj)
        stop = (deadline is not None and time.time() > deadline) or (max_rounds is not None and rounds >= max_rounds)
        done = exact or gap <= tol
        if not (done or stop):
            t1 = time.time()
            m = matching(prob, alpha, step_weights, max_segments=max_segments)
            added = lp.add_rows(m.steps, m.pairs, m.slots)
            if m.complete:
                upper = min(upper, m.value + m.error)
                gap = _relative_gap(upper, obj)
            note += (f", matching {m.value:.6g} ({len(m.steps)} edges, +{added} rows, "
                     f"{m.violating} violating segments{'' if m.complete else ', truncated'})")
            close = m.value - obj <= tol * m.value  # the truncated matching says: about done
            if close and gap > tol and not m.complete and not estimate:
                # certify: f(α) exactly from the network with every violating segment
                m = matching(prob, alpha, step_weights, complete=True)
                lp.add_rows(m.steps, m.pairs, m.slots)
                upper = min(upper, m.value + m.error)
                gap = _relative_gap(upper, obj)
                note += f", complete matching {m.value:.6g}"
            note += f"; oracle {time.time() - t1:.1f} s"
            done = gap <= tol or (estimate and close)
        if log:
            log(f"{label}round {rounds}: objective {obj:.6g}, certified gap {gap:.2e}, {lp.n_rows} rows{note}; "
                f"{lp.last_solver} {t_lp:.1f} s")
        if done or stop:
            return alpha, vt, vp, status, obj, upper, gap, exact, rounds, done


def solve_matching(prob: MixtureProblem, *, gap_tolerance: float = 1e-6, stages: list[int] | None = None,
                   stage_tolerance: float = STAGE_TOLERANCE, init_k: int = 3, max_segments: int = MAX_SEGMENTS,
                   max_seconds: float | None = None, max_rounds: int | None = None,
                   seed_rows: tuple[np.ndarray, np.ndarray] | None = None, step_weights: np.ndarray | None = None,
                   start_alpha: np.ndarray | None = None, ipm_rows: int | None = IPM_ROWS,
                   simplex_seconds: float | None = SIMPLEX_SECONDS, log=None) -> MixtureSolution:
    """Solve the mixture LP in stages over merge-list prefixes; each round re-solves the lazy LP,
    adds the violated rows found by `find_rows` and the rows of the maximum-weight matching at
    the new α. A stage ends when no row of its LP is violated (exact) or its certified gap is
    ≤ its tolerance (stage_tolerance, gap_tolerance for the last; a stage before the last also
    ends when the matching's value is within stage_tolerance). step_weights: costs of the v_t
    (a merge-bootstrap replicate; a step drawn k times may be matched k times). start_alpha (with
    seed_rows, e.g. another solve's binding rows): one stage over all merges, starting from the
    matching at start_alpha. ipm_rows, simplex_seconds: see `LazyLP.solve` (None: always the warm
    dual simplex, never abandoned)."""
    from jobs.analysis.mixture.cover import step_needs

    t0 = time.time()
    _min_cost_flow()  # fail before any work if ortools is missing
    deadline = None if max_seconds is None else t0 + max_seconds
    w = np.ones(prob.T) if step_weights is None else np.asarray(step_weights, float)
    stages = [prob.T] if start_alpha is not None else stages or default_stages(prob.T)
    stages = [s for s in stages if s < prob.T] + [prob.T]
    carried, alpha = seed_rows, start_alpha
    rounds = iterations = 0
    for k, Tk in enumerate(stages):
        last = k == len(stages) - 1
        sub = prob if last else prob.prefix(Tk)
        tol = gap_tolerance if last else max(stage_tolerance, gap_tolerance)
        lp = LazyLP(sub)
        wk = w[:Tk]
        lp.set_step_weights(wk)
        if k == 0:
            lp.add_rows(*initial_rows(sub, init_k))
        if carried is not None:
            st, pr = lp_rows(sub, carried)
            lp.add_rows(st, pr, segment_slots(sub, pr, st))
        if alpha is not None:
            m = matching(sub, alpha, wk, max_segments=max_segments)
            lp.add_rows(m.steps, m.pairs, m.slots)
        if log:
            log(f"stage {k + 1}/{len(stages)} (T = {Tk}): {lp.n_rows} rows at {time.time() - t0:.0f} s")
        left = None if max_rounds is None else max_rounds - rounds
        alpha, vt, vp, status, obj, upper, gap, exact, r, done = _converge(
            lp, max_segments, tol, deadline, left, wk, log=log, label=f"stage {k + 1}/{len(stages)} (T = {Tk}) ",
            estimate=not last, ipm_rows=ipm_rows, simplex_seconds=simplex_seconds)
        rounds += r
        iterations += lp.iterations
        if not done:
            if not last:  # certify against the full LP: a prefix optimum bounds it from below
                upper = float(w @ step_needs(prob, alpha, vp) + vp[1].sum())  # v_p kept, v_t raised to need
                gap = _relative_gap(upper, obj)
            status = f"{status}; stopped in stage {k + 1} of {len(stages)} after {rounds} rounds, " \
                     f"not converged, certified gap {gap:.2e}"
            break
        if not last:
            carried = tight_rows(lp)
    else:
        if not exact:
            status = f"{status}; certified gap {gap:.2e}"
    lp.upper, lp.gap = upper, gap
    a = np.maximum(alpha, 0)
    a = a / a.sum()
    sol = MixtureSolution(prob.names, a, prob.to_bytes(a), status, obj, lp.n_rows, rounds,
                          time.time() - t0, T=prob.T, rows=lp.rows(), iterations=iterations, gap=gap,
                          upper=upper, merges_used=int(prob.used.sum()), method="matching",
                          binding_rows=lp.binding_rows() if lp.prob is prob and lp.solves else None)
    return sol

