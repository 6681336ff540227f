"""Mixture LP solves as Spark tasks: each tokenizer's main solve, then each bootstrap replicate.

    phase 1  one task per tokenizer: its LP (`jobs.analysis.mixture.solve.solve_once`), written as main.npz
    phase 2  one task per (tokenizer, replicate b): replicate b (`solve_replicate` for the merge
             bootstrap, `solve_sample_replicate` for the sample bootstrap), started from the main
             solution's rows and α, written as replicate=<b>.json
    driver   percentile intervals and the `mixture_estimates` Parquet of each tokenizer

Every unit is written atomically under <out>/mixture/solves/tokenizer=<t>/<fingerprint>/, so a
re-run after a crash skips the units already done, and changed inputs (another fingerprint,
computed by the caller over the trajectories and LP parameters) start afresh. Replicates depend
only on (main solution, b, seed): B of them take one replicate's time on B free cores. A unit
that raises fails its tokenizer (the error says which unit), not the others.

spark-submit: python -m jobs.mixture_solve --solves solves.json [--spark-master URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import traceback
from pathlib import Path

import numpy as np

from jobs.analysis.mixture.problem import MixtureSolution, estimates_table
from jobs.analysis.mixture.solve import (
    load_problem,
    set_intervals,
    solve_once,
    solve_replicate,
    solve_sample_replicate,
)
from jobs.runtime.fanout import cell_error, fan_out_each
from jobs.store.atomic import atomic_path, write_json_atomic, write_parquet_atomic
from jobs.store.layout import (
    estimates_path,
    inside,
    mixture_root,
    replicate_path,
    solution_file,
    solution_record_path,
    solve_dir,
    solves_dir,
    trajectories_dir,
)

SPEC_KEYS = ("out", "tokenizer", "categories", "T", "n_bootstrap", "unit", "method", "gap_tolerance", "max_seconds",
             "fingerprint", "seed")


def _key(spec: dict) -> tuple[str, str, str]:
    """Where a spec's solve units live: (out, tokenizer, fingerprint) for the layout's solve paths."""
    return spec["out"], spec["tokenizer"], spec["fingerprint"]


def save_solution(sol: MixtureSolution, path: Path) -> None:
    """A solution as .npz (numbers and strings only: loads without pickle), written atomically."""
    rows = sol.rows if sol.rows is not None else (np.zeros(0, np.int64),) * 2
    seed = sol.binding_rows if sol.binding_rows is not None else (np.zeros(0, np.int64),) * 2
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, names=np.array(sol.names), alpha=sol.alpha, proportion=sol.proportion,
                 status=np.array(sol.status), method=np.array(sol.method), rows_step=rows[0], rows_pair=rows[1],
                 binding_step=seed[0], binding_pair=seed[1], has_binding=np.array(sol.binding_rows is not None),
                 numbers=np.array([sol.objective, sol.n_constraints, sol.n_rounds, sol.seconds, sol.T,
                                   sol.iterations, sol.gap, sol.upper, sol.merges_used], float))


def load_solution(path: Path) -> MixtureSolution:
    with np.load(path, allow_pickle=False) as z:
        obj, ncon, rounds, secs, T, its, gap, upper, used = z["numbers"].tolist()
        return MixtureSolution([str(x) for x in z["names"]], z["alpha"], z["proportion"], str(z["status"]), obj,
                               int(ncon), int(rounds), secs, T=int(T), rows=(z["rows_step"], z["rows_pair"]),
                               iterations=int(its), gap=gap, upper=upper, merges_used=int(used),
                               method=str(z["method"]),
                               binding_rows=(z["binding_step"], z["binding_pair"]) if bool(z["has_binding"]) else None)


def _kw(spec: dict) -> dict:
    return {"method": spec["method"], "gap_tolerance": spec["gap_tolerance"], "max_seconds": spec["max_seconds"]}


def _unit(spec: dict, b: int, work) -> dict:
    """Run work(log) for unit b (0: the main solve) unless its file exists; errors become data."""
    t0, lines = time.time(), []
    res = {"tokenizer": spec["tokenizer"], "replicate": b, "log": lines, "error": None}
    try:
        work(lambda s: lines.append(f"{time.time() - t0:7.1f} s  {s}"))
    except BaseException as e:  # a Rust panic too: fails this tokenizer, reported by the driver
        cell_error(e)
        unit = "main solve" if b == 0 else f"{spec['unit']} bootstrap replicate {b}"
        res["error"] = f"{spec['tokenizer']} {unit}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}"
    return res


def run_main(spec: dict) -> dict:
    """Phase 1 task: the tokenizer's LP."""
    def work(log):
        prob = load_problem(spec["out"], spec["tokenizer"], spec["categories"], spec["T"])
        save_solution(solve_once(prob, log=log, **_kw(spec)), solution_file(*_key(spec)))

    return _unit(spec, 0, work)


