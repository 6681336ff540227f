"""Encode-job throughput on a Spark standalone cluster (1 and 2 workers) against local mode, same run.

Every measurement is the same command, `spark-submit --master M jobs/encode.py --out OUT
--corpus flores200`, on a fresh copy of counts, so the ratios isolate the master:
  * local[1] and local[2]: the baselines (one JVM, Python workers forked locally);
  * standalone cluster, 1 worker × 1 core (`spark.cores.max=1` on the 2-worker cluster)
    and 2 workers × 1 core: executors in their own JVMs, registered with a master.
Two times per run: `job` is the encode function's own wall time (planning, tasks,
collecting summaries), `submit` adds driver JVM start and executor allocation.

    python bench/bench_cluster.py                                  # 10 languages × 3 tokenizers
    python bench/bench_cluster.py --languages 40 --tokenizers gpt2,o200k_base,mistral-v1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

SHARED = ROOT.parent / "shared" / "data"
SUMMARY = re.compile(r"ok (\d+), failed (\d+); (\d+) sentences, (\d+) tokens in ([\d.]+)s")


def run_encode(master: str, out: Path, conf: dict | None = None, shard_size: int | None = None) -> dict:
    """spark-submit the encode job on fresh counts; returns seconds, sentences and tokens."""
    from jobs.runtime.spark import spark_submit_command, submit_env

    for name in ("token_counts", "corpus_counts", "cell_failures"):
        shutil.rmtree(out / name, ignore_errors=True)
    args = ["--out", out, "--corpus", "flores200", *(["--shard-size", shard_size] if shard_size else [])]
    cmd = spark_submit_command(ROOT / "jobs" / "encode.py", args, app_name="bench-cluster-encode", master=master,
                               conf=conf)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=submit_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = SUMMARY.search(p.stdout)
    if p.returncode != 0 or not m or m.group(2) != "0":
        raise SystemExit(f"encode on {master} failed ({p.returncode}):\n{p.stdout}\n{p.stderr[-3000:]}")
    return {"submit": wall, "job": float(m.group(5)), "cells": int(m.group(1)), "sentences": int(m.group(3)),
            "tokens": int(m.group(4))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flores", default=str(SHARED / "flores200" / "flores200_dev_devtest.parquet"))
    p.add_argument("--manifest", default=str(SHARED / "tokenizers" / "MANIFEST.json"))
    p.add_argument("--languages", type=int, default=10, help="first N languages in code order")
    p.add_argument("--tokenizers", default="gpt2,mistral-v1,minilm-wordpiece", help="manifest names")
    p.add_argument("--shard-size", type=int, default=500, help="sentences per cell (default 500: 4 cells per "
                                                                  "language, so both workers get work)")
    a = p.parse_args(argv)
    for path in (a.flores, a.manifest):
        if not Path(path).exists():
            print(f"skipped: {path} not found (needs ../shared/data)")
            return 0

    import pyarrow.parquet as pq

    from infra import cluster as spark_cluster
    from jobs.ingest import ingest
    from jobs.runtime.spark import build_spark
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import Registry

    langs = sorted(set(pq.read_table(a.flores, columns=["lang"])["lang"].to_pylist()))[:a.languages]
    work = Path(tempfile.mkdtemp(prefix="tokatlas-bench-cluster-"))
    out = work / "out"
    try:
        spark = build_spark("bench-cluster-ingest", master="local[2]")
        ingest(spark, "flores-parquet", a.flores, "flores200", out, languages=langs)
        spark.stop()
        specs = Registry(registry_dir(out)).add_manifest(a.manifest, names=a.tokenizers.split(","))
        print(f"FLORES-200: {len(langs)} languages × {len(specs)} tokenizers, shard size {a.shard_size}")

        results = {}
        for label, master in (("local[1]", "local[1]"), ("local[2]", "local[2]")):
            results[label] = run_encode(master, out, shard_size=a.shard_size)
        t0 = time.perf_counter()
        with spark_cluster.start(n_workers=2, cores_per_worker=1, work_dir=work / "cluster") as c:
            cluster_start = time.perf_counter() - t0
            results["cluster, 1 worker × 1 core"] = run_encode(c.master_url, out, {"spark.cores.max": "1"},
                                                               a.shard_size)
            results["cluster, 2 workers × 1 core"] = run_encode(c.master_url, out, shard_size=a.shard_size)
        tokens = {r["tokens"] for r in results.values()}
        assert len(tokens) == 1, f"token totals differ between masters: {results}"

        print(f"{'master':28} {'job s':>7} {'submit s':>9} {'sentences/s':>12} {'tokens/s':>11}")
        for label, r in results.items():
            print(f"{label:28} {r['job']:7.1f} {r['submit']:9.1f} {r['sentences'] / r['job']:12,.0f} "
                  f"{r['tokens'] / r['job']:11,.0f}")
        c1, c2 = results["cluster, 1 worker × 1 core"], results["cluster, 2 workers × 1 core"]
        l1, l2 = results["local[1]"], results["local[2]"]
        print("ratios (throughput, job time):")
        print(f"  cluster 2 workers ÷ 1 worker          {c1['job'] / c2['job']:.2f}")
        print(f"  cluster 1 worker ÷ local[1]           {l1['job'] / c1['job']:.2f}")
        print(f"  cluster 2 workers ÷ local[2]          {l2['job'] / c2['job']:.2f}")
        print(f"  local[2] ÷ local[1]                   {l1['job'] / l2['job']:.2f}")
        print(f"  submit overhead, cluster 2w − local[2] {c2['submit'] - c2['job'] - (l2['submit'] - l2['job']):+.1f} s")
        print(f"per executor core: {c1['tokens'] / c1['job']:,.0f} tokens/s (1 worker), "
              f"{c2['tokens'] / c2['job'] / 2:,.0f} tokens/s (2 workers); "
              f"cluster start {cluster_start:.1f} s (not in any time above); load average {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
