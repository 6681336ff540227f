"""The mixture LP solved as a convex problem over α alone: a level bundle method (for large T × n).

For a fixed α the mixture LP is

    f(α) = min Σ_t v_t + Σ_p v_p   s.t.  v_t + v_p ≥ C_tp · α,  v ≥ 0,   C_tp = c̃(p, t) − c̃(m_t, t)

(a fractional vertex cover of the step–pair graph; its dual is a max-weight matching y), and the
full LP is min over the simplex of f. f is convex, and every dual-feasible y of any restricted
cover LP gives a cut that is valid everywhere: f(α') ≥ Σ y_tp C_tp · α' = g · α' (y stays feasible
for every α', and C_tp · α' ≤ (C_tp · α')⁺). So:

* the *oracle* (`CoverLP`) solves the fixed-α LP by lazy rows, exactly as `jobs.mixture_lp` does,
  but its rows have two nonzeros and no α part, and α only moves the right-hand sides, so warm
  re-solves are cheap; a few rounds give a lower bound (its objective = g · α), a cut g, and an
  upper bound (its v repaired to feasibility, see `oracle`);
* the *master* keeps the cuts: L = min over the simplex of max_k g_k · α is a certified lower bound
  on the optimum and U = the best upper bound found; the next α is the Euclidean projection of the
  best point onto {α : g_k · α ≤ L + λ (U − L) ∀k} (level bundle method of Lemaréchal, Nemirovskii
  and Nesterov), which keeps α from swinging between vertices the way plain cutting planes (the
  lazy LP) do.

It stops when (U − L) / U ≤ gap_tolerance: the answer is α with a certified gap, not an exact
vertex; `jobs.mixture_lp.solve_mixture(method=...)` chooses between the two.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.mixture_lp import (
    MixtureProblem,
    MixtureSolution,
    add_pair_slacks,
    find_rows,
    initial_rows,
    lp_rows,
    segment_values,
    step_thresholds,
)

STALL_ITERATIONS = 30  # stop when neither bound improved for this many iterations
QP_ITERATION_LIMIT = 10_000  # projection QPs need ~n iterations; more means HiGHS is cycling


class CoverLP:
    """HiGHS model of the fixed-α cover LP; rows enter lazily, α changes only row bounds."""

    def __init__(self, prob: MixtureProblem, step_weights: np.ndarray | None = None):
        import highspy

        self.prob, T = prob, prob.T
        self.inf = highspy.kHighsInf
        self.h = h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.addVars(T, np.zeros(T), np.full(T, self.inf))  # v_t
        self.set_step_weights(np.ones(T) if step_weights is None else step_weights)
        self.vp_key = np.zeros(0, np.int64)  # sorted pair keys with a v_p column
        self.vp_col = np.zeros(0, np.int64)
        self.row_key = np.zeros(0, np.int64)  # sorted (step << 44 | pair) keys of the rows added
        self.row_step = np.zeros(0, np.int64)  # rows in model order
        self.row_pair = np.zeros(0, np.int64)
        self.C = np.zeros((0, prob.n))  # C_tp of each row, model order
        self.alpha = np.full(prob.n, 1.0 / prob.n)
        self.iterations = 0

    def set_step_weights(self, w: np.ndarray) -> None:
        T = self.prob.T
        self.w = np.asarray(w, float)
        self.h.changeColsCost(T, np.arange(T, dtype=np.int32), self.w)

    def add_rows(self, steps: np.ndarray, pairs: np.ndarray) -> int:
        """Add rows v_t + v_p ≥ C_tp · α for the (t, p) not yet in the model."""
        prob = self.prob
        steps, pairs = np.asarray(steps, np.int64), np.asarray(pairs, np.int64)
        key, first = np.unique((steps << 44) | pairs, return_index=True)
        new = ~np.isin(key, self.row_key, assume_unique=True)
        if not new.any():
            return 0
        sel = first[new]
        steps, pairs = steps[sel], pairs[sel]
        self.row_key = np.union1d(self.row_key, key[new])
        self.row_step, self.row_pair = np.r_[self.row_step, steps], np.r_[self.row_pair, pairs]
        R = len(steps)
        self.vp_key, self.vp_col = add_pair_slacks(self.h, self.vp_key, self.vp_col, np.unique(pairs))
        C = prob.exact(pairs, steps) - prob.M[:, steps].T
        self.C = np.vstack([self.C, C])
        idx = np.empty(2 * R, np.int32)
        idx[0::2], idx[1::2] = steps, self.vp_col[np.searchsorted(self.vp_key, pairs)]
        self.h.addRows(R, C @ self.alpha, np.full(R, self.inf), 2 * R, (2 * np.arange(R)).astype(np.int32), idx,
                       np.ones(2 * R))
        return R

    def set_alpha(self, alpha: np.ndarray) -> None:
        self.alpha = alpha
        R = len(self.C)
        if R:
            self.h.changeRowsBounds(R, np.arange(R, dtype=np.int32), self.C @ alpha, np.full(R, self.inf))

    def solve(self):
        """(v_t, (pair keys, v_p), row duals, objective) of a warm re-solve."""
        self.h.run()
        self.iterations += max(int(self.h.getInfo().simplex_iteration_count), 0)
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value)
        vp = (self.vp_key, x[self.vp_col] if len(self.vp_col) else np.zeros(0))
        return x[: self.prob.T], vp, np.asarray(sol.row_dual), float(self.h.getInfo().objective_function_value)


def step_needs(prob: MixtureProblem, alpha: np.ndarray, vp) -> np.ndarray:
    """The smallest v_t that satisfy every row of step t given the pairs' v_p:
    max(0, max_p (α·c̃(p, t) − v_p) − α·c̃(m_t, t)); 0 at the skipped steps."""
    T = prob.T
    thr = step_thresholds(prob, alpha, np.zeros(T))
    ev = prob.events()
    idx, wi = segment_values(prob, alpha, vp, thr.min())
    a, b = ev.slot[idx], ev.seg_end[idx]
    # the largest segment value covering each step: write each segment into the two power-of-two
    # blocks that cover it, then push block maxima down level by level
    levels = [np.full(T, -np.inf) for _ in range(int(np.log2(max(T, 1))) + 1)]
    k = np.floor(np.log2(np.maximum(b - a, 1))).astype(np.int64)
    for lv in np.unique(k):
        m = k == lv
        np.maximum.at(levels[lv], a[m], wi[m])
        np.maximum.at(levels[lv], b[m] - (1 << lv), wi[m])
    for lv in range(len(levels) - 1, 0, -1):
        h, cur, nxt = 1 << (lv - 1), levels[lv], levels[lv - 1]
        np.maximum(nxt, cur, out=nxt)
        nxt[h:] = np.maximum(nxt[h:], cur[: T - h])
    return np.maximum(levels[0] - thr, 0)


def repaired_upper(prob: MixtureProblem, alpha: np.ndarray, vt: np.ndarray, vp, objective: float, repair: float,
                   step_weights: np.ndarray) -> float:
    """Upper bound on f(α) from a restricted solution (v_t, v_p) costing `objective`: two repairs
    make it feasible, raising each violating pair's v_p by its largest violation (find_rows'
    `repair`) or each v_t to its step's need (weighted by the steps' weights); the cheaper counts."""
    return objective + min(repair, float(step_weights @ np.maximum(step_needs(prob, alpha, vp) - vt, 0)))


def oracle(lp: CoverLP, alpha: np.ndarray, rounds: int, target: float = np.inf, accuracy: float = 0.0,
           max_rounds: int = 30, per_step: int = 1):
    """Bounds on f(α) and a cut: (lower, upper, g, rounds used).

    On-demand accuracy: after `rounds` rounds it stops if the lower bound exceeds `target` (the
    point cannot become the best one, and its cut is what the master needs), otherwise it goes on
    until upper − lower ≤ `accuracy` (a candidate best point needs a tight upper bound) or
    `max_rounds`."""
    prob = lp.prob
    lp.set_alpha(alpha)
    for r in range(1, max(rounds, max_rounds) + 1):
        vt, vp, y, obj = lp.solve()
        g = lp.C[: len(y)].T @ y  # g · α == obj (LP duality), and g · α' ≤ f(α') for every α'
        stats = {}
        st, pr, _, viol = find_rows(prob, alpha, vt, vp, per_step=per_step, expand=False, return_violation=True,
                                   stats=stats)
        if not (viol > 0).any():
            return obj, obj, g, r
        upper = repaired_upper(prob, alpha, vt, vp, obj, stats["repair"], lp.w)
        if r >= rounds and (obj > target or upper - obj <= accuracy) or r >= max(rounds, max_rounds):
            return obj, upper, g, r
        lp.add_rows(st, pr)


def _highs():
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h, highspy.kHighsInf


def _add_cuts(h, G: np.ndarray, hi: float, extra_col: int | None = None) -> None:
    K, n = G.shape
    inf = h.getInfinity()
    if extra_col is None:
        idx, vals, w = np.tile(np.arange(n), K), G.ravel(), n
    else:  # g · α − z ≤ 0
        idx, vals, w = np.tile(np.r_[np.arange(n), extra_col], K), np.hstack([G, -np.ones((K, 1))]).ravel(), n + 1
    h.addRows(K, np.full(K, -inf), np.full(K, hi), K * w, (np.arange(K) * w).astype(np.int32), idx.astype(np.int32),
              vals)


def lower_bound(G: np.ndarray) -> tuple[float, np.ndarray]:
    """min over the simplex of max_k g_k · α (a certified lower bound on the optimum) and its argmin."""
    K, n = G.shape
    h, inf = _highs()
    h.addVars(n + 1, np.r_[np.zeros(n), -inf], np.r_[np.ones(n), inf])
    h.changeColCost(n, 1.0)
    h.addRow(1.0, 1.0, n, np.arange(n, dtype=np.int32), np.ones(n))
    _add_cuts(h, G, 0.0, extra_col=n)
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return float(x[n]), x[:n]


def project(G: np.ndarray, level: float, center: np.ndarray) -> np.ndarray:
    """Projection of `center` onto {α in the simplex : G α ≤ level}: Euclidean (HiGHS QP), or in the
    L1 norm (an LP) when the QP solver fails, which it occasionally does on near-parallel cuts."""
    K, n = G.shape
    sc = max(abs(level), 1.0)  # cuts and level are in LP units (~1e4): scale to ~1 for the QP
    G, level = G / sc, level / sc
    h, inf = _highs()
    h.addVars(n, np.zeros(n), np.ones(n))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), -2 * center)
    h.addRow(1.0, 1.0, n, np.arange(n, dtype=np.int32), np.ones(n))
    _add_cuts(h, G, level)
    h.passHessian(n, n, 1, np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32), np.full(n, 2.0))
    # HiGHS's QP solver can cycle on near-parallel cuts (seen with highspy 1.15.1): cap it, then fall back
    h.setOptionValue("qp_iteration_limit", QP_ITERATION_LIMIT)
    h.run()
    if h.modelStatusToString(h.getModelStatus()) == "Optimal":
        return np.asarray(h.getSolution().col_value)
    h, inf = _highs()  # min Σ |α − center|: α − s⁺ + s⁻ = center
    h.addVars(3 * n, np.zeros(3 * n), np.r_[np.ones(n), np.full(2 * n, inf)])
    h.changeColsCost(2 * n, np.arange(n, 3 * n, dtype=np.int32), np.ones(2 * n))
    h.addRow(1.0, 1.0, n, np.arange(n, dtype=np.int32), np.ones(n))
    i = np.arange(n)
    h.addRows(n, center, center, 3 * n, (3 * i).astype(np.int32), np.stack([i, n + i, 2 * n + i], 1).ravel().astype(
        np.int32), np.tile([1.0, -1.0, 1.0], n))
    _add_cuts(h, G, level)
    h.run()
    return np.asarray(h.getSolution().col_value)[:n]


def solve_bundle(prob: MixtureProblem, *, gap_tolerance: float = 1e-6, level: float = 0.3, oracle_rounds: int = 3,
                 max_seconds: float | None = None, max_iterations: int | None = None, init_k: int = 3,
                 seed_rows: tuple[np.ndarray, np.ndarray] | None = None, step_weights: np.ndarray | None = None,
                 start_alpha: np.ndarray | None = None, per_step: int = 1, log=None) -> MixtureSolution:
    """Minimise f over the simplex until the certified relative gap (U − L) / U ≤ gap_tolerance
    (or a limit stops it; the status then says so, with the gap reached).

    Returns the best α found; objective = L (lower bound), upper = U = f's upper bound at α.
    step_weights: costs of the v_t (a merge-bootstrap replicate); start_alpha: the first point
    (default uniform)."""
    t0 = time.time()
    n = prob.n
    lp = CoverLP(prob, step_weights)
    ist, ipr, _ = initial_rows(prob, init_k)
    lp.add_rows(ist, ipr)
    if seed_rows is not None:
        lp.add_rows(*lp_rows(prob, seed_rows))
    it0 = lp.iterations
    alpha = np.full(n, 1.0 / n) if start_alpha is None else np.asarray(start_alpha, float) / np.sum(start_alpha)
    cuts, best_u, best_a, L, k = [], np.inf, alpha, -np.inf, 0
    status, last_gain, prev = "not converged", 0, (np.inf, -np.inf)
    while True:
        k += 1
        lo, up, g, rounds = oracle(lp, alpha, oracle_rounds, target=best_u, per_step=per_step,
                                   accuracy=0.5 * (best_u - L) if np.isfinite(best_u - L) else np.inf)
        cuts.append(g)
        if up < best_u:
            best_u, best_a = up, alpha.copy()
        L, _ = lower_bound(np.array(cuts))
        L = min(L, best_u)
        gap = (best_u - L) / best_u if best_u > 0 else 0.0
        if log:
            log(f"bundle {k}: f(α) in [{lo:.7g}, {up:.7g}] ({rounds} rounds), bounds [{L:.7g}, {best_u:.7g}], "
                f"gap {gap:.2e}, {len(lp.C)} rows, {time.time() - t0:.1f}s")
        if gap <= gap_tolerance:
            status = f"converged to certified gap {gap:.2e}"
            break
        # bounds that stop moving mean the solvers' tolerances are reached: stop rather than loop
        if best_u < prev[0] - 1e-12 * abs(best_u) or prev[1] + 1e-12 * abs(best_u) < L:
            last_gain, prev = k, (best_u, L)
        if k - last_gain >= STALL_ITERATIONS:
            status = f"stopped after {k} bundle iterations: bounds stalled at numerical precision, certified gap {gap:.2e}"
            break
        if (max_seconds is not None and time.time() - t0 > max_seconds) or (max_iterations and k >= max_iterations):
            status = f"stopped after {k} bundle iterations, not converged, certified gap {gap:.2e}"
            break
        alpha = np.maximum(project(np.array(cuts), L + level * (best_u - L), best_a), 0)
        alpha /= alpha.sum()
    a = best_a / best_a.sum()
    sol = MixtureSolution(prob.names, a, prob.to_bytes(a), f"bundle: {status}", L, len(lp.C), k, time.time() - t0,
                          T=prob.T, rows=(lp.row_step.copy(), lp.row_pair.copy()), iterations=lp.iterations - it0,
                          gap=gap, upper=best_u, merges_used=int(prob.used.sum()), method="bundle")
    return sol

