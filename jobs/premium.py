"""Token-premium job: the `premium` table of a corpus from `token_counts` and `corpus_counts`.

For every tokenizer t and language L, against a reference language R:

    premium_ctc   = CTC(t, L) / CTC(t, R)        corpus-level counts (joined lines, one encode)
    premium_mean  = mean_s n(t, L, s) / n(t, R, s) over sentences aligned in L and R
                    (split, sentence_id), skipping sentences where R has 0 tokens

with paired bootstrap 95% percentile intervals over sentences (docs/premium.md).

Work split: `token_counts` is joined to the reference's sentence list (broadcast, so each
row carries a small integer sentence index) and grouped by tokenizer; one Arrow UDF call
holds one tokenizer's (languages × sentences) count matrix and computes every language's
bootstrap with one matrix product against a B × n_sentences weight matrix. The weights
are drawn from a generator seeded by (seed, corpus) only, so every tokenizer and language
of a corpus sees the same resampled sentences and intervals are comparable. The cheap
per-language sums (bytes, chars, words, ...) are plain Spark aggregations joined with
`corpus_counts`; the collected cells (one row each) are filled out to the full
tokenizers × languages grid on the driver, missing cells as null rows.

    spark-submit jobs/premium.py --out OUT --corpus flores200 --reference eng_Latn
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.runtime.params import add_spark_options, csv_list
from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import dataset_dir, premium_file, tokenizers_file
from schemas import CORPUS_COUNTS, PREMIUM, TOKEN_COUNTS, conform, validate
from schemas.errors import ConfigError
from schemas.languages import is_lang_code

DEFAULT_REFERENCE = "eng_Latn"
CI_PERCENTILES = (2.5, 97.5)
NULL_F64 = pa.scalar(None, pa.float64())

# What one tokenizer's UDF call returns per language (before the joins).
BOOT_SCHEMA = pa.schema([
    ("tokenizer_id", pa.string()),
    ("lang", pa.string()),
    ("n_sentences", pa.int64()),        # aligned with the reference
    ("n_reference_zero", pa.int64()),   # aligned, but the reference has 0 tokens
    ("premium_mean", pa.float64()),
    ("premium_mean_lo", pa.float64()),
    ("premium_mean_hi", pa.float64()),
    ("sum_ratio", pa.float64()),        # sum n_L / sum n_R over aligned sentences
    ("sum_ratio_lo", pa.float64()),
    ("sum_ratio_hi", pa.float64()),
])


# -- numpy core (runs inside the UDF; pure, so tests can call it directly) ---------------------
_WEIGHTS_CACHE: dict = {}


def bootstrap_weights(corpus: str, n_sentences: int, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """B × n multinomial draw counts (sentence i drawn W[b, i] times in replicate b).

    Seeded by (seed, corpus) alone, so every task of the same corpus draws the same matrix.
    Cached per worker process: Python workers are reused across tokenizers.
    """
    key = (corpus, n_sentences, n_bootstrap, seed)
    w = _WEIGHTS_CACHE.get(key)
    if w is None:
        corpus_key = int.from_bytes(hashlib.sha256(corpus.encode()).digest()[:8], "little")
        rng = np.random.default_rng(np.random.SeedSequence([seed, corpus_key]))
        draws = rng.integers(0, n_sentences, size=(n_bootstrap, n_sentences))
        draws += np.arange(n_bootstrap)[:, None] * n_sentences
        counts = np.bincount(draws.ravel(), minlength=n_bootstrap * n_sentences)
        w = counts.reshape(n_bootstrap, n_sentences).astype(np.float64)
        _WEIGHTS_CACHE.clear()  # one corpus at a time; keeps worker memory at one matrix
        _WEIGHTS_CACHE[key] = w
    return w


def premium_matrix(counts: np.ndarray, ref: np.ndarray, weights: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-language premium statistics of one tokenizer.

    counts: languages × sentences token counts, NaN where a language lacks the sentence.
    ref: the reference's row (NaN where missing). weights: B × sentences draw counts or None.
    Returns arrays of length n_languages keyed like BOOT_SCHEMA's statistic columns.
    """
    present = ~np.isnan(counts) & ~np.isnan(ref)[None, :]
    usable = present & (np.nan_to_num(ref) > 0)[None, :]
    safe_ref = np.where(np.nan_to_num(ref) > 0, ref, 1.0)
    ratios = np.where(usable, np.nan_to_num(counts) / safe_ref, 0.0)
    mask = usable.astype(np.float64)
    lang_tot = np.where(present, counts, 0.0)
    ref_tot = np.where(present, np.nan_to_num(ref)[None, :], 0.0)
    n_langs = counts.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        res = {
            "n_sentences": present.sum(axis=1).astype(np.int64),
            "n_reference_zero": (present & ~usable).sum(axis=1).astype(np.int64),
            "premium_mean": ratios.sum(axis=1) / mask.sum(axis=1),
            "sum_ratio": lang_tot.sum(axis=1) / ref_tot.sum(axis=1),
        }
        for k in ("premium_mean", "sum_ratio"):
            res[f"{k}_lo"] = res[f"{k}_hi"] = np.full(n_langs, np.nan)
        if weights is not None and n_langs:
            # One product for all four numerators/denominators: (B × n) @ (n × 4L).
            prod = weights @ np.concatenate([ratios, mask, lang_tot, ref_tot]).T
            r, m, lt, rt = (prod[:, i * n_langs:(i + 1) * n_langs] for i in range(4))
            for k, boot in (("premium_mean", r / m), ("sum_ratio", lt / rt)):
                boot[~np.isfinite(boot)] = np.nan  # a replicate that drew none of the language's sentences
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns -> NaN bounds
                    res[f"{k}_lo"], res[f"{k}_hi"] = np.nanpercentile(boot, CI_PERCENTILES, axis=0)
    for k in ("premium_mean", "sum_ratio"):
        for s in ("", "_lo", "_hi"):
            res[k + s] = np.where(np.isfinite(res[k + s]), res[k + s], np.nan)
    return res


