"""Where each dataset lives under an output root, and atomic file commits.

    <out>/registry/                                        tokenizer registry (tokenizers_registry.Registry)
    <out>/corpus/corpus=<c>/lang=<l>/part-0.parquet        validated sentences (schemas.CORPUS)
    <out>/rejects/corpus=<c>/part-0.parquet                quarantined input rows (schemas.REJECTS)
    <out>/token_counts/lang=<l>/<cell>.parquet             per-sentence counts, one file per cell
    <out>/corpus_counts/lang=<l>/<cell>.parquet            corpus-level counts, one file per cell
    <out>/cell_failures/lang=<l>/<cell>.parquet            failed cells
    <out>/premium/corpus=<c>/reference=<r>.parquet         token-premium table
    <out>/reports/<report>/index.html, report.md, *.png    human-readable reports

A cell file's name is derived from (tokenizer, corpus, corpus version, shard) only,
so a re-run or a retried task overwrites it instead of adding a duplicate. Names that
become path parts pass `check_name`, and whatever is written or removed under a path
derived from a name is first checked with `inside(root, path)`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.names import check_name
from tokenizers_registry.store import inside  # the one containment check, also for jobs


def dataset_dir(out: str | Path, name: str) -> Path:
    return Path(out) / name


def registry_dir(out: str | Path) -> Path:
    return Path(out) / "registry"


def corpus_lang_dir(out: str | Path, corpus: str, lang: str) -> Path:
    return Path(out) / "corpus" / f"corpus={check_name(corpus, 'corpus name')}" / f"lang={check_name(lang, 'language')}"


def report_dir(out: str | Path, report: str) -> Path:
    d = Path(out) / "reports" / report
    inside(d.parent, d)  # report names are built from checked names (premium-<corpus>, trim-<tokenizer>)
    return d


def cell_file(out: str | Path, dataset: str, lang: str, tokenizer_id: str, corpus: str,
              corpus_version: str, shard: int = 0) -> Path:
    check_name(corpus, "corpus name")
    return Path(out) / dataset / f"lang={check_name(lang, 'language')}" / \
        f"{tokenizer_id}-{corpus}-{corpus_version}-{shard:05d}.parquet"


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """Write to a hidden temp file beside `path`, then rename over it (atomic on POSIX).

    Readers never see a partial file; hidden names (leading '.') are ignored by
    Spark, polars and DuckDB scans, and stale ones are removed by `clean_temp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def clean_temp(root: str | Path) -> int:
    """Remove temp files left by writers that crashed; returns how many."""
    n = 0
    for p in Path(root).rglob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
