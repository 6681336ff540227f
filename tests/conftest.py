"""Shared fixtures: one local SparkSession and one Prefect test harness per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKATLAS_SHARED", ROOT.parent / "shared")) / "data"

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not found at {p} (set TOKATLAS_SHARED or clone beside ../shared)")
    return p


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from jobs.runtime.spark import build_spark

    session = build_spark("tokatlas-tests", master="local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    from flows.prefect_env import configure_prefect_env

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    configure_prefect_env()
    from prefect.testing.utilities import prefect_test_harness

    # A busy 2-core machine can take longer than Prefect's default 30 s to start the server.
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    return shared_path("tokenizers")


@pytest.fixture(scope="session")
def flores_parquet() -> Path:
    return shared_path("flores200", "flores200_dev_devtest.parquet")