def tokenizer_premium(table: pa.Table, *, reference_lang: str, n_sentences: int, n_bootstrap: int,
                      seed: int, corpus: str) -> pa.Table:
    """The UDF: one tokenizer's aligned counts (tokenizer_id, lang, sent_idx, n_tokens) -> BOOT_SCHEMA."""
    if table.num_rows == 0:
        return BOOT_SCHEMA.empty_table()
    tokenizer_id = table["tokenizer_id"][0].as_py()
    langs = sorted(pc.unique(table["lang"]).to_pylist())
    li = pc.index_in(table["lang"], value_set=pa.array(langs)).to_numpy(zero_copy_only=False)
    si = table["sent_idx"].to_numpy(zero_copy_only=False).astype(np.int64)
    flat = li.astype(np.int64) * n_sentences + si
    if len(np.unique(flat)) != len(flat):
        # Stale files of an earlier corpus version (or a double-written shard) would be
        # silently averaged in; refuse instead.
        raise ValueError(f"tokenizer {tokenizer_id}: duplicate per-sentence counts for one "
                         f"(lang, split, sentence_id); are stale cell files from an earlier corpus "
                         f"version present? pass corpus_versions or delete them")
    counts = np.full((len(langs), n_sentences), np.nan)
    counts.flat[flat] = pc.fill_null(table["n_tokens"].cast(pa.float64()), np.nan).to_numpy()
    ref = counts[langs.index(reference_lang)] if reference_lang in langs else np.full(n_sentences, np.nan)
    weights = bootstrap_weights(corpus, n_sentences, n_bootstrap, seed) if n_bootstrap else None
    res = premium_matrix(counts, ref, weights)
    cols = {"tokenizer_id": pa.array([tokenizer_id] * len(langs), pa.string()),
            "lang": pa.array(langs, pa.string())}
    for f in BOOT_SCHEMA:
        if f.name not in cols:
            v = res[f.name]
            cols[f.name] = pa.array(v, f.type, mask=np.isnan(v) if v.dtype.kind == "f" else None)
    return pa.table(cols, schema=BOOT_SCHEMA)


# -- Spark job ---------------------------------------------------------------------------------
def _read(spark, out, ds):
    """A dataset's DataFrame with its declared schema (partition column from the path)."""
    from schemas.spark import to_spark_schema

    path = dataset_dir(out, ds.name)
    if not path.is_dir():
        return None
    return spark.read.schema(to_spark_schema(ds)).parquet(str(path))


