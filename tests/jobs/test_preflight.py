"""Configuration errors fail before Prefect and Spark start: exit 2, one `tokatlas: error:` line
naming the file and what was expected, no traceback; for every flow command and `--config`.

Most cases call the CLI's `main` in this process; a few run the real CLI in a subprocess with
its own PREFECT_HOME, where "Prefect never started" is observable: no Prefect database there.
"No flow started" is observable everywhere: a flow run (even a failed one) writes `OUT/run_log`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from helpers import write_flores_folder

from flows.cli import main

pytestmark = pytest.mark.shared
LANGS = ["eng_Latn", "fra_Latn", "zho_Hans"]
PREFIX = "tokatlas: error: "


@pytest.fixture(scope="module")
def data(tmp_path_factory, flores_parquet):
    """Real bad inputs made from the shared FLORES-200 file."""
    d = tmp_path_factory.mktemp("bad_inputs")
    full = pq.read_table(flores_parquet, filters=[("lang", "in", LANGS)])
    rows = [r for r in full.to_pylist() if r["sentence_id"] < 10]
    mini = pa.Table.from_pylist(rows, schema=full.schema)
    pq.write_table(mini, d / "mini.parquet")
    raw = Path(flores_parquet).read_bytes()
    (d / "trunc.parquet").write_bytes(raw[: len(raw) // 2])  # a copy cut short: no footer
    pq.write_table(pa.table({"lang": mini["lang"], "id": mini["sentence_id"], "body": mini["text"]}),
                   d / "notext.parquet")
    (d / "empty").mkdir()
    (d / "mixed").mkdir()  # one good file, one truncated
    pq.write_table(pa.table({"lang": mini["lang"], "id": mini["sentence_id"], "text": mini["text"]}),
                   d / "mixed" / "a.parquet")
    (d / "mixed" / "b.parquet").write_bytes((d / "mixed" / "a.parquet").read_bytes()[:-100])
    (d / "notxt").mkdir()
    (d / "notxt" / "README.md").write_text("a folder of text files, but no <lang>.txt\n")
    (d / "notext.jsonl").write_text("".join(json.dumps({"lang": r["lang"], "id": r["sentence_id"],
                                                        "body": r["text"]}) + "\n" for r in rows))
    return d


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX) and "Traceback" not in err, err[-3000:]
    return lines[0][len(PREFIX):]


def fails(capsys, argv: list[str], out: Path) -> str:
    """The error message of a CLI call that must fail before any flow starts."""
    capsys.readouterr()
    assert main([*argv, "--out", str(out)]) == 2
    msg = _one_line(capsys.readouterr().err)
    assert not (out / "run_log").exists()  # no flow run began (it logs a row even when it fails)
    return msg


def test_run_bad_sources(data, tmp_path, capsys):
    out = tmp_path / "out"
    run = ["run", "--corpus-source"]
    assert fails(capsys, [*run, "parquet", "--corpus-path", str(data / "empty")], out) == \
        f"parquet source {data / 'empty'}: the folder holds no Parquet files"
    assert fails(capsys, [*run, "parquet", "--corpus-path", str(data / "mixed")], out) == \
        f"parquet source {data / 'mixed' / 'b.parquet'}: not a readable Parquet file: no Parquet footer " \
        "(truncated, or not a Parquet file)"
    msg = fails(capsys, [*run, "parquet", "--corpus-path", str(data / "notext.parquet")], out)
    assert str(data / "notext.parquet") in msg and "lacks column(s) ['text']" in msg and "body" in msg
    msg = fails(capsys, [*run, "text", "--corpus-path", str(data / "notxt")], out)
    assert msg == f"no <lang>.txt files in {data / 'notxt'}"
    n = len((data / "notext.jsonl").read_text().splitlines())
    assert fails(capsys, [*run, "jsonl", "--corpus-path", str(data / "notext.jsonl")], out) == \
        f"JSON Lines file {data / 'notext.jsonl'}: no record has the field(s) 'text' (of the first {n} records; " \
        "expected fields lang, id, text)"
    mini = str(data / "mini.parquet")
    msg = fails(capsys, [*run, "flores-parquet", "--corpus-path", mini, "--languages", "eng_Latn,zho_Hant"], out)
    assert msg.startswith(f"language(s) zho_Hant not in flores-parquet source {mini} (3 languages)")
    assert "did you mean zho_Hans" in msg
    msg = fails(capsys, [*run, "flores-parquet", "--corpus-path", mini, "--reference", "deu_Latn"], out)
    assert msg.startswith(f"language(s) deu_Latn not in flores-parquet source {mini} (reference language)")


def test_run_bad_config_files(data, tmp_path, capsys):
    out = tmp_path / "out"
    cfg = tmp_path / "premium.yaml"
    base = ["run", "--config", str(cfg)]
    cfg.write_text("corpus_source: flores-parquet\nn_bootstrap: [1, 2\nreference_lang: eng_Latn\n")
    msg = fails(capsys, base, out)
    assert msg.startswith(f"{cfg}: invalid YAML at line 3, column 15: ")  # where PyYAML finds the open list
    assert "eng_Latn" not in msg  # no excerpt of the file
    cfg.write_text("- corpus_source: flores-parquet\n- n_bootstrap: 10\n")
    assert fails(capsys, base, out) == f"{cfg}: expected a mapping (`key: value` lines), got a list"
    cfg.write_text(f"corpus_source: flores-parquet\ncorpus_path: {data / 'mini.parquet'}\nn_bootstrap: lots\n")
    assert fails(capsys, base, out) == f"{cfg}: n_bootstrap must be an integer, got 'lots' (a string)"
    cfg.write_text("languages: [eng_Latn, 7]\n")
    assert fails(capsys, base, out) == f"{cfg}: languages[1] must be a string, got 7 (an integer)"
    cfg.write_text("word_stats: 'no'\n")
    assert fails(capsys, base, out) == f"{cfg}: word_stats must be true or false, got 'no' (a string)"
    cfg.write_text("bootstrap: 10\n")
    assert fails(capsys, base, out).startswith(f"{cfg}: unknown keys ['bootstrap']; known: out, corpus_source")
    # the file's values apply, options on the command line win
    cfg.write_text(f"corpus_source: parquet\ncorpus_path: {data / 'trunc.parquet'}\n")
    assert "trunc.parquet: not a readable Parquet file" in fails(capsys, base, out)
    msg = fails(capsys, [*base, "--corpus-path", str(data / "notext.parquet")], out)
    assert "lacks column(s) ['text']" in msg


def test_bad_manifests(data, tmp_path, capsys):
    out = tmp_path / "out"
    m = tmp_path / "MANIFEST.json"
    run = ["run", "--corpus-source", "flores-parquet", "--corpus-path", str(data / "mini.parquet"),
           "--tokenizer-manifest", str(m)]
    for text, expected in (("{not json", "JSON"), ('[{"name": "gpt2"}]', "tokenizers"),
                           ('{"tokenizers": [{"name": "gpt2", "format": "tiktoken-ranks"}]}', "file")):
        m.write_text(text)
        for argv in (run, ["mixture", "infer", "--tokenizer-manifest", str(m), "--flores", str(data / "mini.parquet"),
                           "--languages", "eng_Latn"]):
            msg = fails(capsys, argv, out)
            assert str(m) in msg and expected in msg and "{not" not in msg, msg


def test_every_flow_command_checks_its_inputs_and_config(data, tmp_path, capsys, shared_tokenizers):
    out = tmp_path / "out"
    mini, trunc = str(data / "mini.parquet"), str(data / "trunc.parquet")
    manifest = str(shared_tokenizers / "MANIFEST.json")
    cfg = tmp_path / "c.yaml"
    # trim
    trim = ["trim", "--tokenizer", "gpt2", "--languages", "eng_Latn"]
    assert fails(capsys, trim, out) == f"corpus 'flores200' has not been ingested under {out}: give --corpus-path " \
                                       "to ingest it"
    msg = fails(capsys, ["trim", "--tokenizer", "gpt3", "--languages", "eng_Latn", "--tokenizer-manifest", manifest,
                         "--corpus-path", mini], out)
    assert msg.startswith(f"unknown tokenizer(s) 'gpt3' in {manifest} or the registry under {out}; known: ") \
        and "gpt2" in msg
    msg = fails(capsys, [*trim, "--coverage-languages", "deu_Latn", "--corpus-path", mini], out)
    assert msg.startswith(f"language(s) deu_Latn not in flores-parquet source {mini}")
    cfg.write_text(f"tokenizer: gpt2\nlanguages: [eng_Latn]\ncorpus_path: {mini}\nmin_frequency: lots\n")
    assert fails(capsys, ["trim", "--config", str(cfg)], out) == \
        f"{cfg}: min_frequency must be an integer, got 'lots' (a string)"
    # mixture infer and eval
    infer = ["mixture", "infer", "--tokenizer-manifest", manifest]
    assert fails(capsys, [*infer, "--flores", trunc], out) == \
        f"FLORES Parquet {trunc}: not a readable Parquet file: no Parquet footer (truncated, or not a Parquet file)"
    msg = fails(capsys, [*infer, "--flores", mini, "--languages", "eng_Latn,deu_Latn"], out)
    assert msg.startswith(f"language(s) deu_Latn not in FLORES Parquet {mini} (splits dev, devtest) (3 languages)")
    msg = fails(capsys, [*infer, "--flores", mini, "--languages", "eng_Latn", "--tokenizers", "gpt2,gpt3"], out)
    assert msg.startswith(f"tokenizer manifest {manifest} lists no 'gpt3'; it lists gpt2, ")
    cfg.write_text(f"flores: {trunc}\nT: 1000\nlp_method: lazy\n")
    assert "not a readable Parquet file" in fails(capsys, [*infer, "--config", str(cfg)], out)
    cfg.write_text(f"flores: {mini}\nn: [5, x]\n")
    assert fails(capsys, ["mixture", "eval", "--config", str(cfg)], out) == \
        f"{cfg}: n[1] must be an integer, got 'x' (a string)"
    assert fails(capsys, ["mixture", "eval", "--flores", str(data / "notext.parquet")], out) == \
        f"FLORES Parquet {data / 'notext.parquet'}: no column(s) 'split', 'sentence_id', 'text'; it has lang, id, body"
    # grid run and status
    spec = tmp_path / "grid.yaml"
    spec.write_text(f"name: g\nlanguages: [eng_Latn, deu_Latn]\nalgorithms: [hf-bpe]\nvocab_sizes: [300]\n"
                    f"train_bytes: [10000]\ndata:\n  train: [{{kind: flores, path: {mini}, splits: [dev]}}]\n"
                    f"  eval: {{kind: parquet, path: {data / 'notext.parquet'}, text_column: body}}\n")
    cfg.write_text(f"spec: {spec}\nwave_size: 1.5\n")
    assert fails(capsys, ["grid", "run", "--config", str(cfg)], out) == \
        f"{cfg}: wave_size must be an integer, got 1.5 (a number)"
    msg = fails(capsys, ["grid", "run", "--spec", str(spec)], out)
    assert msg.startswith(f"language(s) deu_Latn not in grid g data.eval {data / 'notext.parquet'} (3 languages)")
    spec.write_text(spec.read_text().replace("text_column: body", "text_column: txt"))
    assert fails(capsys, ["grid", "run", "--spec", str(spec)], out) == \
        f"grid g data.eval (parquet) {data / 'notext.parquet'}: no column(s) 'txt'; it has lang, id, body"
    spec.write_text("name: g\nlanguages: [eng_Latn\n")
    for cmd in ("run", "status"):  # the file, line and problem, no excerpt of the file
        assert fails(capsys, ["grid", cmd, "--spec", str(spec)], out) == \
            f"{spec}: invalid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'"


def _cli(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """The real CLI in a fresh interpreter with its own PREFECT_HOME."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "flows.cli", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True)


