"""Prefect settings for local runs: no telemetry, a private home, patient server start.

Called before Prefect is imported by the CLI, the benchmarks and the tests, so
that every entry point runs Prefect the same way (see ENVIRONMENT.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def configure_prefect_env(home: str | Path | None = None) -> None:
    """Set Prefect's environment defaults; values the user already set win."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The temporary server's default 20 s start-up limit is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_HOME", str(home or Path.home() / ".tokatlas" / "prefect"))
    # Prefect creates only the last path component; a fresh machine has no ~/.tokatlas yet.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
