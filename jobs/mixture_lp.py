"""The data-mixture LP of Hayase et al. (2024), solved with HiGHS by lazy constraint generation.

Variables α_i ≥ 0 (Σα = 1), a slack v_t ≥ 0 per merge and v_p ≥ 0 per competing pair. For
merge t and any other pair p present at step t:

    Σ_i α_i (c̃_i(m_t, t) − c̃_i(p, t)) + v_t + v_p ≥ 0,      minimise Σ v_t + Σ v_p

with c̃_i = counts / (category i's step-0 pair total). Only a few of the (t, p) rows matter, so
the solver starts from each merge's top competitors under uniform α and repeatedly adds, per
step, the most violated row under the current (α, v), until none is violated.

Finding violations exactly without materialising rows: a pair's weighted count
Σ_i α_i c̃_i(p, t) is piecewise constant in t and changes only at the stored deltas. Each
round sorts all count events by (pair, step) once, weights them by α (one cumsum), and asks for
every constant segment whether it exceeds the smallest threshold (weighted merged count + v_t)
in its step range, by a range-minimum query. The first round uses each merge's top
competitors under uniform α from the stored per-category top-K lists.

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

    def as_dict(self) -> dict:
        return {n: float(p) for n, p in zip(self.names, self.proportion, strict=True)}


class LazyLP:
    """Incremental HiGHS model: columns α, v_t, then v_p as pairs enter; rows added in batches."""

    def __init__(self, prob: MixtureProblem):
        import highspy

        self.prob = prob
        self.h = h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        n, T = prob.n, prob.T
        inf = highspy.kHighsInf
        h.addVars(n + T, np.zeros(n + T), np.full(n + T, inf))
        h.changeColsCost(T, np.arange(n, n + T, dtype=np.int32), np.ones(T))
        h.addRow(1.0, 1.0, n, np.arange(n, dtype=np.int32), np.ones(n))
        self.vp_col: dict[int, int] = {}
        self.rows: set[tuple[int, int]] = set()
        self.row_list: list[tuple[int, int]] = []

    def add_rows(self, steps: np.ndarray, pairs: np.ndarray, coef: np.ndarray) -> int:
        """Add rows Σ α_i coef_i + v_t + v_p ≥ 0 (coef = c̃(m_t) − c̃(p)); returns rows added."""
        import highspy

        n = self.prob.n
        new_pairs = [int(p) for p in np.unique(pairs) if int(p) not in self.vp_col]
        if new_pairs:
            base = self.h.getNumCol()
            k = len(new_pairs)
            self.h.addVars(k, np.zeros(k), np.full(k, highspy.kHighsInf))
            self.h.changeColsCost(k, np.arange(base, base + k, dtype=np.int32), np.ones(k))
            for j, p in enumerate(new_pairs):
                self.vp_col[p] = base + j
        starts, idx, val, added = [], [], [], 0
        for t, p, c in zip(steps.tolist(), pairs.tolist(), coef, strict=True):
            if (t, p) in self.rows:
                continue
            self.rows.add((t, p))
            self.row_list.append((t, p))
            starts.append(len(idx))
            nz = np.nonzero(c)[0]
            idx.extend(nz.tolist())
            val.extend(c[nz].tolist())
            idx.extend([n + t, self.vp_col[p]])
            val.extend([1.0, 1.0])
            added += 1
        if added:
            self.h.addRows(added, np.zeros(added), np.full(added, highspy.kHighsInf), len(idx),
                           np.array(starts, np.int32), np.array(idx, np.int32), np.array(val, float))
        return added

    def solve(self) -> tuple[np.ndarray, np.ndarray, dict[int, float], str, float]:
        self.h.run()
        x = np.array(self.h.getSolution().col_value)
        n, T = self.prob.n, self.prob.T
        vp = {p: x[c] for p, c in self.vp_col.items()}
        status = self.h.modelStatusToString(self.h.getModelStatus())
        return x[:n], x[n:n + T], vp, status, float(self.h.getInfo().objective_function_value)

    def set_step_weights(self, w: np.ndarray) -> None:
        n, T = self.prob.n, self.prob.T
        self.h.changeColsCost(T, np.arange(n, n + T, dtype=np.int32), np.asarray(w, float))


def initial_rows(prob: MixtureProblem, k: int, per_category: int = 0):
    """Starting rows: each merge against its top-k competitors under uniform α, plus (per_category
    > 0) each category's own top competitors, which are the likely binding rows for any α."""
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
    st, pr = prob.cand_step[sel], prob.cand_pair[sel]
    return st, pr, prob.M[:, st].T - prob.exact(pr, st)


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


