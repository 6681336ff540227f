"""Token-premium flow: ingest → register tokenizers → encode on Spark → premium report.

Thin orchestration only: every step is a call into `jobs/` or `tokenizers_registry/` (Spark steps
through `flows.steps.run_job`, with the job function itself).
Parameters are checked before Spark starts, configuration errors are never retried,
and the encode step resumes where a previous run stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.retries import retry_unless_config_error
from flows.steps import publish, run_job
from jobs.corpus.sources import DEFAULT_CORPUS_NAMES, PATH_OPTIONAL, SOURCES
from jobs.store.layout import registry_dir, report_dir
from jobs.store.run_log import mark
from jobs.store.runs import logged_run
from schemas.errors import ConfigError
from schemas.languages import is_lang_code
from schemas.names import check_name
from tokenizers_registry.registry import Registry, read_manifest


@dataclass
class PremiumParams:
    """Everything the flow needs; also what the CLI and deployments pass."""

    out: str = "tokatlas-out"
    corpus_source: str = "django"
    corpus_path: str | None = None
    corpus_name: str | None = None
    languages: list[str] | None = None
    min_language_coverage: float = 0.95
    tokenizer_manifest: str | None = None
    tokenizer_files: list[str] = field(default_factory=list)
    tokenizers: list[str] | None = None  # names/ids already in the registry
    reference_lang: str = "eng_Latn"
    n_bootstrap: int = 1000
    word_stats: bool = True
    shard_size: int | None = None
    spark_master: str | None = None
    # "in-process" (default, or $TOKATLAS_SPARK_LAUNCHER) or "spark-submit": each Spark step then
    # runs in its own spark-submit'ed driver, with `spark_submit_args` (e.g. --archives, --files).
    spark_launcher: str | None = None
    spark_submit_args: list[str] = field(default_factory=list)

    def checked(self) -> PremiumParams:
        """Validate without starting Spark; raises ConfigError with a clear message."""
        if self.corpus_source not in SOURCES:
            raise ConfigError(f"unknown corpus source {self.corpus_source!r}; known: {', '.join(sorted(SOURCES))}")
        if self.corpus_source not in PATH_OPTIONAL:
            if not self.corpus_path:
                raise ConfigError(f"corpus source {self.corpus_source!r} needs --corpus-path")
            if not Path(self.corpus_path).exists():
                raise ConfigError(f"corpus path {self.corpus_path} does not exist")
        for code in [*(self.languages or []), self.reference_lang]:
            if not is_lang_code(code):
                raise ConfigError(f"{code!r} is not an iso639_3_Script language code (e.g. eng_Latn, zho_Hans)")
        if self.languages and self.reference_lang not in self.languages:
            self.languages = [*self.languages, self.reference_lang]
        if self.tokenizer_manifest and not Path(self.tokenizer_manifest).is_file():
            raise ConfigError(f"tokenizer manifest {self.tokenizer_manifest} does not exist")
        if self.tokenizer_manifest:
            read_manifest(self.tokenizer_manifest)  # names and files of every entry, before anything runs
        for f in self.tokenizer_files:
            if not Path(f).is_file():
                raise ConfigError(f"tokenizer file {f} does not exist")
        if not 0 < self.min_language_coverage <= 1:
            raise ConfigError("min_language_coverage must be in (0, 1]")
        from jobs.runtime.spark import spark_launcher

        self.spark_launcher = spark_launcher(self.spark_launcher)
        self.corpus_name = check_name(self.corpus_name or DEFAULT_CORPUS_NAMES.get(self.corpus_source, "corpus"),
                                      "corpus name")  # a path part of every dataset
        return self


@task(name="ingest", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def ingest_task(p: PremiumParams) -> dict:
    from jobs.ingest import ingest

    return run_job(p, "premium", ingest, source_kind=p.corpus_source, path=p.corpus_path,
                   corpus_name=p.corpus_name, out=p.out, languages=p.languages,
                   min_language_coverage=p.min_language_coverage)


@task(name="register-tokenizers", retry_condition_fn=retry_unless_config_error)
def register_task(p: PremiumParams) -> list[str]:
    from jobs.default_tokenizers import register_default_tokenizers

    reg = Registry(registry_dir(p.out))
    ids = []
    if p.tokenizer_manifest:
        ids += [s.tokenizer_id for s in reg.add_manifest(p.tokenizer_manifest)]
    for f in p.tokenizer_files:
        ids.append(reg.add(f).tokenizer_id)
    if p.tokenizers:
        ids += [reg.get(n).tokenizer_id for n in p.tokenizers]
    if not ids:  # nothing named: the embedded default tokenizers
        ids = [s.tokenizer_id for s in register_default_tokenizers(p.out, p.corpus_name, reg)]
    return list(dict.fromkeys(ids))


@task(name="encode", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def encode_task(p: PremiumParams, tokenizer_ids: list[str]) -> dict:
    from jobs.encode import encode

    return run_job(p, "premium", encode, out=p.out, corpus=p.corpus_name, tokenizers=tokenizer_ids,
                   languages=p.languages, shard_size=p.shard_size, word_stats=p.word_stats)


@task(name="premium-report", retries=1, retry_condition_fn=retry_unless_config_error)
def premium_task(p: PremiumParams, tokenizer_ids: list[str]) -> dict:
    import pyarrow.parquet as pq

    from jobs.premium import write_premium
    from jobs.reports.premium import render_premium_report
    from jobs.store.corpus_store import read_corpus_versions

    # Counts of an earlier corpus version stay on disk beside the recomputed ones: use the current.
    _, path = run_job(p, "premium", write_premium, out=p.out, corpus=p.corpus_name,
                      reference_lang=p.reference_lang, n_bootstrap=p.n_bootstrap, tokenizer_ids=tokenizer_ids,
                      corpus_versions=read_corpus_versions(p.out, p.corpus_name))
    paths = render_premium_report(pq.read_table(path), report_dir(p.out, f"premium-{p.corpus_name}"),
                                  title=f"Token premium on {p.corpus_name} (reference {p.reference_lang})")
    return {"premium": str(path), **{k: str(v) for k, v in paths.items()}}


@flow(name="token-premium", log_prints=True)
@logged_run("token-premium", PremiumParams)
def token_premium(params: PremiumParams | None = None) -> dict:
    """Measure the token premium of every registered tokenizer on a parallel corpus."""
    t0 = time.perf_counter()
    p = (params or PremiumParams()).checked()
    log = get_run_logger()
    ingest_summary = ingest_task(p)
    log.info("ingest%s: %d rows in, %d kept, %d quarantined %s; %d languages (%d quarantined)",
             " skipped, source unchanged since the last ingest" if ingest_summary.get("skipped") else "",
             ingest_summary.get("rows_in", 0), ingest_summary.get("rows_kept", 0),
             ingest_summary.get("rows_rejected", 0), ingest_summary.get("rejects_by_reason") or "",
             len(ingest_summary.get("languages") or []), len(ingest_summary.get("languages_quarantined") or []))
    mark("ingest")
    ids = register_task(p)
    mark("register", tokenizer_ids=ids)
    log.info("registered %d tokenizers", len(ids))
    enc = encode_task(p, ids)
    mark("encode", computed=enc["cells_ok"], skipped=enc["cells_skipped"], failed=enc["cells_failed"])
    log.info("encode: %d cells planned, %d already done, %d ok, %d failed",
             enc["cells_planned"], enc["cells_skipped"], enc["cells_ok"], enc["cells_failed"])
    report = premium_task(p, ids)
    mark("premium-report")
    publish(p.out, f"token-premium-{p.corpus_name}", Path(report["markdown"]).read_text(encoding="utf-8"),
            f"Token premium on {p.corpus_name}")
    return {"ingest": ingest_summary, "tokenizers": ids, "encode": enc, "report": report,
            "seconds": time.perf_counter() - t0}
