"""The run log: one row per flow run, started then completed or failed (or interrupted when its
process died), with inputs and cell counts; and what a failed task's retry rule makes of it."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from helpers import session_processes, wait_until
from prefect import flow, task
from test_query import LANGS, NAMES

from flows.retries import retry_unless_config_error
from jobs.store.layout import run_log_dir
from jobs.store.run_log import mark, mark_interrupted, read_run_log
from jobs.store.runs import logged_run
from schemas import check_schema
from schemas.errors import ConfigError, TransientError
from schemas.run_log import RUN_LOG


def test_flow_run_appends_a_row_with_inputs_counts_and_stages(premium_out):
    params, result = premium_out
    rows = [r for r in read_run_log(params.out).to_pylist() if r["flow"] == "token-premium"]
    first = rows[0]
    assert first["state"] == "completed" and first["error"] is None
    uuid.UUID(first["run_id"])
    n_cells = len(LANGS) * len(NAMES)
    assert (first["cells_computed"], first["cells_skipped"], first["cells_failed"]) == (n_cells, 0, 0)
    assert list(json.loads(first["stage_durations_json"])) == ["ingest", "register", "encode", "premium-report"]
    assert first["duration_s"] == pytest.approx((first["finished_at"] - first["started_at"]).total_seconds())
    p = json.loads(first["parameters_json"])
    assert p["out"] == params.out and p["corpus_name"] == "mini" and p["n_bootstrap"] == 20
    inputs = json.loads(first["input_versions_json"])
    versions = json.loads((Path(params.out) / "corpus" / "corpus=mini" / "_versions.json").read_text())
    assert inputs["corpus"]["name"] == "mini"
    assert inputs["corpus"]["versions"] == {k: v["version"] for k, v in versions.items()}
    registry = pq.read_table(Path(params.out) / "registry" / "tokenizers.parquet").to_pylist()
    assert sorted((t["tokenizer_id"], t["name"], t["sha256"]) for t in inputs["tokenizers"]) == \
        sorted((r["tokenizer_id"], r["name"], r["sha256"]) for r in registry)
    assert inputs["files"]["tokenizer_manifest"]["path"] == str(Path(params.tokenizer_manifest).resolve())
    for f in sorted(run_log_dir(params.out).glob("*.parquet")):
        check_schema(pq.read_schema(f), RUN_LOG)


def test_rerun_skips_and_failed_run_is_logged(premium_out, tmp_path):
    from flows.premium_flow import PremiumParams, token_premium

    # On a copy: the session fixture's outputs stay those of its own parameters for later tests.
    shared, _ = premium_out
    params = dataclasses.replace(shared, out=str(tmp_path / "out"))
    shutil.copytree(shared.out, params.out)
    before = read_run_log(params.out).num_rows
    again = token_premium(PremiumParams(**{**params.__dict__, "n_bootstrap": 10}))
    assert again["encode"]["cells_skipped"] == len(LANGS) * len(NAMES)
    with pytest.raises(ConfigError, match="no-such-tokenizer"):
        token_premium(PremiumParams(**{**params.__dict__, "tokenizer_manifest": None,
                                       "tokenizers": ["no-such-tokenizer"]}))
    rows = read_run_log(params.out).to_pylist()[before:]
    assert [r["state"] for r in rows] == ["completed", "failed"]
    assert (rows[0]["cells_computed"], rows[0]["cells_skipped"]) == (0, len(LANGS) * len(NAMES))
    assert "ConfigError" in rows[1]["error"] and "no-such-tokenizer" in rows[1]["error"]
    assert list(json.loads(rows[1]["stage_durations_json"])) == ["ingest"]  # failed in register
    assert len({r["run_id"] for r in read_run_log(params.out).to_pylist()}) == before + 2


def test_outside_prefect_each_run_is_its_own_file(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class P:
        out: str
        k: int = 1

    @logged_run("test-flow")
    def run(p: P):
        mark("a", computed=3, skipped=1)
        mark("b", failed=2)
        if p.k < 0:
            raise ValueError("k must be >= 0")
        return p.k

    assert run(P(str(tmp_path))) == 1
    assert run(P(str(tmp_path), 2)) == 2
    with pytest.raises(ValueError):
        run(P(str(tmp_path), -1))
    mark("outside")  # no running flow: nothing recorded, no error
    files = sorted(run_log_dir(tmp_path).glob("*.parquet"))
    assert len(files) == 3
    rows = read_run_log(tmp_path).to_pylist()
    assert [json.loads(r["parameters_json"])["k"] for r in rows] == [1, 2, -1]
    assert [r["state"] for r in rows] == ["completed", "completed", "failed"]
    assert rows[2]["error"] == "ValueError: k must be >= 0"
    assert {(r["cells_computed"], r["cells_skipped"], r["cells_failed"]) for r in rows} == {(3, 1, 2)}
    assert len({r["run_id"] for r in rows}) == 3
    assert (tmp_path / "catalog.json").is_file()
    assert json.loads((tmp_path / "catalog.json").read_text())["datasets"][-0]["name"] == "corpus"


# -- retries: disk full and other permanent OS errors fail at once ------------------------------
ATTEMPTS: dict[str, int] = {}


def _fail(kind: str):
    """Raise the error `kind` names; real ones where the kernel can give them."""
    if kind == "disk-full":  # the kernel's own ENOSPC; never hand /dev/full to a writer that cleans up
        with open("/dev/full", "wb", buffering=0) as f:
            f.write(b"x")
    if kind == "missing":
        Path("/nonexistent-tokatlas-dir/file.parquet").read_bytes()
    raise {"read-only": OSError(errno.EROFS, os.strerror(errno.EROFS), "/out/token_counts"),
           "permission": PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/out/token_counts"),
           "transient": TransientError("executor lost"),
           "connection-reset": ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET)),
           "driver-crash": RuntimeError("spark-submit jobs.encode:encode exited 1")}[kind]


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_config_error)
def fails_once(key: str, kind: str) -> str:
    """Raises `kind` on its first attempt, then succeeds."""
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        if kind == "transient-after-disk-full":
            try:
                _fail("disk-full")
            except OSError as e:
                raise TransientError("spill retried elsewhere") from e
        _fail(kind)
    return "ok"


@flow
def run_fails_once(key: str, kind: str) -> list:
    return [fails_once(key, kind, return_state=True)]  # in a list: the flow completes with the task's state


async def _run_count(task_run_id) -> int:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return (await client.read_task_run(task_run_id)).run_count


@pytest.mark.parametrize("kind, exc", [("disk-full", OSError), ("read-only", OSError), ("permission", PermissionError),
                                       ("missing", FileNotFoundError)])
def test_permanent_os_errors_are_not_retried(prefect_harness, kind, exc):
    (state,) = run_fails_once(kind, kind)
    assert state.is_failed()
    assert ATTEMPTS[kind] == 1  # two retries were allowed; the rule refused both
    assert asyncio.run(_run_count(state.state_details.task_run_id)) == 1
    with pytest.raises(exc) as info:
        state.result()
    assert info.value.errno == {"disk-full": errno.ENOSPC, "read-only": errno.EROFS, "permission": errno.EACCES,
                                "missing": errno.ENOENT}[kind]


@pytest.mark.parametrize("kind", ["transient", "transient-after-disk-full", "connection-reset", "driver-crash"])
def test_transient_errors_are_retried(prefect_harness, kind):
    (state,) = run_fails_once(kind, kind)
    assert state.is_completed() and state.result() == "ok"
    assert ATTEMPTS[kind] == 2
    assert asyncio.run(_run_count(state.state_details.task_run_id)) == 2


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_config_error)
def spark_writes_to_a_full_disk(key: str) -> list:
    from jobs.runtime.spark import build_spark

    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1

    def write(_):  # self-contained: the Python workers cannot import this test module
        with open("/dev/full", "wb", buffering=0) as f:
            f.write(b"x")
        yield 0

    return build_spark().sparkContext.parallelize([1], 1).mapPartitions(write).collect()


@flow
def run_spark_disk_full() -> list:
    return [spark_writes_to_a_full_disk("spark-disk-full", return_state=True)]


def test_disk_full_in_a_spark_worker_is_not_retried(prefect_harness, spark):
    """The worker's OSError reaches the driver as Spark's PythonException, the errno only in its text."""
    (state,) = run_spark_disk_full()
    assert state.is_failed() and ATTEMPTS["spark-disk-full"] == 1
    assert asyncio.run(_run_count(state.state_details.task_run_id)) == 1
    with pytest.raises(Exception, match=r"OSError: \[Errno 28\] No space left on device") as info:
        state.result()
    assert type(info.value).__name__ == "PythonException"


@dataclass
class OutOnly:
    out: str


@flow(name="disk-full-flow")
@logged_run("disk-full-flow")
def disk_full_flow(p: OutOnly):
    return fails_once(f"flow:{p.out}", "disk-full")


def test_disk_full_run_leaves_one_failed_row(prefect_harness, tmp_path):
    with pytest.raises(OSError, match=r"\[Errno 28\] No space left on device"):
        disk_full_flow(OutOnly(str(tmp_path)))
    assert ATTEMPTS[f"flow:{tmp_path}"] == 1
    (row,) = read_run_log(tmp_path).to_pylist()
    assert (row["flow"], row["state"], row["error"]) == ("disk-full-flow", "failed",
                                                         "OSError: [Errno 28] No space left on device")
    assert row["finished_at"] is not None
    assert not list(run_log_dir(tmp_path).glob(".*"))  # no lock or temp file left


# -- killed runs ------------------------------------------------------------------------------
SLEEPER = """
import sys
from dataclasses import dataclass
from jobs.store.runs import logged_run

