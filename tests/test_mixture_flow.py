"""The `mixture` CLI subcommand and parameter checks (no flow run: those are covered by the jobs' tests)."""

from __future__ import annotations

import argparse

import pytest

from flows.mixture_flow import MixtureParams, add_cli
from tokenizers_registry.base import ConfigError


def test_add_cli_registers_mixture_subcommands():
    ap = argparse.ArgumentParser()
    add_cli(ap.add_subparsers(dest="cmd"))
    a = ap.parse_args(["mixture", "infer", "--tokenizer-manifest", "m.json", "--flores", "f.parquet", "--T", "500",
                       "--bootstrap-unit", "samples", "--out", "o"])
    assert (a.cmd, a.mixture_cmd, a.T, a.bootstrap_unit, a.code_bytes) == ("mixture", "infer", 500, "samples", 300_000)
    assert (a.lp_T, a.reuse_counts) == (None, False)
    a = ap.parse_args(["mixture", "infer", "--tokenizer-manifest", "m.json", "--flores", "f.parquet", "--T", "500",
                       "--lp-T", "200", "--reuse-counts"])
    assert (a.lp_T, a.reuse_counts) == (200, True)
    a = ap.parse_args(["mixture", "eval", "--flores", "f.parquet", "--n", "5,10"])
    assert a.mixture_cmd == "eval" and a.n == "5,10" and callable(a.func) and a.code is False
    assert ap.parse_args(["mixture", "eval", "--flores", "f.parquet", "--code"]).code is True


def test_params_fail_fast(tmp_path):
    with pytest.raises(ConfigError, match="manifest"):
        MixtureParams(tokenizer_manifest=str(tmp_path / "missing.json")).checked()
    m = tmp_path / "m.json"
    m.write_text("{}")
    f = tmp_path / "f.parquet"
    f.write_text("")
    with pytest.raises(ConfigError, match="bootstrap unit"):
        MixtureParams(tokenizer_manifest=str(m), flores=str(f), bootstrap_unit="words").checked()
    with pytest.raises(ConfigError, match="lp_T"):
        MixtureParams(tokenizer_manifest=str(m), flores=str(f), T=100, lp_T=200).checked()
    assert MixtureParams(tokenizer_manifest=str(m), flores=str(f), T=100, lp_T=50).checked().lp_T == 50
