"""Run a list of independent cells on Spark: the work list is broadcast, never shuffled.

Each Spark task takes a contiguous run of the (sorted) list, so consecutive cells that
share a tokenizer reuse it in the worker's loader cache. The cell function writes its
own outputs and returns one summary row; the rows come back to the driver.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from schemas.errors import FATAL


@dataclass
class CellRunSummary:
    """What a run over cells did; `failures` lists one tuple per failed cell."""

    cells_planned: int = 0
    cells_skipped: int = 0
    cells_ok: int = 0
    cells_failed: int = 0
    sentences: int = 0
    tokens: int = 0
    wall_seconds: float = 0.0
    failures: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def print(self) -> None:
        """One summary line on stdout, one line per failed cell on stderr (spark-submit output)."""
        print(f"cells planned {self.cells_planned}, skipped {self.cells_skipped} (already done), ok {self.cells_ok}, "
              f"failed {self.cells_failed}; {self.sentences} sentences, {self.tokens} tokens in "
              f"{self.wall_seconds:.1f}s")
        for f in self.failures:
            print("FAILED", *f, file=sys.stderr)


def cell_error(e: BaseException) -> BaseException:
    """`e`, to record as the cell's own failure; re-raises interrupts and exits (`FATAL`).

    Cell runners catch BaseException so that a Rust panic in a tokenizer library (pyo3's
    `PanicException`) fails its cell instead of the Spark job: `except BaseException as e:
    fail(cell_error(e))`. tiktoken and HF tokenizers stay usable after a panic, so the worker's
    cached tokenizer serves the next cell (tests/test_tokenizer_failures.py checks its counts).
    """
    if isinstance(e, FATAL):
        raise e
    return e


def run_cells(spark, work: list[tuple], run_cell: Callable[..., dict], summary_schema: pa.Schema,
              *, max_tasks: int | None = None) -> list[dict]:
    """`run_cell(*item)` for every item of `work` on Spark; returns the summary rows."""
    from schemas.spark import to_spark_schema

    if not work:
        return []
    bc = spark.sparkContext.broadcast(work)

    def run_partition(batches):
        items = bc.value
        for batch in batches:
            rows = [run_cell(*items[i]) for i in batch.column(0).to_pylist()]
            yield pa.RecordBatch.from_pylist(rows, schema=summary_schema)

    n_tasks = min(len(work), max_tasks or spark.sparkContext.defaultParallelism * 4)
    df = spark.range(0, len(work), numPartitions=n_tasks)
    try:
        from jobs.runtime.progress import spark_progress

        job = getattr(run_cell, "func", run_cell).__module__.rpartition(".")[2]
        with spark_progress(spark, f"{job}: {len(work)} cells in {n_tasks} tasks"):
            return df.mapInArrow(run_partition, to_spark_schema(summary_schema)).toArrow().to_pylist()
    finally:
        bc.unpersist()
