"""Fan-out: run a list of independent items as Spark tasks and collect one row per item.

The item list is broadcast, never shuffled. Each item's function writes its own outputs and
returns a small row, which comes back to the driver. There are two strategies, both measured:

    fan_out_chunks  many small cells (encode, token_freqs): each task takes a contiguous chunk of
                    the caller's sorted list, so consecutive cells that share a tokenizer reuse it
                    in the worker's loader cache (docs/scaling.md); rows come back as Arrow batches
    fan_out_each    few heavy items (grid samples, training and CTC, mixture counts, solves,
                    trials): one task per item, as a plain RDD map, because an RDD task costs a
                    third of a `mapInArrow` task in local mode (~85 vs ~240 ms, loaded 2-core machine)

A failure of one item becomes that item's row and never ends the job. Item functions catch
BaseException and pass it through `cell_error`, which re-raises only `schemas.errors.FATAL`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field

import pyarrow as pa

from jobs.runtime.progress import spark_progress
from schemas.errors import FATAL
from schemas.spark import to_spark_schema


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
    """Return `e` so the caller records it as the item's own failure; re-raise interrupts and exits (`FATAL`).

    Item functions catch BaseException so that a Rust panic in a tokenizer library (pyo3's
    `PanicException`) fails its item instead of the Spark job: `except BaseException as e:
    fail(cell_error(e))`. tiktoken and HF tokenizers stay usable after a panic, so the worker's
    cached tokenizer serves the next cell (tests/jobs/test_tokenizer_failures.py checks its counts).
    """
    if isinstance(e, FATAL):
        raise e
    return e


@contextmanager
def _broadcast(spark, items: list) -> Iterator:
    bc = spark.sparkContext.broadcast(items)
    try:
        yield bc
    finally:
        bc.unpersist()


def fan_out_chunks(spark, items: list, fn: Callable[[object], dict], schema: pa.Schema, *,
                   max_tasks: int | None = None, label: str | None = None) -> list[dict]:
    """Run `fn(item)` for every item; each Spark task takes a contiguous chunk of `items`.

    Returns the rows (`schema`'s columns) in the order of `items`. There are `max_tasks` tasks
    (default: 4 × the default parallelism), never more than there are items. With `label`, a
    progress bar "<label>: <n> cells in <k> tasks" follows the Spark tasks.
    """
    if not items:
        return []
    n_tasks = min(len(items), max_tasks or spark.sparkContext.defaultParallelism * 4)
    with _broadcast(spark, items) as bc:
        def run_chunk(batches):
            shipped = bc.value
            for batch in batches:
                rows = [fn(shipped[i]) for i in batch.column(0).to_pylist()]
                yield pa.RecordBatch.from_pylist(rows, schema=schema)

        df = spark.range(0, len(items), numPartitions=n_tasks)
        with spark_progress(spark, f"{label}: {len(items)} cells in {n_tasks} tasks") if label else nullcontext():
            return df.mapInArrow(run_chunk, to_spark_schema(schema)).toArrow().to_pylist()


def fan_out_each(spark, items: list, fn: Callable[[object], dict], schema: pa.Schema | None = None) -> list[dict]:
    """Run `fn(item)` for every item as its own Spark task, or in this process when `spark` is None.

    Returns the results in the order of `items`. With `schema`, each result is cut down to
    exactly that schema's columns (missing ones are None).
    """
    if spark is None:
        rows = [fn(x) for x in items]
    elif not items:
        rows = []
    else:
        with _broadcast(spark, items) as bc:
            rows = spark.sparkContext.parallelize(range(len(items)), len(items)) \
                .map(lambda i: fn(bc.value[i])).collect()
    return rows if schema is None else [{k: r.get(k) for k in schema.names} for r in rows]
