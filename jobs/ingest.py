"""Ingest job: read a parallel corpus, validate it, quarantine bad rows, write the corpus.

    spark-submit jobs/ingest.py --corpus-source flores-parquet --corpus-path flores200_dev_devtest.parquet \\
        --corpus-name flores200 --out OUT [--languages eng_Latn,fra_Latn] [--min-language-coverage 0.95]
    python -m jobs.ingest --corpus-source django --out OUT

Every input row ends up either in the corpus (`<out>/corpus/corpus=<c>/lang=<l>/part-0.parquet`)
or in the rejects (`<out>/rejects/corpus=<c>/part-0.parquet`) with a reason; see docs/ingest.md.
Validation runs in Spark (window functions and aggregates, nothing collected but
per-language summaries); each language's file is written by one task with an atomic
rename, so a re-run replaces files and never duplicates rows.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from jobs.corpus import readers
from jobs.corpus.sources import DEFAULT_CORPUS_NAMES, SOURCES
from jobs.runtime.params import add_spark_options, csv_list
from jobs.store import corpus_store, layout
from jobs.store.atomic import write_parquet_atomic
from jobs.store.fingerprint import files_under, fingerprint
from schemas import CORPUS, REJECTS, conform
from schemas.errors import ConfigError
from schemas.languages import near_matches, normalize_lang, try_normalize_lang

REASONS = ("invalid_utf8", "bad_record", "unknown_language", "empty_text", "duplicate_id", "language_incomplete",
           "missing_in_languages")
DEFAULT_MIN_LANGUAGE_COVERAGE = 0.95
DEFAULT_FLORES_PLUS_DIR = Path.home() / ".cache" / "tokatlas" / "flores_plus"
CORPUS_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
REJECT_TEXT_CHARS = 1000


# -- configuration (driver, before Spark) -----------------------------------------------------
@dataclass(frozen=True)
class ReaderOptions:
    """Source-specific options; the column names apply to `parquet` and `jsonl`."""

    lang_col: str = "lang"
    id_col: str = "id"
    text_col: str = "text"
    split_col: str | None = None
    min_catalog_coverage: float = 0.95  # django: share of messages a catalog must translate
    revision: str | None = None  # flores-plus-hub: dataset revision to fetch


@dataclass
class IngestConfig:
    """Checked parameters of one ingest."""

    source_kind: str
    path: Path | None
    corpus: str
    out: Path
    languages: list[str] | None
    min_language_coverage: float
    options: ReaderOptions
    labels: set[str] | None = None  # raw language labels in the source, when known without Spark

    @property
    def available(self) -> set[str] | None:
        """Normalised languages of the source (None when unknown before reading it)."""
        if self.labels is None:
            return None
        return {lang for lang in (try_normalize_lang(x)[0] for x in self.labels) if lang}

    @property
    def raw_langs(self) -> set[str] | None:
        """Raw labels to read when languages were requested (a pushed-down filter)."""
        if not self.languages or self.labels is None:
            return None
        wanted = set(self.languages)
        return {x for x in self.labels if try_normalize_lang(x)[0] in wanted}


def _require_columns(path: Path, needed: list[str]) -> list[str]:
    import pyarrow.dataset as ds

    try:
        names = ds.dataset(str(path), format="parquet").schema.names
    except Exception as e:  # not Parquet, unreadable
        raise ConfigError(f"cannot read {path} as Parquet: {e}") from e
    missing = [c for c in needed if c not in names]
    if missing:
        raise ConfigError(f"{path} lacks column(s) {missing}; it has {names}")
    return names


def _unique(path: Path, columns: list[str]) -> set[str]:
    import pyarrow.dataset as ds

    t = ds.dataset(str(path), format="parquet").to_table(columns=columns)
    for name in columns:  # labels that are not UTF-8 are only escaped here: the reader quarantines them
        if pa.types.is_string(t[name].type) or pa.types.is_large_string(t[name].type):
            t = t.set_column(t.schema.get_field_index(name), name, t[name].cast(pa.large_binary()))
    t = t.group_by(columns).aggregate([])

    def label(v):
        return readers.decode_line(v)[0] if isinstance(v, bytes) else str(v)

    return {"_".join(label(v) for v in row.values()) for row in t.to_pylist() if None not in row.values()}


def _probe(kind: str, path: Path | None, opts: ReaderOptions) -> set[str] | None:
    """Raw language labels of a source, read cheaply on the driver (None: needs a scan)."""
    if kind == "flores-parquet":
        _require_columns(path, ["lang", "split", "sentence_id", "text"])
        return _unique(path, ["lang"])
    if kind == "udhr":
        _require_columns(path, ["key", "iso639_3", "script", "article_no", "text"])
        return _unique(path, ["iso639_3", "script"])
    if kind == "parquet":
        _require_columns(path, [c for c in (opts.lang_col, opts.id_col, opts.text_col, opts.split_col) if c])
        return _unique(path, [opts.lang_col])
    if kind == "flores-folder":
        if not path.is_dir():
            raise ConfigError(f"flores-folder path {path} is not a folder")
        files = readers.flores_folder_files(path)
        if not files:
            raise ConfigError(f"no {{split}}/{{lang}}.{{split}} files (e.g. dev/eng_Latn.dev) under {path}")
        return {f.lang_raw for f in files}
    if kind == "text":
        files = readers.text_files(path)
        if not files:
            raise ConfigError(f"no <lang>.txt files in {path}")
        return {f.lang_raw for f in files}
    if kind == "jsonl":
        if not readers.jsonl_files(path):
            raise ConfigError(f"no .jsonl files under {path}")
        return None
    if kind == "flores-plus-hub":
        files = readers.flores_plus_files(path)
        return {stem for _, _, stem in files} if files else None
    if kind == "django":
        cats = readers.django_catalogs(path)
        if not cats:
            raise ConfigError(f"no locale/*/LC_MESSAGES/django.mo catalogs under {path or readers.django_root()}")
        return set(cats) | {"en"}
    raise AssertionError(kind)


def _check_readable(kind: str, path: Path | None) -> None:
    """Open every file the reader will read (and list every folder it walks), so that an
    unreadable one is a PermissionError here rather than a Spark task failing later."""
    if path is None or not path.exists():  # the default Django / a FLORES+ folder still to fetch
        return
    if path.is_dir():  # os.walk reports unreadable folders, which Path.rglob would skip silently
        def fail(e):
            raise e

        for _, dirs, _ in os.walk(path, onerror=fail):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
    files = {"jsonl": lambda: readers.jsonl_files(path),
             "text": lambda: [f.path for f in readers.text_files(path)],
             "flores-folder": lambda: [f.path for f in readers.flores_folder_files(path)],
             "flores-plus-hub": lambda: [f for f, _, _ in readers.flores_plus_files(path)],
             "django": lambda: [f for fs in readers.django_catalogs(path).values() for f in fs]}.get(
                 kind, lambda: files_under(path))()
    for f in files:
        with open(f, "rb"):
            pass


def _normalize_requested(languages) -> list[str] | None:
    if not languages:
        return None
    out = []
    for code in languages:
        try:
            lang = normalize_lang(code)
        except ValueError as e:
            near = near_matches(code)
            raise ConfigError(f"unknown language {code!r}: {e}" + (f"; did you mean {', '.join(near)}?" if near else "")) \
                from None
        if lang not in out:
            out.append(lang)
    return out


def _check_present(requested, available, where: str) -> None:
    missing = [lang for lang in requested or () if lang not in available]
    if missing:
        hints = "; ".join(f"{m}: did you mean {', '.join(near)}?" for m in missing
                          if (near := near_matches(m, available)))
        raise ConfigError(f"language(s) {', '.join(missing)} not in {where} ({len(available)} languages)"
                          + (f"; {hints}" if hints else ""))


def check_config(source_kind: str, path, corpus_name: str | None, out, languages=None,
                 min_language_coverage: float = DEFAULT_MIN_LANGUAGE_COVERAGE,
                 options: ReaderOptions | None = None) -> IngestConfig:
    """Validate every parameter without Spark; raises ConfigError with a clear message."""
    opts = options or ReaderOptions()
    if source_kind not in SOURCES:
        near = difflib.get_close_matches(str(source_kind), SOURCES, n=2)
        raise ConfigError(f"unknown source kind {source_kind!r}; known: {', '.join(SOURCES)}"
                          + (f" (did you mean {' or '.join(near)}?)" if near else ""))
    corpus = corpus_name or DEFAULT_CORPUS_NAMES.get(source_kind)
    if not corpus:
        raise ConfigError(f"source {source_kind!r} needs a corpus name (--corpus-name)")
    if not CORPUS_NAME_RE.match(corpus):
        raise ConfigError(f"corpus name {corpus!r} must be letters, digits, '_', '.', '-' (it names folders)")
    if not out:
        raise ConfigError("an output root (--out) is needed")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output root {out} exists and is not a folder")
    if not 0 < float(min_language_coverage) <= 1:
        raise ConfigError(f"min_language_coverage must be in (0, 1], got {min_language_coverage}")
    if not 0 <= float(opts.min_catalog_coverage) <= 1:
        raise ConfigError(f"min_catalog_coverage must be in [0, 1], got {opts.min_catalog_coverage}")
    langs = _normalize_requested(languages)
    if source_kind == "flores-plus-hub":
        p = Path(path) if path else DEFAULT_FLORES_PLUS_DIR
    elif source_kind == "django":
        p = Path(path) if path else None
        if p is not None and not p.is_dir():
            raise ConfigError(f"django catalog root {p} is not a folder")
    else:
        if not path:
            raise ConfigError(f"source {source_kind!r} needs a path (--corpus-path)")
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{source_kind} path {p} does not exist")
    cfg = IngestConfig(source_kind, p, corpus, out, langs, float(min_language_coverage), opts)
    try:
        _check_readable(source_kind, p)
        cfg.labels = _probe(source_kind, p, opts)
    except PermissionError as e:
        raise ConfigError(f"permission denied: {e.filename}") from None
    if cfg.labels is not None and langs:
        _check_present(langs, cfg.available, f"{source_kind} source {p or 'django'}")
    return cfg


# -- reading ------------------------------------------------------------------------------------
def read_source(spark, cfg: IngestConfig):
    """The source's raw rows (readers.RAW_SCHEMA)."""
    k, o, c = cfg.source_kind, cfg.options, cfg.corpus
    if k == "flores-parquet":
        return readers.read_flores_parquet(spark, cfg.path, c, raw_langs=cfg.raw_langs)
    if k == "udhr":
        return readers.read_udhr(spark, cfg.path, c)
    if k == "parquet":
        return readers.read_parquet_table(spark, cfg.path, c, lang_col=o.lang_col, id_col=o.id_col,
                                          text_col=o.text_col, split_col=o.split_col, raw_langs=cfg.raw_langs)
    if k == "jsonl":
        return readers.read_jsonl(spark, cfg.path, c, lang_col=o.lang_col, id_col=o.id_col, text_col=o.text_col,
                                  split_col=o.split_col)
    if k == "flores-folder":
        return readers.read_flores_folder(spark, cfg.path, c, cfg.languages)
    if k == "text":
        return readers.read_text_files(spark, cfg.path, c, cfg.languages)
    if k == "flores-plus-hub":
        return readers.read_flores_plus(spark, cfg.path, c, cfg.languages)
    if k == "django":
        return readers.read_django(spark, cfg.path, c, cfg.languages, o.min_catalog_coverage)
    raise AssertionError(k)


