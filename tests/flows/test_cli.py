"""The `tokatlas` CLI: --help with an example everywhere, `status`, `query`, `catalog`."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_query import LANGS, NAMES

from flows.cli import build_parser, main
from schemas.errors import ConfigError


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("tokatlas",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def test_every_command_help_has_an_example():
    seen = dict(_walk(build_parser()))
    assert {("tokatlas", c) for c in ("run", "tokenizers", "status", "query", "catalog")} <= set(seen)
    missing = [" ".join(p) for p, parser in seen.items() if "example" not in parser.format_help()]
    assert missing == []
    for path, parser in seen.items():  # every example names the command it belongs to
        if len(path) > 1:
            assert "tokatlas " + " ".join(path[1:]) in parser.format_help().replace("\n", " "), path


def test_status_counts_computed_failed_missing(premium_out, tmp_path, capsys):
    params, _ = premium_out
    out = tmp_path / "out"
    shutil.copytree(params.out, out)
    assert main(["status", "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    n = len(LANGS)
    assert s["corpus"] == "mini" and s["total"] == {"computed": n * 2, "failed": 0, "missing": 0, "cells": n * 2}
    # one cell's counts removed (missing), another turned into a failure (as the encode job records it)
    gpt2 = next(t["tokenizer_id"] for t in s["tokenizers"] if t["name"] == "gpt2")
    (f_missing,) = (out / "token_counts" / "lang=ell_Grek").glob(f"{gpt2}-*.parquet")
    f_missing.unlink()
    (f_failed,) = (out / "token_counts" / "lang=deu_Latn").glob(f"{gpt2}-*.parquet")
    fail_file = out / "cell_failures" / "lang=deu_Latn" / f_failed.name
    fail_file.parent.mkdir(parents=True)
    f_failed.rename(fail_file)
    assert main(["status", "--out", str(out), "--corpus", "mini", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    by = {t["name"]: t for t in s["tokenizers"]}
    assert (by["gpt2"]["computed"], by["gpt2"]["failed"], by["gpt2"]["missing"]) == (n - 2, 1, 1)
    assert by["gpt2"]["missing_languages"] == ["ell_Grek"]
    assert (by["mistral-v1"]["computed"], by["mistral-v1"]["missing"]) == (n, 0)
    assert s["total"] == {"computed": 2 * n - 2, "failed": 1, "missing": 1, "cells": 2 * n}
    assert main(["status", "--out", str(out), "--tokenizers", "mistral-v1"]) == 0
    text = capsys.readouterr().out
    assert "mistral-v1" in text and "gpt2" not in text and f"total{' ' * 43}{n:>8}" in text
    assert main(["status", "--out", str(out), "--corpus", "flores200"]) == 2
    assert "corpus 'flores200' has not been ingested" in capsys.readouterr().err


def test_query_outputs(premium_out, tmp_path, capsys):
    params, _ = premium_out
    sql = "SELECT tokenizer_name, lang, ctc FROM premium ORDER BY tokenizer_name, lang"
    # what the query must return, read from the premium Parquet files without DuckDB
    expected = sorted((r["tokenizer_name"], r["lang"], r["ctc"])
                      for f in sorted((Path(params.out) / "premium").rglob("*.parquet")) if not f.name.startswith(".")
                      for r in pq.read_table(f, columns=["tokenizer_name", "lang", "ctc"]).to_pylist())
    assert len(expected) == len(LANGS) * len(NAMES) and all(ctc > 0 for *_, ctc in expected)
    assert sorted({(n, lang) for n, lang, _ in expected}) == sorted((n, lang) for n in NAMES for lang in LANGS)
    assert main(["query", sql, "--out", params.out, "--csv", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        rows = [(r["tokenizer_name"], r["lang"], int(r["ctc"])) for r in csv.DictReader(f)]
    assert rows == expected
    assert main(["query", sql, "--out", params.out, "--parquet", str(tmp_path / "p.parquet")]) == 0
    assert [tuple(r.values()) for r in pq.read_table(tmp_path / "p.parquet").to_pylist()] == expected
    capsys.readouterr()
    assert main(["query", sql, "--out", params.out, "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [tuple(json.loads(x).values()) for x in lines] == expected
    assert main(["query", sql, "--out", params.out]) == 0
    table = capsys.readouterr().out
    assert f"shape: ({len(expected)}, 3)" in table and "mistral-v1" in table
    assert main(["query", "--list", "--out", params.out]) == 0
    assert "premium: corpus, tokenizer_id, tokenizer_name, lang" in capsys.readouterr().out
    assert main(["query", "SELECT nope FROM corpus_counts", "--out", params.out]) == 2
    err = capsys.readouterr().err
    assert "unknown column 'nope'" in err and "corpus_counts: corpus, corpus_version" in err


def test_catalog_command(premium_out, tmp_path, capsys):
    params, _ = premium_out
    docs = tmp_path / "datasets.md"
    assert main(["catalog", "--out", params.out, "--docs", str(docs)]) == 0
    from jobs.store.catalog import DOCS_PATH

    assert docs.read_text() == Path(DOCS_PATH).read_text()
    doc = json.loads((Path(params.out) / "catalog.json").read_text())
    assert {d["name"] for d in doc["datasets"] if d["present"]} >= {"token_counts", "premium", "run_log"}
    assert main(["catalog"]) == 2


def test_spark_progress_lines_when_not_a_tty(spark):
    import time

    from jobs.runtime.progress import Progress, spark_progress

    def slow(rows):  # keeps the stage active across several polls
        time.sleep(1)
        yield sum(1 for _ in rows)

    lines: list[str] = []
    with spark_progress(spark, "demo", interval=0.05, every=0, log=lines.append, tty=False):
        counts = spark.sparkContext.parallelize(range(100), 4).mapPartitions(slow).collect()
    assert counts == [25, 25, 25, 25]
    assert lines[-1] == "demo: 4/4 Spark tasks done"
    assert all(line.startswith("demo: ") and line.endswith("/4 Spark tasks done") for line in lines)
    bar = Progress("cells", 3, unit="encoded", every=0, log=lines.append, tty=False)
    bar.update(1)
    bar.update(advance=2, failed=1)
    bar.close()
    assert lines[-2:] == ["cells: 1/3 encoded", "cells: 3/3 encoded, 1 failed"]


def test_config_file_for_every_flow_command_and_typed_options_win(tmp_path):
    """`--config` supplies any flow's parameters; an option typed on the command line wins, even
    when it equals the option's default; options not typed leave the file's values alone."""
    from flows.cli import parse_args
    from flows.grid_flow import GridParams
    from flows.mixture_flow import ControlledParams, MixtureParams
    from flows.premium_flow import PremiumParams
    from flows.trim_flow import TrimParams
    from jobs.runtime.params import given, params_from, params_from_args

    cfg = tmp_path / "c.yaml"
    cfg.write_text("out: from-file\nlanguages: [deu_Latn, fra_Latn]\nn_bootstrap: 7\nT: 1000\nn: [3, 4]\n"
                   "tokenizer: gpt2\nmin_frequency: 3\nspec: g.yaml\nwave_size: 2\nflores: f.parquet\n"
                   "tokenizer_manifest: m.json\n")
    keys = {"run": ("out", "languages", "n_bootstrap"), "trim": ("out", "languages", "tokenizer", "min_frequency"),
            "infer": ("out", "languages", "n_bootstrap", "T", "flores", "tokenizer_manifest"),
            "eval": ("out", "T", "n", "flores"), "grid": ("out", "spec", "wave_size")}

    def only(name: str) -> Path:
        import yaml

        doc = yaml.safe_load(cfg.read_text())
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump({k: doc[k] for k in keys[name]}))
        return f

    p = params_from_args(PremiumParams, parse_args(["run", "--config", str(only("run")), "--bootstrap", "1000"]))
    assert (p.out, p.languages, p.n_bootstrap, p.reference_lang) == ("from-file", ["deu_Latn", "fra_Latn"], 1000,
                                                                     "eng_Latn")
    p = params_from_args(TrimParams, parse_args(["trim", "--config", str(only("trim")), "--min-frequency", "1",
                                                 "--out", "cli", "--pattern", r"\p{L}+",
                                                 "--language-set", "eu=deu_Latn,fra_Latn"]))
    assert (p.out, p.languages, p.tokenizer, p.min_frequency, p.splits) == ("cli", ["deu_Latn", "fra_Latn"], "gpt2",
                                                                           1, ["dev"])
    assert (p.tokenizer_pattern, p.language_sets) == (r"\p{L}+", {"eu": ["deu_Latn", "fra_Latn"]})
    a = parse_args(["mixture", "infer", "--config", str(only("infer")), "--T", "30000", "--languages", "eng_Latn"])
    p = params_from(MixtureParams, given(a, MixtureParams), "command line", config=a.config)
    assert (p.out, p.languages, p.n_bootstrap, p.T, p.flores, p.code_bytes) == (
        "from-file", ["eng_Latn"], 7, 30000, "f.parquet", 300_000)
    ev = tmp_path / "ev.yaml"
    ev.write_text("out: from-file\nn: [3, 4]\nT: [1000]\nflores: f.parquet\n")
    a = parse_args(["mixture", "eval", "--config", str(ev)])
    p = params_from(ControlledParams, given(a, ControlledParams), "command line", config=a.config)
    assert (p.out, p.n, p.T, p.trials, p.code, p.flores) == ("from-file", (3, 4), (1000,), 10, False, "f.parquet")
    a = parse_args(["mixture", "eval", "--config", str(ev), "--T", "500,600"])
    p = params_from(ControlledParams, given(a, ControlledParams), "command line", config=a.config)
    assert p.T == (500, 600)
    a = parse_args(["mixture", "eval", "--config", str(only("eval")), "--T", "500"])  # T: 1000 is not a list
    with pytest.raises(ConfigError, match=r"eval.yaml: T must be a list of integers, got 1000 \(an integer\)"):
        params_from(ControlledParams, given(a, ControlledParams), "command line", config=a.config)
    a = parse_args(["grid", "run", "--config", str(only("grid")), "--retry-failed"])
    p = params_from(GridParams, given(a, GridParams), "command line", config=a.config)
    assert (p.out, p.spec, p.wave_size, p.retry_failed, p.second_pass) == ("from-file", "g.yaml", 2, True, None)
