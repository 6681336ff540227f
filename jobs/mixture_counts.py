"""Pair-count trajectories for data mixture inference, one Spark task per (tokenizer, category).

For a category sample pre-tokenized exactly as the tokenizer does, count adjacent
symbol pairs weighted by word frequency, apply the first T merges in order and
record, per step t (the state just before merge t is applied):

    steps.parquet     merged-pair count c(m_t, t), the (K+1)-th competitor count (a bound on
                      every pair outside the stored top K), number of pairs that changed
    initial.parquet   pair -> count at step 0
    deltas.parquet    (step t, pair, delta): how applying merge t changed each pair's count
    topk.parquet      (step t, pair, count): the K largest pairs other than m_t at step t

so c(p, t) = initial[p] + sum of deltas of p with step < t. Counting keeps an index
pair -> words containing it (like HF's trainer) and only rescans affected words.

    python -m jobs.mixture_counts --out OUT --cells cells.json [--spark-master local[2]]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import time
import traceback
from pathlib import Path

import pyarrow.parquet as pq

from jobs.analysis.mixture.trajectory import (
    DEFAULT_TOP_K,
    read_sample,
    resample,
    trajectory_for_texts,
    write_trajectory,
)
from jobs.runtime.fanout import cell_error, fan_out_each
from jobs.store.layout import mixture_cells_dir, trajectory_dir, trajectory_dirs
from tokenizers_registry.formats import load_merges
from tokenizers_registry.merges import MergeList


def _sha256(path: str | Path) -> str:
    """sha256 of a file, hashed once per worker while its size and mtime stay the same: every
    cell checks its tokenizer file (MBs) and sample, and a worker runs many cells of each."""
    st = Path(path).stat()
    return _sha256_of(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=2)
def _cached_merges(path: str, fmt: str, params_json: str, name: str) -> MergeList:
    # a Python worker runs many cells of the same tokenizer in a row (cells are grouped by
    # tokenizer and Spark reuses workers): derive the merges once per worker, not once per cell
    return load_merges(path, fmt, json.loads(params_json), name)


def _trajectory_meta(d: Path) -> dict:
    """The metadata a trajectory folder's `steps.parquet` carries (`write_trajectory`)."""
    return json.loads(pq.read_schema(d / "steps.parquet").metadata[b"tokatlas.mixture"])


def existing_cell(cell: dict) -> dict | None:
    """Metadata of an already counted cell with at least the requested T from the same sample and
    tokenizer file (sha256 of both), else None."""
    d = trajectory_dir(cell["out"], cell["tokenizer"]["name"], cell["category"], int(cell.get("replicate", 0)))
    try:
        md = _trajectory_meta(d)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    n_merges = md.get("merges", {}).get("n_derived", 0)
    if md.get("T", 0) >= min(cell["T"], n_merges) and md.get("top_k", DEFAULT_TOP_K) == cell.get("top_k", DEFAULT_TOP_K) \
            and md.get("sample_sha256") == _sha256(cell["sample"]) \
            and md.get("tokenizer_sha256") == _sha256(cell["tokenizer"]["path"]):
        return md
    return None


