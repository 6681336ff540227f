"""Data mixture inference flows (Hayase et al. 2024): thin orchestration over jobs/mixture_*.

    mixture_inference   samples → pair-count trajectories on Spark (one task per tokenizer ×
                        category × sample-bootstrap replicate) → HiGHS LPs on Spark (one task per
                        tokenizer, then one per bootstrap replicate) → estimates Parquet +
                        Markdown/PNG report
    mixture_controlled  train BPE on known mixtures, attack with held-out samples, log10 MSE vs baselines

CLI (registered by `add_cli`):

    tokatlas mixture infer --tokenizer-manifest ../shared/data/tokenizers/MANIFEST.json \\
        --flores ../shared/data/flores200/flores200_dev_devtest.parquet --languages eng_Latn,deu_Latn \\
        --code-bytes 300000 --T 30000 --bootstrap 10 --out out/mixture
    tokatlas mixture eval --flores ../shared/data/flores200/flores200_dev_devtest.parquet --n 5,10 \\
        --T 1000,3000 --trials 10 --out out/mixture
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flows.prefect_env import configure_prefect_env
from flows.retries import retry_unless_config_error

configure_prefect_env()  # before Prefect reads its settings (start-up timeout on a busy machine)

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402

from flows.steps import publish, run_job  # noqa: E402
from jobs.analysis.mixture.problem import LP_METHODS  # noqa: E402
from jobs.runtime.params import add_spark_options  # noqa: E402
from jobs.store.run_log import mark  # noqa: E402
from jobs.store.runs import logged_run  # noqa: E402
from schemas.errors import ConfigError  # noqa: E402
from schemas.languages import is_lang_code  # noqa: E402
from tokenizers_registry.registry import read_manifest  # noqa: E402

DEFAULT_LANGUAGES = [
    "eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "por_Latn", "ita_Latn", "nld_Latn", "pol_Latn",
    "ces_Latn", "swe_Latn", "fin_Latn", "hun_Latn", "tur_Latn", "vie_Latn", "ind_Latn", "swh_Latn",
    "rus_Cyrl", "ukr_Cyrl", "ell_Grek", "heb_Hebr", "arb_Arab", "pes_Arab", "hin_Deva", "ben_Beng",
    "tam_Taml", "tha_Thai", "kor_Hang", "jpn_Jpan", "zho_Hans", "zho_Hant",
]


@dataclass
class MixtureParams:
    out: str = "tokatlas-out"
    tokenizer_manifest: str | None = None
    tokenizers: list[str] | None = None  # names in the manifest (default: every BPE one)
    flores: str | None = None
    languages: list[str] | None = None
    code_bytes: int = 300_000
    T: int = 30_000
    n_bootstrap: int = 20
    bootstrap_unit: str = "merges"  # merges: reweight merges, re-converge the LP | samples: recount resampled samples
    top_k: int = 16
    lp_max_seconds: float | None = None  # stop lazy rounds after this (status then says "not converged")
    lp_T: int | None = None  # merges used by the LP (default: T, the merges counted)
    lp_method: str = "auto"  # lazy | matching | bundle | auto (matching from T = 1,000): see solve_mixture
    gap_tolerance: float = 1e-6  # matching, bundle: stop at this certified relative gap
    reuse_counts: bool = True  # keep trajectories counted from the same sample and tokenizer file with >= T merges
    spark_master: str | None = None
    spark_launcher: str | None = None  # in-process | spark-submit (as in the premium flow)
    spark_submit_args: list[str] = field(default_factory=list)

    def checked(self) -> MixtureParams:
        if not self.tokenizer_manifest or not Path(self.tokenizer_manifest).is_file():
            raise ConfigError(f"tokenizer manifest {self.tokenizer_manifest!r} not found (--tokenizer-manifest)")
        if not self.flores or not Path(self.flores).is_file():
            raise ConfigError(f"FLORES Parquet {self.flores!r} not found (--flores)")
        if self.T < 1 or self.n_bootstrap < 0 or (self.lp_T is not None and not 1 <= self.lp_T <= self.T):
            raise ConfigError("T must be >= 1, lp_T in 1..T and bootstrap >= 0")
        if self.lp_method not in LP_METHODS or not self.gap_tolerance > 0:
            raise ConfigError(f"LP method must be one of {', '.join(LP_METHODS)} (not {self.lp_method!r}) "
                              "and gap tolerance > 0")
        if self.bootstrap_unit not in ("merges", "samples"):
            raise ConfigError(f"bootstrap unit must be merges or samples, not {self.bootstrap_unit!r}")
        self.languages = self.languages or DEFAULT_LANGUAGES
        for code in self.languages:  # each names a category: a path part of samples and counts
            if not is_lang_code(code):
                raise ConfigError(f"{code!r} is not an iso639_3_Script language code (e.g. eng_Latn, zho_Hans)")
        read_manifest(self.tokenizer_manifest)  # names and files of every entry, before anything runs
        from jobs.runtime.spark import spark_launcher

        self.spark_launcher = spark_launcher(self.spark_launcher)
        return self


@task(name="mixture-samples", retry_condition_fn=retry_unless_config_error)
def samples_task(p: MixtureParams) -> dict[str, str]:
    from jobs.corpus.samples import build_samples

    return build_samples(p.out, p.flores, p.languages, p.code_bytes)


@task(name="mixture-counts", retries=1, retry_condition_fn=retry_unless_config_error)
def counts_task(p: MixtureParams, samples: dict[str, str]) -> list[dict]:
    from jobs.mixture_counts import count_job, make_cells
    from tokenizers_registry.registry import manifest_entries

    toks = manifest_entries(p.tokenizer_manifest, p.tokenizers)
    cells = make_cells(p.out, toks, samples, p.T, p.top_k, p.n_bootstrap if p.bootstrap_unit == "samples" else 0,
                       reuse=p.reuse_counts)
    rows = run_job(p, "mixture", count_job, out=p.out, cells=cells)
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        get_run_logger().warning(f"{len(failed)} mixture cells failed, e.g. {failed[0]['error'][:300]}")
    return rows


@task(name="mixture-solve", retries=1, retry_condition_fn=retry_unless_config_error)
def solve_task(p: MixtureParams, merges: dict[str, dict], samples: dict[str, str]) -> dict[str, dict]:
    """Solve every tokenizer's LP and bootstrap replicates on Spark (`jobs.mixture_solve`),
    reusing a tokenizer's previous solution when its inputs are unchanged. Failed tokenizers are
    logged and left out."""
    from jobs.mixture_solve import plan_solves, record_solution, solve_job

    log = get_run_logger()
    reused, specs = plan_solves(p.out, list(merges), sorted(samples), T=p.lp_T or p.T, n_bootstrap=p.n_bootstrap,
                                unit=p.bootstrap_unit, method=p.lp_method, gap_tolerance=p.gap_tolerance,
                                max_seconds=p.lp_max_seconds)
    results = {}
    for t, result in reused.items():
        log.info("%s: trajectories and LP parameters unchanged, solution reused", t)
        results[t] = {**result, "merges": merges[t], "reused": True}
    rows = run_job(p, "mixture", solve_job, solves=specs) if specs else []
    for r, spec in zip(rows, specs, strict=True):
        t = r["tokenizer"]
        for line in r["log"]:
            log.info("%s %s", t, line)
        if r["error"]:
            log.warning("mixture solve failed, left out of the report: %s", r["error"])
            continue
        record_solution(spec, r["result"])
        results[t] = {**r["result"], "merges": merges[t], "reused": False}
    return results


@flow(name="mixture-inference", log_prints=True)
@logged_run("mixture-inference", MixtureParams)
def mixture_inference(params: MixtureParams | None = None) -> dict:
    """Infer the training mixture of every BPE tokenizer in the manifest."""
    from jobs.mixture_counts import merge_summaries
    from jobs.reports.mixture import write_mixture_report

    p = (params or MixtureParams()).checked()
    samples = samples_task(p)
    mark("samples")
    rows = counts_task(p, samples)
    n = {s: sum(r["status"] == s for r in rows) for s in ("ok", "reused", "failed")}
    mark("pair-counts", computed=n["ok"], skipped=n["reused"], failed=n["failed"])
    merges = merge_summaries(p.out, rows)
    estimates = solve_task(p, merges, samples)
    reused = sum(bool(e.get("reused")) for e in estimates.values())
    lp_failed = len(merges) - len(estimates)
    mark("lp", computed=len(estimates) - reused, skipped=reused, failed=lp_failed)
    get_run_logger().info("pair counts: %d computed, %d reused, %d failed; LP: %d solved, %d reused, %d failed",
                          n["ok"], n["reused"], n["failed"], len(estimates) - reused, reused, lp_failed)
    d = write_mixture_report(p.out, estimates)
    publish(p.out, "mixture-inference", (d / "report.md").read_text())
    return {"report": str(d), "estimates": estimates, "params": asdict(p)}


@dataclass
class ControlledParams:
    out: str = "tokatlas-out"
    flores: str | None = None
    n: tuple[int, ...] = (5, 10)
    T: tuple[int, ...] = (1000, 3000)
    sample_lines: tuple[int, ...] = (1012,)
    trials: int = 10
    train_bytes: int = 400_000
    code: bool = False  # one of the n categories is Python stdlib source
    lp_method: str = "auto"  # solve_mixture's method for every solve
    spark_master: str | None = None

    def checked(self) -> ControlledParams:
        if not self.flores or not Path(self.flores).is_file():
            raise ConfigError(f"FLORES Parquet {self.flores!r} not found (--flores)")
        for name in ("n", "T", "sample_lines"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must list integers >= 1, got {list(getattr(self, name))}")
        if self.trials < 1 or self.train_bytes < 1:
            raise ConfigError("trials and train_bytes must be >= 1")
        if self.lp_method not in LP_METHODS:
            raise ConfigError(f"LP method must be one of {', '.join(LP_METHODS)}, not {self.lp_method!r}")
        return self


@task(name="mixture-trials", retries=1, retry_condition_fn=retry_unless_config_error)
def trials_task(p: ControlledParams) -> list[dict]:
    from jobs.mixture_eval import controlled_job
    from jobs.runtime.spark import call_job

    # in this process only (the controlled evaluation has no launcher option)
    return call_job(controlled_job, {"flores": p.flores, "n": p.n, "T": p.T, "trials": p.trials,
                                     "sample_lines": p.sample_lines, "train_bytes": p.train_bytes, "code": p.code,
                                     "lp_method": p.lp_method},
                    app_name="tokatlas-mixture-eval", master=p.spark_master, launcher="in-process")


@flow(name="mixture-controlled", log_prints=True)
@logged_run("mixture-controlled", ControlledParams)
def mixture_controlled(params: ControlledParams | None = None) -> dict:
    """Controlled evaluation: known mixtures, held-out samples, log10 MSE against baselines."""
    from jobs.mixture_eval import SUMMARY_COLUMNS, summarize
    from jobs.reports.mixture import write_controlled_report

    p = params or ControlledParams()
    if not p.flores or not Path(p.flores).is_file():
        raise ConfigError(f"FLORES Parquet {p.flores!r} not found")
    rows = trials_task(p)
    mark("trials", computed=len(rows))
    summary = summarize(rows)
    d, table = write_controlled_report(p.out, rows, summary, SUMMARY_COLUMNS)
    create_markdown_artifact(table, key="mixture-controlled")
    return {"report": str(d), "summary": summary}


# -- CLI --------------------------------------------------------------------------------
def cmd_mixture(a) -> int:
    from flows.prefect_env import one_line_errors
    from jobs.preflight import check_controlled, check_mixture
    from jobs.runtime.params import params_from_args

    cls, run, check = (MixtureParams, mixture_inference, check_mixture) if a.mixture_cmd == "infer" else \
        (ControlledParams, mixture_controlled, check_controlled)
    p = check(params_from_args(cls, a).checked())  # before Prefect, Spark
    one_line_errors()
    res = run(p)
    print(f"report: {res['report']}")
    return 0


def add_cli(subparsers) -> None:
    """Register `tokatlas mixture infer|eval`."""
    p = subparsers.add_parser("mixture", help="data mixture inference from BPE merges (Hayase et al. 2024)",
                              description=__doc__.split("CLI")[0],
                              epilog="example: tokatlas mixture infer --tokenizer-manifest "
                                     "../shared/data/tokenizers/MANIFEST.json --flores "
                                     "../shared/data/flores200/flores200_dev_devtest.parquet --T 1000 --out out/mixture")
    sub = p.add_subparsers(dest="mixture_cmd", required=True)
    inf = sub.add_parser("infer", help="infer the training mixture of real BPE tokenizers",
                         epilog="example: tokatlas mixture infer --tokenizer-manifest "
                                "../shared/data/tokenizers/MANIFEST.json --flores "
                                "../shared/data/flores200/flores200_dev_devtest.parquet --code-bytes 300000 "
                                "--T 1000 --out out/mixture")
    inf.add_argument("--tokenizer-manifest", help="MANIFEST.json of the tokenizers (required)")
    inf.add_argument("--tokenizers", help="comma-separated manifest names (default: every BPE tokenizer)")
    inf.add_argument("--flores", help="FLORES-200 Parquet (categories = its languages; required)")
    inf.add_argument("--languages", help="comma-separated iso639_3_Script codes (default: 30 major languages)")
    inf.add_argument("--code-bytes", type=int, default=300_000, help="bytes of Python stdlib source (0: no code)")
    inf.add_argument("--T", type=int, default=30_000, help="merges counted")
    inf.add_argument("--lp-T", type=int, help="merges used by the LP (default: --T)")
    inf.add_argument("--reuse-counts", action=argparse.BooleanOptionalAction, default=True,
                     help="keep trajectories already counted from the same sample and tokenizer file (sha256) "
                          "with at least T merges (default; --no-reuse-counts recounts)")
    inf.add_argument("--bootstrap", type=int, dest="n_bootstrap", default=20,
                     help="bootstrap replicates (0: none); each is its own Spark task and, for merges, costs "
                          "about one main solve (docs/mixture.md)")
    inf.add_argument("--bootstrap-unit", choices=("merges", "samples"), default="merges",
                     help="resample merges (re-converged LP per replicate) or category samples (recount on Spark)")
    inf.add_argument("--lp-max-seconds", type=float, help="time limit of the LP per tokenizer")
    inf.add_argument("--lp-method", choices=LP_METHODS, default="auto",
                     help="lazy: exact optimum by lazy constraints (small T x n); matching: the same LP in stages "
                          "over merge-list prefixes, with the rows of a maximum-weight matching added each round "
                          "(large T); bundle: level bundle method over the proportions; auto (default): matching "
                          "when the LP uses >= 1,000 merges, else lazy")
    inf.add_argument("--gap-tolerance", type=float, default=1e-6,
                     help="matching, bundle: stop at this certified relative gap (upper - lower) / upper")
    ev = sub.add_parser("eval", help="controlled evaluation on BPE tokenizers trained on known mixtures",
                        epilog="example: tokatlas mixture eval --flores "
                               "../shared/data/flores200/flores200_dev_devtest.parquet --n 5,10 --T 300,1000 "
                               "--trials 5 --out out/mixture")
    ev.add_argument("--flores", help="FLORES-200 Parquet (required)")
    ev.add_argument("--n", default="5,10", help="categories per mixture")
    ev.add_argument("--T", default="1000,3000", help="merges used")
    ev.add_argument("--sample-lines", default="1012", help="attack sample sizes in lines")
    ev.add_argument("--trials", type=int, default=10)
    ev.add_argument("--train-bytes", type=int, default=400_000)
    ev.add_argument("--code", action="store_true", help="one of the n categories is Python stdlib source")
    ev.add_argument("--lp-method", choices=LP_METHODS, default="auto", help="as for infer")
    for q in (inf, ev):
        q.add_argument("--config", help="YAML file with the parameters (underscores; options given here win)")
        q.add_argument("--out", default="tokatlas-out")
        add_spark_options(q, launcher=q is inf)  # the controlled evaluation runs in this process
    p.set_defaults(func=cmd_mixture)