def tokenizer_names_from(names: Mapping[str, str] | str | Path | None, out) -> dict[str, str]:
    """tokenizer_id -> name from a mapping, a registry table path, or `<out>/registry`."""
    if isinstance(names, Mapping):
        return dict(names)
    path = Path(names) if names is not None else tokenizers_file(out)
    if not path.exists():
        if names is not None:
            raise ConfigError(f"tokenizer registry table {path} does not exist")
        return {}
    t = pq.read_table(path, columns=["tokenizer_id", "name"])
    return dict(zip(t["tokenizer_id"].to_pylist(), t["name"].to_pylist(), strict=True))


def _check_args(reference_lang: str, n_bootstrap: int, seed: int, tokenizer_ids) -> None:
    if not is_lang_code(reference_lang):
        raise ConfigError(f"reference {reference_lang!r} is not an iso639_3_Script code (e.g. eng_Latn)")
    if not isinstance(n_bootstrap, int) or n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if tokenizer_ids is not None and not list(tokenizer_ids):
        raise ConfigError("tokenizer_ids is empty (pass None for every tokenizer)")


def _languages_message(langs: Sequence[str]) -> str:
    langs = sorted(langs)
    return f"{len(langs)}: {', '.join(langs)}" if langs else "none"


def compute_premium(spark, out, corpus: str, reference_lang: str = DEFAULT_REFERENCE, n_bootstrap: int = 1000,
                    seed: int = 0, tokenizer_ids: Sequence[str] | None = None,
                    tokenizer_names: Mapping[str, str] | str | Path | None = None,
                    corpus_versions: Mapping[str, str] | None = None) -> pa.Table:
    """The premium table (schemas.PREMIUM) of `corpus` against `reference_lang`.

    One row per (tokenizer, language) of the tokenizers × languages that have counts;
    cells without counts, or whose tokenizer lacks the reference, have null premiums.
    `corpus_versions` (lang -> version) restricts counts to the current corpus version;
    without it, several versions of one cell are a ConfigError. Raises ConfigError
    when the reference language has no counts, listing the languages present.
    """
    from pyspark.sql import functions as F

    from schemas.spark import to_spark_schema

    _check_args(reference_lang, n_bootstrap, seed, tokenizer_ids)
    tc = _read(spark, out, TOKEN_COUNTS)
    if tc is None:
        raise ConfigError(f"no token_counts under {out}; run the encode job first")
    cc = _read(spark, out, CORPUS_COUNTS)
    if cc is None:
        cc = spark.createDataFrame([], to_spark_schema(CORPUS_COUNTS))  # premium_ctc will be null
    tc = tc.filter(F.col("corpus") == corpus)
    cc = cc.filter(F.col("corpus") == corpus)
    if corpus_versions:
        current = spark.createDataFrame(sorted(corpus_versions.items()), "lang string, corpus_version string")
        tc = tc.join(F.broadcast(current), ["lang", "corpus_version"], "left_semi")
        cc = cc.join(F.broadcast(current), ["lang", "corpus_version"], "left_semi")

    # corpus_counts is small (one row per cell): languages and stale versions from it cheaply.
    per_lang = cc.groupBy("lang").agg(F.count(F.lit(1)).alias("rows"),
                                      F.countDistinct("tokenizer_id").alias("tokenizers")).collect()
    stale = sorted(r["lang"] for r in per_lang if r["rows"] > r["tokenizers"])
    if stale:
        raise ConfigError(f"corpus_counts of {corpus!r} holds several corpus versions for one tokenizer in "
                          f"{_languages_message(stale)}; pass corpus_versions (the current version per "
                          f"language) or delete the stale cell files")

    # The sentence universe: the reference's (split, sentence_id) over all tokenizers, so the
    # bootstrap draws do not depend on which tokenizers a run selects.
    universe = (tc.filter(F.col("lang") == reference_lang).select("split", "sentence_id").distinct()
                .orderBy("split", "sentence_id").collect())
    if not universe:
        langs = {r["lang"] for r in per_lang} | {r["lang"] for r in tc.select("lang").distinct().collect()}
        raise ConfigError(f"reference language {reference_lang!r} has no token counts for corpus {corpus!r} "
                          f"under {out}; languages present ({_languages_message(langs)})")
    n_sent = len(universe)
    sent_idx = spark.createDataFrame([(r["split"], r["sentence_id"], i) for i, r in enumerate(universe)],
                                     "split string, sentence_id long, sent_idx int")

    if tokenizer_ids is not None:
        ids = sorted(set(tokenizer_ids))
        tc = tc.filter(F.col("tokenizer_id").isin(ids))
        cc = cc.filter(F.col("tokenizer_id").isin(ids))

    def udf(table: pa.Table) -> pa.Table:  # a plain function: Spark infers the Arrow API from its hints
        return tokenizer_premium(table, reference_lang=reference_lang, n_sentences=n_sent,
                                 n_bootstrap=n_bootstrap, seed=seed, corpus=corpus)

    boot = (tc.select("tokenizer_id", "lang", "split", "sentence_id", "n_tokens")
            .join(F.broadcast(sent_idx), ["split", "sentence_id"])
            .select("tokenizer_id", "lang", "sent_idx", "n_tokens")
            .groupBy("tokenizer_id").applyInArrow(udf, to_spark_schema(BOOT_SCHEMA)))

    def total(c):  # null unless every sentence has the count (e.g. word stats were switched off)
        return F.when(F.count(c) == F.count(F.lit(1)), F.sum(c))

    def ratio(num, den):
        return F.when(F.col(den) > 0, F.col(num) / F.col(den))

    is_char = (F.col("word_segmentation") == "character").cast("int")
    stats = (tc.groupBy("tokenizer_id", "lang")
             .agg(total("n_tokens").alias("tok"), total("n_bytes").alias("bytes"), total("n_chars").alias("chars"),
                  total("n_words").alias("words"), total("n_unk").alias("unk"),
                  total("n_continued_words").alias("cont"),
                  # min/max over a 0/1 flag instead of min(string): keeps this a hash aggregation
                  F.min(is_char).alias("char_min"), F.max(is_char).alias("char_max"))
             .select("tokenizer_id", "lang",
                     F.when(F.col("char_min") == 1, "character").when(F.col("char_max") == 0, "whitespace")
                     .when(F.col("char_max") == 1, "mixed").alias("word_segmentation"),
                     ratio("bytes", "tok").alias("bytes_per_token"), ratio("chars", "tok").alias("chars_per_token"),
                     ratio("tok", "words").alias("fertility"), ratio("unk", "tok").alias("unk_rate"),
                     ratio("cont", "words").alias("continued_word_rate")))
    ctc = cc.select("tokenizer_id", "lang", F.col("n_tokens").alias("ctc"))
    key = ["tokenizer_id", "lang"]
    # Every cell with any counts (boot's cells are a subset of stats'); small enough to collect.
    cells = stats.join(ctc, key, "full").join(boot, key, "left").toArrow()
    table = _assemble(cells, reference_lang, tokenizer_ids)

    names = tokenizer_names_from(tokenizer_names, out)
    n = table.num_rows
    table = (table.append_column("corpus", pa.array([corpus] * n, pa.string()))
             .append_column("reference_lang", pa.array([reference_lang] * n, pa.string()))
             .append_column("n_bootstrap", pa.array([n_bootstrap] * n, pa.int32()))
             .append_column("tokenizer_name", pa.array([names.get(t) for t in table["tokenizer_id"].to_pylist()],
                                                       pa.string())))
    table = conform(table, PREMIUM).sort_by([("tokenizer_id", "ascending"), ("lang", "ascending")])
    validate(table, PREMIUM)
    return table


