"""The mixture LP solved as a convex problem over α alone: a level bundle method (for large T × n).

For a fixed α the mixture LP is

    f(α) = min Σ_t v_t + Σ_p v_p   s.t.  v_t + v_p ≥ C_tp · α,  v ≥ 0,   C_tp = c̃(p, t) − c̃(m_t, t)

(a fractional vertex cover of the step–pair graph; its dual is a max-weight matching y), and the
full LP is min over the simplex of f. f is convex, and every dual-feasible y of any restricted
cover LP gives a cut that is valid everywhere: f(α') ≥ Σ y_tp C_tp · α' = g · α' (y stays feasible
for every α', and C_tp · α' ≤ (C_tp · α')⁺). So:

* the *oracle* (`CoverLP`) solves the fixed-α LP by lazy rows, exactly as `jobs.analysis.mixture.solve` does,
  but its rows have two nonzeros and no α part, and α only moves the right-hand sides, so warm
  re-solves are cheap; a few rounds give a lower bound (its objective = g · α), a cut g, and an
  upper bound (its v repaired to feasibility, see `oracle`);
* the *master* keeps the cuts: L = min over the simplex of max_k g_k · α is a certified lower bound
  on the optimum and U = the best upper bound found; the next α is the Euclidean projection of the
  best point onto {α : g_k · α ≤ L + λ (U − L) ∀k} (level bundle method of Lemaréchal, Nemirovskii
  and Nesterov), which keeps α from swinging between vertices the way plain cutting planes (the
  lazy LP) do.

It stops when (U − L) / U ≤ gap_tolerance: the answer is α with a certified gap, not an exact
vertex; `jobs.analysis.mixture.solve.solve_mixture(method=...)` chooses between the two.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.analysis.mixture.cover import CoverLP, oracle
from jobs.analysis.mixture.problem import (
    MixtureProblem,
    MixtureSolution,
    initial_rows,
    lp_rows,
)

STALL_ITERATIONS = 30  # stop when neither bound improved for this many iterations
QP_ITERATION_LIMIT = 10_000  # projection QPs need ~n iterations; more means HiGHS is cycling


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

