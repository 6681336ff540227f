"""The one place a SparkSession is built."""

from __future__ import annotations

import os
import sys

LOCAL_CONF = {
    # Loopback only, no UI: tests and local runs never open external ports.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.python.worker.reuse": "true",
    # Ingest caches the whole corpus once; FLORES-200 (400k rows) spills past the 1 GiB default.
    "spark.driver.memory": "4g",
}


def under_spark_submit() -> bool:
    """True when spark-submit launched this driver (it then owns master and conf)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_spark(app_name: str = "tokatlas", master: str | None = None, conf: dict | None = None):
    """Return the active SparkSession or build one.

    Master: `master`, else $TOKATLAS_SPARK_MASTER, else `local[*]`; under spark-submit
    the master and conf it was given are kept. Python workers use this interpreter
    unless PYSPARK_PYTHON says otherwise (the system Python lacks our packages).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.master(master or os.environ.get("TOKATLAS_SPARK_MASTER") or "local[*]")
        for k, v in LOCAL_CONF.items():
            builder = builder.config(k, v)
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()
