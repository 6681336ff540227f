"""The one place a SparkSession is built, and the one place a driver is launched.

`call_job(encode, {...})` calls a job function (`job(spark, **kwargs) -> summary`) with a session
either in this process (launcher "in-process", the default) or in a driver started by
spark-submit (launcher "spark-submit"): the function goes to the driver by its importable name
("jobs.encode:encode"), the arguments as JSON, and the result comes back as JSON. Flows use it
so the same parameters run both ways.

    spark-submit jobs/runtime/spark.py CALL.json RESULT.json     (what the spark-submit launcher runs)
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path

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
        if master and not under_spark_submit() and active.sparkContext.master != master:
            from schemas.errors import ConfigError

            # One SparkContext per process: silently reusing it would run on the wrong cluster.
            raise ConfigError(f"a Spark session on {active.sparkContext.master} is already active in this "
                              f"process; cannot also use {master} (stop it, or use launcher 'spark-submit')")
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


LAUNCHERS = ("in-process", "spark-submit")


def spark_master(master: str | None = None) -> str:
    """`master`, else $TOKATLAS_SPARK_MASTER, else local mode on every core."""
    return master or os.environ.get("TOKATLAS_SPARK_MASTER") or "local[*]"


def spark_launcher(launcher: str | None = None) -> str:
    """`launcher`, else $TOKATLAS_SPARK_LAUNCHER, else "in-process"; unknown names are a ConfigError."""
    from schemas.errors import ConfigError

    name = launcher or os.environ.get("TOKATLAS_SPARK_LAUNCHER") or "in-process"
    if name not in LAUNCHERS:
        raise ConfigError(f"unknown Spark launcher {name!r}; known: {', '.join(LAUNCHERS)}")
    return name


def spark_submit_command(script, args=(), *, app_name: str = "tokatlas", master: str | None = None,
                         submit_args=(), conf: dict | None = None) -> list[str]:
    """`spark-submit --master M --name N --conf …(LOCAL_CONF, conf) submit_args… script args…`.

    `submit_args` come last among the options, so a `--conf` there overrides ours
    (e.g. `--archives env.tar.gz#env --conf spark.pyspark.python=./env/bin/python`).
    """
    exe = Path(sys.executable).parent / "spark-submit"
    if not exe.exists():
        import pyspark

        exe = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    cmd = [str(exe), "--master", spark_master(master), "--name", app_name]
    for k, v in {**LOCAL_CONF, **(conf or {})}.items():
        cmd += ["--conf", f"{k}={v}"]
    return [*cmd, *submit_args, str(script), *map(str, args)]


def submit_env() -> dict:
    """Environment for spark-submit: driver and (unless spark.pyspark.python says otherwise)
    executors run this interpreter, which has tokatlas and the tokenizer libraries."""
    env = {**os.environ}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return env


def to_plain(x):
    """A job result as JSON-able data: summaries via to_dict()/asdict, paths as str.
    Arrow tables become None: they stay in the Parquet files the job wrote."""
    import pyarrow as pa

    if hasattr(x, "to_dict") and not isinstance(x, dict) and not isinstance(x, pa.Table):
        return to_plain(x.to_dict())
    if is_dataclass(x) and not isinstance(x, type):
        return to_plain(asdict(x))
    if isinstance(x, dict):
        return {str(k): to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, pa.Table):
        return None
    return x


def _call(name: str):
    """The function a "module:qualname" name (`job_name`) stands for."""
    module, _, qualname = name.partition(":")
    target = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target


def job_name(fn) -> str:
    """"module:qualname" of job function `fn`, by which a spark-submit'ed driver imports it.
    TypeError unless that name leads back to `fn` itself: a lambda, a nested function or one
    defined in `__main__` cannot be imported by another process."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    name = f"{module}:{qualname}"
    importable = callable(fn) and bool(module) and bool(qualname) and module != "__main__" and "<" not in qualname
    try:
        importable = importable and _call(name) is fn
    except ImportError:
        importable = False
    if not importable:
        raise TypeError(f"call_job needs a job function defined at the top level of an importable module "
                        f"(e.g. jobs.encode.encode), not {fn!r}")
    return name


def call_job(fn, kwargs: dict, *, app_name: str = "tokatlas", master: str | None = None,
             launcher: str | None = None, submit_args=(), conf: dict | None = None):
    """`fn(spark, **kwargs)` in this process or in a spark-submit'ed driver; `fn` must be
    importable by name (`job_name`) either way, so that both launchers take the same functions.

    Returns the result as `to_plain` data either way. A driver that exits 2 raises
    ConfigError with its message; any other failure raises RuntimeError with the
    tail of its stderr (Prefect retries those, not configuration errors).
    """
    from schemas.errors import ConfigError

    name = job_name(fn)
    if spark_launcher(launcher) == "in-process":
        return to_plain(fn(build_spark(app_name, master, conf), **kwargs))
    with tempfile.TemporaryDirectory(prefix="tokatlas-submit-") as d:
        call, result = Path(d) / "call.json", Path(d) / "result.json"
        call.write_text(json.dumps({"fn": name, "kwargs": kwargs, "app_name": app_name}, default=str))
        cmd = spark_submit_command(Path(__file__).resolve(), [call, result], app_name=app_name, master=master,
                                   submit_args=submit_args, conf=conf)
        proc = subprocess.run(cmd, env=submit_env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True)
        if proc.stdout:
            print(proc.stdout, end="")
        # spark-submit merges the Python driver's stderr into its stdout; Spark's own log is on stderr.
        if proc.returncode == 2:
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("error: ")]
            raise ConfigError(lines[-1][len("error: "):] if lines else proc.stdout[-2000:])
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"spark-submit {name} exited {proc.returncode}: {' '.join(cmd)}\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> int:
    """The driver side of the spark-submit launcher: CALL.json in, RESULT.json out."""
    call_path, result_path = (argv if argv is not None else sys.argv[1:])[:2]
    call = json.loads(Path(call_path).read_text())
    result = to_plain(_call(call["fn"])(build_spark(call.get("app_name", "tokatlas")), **call["kwargs"]))
    tmp = Path(result_path).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.runtime.spark")
