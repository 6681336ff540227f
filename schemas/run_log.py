"""The run log (jobs/store/run_log.py): one row per flow run, so every number can be traced to its inputs.

    <out>/run_log/<started_at>-<run_id>.parquet     one small file per run (append = a new file)
"""

from __future__ import annotations

import pyarrow as pa

from schemas.datasets import Dataset, col, register

S, I64, F64 = pa.string(), pa.int64(), pa.float64()
TS = pa.timestamp("us", tz="UTC")

RUN_LOG = register(Dataset(
    name="run_log",
    description="One row per flow run: parameters, input versions, cells computed/skipped/failed, durations, "
                "final state. Written when a flow run starts (state started) and again when it ends, also when "
                "it fails; a run whose process died is marked interrupted by the next run on the same output.",
    schema=pa.schema([
        col("run_id", S, "Prefect flow run id when run under Prefect, else a random uuid"),
        col("flow", S, "flow name: token-premium | tokenizer-grid | vocab-trim | mixture-inference | mixture-controlled"),
        col("started_at", TS, "when the flow body started"),
        col("finished_at", TS, "when it returned or failed; empty while started and when interrupted"),
        col("duration_s", F64, "finished_at - started_at in seconds"),
        col("state", S, "started | completed | failed | interrupted (its process ended without finishing)"),
        col("parameters_json", S, "the flow's parameters, canonical JSON"),
        col("input_versions_json", S, "inputs the numbers came from, JSON: corpus name and per-language content "
                                      "versions, tokenizer ids with the sha256 of their artifacts, input files"),
        col("cells_computed", I64, "cells (tokenizer x language, grid cell, tokenizer x category) computed by this run"),
        col("cells_skipped", I64, "cells already done by an earlier run and reused"),
        col("cells_failed", I64, "cells that failed in this run (each has a failure row in its dataset)"),
        col("stage_durations_json", S, "seconds per flow stage, JSON object in stage order"),
        col("tokatlas_version", S, "installed tokatlas package version"),
        col("error", S, "failed runs: exception type and message; interrupted runs: when it was noticed"),
    ]),
    key=("run_id",),
    required=("run_id", "flow", "started_at", "state"),
    path="run_log/*.parquet",
    produced_by="jobs/store/run_log.py, at the start and end of every flow run (token-premium, tokenizer-grid, vocab-trim, "
                "mixture-inference, mixture-controlled)",
))

__all__ = ["RUN_LOG"]
