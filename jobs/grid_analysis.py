"""Crosslingual inequity analysis of a trained grid (after Arnett et al. 2025).

1. `compute_ctc` (Spark, one task per trained cell): corpus token count of each
   tokenizer on its own language's evaluation text. Computed directly with
   `jobs.analysis.counting.count_tokens` under the FLORES convention the encode job uses (lines
   joined by single spaces, one encode, special tokens excluded) rather than through
   `jobs/encode.py`: the encode job expects an ingested corpus and every tokenizer on
   every language, while a grid tokenizer is only ever measured on its own language.
2. Pure functions over the resulting table (`jobs.analysis.grid`): power-law fits
   CTC(V) = a V^b (+ c), the vocabulary size reaching a target CTC with its prediction
   error, the target that minimises cross-language variance, the F-test of variance at
   equal vs optimal sizes, paired tests between algorithms, and regressions on language
   features. This module reads and writes their tables.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.analysis.counting import count_tokens
from jobs.analysis.grid import AXES
from jobs.runtime.fanout import cell_error, fan_out_each
from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import grid_analysis_dir, grid_ctc_path, grid_sample_file, registry_dir
from jobs.train_grid import read_cells
from schemas import conform
from schemas.grid import (
    GRID_CTC,
    GRID_FEATURES,
)
from schemas.languages import script_of
from tokenizers_registry.store import normalize_root


# -- CTC (Spark) ------------------------------------------------------------------------
def ctc_cell(row: dict, eval_file: str, eval_version: str, registry_root: str, out: str) -> dict:
    """CTC of one trained cell on its language's evaluation text; writes its GRID_CTC row."""
    from tokenizers_registry.registry import load_tokenizer

    t0 = time.perf_counter()
    try:
        tok = load_tokenizer({"tokenizer_id": row["tokenizer_id"], "name": row["tokenizer_name"],
                              "format": row["format"], "artifact_uri": row["artifact_uri"], "sha256": row["sha256"],
                              "params_json": "{}"}, registry_root)
        texts = pq.read_table(eval_file, columns=["text"])["text"].to_pylist()
        joined = " ".join(texts)
        ids = tok.encode_batch([joined])[0]
        ctc = count_tokens(tok, joined)
        n_unk = sum(1 for i in ids if i == tok.unk_id) if tok.unk_id is not None else 0
    except BaseException as e:  # a bad artifact or text, a Rust panic too: fails this cell only
        cell_error(e)
        return {"cell_id": row["cell_id"], "status": "failed", "reason": "eval_error",
                "error": f"{type(e).__name__}: {e}"[:2000], "train_seconds": None,
                "task_seconds": time.perf_counter() - t0}
    out_row = {**{k: row[k] for k in ("cell_id", "tokenizer_id", *AXES, "actual_vocab_size")},
               "eval_version": eval_version, "n_sentences": len(texts), "ctc": ctc,
               "n_bytes": len(joined.encode("utf-8")), "n_chars": len(joined), "n_unk": n_unk}
    write_parquet_atomic(conform(pa.Table.from_pylist([out_row]), GRID_CTC), grid_ctc_path(out, row["cell_id"], eval_version))
    return {"cell_id": row["cell_id"], "status": "ok", "reason": None, "error": None, "train_seconds": None,
            "task_seconds": time.perf_counter() - t0}


def compute_ctc(spark, out, grid: str, cell_ids: list[str], manifest: dict, *, registry_root=None) -> dict:
    """CTC of every trained cell of `cell_ids` lacking one; returns {computed, skipped, failed}."""
    from jobs.train_grid import SUMMARY_SCHEMA

    out = str(Path(out).resolve())
    reg = normalize_root(registry_root or registry_dir(out))
    rows = [r for r in read_cells(out, cell_ids).to_pylist() if r["status"] == "ok"]
    todo = [r for r in rows if not grid_ctc_path(out, r["cell_id"], manifest[r["lang"]]["eval_version"]).is_file()]

    def fn(r: dict) -> dict:
        return ctc_cell(r, str(grid_sample_file(out, grid, r["lang"], "eval")), manifest[r["lang"]]["eval_version"], reg, out)

    res = fan_out_each(spark, todo, fn, SUMMARY_SCHEMA)
    failed = [(r["cell_id"], r["error"]) for r in res if r["status"] != "ok"]
    return {"computed": len(res) - len(failed), "skipped": len(rows) - len(todo), "failed": failed}


