"""Token frequencies on Spark: per (tokenizer, language, split, token id) counts over a corpus.

Same plan as the encode job: one task per (tokenizer, language) cell, the tokenizer loaded
once per worker through the registry's loader cache, sentences read from the ingested
corpus on the worker (text never goes through a shuffle). Each sentence is encoded on its
own, counts are one `np.bincount` per split, and each cell writes one file named by the
cell alone with an atomic rename: a re-run overwrites, never duplicates, and a cell whose
file exists is skipped. Special tokens are counted too, flagged `is_special`, and left
out of every coverage figure.

    spark-submit jobs/token_freqs.py --out OUT --corpus flores200 --tokenizers gpt2 --languages eng_Latn,fra_Latn
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from jobs.encode import EncodeCell, plan_cells
from jobs.runtime.fanout import CellRunSummary, cell_error, fan_out_chunks
from jobs.runtime.params import add_spark_options, csv_list
from jobs.store import corpus_store
from jobs.store.atomic import clean_temp, write_parquet_atomic
from jobs.store.layout import cell_file, dataset_dir, registry_dir
from schemas import conform
from schemas.errors import ConfigError
from schemas.trim import TOKEN_FREQS
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.registry import Registry, load_tokenizer
from tokenizers_registry.store import normalize_root

BATCH = 1000  # sentences per encode call


@dataclass
class FreqSummary(CellRunSummary):
    """What a token_freqs run did; `failures` lists (tokenizer, lang, error)."""

    seconds_in_tasks: float = 0.0


def freqs_file(out, cell: EncodeCell) -> Path:
    return cell_file(out, "token_freqs", cell.lang, cell.tokenizer_id, cell.corpus, cell.corpus_version, 0)


def count_ids(tok: Tokenizer, texts: Sequence[str], batch: int = BATCH) -> tuple[np.ndarray, int]:
    """(count per id, length vocab_size, and the number of tokens) of `texts`, each encoded on its own."""
    counts = np.zeros(tok.vocab_size, dtype=np.int64)
    n = 0
    for start in range(0, len(texts), batch):
        ids = tok.encode_batch(texts[start:start + batch])
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        counts += np.bincount(flat, minlength=tok.vocab_size)[:tok.vocab_size]
        n += len(flat)
    return counts, n


def cell_table(cell: EncodeCell, tok: Tokenizer, rows: pa.Table) -> tuple[pa.Table, int]:
    """The token_freqs rows (file schema) of one cell, and its token total."""
    specials = np.fromiter(tok.special_ids, dtype=np.int64)
    parts, total = [], 0
    splits = rows["split"].to_pylist()
    texts = rows["text"].to_pylist()
    for split in sorted(set(splits)):
        chosen = [t for s, t in zip(splits, texts, strict=True) if s == split]
        counts, n = count_ids(tok, chosen)
        total += n
        ids = np.flatnonzero(counts)
        parts.append(pa.table({
            "corpus": pa.array([cell.corpus] * len(ids), pa.string()),
            "corpus_version": pa.array([cell.corpus_version] * len(ids), pa.string()),
            "tokenizer_id": pa.array([cell.tokenizer_id] * len(ids), pa.string()),
            "split": pa.array([split] * len(ids), pa.string()),
            "token_id": pa.array(ids, pa.int64()),
            "count": pa.array(counts[ids], pa.int64()),
            "is_special": pa.array(np.isin(ids, specials), pa.bool_()),
        }))
    table = pa.concat_tables(parts) if parts else pa.table({})
    return conform(table, TOKEN_FREQS, files=True), total


def run_cell(cell: EncodeCell, spec: dict, out, registry_root) -> dict:
    """Count one cell and write its file; returns a summary row. Never raises for bad data."""
    t0 = time.perf_counter()
    row = {"tokenizer_id": cell.tokenizer_id, "lang": cell.lang, "status": "ok", "error": None,
           "n_sentences": 0, "n_tokens": 0, "seconds": 0.0}
    try:
        tok = load_tokenizer(spec, registry_root)
        rows = corpus_store.read_language(out, cell.corpus, cell.lang, columns=["split", "sentence_id", "text"])
        table, total = cell_table(cell, tok, rows)
        write_parquet_atomic(table, freqs_file(out, cell))
        row.update(n_sentences=rows.num_rows, n_tokens=total)
    except BaseException as e:  # a bad tokenizer or cell (a Rust panic too) is recorded; the other cells go on
        cell_error(e)
        row.update(status="failed", error=f"{type(e).__name__}: {e}"[:1000])
    row["seconds"] = time.perf_counter() - t0
    return row


SUMMARY_SCHEMA = pa.schema([
    ("tokenizer_id", pa.string()), ("lang", pa.string()), ("status", pa.string()), ("error", pa.string()),
    ("n_sentences", pa.int64()), ("n_tokens", pa.int64()), ("seconds", pa.float64()),
])


def token_freqs(spark, out, corpus: str, tokenizers: list[str] | None = None, languages: list[str] | None = None,
                *, registry_root=None, max_tasks: int | None = None, overwrite: bool = False) -> FreqSummary:
    """Count token frequencies for every missing (tokenizer, language) cell on Spark."""

    t0 = time.perf_counter()
    out = Path(out).resolve()
    reg_root = normalize_root(registry_root or registry_dir(out))
    specs = Registry(reg_root).select(tokenizers)
    if not specs:
        raise ConfigError(f"no tokenizers registered under {reg_root}")
    cells = plan_cells(out, corpus, specs, languages)
    clean_temp(dataset_dir(out, "token_freqs"))  # leftovers of writers that were killed
    todo = [c for c in cells if overwrite or not freqs_file(out, c).exists()]
    summary = FreqSummary(cells_planned=len(cells), cells_skipped=len(cells) - len(todo))
    if todo:
        by_id = {s.tokenizer_id: s.to_row() for s in specs}
        work = [(c, by_id[c.tokenizer_id], str(out), str(reg_root)) for c in todo]
        rows = fan_out_chunks(spark, work, lambda item: run_cell(*item), SUMMARY_SCHEMA, max_tasks=max_tasks,
                              label="token_freqs")
        for r in rows:
            if r["status"] == "ok":
                summary.cells_ok += 1
                summary.sentences += r["n_sentences"]
                summary.tokens += r["n_tokens"]
            else:
                summary.cells_failed += 1
                summary.failures.append((r["tokenizer_id"], r["lang"], r["error"]))
            summary.seconds_in_tasks += r["seconds"]
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def read_token_freqs(out, corpus: str, tokenizer_id: str, languages: Sequence[str] | None = None,
                     splits: Sequence[str] | None = None) -> pa.Table:
    """token_freqs rows (full schema, `lang` included) of one tokenizer on the current corpus versions."""
    root = dataset_dir(out, "token_freqs")
    if not root.is_dir():
        return TOKEN_FREQS.schema.empty_table()
    versions = corpus_store.read_corpus_versions(out, corpus)
    ds = pads.dataset(root, format="parquet", partitioning="hive", schema=TOKEN_FREQS.schema)
    f = (pads.field("corpus") == corpus) & (pads.field("tokenizer_id") == tokenizer_id)
    if languages:
        f &= pads.field("lang").isin(list(languages))
    if splits:
        f &= pads.field("split").isin(list(splits))
    table = ds.to_table(filter=f)
    if not len(table):
        return table
    current = np.array([versions.get(lang) == v for lang, v in zip(table["lang"].to_pylist(),
                                                                   table["corpus_version"].to_pylist(), strict=True)])
    return table.filter(pa.array(current))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/token_freqs.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output root (holds corpus/ and registry/)")
    p.add_argument("--corpus", required=True, help="ingested corpus name, e.g. flores200")
    p.add_argument("--tokenizers", help="comma-separated registry names or ids (default: all)")
    p.add_argument("--languages", help="comma-separated iso639_3_Script codes (default: all)")
    p.add_argument("--overwrite", action="store_true", help="recount cells whose file exists")
    add_spark_options(p, launcher=False)
    a = p.parse_args(argv)
    from jobs.runtime.spark import build_spark

    s = token_freqs(build_spark("tokatlas-token-freqs", master=a.spark_master), a.out, a.corpus, csv_list(a.tokenizers),
                    csv_list(a.languages), overwrite=a.overwrite)
    s.print()
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.token_freqs")
