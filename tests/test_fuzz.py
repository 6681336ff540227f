"""Bad input and security: property-based tests over corpus bytes and tokenizer files.

Corpus text: the pure-Python line reader and JSONL parser get many examples; the real
ingest on Spark gets a few, each asserting that every input row ends up exactly once in
the corpus or in the rejects with a reason. Tokenizer files: truncated, garbage and
oversized-declaration files fail with a TokenizerFileError naming the file, whatever
the bytes; tampered and escaping artifacts are refused.
"""

from __future__ import annotations

import ast
import base64
import json
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs import corpus_store, readers
from jobs.ingest import ingest
from tokenizers_registry.base import TokenizerFileError
from tokenizers_registry.formats import MAX_VOCAB_SIZE, load_format
from tokenizers_registry.registry import Registry, load_tokenizer, sha256_file

# -- corpus lines ------------------------------------------------------------------------------
NASTY_CHARS = st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\u200b", "\u202e", "\ufeff", "\ufffd",
                               "\u0301", "\r", "\t", "\u2028", "\U0001f600", "ß", "ع", "中", "ф", "क्ष"])
TEXT = st.lists(st.one_of(st.characters(codec="utf-8"), NASTY_CHARS), max_size=40).map("".join)
LINE = st.one_of(
    TEXT.map(lambda t: t.replace("\n", " ").encode("utf-8")),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),  # mostly invalid UTF-8
    st.just(b""), st.just(b"\xff\xfe"), st.just(b"\xed\xa0\x80"),  # empty, BOM-ish, encoded surrogate
)
CONTENT = st.lists(LINE, max_size=30).flatmap(
    lambda lines: st.sampled_from([b"\n", b"\r\n"]).flatmap(
        lambda eol: st.booleans().map(lambda final: eol.join(lines) + (eol if final and lines else b""))))


def _expected_lines(content: bytes) -> list[bytes]:
    """Independent count of the lines a file holds (LF-separated, framing CR/BOM removed)."""
    if content.startswith(readers.BOM):
        content = content[3:]
    if not content:
        return []
    parts = content.split(b"\n")
    if content.endswith(b"\n"):
        parts = parts[:-1]
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


@settings(max_examples=300, deadline=None)
@given(CONTENT, st.booleans())
@example(b"", False)
@example(b"\x00\x00\n\x01\n", False)
@example(("x" * (1 << 20)).encode() + b"\n" + b"\xff" * 10, False)  # a 1 MB line, then an invalid one
def test_line_reader_keeps_every_line_once_with_a_reason_when_bad(content, bom):
    data = (readers.BOM if bom else b"") + content
    spec = readers.LineFile("/data/eng_Latn.txt", "eng_Latn", "all")
    rows = [r for b in readers._lines_to_raw(data, spec, "c") for r in b.to_pylist()]
    lines = _expected_lines(data)
    assert [r["row"] for r in rows] == list(range(len(lines)))
    for r, line in zip(rows, lines, strict=True):
        assert r["source"] == "/data/eng_Latn.txt" and r["lang_raw"] == "eng_Latn"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            assert r["error_reason"] == "invalid_utf8" and "invalid UTF-8 at byte" in r["error"]
            assert r["text"] == line.decode("utf-8", "backslashreplace")  # quarantined text shows the bytes
        else:
            assert r["error_reason"] is None and r["text"] == text  # valid text is never altered


JSON_LINE = st.one_of(
    st.fixed_dictionaries({"lang": st.sampled_from(["eng_Latn", "fra", "xx", 3]), "id": st.one_of(
        st.integers(-5, 10**6), st.text(max_size=3), st.none(), st.booleans()), "text": st.one_of(TEXT, st.none(),
                                                                                              st.integers())},
                          optional={"split": st.sampled_from(["dev", 1])}).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode()),
    LINE, st.just(b"[1, 2]"), st.just(b"{\"lang\": \"eng_Latn\"}"), st.just(b"   "))


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON_LINE, max_size=25))
def test_jsonl_parser_accounts_for_every_line(lines):
    data = b"\n".join(lines)
    rows = [r for b in readers._jsonl_to_raw(data, "/d/x.jsonl", "c", "lang", "id", "text", None, "all")
            for b in [b] for r in b.to_pylist()]
    expected = _expected_lines(data)
    assert [r["row"] for r in rows] == list(range(len(expected)))
    for r in rows:
        assert r["source"] == "/d/x.jsonl"
        if r["error_reason"] is None:
            assert isinstance(r["sentence_id"], int) and r["lang_raw"] is not None
        else:
            assert r["error_reason"] in ("invalid_utf8", "bad_record") and r["error"]