@dataclass
class P:
    out: str

@logged_run("sleeper")
def run(p):
    print("running", flush=True)
    return sys.stdin.read()  # until the test closes stdin, or kills this process

run(P(sys.argv[1]))
"""


def _sleeper(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline() == "running\n"  # its started row is written before this line
    return proc


def test_started_row_of_a_killed_process_becomes_interrupted_while_live_runs_stay_started(tmp_path):
    first = _sleeper(tmp_path)
    second = _sleeper(tmp_path)
    rows = read_run_log(tmp_path).to_pylist()
    assert [r["state"] for r in rows] == ["started", "started"]
    assert all(r["finished_at"] is None and r["duration_s"] is None for r in rows)
    first_id, second_id = (r["run_id"] for r in rows)
    assert mark_interrupted(tmp_path) == []  # both alive: nothing to mark

    first.kill()
    first.wait()
    assert mark_interrupted(tmp_path, by="probe") == [first_id]
    assert mark_interrupted(tmp_path) == []  # once only
    by_id = {r["run_id"]: r for r in read_run_log(tmp_path).to_pylist()}
    assert by_id[second_id]["state"] == "started"
    gone = by_id[first_id]
    assert gone["state"] == "interrupted" and gone["finished_at"] is None
    assert gone["error"].startswith("interrupted: the run's process ended before the run finished (killed, "
                                    "crashed, or its final row could not be written); noticed by run probe at ")
    assert {k: v for k, v in gone.items() if k not in ("state", "error")} == \
        {k: v for k, v in rows[0].items() if k not in ("state", "error")}

    second.communicate("")
    assert second.returncode == 0
    states = {r["run_id"]: r["state"] for r in read_run_log(tmp_path).to_pylist()}
    assert states == {first_id: "interrupted", second_id: "completed"}
    assert not list(run_log_dir(tmp_path).glob(".*"))  # every lock released and removed


def _rows(path: Path) -> list[dict]:
    """Every row of a dataset (hive-partitioned dir or one file), timestamps dropped, in a canonical order."""
    t = ds.dataset(path, format="parquet", partitioning="hive" if path.is_dir() else None).to_table()
    t = t.select([f.name for f in t.schema if not pa.types.is_timestamp(f.type)])
    return sorted(t.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_killed_cli_run_leaves_no_orphan_and_is_logged_interrupted(premium_out, tmp_path):
    """SIGKILL a real `tokatlas run` once its flow has started: no process of it (Prefect's temporary
    server, Spark) stays alive; the next run logs it as interrupted and writes what an uninterrupted
    run writes."""
    params, reference = premium_out
    out = tmp_path / "out"
    cmd = [str(Path(sys.executable).parent / "tokatlas"), "run", "--corpus-source", "flores-folder",
           "--corpus-path", params.corpus_path, "--corpus-name", "mini", "--tokenizer-manifest",
           params.tokenizer_manifest, "--bootstrap", str(params.n_bootstrap), "--out", str(out)]
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)  # the CLI starts Prefect's temporary server, as a user's run does

    def start(name: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "w") as log:
            return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # its session holds every process it starts

    first = start("first")

    def started_row():
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        return read_run_log(out).to_pylist() if run_log_dir(out).is_dir() else []

    (row,) = wait_until(started_row, 1800, "the started run_log row of the first run", interval=0.1)
    assert row["state"] == "started"
    running = session_processes(first.pid).values()
    assert any("prefect.server.api.server:create_app" in c for c in running), running
    assert any("tokatlas-watchdog" in c for c in running), running
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    wait_until(lambda: not session_processes(first.pid), 300,
               "every process of the killed `tokatlas run` ended (Prefect's temporary server, Spark)")

    second = start("second")
    assert second.wait() == 0, (tmp_path / "second.log").read_text()[-3000:]
    wait_until(lambda: not session_processes(second.pid), 300, "every process of the finished `tokatlas run` ended")

    killed, done = read_run_log(out).to_pylist()
    assert (killed["run_id"], killed["state"], killed["finished_at"]) == (row["run_id"], "interrupted", None)
    assert killed["error"].startswith("interrupted: the run's process ended before the run finished")
    assert f"noticed by run {done['run_id']} at " in killed["error"]
    assert done["state"] == "completed" and done["error"] is None
    assert killed["parameters_json"] == done["parameters_json"]
    assert not list(run_log_dir(out).glob(".*"))
    for dataset in ("corpus", "token_counts", "corpus_counts"):
        assert _rows(out / dataset) == _rows(Path(params.out) / dataset), dataset
    premium = Path(reference["report"]["premium"]).relative_to(params.out)
    assert _rows(out / premium) == _rows(Path(params.out) / premium)
