"""Encode job: token counts for every (tokenizer, language shard) cell of a corpus.

Work is planned on the driver as a sorted list of cells; Spark runs them as
`spark.range(n_cells)` partitions, so each task takes a contiguous run of cells that
mostly share a tokenizer. Inside a task the tokenizer is loaded once per worker
process (`load_tokenizer`'s cache) and the language's sentences are read once per
worker, never per row. Each cell writes its own files, named by the cell alone, with
an atomic rename: a retried task or a re-run overwrites, never duplicates, and a cell
whose files exist is skipped. Text never goes through a Spark shuffle.

    spark-submit jobs/encode.py --out OUT --corpus flores200 [--tokenizers gpt2,cl100k_base]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.analysis.counting import count_batch, count_tokens
from jobs.runtime.fanout import CellRunSummary, cell_error, fan_out_chunks
from jobs.runtime.params import add_spark_options, csv_list
from jobs.store import corpus_store
from jobs.store.atomic import clean_temp, write_parquet_atomic
from jobs.store.layout import cell_file, dataset_dir, registry_dir
from schemas import CELL_FAILURES, CORPUS_COUNTS, TOKEN_COUNTS, conform
from schemas.errors import ConfigError
from schemas.languages import script_of
from tokenizers_registry.registry import Registry, TokenizerSpec, load_tokenizer
from tokenizers_registry.store import normalize_root

BATCH = 1000  # sentences per encode call: bounds memory, keeps library threads busy
WAVE_CELLS = 100_000  # cells per Spark job: ~15 MB of pickled work list (docs/scaling.md)


@dataclass(frozen=True, order=True)
class EncodeCell:
    """One unit of work: a tokenizer on one shard of one language of one corpus version."""

    tokenizer_id: str
    lang: str
    shard: int
    n_shards: int
    corpus: str
    corpus_version: str

    def files(self, out) -> dict[str, Path]:
        args = (self.lang, self.tokenizer_id, self.corpus, self.corpus_version, self.shard)
        paths = {"token_counts": cell_file(out, "token_counts", *args),
                 "cell_failures": cell_file(out, "cell_failures", *args)}
        if self.shard == 0:
            paths["corpus_counts"] = cell_file(out, "corpus_counts", *args)
        return paths

    def is_done(self, out) -> bool:
        f = self.files(out)
        return f["token_counts"].exists() and ("corpus_counts" not in f or f["corpus_counts"].exists())


@dataclass
class EncodeSummary(CellRunSummary):
    """What an encode run did; `failures` lists (tokenizer, lang, stage, error)."""

    encode_seconds: float = 0.0
    waves: int = 0  # Spark jobs run (cells go in waves of at most `wave_cells`)


# -- planning (driver) ------------------------------------------------------------------
def plan_cells(out, corpus: str, specs: list[TokenizerSpec], languages: list[str] | None = None,
               shard_size: int | None = None) -> list[EncodeCell]:
    """All cells of corpus × tokenizers, sorted by tokenizer so tasks reuse loaded tokenizers."""
    versions = corpus_store.ingested_versions(out, corpus)
    langs = sorted(versions)
    if languages:
        missing = sorted(set(languages) - set(versions))
        if missing:
            raise ConfigError(f"languages {missing} are not in corpus {corpus!r}; it has {len(langs)}: "
                              f"{', '.join(langs[:30])}{' …' if len(langs) > 30 else ''}")
        langs = sorted(set(languages))
    cells = []
    for lang in langs:
        n = corpus_store.language_size(out, corpus, lang)
        n_shards = max(1, -(-n // shard_size)) if shard_size else 1
        for spec in specs:
            for shard in range(n_shards):
                cells.append(EncodeCell(spec.tokenizer_id, lang, shard, n_shards, corpus, versions[lang]))
    return sorted(cells)


# -- one cell (worker) ------------------------------------------------------------------
# Cells are tokenizer-major (a task walks one tokenizer over many languages), so a worker
# keeps recently used languages rather than only the last one: 200 FLORES languages are ~60 MB.
_LANG_CACHE: OrderedDict = OrderedDict()
LANG_CACHE_BYTES = int(os.environ.get("TOKATLAS_LANG_CACHE_MB", "512")) << 20


def _language_rows(out, corpus: str, lang: str, version: str) -> pa.Table:
    """The language's sentences sorted by (split, sentence_id), from a per-worker LRU cache."""
    key = (str(out), corpus, lang, version)
    hit = _LANG_CACHE.get(key)
    if hit is not None:
        _LANG_CACHE.move_to_end(key)
        return hit
    table = corpus_store.read_language(out, corpus, lang).sort_by([("split", "ascending"),
                                                                    ("sentence_id", "ascending")])
    _LANG_CACHE[key] = table
    while len(_LANG_CACHE) > 1 and sum(t.nbytes for t in _LANG_CACHE.values()) > LANG_CACHE_BYTES:
        _LANG_CACHE.popitem(last=False)
    return table


