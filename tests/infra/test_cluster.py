"""tokatlas on a real Spark standalone cluster (one master, two workers on 127.0.0.1).

The token-premium flow submitted to the cluster through spark-submit must write exactly
what local mode writes; a worker SIGKILLed mid-job must be survived by Spark's task
retries on the other worker, with output identical to an uninterrupted run; and the
packed environment (`--archives`) must run the jobs with nothing from this venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from conftest import ROOT
from helpers import wait_until, write_flores_folder, write_manifest_subset

from flows.premium_flow import PremiumParams, token_premium
from infra import cluster as infra_cluster
from jobs.encode import encode, plan_cells
from jobs.ingest import ingest
from jobs.runtime.spark import spark_submit_command, submit_env
from jobs.store.layout import registry_dir
from tokenizers_registry.registry import Registry

pytestmark = pytest.mark.shared

CORPUS = "mini"
LANGS = ["eng_Latn", "fra_Latn", "zho_Hans", "amh_Ethi", "hin_Deva"]
PER_SPLIT = 50
NAMES = ["gpt2", "mistral-v1", "minilm-wordpiece"]
SHARD = 10  # sentences per cell in the fault tests
N_CELLS = len(LANGS) * len(NAMES) * (2 * PER_SPLIT // SHARD)  # 150


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """FLORES-style folder: the first PER_SPLIT sentences of each split of LANGS."""
    return write_flores_folder(tmp_path_factory.mktemp("flores_cluster"), LANGS, PER_SPLIT)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_manifest_subset(tmp_path_factory.mktemp("manifest") / "MANIFEST.json", NAMES)


def _params(out, folder, manifest, **kw) -> PremiumParams:
    return PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(folder), corpus_name=CORPUS,
                         tokenizer_manifest=str(manifest), n_bootstrap=50, **kw)


@pytest.fixture(scope="module")
def local_run(prefect_harness, spark, folder, manifest, tmp_path_factory):
    """The flow in local mode, in this process: the reference every cluster run must equal."""
    out = tmp_path_factory.mktemp("local") / "out"
    return out, token_premium(_params(out, folder, manifest))


@pytest.fixture(scope="module")
def base(spark, folder, manifest, tmp_path_factory):
    """An output root with the ingested corpus and the registered tokenizers, no counts."""
    out = tmp_path_factory.mktemp("base") / "out"
    ingest(spark, "flores-folder", folder, CORPUS, out)
    Registry(registry_dir(out)).add_manifest(manifest)
    return out


@pytest.fixture(scope="module")
def reference(base, spark, tmp_path_factory):
    """An uninterrupted local-mode encode of `base` with SHARD-sentence cells."""
    ref = _fresh_root(base, tmp_path_factory.mktemp("reference") / "out")
    assert encode(spark, ref, CORPUS, shard_size=SHARD).cells_ok == N_CELLS
    return ref


def _rows(path: Path) -> list[dict]:
    """Every row of a dataset (hive-partitioned dir or one file), timestamps dropped, in a canonical order."""
    t = ds.dataset(path, format="parquet", partitioning="hive" if path.is_dir() else None).to_table()
    t = t.select([f.name for f in t.schema if not pa.types.is_timestamp(f.type)])
    return sorted(t.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _visible_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet") if not p.name.startswith("."))


def test_premium_flow_submitted_to_cluster_equals_local_mode(cluster, local_run, folder, manifest, tmp_path):
    # `cluster` first: its daemons are launched before the session's Spark and Prefect start, and boot meanwhile
    local_out, local = local_run
    out = tmp_path / "out"
    result = token_premium(_params(out, folder, manifest, spark_master=cluster.master_url,
                                   spark_launcher="spark-submit"))
    n_cells = len(LANGS) * len(NAMES)
    assert result["encode"]["cells_ok"] == n_cells and result["encode"]["cells_failed"] == 0
    assert result["ingest"]["rows_kept"] == local["ingest"]["rows_kept"] == len(LANGS) * 2 * PER_SPLIT
    # The cluster really ran the applications (one per Spark step), not a local fallback.
    apps = [a["name"] for a in cluster.state().get("completedapps", [])]
    assert {"tokatlas-premium-ingest", "tokatlas-premium-encode", "tokatlas-premium-write_premium"} <= set(apps)

    for dataset, n in [("corpus", len(LANGS) * 2 * PER_SPLIT), ("token_counts", n_cells * 2 * PER_SPLIT),
                       ("corpus_counts", n_cells)]:
        got, want = _rows(out / dataset), _rows(local_out / dataset)
        assert len(got) == n and got == want, dataset
        assert _visible_files(out / dataset) == _visible_files(local_out / dataset)
    premium = _rows(Path(result["report"]["premium"]))
    assert len(premium) == n_cells and premium == _rows(Path(local["report"]["premium"]))
    assert Path(result["report"]["html"]).is_file()


def _fresh_root(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest)
    return dest


def _wait_for_cells(proc: subprocess.Popen, out: Path, n: int) -> int:
    """Block until `n` token_counts files exist while `proc` still runs; return how many exist."""
    def written() -> bool:
        assert proc.poll() is None, f"job ended before the kill: {proc.communicate()[1][-3000:]}"
        return (out / "token_counts").exists() and len(_visible_files(out / "token_counts")) >= n

    wait_until(written, 600, f"{n} cells written", interval=0.05)
    return len(_visible_files(out / "token_counts"))


def _encode_args(out: Path) -> list:
    return ["--out", out, "--corpus", CORPUS, "--shard-size", SHARD, "--max-tasks", 30]


def _submit_encode(master: str, out: Path, *extra: str, conf: dict | None = None) -> subprocess.Popen:
    cmd = spark_submit_command(ROOT / "jobs" / "encode.py", _encode_args(out),
                               app_name="tokatlas-encode", master=master, submit_args=extra, conf=conf)
    return subprocess.Popen(cmd, env=submit_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_worker_killed_mid_job_is_survived_by_task_retries(base, reference, cluster, tmp_path):
    """SIGKILL one worker (JVM, executor, Python workers) while the encode job runs on both:
    Spark reruns the lost tasks on the other worker, the job succeeds, and every row equals
    an uninterrupted local run; a re-run then does nothing and leaves no temp files."""
    ref, n_cells = reference, N_CELLS
    out = _fresh_root(base, tmp_path / "out")
    proc = _submit_encode(cluster.master_url, out, conf={"spark.task.maxFailures": "4"})
    try:
        written_at_kill = _wait_for_cells(proc, out, 5)  # tasks are running on both workers
        cluster.kill_worker(0, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        cluster.restart_worker(0)

    assert written_at_kill < n_cells
    assert proc.returncode == 0, stderr[-4000:]
    assert "Lost executor" in stderr or "ExecutorLostFailure" in stderr  # the kill hit the running job
    assert f"ok {n_cells}, failed 0" in stdout
    for dataset in ("token_counts", "corpus_counts"):
        got = _rows(out / dataset)
        assert got == _rows(ref / dataset), dataset
        assert _visible_files(out / dataset) == _visible_files(ref / dataset)
    key = ("tokenizer_id", "lang", "split", "sentence_id")
    assert len({tuple(r[k] for k in key) for r in _rows(out / "token_counts")}) == n_cells * SHARD

    before = {p: p.stat().st_mtime_ns for p in (out / "token_counts").rglob("*.parquet")}
    again = _submit_encode(cluster.master_url, out)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr[-4000:]
    assert f"skipped {n_cells} (already done), ok 0, failed 0" in stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "token_counts").rglob("*.parquet")} == before
    assert not list(out.rglob(".*.tmp"))


def test_driver_killed_on_cluster_then_rerun_equals_uninterrupted(base, reference, cluster, tmp_path):
    """SIGKILL the spark-submit'ed driver (as tests/jobs/test_encode.py does in local mode, here with
    executors on the cluster that outlive it for a moment): the re-run on the cluster writes only
    the missing cells and the output equals an uninterrupted run, with no duplicates."""
    out = _fresh_root(base, tmp_path / "out")
    proc = _submit_encode(cluster.master_url, out)
    try:
        written_at_kill = _wait_for_cells(proc, out, 5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert written_at_kill < N_CELLS
    # The killed driver's executors finish what they run until the master removes the application: a
    # rerun started meanwhile would race them (a cell done twice, a temp file left after its clean-up).
    cluster.wait_idle()
    specs = Registry(registry_dir(out)).select(None)
    done = sum(c.is_done(out) for c in plan_cells(out, CORPUS, specs, shard_size=SHARD))
    assert written_at_kill <= done < N_CELLS
    rerun = _submit_encode(cluster.master_url, out)
    stdout, stderr = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, stderr[-4000:]
    m = re.search(r"cells planned (\d+), skipped (\d+) \(already done\), ok (\d+), failed 0", stdout)
    assert m and int(m[1]) == N_CELLS and int(m[2]) == done and int(m[3]) == N_CELLS - done, stdout
    for dataset in ("token_counts", "corpus_counts"):
        assert _rows(out / dataset) == _rows(reference / dataset), dataset
        assert _visible_files(out / dataset) == _visible_files(reference / dataset)
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.slow
def test_packed_environment_runs_encode_on_cluster(base, reference, cluster, packed_env, tmp_path):
    """`--archives env.tar.gz#env` + `spark.pyspark.python=./env/bin/python`: executors import
    tokatlas and the native tokenizer libraries from the unpacked archive, and the counts
    equal local mode. One application does both (a probe, then the encode job's `main` in the same
    driver), so each executor fetches and unpacks the 400 MB archive once."""
    ship = ["--archives", f"{packed_env}#env", "--conf", "spark.pyspark.python=./env/bin/python",
            "--conf", f"spark.pyspark.driver.python={sys.executable}"]

    probe = tmp_path / "probe_then_encode.py"
    probe.write_text(
        "import json, sys\n"
        "from pyspark.sql import SparkSession\n"
        "def where(_):\n"
        "    import jobs, sentencepiece, tokenizers\n"
        "    return [sys.executable, jobs.__file__, tokenizers.__file__, sentencepiece.__file__]\n"
        "sc = SparkSession.builder.getOrCreate().sparkContext\n"
        "rows = sc.parallelize(range(4), 4).map(where).collect()\n"
        "open(sys.argv[1], 'w').write(json.dumps(rows))\n"
        "from jobs.encode import main\n"
        "sys.exit(main(sys.argv[2:]))\n")
    seen = tmp_path / "seen.json"
    out = _fresh_root(base, tmp_path / "out")
    cmd = spark_submit_command(probe, [seen, *_encode_args(out)],
                               app_name="tokatlas-packed-encode", master=cluster.master_url, submit_args=ship)
    p = subprocess.run(cmd, env=submit_env(), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    rows = json.loads(seen.read_text())
    assert len(rows) == 4
    for exe, *modules in rows:
        assert exe.endswith("/env/bin/python"), exe
        for m in modules:  # unpacked into the executor's work dir, not read from this checkout or venv
            assert "/env/lib/python" in m and not m.startswith((str(ROOT) + "/", sys.prefix + "/")), m
    assert f"ok {N_CELLS}, failed 0" in p.stdout
    for dataset in ("token_counts", "corpus_counts"):
        assert _rows(out / dataset) == _rows(reference / dataset), dataset


# What a real master's web UI answered at /json/ once while starting (between "connection refused"
# and its JSON): a 200 HTML page. `start()` read it as JSON and failed with JSONDecodeError.
STARTING_MASTER_PAGE = b'<!DOCTYPE html><html data-bs-theme="light">\n      <head>\n        <meta http-equiv="Content-type" content="text/html; charset=utf-8"/>'


def _replaying_master(answers: list[bytes]):
    """An HTTP server on loopback answering successive GETs with `answers` (the last one repeats);
    returns (server, url, requests served)."""
    import http.server
    import threading

    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = answers[min(len(served), len(answers) - 1)]
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if body.startswith(b"<") else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", served


def test_start_polls_through_the_masters_start_up_page(tmp_path):
    """`wait_for_workers` (what `start()` ends with) keeps polling while /json/ answers HTML or lists
    too few workers, returns once the worker is ALIVE, and at its deadline names the last error."""
    worker_ui = 18081
    alive = json.dumps({"workers": [{"state": "ALIVE", "webuiaddress": f"http://127.0.0.1:{worker_ui}"}]}).encode()
    server, url, served = _replaying_master([STARTING_MASTER_PAGE, STARTING_MASTER_PAGE, b'{"workers": []}', alive])
    me = infra_cluster.Daemon(role="worker-0", pid=os.getpid(), log=str(tmp_path / "w.log"), webui_port=worker_ui)
    try:
        c = infra_cluster.Cluster(master_url="spark://127.0.0.1:7", webui_url=url, work_dir=str(tmp_path),
                                  cores_per_worker=1, memory="1g", daemons=[me])
        c.wait_for_workers(1, timeout=600)
        assert served == ["/json/"] * 4
    finally:
        server.shutdown()

    server, url, served = _replaying_master([STARTING_MASTER_PAGE])
    try:
        c.webui_url = url
        with pytest.raises(TimeoutError, match=r"1 workers registered with spark://127.0.0.1:7: not reached after "
                                               r"2s \(last check: JSONDecodeError: Expecting value"):
            c.wait_for_workers(1, timeout=2)
        assert len(served) >= 2 and set(served) == {"/json/"}
    finally:
        server.shutdown()


def test_wait_until_retries_only_not_yet_errors():
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionRefusedError("not listening yet")
        if len(calls) == 2:
            return json.loads("<html>")
        return None if len(calls) == 3 else {"n": len(calls)}

    assert infra_cluster.wait_until(check, 600, "a status", interval=0) == {"n": 4} and len(calls) == 4
    with pytest.raises(KeyError):  # anything but a "not yet" error propagates at once
        infra_cluster.wait_until(lambda: {}["x"], 600, "a status", interval=0)
    with pytest.raises(TimeoutError, match=r"^a flag: not reached after 0s \(last check: False\)$"):
        infra_cluster.wait_until(lambda: False, 0, "a flag")


@pytest.mark.spark  # spark-submit in a subprocess
def test_spark_submit_launcher_reports_configuration_errors(tmp_path):
    """A driver that exits 2 surfaces as ConfigError with the driver's message (Prefect does not retry it)."""
    from jobs.encode import encode
    from jobs.runtime.spark import call_job
    from schemas.errors import ConfigError

    with pytest.raises(ConfigError, match="no tokenizers registered under"):
        call_job(encode, {"out": str(tmp_path / "empty"), "corpus": CORPUS},
                 master="local[1]", launcher="spark-submit")


def test_in_process_session_refuses_a_second_master(spark):
    from jobs.runtime.spark import build_spark
    from schemas.errors import ConfigError

    with pytest.raises(ConfigError, match="already active in this process"):
        build_spark("other", master="spark://127.0.0.1:7077")
    assert build_spark("same", master=spark.sparkContext.master) is spark