def find_rows(prob: MixtureProblem, alpha: np.ndarray, vt: np.ndarray, vp: dict[int, float],
              per_step: int = 1, tol: float = 1e-9, expand: bool = True, max_expand: int = 5_000_000):
    """Violated rows under (α, v), searched over every pair present at every step.

    Each pair's weighted count Σ_i α_i c̃_i(p, t) is piecewise constant in t, changing only at
    the stored deltas, so walking the merges reduces to: for every segment of constant value w,
    is w − v_p above the smallest threshold (weighted merged count + v_t) in its step range?
    Every pair that violates anywhere yields rows at every step where it violates (with
    expand=False: only at its most violated step per segment), so "nothing found" means no row
    of the full LP is violated; then at most `per_step` rows per step are kept, most violated first. The merged pair never qualifies: its value is at most its threshold.
    Returns (steps, pairs, coef matrix).
    """
    T = prob.T
    thr = alpha @ prob.M + vt
    tol = tol * max(float(np.abs(prob.M).max()), 1.0)
    ev = prob.events()
    w = np.cumsum(alpha[ev.cat] * ev.val)
    w = w - w[ev.start] + (alpha[ev.cat] * ev.val)[ev.start]  # restart at each pair's first event
    seg = ev.seg_end > ev.slot  # non-empty segments [slot, seg_end) inside 0..T-1
    idx = np.nonzero(seg)[0]
    if len(idx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, prob.n))
    pv = np.zeros(len(idx))
    if vp:
        keys = np.fromiter(vp.keys(), np.int64, len(vp))
        vals = np.fromiter(vp.values(), float, len(vp))
        o = np.argsort(keys)
        keys, vals = keys[o], vals[o]
        pos = np.clip(np.searchsorted(keys, ev.pair[idx]), 0, len(keys) - 1)
        pv = np.where(keys[pos] == ev.pair[idx], vals[pos], 0.0)
    a, b = ev.slot[idx], ev.seg_end[idx]
    # screen with the global minimum first: most segments cannot violate anywhere
    cand = w[idx] - pv > thr.min() + tol
    idx, a, b, pv = idx[cand], a[cand], b[cand], pv[cand]
    if len(idx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, prob.n))
    tstar = _range_argmin(thr, a, b)
    viol = w[idx] - pv - thr[tstar]
    keep = viol > tol
    idx, a, b, pv, tstar, viol = idx[keep], a[keep], b[keep], pv[keep], tstar[keep], viol[keep]
    lengths = b - a
    if expand and lengths.sum() <= max_expand:
        # every violated step of every violating segment: a pair's v_p is shared by all its
        # steps, so adding them together saves many rounds
        seg = np.repeat(np.arange(len(idx)), lengths)
        steps = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + a[seg]
        v = w[idx][seg] - pv[seg] - thr[steps]
        ok = v > tol
        st, pr, viol = steps[ok], ev.pair[idx][seg][ok], v[ok]
    else:
        st, pr = tstar, ev.pair[idx]
    order = np.lexsort((-viol, st))
    st, pr = st[order], pr[order]
    rank = np.arange(len(st)) - np.searchsorted(st, st)
    st, pr = st[rank < per_step], pr[rank < per_step]
    del T
    return st, pr, prob.M[:, st].T - prob.exact(pr, st)


def solve_mixture(prob: MixtureProblem, *, init_k: int = 3, init_per_category: int = 0, per_step: int = 1,
                  max_rounds: int = 1000, max_seconds: float | None = None, expand: bool = False,
                  n_bootstrap: int = 0, seed: int = 0, log=None) -> MixtureSolution:
    """Lazy constraint generation until no row of the full LP is violated; optional bootstrap over merges.

    With a round or time limit the status says so ("... not converged"): the α returned is then
    optimal for the rows found so far, not for the full LP.
    """
    t0 = time.time()
    lp = LazyLP(prob)
    n = prob.n
    alpha = np.full(n, 1.0 / n)
    st, pr, coef = initial_rows(prob, init_k, init_per_category)
    lp.add_rows(st, pr, coef)
    rounds = 0
    while True:
        alpha, vt, vp, status, obj = lp.solve()
        rounds += 1
        st, pr, coef = find_rows(prob, alpha, vt, vp, per_step=per_step, expand=expand)
        added = lp.add_rows(st, pr, coef) if len(st) else 0
        if log:
            log(f"round {rounds}: {len(lp.row_list)} rows, +{added}, objective {obj:.6g}, status {status}")
        if added == 0:
            break
        if rounds >= max_rounds or (max_seconds is not None and time.time() - t0 > max_seconds):
            status = f"{status}; stopped after {rounds} rounds, not converged"
            break
    alpha = np.maximum(alpha, 0)
    alpha = alpha / alpha.sum()
    sol = MixtureSolution(prob.names, alpha, prob.to_bytes(alpha), status, obj, len(lp.row_list), rounds,
                          time.time() - t0, T=prob.T)
    if n_bootstrap:
        bootstrap_merges(lp, sol, n_bootstrap, seed)
        sol.seconds = time.time() - t0
    return sol


