"""Datasets of vocabulary coverage and trimming (jobs/token_freqs.py, jobs/analysis/coverage.py, jobs/trim.py).

    <out>/token_freqs/lang=<l>/<tokenizer>-<corpus>-<version>-00000.parquet   per (tokenizer, lang, split, token) counts
    <out>/coverage/corpus=<c>/{coverage,curve,overlap,union}.parquet         coverage report tables
    <out>/trim/<tokenizer name>/<run>/                                       trimmed tokenizer, id_map.parquet,
                                                                             summary.parquet, faithfulness.parquet
"""

from __future__ import annotations

import pyarrow as pa

from schemas.datasets import Dataset, col, register

S, I32, I64, F64, B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()

TOKEN_FREQS = register(Dataset(
    name="token_freqs",
    description=("Token frequencies per (tokenizer, language, split, token id) over a corpus; ids that never "
                 "occur have no row. Special tokens are flagged and excluded from every coverage figure."),
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("corpus_version", S, "content hash of the language's corpus rows the counts were computed on"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("lang", S, "language as iso639_3_Script (partition)"),
        col("split", S, "corpus split the sentences came from"),
        col("token_id", I64, "token id in the tokenizer's own id space"),
        col("count", I64, "occurrences of the token when each sentence is encoded on its own"),
        col("is_special", B, "the id is one of the tokenizer's special/control tokens"),
    ]),
    partition_by=("lang",),
    key=("corpus", "lang", "tokenizer_id", "split", "token_id"),
    required=("corpus", "corpus_version", "tokenizer_id", "lang", "split", "token_id", "count", "is_special"),
    sort_by=("tokenizer_id", "split", "token_id"),
    path="token_freqs/lang=*/*.parquet",
    produced_by="jobs/token_freqs.py (flow vocab-trim)",
))

VOCAB_COVERAGE = register(Dataset(
    name="vocab_coverage",
    description="How much of a tokenizer's vocabulary one language uses, special tokens excluded.",
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("tokenizer_name", S, "registry name"),
        col("lang", S, "language as iso639_3_Script"),
        col("splits", S, "comma-separated splits counted"),
        col("vocab_size", I64, "ids of the tokenizer, special tokens included"),
        col("n_special", I64, "special token ids of the tokenizer"),
        col("n_tokens", I64, "non-special token occurrences of the language"),
        col("n_special_tokens", I64, "special token occurrences (counted separately, normally 0)"),
        col("vocab_used", I64, "distinct non-special ids that occur at least once"),
        col("vocab_used_share", F64, "vocab_used / (vocab_size - n_special)"),
        col("vocab_p90", I64, "fewest ids whose occurrences cover >= 90% of n_tokens (most frequent first)"),
        col("vocab_p99", I64, "the same for 99%"),
        col("vocab_p999", I64, "the same for 99.9%"),
        col("vocab_p100", I64, "the same for 100% (= vocab_used)"),
        col("hidden_size", I64, "embedding width the parameter figures assume"),
        col("rows_removable", I64, "embedding rows a trim to the used ids + specials removes (before BPE closure)"),
        col("params_saved_tied", I64, "rows_removable * hidden_size (input and output embeddings tied)"),
        col("params_saved_untied", I64, "2 * rows_removable * hidden_size (separate output head)"),
    ]),
    key=("corpus", "tokenizer_id", "lang"),
    required=("corpus", "tokenizer_id", "lang", "vocab_used"),
    path="coverage/corpus=*/coverage.parquet",
    produced_by="jobs/analysis/coverage.py (flow vocab-trim)",
))

COVERAGE_CURVE = register(Dataset(
    name="vocab_coverage_curve",
    description="Coverage curve: share of a language's tokens covered by its k most frequent ids, for every k.",
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("lang", S, "language as iso639_3_Script"),
        col("k", I64, "number of most frequent ids kept (1 .. vocab_used)"),
        col("coverage", F64, "share of the language's non-special token occurrences those ids cover"),
    ]),
    key=("corpus", "tokenizer_id", "lang", "k"),
    required=("corpus", "tokenizer_id", "lang", "k", "coverage"),
    path="coverage/corpus=*/curve.parquet",
    produced_by="jobs/analysis/coverage.py (flow vocab-trim)",
))

VOCAB_OVERLAP = register(Dataset(
    name="vocab_overlap",
    description="Overlap of the vocabularies two languages use under one tokenizer (ordered pairs).",
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("lang_a", S, "first language"),
        col("lang_b", S, "second language"),
        col("n_a", I64, "ids used by lang_a"),
        col("n_b", I64, "ids used by lang_b"),
        col("n_shared", I64, "ids used by both"),
        col("jaccard", F64, "n_shared / |A union B| (symmetric)"),
        col("share_a_in_b", F64, "n_shared / n_a: share of A's used ids that B uses too (asymmetric)"),
        col("token_share_a_in_b", F64, "share of A's token occurrences whose id B uses (asymmetric, frequency weighted)"),
    ]),
    key=("corpus", "tokenizer_id", "lang_a", "lang_b"),
    required=("corpus", "tokenizer_id", "lang_a", "lang_b", "jaccard"),
    path="coverage/corpus=*/overlap.parquet",
    produced_by="jobs/analysis/coverage.py (flow vocab-trim)",
))