def _first_failing(tok, texts: list[str]) -> int | None:
    for i, t in enumerate(texts):
        try:
            tok.encode_batch([t])
        except BaseException as e:
            cell_error(e)
            return i
    return None


def _failure(cell: EncodeCell, stage: str, err: BaseException, split=None, sentence_id=None) -> pa.Table:
    row = {**{k: getattr(cell, k) for k in ("corpus", "corpus_version", "tokenizer_id", "lang", "shard")},
           "stage": stage, "error_type": type(err).__name__, "error": str(err)[:2000],
           "split": split, "sentence_id": sentence_id, "failed_at": datetime.now(timezone.utc)}
    return conform(pa.Table.from_pylist([row]), CELL_FAILURES)


def run_cell(cell: EncodeCell, spec: dict, out, registry_root, *, word_stats: bool = True) -> dict:
    """Encode one cell and write its files; returns a summary row. Never raises for bad data."""
    t0 = time.perf_counter()
    files = cell.files(out)
    summary = {"tokenizer_id": cell.tokenizer_id, "lang": cell.lang, "shard": cell.shard,
               "status": "ok", "stage": None, "error": None, "n_sentences": 0, "n_tokens": 0, "seconds": 0.0}

    def fail(stage, err, split=None, sentence_id=None):
        table = _failure(cell, stage, err, split, sentence_id)
        write_parquet_atomic(table.drop(["lang"]), files["cell_failures"])
        summary.update(status="failed", stage=stage, error=f"{type(err).__name__}: {err}"[:500],
                       seconds=time.perf_counter() - t0)
        return summary

    try:
        tok = load_tokenizer(spec, registry_root)
    except BaseException as e:  # a Rust panic is a BaseException: see cell_error
        return fail("load", cell_error(e))
    rows = _language_rows(out, cell.corpus, cell.lang, cell.corpus_version)
    n = rows.num_rows
    size = -(-n // cell.n_shards)
    shard = rows.slice(cell.shard * size, size)
    texts = shard["text"].to_pylist()
    script = script_of(cell.lang)
    parts = []
    for start in range(0, len(texts), BATCH):
        chunk = texts[start:start + BATCH]
        try:
            parts.append(count_batch(tok, chunk, script, word_stats=word_stats))
        except BaseException as e:
            cell_error(e)
            i = _first_failing(tok, chunk)
            at = start + (i or 0)
            return fail("encode", e, shard["split"][at].as_py(), shard["sentence_id"][at].as_py())
    def cat(name):
        return np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0, np.int64)

    n_cont = cat("n_continued_words")
    counts = pa.table({
        "corpus": pa.array([cell.corpus] * len(texts), pa.string()),
        "corpus_version": pa.array([cell.corpus_version] * len(texts), pa.string()),
        "tokenizer_id": pa.array([cell.tokenizer_id] * len(texts), pa.string()),
        "split": shard["split"],
        "sentence_id": shard["sentence_id"],
        "n_tokens": cat("n_tokens"),
        "n_unk": cat("n_unk"),
        "n_bytes": shard["n_bytes"],
        "n_chars": shard["n_chars"],
        "n_words": cat("n_words"),
        "n_continued_words": pa.array(n_cont, mask=n_cont < 0),
        "word_segmentation": pa.array([parts[0].word_segmentation if parts else None] * len(texts), pa.string()),
    })
    write_parquet_atomic(conform(counts, TOKEN_COUNTS, files=True), files["token_counts"])
    total = int(counts["n_tokens"].to_numpy().sum()) if len(texts) else 0
    summary.update(n_sentences=len(texts), n_tokens=total)
    if cell.shard == 0:
        joined = " ".join(rows["text"].to_pylist())  # FLORES convention: lines joined by single spaces
        try:
            ctc = count_tokens(tok, joined)
        except BaseException as e:
            return fail("corpus_level", cell_error(e))
        cc = {"corpus": cell.corpus, "corpus_version": cell.corpus_version, "tokenizer_id": cell.tokenizer_id,
              "n_sentences": n, "n_tokens": ctc,
              "n_tokens_sentence_sum": total if cell.n_shards == 1 else None,
              "n_bytes": len(joined.encode("utf-8")), "n_chars": len(joined)}
        write_parquet_atomic(conform(pa.Table.from_pylist([cc]), CORPUS_COUNTS, files=True),
                             files["corpus_counts"])
    files["cell_failures"].unlink(missing_ok=True)  # an earlier failure of this cell is now resolved
    summary["seconds"] = time.perf_counter() - t0
    return summary


