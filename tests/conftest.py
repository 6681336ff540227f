"""Shared fixtures (one local SparkSession, one Prefect test harness, one standalone cluster and one
packed environment per test session) and the tier markers.

Every test is marked by what it needs, from the fixtures it uses (transitively: `item.fixturenames`
is the closure): `spark`, `prefect`, `cluster` (implies `spark`), `browser`; a test with none of them
is `pure`. A test that needs one without its fixture (a CLI or spark-submit in a subprocess)
declares it: `@pytest.mark.spark`. When no selected test needs Spark (or Prefect), Spark cannot
start in this session (nor can Prefect reach a server), so `pytest -m pure` fails loudly on a
missing mark instead of quietly paying for a JVM or a temporary server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TOKATLAS_SHARED", ROOT.parent / "shared")) / "data"

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
if str(ROOT) not in sys.path:  # infra/ is tooling beside the installed packages, imported from the checkout
    sys.path.insert(0, str(ROOT))
# Tests mirror the packages (tests/jobs/store/, ...); a few share constants and small fixtures by module
# name (`from test_query import LANGS`). Their folders go last on sys.path, so they never shadow a package.
for _d in sorted({p.parent for p in (ROOT / "tests").rglob("test_*.py")}):
    if str(_d) not in sys.path:
        sys.path.append(str(_d))

NEEDS = {"spark": "spark", "prefect_harness": "prefect", "standalone_cluster": "cluster", "packed_env": "cluster",
         "browser": "browser"}  # fixture -> marker
IMPLIES = {"cluster": ("spark",)}
TIERS = ("spark", "prefect", "cluster", "browser")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Where Spark and Prefect point when no selected test may use them: the path or URL names the fix.
NO_SPARK_HOME = "/nonexistent/an-unmarked-test-started-spark--mark-it-spark"
NO_PREFECT_API = "http://127.0.0.1:9/an-unmarked-test-used-prefect--mark-it-prefect/api"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        needs = {NEEDS[f] for f in item.fixturenames if f in NEEDS}
        needs |= {m.name for m in item.iter_markers() if m.name in TIERS}
        needs |= {implied for n in needs for implied in IMPLIES.get(n, ())}
        declared = {m.name for m in item.iter_markers()}
        for name in sorted(needs - declared):
            item.add_marker(name)
        if not needs:
            item.add_marker("pure")
    # Longest first: under pytest-xdist (loadscope) modules are handed out in this order, so the
    # modules that wait on clusters, servers and subprocesses start at once instead of ending the run
    # on one busy worker while the other idles. A stable sort: modules stay whole and keep their order.
    weight = {}
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        w = 3 if "cluster" in marks else 2 if "prefect" in marks else 1 if "spark" in marks else 0
        weight[item.module.__name__] = max(weight.get(item.module.__name__, 0), w)
    items.sort(key=lambda item: -weight[item.module.__name__])


_GUARDS = contextlib.ExitStack()


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any("packed_env" in item.fixturenames for item in session.items):
        _start_packing()
    selected = {m.name for item in session.items for m in item.iter_markers()}
    if "spark" not in selected:  # in-process sessions and spark-submit both start from $SPARK_HOME
        os.environ["SPARK_HOME"] = NO_SPARK_HOME
    if "prefect" not in selected:  # subprocesses read the variable; this process read its settings at import
        os.environ["PREFECT_API_URL"] = NO_PREFECT_API
        if "prefect" in sys.modules:
            from prefect.settings import PREFECT_API_URL, temporary_settings

            _GUARDS.enter_context(temporary_settings(updates={PREFECT_API_URL: NO_PREFECT_API}))


def pytest_configure(config):
    # One packed environment for the whole run, whichever process builds it: under pytest-xdist the
    # workers inherit this directory from the controller, and the first to need it builds it there.
    if not hasattr(config, "workerinput") and PACK_DIR not in os.environ:
        os.environ[PACK_DIR] = tempfile.mkdtemp(prefix="tokatlas-packed-env-")
        _PACKING["owner"] = True


def pytest_unconfigure(config):
    _GUARDS.close()
    if not _PACKING.get("owner"):  # a worker leaves the build to the run's owner: another worker may wait for it
        return
    archive, _, rc = _pack_files()
    claim = archive.with_name("claimed")
    if claim.exists() and claim.read_text() and not rc.exists():  # still running if interrupted before the archive was used
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(claim.read_text()), signal.SIGKILL)
    shutil.rmtree(os.environ.pop(PACK_DIR), ignore_errors=True)


PACK_DIR = "TOKATLAS_TEST_PACK_DIR"
_PACKING: dict = {}  # {"owner": True} in the process that made the packed environment's directory


def _pack_files() -> tuple[Path, Path, Path]:
    d = Path(os.environ[PACK_DIR])
    return d / "env.tar.gz", d / "pack.log", d / "pack.rc"


def _start_packing() -> None:
    """Build the packed environment in a subprocess from the end of collection on: packing 1.3 GB
    takes about a minute, which then overlaps the tests that run before the first one using it.
    Only the first process to ask builds it (an exclusive claim file); the others wait for its rc."""
    archive, log, rc = _pack_files()
    try:
        claim = os.open(archive.with_name("claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    script = '"$0" -m infra.pack_env --out "$1" >"$2" 2>&1; echo $? >"$3.tmp" && mv "$3.tmp" "$3"'
    proc = subprocess.Popen(["sh", "-c", script, sys.executable, archive, log, rc], cwd=ROOT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    os.write(claim, str(proc.pid).encode())  # its process group, for the owner to stop if the run is interrupted
    os.close(claim)


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


# premium_out's FLORES subset: 3 languages x 2 splits x 20 sentences x 2 tokenizers.
PREMIUM_OUT_LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PREMIUM_OUT_PER_SPLIT = 20
PREMIUM_OUT_NAMES = ["gpt2", "mistral-v1"]


@pytest.fixture(scope="session")
def premium_out(prefect_harness, spark, tmp_path_factory):
    """(params, result) of one real token-premium flow run on a FLORES subset, shared by
    tests/jobs/store/test_query.py, test_catalog.py, test_cli.py and test_run_log.py (a test that writes
    into it works on a copy). Defined here, not imported into each module: an imported fixture
    is a new fixture per module, and the flow would run once per module."""
    from helpers import write_flores_folder, write_manifest_subset

    from flows.premium_flow import PremiumParams, token_premium

    folder = write_flores_folder(tmp_path_factory.mktemp("flores_q"), PREMIUM_OUT_LANGS, PREMIUM_OUT_PER_SPLIT)
    manifest = write_manifest_subset(tmp_path_factory.mktemp("manifest_q") / "MANIFEST.json", PREMIUM_OUT_NAMES)
    out = tmp_path_factory.mktemp("premium_q") / "out"
    params = PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(folder), corpus_name="mini",
                           tokenizer_manifest=str(manifest), n_bootstrap=20)
    return params, token_premium(params)


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    return shared_path("tokenizers")


@pytest.fixture(scope="session")
def flores_parquet() -> Path:
    return shared_path("flores200", "flores200_dev_devtest.parquet")


_DELETING: list[threading.Thread] = []  # deleting finished applications' directories


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory):
    """One master and two 1-core workers on 127.0.0.1 for every cluster test: three JVMs start once,
    without waiting, so they boot while the module fixtures (local reference runs) compute."""
    from infra.cluster import start

    c = start(n_workers=2, cores_per_worker=1, memory="2g", work_dir=tmp_path_factory.mktemp("cluster"), wait=False)
    try:
        yield c
    finally:
        c.stop()
        for t in _DELETING:
            t.join()
        shutil.rmtree(Path(c.work_dir) / "worker", ignore_errors=True)


@pytest.fixture
def cluster(standalone_cluster):
    """The shared cluster in a clean state: both workers alive, no executor of an earlier test still
    running. Afterwards the applications' directories are deleted in a background thread: each
    executor unpacked its own copy of a packed environment (1.3 GB, 33,000 files), and deleting
    four of them takes minutes on a busy disk, time the tests after this one can use."""
    c = standalone_cluster
    c.wait_for_workers(len(c.workers))
    c.wait_idle()
    yield c
    c.wait_idle()
    apps = sorted((Path(c.work_dir) / "worker").glob("*/app-*"))
    t = threading.Thread(target=lambda: [shutil.rmtree(a, ignore_errors=True) for a in apps], daemon=True)
    t.start()
    _DELETING.append(t)


@pytest.fixture(scope="session")
def packed_env() -> Path:
    """This venv and the tokatlas packages packed once per run (`python -m infra.pack_env`), for
    `--archives`; the build started at the end of collection (in this process or another worker)."""
    from infra.cluster import wait_until

    _start_packing()  # no-op once claimed; requested dynamically (getfixturevalue), nothing claimed it yet
    archive, log, rc = _pack_files()
    wait_until(rc.exists, 1800, "the packed environment's build", interval=0.5)
    if rc.read_text().strip() != "0":
        pytest.fail(f"python -m infra.pack_env exited {rc.read_text().strip()}:\n{log.read_text()[-3000:]}")
    return archive


@pytest.fixture(scope="session")
def browser() -> str:
    """Headless Chromium's executable; the test is skipped where it is not installed."""
    if CHROMIUM is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    return CHROMIUM