# -- the real ingest on Spark: nothing lost ------------------------------------------------------
LANG_FILES = st.fixed_dictionaries({lang: st.lists(LINE, max_size=12) for lang in ("eng_Latn", "fra_Latn")},
                                   optional={"zzz_Qaaa": st.lists(LINE, max_size=4)})


def _check_ingest_accounts_for_every_row(spark, files: dict[str, list[bytes]]):
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "src", Path(d) / "out"
        src.mkdir()
        for lang, lines in files.items():
            (src / f"{lang}.txt").write_bytes(b"".join(line + b"\n" for line in lines))
        s = ingest(spark, "text", src, "fuzz", out)
        n_in = sum(len(v) for v in files.values())
        assert s.rows_in == n_in and s.rows_kept + s.rows_rejected == n_in
        rejects = pq.read_table(corpus_store.rejects_file(out, "fuzz")).to_pylist()
        assert len(rejects) == s.rows_rejected and all(r["reason"] and r["detail"] for r in rejects)
        for lang, lines in files.items():
            path = str((src / f"{lang}.txt").resolve())
            rejected = sorted(r["row"] for r in rejects if r["source"] == path)
            kept = (corpus_store.read_language(out, "fuzz", lang)["sentence_id"].to_pylist()
                    if lang in s.languages else [])
            assert sorted(kept + rejected) == list(range(len(lines))), lang  # each row exactly once
            for sid in kept:
                assert lines[sid].decode("utf-8").strip()  # kept rows are valid, non-empty text


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(LANG_FILES)
def test_ingest_on_spark_loses_nothing(spark, files):
    _check_ingest_accounts_for_every_row(spark, files)


def test_ingest_on_spark_extreme_files(spark):
    """Empty files, a 1 MB line, NUL and control characters, an all-invalid file."""
    big = ("ab\u0301c " * (1 << 18)).encode()[: 1 << 20]
    _check_ingest_accounts_for_every_row(spark, {
        "eng_Latn": [b"Hello\x00world", big, b"\x1b[31mred\x1b[0m", b"", b"ok"],
        "fra_Latn": [b"Bonjour\x00", b"x" * 10, b"\xff\xfe\xfd", b"   ", b"ok"],
        "deu_Latn": [],
        "ell_Grek": [b"\xc3", b"\xff"],
    })


# -- tokenizer files: truncated, garbage, oversized ---------------------------------------------
ARTIFACTS = {  # format -> (shared file, loader parameters)
    "hf-tokenizer-json": ("minilm_wordpiece.tokenizer.json", {}),
    "sentencepiece-model": ("mistral_v1.model", {}),
    "tiktoken-ranks": ("gpt2.tiktoken", {"pattern": r"\S+|\s+"}),
    "tekken-json": ("mistral_tekken_240718.json", {}),
    "clip-merges": ("clip_bpe_simple_vocab_16e6.txt.gz", {}),
}


@pytest.fixture(scope="module")
def artifact_bytes():
    return {fmt: shared_path("tokenizers", name).read_bytes() for fmt, (name, _) in ARTIFACTS.items()}


def _load_or_clear_error(fmt: str, data: bytes, where: Path):
    """Load `data` as `fmt`: success or a TokenizerFileError naming the file, nothing else."""
    path = where / f"fuzzed-{fmt}{''.join(Path(ARTIFACTS[fmt][0]).suffixes)}"
    path.write_bytes(data)
    try:
        tok = load_format(fmt, path, ARTIFACTS[fmt][1])
    except TokenizerFileError as e:
        assert str(path) in str(e)
        return None
    assert 0 < tok.vocab_size <= MAX_VOCAB_SIZE
    tok.encode_batch(["héllo wörld 中文 \x00"])  # a file that loads must also encode
    return tok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(ARTIFACTS)), st.floats(0, 0.999))
@example("sentencepiece-model", 0.0)
@example("tekken-json", 0.5)
def test_truncated_tokenizer_files_fail_naming_the_file(artifact_bytes, tmp_path, fmt, frac):
    data = artifact_bytes[fmt]
    _load_or_clear_error(fmt, data[: int(len(data) * frac)], tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(ARTIFACTS)), st.binary(max_size=2000))
