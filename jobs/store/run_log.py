"""The run log: every flow run appends one row (schemas.run_log.RUN_LOG) under `<out>/run_log/`.

One small Parquet file per run, written atomically, so concurrent runs never clobber
each other and an analyst can tell which numbers came from which inputs. Flows wrap
their body with `logged_run` and call `mark` after each stage:

    @flow(name="token-premium")
    @logged_run("token-premium")
    def token_premium(params): ...
        enc = encode_task(p, ids)
        mark("encode", computed=enc["cells_ok"], skipped=enc["cells_skipped"], failed=enc["cells_failed"])

A `started` row is written when the flow body begins and replaced by the final one when it
returns or raises (state completed or failed, with the error); the catalog manifest
(`<out>/catalog.json`) is refreshed then. A run that never finishes (SIGKILL, OOM, power
loss) keeps its `started` row; the next run on the same output root rewrites it as
`interrupted`. Whether a run still goes is told by a lock, not a pid: each run holds an
exclusive `flock` on `run_log/.<row file>.lock` while it lives, and the kernel releases it
however the process ends. Nothing here imports Prefect: the Prefect run id is read only if
Prefect is loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sys
import time
import uuid
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import dataset_files, run_log_dir, run_log_file, tokenizers_file
from schemas import conform, validate
from schemas.run_log import RUN_LOG

log = logging.getLogger(__name__)
SMALL_FILE = 64 << 20  # input files up to this size get a sha256 in the log; larger ones size + mtime


@dataclass
class RunRecorder:
    """What one flow run did so far; `mark` adds to the recorder of the running flow."""

    flow: str
    params: object = None
    run_id: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    t0: float = field(default_factory=time.perf_counter)
    last: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    computed: int = 0
    skipped: int = 0
    failed: int = 0
    tokenizer_ids: list[str] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    lock_fd: int = -1  # held while the run lives (see the module docstring)

    def mark(self, stage: str, *, computed: int = 0, skipped: int = 0, failed: int = 0,
             tokenizer_ids=None, inputs: dict | None = None) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - (self.last or self.t0)
        self.last = now
        self.computed += int(computed or 0)
        self.skipped += int(skipped or 0)
        self.failed += int(failed or 0)
        for t in tokenizer_ids or []:
            if t not in self.tokenizer_ids:
                self.tokenizer_ids.append(t)
        self.inputs.update(inputs or {})


_CURRENT: ContextVar[RunRecorder | None] = ContextVar("tokatlas_run", default=None)


def mark(stage: str, **kw) -> None:
    """Record the end of a stage of the running flow (time since the previous mark, cell counts,
    tokenizer ids and other inputs used); a no-op outside `logged_run`."""
    rec = _CURRENT.get()
    if rec is not None:
        rec.mark(stage, **kw)


def current_run_id() -> str:
    """The Prefect flow run id when called inside a flow run, else a new uuid."""
    ctx_mod = sys.modules.get("prefect.context")  # only if the caller already runs under Prefect
    if ctx_mod is not None:
        ctx = ctx_mod.FlowRunContext.get()
        if ctx is not None and getattr(ctx, "flow_run", None) is not None:
            return str(ctx.flow_run.id)
    return str(uuid.uuid4())


def tokatlas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokatlas")
    except PackageNotFoundError:
        return "unknown"


# -- inputs -----------------------------------------------------------------------------
def _params_dict(params) -> dict:
    if params is None:
        return {}
    if is_dataclass(params):
        return asdict(params)
    return dict(params) if isinstance(params, dict) else {"value": params}


def _file_facts(path: str) -> dict:
    p = Path(path)
    if p.is_dir():
        return {"path": str(p.resolve()), "kind": "directory"}
    st = p.stat()
    facts = {"path": str(p.resolve()), "bytes": st.st_size,
             "mtime": datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()}
    if st.st_size <= SMALL_FILE:
        facts["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    return facts


def input_versions(out, params: dict, tokenizer_ids: list[str], extra: dict) -> dict:
    """Corpus versions, tokenizer ids with sha256, and the input files named by the parameters."""
    from jobs.store import corpus_store

    inputs: dict = {}
    corpus = params.get("corpus_name")
    if out and corpus:
        manifest = corpus_store.read_corpus_index(out, corpus)
        langs = params.get("coverage_languages") or params.get("languages") or sorted(manifest)
        inputs["corpus"] = {"name": corpus,
                            "versions": {lang: manifest[lang]["version"] for lang in sorted(langs) if lang in manifest}}
        read_record = getattr(corpus_store, "read_ingest_record", None)  # source fingerprint of the last ingest
        record = read_record(out, corpus) if read_record else None
        if record:
            inputs["corpus"]["ingest"] = record
    if tokenizer_ids:
        reg = tokenizers_file(out)
        rows = {r["tokenizer_id"]: r for r in pq.read_table(reg, columns=["tokenizer_id", "name", "sha256"]).to_pylist()} \
            if reg.is_file() else {}
        inputs["tokenizers"] = [{"tokenizer_id": t, "name": rows.get(t, {}).get("name"),
                                 "sha256": rows.get(t, {}).get("sha256")} for t in tokenizer_ids]
    files = {}
    for k, v in params.items():
        if isinstance(v, str) and k in {"corpus_path", "tokenizer_manifest", "tokenizer_file", "flores", "spec",
                                        "embeddings", "head"} and Path(v).exists():
            files[k] = _file_facts(v)
    for i, f in enumerate(params.get("tokenizer_files") or []):
        if Path(f).exists():
            files[f"tokenizer_files[{i}]"] = _file_facts(f)
    if files:
        inputs["files"] = files
    inputs.update(extra)
    return inputs


# -- writing and reading ----------------------------------------------------------------
def _lock_file(row_file: Path) -> Path:
    return row_file.with_name(f".{row_file.stem}.lock")


def record(rec: RunRecorder, out, state: str, error: BaseException | None = None) -> Path:
    """Write the run's row (state started, completed or failed) to `run_log_file` atomically."""
    finished = None if state == "started" else datetime.now(timezone.utc)
    params = _params_dict(rec.params)
    try:  # a started run has read no inputs yet
        inputs = rec.inputs if state == "started" else input_versions(out, params, rec.tokenizer_ids, rec.inputs)
    except Exception as e:  # the log of a failed run must not fail on a half-written input
        inputs = {"error": f"{type(e).__name__}: {e}", **rec.inputs}
    row = {
        "run_id": rec.run_id, "flow": rec.flow, "started_at": rec.started_at, "finished_at": finished,
        "duration_s": None if finished is None else (finished - rec.started_at).total_seconds(), "state": state,
        "parameters_json": json.dumps(params, sort_keys=True, default=str, ensure_ascii=False),
        "input_versions_json": json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=False),
        "cells_computed": rec.computed, "cells_skipped": rec.skipped, "cells_failed": rec.failed,
        "stage_durations_json": json.dumps({k: round(v, 3) for k, v in rec.stages.items()}),
        "tokatlas_version": tokatlas_version(),
        "error": None if error is None else f"{type(error).__name__}: {error}"[:4000],
    }
    table = conform(pa.Table.from_pylist([row]), RUN_LOG)
    validate(table, RUN_LOG)
    return write_parquet_atomic(table, run_log_file(out, rec.started_at, rec.run_id))