def _no_prefect_db(tmp_path: Path) -> bool:
    home = tmp_path / "prefect_home"
    return not home.exists() or not any(home.glob("*.db*"))


def test_real_cli_fails_before_prefect_server_and_spark(data, tmp_path):
    out = tmp_path / "out"
    trunc = data / "trunc.parquet"
    p = _cli(["run", "--corpus-source", "flores-parquet", "--corpus-path", str(trunc), "--out", str(out)], tmp_path)
    assert p.returncode == 2
    assert p.stderr == f"{PREFIX}flores-parquet source {trunc}: not a readable Parquet file: no Parquet footer " \
                       "(truncated, or not a Parquet file)\n"
    assert not (out / "run_log").exists() and _no_prefect_db(tmp_path)
    cfg = tmp_path / "mix.yaml"
    cfg.write_text(f"tokenizer_manifest: {shared_path('tokenizers', 'MANIFEST.json')}\nflores: {data / 'mini.parquet'}"
                   "\nn_bootstrap: lots\n")
    p = _cli(["mixture", "infer", "--config", str(cfg), "--out", str(out)], tmp_path)
    assert (p.returncode, p.stderr) == (2, f"{PREFIX}{cfg}: n_bootstrap must be an integer, got 'lots' (a string)\n")
    assert not (out / "run_log").exists() and _no_prefect_db(tmp_path)