SUMMARY_SCHEMA = pa.schema([
    ("tokenizer_id", pa.string()), ("lang", pa.string()), ("shard", pa.int32()), ("status", pa.string()),
    ("stage", pa.string()), ("error", pa.string()), ("n_sentences", pa.int64()), ("n_tokens", pa.int64()),
    ("seconds", pa.float64()),
])


# -- the job (driver) -------------------------------------------------------------------
def encode(spark, out, corpus: str, tokenizers: list[str] | None = None, languages: list[str] | None = None,
           *, shard_size: int | None = None, word_stats: bool = True, max_tasks: int | None = None,
           registry_root=None, wave_cells: int = WAVE_CELLS) -> EncodeSummary:
    """Encode every missing cell of corpus × tokenizers on Spark and return what was done.

    Cells run in waves of at most `wave_cells` (one Spark job each), so the work list
    shipped to executors and the summaries collected stay bounded for thousands of
    tokenizers.
    """
    t0 = time.perf_counter()
    out = Path(out).resolve()
    reg_root = normalize_root(registry_root or registry_dir(out))
    specs = Registry(reg_root).select(tokenizers)
    if not specs:
        raise ConfigError(f"no tokenizers registered under {reg_root}")
    cells = plan_cells(out, corpus, specs, languages, shard_size)
    for name in ("token_counts", "corpus_counts", "cell_failures"):  # leftovers of writers that were killed
        clean_temp(dataset_dir(out, name))
    todo = [c for c in cells if not c.is_done(out)]
    summary = EncodeSummary(cells_planned=len(cells), cells_skipped=len(cells) - len(todo))
    by_id = {s.tokenizer_id: s.to_row() for s in specs}
    wave = max(1, wave_cells)
    for start in range(0, len(todo), wave):
        work = [(c, by_id[c.tokenizer_id], str(out), str(reg_root)) for c in todo[start:start + wave]]
        rows = fan_out_chunks(spark, work, lambda item: run_cell(*item, word_stats=word_stats), SUMMARY_SCHEMA,
                              max_tasks=max_tasks, label="encode")
        summary.waves += 1
        for r in rows:
            if r["status"] == "ok":
                summary.cells_ok += 1
                summary.sentences += r["n_sentences"]
                summary.tokens += r["n_tokens"]
            else:
                summary.cells_failed += 1
                summary.failures.append((r["tokenizer_id"], r["lang"], r["stage"], r["error"]))
            summary.encode_seconds += r["seconds"]
    summary.wall_seconds = time.perf_counter() - t0
    return summary