def bootstrap_merges(lp: LazyLP, sol: MixtureSolution, n_bootstrap: int, seed: int = 0) -> None:
    """Percentile intervals from resampling merges with replacement.

    A replicate weights v_t by how often merge t was drawn; a weight of 0 lets v_t absorb its
    rows for free, i.e. drops the merge. Re-solving warm-starts from the current basis and
    reuses the rows the lazy solve found (it does not search for new violations).
    """
    rng = np.random.default_rng(seed)
    T = lp.prob.T
    reps = []
    for _ in range(n_bootstrap):
        w = np.bincount(rng.integers(0, T, T), minlength=T).astype(float)
        lp.set_step_weights(w)
        a, *_ = lp.solve()
        a = np.maximum(a, 0)
        reps.append(lp.prob.to_bytes(a / a.sum()))
    lp.set_step_weights(np.ones(T))
    lp.solve()
    boot = np.array(reps)
    sol.boot = boot
    sol.lo, sol.hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    sol.n_bootstrap = n_bootstrap


def solve_full(prob: MixtureProblem, all_pairs: list[np.ndarray]) -> np.ndarray:
    """Reference: every (t, p) row at once with scipy's HiGHS; all_pairs[t] lists pairs present at t."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n, T = prob.n, prob.T
    st = np.concatenate([np.full(len(p), t) for t, p in enumerate(all_pairs)])
    pr = np.concatenate(all_pairs).astype(np.int64)
    keep = pr != prob.merged_pair[st]
    st, pr = st[keep], pr[keep]
    C = prob.M[:, st].T - prob.exact(pr, st)
    upairs, pidx = np.unique(pr, return_inverse=True)
    P, R = len(upairs), len(st)
    rows = np.concatenate([np.repeat(np.arange(R), n), np.arange(R), np.arange(R)])
    cols = np.concatenate([np.tile(np.arange(n), R), n + st, n + T + pidx])
    vals = np.concatenate([C.ravel(), np.ones(R), np.ones(R)])
    A = coo_matrix((-vals, (rows, cols)), shape=(R, n + T + P)).tocsr()
    c = np.r_[np.zeros(n), np.ones(T + P)]
    res = linprog(c, A_ub=A, b_ub=np.zeros(R), A_eq=np.r_[np.ones(n), np.zeros(T + P)][None, :], b_eq=[1.0],
                  bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"full LP failed: {res.message}")
    a = np.maximum(res.x[:n], 0)
    return a / a.sum()


def interval_from_replicates(sol: MixtureSolution, reps: list[np.ndarray]) -> None:
    """Percentile 95% interval from bootstrap replicate proportions (sample resampling)."""
    boot = np.array(reps)
    sol.boot = boot
    sol.lo, sol.hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    sol.n_bootstrap = len(reps)
    sol.bootstrap = "samples"


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
        "T": [T] * k, "n_constraints": [sol.n_constraints] * k, "n_rounds": [sol.n_rounds] * k,
"status": [sol.status] * k, "objective": [sol.objective] * k,
        "n_bootstrap": [sol.n_bootstrap] * k, "bootstrap": [sol.bootstrap] * k,
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


def solve_from_dir(out, tokenizer: str, categories: list[str] | None = None, T: int | None = None,
                   n_bootstrap: int = 0, unit: str = "samples", max_seconds: float | None = None,
                   log=None) -> MixtureSolution:
    """Solve a tokenizer's mixture. Intervals: unit="samples" solves the resampled-sample
    trajectories (replicates 1..n_bootstrap, counted by the Spark job); unit="merges" reweights
    merges in the final LP (cheap warm re-solves)."""
    prob = load_problem(out, tokenizer, categories, T)
    sol = solve_mixture(prob, log=log, n_bootstrap=n_bootstrap if unit == "merges" else 0, max_seconds=max_seconds)
    if n_bootstrap and unit == "samples":
        reps = []
        for b in range(1, n_bootstrap + 1):
            rp = load_problem(out, tokenizer, prob.names, prob.T, replicate=b)
            reps.append(solve_mixture(rp, max_seconds=max_seconds).proportion)
        interval_from_replicates(sol, reps)
    return sol
