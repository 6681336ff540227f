"""The data-mixture LP of Hayase et al. (2024): the problem, its solution, and the rows it is made of.

Variables α_i ≥ 0 (Σα = 1), a slack v_t ≥ 0 per merge and v_p ≥ 0 per competing pair; see
`jobs.analysis.mixture` for the solvers built on it (lazy → cover → bundle / matching → solve).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jobs.analysis.mixture.trajectory import CountIndex, Trajectory


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
# needs 150-500, and it is the only method that converges at T = 30,000, n = 100.
AUTO_MATCHING_T = 1_000
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


def replicate_weights(prob: MixtureProblem, seed: int, b: int) -> np.ndarray:
    """Merge-bootstrap replicate b's v_t costs: how often each of the LP's steps is drawn in a
    resample of them, from the replicate's own random stream (seed, b)."""
    used = np.flatnonzero(prob.used)
    rng = np.random.default_rng([seed, b])
    return np.bincount(rng.choice(used, len(used)), minlength=prob.T).astype(float)


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
