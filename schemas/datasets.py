"""Every dataset tokatlas writes: its pyarrow schema, partitioning, key and column docs.

This is the one place schemas are defined. Writers conform their tables with
`conform()`, readers and tests compare against `DATASETS[name].schema`, and the
Spark schema is derived with `schemas.spark.to_spark_schema()`.

Types are the ones Spark and pyarrow both write without conversion (string,
int32/int64, float64, bool, timestamp[us, UTC]); all columns are nullable so a
file written by Spark or by pyarrow has the same schema. Non-null columns are
enforced by `validate()` through each dataset's `required` list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa


def col(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    """A nullable field carrying its documentation in the field metadata."""
    return pa.field(name, type_, nullable=True, metadata={"doc": doc})


@dataclass(frozen=True)
class Dataset:
    """A dataset's contract: schema (incl. partition columns), layout and key."""

    name: str
    description: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    sort_by: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)
    # Glob of the dataset's Parquet files relative to the output root, hive-style directories
    # for partition_by columns (what jobs.store.query registers as a view; docs/datasets.md lists it).
    path: str = ""
    produced_by: str = ""  # the job (and flow) that writes it

    @property
    def file_schema(self) -> pa.Schema:
        """Schema of the Parquet files themselves (partition columns live in paths)."""
        names = [f.name for f in self.schema if f.name not in self.partition_by]
        return pa.schema([self.schema.field(n) for n in names])

    def column_docs(self) -> dict[str, str]:
        return {f.name: (f.metadata or {}).get(b"doc", b"").decode() for f in self.schema}


S, I32, I64, F64, B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")

CORPUS = Dataset(
    name="corpus",
    description="Validated parallel sentences, one row per (corpus, lang, split, sentence_id).",
    schema=pa.schema([
        col("corpus", S, "corpus name, e.g. flores200, udhr, django"),
        col("lang", S, "language as iso639_3_Script, e.g. eng_Latn"),
        col("script", S, "ISO 15924 script code, e.g. Latn"),
        col("split", S, "corpus split, e.g. dev, devtest, all"),
        col("sentence_id", I64, "sentence index within the split; the same id is the same content in every language"),
        col("text", S, "the sentence, valid UTF-8, unmodified"),
        col("n_bytes", I32, "UTF-8 bytes in text"),
        col("n_chars", I32, "Unicode code points in text"),
    ]),
    partition_by=("corpus", "lang"),
    key=("corpus", "lang", "split", "sentence_id"),
    required=("corpus", "lang", "script", "split", "sentence_id", "text"),
    path="corpus/corpus=*/lang=*/*.parquet",
    produced_by="jobs/ingest.py (flows: token-premium, vocab-trim)",
)

REJECTS = Dataset(
    name="rejects",
    description="Input rows quarantined by ingest, each with the reason and where it came from.",
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("lang", S, "language as iso639_3_Script when it could be determined, else the raw label"),
        col("split", S, "split when known"),
        col("sentence_id", I64, "sentence id when known"),
        col("source", S, "file (or dataset) the row came from"),
        col("row", I64, "0-based row or line number within source"),
        col("reason", S, "one of: invalid_utf8, empty_text, duplicate_id, missing_in_languages, language_incomplete, unknown_language, bad_record"),
        col("detail", S, "human-readable explanation, e.g. which languages lack the sentence"),
        col("text", S, "the offending text (invalid bytes shown as \\x escapes), truncated to 1000 chars"),
    ]),
    partition_by=("corpus",),
    required=("corpus", "source", "reason"),
    path="rejects/corpus=*/*.parquet",
    produced_by="jobs/ingest.py (flows: token-premium, vocab-trim)",
)

TOKENIZERS = Dataset(
    name="tokenizers",
    description="The tokenizer registry: one row per registered tokenizer.",
    schema=pa.schema([
        col("tokenizer_id", S, "stable id: sha256 of the artifact and the loader parameters that change output, 16 hex chars"),
        col("name", S, "human-readable name, unique in the registry, e.g. gpt2"),
        col("format", S, "hf-tokenizer-json | sentencepiece-model | tiktoken-ranks | tekken-json | clip-merges"),
        col("artifact_uri", S, "artifact path relative to the registry root (content-addressed)"),
        col("sha256", S, "sha256 of the artifact bytes"),
        col("algorithm", S, "bpe | unigram | wordpiece | wordlevel | superbpe"),
        col("vocab_size", I64, "number of ids including special tokens"),
        col("pre_tokenizer", S, "pre-tokenization regex or description"),
        col("params_json", S, "loader parameters that change the output, canonical JSON"),
        col("provenance", S, "where the artifact came from (package, training run)"),
        col("source_path", S, "original path the artifact was added from"),
        col("added_at", TS, "when it was registered"),
    ]),
    key=("tokenizer_id",),
    required=("tokenizer_id", "name", "format", "artifact_uri", "sha256"),
    path="registry/tokenizers.parquet",
    produced_by="tokenizers_registry/registry.py (flows: token-premium, tokenizer-grid, vocab-trim)",
)

_CELL_COLS = [
    col("corpus", S, "corpus name"),
    col("corpus_version", S, "content hash of the language's corpus rows the counts were computed on"),
    col("tokenizer_id", S, "registry tokenizer id"),
]

