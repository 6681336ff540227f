"""Tokenizer training grid flow: samples → train on Spark → CTC on Spark → inequity
analysis (→ optional second pass at the optimal sizes) → Parquet + report.

Thin orchestration over `jobs/train_grid.py` and `jobs/grid_analysis.py`. The spec is
validated before Spark starts; configuration errors are never retried; a re-run trains
and measures only cells without a result.

    tokatlas grid run --spec examples/grid_demo.yaml --out out/grid [--second-pass] [--retry-failed]
    tokatlas grid status --spec examples/grid_demo.yaml --out out/grid
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flows.prefect_env import configure_prefect_env
from flows.retries import retry_unless_config_error

configure_prefect_env()  # before Prefect reads its settings

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from flows.steps import publish, run_job  # noqa: E402
from jobs.analysis.grid_spec import GridCell, GridSpec, load_spec  # noqa: E402
from jobs.runtime.params import add_spark_options  # noqa: E402
from jobs.store.layout import registry_dir, report_dir  # noqa: E402
from jobs.store.run_log import mark  # noqa: E402
from jobs.store.runs import logged_run  # noqa: E402
from schemas.errors import ConfigError  # noqa: E402
from tokenizers_registry.store import normalize_root  # noqa: E402


@dataclass
class GridParams:
    spec: str | None = None
    out: str = "tokatlas-out"
    registry_root: str | None = None
    retry_failed: bool = False
    second_pass: bool | None = None  # None: as the spec says
    wave_size: int = 0  # Spark tasks per wave (progress is logged after each); 0: all at once
    spark_master: str | None = None
    spark_launcher: str | None = None  # in-process | spark-submit (as in the premium flow)
    spark_submit_args: list[str] = field(default_factory=list)
    grid: GridSpec | None = None  # set by checked(); or pass a GridSpec built in Python

    def checked(self) -> GridParams:
        """Load and validate the spec without starting Spark; raises ConfigError."""
        if self.grid is None:
            if not self.spec:
                raise ConfigError("a grid needs a spec: --spec grid.yaml")
            self.grid = load_spec(self.spec)
        if self.wave_size < 0:
            raise ConfigError("wave_size must be >= 0")
        if self.second_pass is None:
            self.second_pass = self.grid.analysis.second_pass
        self.registry_root = normalize_root(self.registry_root or registry_dir(self.out))
        from jobs.runtime.spark import spark_launcher

        self.spark_launcher = spark_launcher(self.spark_launcher)
        return self


# In-process, the steps call the job functions on this process's session (training reports its
# progress per wave); with launcher spark-submit, each goes to its own driver through `run_job`.
def _spark(p: GridParams):
    from jobs.runtime.spark import build_spark

    return build_spark("tokatlas-grid", master=p.spark_master)


def _submitted(p: GridParams) -> bool:
    return p.spark_launcher == "spark-submit"


@task(name="grid-plan", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_config_error)
def plan_task(p: GridParams) -> tuple[list[GridCell], dict]:
    from jobs.train_grid import cells_from_dicts, plan_grid, plan_job

    if _submitted(p):
        r = run_job(p, "grid", plan_job, spec=asdict(p.grid), out=p.out)
        return cells_from_dicts(r["cells"]), r["manifest"]
    return plan_grid(p.grid, p.out, spark=_spark(p))


@task(name="grid-train", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def train_task(p: GridParams, cells: list[GridCell], label: str) -> dict:
    from jobs.train_grid import TrainSummary, grid_status, train_cells, train_job

    log = get_run_logger()
    st = grid_status(p.out, cells)
    log.info("%s: %d cells, %d done, %d failed, %d remaining", label, st.planned, st.done, st.failed, st.remaining)

    from jobs.runtime.progress import Progress

    bar = Progress(f"{label}: tokenizers trained", st.remaining, log=lambda _: None)  # a bar on a TTY only

    def progress(s):
        bar.update(s.trained, failed=s.failed)
        log.info("%s progress: %d trained, %d failed this run, %d of %d still to train", label, s.trained, s.failed,
                 s.planned - s.skipped - s.trained - s.failed, s.planned - s.skipped)

    if _submitted(p):  # the driver prints its own summary; progress is per finished job here
        s = TrainSummary(**run_job(p, "grid", train_job, spec=asdict(p.grid), out=p.out,
                                   cells=[c.to_dict() for c in cells], registry_root=p.registry_root,
                                   retry_failed=p.retry_failed, wave_size=p.wave_size))
    else:
        s = train_cells(_spark(p), p.out, p.grid, cells, registry_root=p.registry_root,
                        retry_failed=p.retry_failed, wave_size=p.wave_size, progress=progress)
    bar.close()
    st = grid_status(p.out, cells)
    log.info("%s: trained %d, failed %d this run in %.1fs; done %d, failed %d, remaining %d", label, s.trained,
             s.failed, s.wall_seconds, st.done, st.failed, st.remaining)
    return {"train": s.to_dict(), "status": st.to_dict()}


@task(name="grid-ctc", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def ctc_task(p: GridParams, cells: list[GridCell], manifest: dict) -> dict:
    from jobs.grid_analysis import compute_ctc

    kwargs = {"out": p.out, "grid": p.grid.name, "cell_ids": [c.cell_id for c in cells], "manifest": manifest,
              "registry_root": p.registry_root}
    if _submitted(p):
        return run_job(p, "grid", compute_ctc, **kwargs)
    return compute_ctc(_spark(p), **kwargs)


@task(name="grid-analysis", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_config_error)
def analysis_task(p: GridParams, cells: list[GridCell], manifest: dict, second: list[GridCell] | None) -> dict:
    from jobs.analysis.grid import analyse
    from jobs.grid_analysis import language_features, read_ctc, second_pass_ctc

    a = p.grid.analysis
    ctc = read_ctc(p.out, [c.cell_id for c in cells], manifest)
    measured = second_pass_ctc(p.out, second, manifest) if second else None
    return analyse(ctc, language_features(p.out, p.grid.name, manifest), vmin=a.optimal_min_vocab,
                   vmax=a.optimal_max_vocab, target=a.target_ctc, offset=a.fit_offset, second_pass=measured)


@task(name="grid-report", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_config_error)
def report_task(p: GridParams, tables: dict, status: dict, notes: list[str]) -> dict:
    from jobs.grid_analysis import write_analysis
    from jobs.reports.grid import render_grid_report

    parquet = write_analysis(tables, p.out, p.grid.name)
    paths = render_grid_report(tables, report_dir(p.out, f"grid-{p.grid.name}"),
                               title=f"Crosslingual tokenizer inequity: grid {p.grid.name}", status=status,
                               notes=notes)
    return {**{k: str(v) for k, v in parquet.items()}, **{k: str(v) for k, v in paths.items()}}


@flow(name="tokenizer-grid", log_prints=True)
@logged_run("tokenizer-grid")
def tokenizer_grid(params: GridParams) -> dict:
    """Train a tokenizer grid and analyse its crosslingual inequities."""
    t0 = time.perf_counter()
    p = params.checked()
    log = get_run_logger()
    cells, manifest = plan_task(p)
    mark("plan", inputs={"grid": p.grid.name, "grid_samples": manifest})
    train = train_task(p, cells, "grid")
    t = train["train"]
    mark("train", computed=t["trained"], skipped=t["skipped"], failed=t["failed"])
    ctc = ctc_task(p, cells, manifest)
    mark("ctc")
    log.info("CTC: %d computed, %d already there, %d failed", ctc["computed"], ctc["skipped"], len(ctc["failed"]))
    second = None
    second_summary = None
    if p.second_pass:
        from jobs.train_grid import second_pass_cells

        first = analysis_task(p, cells, manifest, None)
        second = second_pass_cells(p.grid, first["_optimal_rows"], manifest)
        second_summary = train_task(p, second, "second pass")
        t = second_summary["train"]
        mark("second-pass", computed=t["trained"], skipped=t["skipped"], failed=t["failed"])
        ctc_task(p, second, manifest)
    tables = analysis_task(p, cells, manifest, second)
    mark("analysis")
    from jobs.grid_analysis import report_notes

    report = report_task(p, tables, train["status"], report_notes(p.grid))
    mark("report")
    md = Path(report["markdown"]).read_text(encoding="utf-8")
    publish(p.out, f"grid-{p.grid.name}", md[:200_000], f"Tokenizer grid {p.grid.name}")
    return {"status": train["status"], "train": train["train"], "ctc": ctc,
            "second_pass": second_summary, "report": report, "seconds": time.perf_counter() - t0}


# -- CLI --------------------------------------------------------------------------------
def add_cli(subparsers) -> None:
    """Register `tokatlas grid run|status`."""
    p = subparsers.add_parser("grid", help="train tokenizer grids and analyse crosslingual inequity",
                              description=__doc__.split("\n\n")[0],
                              epilog="example: tokatlas grid run --spec examples/grid_demo.yaml --out out/grid")
    sub = p.add_subparsers(dest="grid_cmd", required=True)
    run = sub.add_parser("run", help="train the grid's missing tokenizers, measure CTC, write the report",
                         epilog="example: tokatlas grid run --spec examples/grid_demo.yaml --out out/grid")
    run.add_argument("--spec", help="grid spec YAML (required)")
    run.add_argument("--registry-root", help="registry root (default OUT/registry)")
    run.add_argument("--retry-failed", action="store_true", default=None, help="train failed cells again")
    run.add_argument("--second-pass", action="store_true", default=None,
                     help="train the optimal vocabulary sizes and measure their variance (default: as the spec)")
    run.add_argument("--wave-size", type=int, help="Spark tasks per wave; progress is logged per wave (default 0: all)")
    add_spark_options(run)
    st = sub.add_parser("status", help="done / failed / remaining cells of a grid",
                        epilog="example: tokatlas grid status --spec examples/grid_demo.yaml --out out/grid --json")
    st.add_argument("--spec", help="grid spec YAML (required)")
    st.add_argument("--json", action="store_true", help="print JSON")
    for q in (run, st):
        q.add_argument("--config", help="YAML file with the parameters (spec, out, ...; options given here win)")
        q.add_argument("--out", help="output root (default tokatlas-out)")
    p.set_defaults(func=cmd_grid)


def cmd_grid(a) -> int:
    from flows.prefect_env import one_line_errors
    from jobs.preflight import check_grid
    from jobs.runtime.params import params_from_args

    params = params_from_args(GridParams, a)
    if a.grid_cmd == "status":
        from jobs.train_grid import spec_status

        if not params.spec:
            raise ConfigError("grid status needs a spec: --spec grid.yaml")
        s = spec_status(load_spec(params.spec), params.out)
        if a.json:
            print(json.dumps(s, indent=1))
        else:
            print(f"planned {s['planned']}, done {s['done']}, failed {s['failed']}, remaining {s['remaining']}"
                  + (f" ({s['note']})" if s.get("note") else ""))
            for f in s["failures"][:30]:
                print(f"  failed {f[0]} {f[1]} {f[2]} V={f[3]}: {f[4]}: {(f[5] or '')[:120]}")
        return 0
    params = check_grid(params.checked())  # fails here, before Prefect or Spark start
    one_line_errors()
    r = tokenizer_grid(params)
    s, t = r["status"], r["train"]
    print(f"grid {params.grid.name}: {t['planned']} cells, {t['skipped']} already had a result, {t['trained']} trained, "
          f"{t['failed']} failed this run")
    print(f"status: done {s['done']}, failed {s['failed']}, remaining {s['remaining']}")
    for f in s["failures"][:20]:
        print(f"  failed {f[1]} {f[2]} V={f[3]}: {f[4]}")
    if r["second_pass"]:
        sp = r["second_pass"]["train"]
        print(f"second pass: {sp['planned']} optimal-size cells, {sp['trained']} trained, {sp['failed']} failed")
    print(f"analysis: {Path(r['report']['fits']).parent}")
    print(f"report:   {r['report']['html']}")
    print(f"done in {r['seconds']:.1f}s")
    return 0
