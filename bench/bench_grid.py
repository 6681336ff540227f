"""Benchmark: tokenizers trained per minute by the grid job on Spark, and the share of
wall time spent outside the trainers, against calling the same trainers directly in a
loop on the same samples (the baseline, measured in the same run).

    nice -n 10 .venv/bin/python bench/bench_grid.py [--masters local[1],local[2]] [--bytes 100000]

Per Spark master: wall time of `train_cells` (session and Python workers already warm),
the sum of time inside the trainers as measured in the tasks, and
    outside share = 1 - trainer seconds / (wall seconds x task slots)
i.e. the part of the available core time that went to Spark, reading samples, storing
artifacts, writing rows and registering. The loop's own outside share (reading,
slicing, loading) is printed too, so the difference is what Spark and bookkeeping add.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # as in the Spark tasks: one core per trainer

SHARED = Path(os.environ.get("TOKATLAS_SHARED", ROOT.parent / "shared")) / "data"


def english_prose_dir(mb: float) -> Path:
    """A text source with `mb` MB of English prose for eng_Latn: docstrings and comments of the
    Python standard library (real text on every machine). Only the overhead is measured with it,
    so what the text says does not matter; its size makes trainings last seconds, as real ones do."""
    import ast
    import sysconfig

    d = Path(tempfile.mkdtemp(prefix="bench-grid-text-"))
    lines, size = [], 0
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            tree = ast.parse(f.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) else None
            for line in (doc or "").splitlines():
                if len(line.split()) >= 4:
                    lines.append(line.strip())
                    size += len(line.encode())
        if size >= mb * 1e6:
            break
    (d / "eng_Latn.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return d


def grid(bytes_: int, vocab_sizes=(1000, 2000), algorithms=("hf-bpe", "sp-bpe", "sp-unigram", "superbpe"),
         prose_mb: float = 0):
    from jobs.analysis.grid_spec import AnalysisSpec, DataSpec, GridSpec, Source, check_spec

    flores = str(SHARED / "flores200" / "flores200_dev_devtest.parquet")
    train = (Source("flores", flores, ("dev",)),)
    languages = ("eng_Latn", "deu_Latn", "fin_Latn", "tur_Latn")
    if prose_mb:  # English only, from a larger text source
        train, languages = (Source("text", str(english_prose_dir(prose_mb))),), ("eng_Latn",)
    return check_spec(GridSpec(
        name="bench", languages=languages, algorithms=tuple(algorithms), vocab_sizes=tuple(vocab_sizes),
        train_bytes=(bytes_,), data=DataSpec(train=train, eval=Source("flores", flores, ("devtest",))),
        analysis=AnalysisSpec()))


def direct_loop(out: Path, spec, cells) -> dict:
    """The baseline: the same trainers on the same samples, one after another, no Spark."""
    import pyarrow.parquet as pq

    from jobs.store.layout import grid_sample_file
    from jobs.train_grid import take_budget, train_grid_cell

    t0 = time.perf_counter()
    trainer = 0.0
    for c in cells:
        texts = pq.read_table(grid_sample_file(out, spec.name, c.lang, "train"), columns=["text"])["text"].to_pylist()
        lines, _ = take_budget(texts, c.byte_budget)
        d = out / "loop" / c.cell_id
        t1 = time.perf_counter()
        try:
            train_grid_cell(c.algorithm, lines, c.vocab_size, d, c.pre_tokenizer, c.transition_vocab)
        except Exception as e:  # an impossible cell costs its trainer time in both runs
            print(f"  loop: {c.cell_id} failed: {e}", file=sys.stderr)
        trainer += time.perf_counter() - t1
    return {"n": len(cells), "wall": time.perf_counter() - t0, "trainer": trainer}


def spark_run(master: str, out: Path, spec, cells) -> dict:
    from jobs.runtime.spark import build_spark
    from jobs.train_grid import train_cells

    spark = build_spark("bench-grid", master=master)
    spark.range(4, numPartitions=4).rdd.map(lambda x: x).count()  # start the Python workers
    slots = spark.sparkContext.defaultParallelism
    s = train_cells(spark, out, spec, cells)
    spark.stop()
    return {"n": s.trained + s.failed, "wall": s.wall_seconds, "trainer": s.train_seconds, "task": s.task_seconds,
            "slots": min(slots, len(cells)), "failed": s.failed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--masters", default="local[1],local[2]")
    p.add_argument("--bytes", type=int, default=150_000, help="training bytes per tokenizer (FLORES dev holds ~130-170 kB)")
    p.add_argument("--vocab-sizes", default="1000,2000", help="longer trainings (larger V) shrink the fixed overhead's share")
    p.add_argument("--algorithms", default="hf-bpe,sp-bpe,sp-unigram,superbpe")
    p.add_argument("--prose-mb", type=float, default=0,
                   help="train English only, on this many MB of stdlib docstrings (seconds-long trainings)")
    a = p.parse_args(argv)
    from jobs.train_grid import plan_grid

    spec = grid(a.bytes, [int(v) for v in a.vocab_sizes.split(",")], a.algorithms.split(","), a.prose_mb)
    work = Path(tempfile.mkdtemp(prefix="bench-grid-"))
    try:
        cells, _ = plan_grid(spec, work / "loop-out")
        print(f"grid: {len(cells)} tokenizers ({', '.join(spec.languages)} x {a.algorithms} x V {a.vocab_sizes}), "
              f"{a.bytes} training bytes each; {os.cpu_count()} cores")
        base = direct_loop(work / "loop-out", spec, cells)
        base_rate = base["n"] / base["wall"] * 60
        print(f"direct loop:      {base['wall']:7.1f} s wall, {base['trainer']:7.1f} s in trainers, "
              f"{base_rate:6.1f} tokenizers/min, outside trainers {1 - base['trainer'] / base['wall']:6.1%}")
        for master in a.masters.split(","):
            out = work / f"spark-{''.join(c for c in master if c.isalnum())}"
            cells_m, _ = plan_grid(spec, out)
            r = spark_run(master, out, spec, cells_m)
            rate = r["n"] / r["wall"] * 60
            outside = 1 - r["trainer"] / (r["wall"] * r["slots"])
            in_task = 1 - r["trainer"] / r["task"]
            print(f"spark {master:10s} {r['wall']:7.1f} s wall, {r['trainer']:7.1f} s in trainers ({r['slots']} slots), "
                  f"{rate:6.1f} tokenizers/min = {rate / base_rate:4.2f} x loop, outside trainers {outside:6.1%} "
                  f"(of which task bookkeeping {in_task * r['task'] / (r['wall'] * r['slots']):5.1%}), "
                  f"{r['failed']} failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
