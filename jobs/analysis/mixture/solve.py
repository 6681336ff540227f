"""Solving a mixture problem: the method dispatch (lazy, matching, bundle), bootstrap replicates and
confidence intervals, and loading a problem from counted trajectories.
"""

from __future__ import annotations

import time

import numpy as np

from jobs.analysis.mixture.lazy import LazyLP, _converge
from jobs.analysis.mixture.problem import (
    AUTO_MATCHING_T,
    LP_METHODS,
    MixtureProblem,
    MixtureSolution,
    find_rows,
    initial_rows,
    lp_rows,
    replicate_weights,
    segment_slots,
)


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
    method="matching" (`jobs.analysis.mixture.matching`): the same lazy LP, solved in stages over
    merge-list prefixes, with each round also adding the rows of the maximum-weight matching at
    the current α; stops when exact or at a certified relative gap ≤ gap_tolerance.
    method="bundle" (`jobs.analysis.mixture.bundle`): a level bundle method over α with a fixed-α LP as
    oracle, stopped at a certified relative gap ≤ gap_tolerance; max_rounds then caps its
    iterations. method="auto" picks "matching" when T ≥ AUTO_MATCHING_T, else "lazy" (see
    docs/mixture.md).

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
        method = "matching" if prob.T >= AUTO_MATCHING_T else "lazy"
    if method == "matching":
        from jobs.analysis.mixture.matching import solve_matching

        return solve_matching(prob, gap_tolerance=gap_tolerance, init_k=init_k, max_seconds=max_seconds,
                              max_rounds=max_rounds, seed_rows=seed_rows, step_weights=step_weights,
                              start_alpha=start_alpha, log=log)
    if method == "bundle":
        from jobs.analysis.mixture.bundle import solve_bundle

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


def load_problem(out, tokenizer: str, categories: list[str] | None = None, T: int | None = None,
                 replicate: int = 0) -> MixtureProblem:
    """A tokenizer's trajectories (one replicate) under <out>/mixture as a MixtureProblem."""
    from jobs.analysis.mixture.trajectory import read_trajectory
    from jobs.store.layout import trajectories_dir, trajectory_dirs

    base = trajectories_dir(out, tokenizer, replicate)
    dirs = trajectory_dirs(out, tokenizer, replicate)
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
