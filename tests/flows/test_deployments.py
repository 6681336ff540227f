"""Scheduled deployments end to end: a real Prefect server on loopback, `tokatlas deploy` of
prefect.yaml, a real process worker, a triggered token-premium run, its Parquet and artifact."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from uuid import UUID

import pyarrow.parquet as pq
import pytest
from conftest import ROOT
from helpers import wait_until, write_flores_folder, write_manifest_subset

from flows.deployments import PREFECT_FILE, deploy, deployment_specs
from schemas import CORPUS_COUNTS, PREMIUM, TOKEN_COUNTS, check_schema
from schemas.errors import ConfigError

pytestmark = pytest.mark.shared

LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PER_SPLIT = 25
NAMES = ["gpt2", "mistral-v1"]
FLOWS = {"premium_flow.py:token_premium": "token-premium", "grid_flow.py:tokenizer_grid": "tokenizer-grid",
         "mixture_flow.py:mixture_inference": "mixture-inference", "trim_flow.py:vocab_trim": "vocab-trim"}
PREFECT = [sys.executable, "-m", "prefect"]
WAIT = 1800  # seconds: only a guard against a hung server or worker, never a speed assertion


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group this test started (server, worker and their children)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Prefect server on a free loopback port with its own SQLite home; yields (api_url, env)."""
    home = tmp_path_factory.mktemp("prefect_server_home")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    env.pop("PREFECT_API_KEY", None)
    with open(home / "server.log", "w") as log:
        proc = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def healthy() -> bool:
                if proc.poll() is not None:
                    pytest.fail(f"Prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as r:
                    return r.read().strip() == b"true"

            try:  # http.client.HTTPException: a server still starting may cut its answer short
                wait_until(healthy, WAIT, f"Prefect server on port {port} healthy", interval=2,
                           retry_on=(OSError, http.client.HTTPException))
            except TimeoutError as e:
                pytest.fail(f"{e}\n{(home / 'server.log').read_text()[-2000:]}")
            yield env["PREFECT_API_URL"], env
        finally:
            _stop(proc)


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    """A FLORES-style folder (3 languages × 2 splits × 25 sentences) and a 2-tokenizer manifest."""
    root = tmp_path_factory.mktemp("deploy_inputs")
    write_flores_folder(root / "corpus", LANGS, PER_SPLIT)
    write_manifest_subset(root / "MANIFEST.json", NAMES)
    return root


def test_prefect_yaml_defines_a_scheduled_deployment_per_flow():
    specs = deployment_specs()
    assert {d["entrypoint"].removeprefix("flows/") for d in specs} == set(FLOWS)
    for d in specs:
        assert d["work_pool"]["name"] == "tokatlas-process"
        assert d["schedules"] and all(s["cron"] and s["active"] for s in d["schedules"])
        assert set(d["parameters"]) == {"params"}
        path = ROOT / d["entrypoint"].split(":")[0]
        assert path.is_file(), path


def test_deploy_without_a_server_is_a_config_error(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with pytest.raises(ConfigError, match="PREFECT_API_URL"):
        deploy()
    with pytest.raises(ConfigError, match="unknown deployment.*nightly-flores"):
        deploy(["no-such-deployment"], api_url="http://127.0.0.1:9/api")


@pytest.mark.prefect  # its own server, and a worker running the flow on Spark
@pytest.mark.spark
def test_deployed_premium_run_on_a_worker(server, small_inputs, tmp_path):
    api_url, env = server
    names = deploy(api_url=api_url)  # every deployment of prefect.yaml, and the work pool
    assert names == [d["name"] for d in deployment_specs(PREFECT_FILE)]

    out = tmp_path / "out"
    params = {"params": {"out": str(out), "corpus_source": "flores-folder", "corpus_path": str(small_inputs / "corpus"),
                         "corpus_name": "mini", "tokenizer_manifest": str(small_inputs / "MANIFEST.json"),
                         "n_bootstrap": 50}}
    run = subprocess.run([*PREFECT, "deployment", "run", "token-premium/nightly-flores", "--params",
                          json.dumps(params)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    flow_run_id = UUID(re.search(r"UUID: ([0-9a-f-]{36})", run.stdout).group(1))

    worker_log = tmp_path / "worker.log"
    with open(worker_log, "w") as log:  # started in tmp_path: the deployment's pull step must find the clone
        worker = subprocess.Popen([*PREFECT, "worker", "start", "--pool", "tokatlas-process", "--run-once"], env=env,
                                  cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            worker.wait(WAIT)
        finally:
            _stop(worker)
    flow_run, deployments, artifacts = asyncio.run(_read_api(api_url, flow_run_id))
    assert flow_run.state.is_completed(), f"{flow_run.state}: {worker_log.read_text()[-3000:]}"

    # every flow deployed with its cron schedule, the run pulled into the clone
    by_name = {(d.name, d.entrypoint): d for d in deployments}
    for spec in deployment_specs():
        d = by_name[(spec["name"], spec["entrypoint"])]
        assert [s.schedule.cron for s in d.schedules] == [s["cron"] for s in spec["schedules"]]
        assert d.work_pool_name == "tokatlas-process"
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]

    # Parquet outputs: exact rows and schemas
    n_cells = len(LANGS) * len(NAMES)
    counts = pq.read_table(out / "token_counts")
    assert counts.num_rows == n_cells * 2 * PER_SPLIT
    for f in (out / "token_counts").rglob("*.parquet"):
        check_schema(pq.read_schema(f), TOKEN_COUNTS, files=True)
    cc_files = sorted((out / "corpus_counts").rglob("*.parquet"))
    assert len(cc_files) == n_cells
    for f in cc_files:
        check_schema(pq.read_schema(f), CORPUS_COUNTS, files=True)
    premium = out / "premium" / "corpus=mini" / "reference=eng_Latn.parquet"
    check_schema(pq.read_schema(premium), PREMIUM, files=True)
    table = pq.read_table(premium)
    assert table.num_rows == n_cells
    assert sorted(set(table["lang"].to_pylist())) == sorted(LANGS)

    # the run's markdown artifact is the written report
    assert [a.key for a in artifacts] == ["token-premium-mini"]
    md = out / "reports" / "premium-mini" / "report.md"
    assert artifacts[0].type == "markdown" and artifacts[0].data == md.read_text(encoding="utf-8")


async def _read_api(api_url: str, flow_run_id: UUID):
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with PrefectClient(api_url) as client:
        flow_run = await client.read_flow_run(flow_run_id)
        deployments = await client.read_deployments()
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return flow_run, deployments, artifacts


def test_worker_outside_the_clone_keeps_outputs_relative_to_the_clone():
    """Relative paths in the deployments' parameters are read against the repository root."""
    for d in deployment_specs():
        for key in ("corpus_path", "tokenizer_manifest", "flores", "spec"):
            value = d["parameters"]["params"].get(key)
            if value and not Path(value).is_absolute():
                assert (ROOT / value).exists() or not (ROOT.parent / "shared").exists(), (d["name"], key, value)