def run_replicate(unit: tuple[dict, int]) -> dict:
    """Phase 2 task: bootstrap replicate b of the tokenizer's main solution."""
    spec, b = unit

    def work(log):
        sol = load_solution(solution_file(*_key(spec)))
        if spec["unit"] == "merges":
            prob = load_problem(spec["out"], spec["tokenizer"], sol.names, sol.T)
            rep = solve_replicate(prob, sol, b, spec["seed"], **_kw(spec))
        else:
            rep = solve_sample_replicate(spec["out"], spec["tokenizer"], sol, b, **_kw(spec))
        log(f"replicate {b}: {rep.status}, objective {rep.objective:.8g}, {rep.n_rounds} rounds, {rep.seconds:.1f} s")
        write_json_atomic({"proportion": rep.proportion.tolist(), "objective": rep.objective, "gap": rep.gap,
                           "status": rep.status, "seconds": rep.seconds, "n_rounds": rep.n_rounds},
                          replicate_path(*_key(spec), b))

    return _unit(spec, b, work)


def finish(spec: dict) -> tuple[MixtureSolution, dict]:
    """Main solution + replicates → intervals, the estimates Parquet, and the result record;
    older fingerprints of the tokenizer are removed."""
    d = solve_dir(*_key(spec))
    sol = load_solution(solution_file(*_key(spec)))
    B = spec["n_bootstrap"]
    secs = sol.seconds
    if B:
        reps = [json.loads(replicate_path(*_key(spec), b).read_text(encoding="utf-8")) for b in range(1, B + 1)]
        secs += sum(r["seconds"] for r in reps)
        set_intervals(sol, [r["proportion"] for r in reps], [r["objective"] for r in reps], spec["unit"])
    write_parquet_atomic(estimates_table(spec["tokenizer"], sol, sol.T), estimates_path(spec["out"], spec["tokenizer"]))
    for old in inside(solves_dir(spec["out"], spec["tokenizer"]).parent, d.parent).iterdir():  # never outside its root
        if old.is_dir() and old.name != d.name:
            shutil.rmtree(old, ignore_errors=True)
    result = {"categories": sol.names, "proportion": sol.proportion.tolist(),
              "lo": None if sol.lo is None else sol.lo.tolist(), "hi": None if sol.hi is None else sol.hi.tolist(),
              "status": sol.status, "gap": sol.gap, "method": sol.method, "n_constraints": sol.n_constraints,
              "n_rounds": sol.n_rounds, "lp_seconds": secs, "T": sol.T, "merges_used": sol.merges_used,
              "n_bootstrap": sol.n_bootstrap, "bootstrap": sol.bootstrap}
    return sol, result


