"""Vocabulary trimming flow: ingest → register → token_freqs on Spark → coverage report → trim + faithfulness.

Thin orchestration over jobs/token_freqs.py, jobs/analysis/coverage.py, jobs/trim.py and
jobs/reports/trim.py. Parameters are checked before Spark starts; configuration errors
are never retried; token_freqs cells already counted are skipped.

CLI (registered by `add_cli`):

    tokatlas trim --tokenizer gpt2 --tokenizer-manifest ../shared/data/tokenizers/MANIFEST.json \\
        --corpus-path ../shared/data/flores200/flores200_dev_devtest.parquet \\
        --languages eng_Latn,fra_Latn --min-frequency 1 [--top-n 20000] [--keep-tokens "<|endoftext|>"] \\
        [--coverage-languages eng_Latn,fra_Latn,deu_Latn] [--language-set europe=deu_Latn,fra_Latn,spa_Latn] \\
        [--embeddings emb.npy --head head.npy] --out out/trim
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

from prefect import flow, get_run_logger, task

from flows.retries import retry_unless_config_error
from flows.steps import publish, run_job
from jobs.runtime.params import add_spark_options, parse_language_sets
from jobs.store.run_log import mark
from jobs.store.runs import logged_run
from schemas.errors import ConfigError
from schemas.languages import is_lang_code
from schemas.names import check_name
from tokenizers_registry.registry import read_manifest


@dataclass
class TrimParams:
    """Everything the trim flow needs; also what the CLI passes."""

    out: str = "tokatlas-out"
    tokenizer: str | None = None  # registry name (registered from the manifest/file when given)
    tokenizer_manifest: str | None = None
    tokenizer_file: str | None = None
    tokenizer_format: str | None = None
    tokenizer_pattern: str | None = None
    corpus_source: str = "flores-parquet"
    corpus_path: str | None = None  # None: use the corpus already ingested under out
    corpus_name: str = "flores200"
    languages: list[str] = field(default_factory=list)
    coverage_languages: list[str] | None = None  # default: the trim languages
    language_sets: dict[str, list[str]] = field(default_factory=dict)  # name -> languages, for union figures
    splits: list[str] = field(default_factory=lambda: ["dev"])
    heldout_splits: list[str] = field(default_factory=lambda: ["devtest"])
    min_frequency: int = 1
    top_n: int | None = None
    keep_tokens: list[str] = field(default_factory=list)
    hidden_size: int = 768
    embeddings: str | None = None
    head: str | None = None
    spark_master: str | None = None
    spark_launcher: str | None = None  # in-process | spark-submit (as in the premium flow)
    spark_submit_args: list[str] = field(default_factory=list)
    OPTION_PARSERS: ClassVar[dict] = {"language_sets": parse_language_sets}  # --language-set NAME=lang,...

    def checked(self) -> TrimParams:
        """Validate without starting Spark; raises ConfigError with a clear message."""
        if not self.tokenizer:
            raise ConfigError("--tokenizer is required (a registry name, or the name of a manifest entry)")
        check_name(self.tokenizer, "tokenizer name")  # it names the run directory and the report
        check_name(self.corpus_name, "corpus name")
        if not self.languages:
            raise ConfigError("--languages is required (comma-separated iso639_3_Script codes)")
        set_langs = [lang for langs in self.language_sets.values() for lang in langs]
        self.coverage_languages = list(dict.fromkeys([*(self.coverage_languages or []), *self.languages,
                                                      *set_langs]))
        for code in self.coverage_languages:
            if not is_lang_code(code):
                raise ConfigError(f"{code!r} is not an iso639_3_Script language code (e.g. eng_Latn, zho_Hans)")
        if self.min_frequency < 1:
            raise ConfigError(f"--min-frequency must be >= 1, got {self.min_frequency}")
        if self.top_n is not None and self.top_n < 1:
            raise ConfigError(f"--top-n must be >= 1, got {self.top_n}")
        if self.hidden_size < 1:
            raise ConfigError(f"--hidden-size must be >= 1, got {self.hidden_size}")
        for label, p in (("tokenizer manifest", self.tokenizer_manifest), ("tokenizer file", self.tokenizer_file),
                         ("corpus path", self.corpus_path), ("embeddings", self.embeddings), ("head", self.head)):
            if p and not Path(p).exists():
                raise ConfigError(f"{label} {p} does not exist")
        if self.tokenizer_manifest:
            read_manifest(self.tokenizer_manifest)  # the whole manifest, before anything is registered
        for label, p in (("embeddings", self.embeddings), ("head", self.head)):
            if p and Path(p).suffix.lower() not in (".npy", ".npz", ".safetensors"):
                raise ConfigError(f"{label} {p}: expected a .npy, .npz or .safetensors file")
        if not self.splits:
            raise ConfigError("--splits must name at least one split")
        if set(self.splits) & set(self.heldout_splits):
            raise ConfigError(f"held-out splits {self.heldout_splits} overlap the trimming splits {self.splits}")
        from jobs.runtime.spark import spark_launcher

        self.spark_launcher = spark_launcher(self.spark_launcher)
        return self


@task(name="ingest", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def ingest_task(p: TrimParams) -> dict:
    from jobs.ingest import ingest

    s = run_job(p, "trim", ingest, source_kind=p.corpus_source, path=p.corpus_path, corpus_name=p.corpus_name,
                out=p.out, languages=p.coverage_languages)
    if s["skipped"]:
        get_run_logger().info("ingest skipped: %s source unchanged since the last ingest", s["corpus"])
    return {k: s[k] for k in ("languages", "rows_kept", "rows_rejected", "skipped")}


@task(name="register-tokenizer", retry_condition_fn=retry_unless_config_error)
def register_task(p: TrimParams) -> dict:
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import Registry

    reg = Registry(registry_dir(p.out))
    if p.tokenizer_manifest:
        reg.add_manifest(p.tokenizer_manifest, names=[p.tokenizer])
    if p.tokenizer_file:
        params = {"pattern": p.tokenizer_pattern} if p.tokenizer_pattern else None
        reg.add(p.tokenizer_file, name=p.tokenizer, fmt=p.tokenizer_format, params=params)
    return reg.get(p.tokenizer).to_row()


@task(name="token-freqs", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_config_error)
def freqs_task(p: TrimParams, tokenizer_id: str) -> dict:
    from jobs.token_freqs import token_freqs

    return run_job(p, "trim", token_freqs, out=p.out, corpus=p.corpus_name, tokenizers=[tokenizer_id],
                   languages=p.coverage_languages)


@task(name="coverage", retries=1, retry_condition_fn=retry_unless_config_error)
def coverage_task(p: TrimParams, spec: dict) -> dict:
    from jobs.trim import write_tokenizer_coverage

    paths = write_tokenizer_coverage(p.out, p.corpus_name, spec, p.coverage_languages, hidden_size=p.hidden_size,
                                     language_sets={"trimmed": p.languages, **p.language_sets})
    return {"paths": {k: str(v) for k, v in paths.items()}}


@task(name="trim", retries=1, retry_condition_fn=retry_unless_config_error)
def trim_task(p: TrimParams) -> dict:
    from jobs.trim import TrimRequest, trim_tokenizer

    req = TrimRequest(tokenizer=p.tokenizer, languages=p.languages, corpus=p.corpus_name, splits=p.splits,
                      heldout_splits=p.heldout_splits, min_frequency=p.min_frequency, top_n=p.top_n,
                      keep_tokens=p.keep_tokens, hidden_size=p.hidden_size, embeddings=p.embeddings, head=p.head)
    return trim_tokenizer(p.out, req, log=get_run_logger().info)


@task(name="trim-report")
def report_task(p: TrimParams, coverage: dict, trim: dict) -> dict:
    import pyarrow.parquet as pq

    from jobs.reports.trim import render_trim_report
    from jobs.store.layout import report_dir

    tables = {k: pq.read_table(v) for k, v in coverage["paths"].items()}
    paths = render_trim_report(tables, report_dir(p.out, f"trim-{p.tokenizer}"), [trim],
                               title=f"Vocabulary coverage and trimming: {p.tokenizer} on {p.corpus_name}")
    return {k: str(v) for k, v in paths.items()}


@flow(name="vocab-trim", log_prints=True)
@logged_run("vocab-trim", TrimParams)
def vocab_trim(params: TrimParams | None = None) -> dict:
    """Count token frequencies, report coverage and trim one tokenizer for a set of languages."""
    t0 = time.perf_counter()
    p = (params or TrimParams()).checked()
    log = get_run_logger()
    ingest = ingest_task(p) if p.corpus_path else None
    mark("ingest")
    spec = register_task(p)
    mark("register", tokenizer_ids=[spec["tokenizer_id"]])
    freqs = freqs_task(p, spec["tokenizer_id"])
    mark("token-freqs", computed=freqs["cells_ok"], skipped=freqs["cells_skipped"], failed=freqs["cells_failed"])
    log.info("token_freqs: %d cells planned, %d already counted, %d ok, %d failed", freqs["cells_planned"],
             freqs["cells_skipped"], freqs["cells_ok"], freqs["cells_failed"])
    if freqs["cells_failed"]:
        raise RuntimeError(f"token_freqs failed for {freqs['failures'][:3]}")
    coverage = coverage_task(p, spec)
    mark("coverage")
    trim = trim_task(p)
    mark("trim")
    report = report_task(p, coverage, trim)
    mark("report")
    publish(p.out, f"vocab-trim-{p.tokenizer}", Path(report["markdown"]).read_text(encoding="utf-8"),
            f"Vocabulary trimming of {p.tokenizer}")
    return {"ingest": ingest, "tokenizer": spec["tokenizer_id"], "token_freqs": freqs, "coverage": coverage,
            "trim": trim, "report": report, "params": asdict(p), "seconds": time.perf_counter() - t0}


# -- CLI --------------------------------------------------------------------------------
def cmd_trim(a) -> int:
    from flows.prefect_env import configure_prefect_env, one_line_errors
    from jobs.preflight import check_trim
    from jobs.runtime.params import params_from_args

    params = check_trim(params_from_args(TrimParams, a).checked())  # fails here, before Spark or Prefect start
    configure_prefect_env()
    one_line_errors()
    res = vocab_trim(params)
    s = res["trim"]["summary"]
    print(f"{s['tokenizer_name']}: {s['vocab_before']:,} -> {s['vocab_after']:,} ids "
          f"({s['n_closure']:,} kept for merge closure); used tokens dropped: {s['used_tokens_dropped']}")
    for r in res["trim"]["faithfulness"]:
        print(f"  {r['lang']} {r['split']:8} ({r['role']:7}): {r['n_identical']}/{r['n_sentences']} sentences identical"
              f"; misses using a dropped token {r['n_miss_dropped']}, other {r['n_miss_other']}")
    print(f"trimmed tokenizer: {res['trim']['run_dir']}  (registered as {res['trim']['registered']})")
    print(f"report:            {res['report']['html']}")
    print(f"done in {res['seconds']:.1f}s")
    return 0


def add_cli(subparsers) -> None:
    """Register `tokatlas trim`."""
    p = subparsers.add_parser("trim", help="vocabulary coverage and trimming for a set of languages",
                              description=__doc__.split("CLI")[0],
                              epilog="example: tokatlas trim --tokenizer gpt2 --tokenizer-manifest "
                                     "../shared/data/tokenizers/MANIFEST.json --corpus-path "
                                     "../shared/data/flores200/flores200_dev_devtest.parquet --languages "
                                     "eng_Latn,fra_Latn --min-frequency 1 --out out/trim")
    p.add_argument("--config", help="YAML file with the parameters below (underscores; options given here win)")
    p.add_argument("--tokenizer", help="registry name (or manifest entry name) of the tokenizer (required)")
    p.add_argument("--languages", help="comma-separated languages to trim for (required)")
    p.add_argument("--min-frequency", type=int, default=1, help="minimum count to keep a token (default 1: "
                   "every token the trimming text uses, which guarantees identical segmentation of it)")
    p.add_argument("--top-n", type=int, help="keep at most this many of the most frequent tokens")
    p.add_argument("--keep-tokens", help="comma-separated tokens always kept")
    p.add_argument("--tokenizer-manifest", help="MANIFEST.json to register the tokenizer from")
    p.add_argument("--tokenizer-file", help="tokenizer file to register under --tokenizer")
    p.add_argument("--tokenizer-format", help="format of --tokenizer-file (default: sniffed)")
    p.add_argument("--pattern", dest="tokenizer_pattern", help="pre-tokenization regex of a tiktoken --tokenizer-file")
    p.add_argument("--corpus-source", default="flores-parquet", help="ingest source kind (see tokatlas run)")
    p.add_argument("--corpus-path", help="corpus to ingest (default: use the corpus already under --out)")
    p.add_argument("--corpus-name", default="flores200")
    p.add_argument("--coverage-languages", help="languages of the coverage report (default: --languages)")
    p.add_argument("--language-set", action="append", dest="language_sets",
                   help="NAME=lang,lang,...: report the vocabulary the set needs together (repeatable; its "
                        "languages join the coverage report)")
    p.add_argument("--splits", default="dev", help="splits whose counts drive the trim (the trimming text)")
    p.add_argument("--heldout-splits", default="devtest", help="splits re-encoded as held-out text")
    p.add_argument("--hidden-size", type=int, default=768, help="embedding width for parameter figures")
    p.add_argument("--embeddings", help="input embedding matrix to trim (.npy, .npz, .safetensors)")
    p.add_argument("--head", help="output head or bias to trim (same formats)")
    p.add_argument("--out", default="tokatlas-out")
    add_spark_options(p)
    p.set_defaults(func=cmd_trim)
