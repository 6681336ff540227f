"""Benchmark of the mixture solve job: bootstrap replicates as Spark tasks vs one after another.

    python bench/bench_mixture_solve.py --counted DIR [--tokenizer o200k_base] [--n 31] [--T 10000]
        [--B 4] [--cores 2] [--method auto]

Uses trajectories counted by `bench/bench_mixture.py --save-counted DIR` (or any flow output
with <DIR>/mixture/trajectories), `code_python` plus n − 1 evenly spaced languages. Solves the
main LP once (`jobs.mixture_solve.solve_job`, no Spark), then the same B merge-bootstrap
replicates twice from that main solution: in this process one after another (the baseline:
what the flow did before replicates were Spark tasks) and as Spark tasks on local[cores].
Prints the wall times, the Spark/baseline ratio, each replicate's solve seconds, and checks
that both runs found the same replicate proportions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.mixture_solve import solve_job  # noqa: E402
from jobs.store.layout import replicate_path, solve_dir  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counted", required=True, help="directory with mixture/trajectories/tokenizer=<name>/")
    ap.add_argument("--tokenizer", default="o200k_base")
    ap.add_argument("--n", type=int, default=31, help="categories: code_python + n - 1 languages")
    ap.add_argument("--T", type=int, default=10_000)
    ap.add_argument("--B", type=int, default=4, help="bootstrap replicates")
    ap.add_argument("--cores", type=int, default=2, help="Spark local[cores]")
    ap.add_argument("--method", default="auto")
    a = ap.parse_args(argv)

    src = Path(a.counted) / "mixture" / "trajectories" / f"tokenizer={a.tokenizer}"
    cats = sorted(d.name.split("=", 1)[1] for d in src.glob("category=*"))
    langs = [c for c in cats if c != "code_python"]
    pick = [langs[i] for i in np.linspace(0, len(langs) - 1, a.n - 1).astype(int)]
    cats = sorted({"code_python", *pick} & set(cats))
    out = Path(tempfile.mkdtemp(prefix="bench-mixture-solve-"))
    dst = out / "mixture" / "trajectories" / f"tokenizer={a.tokenizer}"
    dst.mkdir(parents=True)
    for c in cats:
        (dst / f"category={c}").symlink_to((src / f"category={c}").resolve())

    def spec(fp, B):
        return {"out": str(out), "tokenizer": a.tokenizer, "categories": cats, "T": a.T, "n_bootstrap": B,
                "unit": "merges", "method": a.method, "gap_tolerance": 1e-6, "max_seconds": None,
                "fingerprint": fp, "seed": 0}

    print(f"{a.tokenizer}, T = {a.T}, n = {len(cats)} categories, B = {a.B} merge-bootstrap replicates", flush=True)
    t0 = time.time()
    [main_row] = solve_job(None, [spec("main", 0)])
    if main_row["error"]:
        print(main_row["error"])
        return 1
    r = main_row["result"]
    print(f"main solve: {time.time() - t0:.1f} s wall, {r['method']}, {r['status']}, {r['n_constraints']} rows",
          flush=True)

    walls, reps = {}, {}
    for name, fp in (("in-process, one after another", "seq"), (f"Spark local[{a.cores}] tasks", "spark")):
        d = solve_dir(out, a.tokenizer, fp)
        d.mkdir(parents=True)
        prev = [p for p in d.parent.iterdir() if p.is_dir() and p.name != fp][0]
        shutil.copy(prev / "main.npz", d / "main.npz")  # replicates only: the main solve is done
        spark = None
        if fp == "spark":
            from jobs.runtime.spark import build_spark

            spark = build_spark("bench-mixture-solve", master=f"local[{a.cores}]")
            spark.sparkContext.parallelize([0], 1).count()  # start-up is not part of the measurement
        t1 = time.time()
        [row] = solve_job(spark, [spec(fp, a.B)])
        walls[fp] = time.time() - t1
        if row["error"]:
            print(row["error"])
            return 1
        reps[fp] = [json.loads(replicate_path(out, a.tokenizer, fp, b).read_text()) for b in range(1, a.B + 1)]
        secs = ", ".join(f"{x['seconds']:.0f}" for x in reps[fp])
        print(f"{name}: {walls[fp]:.1f} s wall for {a.B} replicates (solve seconds each: {secs})", flush=True)
    same = max(np.abs(np.array(x["proportion"]) - np.array(y["proportion"])).max()
               for x, y in zip(reps["seq"], reps["spark"], strict=True))
    print(f"Spark / one after another: {walls['spark'] / walls['seq']:.2f}x the wall time "
          f"({walls['seq'] / walls['spark']:.2f}x faster); max |replicate proportion difference| {same:.1e}")
    shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
