"""Datasets of tokenizer training grids (jobs/train_grid.py) and the inequity analysis
(jobs/grid_analysis.py). The registry's `tokenizers` table is unchanged: a trained cell's
tokenizer is registered there, and its training facts live here.

    <out>/grid/cells/<cell_id>.parquet                 one row per trained or failed cell (GRID_CELLS)
    <out>/grid/ctc/<cell_id>-<eval_version>.parquet    CTC of a cell's tokenizer on its language (GRID_CTC)
    <out>/grid/<grid>/samples/lang=<l>/{train,eval}.parquet, samples.json    per-language text
    <out>/grid/<grid>/analysis/{ctc,features,fits,optimal,targets,tests,regressions}.parquet
"""

from __future__ import annotations

import pyarrow as pa

from schemas.datasets import Dataset, col, register

S, I32, I64, F64, B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
TS = pa.timestamp("us", tz="UTC")

_AXES = [
    col("lang", S, "language as iso639_3_Script"),
    col("algorithm", S, "hf-bpe | hf-unigram | hf-wordpiece | sp-bpe | sp-unigram | superbpe"),
    col("pre_tokenizer", S, "pre-tokenizer variant: bytelevel | whitespace | metaspace | none"),
    col("vocab_size", I64, "requested vocabulary size"),
    col("transition_vocab", I64, "superbpe: stage-1 vocabulary size where merges start crossing whitespace"),
    col("train_bytes", I64, "training bytes requested by the grid (before byte-premium scaling)"),
    col("byte_budget", I64, "training bytes after scaling by the language's byte premium"),
]

GRID_CELLS = register(Dataset(
    name="grid_cells",
    description="One row per grid cell: the trained tokenizer and its training facts, or why it failed.",
    schema=pa.schema([
        col("cell_id", S, "deterministic id of the cell: hash of its axes, sample version and trainer version"),
        *_AXES,
        col("byte_premium", F64, "bytes of the language / bytes of the reference for the same parallel text; null when unscaled"),
        col("sample_version", S, "content hash of the language's training sample"),
        col("status", S, "ok | failed"),
        col("reason", S, "failed: trainer_error | vocab_not_reached | vocab_exceeded | no_training_text"),
        col("error", S, "failed: exception or explanation"),
        col("tokenizer_id", S, "registry tokenizer id (content hash of the artifact)"),
        col("tokenizer_name", S, "registry name"),
        col("format", S, "registry format of the artifact"),
        col("artifact_uri", S, "artifact path relative to the registry root"),
        col("sha256", S, "sha256 of the artifact"),
        col("actual_vocab_size", I64, "vocabulary size of the trained tokenizer, special tokens included"),
        col("bytes_seen", I64, "UTF-8 bytes of training text given to the trainer"),
        col("lines_seen", I64, "lines of training text given to the trainer"),
        col("data_limited", B, "true when the sample had fewer bytes than the budget"),
        col("train_seconds", F64, "wall time inside the trainer"),
        col("task_seconds", F64, "wall time of the whole task (read, train, store)"),
        col("trainer", S, "library and version, e.g. tokenizers 0.23.3"),
        col("trained_at", TS, "when the cell finished"),
    ]),
    key=("cell_id",),
    required=("cell_id", "lang", "algorithm", "vocab_size", "status"),
    path="grid/cells/*.parquet",
    produced_by="jobs/train_grid.py (flow tokenizer-grid)",
))

GRID_CTC = register(Dataset(
    name="grid_ctc",
    description="Corpus token count of each trained cell on its own language's evaluation text (lines joined "
                "by single spaces, encoded once, special tokens excluded), joined with the grid axes.",
    schema=pa.schema([
        col("cell_id", S, "grid cell id"),
        col("tokenizer_id", S, "registry tokenizer id"),
        *_AXES,
        col("actual_vocab_size", I64, "vocabulary size of the trained tokenizer"),
        col("eval_version", S, "content hash of the evaluation text"),
        col("n_sentences", I64, "evaluation sentences joined"),
        col("ctc", I64, "corpus token count"),
        col("n_bytes", I64, "UTF-8 bytes of the joined evaluation text"),
        col("n_chars", I64, "code points of the joined evaluation text"),
        col("n_unk", I64, "unknown tokens in the CTC"),
    ]),
    key=("cell_id", "eval_version"),
    required=("cell_id", "lang", "algorithm", "vocab_size", "ctc"),
    path="grid/ctc/*.parquet",
    produced_by="jobs/grid_analysis.py compute_ctc (flow tokenizer-grid)",
))