def normalize_languages(raw, labels=None):
    """Add `lang` (iso639_3_Script, null when unknown) and `lang_error` to raw rows.

    Labels are few (one per language file or code), so they are normalised on the driver
    and applied as a literal map: no Python UDF over the rows. `labels` saves the scan
    that finds them when the caller already knows them.
    """
    from pyspark.sql import functions as F

    if labels is None:
        labels = {r[0] for r in raw.select("lang_raw").distinct().collect() if r[0] is not None}
    pairs = {x: try_normalize_lang(x) for x in sorted(labels)}
    lang, err = F.col("lang_raw"), F.lit("language label is missing")
    if not pairs:
        return raw.select(*raw.columns, F.lit(None).cast("string").alias("lang"), err.alias("lang_error"))
    unmapped = F.format_string("language label %s was not normalised", lang)
    return raw.select(*raw.columns, _lookup({k: v[0] for k, v in pairs.items()}, lang).alias("lang"),
                      F.when(lang.isNull(), err)
                       .otherwise(F.coalesce(_lookup({k: v[1] for k, v in pairs.items()}, lang), unmapped))
                       .alias("lang_error"))


def _lookup(mapping: dict, key):
    """`mapping[key]` for a string column `key` (null when absent or mapped to None).

    The map is one constant built from two array literals (one Py4J call each; a
    `create_map` of hundreds of literals costs a second of round trips), and Spark folds
    it once per query rather than per row.
    """
    import numpy as np
    from pyspark.sql import functions as F

    keys = np.array(list(mapping), dtype=str)
    values = np.array(["" if v is None else v for v in mapping.values()], dtype=str)
    return F.nullif(F.try_element_at(F.map_from_arrays(F.lit(keys), F.lit(values)), key), F.lit(""))


