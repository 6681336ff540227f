"""The data-mixture LP of Hayase et al. (2024), solved with HiGHS by lazy constraint generation.

Variables α_i ≥ 0 (Σα = 1), a slack v_t ≥ 0 per merge and v_p ≥ 0 per competing pair. For
merge t and any other pair p present at step t:

    Σ_i α_i (c̃_i(m_t, t) − c̃_i(p, t)) + v_t + v_p ≥ 0,      minimise Σ v_t + Σ v_p

with c̃_i = counts / (category i's step-0 pair total). Only a few of the (t, p) rows matter, so
the solver starts from each merge's top competitors under uniform α and repeatedly adds, for
every step at once, the most violated row under the current (α, v), re-solving warm (HiGHS
dual simplex keeps its basis across addRows), until no row of the full LP is violated.

Finding violations exactly without materialising rows: a pair's weighted count
Σ_i α_i c̃_i(p, t) is piecewise constant in t and changes only at the stored deltas. All
count events are sorted by (pair, step) once; each round weights them by α (one cumsum) and
asks for every constant segment whether it exceeds the smallest threshold (weighted merged
count + v_t) in its step range, by a range-minimum query (vectorised, no per-step loop).

The model is written compactly (see `LazyLP`): a row (t, p) is u_t − h_(p,s) ≥ 0 with one
auxiliary column per step and per pair segment, so rows have two nonzeros instead of up to n+2.

Pair-unit α converts to byte shares with the samples' bytes per pair:
β_i ∝ α_i · bytes_i / pairs_i.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from jobs.mixture_counts import CountIndex, Trajectory


@dataclass
class _Events:
    pair: np.ndarray
    slot: np.ndarray
    cat: np.ndarray
    val: np.ndarray
    start: np.ndarray
    seg_end: np.ndarray


@dataclass
class MixtureProblem:
    """Trajectories of n categories for one tokenizer, cut to a common T, in LP units."""

    names: list[str]
    trajs: list[Trajectory]
    T: int
    skip_absent: bool = True  # leave out merges whose pair occurs in no sample (see `used`)
    M: np.ndarray = field(init=False)  # n x T scaled merged counts
    B: np.ndarray = field(init=False)  # n x T scaled bounds
    scale: np.ndarray = field(init=False)  # per category: LP units per raw count

    def __post_init__(self):
        self.T = min([self.T, *(tr.T for tr in self.trajs)])
        mp = self.trajs[0].merged_pair[: self.T]
        for tr in self.trajs[1:]:
            if not np.array_equal(tr.merged_pair[: self.T], mp):
                raise ValueError("trajectories come from different merge lists")
        self.merged_pair = mp
        totals = np.array([max(tr.total_pairs, 1) for tr in self.trajs], float)
        # normalise by each sample's pair total, then rescale to raw-count magnitudes so HiGHS's
        # absolute tolerances (1e-7) stay far below the coefficients
        self.scale = np.median(totals) / totals
        self.M = np.stack([tr.merged_count[: self.T] * s for tr, s in zip(self.trajs, self.scale, strict=True)])
        self.B = np.stack([tr.bound[: self.T] * s for tr, s in zip(self.trajs, self.scale, strict=True)])
        # The LP's steps. A merge whose pair occurs in no category sample says nothing about the
        # mixture (its rows would only ask every pair present to have count 0, i.e. they measure
        # how small the samples are); like the paper's reference code, such merges are skipped.
        self.used = (self.M > 0).any(axis=0) if self.skip_absent else np.ones(self.T, bool)
        self._index: list[CountIndex | None] = [None] * len(self.trajs)
        # union of per-category top-K lists: candidate rows (t, p) and their known entries
        cat, st, pr, val = [], [], [], []
        for i, tr in enumerate(self.trajs):
            keep = tr.topk_step < self.T
            cat.append(np.full(int(keep.sum()), i, np.int32))
            st.append(tr.topk_step[keep].astype(np.int64))
            pr.append(tr.topk_pair[keep])
            val.append(tr.topk_count[keep] * self.scale[i])
        cat, st, pr, val = map(np.concatenate, (cat, st, pr, val))
        key = st * (1 << 44) + pr  # pair keys < 2**44
        ukey, row = np.unique(key, return_inverse=True)
        self.cand_step = ukey >> 44
        self.cand_pair = ukey & ((1 << 44) - 1)
        self.ent_row, self.ent_cat, self.ent_val = row, cat, val

    @property
    def n(self) -> int:
        return len(self.trajs)

    def events(self) -> _Events:
        """All count changes of all categories, sorted by (pair, slot); built once."""
        if getattr(self, "_events", None) is None:
            pairs, slots, cats, vals = [], [], [], []
            for i, tr in enumerate(self.trajs):
                keep = tr.delta_step < self.T
                pairs += [tr.init_pair, tr.delta_pair[keep]]
                slots += [np.zeros(len(tr.init_pair), np.int64), tr.delta_step[keep].astype(np.int64) + 1]
                cats += [np.full(len(tr.init_pair) + int(keep.sum()), i, np.int32)]
                vals += [tr.init_count * self.scale[i], tr.delta[keep] * self.scale[i]]
            pair, slot, cat, val = map(np.concatenate, (pairs, slots, cats, vals))
            o = np.lexsort((slot, pair))
            pair, slot, cat, val = pair[o], slot[o], cat[o], val[o]
            first = np.r_[True, pair[1:] != pair[:-1]]
            start = np.maximum.accumulate(np.where(first, np.arange(len(pair)), 0))
            # a segment runs until the pair's next event (or T); equal slots give empty segments
            nxt = np.r_[slot[1:], self.T]
            last = np.r_[pair[1:] != pair[:-1], True]
            seg_end = np.minimum(np.where(last, self.T, nxt), self.T)
            self._events = _Events(pair, slot, cat, val, start, seg_end)
        return self._events

    def prefix(self, T: int) -> MixtureProblem:
        """The problem on the first T merges; shares this problem's count indexes."""
        sub = MixtureProblem(self.names, self.trajs, T, skip_absent=self.skip_absent)
        sub._index = self._index
        return sub

    def index(self, i: int) -> CountIndex:
        if self._index[i] is None:
            self._index[i] = CountIndex(self.trajs[i])
        return self._index[i]

    def exact(self, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Scaled counts c̃_i(p, t) for every category: array (len(pairs), n)."""
        out = np.empty((len(pairs), self.n))
        for i in range(self.n):
            out[:, i] = self.index(i).lookup(pairs, steps) * self.scale[i]
        return out

    def to_bytes(self, alpha: np.ndarray) -> np.ndarray:
        """Pair-unit α -> byte proportions (β_i ∝ α_i · bytes_i / pairs_i)."""
        per = np.array([tr.n_bytes / max(tr.total_pairs, 1) for tr in self.trajs])
        b = np.maximum(alpha, 0) * per
        return b / b.sum() if b.sum() > 0 else b


# Bumped whenever the LP's definition changes, so that a saved solution is not reused across it
# (flows/mixture_flow.py fingerprints it). 2: merges absent from every sample are skipped.
# 3: merge-bootstrap replicate b draws from its own random stream (seed, b): `replicate_weights`.
LP_VERSION = 3

# solve_mixture(method="auto") uses the matching method from this many merges: measured on o200k
# (docs/mixture.md), it reaches the optimum at T = 1,000 in 10-12 rounds where the lazy search
# needs 150-500, and it is the only method that converges at T = 30,000, n = 100. Without
# OR-Tools (jobs/matching_worker.py) auto falls back to the bundle method from AUTO_BUNDLE_T.
AUTO_MATCHING_T = 1_000
AUTO_BUNDLE_T = 10_000
LP_METHODS = ("auto", "lazy", "matching", "bundle")


@dataclass
class MixtureSolution:
    names: list[str]
    alpha: np.ndarray
    proportion: np.ndarray
    status: str
    objective: float
    n_constraints: int
    n_rounds: int
    seconds: float
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    n_bootstrap: int = 0
    boot: np.ndarray | None = None
    bootstrap: str = "merges"
    T: int = 0
    rows: tuple[np.ndarray, np.ndarray] | None = None  # (steps, pairs) of the rows the lazy LP used
    iterations: int = 0  # simplex iterations of all solves
    gap: float = float("nan")  # certified relative gap (upper − lower) / upper of the last round; 0 = optimal
    upper: float = float("nan")  # certified upper bound on the full LP's optimum (objective is the lower one)
    boot_objective: np.ndarray | None = None  # merge bootstrap: each replicate's optimal objective
    merges_used: int = 0  # steps of the LP: merges among the first T whose pair occurs in some sample
    method: str = "lazy"  # the solve_mixture method that produced it (what "auto" chose)
    binding_rows: tuple[np.ndarray, np.ndarray] | None = None  # matching: rows with a nonzero dual at the end

    @property
    def seed_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows a related solve (a bootstrap replicate) starts from: the binding ones when known."""
        return self.binding_rows if self.binding_rows is not None else self.rows

    def as_dict(self) -> dict:
        return {n: float(p) for n, p in zip(self.names, self.proportion, strict=True)}


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


def segment_slots(prob: MixtureProblem, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """First step of the constant segment of pair p that contains step t (for stored rows)."""
    ev = prob.events()
    stride = prob.T + 1
    key = ev.pair * stride + ev.slot  # sorted, as events are sorted by (pair, slot)
    pos = np.searchsorted(key, np.asarray(pairs, np.int64) * stride + np.asarray(steps, np.int64), side="right") - 1
    pos = np.maximum(pos, 0)
    # a pair without any event up to t has count 0 on all of 0..t: its segment starts at 0
    return np.where(ev.pair[pos] == pairs, ev.slot[pos], 0) if len(ev.pair) else np.zeros(len(pairs), np.int64)


def lp_rows(prob: MixtureProblem, rows: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (steps, pairs) of another solve's rows that are rows of this LP (step < T and not skipped)."""
    st, pr = rows
    keep = st < prob.T
    keep[keep] = prob.used[st[keep]]
    return st[keep], pr[keep]


def initial_rows(prob: MixtureProblem, k: int, per_category: int = 0):
    """Starting rows (steps, pairs, slots): each merge against its top-k competitors under uniform
    α, plus (per_category > 0) each category's own top competitors, the likely binding rows near
    the simplex's corners."""
    alpha = np.full(prob.n, 1.0 / prob.n)
    R = len(prob.cand_step)
    score = np.bincount(prob.ent_row, weights=alpha[prob.ent_cat] * prob.ent_val, minlength=R)
    order = np.lexsort((-score, prob.cand_step))
    st_sorted = prob.cand_step[order]
    rank = np.arange(R) - np.searchsorted(st_sorted, st_sorted)
    sel = order[rank < k]
    if per_category:
        # entries are stored per category in descending count order within a step
        o = np.lexsort((-prob.ent_val, prob.cand_step[prob.ent_row], prob.ent_cat))
        grp = prob.ent_cat[o].astype(np.int64) * (prob.T + 1) + prob.cand_step[prob.ent_row[o]]
        r = np.arange(len(o)) - np.searchsorted(grp, grp)
        sel = np.unique(np.r_[sel, prob.ent_row[o[r < per_category]]])
    sel = sel[prob.used[prob.cand_step[sel]]]
    st, pr = prob.cand_step[sel], prob.cand_pair[sel]
    return st, pr, segment_slots(prob, pr, st)


def _range_argmin(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin of x over [a, b) for arrays of non-empty ranges (sparse table, O(T log T) build)."""
    T = len(x)
    levels = [np.arange(T)]
    j = 1
    while (1 << j) <= T:
        prev = levels[-1]
        h = 1 << (j - 1)
        left, right = prev[: T - (1 << j) + 1], prev[h: h + T - (1 << j) + 1]
        levels.append(np.where(x[right] < x[left], right, left))
        j += 1
    length = b - a
    k = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(len(a), np.int64)
    for lv in np.unique(k):
        m = k == lv
        i1 = levels[lv][a[m]]
        i2 = levels[lv][b[m] - (1 << lv)]
        out[m] = np.where(x[i2] < x[i1], i2, i1)
    return out


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


def segment_values(prob: MixtureProblem, alpha: np.ndarray, vp: tuple[np.ndarray, np.ndarray], floor: float):
    """Non-empty constant segments whose α-weighted count exceeds `floor`: (event index of each
    segment's start, its weighted count minus the pair's v_p). vp = (sorted pair keys, their v_p)."""
    ev = prob.events()
    x = alpha[ev.cat] * ev.val
    w = np.cumsum(x)
    w = w - w[ev.start] + x[ev.start]  # restart at each pair's first event
    idx = np.nonzero(ev.seg_end > ev.slot)[0]  # non-empty segments [slot, seg_end) inside 0..T-1
    wi = w[idx]
    # screen first: most segments are below every threshold
    cand = wi > floor
    idx, wi = idx[cand], wi[cand]
    keys, vals = vp
    if len(keys) and len(idx):
        pos = np.clip(np.searchsorted(keys, ev.pair[idx]), 0, len(keys) - 1)
        wi = wi - np.where(keys[pos] == ev.pair[idx], vals[pos], 0.0)
    return idx, wi


def step_thresholds(prob: MixtureProblem, alpha: np.ndarray, vt: np.ndarray) -> np.ndarray:
    """α·c̃(m_t, t) + v_t per step; +inf at the skipped steps (no row of theirs is in the LP)."""
    return np.where(prob.used, alpha @ prob.M + vt, np.inf)


def find_rows(prob: MixtureProblem, alpha: np.ndarray, vt: np.ndarray, vp: tuple[np.ndarray, np.ndarray],
              per_step: int = 1, tol: float = 1e-9, expand: bool = True, margin: float = 0.0,
              return_violation: bool = False, active: np.ndarray | None = None, stats: dict | None = None):
    """Violated rows under (α, v), searched over every pair present at every step.

    Each pair's weighted count Σ_i α_i c̃_i(p, t) is piecewise constant in t, changing only at
    the stored deltas, so walking the merges reduces to: for every segment of constant value w,
    is w − v_p above the smallest threshold (weighted merged count + v_t) in its step range?
    A segment that violates yields its most violated step, and with expand=True every step of
    the segment where it violates (a pair's v_p is shared by all its steps, so adding them
    together saves rounds). Then at most `per_step` rows per step are kept, most violated first;
    "nothing found" means no row of the full LP is violated. The merged pair never qualifies:
    its value is at most its threshold. vp = (sorted pair keys, their v_p).
    margin > 0 also returns rows that are satisfied by less than `margin` (in units of the
    largest merged count): likely to be violated once α moves, so adding them saves rounds.
    active (bool per step): search only these steps (a stage of the continuation); rows of the
    other steps are left out, not declared satisfied.
    stats (a dict) receives "repair": Σ over violating pairs of the pair's largest violation.
    Raising each such v_p by it satisfies every row of the search, so objective + repair is the
    objective of a feasible point with this α: an upper bound on the optimum (the restricted
    LP's objective is the lower bound).
    Returns (steps, pairs, segment slots[, violation]).
    """
    empty = (np.zeros(0, np.int64),) * 3 + ((np.zeros(0),) if return_violation else ())
    if stats is not None:
        stats["repair"] = 0.0
    thr = step_thresholds(prob, alpha, vt)
    if active is not None:
        thr = np.where(active, thr, np.inf)
    scale = max(float(np.abs(prob.M).max()), 1.0)
    tol, lim = tol * scale, tol * scale - margin * scale
    ev = prob.events()
    idx, wi = segment_values(prob, alpha, vp, thr.min() + lim)
    if len(idx) == 0:
        return empty
    a, b = ev.slot[idx], ev.seg_end[idx]
    tstar = _range_argmin(thr, a, b)
    viol = wi - thr[tstar]
    if stats is not None:
        pos = viol > 0
        if pos.any():
            pp = ev.pair[idx[pos]]  # non-decreasing: events are sorted by pair
            first = np.r_[0, np.nonzero(pp[1:] != pp[:-1])[0] + 1]
            stats["repair"] = float(np.maximum.reduceat(viol[pos], first).sum())
    keep = viol > lim
    idx, a, b, wi, tstar, viol = idx[keep], a[keep], b[keep], wi[keep], tstar[keep], viol[keep]
    if len(idx) == 0:
        return empty
    if expand:
        lengths = b - a
        seg = np.repeat(np.arange(len(idx)), lengths)
        steps = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + a[seg]
        v = wi[seg] - thr[steps]
        ok = v > lim
        st, sg, viol = steps[ok], seg[ok], v[ok]
    else:
        st, sg = tstar, np.arange(len(idx))
    order = np.lexsort((-viol, st))
    st, sg, viol = st[order], sg[order], viol[order]
    rank = np.arange(len(st)) - np.searchsorted(st, st)
    keep = rank < per_step
    st, sg, viol = st[keep], sg[keep], viol[keep]
    out = (st, ev.pair[idx][sg], a[sg])
    return out + (viol - tol,) if return_violation else out


def row_coef(prob: MixtureProblem, steps: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Coefficients c̃(m_t, t) − c̃(p, t) of rows (t, p): array (rows, n)."""
    return prob.M[:, steps].T - prob.exact(pairs, steps)


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


def solve_mixture(prob: MixtureProblem, *, n_bootstrap: int = 0, seed: int = 0, log=None, **kw) -> MixtureSolution:
    """Solve the mixture LP (`solve_once`'s keywords), then n_bootstrap merge-bootstrap
    replicates (`solve_replicate`) for a percentile 95% interval per category."""
    sol = solve_once(prob, log=log, **kw)
    if n_bootstrap:
        t0 = time.time()
        reps = [solve_replicate(prob, sol, b, seed, log=log, **kw) for b in range(1, n_bootstrap + 1)]
        set_intervals(sol, [r.proportion for r in reps], [r.objective for r in reps], "merges")
        sol.seconds += time.time() - t0
    return sol


def solve_replicate(prob: MixtureProblem, sol: MixtureSolution, b: int, seed: int = 0, log=None,
                    **kw) -> MixtureSolution:
    """Merge-bootstrap replicate b ≥ 1 of a solution: the LP with each v_t weighted by how often
    merge t was drawn (`replicate_weights`), solved by the same method from the solution's
    `seed_rows` and α. Replicates depend only on (sol, b, seed): they can run anywhere, in any order."""
    kw = {**kw, "method": sol.method, "seed_rows": sol.seed_rows, "start_alpha": sol.alpha,
          "step_weights": replicate_weights(prob, seed, b)}
    return solve_once(prob, log=(lambda s: log(f"bootstrap {b}: {s}")) if log else None, **kw)


def set_intervals(sol: MixtureSolution, proportions, objectives, unit: str) -> None:
    """Percentile 95% interval per category from bootstrap replicates' proportions (unit:
    merges | samples); objectives are the replicates' optimal objectives."""
    sol.boot = np.array(proportions)
    sol.boot_objective = np.array(objectives)
    sol.lo, sol.hi = np.percentile(sol.boot, 2.5, axis=0), np.percentile(sol.boot, 97.5, axis=0)
    sol.n_bootstrap, sol.bootstrap = len(sol.boot), unit


def solve_once(prob: MixtureProblem, *, init_k: int = 3, init_per_category: int = 0, per_step: int = 1,
               expand: bool = False, compact: bool = True, max_rounds: int | None = None,
               max_seconds: float | None = None, seed_rows: tuple[np.ndarray, np.ndarray] | None = None,
               margin: float = 0.0, continuation: int = 0, continuation_kind: str = "stride", method: str = "lazy",
               gap_tolerance: float = 1e-6, step_weights: np.ndarray | None = None,
               start_alpha: np.ndarray | None = None, log=None) -> MixtureSolution:
    """Solve the mixture LP once.

    method="lazy" (this module): lazy constraint generation on the joint LP in (α, v) until no
    row of the full LP is violated: an exact optimum (a vertex), best for small T × n.
    method="matching" (`jobs.mixture_matching`): the same lazy LP, solved in stages over
    merge-list prefixes, with each round also adding the rows of the maximum-weight matching at
    the current α; stops when exact or at a certified relative gap ≤ gap_tolerance.
    method="bundle" (`jobs.mixture_bundle`): a level bundle method over α with a fixed-α LP as
    oracle, stopped at a certified relative gap ≤ gap_tolerance; max_rounds then caps its
    iterations. method="auto" picks "matching" when T ≥ AUTO_MATCHING_T (and OR-Tools is
    installed, else "bundle" from AUTO_BUNDLE_T), else "lazy" (see docs/mixture.md).

    Per round every step gets up to `per_step` of its most violated rows (all steps at once),
    and a violating pair brings all the steps where it violates (`expand`). Without limits the
    result is the optimum of the full LP; with a round or time limit that stops the search, the
    status says "... not converged" and α is optimal only for the rows found so far.

    continuation = k > 0 first converges the search on a subset of the steps, then on twice as
    many, ..., then on all: "stride" searches every 2^k-th step, then every 2^(k-1)-th, ...;
    "prefix" the first T/2^k steps, then T/2^(k-1), ... Rows found in a stage are rows of the
    full LP, and the last stage is the plain search over every step, so the result is the
    same optimum; the early stages only let α settle while rounds are cheap (fewer rows).
    """
    t0 = time.time()
    if method == "auto":
        from jobs.matching_worker import ortools_available

        if prob.T >= AUTO_MATCHING_T and ortools_available():
            method = "matching"
        else:
            method = "bundle" if prob.T >= AUTO_BUNDLE_T else "lazy"
    if method == "matching":
        from jobs.mixture_matching import solve_matching

        return solve_matching(prob, gap_tolerance=gap_tolerance, init_k=init_k, max_seconds=max_seconds,
                              max_rounds=max_rounds, seed_rows=seed_rows, step_weights=step_weights,
                              start_alpha=start_alpha, log=log)
    if method == "bundle":
        from jobs.mixture_bundle import solve_bundle

        return solve_bundle(prob, gap_tolerance=gap_tolerance, max_seconds=max_seconds, max_iterations=max_rounds,
                            init_k=init_k, seed_rows=seed_rows, step_weights=step_weights, start_alpha=start_alpha,
                            log=log)
    if method != "lazy":
        raise ValueError(f"method must be one of {', '.join(LP_METHODS)}, not {method!r}")
    deadline = None if max_seconds is None else t0 + max_seconds
    lp = LazyLP(prob, compact=compact)
    if step_weights is not None:
        lp.set_step_weights(step_weights)
    steps = np.arange(prob.T)
    stages = []
    for k in range(continuation, 0, -1):
        if continuation_kind == "stride":
            stages.append(steps % (1 << k) == 0)
        elif continuation_kind == "prefix":
            stages.append(steps < max(prob.T >> k, 1))
        else:
            raise ValueError(f"continuation_kind must be 'stride' or 'prefix', not {continuation_kind!r}")
    stages.append(None)  # the plain search over every step: this stage decides convergence
    ist, ipr, isl = initial_rows(prob, init_k, init_per_category)
    added = np.zeros(len(ist), bool)
    if seed_rows is not None:  # rows another solve needed (e.g. of the unresampled sample)
        st, pr = lp_rows(prob, seed_rows)
        lp.add_rows(st, pr, segment_slots(prob, pr, st))
    rounds = 0
    for i, active in enumerate(stages):
        # a stage's model holds only its steps' initial rows, so early stages solve small LPs
        new = ~added if active is None else active[ist] & ~added
        lp.add_rows(ist[new], ipr[new], isl[new])
        added |= new
        alpha, status, obj, rounds, done = _converge(lp, prob, per_step, expand, max_rounds, deadline, log, rounds,
                                                     margin, active)
        if active is not None and log:
            log(f"stage {i + 1}/{len(stages)} ({int(active.sum())} steps) done after {rounds} rounds")
        if not done and "not converged" in status:
            if active is not None:  # certify the stage's last point against every step
                a, vt, vp, o = lp.last
                stats = {}
                find_rows(prob, a, vt, vp, expand=False, stats=stats)
                lp.upper = o + stats["repair"]
                lp.gap = stats["repair"] / lp.upper if lp.upper > 0 else 0.0
                status = f"{status} (continuation stage {i + 1} of {len(stages)}), certified gap {lp.gap:.2e}"
            break
    alpha = np.maximum(alpha, 0)
    alpha = alpha / alpha.sum()
    sol = MixtureSolution(prob.names, alpha, prob.to_bytes(alpha), status, obj, lp.n_rows, rounds,
                          time.time() - t0, T=prob.T, rows=lp.rows(), iterations=lp.iterations, gap=lp.gap,
                          upper=lp.upper, merges_used=int(prob.used.sum()), method="lazy")
    return sol


def replicate_weights(prob: MixtureProblem, seed: int, b: int) -> np.ndarray:
    """Merge-bootstrap replicate b's v_t costs: how often each of the LP's steps is drawn in a
    resample of them, from the replicate's own random stream (seed, b)."""
    used = np.flatnonzero(prob.used)
    rng = np.random.default_rng([seed, b])
    return np.bincount(rng.choice(used, len(used)), minlength=prob.T).astype(float)


def solve_full(prob: MixtureProblem, all_pairs: list[np.ndarray], step_weights: np.ndarray | None = None,
               return_objective: bool = False):
    """Reference: every (t, p) row at once with scipy's HiGHS; all_pairs[t] lists pairs present at t.

    step_weights: costs of the v_t (default 1), as in a merge-bootstrap replicate."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n, T = prob.n, prob.T
    st = np.concatenate([np.full(len(p), t) for t, p in enumerate(all_pairs)])
    pr = np.concatenate(all_pairs).astype(np.int64)
    keep = (pr != prob.merged_pair[st]) & prob.used[st]
    st, pr = st[keep], pr[keep]
    C = prob.M[:, st].T - prob.exact(pr, st)
    upairs, pidx = np.unique(pr, return_inverse=True)
    P, R = len(upairs), len(st)
    rows = np.concatenate([np.repeat(np.arange(R), n), np.arange(R), np.arange(R)])
    cols = np.concatenate([np.tile(np.arange(n), R), n + st, n + T + pidx])
    vals = np.concatenate([C.ravel(), np.ones(R), np.ones(R)])
    A = coo_matrix((-vals, (rows, cols)), shape=(R, n + T + P)).tocsr()
    c = np.r_[np.zeros(n), np.ones(T) if step_weights is None else np.asarray(step_weights, float), np.ones(P)]
    res = linprog(c, A_ub=A, b_ub=np.zeros(R), A_eq=np.r_[np.ones(n), np.zeros(T + P)][None, :], b_eq=[1.0],
                  bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"full LP failed: {res.message}")
    a = np.maximum(res.x[:n], 0)
    return (a / a.sum(), float(res.fun)) if return_objective else a / a.sum()


def estimates_table(tokenizer: str, sol: MixtureSolution, T: int):
    """The solution as a `mixture_estimates` table."""
    import pyarrow as pa

    from schemas.mixture import MIXTURE_ESTIMATES

    k = len(sol.names)
    cols = {
        "tokenizer": [tokenizer] * k, "category": sol.names, "alpha": sol.alpha.tolist(),
        "proportion": sol.proportion.tolist(),
        "proportion_lo": sol.lo.tolist() if sol.lo is not None else [None] * k,
        "proportion_hi": sol.hi.tolist() if sol.hi is not None else [None] * k,
        "T": [T] * k, "merges_used": [sol.merges_used] * k, "n_constraints": [sol.n_constraints] * k,
        "n_rounds": [sol.n_rounds] * k, "status": [sol.status] * k, "objective": [sol.objective] * k,
        "gap": [float(sol.gap)] * k, "n_bootstrap": [sol.n_bootstrap] * k, "bootstrap": [sol.bootstrap] * k,
    }
    return pa.table(cols, schema=MIXTURE_ESTIMATES.schema)


def load_problem(out, tokenizer: str, categories: list[str] | None = None, T: int | None = None,
                 replicate: int = 0) -> MixtureProblem:
    """A tokenizer's trajectories (one replicate) under <out>/mixture as a MixtureProblem."""
    from jobs.mixture_counts import cell_dir, read_trajectory

    base = cell_dir(out, tokenizer, "x", replicate).parent
    dirs = sorted(p for p in base.glob("category=*") if (p / "steps.parquet").exists())
    if categories:
        dirs = [d for d in dirs if d.name.split("=", 1)[1] in categories]
    if not dirs:
        raise FileNotFoundError(f"no trajectories under {base}")
    names, trajs = [], []
    for d in dirs:
        tr, _ = read_trajectory(d)
        names.append(d.name.split("=", 1)[1])
        trajs.append(tr)
    return MixtureProblem(names, trajs, T or min(tr.T for tr in trajs))


def solve_sample_replicate(out, tokenizer: str, sol: MixtureSolution, b: int, **kw) -> MixtureSolution:
    """Sample-bootstrap replicate b: the trajectories of resampled category samples (counted by
    the Spark job), solved by the solution's method from its `seed_rows` and α."""
    rp = load_problem(out, tokenizer, sol.names, sol.T, replicate=b)
    return solve_once(rp, **{**kw, "method": sol.method, "seed_rows": sol.seed_rows, "start_alpha": sol.alpha})