VOCAB_UNION = register(Dataset(
    name="vocab_union",
    description="Vocabulary a set of languages needs together (e.g. 'keep European languages').",
    schema=pa.schema([
        col("corpus", S, "corpus name"),
        col("tokenizer_id", S, "registry tokenizer id"),
        col("language_set", S, "name of the set"),
        col("languages", S, "comma-separated languages of the set"),
        col("vocab_size", I64, "ids of the tokenizer, special tokens included"),
        col("union_used", I64, "non-special ids used by at least one language of the set"),
        col("union_p99", I64, "size of the union of each language's 99% set (vocab_p99 ids)"),
        col("hidden_size", I64, "embedding width the parameter figures assume"),
        col("params_saved_tied", I64, "(vocab_size - n_special - union_used) * hidden_size"),
        col("params_saved_untied", I64, "twice params_saved_tied"),
    ]),
    key=("corpus", "tokenizer_id", "language_set"),
    required=("corpus", "tokenizer_id", "language_set", "union_used"),
    path="coverage/corpus=*/union.parquet",
    produced_by="jobs/analysis/coverage.py (flow vocab-trim)",
))

ID_MAP = register(Dataset(
    name="trim_id_map",
    description="Old to new id of every token a trim kept (new ids are the old ones compacted in order).",
    schema=pa.schema([
        col("old_id", I64, "id in the original tokenizer"),
        col("new_id", I64, "id in the trimmed tokenizer"),
        col("token", S, "the token (bytes shown as UTF-8 with backslash escapes)"),
        col("reason", S, "why it was kept: frequency | special | user | unk | byte | alphabet | pinned | closure"),
    ]),
    key=("old_id",),
    required=("old_id", "new_id", "reason"),
    path="trim/*/*/id_map.parquet",
    produced_by="jobs/trim.py (flow vocab-trim); one file per trim run, under trim/<tokenizer>/<run>/",
))

TRIM_SUMMARY = register(Dataset(
    name="trim_summary",
    description="One row per trim: rule, sizes before and after, merges pruned, parameters saved.",
    schema=pa.schema([
        col("tokenizer_id", S, "registry tokenizer id of the original"),
        col("tokenizer_name", S, "registry name of the original"),
        col("format", S, "tokenizer file format"),
        col("algorithm", S, "bpe | unigram | wordpiece"),
        col("languages", S, "comma-separated languages whose counts drove the trim"),
        col("splits", S, "comma-separated splits counted (the trimming text)"),
        col("min_frequency", I64, "minimum count a token needs to be kept"),
        col("top_n", I64, "keep at most this many of the most frequent tokens (null: no limit)"),
        col("n_user_tokens", I64, "user-listed tokens always kept"),
        col("vocab_before", I64, "ids before"),
        col("vocab_after", I64, "ids after"),
        col("n_by_frequency", I64, "ids kept by the frequency rule"),
        col("n_structural", I64, "ids kept regardless of counts (special, unk, bytes, alphabet, pinned, user)"),
        col("n_closure", I64, "ids added only because a kept token's merges need them"),
        col("merges_before", I64, "explicit or derived merges before (null: not a BPE)"),
        col("merges_after", I64, "merges after"),
        col("used_tokens_dropped", I64, "ids used in the trimming text that were dropped (0 means faithful by construction)"),
        col("hidden_size", I64, "embedding width the parameter figures assume"),
        col("params_saved_tied", I64, "(vocab_before - vocab_after) * hidden_size"),
        col("params_saved_untied", I64, "twice params_saved_tied"),
        col("trim_seconds", F64, "wall time of selection, closure and writing"),
        col("artifact", S, "trimmed tokenizer file, relative to the run directory"),
    ]),
    key=("tokenizer_id", "languages", "splits", "min_frequency", "top_n"),
    required=("tokenizer_id", "languages", "vocab_before", "vocab_after"),
    path="trim/*/*/summary.parquet",
    produced_by="jobs/trim.py (flow vocab-trim)",
))

FAITHFULNESS = register(Dataset(
    name="trim_faithfulness",
    description="Re-encoding check of a trimmed tokenizer per (language, split): identical segmentation share.",
    schema=pa.schema([
        col("tokenizer_id", S, "registry tokenizer id of the original"),
        col("lang", S, "language as iso639_3_Script"),
        col("split", S, "corpus split encoded"),
        col("role", S, "trim (the text the counts came from) or heldout"),
        col("n_sentences", I64, "sentences re-encoded"),
        col("n_identical", I64, "sentences whose trimmed ids equal the original ids mapped through the id map"),
        col("identical_share", F64, "n_identical / n_sentences"),
        col("n_miss_dropped", I64, "differing sentences whose original segmentation uses a dropped token"),
        col("n_miss_other", I64, "differing sentences that use only kept tokens (theory says 0)"),
        col("tokens_original", I64, "tokens of the original segmentation"),
        col("tokens_trimmed", I64, "tokens of the trimmed segmentation"),
        col("example", S, "one differing sentence, shortened, with the dropped tokens it used"),
    ]),
    key=("tokenizer_id", "lang", "split"),
    required=("tokenizer_id", "lang", "split", "n_sentences", "n_identical"),
    path="trim/*/*/faithfulness.parquet",
    produced_by="jobs/trim.py (flow vocab-trim)",
))

__all__ = ["COVERAGE_CURVE", "FAITHFULNESS", "ID_MAP", "TOKEN_FREQS", "TRIM_SUMMARY", "VOCAB_COVERAGE",
           "VOCAB_OVERLAP", "VOCAB_UNION"]
