"""Prefect settings for local runs: no telemetry, a private home, patient server start, and a
temporary server that never outlives the process that started it.

Called before Prefect is imported by the CLI, the benchmarks and the tests, so
that every entry point runs Prefect the same way (see ENVIRONMENT.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from schemas.errors import TokatlasError


def configure_prefect_env(home: str | Path | None = None) -> None:
    """Set Prefect's environment defaults; values the user already set win."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server's default 20 s start-up limit is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_HOME", str(home or Path.home() / ".tokatlas" / "prefect"))
    # Prefect creates only the last path component; a fresh machine has no ~/.tokatlas yet.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)


# Prefect stops its temporary server at exit (atexit), which a SIGKILL or the OOM killer skips:
# the server then runs on as an orphan. The watchdog holds the read end of a pipe only this process
# writes to; the kernel closes it however the process ends, and the watchdog then stops the server.
# A pidfd names that very process, so a recycled pid is never signalled.
WATCHDOG = """# tokatlas-watchdog: stop Prefect's temporary server when its parent process ends
import os, select, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a Ctrl-C of the group is the parent's to handle
    signal.signal(s, signal.SIG_IGN)
try:
    server = os.pidfd_open(int(sys.argv[1]))
except OSError:
    sys.exit(0)  # already gone
sys.stdin.buffer.read()  # returns at end of file: the parent has ended
try:
    signal.pidfd_send_signal(server, signal.SIGTERM)
    if not select.select([server], [], [], 30)[0]:
        signal.pidfd_send_signal(server, signal.SIGKILL)
except ProcessLookupError:
    pass  # the parent stopped it (a normal exit)
"""
_WATCHDOGS: dict[int, subprocess.Popen] = {}  # server pid -> watchdog; kept so its pipe stays open


def guard_temporary_server() -> None:
    """Give Prefect's temporary server, if this process started one, a watchdog that stops it
    when this process ends, even by SIGKILL. Idempotent; a no-op without a temporary server
    or without pidfds (Linux < 5.3, other systems)."""
    if "prefect.server.api.server" not in sys.modules or not hasattr(os, "pidfd_open"):
        return
    from prefect.server.api.server import SubprocessASGIServer

    proc = SubprocessASGIServer().server_process  # the instance Prefect's clients use
    if proc is None or proc.poll() is not None or proc.pid in _WATCHDOGS:
        return
    _WATCHDOGS[proc.pid] = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(proc.pid)], stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class _NoTokatlasTraceback(logging.Filter):
    """On Prefect's console only: a TokatlasError raised in a flow reaches the user as the CLI's
    one line, not as the traceback Prefect logs (its API log, for the UI, keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], TokatlasError))


def one_line_errors() -> None:
    """Install the filter on Prefect's console handler once Prefect is loaded (idempotent)."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    for h in logging.getLogger().handlers:
        if isinstance(h, PrefectConsoleHandler) and not any(isinstance(f, _NoTokatlasTraceback) for f in h.filters):
            h.addFilter(_NoTokatlasTraceback())