TOKEN_COUNTS = Dataset(
    name="token_counts",
    description="Per-sentence token counts for every (tokenizer, language) cell; special tokens excluded.",
    schema=pa.schema([
        *_CELL_COLS,
        col("lang", S, "language as iso639_3_Script"),
        col("split", S, "corpus split"),
        col("sentence_id", I64, "sentence id (aligned across languages)"),
        col("n_tokens", I32, "tokens for the sentence, special tokens excluded"),
        col("n_unk", I32, "tokens that are the unknown token"),
        col("n_bytes", I32, "UTF-8 bytes of the sentence"),
        col("n_chars", I32, "code points of the sentence"),
        col("n_words", I32, "words under word_segmentation"),
        col("n_continued_words", I32, "words covered by two or more tokens"),
        col("word_segmentation", S, "whitespace (split on Unicode white space) or character (scripts written without spaces)"),
    ]),
    partition_by=("lang",),
    key=("corpus", "lang", "split", "sentence_id", "tokenizer_id"),
    required=("corpus", "corpus_version", "tokenizer_id", "lang", "split", "sentence_id", "n_tokens"),
    sort_by=("tokenizer_id", "split", "sentence_id"),
    path="token_counts/lang=*/*.parquet",
    produced_by="jobs/encode.py (flow token-premium)",
)

CORPUS_COUNTS = Dataset(
    name="corpus_counts",
    description=(
        "Corpus-level token count (CTC) per (tokenizer, language): the language's lines, ordered by split and "
        "sentence id, joined with single spaces and encoded once (the published FLORES convention)."
    ),
    schema=pa.schema([
        *_CELL_COLS,
        col("lang", S, "language as iso639_3_Script"),
        col("n_sentences", I64, "sentences joined"),
        col("n_tokens", I64, "tokens of the joined text (the CTC)"),
        col("n_tokens_sentence_sum", I64, "sum of the per-sentence counts; differs from n_tokens by merges across sentence boundaries"),
        col("n_bytes", I64, "UTF-8 bytes of the joined text"),
        col("n_chars", I64, "code points of the joined text"),
    ]),
    partition_by=("lang",),
    key=("corpus", "lang", "tokenizer_id"),
    required=("corpus", "corpus_version", "tokenizer_id", "lang", "n_tokens"),
    path="corpus_counts/lang=*/*.parquet",
    produced_by="jobs/encode.py (flow token-premium)",
)

CELL_FAILURES = Dataset(
    name="cell_failures",
    description="Cells (tokenizer x language shard) whose encoding failed; the run continued with the other cells.",
    schema=pa.schema([
        *_CELL_COLS,
        col("lang", S, "language as iso639_3_Script"),
        col("shard", I32, "shard index within the language"),
        col("stage", S, "load | encode | corpus_level"),
        col("error_type", S, "exception class"),
        col("error", S, "exception message"),
        col("split", S, "split of the first failing sentence, when known"),
        col("sentence_id", I64, "first failing sentence, when known"),
        col("failed_at", TS, "when the failure was recorded"),
    ]),
    partition_by=("lang",),
    key=("corpus", "lang", "tokenizer_id", "shard"),
    required=("corpus", "tokenizer_id", "lang", "stage", "error"),
    path="cell_failures/lang=*/*.parquet",
    produced_by="jobs/encode.py (flow token-premium)",
)

PREMIUM = Dataset(
    name="premium",
    description=(
        "Token premium per (tokenizer, language) against a reference language, with both published "
        "definitions and bootstrap 95% intervals over sentences, plus the 'why' columns."
    ),
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("tokenizer_name", S, "registry name"),
        col("lang", S, "language as iso639_3_Script"),
        col("reference_lang", S, "reference language of the premium"),
        col("n_sentences", I64, "sentences aligned with the reference"),
        col("n_reference_zero", I64, "aligned sentences where the reference has 0 tokens: left out of premium_mean"),
        col("ctc", I64, "corpus-level token count (joined lines, one encode)"),
        col("ctc_reference", I64, "the reference language's CTC for the same tokenizer"),
        col("premium_ctc", F64, "ratio of corpus totals: ctc / ctc_reference"),
        col("premium_ctc_lo", F64, "2.5% bootstrap bound of premium_ctc: percentile of the resampled ratio of per-sentence totals, rescaled by premium_ctc / that ratio on all aligned sentences (the joined-corpus count cannot be resampled without re-encoding)"),
        col("premium_ctc_hi", F64, "97.5% bootstrap bound of premium_ctc"),
        col("premium_mean", F64, "mean over sentences of n_tokens(lang) / n_tokens(reference)"),
        col("premium_mean_lo", F64, "2.5% bootstrap bound of premium_mean"),
        col("premium_mean_hi", F64, "97.5% bootstrap bound of premium_mean"),
        col("bytes_per_token", F64, "UTF-8 bytes per token (compression)"),
        col("chars_per_token", F64, "code points per token"),
        col("fertility", F64, "tokens per word under word_segmentation"),
        col("word_segmentation", S, "how words were counted for fertility: whitespace or character"),
        col("unk_rate", F64, "share of tokens that are the unknown token"),
        col("continued_word_rate", F64, "share of words split into two or more tokens"),
        col("n_bootstrap", I32, "bootstrap replicates behind the intervals"),
    ]),
    key=("corpus", "tokenizer_id", "lang", "reference_lang"),
    required=("corpus", "tokenizer_id", "lang", "reference_lang"),
    path="premium/corpus=*/reference=*.parquet",
    produced_by="jobs/premium.py (flow token-premium)",
)

DATASETS: dict[str, Dataset] = {
    d.name: d for d in (CORPUS, REJECTS, TOKENIZERS, TOKEN_COUNTS, CORPUS_COUNTS, CELL_FAILURES, PREMIUM)
}


def dataset(name: str) -> Dataset:
    """Look a dataset up by name; the error lists what exists."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


def register(ds: Dataset) -> Dataset:
    """Add a dataset defined by a later module (e.g. mixture or trimming results)."""
    if ds.name in DATASETS and DATASETS[ds.name] != ds:
        raise ValueError(f"dataset {ds.name!r} is already defined differently")
    DATASETS[ds.name] = ds
    return ds