def read_ctc(out, cell_ids: list[str], manifest: dict) -> pa.Table:
    """GRID_CTC rows of `cell_ids` for the current evaluation texts."""
    tables = []
    for r in read_cells(out, cell_ids).select(["cell_id", "lang", "status"]).to_pylist():
        p = grid_ctc_path(out, r["cell_id"], manifest[r["lang"]]["eval_version"])
        if r["status"] == "ok" and p.is_file():
            tables.append(pq.read_table(p))
    return conform(pa.concat_tables(tables), GRID_CTC) if tables else GRID_CTC.schema.empty_table()


def second_pass_ctc(out, cells: list, manifest: dict) -> dict[tuple, dict]:
    """GRID_CTC rows of second-pass `cells` keyed as `jobs.analysis.grid.analyse` takes them:
    (lang, algorithm, pre_tokenizer, train_bytes, transition_frac)."""
    from jobs.analysis.grid import transition_frac

    measured = {}
    for r in read_ctc(out, [c.cell_id for c in cells], manifest).to_pylist():
        for c in cells:  # a second-pass cell may coincide with several optimal rows' cells
            if c.cell_id == r["cell_id"]:
                measured[(c.lang, c.algorithm, c.pre_tokenizer, c.train_bytes,
                          transition_frac({"transition_vocab": c.transition_vocab,
                                           "vocab_size": c.vocab_size}))] = r
    return measured


def report_notes(spec) -> list[str]:
    """The inequity report's note on the grid's training and evaluation text."""
    ev = spec.data.eval
    sources = ", ".join(f"{s.kind} {Path(s.path).name} {','.join(s.splits)}".strip() for s in spec.data.train)
    return [f"Training text: {sources}; evaluation text: {ev.kind} {Path(ev.path).name} {','.join(ev.splits)} "
            "(training lines identical to an evaluation line are dropped)."]


# -- language features ------------------------------------------------------------------
_WORD = re.compile(r"\S+")


def language_features(out, grid: str, manifest: dict) -> pa.Table:
    """GRID_FEATURES per language, from its evaluation text and training sample."""
    rows = []
    for lang, m in sorted(manifest.items()):
        ev = " ".join(pq.read_table(grid_sample_file(out, grid, lang, "eval"), columns=["text"])["text"].to_pylist())
        train = pq.read_table(grid_sample_file(out, grid, lang, "train"), columns=["text"])["text"].to_pylist()
        words = _WORD.findall(ev)
        vocab = {w for t in train for w in _WORD.findall(t)}
        rows.append({
            "lang": lang, "script": script_of(lang),
            "mean_word_chars": float(np.mean([len(w) for w in words])) if words else None,
            "whitespace_share": sum(c.isspace() for c in ev) / len(ev) if ev else None,
            "bytes_per_char": len(ev.encode("utf-8")) / len(ev) if ev else None,
            "train_eval_similarity": sum(w in vocab for w in words) / len(words) if words else None,
            "byte_premium": m.get("byte_premium_measured"), "train_bytes_available": m["train_bytes"],
        })
    return conform(pa.Table.from_pylist(rows), GRID_FEATURES)


# -- the whole analysis -----------------------------------------------------------------
def write_analysis(tables: dict[str, pa.Table], out, grid: str) -> dict[str, Path]:
    d = grid_analysis_dir(out, grid)
    return {k: write_parquet_atomic(t, d / f"{k}.parquet") for k, t in tables.items() if not k.startswith("_")}