def _labels_read(cfg: IngestConfig) -> set[str] | None:
    """Raw labels the reader can produce (a superset is fine), when known without a scan."""
    # FLORES+ labels come from columns inside the files, not from the file names probed.
    if cfg.source_kind == "flores-plus-hub":
        return None
    return cfg.raw_langs if cfg.languages and cfg.raw_langs is not None else cfg.labels


# -- validation ---------------------------------------------------------------------------------
def _mark(d, cond, reason: str, detail):
    """Give rows not yet rejected that satisfy `cond` the reject `reason` and `detail`."""
    from pyspark.sql import functions as F

    d = d.withColumn("_hit", F.col("reason").isNull() & F.coalesce(cond, F.lit(False)))
    return (d.withColumn("reason", F.when(F.col("_hit"), F.lit(reason)).otherwise(F.col("reason")))
             .withColumn("detail", F.when(F.col("_hit"), detail).otherwise(F.col("detail")))
             .drop("_hit"))


def _alignment_decisions(hist, min_coverage: float):
    """Rules 4-5 from the histogram rows (corpus, lang, split, n, count): `count` ids of
    `split` are held by `lang` and by n languages in all.

    Returns ({(corpus, lang): detail} of languages below `min_coverage`, {corpus: sorted
    remaining languages}). A split's reference ids are those held by at least half of the
    corpus's languages, so one language with extra ids cannot make the others look incomplete.
    """
    from collections import defaultdict

    langs = _langs_by_corpus(hist)
    held_by_n = defaultdict(int)  # (corpus, split, n) -> id occurrences (n per id)
    for c, _, split, n, count in hist:
        held_by_n[(c, split, n)] += count
    low, remaining = {}, {}
    for c in sorted(langs):
        n_langs = len(langs[c])
        n_core = defaultdict(int)
        for (c2, split, n), occ in held_by_n.items():
            if c2 == c and 2 * n >= n_langs:
                n_core[split] += occ // n
        have = defaultdict(int)
        for c2, lang, split, n, count in hist:
            if c2 == c and 2 * n >= n_langs:
                have[(lang, split)] += count
        for lang in sorted(langs[c]):
            parts = [(split, have[(lang, split)], n_core[split]) for split in sorted(n_core)]
            cov = min((h / t for _, h, t in parts), default=1.0)
            if cov < min_coverage:
                held = ", ".join(f"{s} {h}/{t}" for s, h, t in parts)
                low[(c, lang)] = (f"coverage {cov:.4f} below the minimum {min_coverage:.4f} "
                                  f"(sentence ids held per split: {held})")
        remaining[c] = sorted(x for x in langs[c] if (c, x) not in low)
    return low, remaining