def run_cell(cell: dict) -> dict:
    """Count one (tokenizer, category) cell and write it; failures become a status row.

    With cell["reuse"], a cell already counted from the same sample with at least T merges is
    kept as it is (re-runs resume instead of recounting)."""
    t0 = time.time()
    rep = int(cell.get("replicate", 0))
    row = {"tokenizer": cell["tokenizer"]["name"], "category": cell["category"], "replicate": rep, "T": 0, "n_derived": 0,
           "n_skipped": 0, "n_deltas": 0, "total_pairs": 0, "n_bytes": 0, "seconds": 0.0, "status": "ok", "error": None}
    try:
        tok = cell["tokenizer"]
        md = existing_cell(cell) if cell.get("reuse") else None
        if md is not None:
            m = md.get("merges", {})
            row.update(T=md["T"], n_derived=m.get("n_derived", 0), n_skipped=m.get("n_skipped", 0),
                       n_deltas=md.get("n_deltas", 0), total_pairs=md["total_pairs"], n_bytes=md["n_bytes"],
                       status="reused")
            row["seconds"] = time.time() - t0
            return row
        ml = _cached_merges(tok["path"], tok["format"], json.dumps(tok.get("params") or {}, sort_keys=True),
                            tok["name"])
        texts = resample(read_sample(cell["sample"]), rep)
        tr = trajectory_for_texts(ml, texts, cell["T"], cell.get("top_k", DEFAULT_TOP_K))
        write_trajectory(tr, trajectory_dir(cell["out"], tok["name"], cell["category"], rep),
                         {"tokenizer": tok["name"], "category": cell["category"], "replicate": rep,
                          "merges": ml.summary(), "sample_sha256": _sha256(cell["sample"]),
                          "tokenizer_sha256": _sha256(tok["path"]), "n_deltas": len(tr.delta),
                          "top_k": cell.get("top_k", DEFAULT_TOP_K)})
        row.update(T=tr.T, n_derived=ml.n_derived, n_skipped=len(ml.skipped), n_deltas=len(tr.delta),
                   total_pairs=tr.total_pairs, n_bytes=tr.n_bytes)
    except BaseException as e:  # a bad tokenizer or sample (a Rust panic too) fails its cell only
        cell_error(e)
        row.update(status="failed", error=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    row["seconds"] = time.time() - t0
    return row


def count_cells(spark, cells: list[dict]):
    """Run every cell as its own Spark task; returns the per-cell status DataFrame."""
    from schemas.mixture import MIXTURE_CELLS
    from schemas.spark import to_spark_schema

    return spark.createDataFrame(fan_out_each(spark, cells, run_cell), schema=to_spark_schema(MIXTURE_CELLS.schema))


def count_job(spark, out: str, cells: list[dict]) -> list[dict]:
    """Count every cell, write `<out>/mixture/cells` and return its rows (plain data, for
    `jobs.runtime.spark.call_job` and the CLI)."""
    df = count_cells(spark, cells)
    df.write.mode("overwrite").parquet(str(mixture_cells_dir(out)))
    return [r.asDict() for r in df.collect()]


def merge_summaries(out, rows: list[dict]) -> dict[str, dict]:
    """Per tokenizer counted (the main replicate of `count_job` rows that did not fail): its merge
    derivation counts, from the rows and the trajectories' metadata."""
    merges = {}
    for r in rows:
        if r["status"] != "failed" and r["replicate"] == 0:
            merges[r["tokenizer"]] = {"n_derived": r["n_derived"], "n_skipped": r["n_skipped"]}
    for t in merges:
        for d in trajectory_dirs(out, t)[:1]:  # the merge derivation is the tokenizer's: any category has it
            merges[t].update(_trajectory_meta(d).get("merges", {}))
    return merges


def make_cells(out: str | Path, tokenizers: list[dict], samples: dict[str, str], T: int,
               top_k: int = DEFAULT_TOP_K, n_bootstrap: int = 0, reuse: bool = False) -> list[dict]:
    """The (tokenizer, category, replicate) grid; `samples` maps category -> sample Parquet (column text).

    Replicates 1..n_bootstrap resample each category's lines for the sample bootstrap.
    """
    return [{"out": str(out), "tokenizer": tok, "category": c, "sample": str(p), "T": T, "top_k": top_k,
             "replicate": b, "reuse": reuse}
            for b in range(n_bootstrap + 1) for tok in tokenizers for c, p in sorted(samples.items())]


def main(argv: list[str] | None = None) -> int:
    from jobs.runtime.params import add_spark_options

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cells", required=True, help="JSON list of cells (see make_cells)")
    add_spark_options(ap, launcher=False)
    a = ap.parse_args(argv)
    from jobs.runtime.spark import build_spark

    spark = build_spark("tokatlas-mixture-counts", master=a.spark_master)
    cells = json.loads(Path(a.cells).read_text())
    failed = sum(r["status"] == "failed" for r in count_job(spark, a.out, cells))
    print(f"{len(cells)} cells, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.mixture_counts")