@pytest.mark.prefect  # the CLI in a subprocess: a temporary server, and ingest on Spark
@pytest.mark.spark
def test_error_inside_a_flow_is_one_line_without_traceback(tmp_path):
    """A bad tokenizer file is found only when the flow registers it (after ingest on Spark):
    Prefect's console shows no traceback of it, and the CLI prints it as one line."""
    folder = write_flores_folder(tmp_path / "flores", ["eng_Latn", "fra_Latn"], 5)
    bad = tmp_path / "bad.tokenizer.json"
    bad.write_text('{"model": {"type": "BPE", "vocab": 3}}')
    out = tmp_path / "out"
    p = _cli(["run", "--corpus-source", "flores-folder", "--corpus-path", str(folder), "--tokenizer-file", str(bad),
              "--out", str(out)], tmp_path)
    assert p.returncode == 2, p.stderr[-3000:]
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith(PREFIX)]
    assert len(errors) == 1 and str(bad) in errors[0], p.stderr[-3000:]
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert (out / "run_log").is_dir()  # the flow did start: this error could not be preflighted


def test_deploy_checks_every_deployments_parameters(tmp_path, capsys):
    """`tokatlas deploy` checks prefect.yaml (YAML, keys, types of each flow's params) before it needs a server."""
    from flows.deployments import PREFECT_FILE

    bad = tmp_path / "prefect.yaml"
    bad.write_text(PREFECT_FILE.read_text().replace("        T: 1000\n", "        T: lots\n"))
    assert main(["deploy", "--prefect-file", str(bad)]) == 2
    assert _one_line(capsys.readouterr().err) == \
        f"{bad}: deployments[3] (weekly-shared) parameters.params: T must be an integer, got 'lots' (a string)"
    bad.write_text(PREFECT_FILE.read_text().replace("        min_frequency: 1\n", "        min_freq: 1\n"))
    assert main(["deploy", "--prefect-file", str(bad)]) == 2
    assert _one_line(capsys.readouterr().err).startswith(
        f"{bad}: deployments[4] (weekly-gpt2-europe) parameters.params: unknown keys ['min_freq']; known: out, ")
    bad.write_text("deployments:\n  - name: x\n    entrypoint: [flows\n")
    assert main(["deploy", "--prefect-file", str(bad)]) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"{bad}: invalid YAML at line 4, column 1: ")