def label_rows(df, min_language_coverage: float = DEFAULT_MIN_LANGUAGE_COVERAGE):
    """Every row of `df` (raw rows with `lang`, see `normalize_languages`) with `reason` and
    `detail`: null for rows kept, else why it is quarantined. Rules, in order:

    1. invalid_utf8 / bad_record from the reader; unknown_language; empty_text
       (null, empty or only white space);
    2. duplicate_id for translation variants other than the kept one per language (the
       variant with most valid rows, then the smallest variant key);
    3. duplicate_id for repeated (corpus, lang, split, sentence_id): the first by (source,
       row) is kept;
    4. language_incomplete: languages covering less than `min_language_coverage` of a
       split's sentence ids (ids present in at least half of the languages) are dropped whole;
    5. missing_in_languages: ids absent from any remaining language are dropped everywhere.

    Rules 1-3 are computed at once and checkpointed (two Spark jobs run here); rules 4-5
    are decided on the driver from a small histogram and applied lazily.
    """
    return _label(df, min_language_coverage)[0]


def _label(df, min_language_coverage: float):
    """label_rows, plus {(corpus, lang): rows in} and whether every id is in every language."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    C = F.col
    ok = C("reason").isNull()
    blank = C("text").isNull() | C("text").rlike(r"(?U)^\s*$")
    d = df.withColumn("reason", F.when(C("error_reason").isNotNull(), C("error_reason"))
                                 .when(C("lang").isNull(), F.lit("unknown_language"))
                                 .when(C("split").isNull() | C("sentence_id").isNull(), F.lit("bad_record"))
                                 .when(blank, F.lit("empty_text")))
    d = d.withColumn("detail", F.when(C("error_reason").isNotNull(), F.coalesce(C("error"), C("error_reason")))
                                .when(C("lang").isNull(), C("lang_error"))
                                .when(C("split").isNull() | C("sentence_id").isNull(),
                                      F.lit("split or sentence_id is missing"))
                                .when(C("text").isNull(), F.lit("text is null"))
                                .when(C("text") == "", F.lit("text is empty"))
                                .when(blank, F.lit("text is only white space")))

    # Rows of one language share a task: the variant and duplicate rules below are window
    # functions over that one partitioning (no self-joins, so the plan stays linear).
    d = d.repartition("corpus", "lang").withColumn("_vkey", F.coalesce(C("variant"), F.lit("")))

    # 2. one translation per language: the variant with most valid rows, then the smallest key.
    n_var = F.sum(F.when(ok, 1).otherwise(0)).over(Window.partitionBy("corpus", "lang", "_vkey"))
    d = d.withColumn("_n_var", n_var)
    best = F.min(F.when(ok, F.struct((-C("_n_var")).alias("n"), C("_vkey").alias("v"))))
    d = d.withColumn("_canon", best.over(Window.partitionBy("corpus", "lang")))
    d = _mark(d, C("_vkey") != C("_canon.v"), "duplicate_id",
              F.format_string("translation variant '%s' of %s; variant '%s' (%d valid rows) is kept",
                              C("_vkey"), C("lang"), C("_canon.v"), -C("_canon.n")))

    # 3. repeated ids: keep the first by (source, row).
    d = d.withColumn("_ok", ok)
    wd = Window.partitionBy("corpus", "lang", "split", "sentence_id", "_ok").orderBy("source", "row")
    d = (d.withColumn("_rn", F.row_number().over(wd))
          .withColumn("_first", F.first(F.struct("source", "row", "text")).over(wd)))
    d = _mark(d, C("_rn") > 1, "duplicate_id",
              F.format_string("duplicate of %s sentence %d, first at %s row %d (%s)", C("split"), C("sentence_id"),
                              C("_first.source"), C("_first.row"),
                              F.when(C("text") == C("_first.text"), F.lit("same text"))
                               .otherwise(F.lit("different text"))))

    # Materialised once: the alignment rules below read these rows twice (per-id language
    # sets, then the final labels). A local checkpoint is lost with its executor; the ingest
    # task is then retried as a whole.
    d = d.localCheckpoint(eager=True)

    # Steps 4-5 need only which languages hold which ids. Their decisions are made on the
    # driver from a histogram (corpus, lang, split, languages holding the id) -> ids, whose
    # size is bounded by languages² × splits whatever the corpus size.
    ids = d.filter(ok).groupBy("corpus", "split", "sentence_id").agg(F.collect_set("lang").alias("_langs"))
    hist = (ids.select("corpus", F.lit("held").alias("kind"), F.explode("_langs").alias("lang"), "split",
                       F.size("_langs").alias("n"))
               .groupBy("corpus", "kind", "lang", "split", "n").count())
    # rows in per language, counted independently of the writers (the no-row-lost check)
    totals = (d.select("corpus", F.lit("rows").alias("kind"), F.coalesce("lang", "lang_raw").alias("lang"),
                       F.lit(None).cast("string").alias("split"), F.lit(0).alias("n"))
               .groupBy("corpus", "kind", "lang", "split", "n").count())
    rows = [tuple(r) for r in hist.unionByName(totals).collect()]
    held = [(c, lang, split, n, k) for c, kind, lang, split, n, k in rows if kind == "held"]
    n_in = {(c, lang): k for c, kind, lang, _, _, k in rows if kind == "rows"}
    low, remaining = _alignment_decisions(held, float(min_language_coverage))
    n_langs = {c: len(v) for c, v in _langs_by_corpus(held).items()}
    complete = all(n == n_langs[c] for c, _, _, n, _ in held)
    if complete:  # every id in every language: nothing below coverage, nothing missing
        return _final(d), n_in, True

    # 4. language_incomplete: languages below the coverage minimum in some split.
    if low:
        detail = _lookup({f"{c}\x1f{lang}": v for (c, lang), v in low.items()}, F.concat_ws("\x1f", "corpus", "lang"))
        d = _mark(d, detail.isNotNull(), "language_incomplete", detail)

    # 5. ids that some remaining language lacks: quarantined in the languages that have them.
    if remaining:
        joined = _lookup({c: "\x1f".join(v) for c, v in remaining.items()}, C("corpus"))
        all_langs = F.filter(F.split(joined, "\x1f"), lambda x: x != "")
        missing = (ids.select("corpus", "split", "sentence_id", F.size(all_langs).alias("_n_all"),
                              F.array_except(all_langs, C("_langs")).alias("_missing"))
                      .filter(F.size("_missing") > 0))
        d = d.join(missing, ["corpus", "split", "sentence_id"], "left")
        d = _mark(d, C("_missing").isNotNull(), "missing_in_languages",
                  F.format_string("missing in %d of %d languages: %s%s", F.size("_missing"), C("_n_all"),
                                  F.array_join(F.slice("_missing", 1, 10), ", "),
                                  F.when(F.size("_missing") > 10, F.lit(", …")).otherwise(F.lit(""))))
    return _final(d), n_in, False


def _final(d):
    return d.select("corpus", "lang", "lang_raw", "variant", "split", "sentence_id", "text", "source", "row",
                    "reason", "detail")


def _langs_by_corpus(held) -> dict:
    from collections import defaultdict

    langs = defaultdict(set)
    for c, lang, *_ in held:
        langs[c].add(lang)
    return langs


def corpus_rows(labelled):
    """Kept rows in the `schemas.CORPUS` schema (text unchanged)."""
    from pyspark.sql import functions as F

    return labelled.filter(F.col("reason").isNull()).select(
        "corpus", "lang", F.substring_index("lang", "_", -1).alias("script"), "split", "sentence_id", "text",
        F.octet_length("text").cast("int").alias("n_bytes"), F.length("text").cast("int").alias("n_chars"))


def reject_rows(labelled):
    """Quarantined rows in the `schemas.REJECTS` schema (text cut to 1000 characters)."""
    from pyspark.sql import functions as F

    return labelled.filter(F.col("reason").isNotNull()).select(
        "corpus", F.coalesce("lang", "lang_raw").alias("lang"), "split", "sentence_id", "source", "row", "reason",
        "detail", F.substring("text", 1, REJECT_TEXT_CHARS).alias("text"))


def alignment_report(labelled):
    """Per (corpus, lang): n_rows_in, n_kept, n_rejected and one count column per reason."""
    from pyspark.sql import functions as F

    def n(cond):
        return F.sum(F.when(cond, 1).otherwise(0)).cast("long")

    r = F.col("reason")
    return (labelled.groupBy("corpus", F.coalesce("lang", "lang_raw").alias("lang"))
                    .agg(F.count("*").alias("n_rows_in"), n(r.isNull()).alias("n_kept"),
                         n(r.isNotNull()).alias("n_rejected"), *[n(r == x).alias(x) for x in REASONS])
                    .orderBy("corpus", "lang"))


class Validated(NamedTuple):
    corpus: object  # DataFrame in schemas.CORPUS
    rejects: object  # DataFrame in schemas.REJECTS
    report: object  # small DataFrame, see alignment_report


def validate_corpus(df, min_language_coverage: float = DEFAULT_MIN_LANGUAGE_COVERAGE) -> Validated:
    """Raw rows (readers.RAW_SCHEMA) → (corpus rows, reject rows, alignment report), lazily.

    Every input row is in exactly one of corpus and rejects. Persist `df` first when
    it is expensive to recompute: the rules read it several times.
    """
    labelled = label_rows(normalize_languages(df), min_language_coverage)
    return Validated(corpus_rows(labelled), reject_rows(labelled), alignment_report(labelled))


# -- writing ------------------------------------------------------------------------------------
def _write_language(table: pa.Table, out: str, corpus: str, lang: str) -> dict:
    table = conform(table, CORPUS, files=True).sort_by([("split", "ascending"), ("sentence_id", "ascending")])
    version = corpus_store.corpus_version(table)
    meta = {**(table.schema.metadata or {}), corpus_store.VERSION_KEY: version.encode()}
    write_parquet_atomic(table.replace_schema_metadata(meta), layout.language_file(out, corpus, lang))
    return {"lang": lang, "version": version, "n_sentences": table.num_rows}


def write_corpus(corpus_df, out, corpus: str) -> dict[str, dict]:
    """Write one Parquet file per language, each by one task; {lang: {version, n_sentences}}.

    Grouped by (corpus, lang), which is how validation already partitions the rows, so
    usually no shuffle is needed; one language's rows are held in memory by its task.
    """
    from pyspark.sql import functions as F

    out_s = str(Path(out).resolve())
    schema = pa.schema([("lang", pa.string()), ("version", pa.string()), ("n_sentences", pa.int64())])

    def write_language(key, table):
        return pa.Table.from_pylist([_write_language(table, out_s, corpus, key[1].as_py())], schema=schema)

    rows = (corpus_df.filter(F.col("corpus") == corpus).groupBy("corpus", "lang")
                     .applyInArrow(write_language, "lang string, version string, n_sentences long").collect())
    return {r["lang"]: {"version": r["version"], "n_sentences": r["n_sentences"]} for r in rows}


def write_rejects(rejects_df, out, corpus: str) -> dict[tuple, int]:
    """Write the corpus's rejects as its one file (empty when there are none), sorted by
    (lang, source, row); returns {(lang, reason): rows}."""
    from pyspark.sql import functions as F

    out_s = str(Path(out).resolve())
    schema = pa.schema([("lang", pa.string()), ("reason", pa.string()), ("n", pa.int64())])

    def write_all(batches):
        batches = [b for b in batches if b.num_rows]
        table = pa.Table.from_batches(batches) if batches else pa.Table.from_batches([], schema=REJECTS.file_schema)
        table = conform(table, REJECTS, files=True).sort_by(
            [("lang", "ascending"), ("source", "ascending"), ("row", "ascending")])
        write_parquet_atomic(table, layout.rejects_file(out_s, corpus))
        counts = table.group_by(["lang", "reason"]).aggregate([([], "count_all")])
        yield from pa.table({"lang": counts["lang"], "reason": counts["reason"], "n": counts["count_all"]},
                            schema=schema).to_batches()

    # one file per corpus: a single task reads every (already validated) partition
    rows = rejects_df.filter(F.col("corpus") == corpus).coalesce(1).mapInArrow(
        write_all, "lang string, reason string, n long").collect()
    if not rows:  # no rejects (the task may not even have run): an empty file replaces old rejects
        write_parquet_atomic(pa.Table.from_batches([], schema=REJECTS.file_schema),
                             layout.rejects_file(out_s, corpus))
    return {(r["lang"], r["reason"]): r["n"] for r in rows}


def _report(n_in: dict, written: dict, rejected: dict) -> list[dict]:
    """Alignment report rows (as `alignment_report`) from the independent row count and
    what the two writers wrote."""
    langs = sorted({lang for _, lang in n_in} | set(written) | {lang for lang, _ in rejected}, key=str)
    rows = []
    for lang in langs:
        r = {"lang": lang, "n_rows_in": sum(v for (_, x), v in n_in.items() if x == lang),
             "n_kept": written.get(lang, {}).get("n_sentences", 0),
             **{x: rejected.get((lang, x), 0) for x in REASONS}}
        r["n_rejected"] = sum(r[x] for x in REASONS)
        rows.append(r)
    return rows


def _remove_stale_languages(out, corpus: str, keep: set[str]) -> list[str]:
    """Delete language folders of an earlier ingest that this one did not write."""
    removed = []
    root = layout.corpus_dir(out, corpus)
    for d in sorted(root.glob("lang=*")) if root.is_dir() else []:
        lang = d.name.split("=", 1)[1]
        if lang not in keep:
            shutil.rmtree(layout.inside(layout.dataset_dir(out, "corpus"), d))  # never outside <out>/corpus
            removed.append(lang)
    return removed


# -- the job ------------------------------------------------------------------------------------
@dataclass
class IngestSummary:
    """What an ingest did. rows_in == rows_kept + rows_rejected always."""

    corpus: str
    source_kind: str
    path: str | None
    out: str
    rows_in: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    rejects_by_reason: dict = field(default_factory=dict)
    languages: list = field(default_factory=list)
    languages_quarantined: list = field(default_factory=list)  # dropped whole: language_incomplete
    corpus_versions: dict = field(default_factory=dict)  # lang -> content hash
    n_sentences: dict = field(default_factory=dict)  # lang -> sentences kept
    removed_languages: list = field(default_factory=list)  # stale folders of an earlier ingest
    report: list = field(default_factory=list)  # alignment report rows (dicts)
    seconds: float = 0.0
    skipped: bool = False  # the source was unchanged since the last ingest: nothing was read
    fingerprint: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


INGEST_FORMAT = 1  # bump when validation or the written layout changes: old fingerprints then miss


def source_fingerprint(cfg: IngestConfig) -> str:
    """Fingerprint of the source files (name, size, mtime) and every ingest parameter."""
    root = Path(cfg.path if cfg.path is not None else readers.django_root()).resolve()
    return fingerprint({"format": INGEST_FORMAT, "kind": cfg.source_kind, "root": str(root), "corpus": cfg.corpus,
                        "languages": cfg.languages, "min_language_coverage": cfg.min_language_coverage,
                        "options": asdict(cfg.options)}, files_under(root), root)


def _unchanged(cfg: IngestConfig, fp: str) -> IngestSummary | None:
    """The previous ingest's summary when its fingerprint matches and its files are all there."""
    rec = corpus_store.read_ingest_record(cfg.out, cfg.corpus)
    if not rec or rec.get("fingerprint") != fp:
        return None
    versions = corpus_store.read_corpus_versions(cfg.out, cfg.corpus)
    summary = rec.get("summary") or {}
    if versions != summary.get("corpus_versions") or not all(
            layout.language_file(cfg.out, cfg.corpus, lang).is_file() for lang in versions):
        return None
    return IngestSummary(**{k: v for k, v in summary.items() if k in IngestSummary.__dataclass_fields__})


