"""Datasets of data mixture inference (jobs/mixture_*.py).

    <out>/mixture/samples/category=<c>/sample.parquet                        category sample (text)
    <out>/mixture/trajectories/tokenizer=<t>/category=<c>/{steps,initial,deltas,topk}.parquet
    <out>/mixture/bootstrap/replicate=<b>/tokenizer=<t>/category=<c>/...       resampled-sample trajectories
    <out>/mixture/cells/                                                      per-cell status (Spark)
    <out>/mixture/estimates/tokenizer=<t>.parquet                              inferred mixture
"""

from __future__ import annotations

import pyarrow as pa

from schemas.datasets import Dataset, col, register

S, I32, I64, F64 = pa.string(), pa.int32(), pa.int64(), pa.float64()

TRAJ_STEPS = register(Dataset(
    name="mixture_traj_steps",
    description="Per merge step of one (tokenizer, category) sample: the merged pair's count before the merge.",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name (partition)"),
        col("category", S, "category name (partition)"),
        col("step", I32, "merge index t (0-based); counts are those just before merge t is applied"),
        col("merged_pair", I64, "pair key (left << 22 | right) of merge t; see tokenizers_registry.merges"),
        col("merged_count", I64, "frequency-weighted count of the merged pair at step t"),
        col("bound", I64, "(K+1)-th largest count among other pairs at step t: bounds every pair outside topk"),
    ]),
    partition_by=("tokenizer", "category"),
    key=("tokenizer", "category", "step"),
    required=("step", "merged_pair", "merged_count"),
    path="mixture/trajectories/tokenizer=*/category=*/steps.parquet",
    produced_by="jobs/mixture_counts.py (flow mixture-inference); bootstrap replicates under mixture/bootstrap/ are not in the view",
))

TRAJ_INITIAL = register(Dataset(
    name="mixture_traj_initial",
    description="Step-0 pair counts of one (tokenizer, category) sample.",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name (partition)"),
        col("category", S, "category name (partition)"),
        col("pair", I64, "pair key (left << 22 | right)"),
        col("count", I64, "frequency-weighted count at step 0"),
    ]),
    partition_by=("tokenizer", "category"),
    key=("tokenizer", "category", "pair"),
    required=("pair", "count"),
    path="mixture/trajectories/tokenizer=*/category=*/initial.parquet",
    produced_by="jobs/mixture_counts.py (flow mixture-inference)",
))

TRAJ_DELTAS = register(Dataset(
    name="mixture_traj_deltas",
    description="Change of each pair count caused by applying merge `step` (effective from step+1).",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name (partition)"),
        col("category", S, "category name (partition)"),
        col("step", I32, "merge index whose application changed the count"),
        col("pair", I64, "pair key"),
        col("delta", I64, "signed change of the count"),
    ]),
    partition_by=("tokenizer", "category"),
    key=("tokenizer", "category", "step", "pair"),
    required=("step", "pair", "delta"),
    path="mixture/trajectories/tokenizer=*/category=*/deltas.parquet",
    produced_by="jobs/mixture_counts.py (flow mixture-inference)",
))

TRAJ_TOPK = register(Dataset(
    name="mixture_traj_topk",
    description="The K most frequent pairs other than the merged one at each step (competitor candidates).",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name (partition)"),
        col("category", S, "category name (partition)"),
        col("step", I32, "merge index t"),
        col("pair", I64, "pair key"),
        col("count", I64, "count at step t"),
    ]),
    partition_by=("tokenizer", "category"),
    key=("tokenizer", "category", "step", "pair"),
    required=("step", "pair", "count"),
    path="mixture/trajectories/tokenizer=*/category=*/topk.parquet",
    produced_by="jobs/mixture_counts.py (flow mixture-inference)",
))

MIXTURE_CELLS = register(Dataset(
    name="mixture_cells",
    description="Status of each (tokenizer, category) pair-counting task.",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name"),
        col("category", S, "category name"),
        col("replicate", I64, "0 = the sample; b > 0 = bootstrap resample b of its lines"),
        col("T", I64, "merges applied"),
        col("n_derived", I64, "merges derived from the tokenizer file"),
        col("n_skipped", I64, "tokens/merges that did not derive and were skipped"),
        col("n_deltas", I64, "stored (step, pair) count changes"),
        col("total_pairs", I64, "step-0 pair total of the sample (normaliser)"),
        col("n_bytes", I64, "UTF-8 bytes of the sample"),
        col("seconds", F64, "task wall time"),
        col("status", S, "ok | reused (already counted from the same sample with >= T merges) | failed"),
        col("error", S, "exception and short traceback when failed"),
    ]),
    key=("tokenizer", "category", "replicate"),
    required=("tokenizer", "category", "status"),
    path="mixture/cells/*.parquet",
    produced_by="jobs/mixture_counts.py via Spark (flow mixture-inference); replaced by each run",
))

MIXTURE_ESTIMATES = register(Dataset(
    name="mixture_estimates",
    description="Inferred training-data mixture per (tokenizer, category), with bootstrap intervals and solver facts.",
    schema=pa.schema([
        col("tokenizer", S, "tokenizer name"),
        col("category", S, "category name"),
        col("alpha", F64, "LP solution in pair units (counts normalised by each sample's pair total)"),
        col("proportion", F64, "estimated share of training bytes"),
        col("proportion_lo", F64, "2.5% bootstrap percentile of proportion"),
        col("proportion_hi", F64, "97.5% bootstrap percentile of proportion"),
        col("T", I64, "merges considered: the first T of the tokenizer's merge list"),
        col("merges_used", I64, "of those, the merges whose pair occurs in at least one category sample: the LP's "
            "steps (a merge absent from every sample carries no evidence and is skipped)"),
        col("n_constraints", I64, "constraints in the final LP (lazy: joint LP; bundle: fixed-proportion cover LP)"),
        col("n_rounds", I64, "lazy constraint-generation rounds, or bundle iterations"),
        col("status", S, "solver status: HiGHS model status (lazy) or 'bundle: converged to certified gap …'"),
        col("objective", F64, "sum of slacks: the optimum (lazy, converged) or the certified lower bound"),
        col("gap", F64, "certified relative optimality gap (upper − lower) / upper of the solve; ~0 when exact"),
        col("n_bootstrap", I64, "bootstrap replicates behind the interval"),
        col("bootstrap", S, "resampling unit of the interval: samples (lines of each category, recounted) or merges"),
    ]),
    key=("tokenizer", "category"),
    required=("tokenizer", "category", "proportion"),
    path="mixture/estimates/tokenizer=*.parquet",
    produced_by="jobs/analysis/mixture/solve.py (flow mixture-inference)",
))

__all__ = ["MIXTURE_CELLS", "MIXTURE_ESTIMATES", "TRAJ_DELTAS", "TRAJ_INITIAL", "TRAJ_STEPS", "TRAJ_TOPK"]
