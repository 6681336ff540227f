"""The grid's CTC job on Spark: a trained cell whose tokenizer panics while encoding fails only that
cell, recorded as its own failure; the other cells are measured as the library counts them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from conftest import shared_path
from helpers import register_unchecked, write_evil_hf

from jobs.grid_analysis import compute_ctc, read_ctc
from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import grid_cell_path, grid_sample_file, registry_dir
from schemas import conform
from schemas.grid import GRID_CELLS
from tokenizers_registry.registry import Registry

pytestmark = pytest.mark.shared

GRID, LANG, EVAL_VERSION = "g", "deu_Latn", "e1"
# A word of 20+ letters followed by a space: the evil pattern exceeds Oniguruma's retry limit, a panic.
EVAL = ["Ein kurzer Satz.", "Die Donaudampfschifffahrtsgesellschaft fährt heute.", "Noch mehr."]


def _cell(cell_id: str, spec) -> dict:
    """A trained cell's GRID_CELLS row, as the training job writes it, for a registered tokenizer."""
    return {"cell_id": cell_id, "lang": LANG, "algorithm": "hf-bpe", "pre_tokenizer": "bytelevel",
            "vocab_size": spec.vocab_size, "train_bytes": 1000, "byte_budget": 1000, "status": "ok",
            "tokenizer_id": spec.tokenizer_id, "tokenizer_name": spec.name, "format": spec.format,
            "artifact_uri": spec.artifact_uri, "sha256": spec.sha256, "actual_vocab_size": spec.vocab_size}


def test_ctc_panicking_tokenizer_fails_only_its_own_cell(spark, tmp_path):
    from tokenizers import Tokenizer

    out = tmp_path / "out"
    reg = Registry(registry_dir(out))
    healthy_file = shared_path("tokenizers", "claude_legacy.tokenizer.json")
    healthy = reg.add(healthy_file, name="claude-legacy", fmt="hf-tokenizer-json")
    evil_file = write_evil_hf(tmp_path / "evil_hf.json")
    evil = register_unchecked(reg, evil_file, "evil-hf", "hf-tokenizer-json")
    cells = {"c-evil": evil, "c-healthy": healthy}  # the panicking cell first: its worker measures the next one
    for cell_id, spec in cells.items():
        write_parquet_atomic(conform(pa.Table.from_pylist([_cell(cell_id, spec)]), GRID_CELLS),
                             grid_cell_path(out, cell_id))
    eval_file = grid_sample_file(out, GRID, LANG, "eval")
    write_parquet_atomic(pa.table({"text": EVAL}), eval_file)
    manifest = {LANG: {"eval_version": EVAL_VERSION}}

    joined = " ".join(EVAL)
    with pytest.raises(BaseException) as panic:  # the premise: the library itself panics on this text
        Tokenizer.from_file(str(evil_file)).encode(joined, add_special_tokens=False)
    assert type(panic.value).__name__ == "PanicException" and "retry-limit-in-match over" in str(panic.value)

    res = compute_ctc(spark, out, GRID, list(cells), manifest)
    assert res["computed"] == 1 and res["skipped"] == 0
    [(failed_id, error)] = res["failed"]
    assert failed_id == "c-evil" and error.startswith("PanicException: ") and "retry-limit-in-match over" in error

    [row] = read_ctc(out, list(cells), manifest).to_pylist()
    want = Tokenizer.from_file(str(healthy_file)).encode(joined, add_special_tokens=False).ids
    assert (row["cell_id"], row["eval_version"], row["n_sentences"], row["ctc"]) == \
        ("c-healthy", EVAL_VERSION, len(EVAL), len(want))

    # A re-run measures the failed cell again (a failure is not a result) and skips the measured one.
    again = compute_ctc(spark, out, GRID, list(cells), manifest)
    assert (again["computed"], again["skipped"], [c for c, _ in again["failed"]]) == (0, 1, ["c-evil"])