def ingest(spark, source_kind: str, path, corpus_name: str | None, out, languages=None, *,
           min_language_coverage: float = DEFAULT_MIN_LANGUAGE_COVERAGE, lang_col: str = "lang",
           id_col: str = "id", text_col: str = "text", split_col: str | None = None,
           min_catalog_coverage: float = 0.95, revision: str | None = None, force: bool = False) -> IngestSummary:
    """Read, validate and write one corpus; the written corpus replaces any earlier ingest of it.

    Raises ConfigError (before any Spark job) for bad parameters. With `languages`,
    only those languages are read (unknown-language rows are then out of scope too).
    When the source files and parameters are unchanged since the last ingest (see
    `source_fingerprint`), nothing is read and the previous summary is returned with
    `skipped=True`; `force` ingests anyway.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    opts = ReaderOptions(lang_col, id_col, text_col, split_col, min_catalog_coverage, revision)
    cfg = check_config(source_kind, path, corpus_name, out, languages, min_language_coverage, opts)
    if cfg.source_kind == "flores-plus-hub" and (cfg.labels is None or (
            cfg.languages and not set(cfg.languages) <= cfg.available)):
        readers.fetch_flores_plus(cfg.path, cfg.languages, revision=revision)
        cfg = replace(cfg, labels=_probe(cfg.source_kind, cfg.path, opts))
        if cfg.labels is None:
            raise ConfigError(f"no FLORES+ Parquet files under {cfg.path} after fetching")
        if cfg.languages:
            _check_present(cfg.languages, cfg.available, f"FLORES+ at {cfg.path}")

    fp = source_fingerprint(cfg)
    if not force and (prev := _unchanged(cfg, fp)) is not None:
        prev.skipped, prev.seconds = True, time.perf_counter() - t0
        return _nonempty(prev)
    raw = read_source(spark, cfg)
    labels = _labels_read(cfg)
    cached = raw.persist(StorageLevel.MEMORY_AND_DISK) if labels is None else None  # scanned twice
    labelled = None
    try:
        raw = normalize_languages(raw, labels)
        if cfg.languages:
            raw = raw.filter(F.col("lang").isin(cfg.languages))
            if cfg.available is None:  # presence could not be checked without a scan
                present = {r["lang"] for r in raw.select("lang").distinct().collect()}
                _check_present(cfg.languages, present, f"{cfg.source_kind} source {cfg.path}")
        labelled, n_in, complete = _label(raw, cfg.min_language_coverage)
        if not complete:  # the missing-ids join feeds both writers: compute it once
            labelled = labelled.persist(StorageLevel.MEMORY_AND_DISK)
        written = write_corpus(corpus_rows(labelled), cfg.out, cfg.corpus)
        rejected = write_rejects(reject_rows(labelled), cfg.out, cfg.corpus)
    finally:
        if cached is not None:
            cached.unpersist()
        if labelled is not None:
            labelled.unpersist()

    s = IngestSummary(corpus=cfg.corpus, source_kind=cfg.source_kind, path=str(cfg.path) if cfg.path else None,
                      out=str(cfg.out))
    s.report = _report(n_in, written, rejected)
    s.rows_in = sum(n_in.values())
    s.rows_kept = sum(v["n_sentences"] for v in written.values())
    s.rows_rejected = sum(rejected.values())
    s.rejects_by_reason = {x: n for x in REASONS if (n := sum(v for (_, r), v in rejected.items() if r == x))}
    s.languages = sorted(written)
    s.languages_quarantined = sorted({lang for (lang, r) in rejected if r == "language_incomplete"})
    s.corpus_versions = {k: written[k]["version"] for k in s.languages}
    s.n_sentences = {k: written[k]["n_sentences"] for k in s.languages}
    lost = [r["lang"] for r in s.report if r["n_rows_in"] != r["n_kept"] + r["n_rejected"]]
    if lost:  # every row read must be written once: a bug, never bad data
        raise RuntimeError(f"ingest of {cfg.corpus}: rows in != kept + rejected for {lost}")
    corpus_store.write_versions(cfg.out, cfg.corpus, written)  # last: readers key on it
    s.removed_languages = _remove_stale_languages(cfg.out, cfg.corpus, set(written))
    s.seconds = time.perf_counter() - t0
    s.fingerprint = fp
    corpus_store.write_ingest_record(cfg.out, cfg.corpus, {"fingerprint": fp, "summary": s.to_dict()})
    return _nonempty(s)


def _nonempty(s: IngestSummary) -> IngestSummary:
    """`s`, unless no row was kept: nothing downstream could run, so say why (after the
    rejects, versions and record are written, so a re-run says the same at once)."""
    if s.rows_kept:
        return s
    if not s.rows_in:
        raise ConfigError(f"corpus {s.corpus!r}: {s.path or 'the source'} holds no rows")
    raise ConfigError(f"corpus {s.corpus!r}: every row was quarantined "
                      f"(see rejects: {layout.rejects_file(s.out, s.corpus)})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobs/ingest.py", description=__doc__.split("\n\n")[0],
                                epilog="Sources: " + ", ".join(SOURCES) + ". See docs/ingest.md.")
    # --source, --path and --corpus: the spellings of earlier releases' documentation
    p.add_argument("--corpus-source", "--source", dest="source", required=True,
                   help="source kind: " + " | ".join(SOURCES))
    p.add_argument("--corpus-path", "--path", dest="path",
                   help="input file or folder (django: catalog root, default the installed Django; "
                        "flores-plus-hub: download folder)")
    p.add_argument("--corpus-name", "--corpus", dest="corpus",
                   help="corpus name (default per source, e.g. flores200, udhr, django)")
    p.add_argument("--out", required=True, help="output root")
    p.add_argument("--languages", help="comma-separated language codes to keep (default: all)")
    p.add_argument("--min-language-coverage", type=float, default=DEFAULT_MIN_LANGUAGE_COVERAGE,
                   help="languages holding a smaller share of a split's sentence ids are quarantined (default 0.95)")
    p.add_argument("--lang-column", default="lang", help="parquet/jsonl: language column")
    p.add_argument("--id-column", default="id", help="parquet/jsonl: integer sentence id column")
    p.add_argument("--text-column", default="text", help="parquet/jsonl: text column")
    p.add_argument("--split-column", help="parquet/jsonl: split column (default: split 'all')")
    p.add_argument("--min-catalog-coverage", type=float, default=0.95,
                   help="django: share of the messages a catalog must translate to be selected (default 0.95)")
    p.add_argument("--revision", help="flores-plus-hub: dataset revision")
    p.add_argument("--force", action="store_true", help="ingest even if the source is unchanged since the last ingest")
    add_spark_options(p, launcher=False)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    opts = ReaderOptions(a.lang_column, a.id_column, a.text_column, a.split_column, a.min_catalog_coverage,
                         a.revision)
    check_config(a.source, a.path, a.corpus, a.out, csv_list(a.languages), a.min_language_coverage, opts)
    from jobs.runtime.spark import build_spark

    spark = build_spark("tokatlas-ingest", master=a.spark_master)  # only once the configuration is known good
    s = ingest(spark, a.source, a.path, a.corpus, a.out, csv_list(a.languages),
               min_language_coverage=a.min_language_coverage, lang_col=a.lang_column, id_col=a.id_column,
               text_col=a.text_column, split_col=a.split_column, min_catalog_coverage=a.min_catalog_coverage,
               revision=a.revision, force=a.force)
    if s.skipped:
        print(f"corpus {s.corpus}: source unchanged since the last ingest (fingerprint {s.fingerprint}); nothing read")
    print(f"corpus {s.corpus}: {s.rows_in} rows in, {s.rows_kept} kept in {len(s.languages)} languages, "
          f"{s.rows_rejected} quarantined {s.rejects_by_reason or ''} ({s.seconds:.1f}s)")
    if s.languages_quarantined:
        print(f"languages quarantined whole: {', '.join(s.languages_quarantined)}")
    print(f"written under {Path(s.out) / 'corpus' / f'corpus={s.corpus}'}")
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.ingest")
