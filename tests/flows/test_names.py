"""Hostile names never become paths: every command refuses them up front, through the real CLI,
with one line naming what was refused, and writes nothing anywhere (issue 18, probe 5).

Each refusal happens before Prefect or Spark start: the output root is never even created,
and a fresh interpreter that ran the refused commands has no Spark session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.cli import main
from schemas.errors import ConfigError
from schemas.names import check_name
from tokenizers_registry.registry import Registry

RULE = ("use 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit "
        "(no '/', '..', '=' or spaces)")

# (name, how the error shows it: its repr, control characters escaped)
HOSTILE = [
    ("../../x", "'../../x'"),
    ("../../../escaped_trim", "'../../../escaped_trim'"),
    ("a/b", "'a/b'"),
    ("..", "'..'"),
    ("x=y", "'x=y'"),
    ("new\nline", "'new\\nline'"),
    ("esc\x1b[31mred", "'esc\\x1b[31mred'"),
    ("/tmp/x", "'/tmp/x'"),
]
HOSTILE_IDS = ["dotdot-x", "escaped_trim", "slash", "dotdot", "equals", "newline", "esc", "absolute"]


@pytest.fixture(scope="module")
def gpt2() -> tuple[Path, str]:
    """The shared GPT-2 rank file and its pattern."""
    m = json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())
    e = next(e for e in m["tokenizers"] if e["name"] == "gpt2")
    return shared_path("tokenizers", e["file"]), e["pattern"]


@pytest.fixture
def area(tmp_path):
    """(inputs folder, output root nested four deep so that `..` escapes land in tmp_path, snapshot)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "a" / "b" / "c" / "out"
    return inputs, out, lambda: sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def _refused(capsys, argv: list[str], message: str) -> None:
    """The command exits 2 printing exactly `tokatlas: error: <message>` and nothing else."""
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.err == f"tokatlas: error: {message}\n"
    assert cap.out == ""


def _manifest(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"tokenizers": entries}))
    return path


