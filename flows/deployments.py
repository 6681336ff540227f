"""Scheduled Prefect deployments of the tokatlas flows, defined in `prefect.yaml` at the repository root.

    tokatlas deploy [--name nightly-flores ...] [--api-url http://127.0.0.1:4200/api]
    prefect worker start --pool tokatlas-process

`deploy` creates the `process` work pool when it is missing, then runs `prefect deploy`
from the repository root with TOKATLAS_ROOT set, so the deployments' pull step puts
flow runs in this clone. It needs a running Prefect server (PREFECT_API_URL): a
deployment on Prefect's temporary server would vanish with it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from schemas.errors import ConfigError, TokatlasError

ROOT = Path(__file__).resolve().parents[1]
PREFECT_FILE = ROOT / "prefect.yaml"
POOL = "tokatlas-process"


def deployment_specs(prefect_file: str | Path = PREFECT_FILE) -> list[dict]:
    """The `deployments` entries of a prefect.yaml (names, entrypoints, schedules, parameters)."""
    import importlib
    import inspect
    import typing

    from jobs.runtime.params import load_config, params_from

    path = Path(prefect_file)
    if not path.is_file():
        raise ConfigError(f"Prefect deployment file {path} does not exist")
    specs = list(load_config(path).get("deployments") or [])
    for i, d in enumerate(specs):  # each flow's parameters as its CLI checks them: keys and types
        where = f"{path}: deployments[{i}]"
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or ":" not in str(d.get("entrypoint")):
            raise ConfigError(f"{where}: expected a mapping with a name and an entrypoint (flows/x.py:function)")
        module, _, fn = d["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), fn, None)
        params = (d.get("parameters") or {}).get("params")
        ann = inspect.signature(flow).parameters["params"].annotation if flow is not None else None
        cls = next((t for t in typing.get_args(ann) or (ann,) if isinstance(t, type) and t is not type(None)), None)
        if cls is not None and isinstance(params, dict):
            params_from(cls, params, f"{where} ({d['name']}) parameters.params")
    return specs


def _api_url(api_url: str | None) -> str:
    url = api_url or os.environ.get("PREFECT_API_URL")
    if not url:
        raise ConfigError("no Prefect server to deploy to: start one (`prefect server start`) and set PREFECT_API_URL "
                          "(e.g. http://127.0.0.1:4200/api) or pass --api-url")
    return url


async def _ensure_pool(api_url: str, pool: str) -> bool:
    """Create the `process` work pool unless it exists; True when it was created."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async with PrefectClient(api_url) as client:
        try:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            return False
    return True


def deploy(names: list[str] | None = None, *, api_url: str | None = None,
           prefect_file: str | Path = PREFECT_FILE) -> list[str]:
    """Create or update the named deployments (all when None) and their work pools; returns their names."""
    from flows.prefect_env import configure_prefect_env

    url = _api_url(api_url)
    specs = deployment_specs(prefect_file)
    known = [d["name"] for d in specs]
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ConfigError(f"unknown deployment(s) {unknown} in {prefect_file}; known: {', '.join(known)}")
    configure_prefect_env()
    for pool in sorted({(d.get("work_pool") or {}).get("name") or POOL for d in specs
                        if not names or d["name"] in names}):
        asyncio.run(_ensure_pool(url, pool))
    selection = [a for n in names for a in ("--name", n)] if names else ["--all"]
    env = {**os.environ, "PREFECT_API_URL": url, "TOKATLAS_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", str(prefect_file), *selection]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TokatlasError(f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}):\n"
                            f"{(proc.stdout + proc.stderr)[-3000:]}")
    return list(names or known)


# -- CLI --------------------------------------------------------------------------------
def add_cli(subparsers) -> None:
    """Register `tokatlas deploy`."""
    p = subparsers.add_parser("deploy", help="create the scheduled Prefect deployments of prefect.yaml",
                              description=__doc__.split("\n\n")[0],
                              epilog="example: PREFECT_API_URL=http://127.0.0.1:4200/api tokatlas deploy; then "
                                     f"prefect worker start --pool {POOL}")
    p.add_argument("--name", action="append", dest="names", help="deployment name (repeatable; default: all)")
    p.add_argument("--api-url", help="Prefect API URL (default $PREFECT_API_URL)")
    p.add_argument("--prefect-file", default=str(PREFECT_FILE))
    p.set_defaults(func=cmd_deploy)


def cmd_deploy(a) -> int:
    specs = {d["name"]: d for d in deployment_specs(a.prefect_file)}
    done = deploy(a.names, api_url=a.api_url, prefect_file=a.prefect_file)
    for name in done:
        crons = ", ".join(s.get("cron", "?") for s in specs[name].get("schedules") or []) or "no schedule"
        print(f"deployed {name:22} {specs[name]['entrypoint']:40} {crons}")
    pools = sorted({(specs[n].get("work_pool") or {}).get("name") or POOL for n in done})
    print("start a worker: " + "; ".join(f"prefect worker start --pool {p}" for p in pools))
    return 0