def solve_fingerprint(out, tokenizer: str, categories: list[str], *, T: int, n_bootstrap: int, unit: str,
                      max_seconds: float | None, method: str, gap_tolerance: float) -> str:
    """Fingerprint of a solve's inputs: the tokenizer's trajectories (and sample-bootstrap
    replicates) and the LP parameters."""
    from jobs.analysis.mixture.problem import LP_VERSION
    from jobs.store.fingerprint import files_under, fingerprint

    root = mixture_root(out)
    files = files_under(trajectories_dir(out, tokenizer))
    if n_bootstrap and unit == "samples":
        files += [f for b in range(1, n_bootstrap + 1) for f in files_under(trajectories_dir(out, tokenizer, b))]
    return fingerprint({"lp_version": LP_VERSION, "categories": categories, "T": T, "n_bootstrap": n_bootstrap,
                        "unit": unit, "max_seconds": max_seconds, "method": method,
                        "gap_tolerance": gap_tolerance}, files, root)


def plan_solves(out, tokenizers, categories: list[str], *, T: int, n_bootstrap: int, unit: str, method: str,
                gap_tolerance: float, max_seconds: float | None, seed: int = 0) -> tuple[dict[str, dict], list[dict]]:
    """(results reused, specs to solve): a tokenizer whose estimates and saved result match the
    fingerprint of its inputs keeps that result; every other one gets a solve spec (SPEC_KEYS)."""
    lp = {"T": T, "n_bootstrap": n_bootstrap, "unit": unit, "method": method, "gap_tolerance": gap_tolerance,
          "max_seconds": max_seconds}
    reused, specs = {}, []
    for t in tokenizers:
        fp = solve_fingerprint(out, t, categories, **lp)
        record = solution_record_path(out, t)
        if estimates_path(out, t).is_file() and record.is_file():
            prev = json.loads(record.read_text(encoding="utf-8"))
            if prev.get("fingerprint") == fp:
                reused[t] = prev["result"]
                continue
        specs.append({"out": out, "tokenizer": t, "categories": categories, **lp, "fingerprint": fp, "seed": seed})
    return reused, specs


def record_solution(spec: dict, result: dict) -> Path:
    """Save a solve's result under its inputs' fingerprint, for `plan_solves` to reuse."""
    return write_json_atomic({"fingerprint": spec["fingerprint"], "result": result},
                             solution_record_path(spec["out"], spec["tokenizer"]))


def solve_job(spark, solves: list[dict]) -> list[dict]:
    """Solve every spec (keys SPEC_KEYS) with its replicates; one row per tokenizer:
    {tokenizer, result (None on failure), error, log}. Units already written are skipped."""
    for s in solves:
        missing = set(SPEC_KEYS) - set(s)
        if missing:
            from schemas.errors import ConfigError

            raise ConfigError(f"solve spec for {s.get('tokenizer')!r} lacks {sorted(missing)}")
    state = {s["tokenizer"]: {"tokenizer": s["tokenizer"], "result": None, "error": None, "log": []} for s in solves}

    def collect(rows):
        for r in rows:
            st = state[r["tokenizer"]]
            st["log"] += [f"{'main' if r['replicate'] == 0 else 'replicate ' + str(r['replicate'])}: {x}"
                          for x in r["log"]]
            st["error"] = st["error"] or r["error"]

    collect(fan_out_each(spark, [s for s in solves if not solution_file(*_key(s)).exists()], run_main))
    ok = [s for s in solves if not state[s["tokenizer"]]["error"]]
    collect(fan_out_each(spark, [(s, b) for s in ok for b in range(1, s["n_bootstrap"] + 1)
                                 if not replicate_path(*_key(s), b).exists()], run_replicate))
    for s in solves:
        st = state[s["tokenizer"]]
        if not st["error"]:
            st["result"] = finish(s)[1]
    return [state[s["tokenizer"]] for s in solves]


def main(argv: list[str] | None = None) -> int:
    from jobs.runtime.params import add_spark_options

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--solves", required=True, help=f"JSON list of solve specs with keys {', '.join(SPEC_KEYS)}")
    add_spark_options(ap, launcher=False)
    a = ap.parse_args(argv)
    from jobs.runtime.spark import build_spark

    rows = solve_job(build_spark("tokatlas-mixture-solve", master=a.spark_master),
                     json.loads(Path(a.solves).read_text()))
    for r in rows:
        print(f"{r['tokenizer']}: {r['error'] or r['result']['status']}")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.mixture_solve")