GRID_FEATURES = register(Dataset(
    name="grid_features",
    description="Language features computed from the corpus, used to explain CTC.",
    schema=pa.schema([
        col("lang", S, "language"),
        col("script", S, "ISO 15924 script"),
        col("mean_word_chars", F64, "mean characters per whitespace-separated word (eval text)"),
        col("whitespace_share", F64, "share of characters that are white space (eval text)"),
        col("bytes_per_char", F64, "UTF-8 bytes per code point (eval text)"),
        col("train_eval_similarity", F64, "share of eval word occurrences whose word type occurs in the training sample"),
        col("byte_premium", F64, "train-split bytes of the language / of the reference language (parallel text)"),
        col("train_bytes_available", I64, "bytes of the language's whole training sample"),
    ]),
    key=("lang",),
    required=("lang",),
    path="grid/*/analysis/features.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

GRID_FITS = register(Dataset(
    name="grid_fits",
    description="Per (language, algorithm, pre-tokenizer, training bytes): power law CTC(V) = a V^b (+ c).",
    schema=pa.schema([
        col("lang", S, "language"),
        col("algorithm", S, "algorithm label"),
        col("pre_tokenizer", S, "pre-tokenizer variant"),
        col("train_bytes", I64, "requested training bytes"),
        col("n_points", I64, "vocabulary sizes fitted"),
        col("a", F64, "scale"),
        col("b", F64, "exponent (negative: CTC falls with vocabulary)"),
        col("c", F64, "offset (0 unless fit_offset)"),
        col("b_se", F64, "standard error of b (log-log OLS; null with fewer than 3 points)"),
        col("r2", F64, "R^2 of the fit in log space"),
        col("rmse_rel", F64, "root mean square relative error of fitted CTC at the observed sizes"),
        col("loo_rel_error", F64, "mean absolute relative error predicting each point from the others (null < 3 points)"),
        col("v_min", I64, "smallest vocabulary fitted"),
        col("v_max", I64, "largest vocabulary fitted"),
    ]),
    key=("lang", "algorithm", "pre_tokenizer", "train_bytes"),
    required=("lang", "algorithm", "a", "b"),
    path="grid/*/analysis/fits.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

GRID_OPTIMAL = register(Dataset(
    name="grid_optimal",
    description="Per language and fit: the vocabulary size that reaches the target CTC, with the fit's prediction "
                "error, and (second pass) the CTC measured with a tokenizer trained at that size.",
    schema=pa.schema([
        col("lang", S, "language"),
        col("algorithm", S, "algorithm label"),
        col("pre_tokenizer", S, "pre-tokenizer variant"),
        col("train_bytes", I64, "requested training bytes"),
        col("target_ctc", F64, "target corpus token count"),
        col("v_opt_raw", F64, "vocabulary size where the fit reaches the target (unclipped)"),
        col("v_opt", I64, "v_opt_raw rounded and clipped to [optimal_min_vocab, optimal_max_vocab]"),
        col("clipped", B, "true when v_opt_raw was outside the allowed range"),
        col("extrapolated", B, "true when v_opt lies outside the fitted vocabulary range"),
        col("v_opt_lo", F64, "95% interval of v_opt_raw from the fit's parameter covariance (delta method)"),
        col("v_opt_hi", F64, "upper end of that interval"),
        col("ctc_predicted", F64, "fitted CTC at v_opt"),
        col("ctc_measured", I64, "second pass: CTC of the tokenizer trained at v_opt"),
        col("actual_vocab_size", I64, "second pass: its vocabulary size"),
        col("cell_id", S, "second pass: its grid cell id"),
    ]),
    key=("lang", "algorithm", "pre_tokenizer", "train_bytes"),
    required=("lang", "algorithm", "target_ctc"),
    path="grid/*/analysis/optimal.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

GRID_TARGETS = register(Dataset(
    name="grid_targets",
    description="Cross-language spread of predicted CTC per candidate target, per (algorithm, pre-tokenizer, bytes).",
    schema=pa.schema([
        col("algorithm", S, "algorithm label"),
        col("pre_tokenizer", S, "pre-tokenizer variant"),
        col("train_bytes", I64, "requested training bytes"),
        col("target_ctc", F64, "candidate target CTC"),
        col("variance", F64, "variance across languages of the fitted CTC at each language's clipped optimal size"),
        col("n_clipped", I64, "languages whose optimal size was clipped"),
        col("n_extrapolated", I64, "languages whose optimal size lies outside their fitted vocabulary range"),
        col("chosen", B, "the candidate with the smallest variance (ties: fewest clipped, fewest extrapolated, "
                         "then closest to the middle of the range)"),
    ]),
    key=("algorithm", "pre_tokenizer", "train_bytes", "target_ctc"),
    required=("algorithm", "target_ctc", "variance"),
    path="grid/*/analysis/targets.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

GRID_TESTS = register(Dataset(
    name="grid_tests",
    description="Statistical tests: F-test of CTC variance at equal vs optimal vocabulary size, and paired "
                "tests between algorithms.",
    schema=pa.schema([
        col("test", S, "f_equal_vs_optimal | paired_algorithms"),
        col("group", S, "what was compared, e.g. 'hf-bpe/bytelevel/b200000 at V=4000' or 'hf-bpe vs sp-bpe'"),
        col("basis", S, "F-test: measured (second pass) or predicted (fit); paired: log CTC"),
        col("n1", I64, "languages (F) or pairs (paired)"),
        col("n2", I64, "languages at optimal size (F)"),
        col("stat1", F64, "F: variance of CTC at equal size; paired: median CTC ratio first/second"),
        col("stat2", F64, "F: variance at optimal size; paired: mean log ratio"),
        col("statistic", F64, "F ratio, or Wilcoxon signed-rank statistic"),
        col("p_value", F64, "one-sided F p-value (variance reduced), or two-sided Wilcoxon p-value"),
        col("p_value_t", F64, "paired t-test two-sided p-value on log CTC (paired tests only)"),
    ]),
    key=("test", "group", "basis"),
    required=("test", "group"),
    path="grid/*/analysis/tests.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

GRID_REGRESSIONS = register(Dataset(
    name="grid_regressions",
    description="OLS of log CTC on language features across languages, per (algorithm, pre-tokenizer, bytes, V): "
                "R^2 per feature and for all features combined.",
    schema=pa.schema([
        col("algorithm", S, "algorithm label"),
        col("pre_tokenizer", S, "pre-tokenizer variant"),
        col("train_bytes", I64, "requested training bytes"),
        col("vocab_size", I64, "vocabulary size"),
        col("feature", S, "feature name, 'script' (one-hot), or 'combined'"),
        col("n", I64, "languages"),
        col("n_params", I64, "regressors including the intercept"),
        col("r2", F64, "R^2"),
        col("adj_r2", F64, "adjusted R^2 (null when n <= n_params)"),
        col("slope", F64, "coefficient of a single numeric feature"),
        col("p_value", F64, "F-test p-value of the regression (null when n <= n_params)"),
    ]),
    key=("algorithm", "pre_tokenizer", "train_bytes", "vocab_size", "feature"),
    required=("algorithm", "feature", "r2"),
    path="grid/*/analysis/regressions.parquet",
    produced_by="jobs/grid_analysis.py (flow tokenizer-grid); one file per grid",
))

__all__ = ["GRID_CELLS", "GRID_CTC", "GRID_FEATURES", "GRID_FITS", "GRID_OPTIMAL", "GRID_REGRESSIONS", "GRID_TARGETS",
           "GRID_TESTS"]
