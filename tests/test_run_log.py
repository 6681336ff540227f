"""The run log: one row per flow run, completed or failed, with inputs and cell counts."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_query import LANGS, NAMES, premium_out  # noqa: F401  (session fixture)

from jobs.run_log import logged_run, mark, read_run_log, run_log_dir
from schemas import check_schema
from schemas.run_log import RUN_LOG
from tokenizers_registry.base import ConfigError


def test_flow_run_appends_a_row_with_inputs_counts_and_stages(premium_out):  # noqa: F811
    params, result = premium_out
    rows = [r for r in read_run_log(params.out).to_pylist() if r["flow"] == "token-premium"]
    first = rows[0]
    assert first["state"] == "completed" and first["error"] is None
    uuid.UUID(first["run_id"])
    n_cells = len(LANGS) * len(NAMES)
    assert (first["cells_computed"], first["cells_skipped"], first["cells_failed"]) == (n_cells, 0, 0)
    assert list(json.loads(first["stage_durations_json"])) == ["ingest", "register", "encode", "premium-report"]
    assert first["duration_s"] == pytest.approx((first["finished_at"] - first["started_at"]).total_seconds())
    p = json.loads(first["parameters_json"])
    assert p["out"] == params.out and p["corpus_name"] == "mini" and p["n_bootstrap"] == 20
    inputs = json.loads(first["input_versions_json"])
    versions = json.loads((Path(params.out) / "corpus" / "corpus=mini" / "_versions.json").read_text())
    assert inputs["corpus"]["name"] == "mini"
    assert inputs["corpus"]["versions"] == {k: v["version"] for k, v in versions.items()}
    registry = pq.read_table(Path(params.out) / "registry" / "tokenizers.parquet").to_pylist()
    assert sorted((t["tokenizer_id"], t["name"], t["sha256"]) for t in inputs["tokenizers"]) == \
        sorted((r["tokenizer_id"], r["name"], r["sha256"]) for r in registry)
    assert inputs["files"]["tokenizer_manifest"]["path"] == str(Path(params.tokenizer_manifest).resolve())
    for f in sorted(run_log_dir(params.out).glob("*.parquet")):
        check_schema(pq.read_schema(f), RUN_LOG)


def test_rerun_skips_and_failed_run_is_logged(premium_out):  # noqa: F811
    from flows.premium_flow import PremiumParams, token_premium

    params, _ = premium_out
    before = read_run_log(params.out).num_rows
    again = token_premium(PremiumParams(**{**params.__dict__, "n_bootstrap": 10}))
    assert again["encode"]["cells_skipped"] == len(LANGS) * len(NAMES)
    with pytest.raises(ConfigError, match="no-such-tokenizer"):
        token_premium(PremiumParams(**{**params.__dict__, "tokenizer_manifest": None,
                                       "tokenizers": ["no-such-tokenizer"]}))
    rows = read_run_log(params.out).to_pylist()[before:]
    assert [r["state"] for r in rows] == ["completed", "failed"]
    assert (rows[0]["cells_computed"], rows[0]["cells_skipped"]) == (0, len(LANGS) * len(NAMES))
    assert "ConfigError" in rows[1]["error"] and "no-such-tokenizer" in rows[1]["error"]
    assert list(json.loads(rows[1]["stage_durations_json"])) == ["ingest"]  # failed in register
    assert len({r["run_id"] for r in read_run_log(params.out).to_pylist()}) == before + 2


def test_outside_prefect_each_run_is_its_own_file(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class P:
        out: str
        k: int = 1

    @logged_run("test-flow")
    def run(p: P):
        mark("a", computed=3, skipped=1)
        mark("b", failed=2)
        if p.k < 0:
            raise ValueError("k must be >= 0")
        return p.k

    assert run(P(str(tmp_path))) == 1
    assert run(P(str(tmp_path), 2)) == 2
    with pytest.raises(ValueError):
        run(P(str(tmp_path), -1))
    mark("outside")  # no running flow: nothing recorded, no error
    files = sorted(run_log_dir(tmp_path).glob("*.parquet"))
    assert len(files) == 3
    rows = read_run_log(tmp_path).to_pylist()
    assert [json.loads(r["parameters_json"])["k"] for r in rows] == [1, 2, -1]
    assert [r["state"] for r in rows] == ["completed", "completed", "failed"]
    assert rows[2]["error"] == "ValueError: k must be >= 0"
    assert {(r["cells_computed"], r["cells_skipped"], r["cells_failed"]) for r in rows} == {(3, 1, 2)}
    assert len({r["run_id"] for r in rows}) == 3
    assert (tmp_path / "catalog.json").is_file()
    assert json.loads((tmp_path / "catalog.json").read_text())["datasets"][-0]["name"] == "corpus"
