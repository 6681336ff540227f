"""A real Spark standalone cluster on loopback: one master and N workers from pyspark's jars.

    python -m infra.cluster start [--workers 2] [--cores 1] [--memory 2g] [--work-dir DIR] [--port 7077]
    python -m infra.cluster status [--work-dir DIR]
    python -m infra.cluster stop [--work-dir DIR]

From Python (tests, benchmarks):

    with cluster.start(n_workers=2) as c:
        subprocess.run(["spark-submit", "--master", c.master_url, "jobs/encode.py", ...])
        c.kill_worker(0)          # SIGKILL a worker's session: JVM, executor, Python workers

Nothing is downloaded: the daemons are `bin/spark-class` of the installed pyspark.
Each daemon gets its own session, so stopping or killing a worker also ends the
executor and Python workers it started (by session, not process group: pyspark's
daemon moves itself and its workers to a group of their own). The handle is saved
as `cluster.json` in the work dir so `stop` works from another process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_WORK_DIR = Path(os.environ.get("TOKATLAS_CLUSTER_DIR", Path(tempfile.gettempdir()) / "tokatlas-cluster"))
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def spark_home() -> Path:
    """The installed pyspark package directory: it holds bin/spark-class and jars/."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def wait_until(check, timeout: float, what: str, *, interval: float = 0.5, retry_on=(OSError, ValueError)):
    """Call `check()` until it returns something truthy, and return that. An exception in
    `retry_on` means "not yet" (a port not listening, a half-started server's non-JSON page);
    others propagate. At the deadline, raise TimeoutError naming `what` and the last outcome."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
            last = repr(value)
        except retry_on as e:
            last = f"{type(e).__name__}: {e}"
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached after {timeout:.0f}s (last check: {last})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    role: str  # "master" or "worker-<i>"
    pid: int
    log: str
    webui_port: int
    args: list[str] = field(default_factory=list)  # spark-class arguments, to restart it


@dataclass
class Cluster:
    """A running standalone cluster; `stop()` (or leaving the `with` block) ends every daemon."""

    master_url: str
    webui_url: str
    work_dir: str
    cores_per_worker: int
    memory: str
    daemons: list[Daemon] = field(default_factory=list)

    # -- inspection ------------------------------------------------------------------------
    def state(self, timeout: float = 5.0) -> dict:
        """The master's JSON status (workers, apps). While the master starts, its web UI answers
        `/json/` with an HTML page for a moment: that raises ValueError (JSONDecodeError)."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=timeout) as r:
            return json.load(r)

    def alive_workers(self) -> int:
        """Workers of this handle that the master lists as ALIVE (matched by web UI port, since a
        killed worker can stay listed until the master notices, and a restarted one has a new id)."""
        ports = {d.webui_port for d in self.workers}
        return sum(w.get("state") == "ALIVE" and int(str(w.get("webuiaddress", "")).rpartition(":")[2] or 0) in ports
                   for w in self.state().get("workers", []))

    @property
    def workers(self) -> list[Daemon]:
        return [d for d in self.daemons if d.role.startswith("worker-")]

    def wait_for_workers(self, n: int, timeout: float = 180.0) -> None:
        """Block until `n` workers are ALIVE at the master; raise with the logs if a daemon died
        or the deadline passes."""
        def ready() -> bool:
            for d in self.daemons:
                if not _alive(d.pid):
                    raise RuntimeError(f"spark {d.role} (pid {d.pid}) exited during start-up:\n{_tail(d.log)}")
            return self.alive_workers() >= n

        try:
            wait_until(ready, timeout, f"{n} workers registered with {self.master_url}")
        except TimeoutError as e:
            logs = "\n".join(f"--- {d.role}\n{_tail(d.log)}" for d in self.daemons)
            raise TimeoutError(f"{e}\n{logs}") from None

    def wait_idle(self, timeout: float = 180.0) -> None:
        """Block until no worker runs an executor or its Python workers: after a driver is killed,
        its executors run on (and may finish a task) until the master has removed the application."""
        wait_until(lambda: not any(_is_executor(p) for d in self.workers for p in session_members(d.pid)), timeout,
                   f"executors on {self.master_url} ended", interval=0.2)

    # -- faults and shutdown ---------------------------------------------------------------
    def kill_worker(self, index: int = 0, sig: int = signal.SIGKILL) -> Daemon:
        """Send `sig` to worker `index`'s session (worker JVM, its executors, their Python workers)."""
        d = self.workers[index]
        _kill_session(d.pid, sig)
        return d

    def restart_worker(self, index: int = 0, timeout: float = 180.0) -> Daemon:
        """Stop worker `index` if it still runs, start it again, and wait until all workers are ALIVE."""
        old = self.workers[index]
        _kill_session(old.pid, signal.SIGKILL)
        _reap(old.pid)
        new = _launch(spark_home(), _env(Path(self.work_dir)), Path(self.work_dir), old.role, old.webui_port, old.args)
        self.daemons[self.daemons.index(old)] = new
        self.save()
        self.wait_for_workers(len(self.workers), timeout)
        return new

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every daemon's session, SIGKILL what is left after `timeout`; idempotent."""
        for d in reversed(self.daemons):  # workers first, so the master does not log them as lost
            _kill_session(d.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not any(session_members(d.pid) for d in self.daemons), timeout,
                       "daemons stopped", interval=0.2)
        for d in self.daemons:
            _kill_session(d.pid, signal.SIGKILL)
        for d in self.daemons:
            _reap(d.pid)
        state = Path(self.work_dir) / "cluster.json"
        if state.exists() and json.loads(state.read_text()).get("master_url") == self.master_url:
            state.unlink()

    def save(self) -> Path:
        from jobs.store.atomic import write_text_atomic

        return write_text_atomic(json.dumps(asdict(self), indent=2), Path(self.work_dir) / "cluster.json")

    @classmethod
    def load(cls, work_dir: str | Path = DEFAULT_WORK_DIR) -> Cluster | None:
        path = Path(work_dir) / "cluster.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        doc["daemons"] = [Daemon(**d) for d in doc["daemons"]]
        return cls(**doc)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(n_workers: int = 2, cores_per_worker: int = 1, memory: str = "2g", work_dir: str | Path | None = None,
          port: int | None = None, webui_port: int | None = None, timeout: float = 180.0,
          wait: bool = True) -> Cluster:
    """Start a master and `n_workers` workers on 127.0.0.1 and wait until all are registered.

    Ports default to free ones, so concurrent clusters (tests, other users) never collide;
    pass `port=7077` for the conventional URL. On any start-up failure, whatever was
    started is stopped before the error propagates. With `wait=False` it returns once the
    daemons are launched, so their JVMs start while the caller does other work; the caller
    then calls `wait_for_workers(n_workers)` before submitting, and `stop()` in any case.
    """
    work = Path(work_dir or DEFAULT_WORK_DIR).resolve()
    existing = Cluster.load(work)
    if existing and any(_alive(d.pid) for d in existing.daemons):
        raise RuntimeError(f"a cluster is already running from {work} ({existing.master_url}); stop it first")
    for sub in ("logs", "worker", "local", "conf"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    webui_port = webui_port or free_port()
    home, env = spark_home(), _env(work)
    c = Cluster(master_url=f"spark://{HOST}:{port}", webui_url=f"http://{HOST}:{webui_port}", work_dir=str(work),
                cores_per_worker=cores_per_worker, memory=memory)
    try:
        c.daemons.append(_launch(home, env, work, "master", webui_port,
                                 [MASTER_CLASS, "--host", HOST, "--port", str(port), "--webui-port", str(webui_port)]))
        for i in range(n_workers):
            w_ui = free_port()
            c.daemons.append(_launch(home, env, work, f"worker-{i}", w_ui,
                                     [WORKER_CLASS, c.master_url, "--host", HOST, "--cores", str(cores_per_worker),
                                      "--memory", memory, "--work-dir", str(work / "worker" / str(i)),
                                      "--webui-port", str(w_ui)]))
        c.save()
        if wait:
            c.wait_for_workers(n_workers, timeout)
    except BaseException:
        c.stop()
        raise
    return c


def _env(work: Path) -> dict:
    return {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": HOST,
            # An empty conf dir: a user's spark-defaults.conf or log4j setup must not leak in.
            "SPARK_CONF_DIR": str(work / "conf"), "SPARK_LOCAL_DIRS": str(work / "local"),
            "SPARK_WORKER_DIR": str(work / "worker"), "SPARK_LOG_DIR": str(work / "logs"),
            "SPARK_DAEMON_MEMORY": os.environ.get("SPARK_DAEMON_MEMORY", "512m")}


def _launch(home: Path, env: dict, work: Path, role: str, webui_port: int, args: list[str]) -> Daemon:
    log = work / "logs" / f"{role}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([str(home / "bin" / "spark-class"), *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Daemon(role=role, pid=proc.pid, log=str(log), webui_port=webui_port, args=args)


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie child counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def session_members(sid: int) -> dict[int, int]:
    """pid -> process group of every live process of session `sid` (zombies excluded). A daemon
    started with its own session keeps all its descendants in it, even those that moved to a group
    of their own or were re-parented to init after their parent died."""
    members = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    state, _, pgid, session = f.read().rsplit(")", 1)[1].split()[:4]
            except (OSError, ValueError):
                continue
            if int(session) == sid and state != "Z":
                members[int(p)] = int(pgid)
    return members


def _kill_session(sid: int, sig: int) -> None:
    """Send `sig` to every process group of session `sid`: a whole group at once, so a process
    forking meanwhile (pyspark's daemon starting a worker) cannot leave a child behind."""
    members = session_members(sid)
    # The cmdline check guards against a recycled pid when `stop` runs long after `start`, from another process.
    if not any(_is_spark(p) for p in members):
        return
    for pgid in set(members.values()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _is_spark(pid: int) -> bool:
    cmd = _cmdline(pid)
    return b"org.apache.spark" in cmd or b"pyspark" in cmd or b"spark-class" in cmd


def _is_executor(pid: int) -> bool:
    """An executor JVM or one of its Python processes (pyspark's daemon and the workers it forks)."""
    cmd = _cmdline(pid)
    return b"CoarseGrainedExecutorBackend" in cmd or b"pyspark.daemon" in cmd


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child when stopped from another process
        os.waitpid(pid, os.WNOHANG)


def _tail(path: str, n: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.cluster", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a master and workers, print the master URL")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--cores", type=int, default=1, help="cores per worker")
    s.add_argument("--memory", default="2g", help="memory per worker (executors get spark.executor.memory of it)")
    s.add_argument("--port", type=int, help="master port (default: a free one; 7077 is Spark's usual)")
    s.add_argument("--webui-port", type=int, help="master web UI port, on loopback (default: a free one)")
    for q in (s, sub.add_parser("status", help="print the master URL and alive workers"),
              sub.add_parser("stop", help="stop every daemon started from the work dir")):
        q.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR), help=f"state, logs, scratch (default {DEFAULT_WORK_DIR})")
    a = p.parse_args(argv)
    if a.cmd == "start":
        c = start(a.workers, a.cores, a.memory, a.work_dir, a.port, a.webui_port)
        print(c.master_url)
        print(f"web UI {c.webui_url}; {a.workers} workers × {a.cores} cores; logs in {c.work_dir}/logs", file=sys.stderr)
        return 0
    c = Cluster.load(a.work_dir)
    if c is None:
        print(f"no cluster started from {a.work_dir}", file=sys.stderr)
        return 1
    if a.cmd == "status":
        try:
            st = c.state()
        except (OSError, ValueError) as e:
            print(f"{c.master_url}: master not answering ({e})", file=sys.stderr)
            return 1
        print(c.master_url)
        print(f"{c.alive_workers()} workers alive, {len(st.get('activeapps', []))} running applications",
              file=sys.stderr)
        return 0
    c.stop()
    print(f"stopped {c.master_url}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