@example("hf-tokenizer-json", b'{"model": {"type": "BPE", "vocab": {"a": 4294967294}, "merges": []}}')
@example("tekken-json", b'{"config": {"default_vocab_size": 1000000000000, "default_num_special_tokens": 1000},'
                        b' "vocab": []}')
def test_garbage_tokenizer_files_fail_naming_the_file(artifact_bytes, tmp_path, fmt, data):
    assert _load_or_clear_error(fmt, data, tmp_path) is None


def test_huge_declared_ids_are_refused(artifact_bytes, tmp_path):
    """An id near 2**32 would make per-id arrays (token_freqs) allocate tens of gigabytes."""
    doc = json.loads(artifact_bytes["hf-tokenizer-json"])
    first = next(iter(doc["model"]["vocab"]))
    doc["model"]["vocab"][first] = 2**32 - 2
    path = tmp_path / "huge.tokenizer.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TokenizerFileError, match=r"huge.tokenizer.json: declares 4294967295 token ids"):
        load_format("hf-tokenizer-json", path)
    ranks = artifact_bytes["tiktoken-ranks"] + base64.b64encode(b"\x00zz\x00") + b" 99999999999\n"
    assert _load_or_clear_error("tiktoken-ranks", ranks, tmp_path) is None
    ranks = artifact_bytes["tiktoken-ranks"] + base64.b64encode(b"\x00zz\x00") + b" 20000000\n"
    assert _load_or_clear_error("tiktoken-ranks", ranks, tmp_path) is None


# -- artifact security ---------------------------------------------------------------------------
@pytest.fixture
def registered(tmp_path):
    from tokenizers_registry import registry as reg_mod

    reg_mod._CACHE.clear()  # a cached tokenizer would skip the checks under test
    reg = Registry(tmp_path / "registry")
    spec = reg.add(shared_path("tokenizers", "minilm_wordpiece.tokenizer.json"), name="minilm")
    yield reg, spec
    reg_mod._CACHE.clear()


def test_tampered_artifact_names_the_file_and_both_hashes(registered):
    reg, spec = registered
    artifact = reg.artifact_path(spec)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped after registration
    artifact.write_bytes(bytes(data))
    now = sha256_file(artifact)
    with pytest.raises(TokenizerFileError) as e:
        load_tokenizer(spec, reg.root)
    msg = str(e.value)
    assert str(artifact) in msg and spec.sha256 in msg and now in msg and now != spec.sha256


@pytest.mark.parametrize("uri", ["../outside.tokenizer.json", "artifacts/../../outside.tokenizer.json",
                                 "/etc/passwd", "artifacts/ab/../../../outside.tokenizer.json"])
def test_registry_entry_outside_the_store_is_refused(registered, uri):
    reg, spec = registered
    shutil.copyfile(reg.artifact_path(spec), reg.root.parent / "outside.tokenizer.json")
    with pytest.raises(TokenizerFileError, match="escapes|absolute"):
        load_tokenizer({**spec.to_row(), "artifact_uri": uri}, reg.root)


def test_symlinks_escaping_the_store_are_refused(registered, tmp_path):
    reg, spec = registered
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copyfile(reg.artifact_path(spec), outside / "tok.json")
    (reg.root / "artifacts" / "link").symlink_to(outside)  # a folder link inside the store
    with pytest.raises(TokenizerFileError, match="escapes"):
        load_tokenizer({**spec.to_row(), "artifact_uri": "artifacts/link/tok.json"}, reg.root)
    artifact = reg.artifact_path(spec)  # the artifact itself replaced by a link to an identical file outside
    artifact.unlink()
    artifact.symlink_to(outside / "tok.json")
    with pytest.raises(TokenizerFileError, match="escapes"):
        load_tokenizer(spec, reg.root)


def test_loaders_never_unpickle_or_execute_code():
    """Tokenizer files are data: no loader imports pickle/marshal or calls eval/exec or trust_remote_code."""
    banned_modules = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "torch"}
    for f in sorted((ROOT / "tokenizers_registry").rglob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not {(n or "").split(".")[0] for n in names} & banned_modules, (f, ast.dump(node))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "__import__"), f
            if isinstance(node, ast.keyword):
                assert node.arg != "trust_remote_code", f
                if node.arg == "allow_pickle":
                    assert isinstance(node.value, ast.Constant) and node.value.value is False, f