def _assemble(cells: pa.Table, reference_lang: str, tokenizer_ids: Sequence[str] | None) -> pa.Table:
    """Fill the tokenizers x languages grid and derive the CTC premium and its interval.

    Tokenizers asked for by id but without any counts (every cell failed) get null rows too.
    """
    key = ["tokenizer_id", "lang"]
    toks = sorted(set(pc.unique(cells["tokenizer_id"]).to_pylist()) | set(tokenizer_ids or ()))
    toks = np.asarray(toks, dtype=object)
    langs = np.asarray(pc.unique(cells["lang"]).to_pylist(), dtype=object)
    grid = pa.table({"tokenizer_id": pa.array(np.repeat(toks, len(langs)), pa.string()),
                     "lang": pa.array(np.tile(langs, len(toks)), pa.string())})
    t = grid.join(cells, key, join_type="left outer")
    ref = cells.filter(pc.equal(cells["lang"], reference_lang)).select(["tokenizer_id", "ctc"])
    t = t.join(ref.rename_columns(["tokenizer_id", "ctc_reference"]), "tokenizer_id", join_type="left outer")

    def f64(name):
        return t[name].cast(pa.float64())

    ctc_ref = f64("ctc_reference")
    premium_ctc = pc.if_else(pc.greater(ctc_ref, 0), pc.divide(f64("ctc"), ctc_ref), NULL_F64)
    # The joined-corpus CTC cannot be resampled without re-encoding: resample the ratio of
    # per-sentence totals instead and carry its interval over by the point-estimate ratio.
    scale = pc.if_else(pc.greater(t["sum_ratio"], 0), pc.divide(premium_ctc, t["sum_ratio"]), NULL_F64)
    for name, v in (("premium_ctc", premium_ctc), ("premium_ctc_lo", pc.multiply(t["sum_ratio_lo"], scale)),
                    ("premium_ctc_hi", pc.multiply(t["sum_ratio_hi"], scale)),
                    ("n_sentences", pc.fill_null(t["n_sentences"], 0)),
                    ("n_reference_zero", pc.fill_null(t["n_reference_zero"], 0))):
        t = t.drop_columns([name]) if name in t.column_names else t
        t = t.append_column(name, v)
    return t.drop_columns(["sum_ratio", "sum_ratio_lo", "sum_ratio_hi"])