# -- tokatlas tokenizers add --name ---------------------------------------------------------
@pytest.mark.parametrize(("name", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_tokenizers_add_refuses_hostile_name(area, gpt2, capsys, name, shown):
    inputs, out, snapshot = area
    before = snapshot()
    _refused(capsys, ["tokenizers", "add", str(gpt2[0]), f"--name={name}", "--pattern", gpt2[1], "--out", str(out)],
             f"invalid tokenizer name {shown}: {RULE}")
    assert snapshot() == before and not out.exists()


# -- tokatlas tokenizers add-manifest ---------------------------------------------------------
@pytest.mark.parametrize(("name", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_add_manifest_refuses_hostile_name(area, gpt2, capsys, name, shown):
    inputs, out, snapshot = area
    shutil.copyfile(gpt2[0], inputs / "gpt2.tiktoken")
    ok = {"name": "fine", "file": "gpt2.tiktoken", "format": "tiktoken-ranks", "pattern": gpt2[1]}
    m = _manifest(inputs / "MANIFEST.json", [ok, {**ok, "name": name}])
    before = snapshot()
    _refused(capsys, ["tokenizers", "add-manifest", str(m), "--out", str(out)],
             f"{m}: tokenizers[1]: invalid tokenizer name {shown}: {RULE}")
    assert snapshot() == before and not out.exists()  # the whole manifest is refused, the good entry too


def _escapes(tmp_path: Path, inputs: Path, gpt2: Path) -> dict[str, str]:
    """`file` values that leave the manifest's folder, each to a real tokenizer file."""
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copyfile(gpt2, outside / "gpt2.tiktoken")
    (inputs / "sub").mkdir()
    (inputs / "sub" / "link.tiktoken").symlink_to(outside / "gpt2.tiktoken")
    (inputs / "linkdir").symlink_to(outside)
    return {"dotdot": "../outside/gpt2.tiktoken", "dotdot-inner": "sub/../../outside/gpt2.tiktoken",
            "absolute": str(outside / "gpt2.tiktoken"), "symlink": "sub/link.tiktoken",
            "symlinked-dir": "linkdir/gpt2.tiktoken", "etc-passwd": "../../../../../../../../../../etc/passwd"}


@pytest.mark.parametrize("kind", ["dotdot", "dotdot-inner", "absolute", "symlink", "symlinked-dir", "etc-passwd"])
def test_add_manifest_refuses_files_outside_its_folder(area, tmp_path, gpt2, capsys, kind):
    inputs, out, snapshot = area
    file = _escapes(tmp_path, inputs, gpt2[0])[kind]
    m = _manifest(inputs / "MANIFEST.json", [{"name": "gpt2", "file": file, "format": "tiktoken-ranks",
                                              "pattern": gpt2[1]}])
    before = snapshot()
    # the refusal names the entry, the path as written and the folder; it never opens the file
    _refused(capsys, ["tokenizers", "add-manifest", str(m), "--out", str(out)],
             f"{m}: tokenizers[0] (gpt2): file {file!r} is outside the manifest's folder {inputs}")
    assert snapshot() == before and not out.exists()


def test_manifest_files_in_subfolders_are_read_and_outside_ones_only_when_allowed(area, tmp_path, gpt2, capsys):
    inputs, out, _ = area
    escapes = _escapes(tmp_path, inputs, gpt2[0])
    shutil.copyfile(gpt2[0], inputs / "sub" / "gpt2.tiktoken")
    entry = {"name": "gpt2", "format": "tiktoken-ranks", "pattern": gpt2[1]}
    m = _manifest(inputs / "MANIFEST.json", [{**entry, "file": "sub/gpt2.tiktoken"}])
    assert main(["tokenizers", "add-manifest", str(m), "--out", str(out)]) == 0
    (spec,) = Registry(out / "registry").specs()
    assert (spec.name, spec.source_path) == ("gpt2", str(inputs / "sub" / "gpt2.tiktoken"))
    n_ranks = len(gpt2[0].read_bytes().splitlines())  # one rank per line, no special tokens declared
    assert capsys.readouterr().out == f"{spec.tokenizer_id}  gpt2  tiktoken-ranks  bpe  vocab {n_ranks}\n"
    # the Python API trusts a manifest's outside files when asked to, symlinks included
    m2 = _manifest(inputs / "M2.json", [{**entry, "name": f"gpt2-{k}", "file": escapes[k], "pattern": p}
                                        for k, p in (("symlink", gpt2[1]), ("absolute", gpt2[1] + "|x"))])
    specs = Registry(tmp_path / "reg2").add_manifest(m2, allow_outside=True)
    assert [(s.name, s.sha256) for s in specs] == [("gpt2-symlink", spec.sha256), ("gpt2-absolute", spec.sha256)]



def test_cli_allow_manifest_outside_reads_the_outside_file(area, tmp_path, gpt2, capsys):
    inputs, out, _ = area
    file = _escapes(tmp_path, inputs, gpt2[0])["absolute"]
    m = _manifest(inputs / "MANIFEST.json", [{"name": "gpt2", "file": file, "format": "tiktoken-ranks",
                                              "pattern": gpt2[1]}])
    assert main(["tokenizers", "add-manifest", str(m), "--allow-manifest-outside", "--out", str(out)]) == 0
    (spec,) = Registry(out / "registry").specs()
    assert (spec.name, spec.source_path) == ("gpt2", file)

# -- tokatlas run --corpus-name ----------------------------------------------------------------
@pytest.mark.parametrize(("name", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_run_refuses_hostile_corpus_name(area, capsys, name, shown):
    _, out, snapshot = area
    before = snapshot()
    _refused(capsys, ["run", f"--corpus-name={name}", "--out", str(out)], f"invalid corpus name {shown}: {RULE}")
    assert snapshot() == before and not out.exists()


def test_run_refuses_a_manifest_with_a_hostile_name_before_prefect(area, gpt2, capsys):
    inputs, out, snapshot = area
    shutil.copyfile(gpt2[0], inputs / "gpt2.tiktoken")
    m = _manifest(inputs / "MANIFEST.json", [{"name": "../../../escaped_trim", "file": "gpt2.tiktoken",
                                              "format": "tiktoken-ranks", "pattern": gpt2[1]}])
    before = snapshot()
    _refused(capsys, ["run", "--tokenizer-manifest", str(m), "--out", str(out)],
             f"{m}: tokenizers[0]: invalid tokenizer name '../../../escaped_trim': {RULE}")
    assert snapshot() == before and not out.exists()


# -- tokatlas trim ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_trim_refuses_a_tokenizer_named_hostile_in_a_manifest(area, gpt2, capsys, name, shown):
    """The probe: `trim --tokenizer ../../../escaped_trim` with that name in a manifest wrote outside --out."""
    inputs, out, snapshot = area
    shutil.copyfile(gpt2[0], inputs / "gpt2.tiktoken")
    m = _manifest(inputs / "MANIFEST.json", [{"name": name, "file": "gpt2.tiktoken", "format": "tiktoken-ranks",
                                              "pattern": gpt2[1]}])
    before = snapshot()
    _refused(capsys, ["trim", f"--tokenizer={name}", "--tokenizer-manifest", str(m), "--languages", "eng_Latn",
                      "--out", str(out)], f"invalid tokenizer name {shown}: {RULE}")
    # another entry's name in the same manifest: the manifest is refused as a whole, still before Prefect
    m2 = _manifest(inputs / "M2.json", [{"name": "gpt2", "file": "gpt2.tiktoken", "format": "tiktoken-ranks",
                                         "pattern": gpt2[1]}, {"name": name, "file": "gpt2.tiktoken"}])
    _refused(capsys, ["trim", "--tokenizer=gpt2", "--tokenizer-manifest", str(m2), "--languages", "eng_Latn",
                      "--out", str(out)], f"{m2}: tokenizers[1]: invalid tokenizer name {shown}: {RULE}")
    assert set(snapshot()) - set(before) == {"in/M2.json"} and not out.exists()
    _refused(capsys, ["trim", "--tokenizer=gpt2", f"--corpus-name={name}", "--languages", "eng_Latn",
                      "--out", str(out)], f"invalid corpus name {shown}: {RULE}")


def test_trim_job_refuses_a_hostile_name_already_in_a_registry(tmp_path, gpt2):
    """A registry written before names were checked: the trim job refuses the name before writing."""
    from jobs.trim import TrimRequest, trim_tokenizer

    out = tmp_path / "a" / "b" / "out"
    reg = Registry(out / "registry")
    spec = reg.add(gpt2[0], name="gpt2", params={"pattern": gpt2[1]})
    reg._write([type(spec)(**{**spec.to_row(), "name": "../../../escaped_trim"})])
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as e:
        trim_tokenizer(out, TrimRequest(tokenizer=spec.tokenizer_id, languages=["eng_Latn"]))
    assert str(e.value) == f"invalid tokenizer name '../../../escaped_trim': {RULE}"
    assert sorted(tmp_path.rglob("*")) == before


def test_inside_keeps_derived_paths_under_their_root(tmp_path):
    from jobs.store.layout import inside

    root = tmp_path / "out" / "trim"
    root.mkdir(parents=True)
    assert inside(root, root / "gpt2" / "run") == (root / "gpt2" / "run").resolve()
    for bad in (root / ".." / "x", root / "gpt2" / ".." / ".." / "x", Path("/tmp/x"), root / "..", root):
        with pytest.raises(ConfigError) as e:
            inside(root, bad)
        assert str(e.value) == f"path {bad} is not under {root}"
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="is not under"):
        inside(root, root / "link" / "x")


# -- tokatlas grid --------------------------------------------------------------------------------
def _grid_spec(folder: Path, name: str, languages: list[str]) -> Path:
    for split in ("train", "eval"):
        pq.write_table(pa.table({"lang": ["eng_Latn"], "split": [split], "sentence_id": [0], "text": ["a b"]}),
                       folder / f"{split}.parquet")
    spec = {"name": name, "languages": languages, "algorithms": ["hf-bpe"], "vocab_sizes": [300],
            "train_bytes": [1000], "data": {"train": [{"kind": "parquet", "path": "train.parquet"}],
                                            "eval": {"kind": "parquet", "path": "eval.parquet"}}}
    path = folder / "grid.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


@pytest.mark.parametrize(("name", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_grid_refuses_hostile_spec_name(area, capsys, name, shown):
    inputs, out, snapshot = area
    spec = _grid_spec(inputs, name, ["eng_Latn"])
    before = snapshot()
    for cmd in ("run", "status"):
        _refused(capsys, ["grid", cmd, "--spec", str(spec), "--out", str(out)],
                 f"{spec}: grid spec name: invalid name {shown}: {RULE}")
    assert snapshot() == before and not out.exists()


@pytest.mark.parametrize(("lang", "shown"), [*HOSTILE, ("eng_Latn\n", "'eng_Latn\\n'")],
                         ids=[*HOSTILE_IDS, "code-newline"])
def test_grid_refuses_hostile_language(area, capsys, lang, shown):
    inputs, out, snapshot = area
    spec = _grid_spec(inputs, "demo", ["eng_Latn", lang])
    before = snapshot()
    _refused(capsys, ["grid", "run", "--spec", str(spec), "--out", str(out)],
             f"{spec}: grid spec languages[1]: {shown} is not an iso639_3_Script code (e.g. eng_Latn)")
    assert snapshot() == before and not out.exists()


# -- tokatlas mixture -----------------------------------------------------------------------------
@pytest.mark.parametrize(("lang", "shown"), HOSTILE, ids=HOSTILE_IDS)
def test_mixture_refuses_hostile_categories(area, gpt2, capsys, lang, shown):
    inputs, out, snapshot = area
    shutil.copyfile(gpt2[0], inputs / "gpt2.tiktoken")
    m = _manifest(inputs / "MANIFEST.json", [{"name": "gpt2", "file": "gpt2.tiktoken", "format": "tiktoken-ranks",
                                              "pattern": gpt2[1]}])
    flores = inputs / "flores.parquet"
    pq.write_table(pa.table({"lang": [lang], "split": ["dev"], "sentence_id": [0], "text": ["a b"]}), flores)
    before = snapshot()
    _refused(capsys, ["mixture", "infer", "--tokenizer-manifest", str(m), "--flores", str(flores), "--languages",
                      f"eng_Latn,{lang}", "--out", str(out)],
             f"{shown} is not an iso639_3_Script language code (e.g. eng_Latn, zho_Hans)")
    assert snapshot() == before and not out.exists()


def test_mixture_sample_paths_refuse_hostile_categories(tmp_path):
    from jobs.corpus.samples import write_sample

    for name, shown in HOSTILE:
        with pytest.raises(ConfigError) as e:
            write_sample(tmp_path / "out", name, ["text"])
        assert str(e.value) == f"invalid mixture category {shown}: {RULE}"
    assert list(tmp_path.iterdir()) == []


# -- the rule, for every name ------------------------------------------------------------------
NAMES = st.one_of(
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+=/-]{0,12}", fullmatch=True),
    st.sampled_from([n for n, _ in HOSTILE] + ["a" * 128, "a" * 129, "a..b", "a.b", ".a", "-a", "a b", "a\x00"]),
)


def _accepts(name: str) -> bool:
    try:
        return check_name(name, "name") == name
    except ConfigError as e:
        assert str(e) == f"invalid name {_shown(name)}: {RULE}"
        return False


def _shown(name: str) -> str:
    from schemas.names import printable

    return printable(repr(name))


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_check_name_accepts_only_direct_children(name):
    root = Path(tempfile.gettempdir()).resolve() / "tokatlas-root"
    if _accepts(name):
        target = Path(root, name).resolve()
        assert target.parent == root and target.name == name
        assert "/" not in name and ".." not in name and "=" not in name and name.isprintable()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES)
def test_registry_and_cli_refuse_exactly_what_check_name_refuses(gpt2, capsys, name):
    """`tokenizers add --name`, `tokenizers add-manifest` and `Registry.add` agree with check_name."""
    ok = _accepts(name)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        shutil.copyfile(gpt2[0], d / "gpt2.tiktoken")
        m = _manifest(d / "MANIFEST.json", [{"name": name, "file": "gpt2.tiktoken", "format": "tiktoken-ranks",
                                             "pattern": gpt2[1]}])
        message = f"invalid tokenizer name {_shown(name)}: {RULE}"
        rc = main(["tokenizers", "add", str(d / "gpt2.tiktoken"), f"--name={name}", "--pattern", gpt2[1],
                   "--out", str(d / "o1")])
        err = capsys.readouterr().err
        assert (rc, err) == ((0, "") if ok else (2, f"tokatlas: error: {message}\n"))
        rc = main(["tokenizers", "add-manifest", str(m), "--out", str(d / "o2")])
        err = capsys.readouterr().err
        assert (rc, err) == ((0, "") if ok else (2, f"tokatlas: error: {m}: tokenizers[0]: {message}\n"))
        for o in ("o1", "o2"):
            assert [s.name for s in Registry(d / o / "registry").specs()] == ([name] if ok else [])
        if not ok:
            with pytest.raises(ConfigError) as e:
                Registry(d / "o3").add(d / "gpt2.tiktoken", name=name, params={"pattern": gpt2[1]})
            assert str(e.value) == message
            assert sorted(p.name for p in d.iterdir()) == ["MANIFEST.json", "gpt2.tiktoken"]


# -- fail fast: no Spark, no Prefect ----------------------------------------------------------
def test_refusals_start_neither_spark_nor_prefect(tmp_path, gpt2):
    """In a fresh interpreter: each refused command returns 2, and no SparkSession, SparkContext or
    Prefect run ever existed (a Prefect flow run would have written the output root's run_log)."""
    shutil.copyfile(gpt2[0], tmp_path / "gpt2.tiktoken")
    m = _manifest(tmp_path / "MANIFEST.json", [{"name": "../x", "file": "gpt2.tiktoken"}])
    out = tmp_path / "out"
    script = f"""
import json, sys
from flows.cli import main
calls = [
    ["run", "--corpus-name=../../x", "--out", {str(out)!r}],
    ["run", "--tokenizer-manifest", {str(m)!r}, "--out", {str(out)!r}],
    ["trim", "--tokenizer=../../../escaped_trim", "--languages", "eng_Latn", "--out", {str(out)!r}],
    ["mixture", "infer", "--tokenizer-manifest", {str(m)!r}, "--flores", {str(m)!r}, "--out", {str(out)!r}],
]
rcs = [main(c) for c in calls]
from pyspark import SparkContext
from pyspark.sql import SparkSession
print(json.dumps({{"rcs": rcs, "session": SparkSession.getActiveSession() is not None,
                  "context": SparkContext._active_spark_context is not None}}))
"""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home")}
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1]) == {"rcs": [2, 2, 2, 2], "session": False, "context": False}
    assert len(r.stderr.splitlines()) == 4 and all(x.startswith("tokatlas: error: ") for x in r.stderr.splitlines())
    assert not out.exists()


def test_language_codes_are_whole_strings():
    """A code with a trailing newline was a valid language code (regex `$`), hence a path part."""
    from schemas.languages import is_lang_code

    assert is_lang_code("eng_Latn")
    assert [c for c in ("eng_Latn\n", "eng_Latn\n\n", " eng_Latn", "eng_Latn/..", 5, None) if is_lang_code(c)] == []
