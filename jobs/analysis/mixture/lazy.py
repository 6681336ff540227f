"""The mixture LP in HiGHS with rows added lazily (`LazyLP`), and its plain lazy-row solve.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.analysis.mixture.problem import MixtureProblem, find_rows


class LazyLP:
    """Incremental HiGHS model of the mixture LP; rows enter in batches, warm re-solves.

    compact=True (default) writes the same LP with auxiliary columns so that rows stay short:
    u_t = α·c̃(m_t, t) + v_t (one row per step) and h = α·c̃(p, s) − v_p (one row per pair
    segment s, the step range where p's counts are constant), so a constraint (t, p) becomes
    the two-entry row u_t − h ≥ 0. The α part of a pair segment is shared by every step of the
    segment instead of being repeated in each row, which cuts the nonzeros HiGHS's dual simplex
    prices per iteration. compact=False writes rows Σ α_i coef_i + v_t + v_p ≥ 0 directly.
    """

    def __init__(self, prob: MixtureProblem, compact: bool = True):
        import highspy

        self.prob, self.compact = prob, compact
        self.inf = highspy.kHighsInf
        self.h = h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        n, T = prob.n, prob.T
        ncol = n + (2 * T if compact else T)
        h.addVars(ncol, np.zeros(ncol), np.full(ncol, self.inf))
        h.changeColsCost(T, np.arange(n, n + T, dtype=np.int32), np.ones(T))
        h.addRow(1.0, 1.0, n, np.arange(n, dtype=np.int32), np.ones(n))
        if compact:  # u_t − α·M_t − v_t = 0
            r, c = np.nonzero(prob.M.T)
            steps = np.arange(T)
            self._add_sparse(np.r_[r, steps, steps], np.r_[c, n + steps, n + T + steps],
                             np.r_[-prob.M.T[r, c], -np.ones(T), np.ones(T)], T, 0.0, 0.0)
        self.vp_key = np.zeros(0, np.int64)  # sorted pair keys with a v_p column
        self.vp_col = np.zeros(0, np.int64)
        self.seg_key = np.zeros(0, np.int64)  # sorted (pair, segment slot) keys with an h column
        self.seg_col = np.zeros(0, np.int64)
        self.row_key = np.zeros(0, np.int64)  # sorted (step, pair) keys of the rows added
        self.row_index = np.zeros(0, np.int64)  # their HiGHS row indices (aligned with row_key)
        self.n_rows = 0
        self.iterations = 0  # simplex iterations over all solves: a work measure that ignores machine load
        self.solves = 0
        self.last_solver = ""  # "simplex" or "interior point": what the last solve used
        self.rows_added = False  # since the last solve
        self.gap = float("nan")  # certified relative optimality gap after the last full search
        self.upper = float("nan")  # its upper bound on the full LP's optimum

    def _add_sparse(self, rows, cols, vals, nrows, lo, hi) -> None:
        o = np.argsort(rows, kind="stable")
        starts = np.searchsorted(rows[o], np.arange(nrows)).astype(np.int32)
        self.h.addRows(nrows, np.full(nrows, lo), np.full(nrows, hi), len(o), starts,
                       cols[o].astype(np.int32), vals[o].astype(float))

    def _new_cols(self, k: int, lo: float) -> np.ndarray:
        base = self.h.getNumCol()
        self.h.addVars(k, np.full(k, lo), np.full(k, self.inf))
        return np.arange(base, base + k, dtype=np.int64)

    @staticmethod
    def _lookup(keys, cols, q):
        pos = np.searchsorted(keys, q)
        return cols[pos]

    def add_rows(self, steps: np.ndarray, pairs: np.ndarray, slots: np.ndarray) -> int:
        """Add the rows (t, p) not yet in the model; `slots` = first step of the pair segment holding t."""
        prob, n, T = self.prob, self.prob.n, self.prob.T
        steps, pairs, slots = (np.asarray(x, np.int64) for x in (steps, pairs, slots))
        key = (steps << 44) | pairs
        key, first = np.unique(key, return_index=True)
        new = ~np.isin(key, self.row_key, assume_unique=True)
        if not new.any():
            return 0
        sel = first[new]
        steps, pairs, slots, key = steps[sel], pairs[sel], slots[sel], key[new]
        R = len(steps)
        self.vp_key, self.vp_col = add_pair_slacks(self.h, self.vp_key, self.vp_col, np.unique(pairs))
        vpc = self._lookup(self.vp_key, self.vp_col, pairs)
        if self.compact:
            stride = T + 1  # slots are 0..T; pair keys < 2**44, so keys fit int64 for T < 2**18
            skey = pairs * stride + slots
            useg, inv = np.unique(skey, return_inverse=True)
            fresh = ~np.isin(useg, self.seg_key, assume_unique=True)
            if fresh.any():  # h − α·c̃(p, s) + v_p = 0 for each new segment
                fk = useg[fresh]
                fp, fs = fk // stride, fk % stride
                hcol = self._new_cols(len(fk), -self.inf)
                C = prob.exact(fp, fs)
                r, c = np.nonzero(C)
                k = np.arange(len(fk))
                self._add_sparse(np.r_[r, k, k], np.r_[c, hcol, self._lookup(self.vp_key, self.vp_col, fp)],
                                 np.r_[-C[r, c], np.ones(len(fk)), np.ones(len(fk))], len(fk), 0.0, 0.0)
                allk = np.r_[self.seg_key, fk]
                o = np.argsort(allk)
                self.seg_key, self.seg_col = allk[o], np.r_[self.seg_col, hcol][o]
            hc = self._lookup(self.seg_key, self.seg_col, useg)[inv]
            k = np.arange(R)
            self._add_sparse(np.r_[k, k], np.r_[n + T + steps, hc], np.r_[np.ones(R), -np.ones(R)], R, 0.0, self.inf)
        else:
            C = prob.M[:, steps].T - prob.exact(pairs, steps)
            r, c = np.nonzero(C)
            k = np.arange(R)
            self._add_sparse(np.r_[r, k, k], np.r_[c, n + steps, vpc], np.r_[C[r, c], np.ones(R), np.ones(R)],
                             R, 0.0, self.inf)
        allk = np.r_[self.row_key, key]
        o = np.argsort(allk, kind="stable")
        self.row_key = allk[o]  # the (t, p) rows were the last R rows added, in key order
        self.row_index = np.r_[self.row_index, np.arange(self.h.getNumRow() - R, self.h.getNumRow())][o]
        self.n_rows += R
        self.rows_added = True
        return R

    def _run(self, solver: str, seconds: float | None = None) -> bool:
        """One HiGHS run by "simplex" or "ipm" (interior point + crossover), stopped after
        `seconds`; False if it was stopped."""
        h = self.h
        if seconds is not None:
            h.setOptionValue("time_limit", h.getRunTime() + seconds)
        try:
            h.setOptionValue("solver", "ipm" if solver == "ipm" else "choose")
            h.run()
        finally:
            h.setOptionValue("solver", "choose")
            h.setOptionValue("time_limit", self.inf)
        self.iterations += max(int(h.getInfo().simplex_iteration_count), 0)
        return h.getModelStatus() != h.getModelStatus().kTimeLimit

    def solve(self, ipm_rows: int | None = None, simplex_seconds: float | None = None
              ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], str, float]:
        """Re-solve: warm dual simplex (HiGHS keeps the basis across addRows / cost changes), or
        interior point + crossover from scratch, which leaves a basis for the next warm solve:
        when rows were added and the model has ≥ ipm_rows rows (on big models a warm repair of
        thousands of new rows takes longer), or ≥ ipm_rows / 3 rows on the first solve (no basis
        yet: a cold dual simplex took 5x a warm one). A simplex solve still running after
        simplex_seconds is abandoned for interior point. Measured in docs/mixture.md."""
        h = self.h
        rows = h.getNumRow()
        ipm = ipm_rows is not None and self.rows_added and rows >= (ipm_rows if self.solves else ipm_rows / 3)
        steps = []
        if not ipm and not self._run("simplex", simplex_seconds):
            steps.append(f"simplex stopped at {simplex_seconds:.0f} s")
            ipm = True
        if ipm:
            self._run("ipm")
            steps.append("interior point")
            if h.getModelStatus() != h.getModelStatus().kOptimal:
                self._run("simplex")  # crossover did not end at an optimal basis: finish by simplex
                steps.append("simplex")
        else:
            steps.append("simplex")
        self.last_solver = ", then ".join(steps)
        self.rows_added = False
        self.solves += 1
        x = np.asarray(self.h.getSolution().col_value)
        n, T = self.prob.n, self.prob.T
        status = self.h.modelStatusToString(self.h.getModelStatus())
        vp = (self.vp_key, x[self.vp_col] if len(self.vp_col) else np.zeros(0))
        return x[:n].copy(), x[n:n + T].copy(), vp, status, float(self.h.getInfo().objective_function_value)

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, pairs) of the rows in the model."""
        return self.row_key >> 44, self.row_key & ((1 << 44) - 1)

    def binding_rows(self, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
        """(steps, pairs) of the rows with a nonzero dual at the last solve: the rows that hold
        the optimum in place (rows added since are left out)."""
        dual = np.asarray(self.h.getSolution().row_dual)
        seen = self.row_index < len(dual)
        keep = np.zeros(len(self.row_key), bool)
        keep[seen] = np.abs(dual[self.row_index[seen]]) > tol
        k = self.row_key[keep]
        return k >> 44, k & ((1 << 44) - 1)

    def set_step_weights(self, w: np.ndarray) -> None:
        n, T = self.prob.n, self.prob.T
        self.h.changeColsCost(T, np.arange(n, n + T, dtype=np.int32), np.asarray(w, float))


def add_pair_slacks(h, keys: np.ndarray, cols: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give every pair without one a slack column v_p ≥ 0 of cost 1 in HiGHS model h; returns the
    updated (sorted pair keys, their columns)."""
    new = np.setdiff1d(pairs, keys)
    if not len(new):
        return keys, cols
    base = h.getNumCol()
    h.addVars(len(new), np.zeros(len(new)), np.full(len(new), h.getInfinity()))
    c = np.arange(base, base + len(new), dtype=np.int64)
    h.changeColsCost(len(new), c.astype(np.int32), np.ones(len(new)))
    k = np.r_[keys, new]
    o = np.argsort(k)
    return k[o], np.r_[cols, c][o]


def _converge(lp: LazyLP, prob: MixtureProblem, per_step: int, expand: bool, max_rounds: int | None,
              deadline: float | None, log=None, rounds: int = 0, margin: float = 0.0,
              active: np.ndarray | None = None):
    """Solve, add violated (and near-violated) rows, repeat until no row is violated (or a limit is hit).

    Over all steps (active None) each round also bounds the optimum from above (see find_rows'
    `stats`); lp.gap is the last round's certified relative gap (upper − lower) / upper."""
    while True:
        alpha, vt, vp, status, obj = lp.solve()
        lp.last = (alpha, vt, vp, obj)
        rounds += 1
        stats = {}
        st, pr, sl, viol = find_rows(prob, alpha, vt, vp, per_step=per_step, expand=expand, margin=margin,
                                     return_violation=True, active=active, stats=stats)
        violated = viol > 0
        if active is None and not violated.any():  # exact; the repair would only add rounding noise,
            lp.upper, lp.gap = obj, 0.0  # which is all of a relative gap when the optimum is 0 (in-sample)
        elif active is None:
            lp.upper = obj + stats["repair"]
            lp.gap = stats["repair"] / lp.upper if lp.upper > 0 else 0.0
        added = lp.add_rows(st, pr, sl) if len(st) else 0
        if log:
            log(f"round {rounds}: {lp.n_rows} rows, +{added} ({int(violated.sum())} violated), objective {obj:.6g}, "
                f"status {status}" + (f", certified gap {lp.gap:.2e}" if active is None else ""))
        if not violated.any() or added == 0:
            # added == 0 with violations left would mean HiGHS returned a point violating its own rows
            if violated.any():
                status = f"{status}; violated rows already in the model"
            return alpha, status, obj, rounds, not violated.any()
        if (max_rounds is not None and rounds >= max_rounds) or (deadline is not None and time.time() > deadline):
            gap = f", certified gap {lp.gap:.2e}" if active is None else ""
            return alpha, f"{status}; stopped after {rounds} rounds, not converged{gap}", obj, rounds, False