# -- what is computed for a corpus × registry -------------------------------------------
def encode_status(out, corpus: str | None = None, tokenizers: list[str] | None = None,
                  languages: list[str] | None = None, shard_size: int | None = None) -> dict:
    """Computed / failed / missing encode cells per tokenizer for an ingested corpus × registered
    tokenizers, using the encode job's own planner (so it agrees with what a re-run would do)."""
    from jobs.store import corpus_store
    from jobs.store.layout import ingested_corpora, premium_files, registry_dir
    from schemas.errors import ConfigError
    from tokenizers_registry.registry import Registry

    corpora = ingested_corpora(out)
    if corpus is None:
        if len(corpora) != 1:
            raise ConfigError(f"name a corpus with --corpus; ingested under {out}: {', '.join(corpora) or '(none)'}")
        corpus = corpora[0]
    elif corpus not in corpora:
        raise ConfigError(f"corpus {corpus!r} has not been ingested under {out}; ingested: "
                          f"{', '.join(corpora) or '(none)'}")
    corpus_store.ingested_versions(out, corpus)  # a corpus with nothing to encode says why, first
    specs = Registry(registry_dir(out)).select(tokenizers)
    if not specs:
        raise ConfigError(f"no tokenizers registered under {registry_dir(out)}")
    names = {s.tokenizer_id: s.name for s in specs}
    rows = {s.tokenizer_id: {"tokenizer_id": s.tokenizer_id, "name": s.name, "computed": 0, "failed": 0,
                             "missing": 0, "cells": 0} for s in specs}
    missing_langs: dict[str, set] = {t: set() for t in names}
    for cell in plan_cells(out, corpus, specs, languages, shard_size):
        r = rows[cell.tokenizer_id]
        r["cells"] += 1
        if cell.is_done(out):
            r["computed"] += 1
        elif cell.files(out)["cell_failures"].exists():
            r["failed"] += 1
        else:
            r["missing"] += 1
            missing_langs[cell.tokenizer_id].add(cell.lang)
    for t, r in rows.items():
        r["missing_languages"] = sorted(missing_langs[t])
    total = {k: sum(r[k] for r in rows.values()) for k in ("computed", "failed", "missing", "cells")}
    premium = [str(p.relative_to(out)) for p in premium_files(out, corpus)]
    return {"corpus": corpus, "languages": len(corpus_store.read_corpus_versions(out, corpus)) if not languages
            else len(languages), "tokenizers": list(rows.values()), "total": total, "premium_tables": premium}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/encode.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output root (holds corpus/ and registry/)")
    p.add_argument("--corpus", required=True, help="ingested corpus name, e.g. flores200")
    p.add_argument("--tokenizers", help="comma-separated registry names or ids (default: all)")
    p.add_argument("--languages", help="comma-separated iso639_3_Script codes (default: all)")
    p.add_argument("--shard-size", type=int, help="sentences per cell (default: one cell per language)")
    p.add_argument("--no-word-stats", action="store_true", help="skip continued-word counts (faster)")
    p.add_argument("--max-tasks", type=int, help="Spark tasks per wave (default: 4 × default parallelism)")
    p.add_argument("--wave-cells", type=int, default=WAVE_CELLS, help=f"cells per Spark job (default {WAVE_CELLS:,})")
    add_spark_options(p, launcher=False)
    a = p.parse_args(argv)
    from jobs.runtime.spark import build_spark

    spark = build_spark("tokatlas-encode", master=a.spark_master)
    s = encode(spark, a.out, a.corpus, csv_list(a.tokenizers), csv_list(a.languages), shard_size=a.shard_size,
               word_stats=not a.no_word_stats, max_tasks=a.max_tasks, wave_cells=a.wave_cells)
    s.print()
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.encode")