def begin(rec: RunRecorder, out) -> None:
    """At flow start: guard Prefect's temporary server, mark dead runs `interrupted`, take this
    run's lock and write its `started` row. Never fails the flow (its final row is still tried)."""
    prefect_env = sys.modules.get("flows.prefect_env")  # loaded by every entry point that runs Prefect
    try:
        if prefect_env is not None:  # first: once the started row exists, a kill leaves no orphan server
            prefect_env.guard_temporary_server()
        mark_interrupted(out, by=rec.run_id)
        lock = _lock_file(run_log_file(out, rec.started_at, rec.run_id))
        lock.parent.mkdir(parents=True, exist_ok=True)
        # Locked before it gets its name, so a sweep never sees it unlocked and takes the run for dead.
        tmp = lock.with_name(f"{lock.name}.{uuid.uuid4().hex}.new")
        rec.lock_fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        fcntl.flock(rec.lock_fd, fcntl.LOCK_EX)
        os.replace(tmp, lock)
        record(rec, out, "started")
    except Exception:
        log.exception("could not start the run log under %s", out)


def release(rec: RunRecorder, out) -> None:
    """Drop the run's lock (after its final row, or after failing to write it: the next run then
    marks the row `interrupted`)."""
    if rec.lock_fd >= 0:
        with contextlib.suppress(OSError):
            _lock_file(run_log_file(out, rec.started_at, rec.run_id)).unlink(missing_ok=True)
        os.close(rec.lock_fd)
        rec.lock_fd = -1


def mark_interrupted(out, by: str = "") -> list[str]:
    """Rewrite as `interrupted` every `started` row whose run no longer holds its lock (its process
    ended without finishing); returns their run ids. Runs still going are left alone."""
    d = run_log_dir(out)
    found = []
    for lock in sorted(d.glob(".*.lock")) if d.is_dir() else []:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # another run swept it meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its run is still going
                continue
            row_file = lock.with_name(f"{lock.name[1:].removesuffix('.lock')}.parquet")
            rows = pq.read_table(row_file).to_pylist() if row_file.is_file() else []
            if rows and rows[0]["state"] == "started":
                note = f"by run {by} " if by else ""
                rows[0].update(state="interrupted", error=(
                    "interrupted: the run's process ended before the run finished (killed, crashed, or its "
                    f"final row could not be written); noticed {note}at "
                    f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}"))
                write_parquet_atomic(conform(pa.Table.from_pylist(rows), RUN_LOG), row_file)
                found.append(rows[0]["run_id"])
            lock.unlink(missing_ok=True)
        except (OSError, pa.ArrowException) as e:  # one unreadable row must not stop the others
            log.warning("run log: could not check %s: %s", lock, e)
        finally:
            os.close(fd)
    return found


def read_run_log(out) -> pa.Table:
    """Every run row under `out`, oldest first (empty table with the schema when there is none)."""
    files = dataset_files(out, RUN_LOG)
    if not files:
        return RUN_LOG.schema.empty_table()
    table = pa.concat_tables([conform(pq.read_table(f), RUN_LOG) for f in files])
    return table.sort_by([("started_at", "ascending")])
