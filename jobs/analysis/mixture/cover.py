"""The cover problem of the mixture LP for a fixed α (min Σ v_t + Σ v_p), its oracle and repair.

Shared by the bundle method (`bundle.py`) and the matching method (`matching.py`).
"""

from __future__ import annotations

import numpy as np

from jobs.analysis.mixture.lazy import add_pair_slacks
from jobs.analysis.mixture.problem import (
    MixtureProblem,
    find_rows,
    segment_values,
    step_thresholds,
)


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