def write_premium(spark, out, corpus: str, reference_lang: str = DEFAULT_REFERENCE, n_bootstrap: int = 1000,
                  seed: int = 0, tokenizer_ids: Sequence[str] | None = None,
                  tokenizer_names: Mapping[str, str] | str | Path | None = None,
                  corpus_versions: Mapping[str, str] | None = None) -> tuple[pa.Table, Path]:
    """`compute_premium`, then write the table atomically to `premium_file(out, corpus, reference)`."""
    table = compute_premium(spark, out, corpus, reference_lang, n_bootstrap, seed, tokenizer_ids,
                            tokenizer_names, corpus_versions)
    return table, write_parquet_atomic(table, premium_file(out, corpus, reference_lang))


def resolve_tokenizers(selection: Sequence[str] | None, names: Mapping[str, str]) -> list[str] | None:
    """Registry names or ids -> ids (ids not in the registry pass through when it is empty)."""
    if not selection:
        return None
    by_name = {v: k for k, v in names.items()}
    ids = []
    for s in selection:
        if s in names or not names:
            ids.append(s)
        elif s in by_name:
            ids.append(by_name[s])
        else:
            raise ConfigError(f"unknown tokenizer {s!r}; registered: {', '.join(sorted(by_name))}")
    return ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/premium.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output root holding token_counts/ and corpus_counts/")
    p.add_argument("--corpus", required=True, help="corpus name, e.g. flores200")
    p.add_argument("--reference", default=DEFAULT_REFERENCE, help="reference language (default eng_Latn)")
    p.add_argument("--bootstrap", dest="n_bootstrap", type=int, default=1000,
                   help="bootstrap replicates (0: no intervals)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tokenizers", type=csv_list, help="comma-separated registry names or ids (default: all)")
    p.add_argument("--registry", help="registry table (default <out>/registry/tokenizers.parquet)")
    p.add_argument("--report", action="store_true", help="also render <out>/reports/premium-<corpus>/")
    add_spark_options(p, launcher=False)
    a = p.parse_args(argv)
    try:
        names = tokenizer_names_from(a.registry, a.out)
        ids = resolve_tokenizers(a.tokenizers, names)
        _check_args(a.reference, a.n_bootstrap, a.seed, ids)
        from jobs.runtime.spark import build_spark

        spark = build_spark("tokatlas-premium", master=a.spark_master)
        table, path = write_premium(spark, a.out, a.corpus, a.reference, a.n_bootstrap, a.seed, ids, names)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_tok = len(pc.unique(table["tokenizer_id"])) if table.num_rows else 0
    print(f"premium: {table.num_rows} rows ({n_tok} tokenizers) -> {path}")
    if a.report:
        from jobs.reports.premium import render_premium_report
        from jobs.store.layout import report_dir

        paths = render_premium_report(table, report_dir(a.out, f"premium-{a.corpus}"),
                                      title=f"Token premium on {a.corpus} (reference {a.reference})")
        print(f"report: {paths['html']}")
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.premium")
