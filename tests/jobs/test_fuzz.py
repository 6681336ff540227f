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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs.corpus import readers
from jobs.ingest import ingest
from jobs.store import corpus_store, layout
from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.formats import MAX_VOCAB_SIZE, load_format
from tokenizers_registry.registry import Registry, load_tokenizer
from tokenizers_registry.store import sha256_file

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


SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
JTEXT = st.lists(st.one_of(st.characters(codec="utf-8"), NASTY_CHARS, SURROGATES), max_size=20).map("".join)
JID = st.one_of(st.integers(-5, 10**6), st.integers(-(2**70), 2**70), st.sampled_from([2**63 - 1, 2**63, -(2**63),
                -(2**63) - 1]), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 3.0, -0.0, 1e19]),
                st.text(max_size=3), st.sampled_from(["7", "-7", "007", "1.5", " 7", "²", "٣", "9" * 25]), st.none(),
                st.booleans(), st.just([1]), st.just({"a": 1}))
JSON_RECORD = st.fixed_dictionaries(
    {"lang": st.one_of(st.sampled_from(["eng_Latn", "fra", "xx", 3]), JTEXT), "id": JID,
     "text": st.one_of(JTEXT, st.none(), st.integers(), st.floats(), st.booleans(), st.just({"a": "\ud800"}),
                       st.just([1, "x"]))},
    optional={"split": st.sampled_from(["dev", 1])})
JSON_LINE = st.one_of(
    st.tuples(JSON_RECORD, st.sampled_from(["ascii", "utf-8", "surrogatepass"])).map(
        lambda r: json.dumps(r[0], ensure_ascii=r[1] == "ascii").encode("utf-8", "surrogatepass")),
    LINE, st.just(b"[1, 2]"), st.just(b"{\"lang\": \"eng_Latn\"}"), st.just(b"   "))


def _utf8(v) -> bool:
    """Whether a JSON value's strings can be encoded as UTF-8 (no lone surrogate)."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _expected_jsonl_row(line: bytes, split_col: str | None) -> tuple:
    """(reason, lang_raw, sentence_id, text) of one JSONL line by the rules in docs/ingest.md,
    derived here from the bytes (reason None: the row goes on to validation)."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError:
        return ("invalid_utf8",)
    try:
        rec = json.loads(decoded) if decoded.strip() else None
    except ValueError:
        rec = None
    if not isinstance(rec, dict) or not {"lang", "id", "text"} <= rec.keys():
        return ("bad_record",)
    lang, sid, text = rec["lang"], rec["id"], rec["text"]
    split = rec.get("split") if split_col else "all"
    if any(isinstance(v, str) and not _utf8(v) for v in (lang, split, text, sid)):
        return ("invalid_utf8",)
    integral_float = type(sid) is float and sid == sid and abs(sid) != float("inf") and sid == int(sid)
    digits = type(sid) is str and sid not in ("", "-") and set(sid.removeprefix("-")) <= set("0123456789")
    if sid is None or type(sid) is int or integral_float or digits:  # 3.0 is 3, "007" is 7; not True, 0.5, "²"
        n = None if sid is None else int(sid)  # a null id is left to the validation rules (bad_record there)
    else:
        return ("bad_record",)
    if n is not None and not -(2**63) <= n < 2**63 or not (text is None or type(text) is str) or not (
            split is None or type(split) is str):
        return ("bad_record",)
    return (None, lang if type(lang) is str else str(lang), n, text)


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON_LINE, max_size=25), st.sampled_from([None, "split"]))
@example([b'{"lang": "eng_Latn", "id": 3, "text": "lone \\ud800 surrogate"}',
          b'{"lang": "eng_Latn", "id": 18446744073709551617, "text": "x"}',
          b'{"lang": "eng_Latn", "id": 0.5, "text": "x"}', b'{"lang": "eng_Latn", "id": 3.0, "text": {"a": 1}}'], None)
def test_jsonl_parser_accounts_for_every_line(lines, split_col):
    data = b"\n".join(lines)
    rows = [r for b in readers._jsonl_to_raw(data, "/d/x.jsonl", "c", "lang", "id", "text", split_col, "all")
            for r in b.to_pylist()]
    expected = _expected_lines(data)
    assert [r["row"] for r in rows] == list(range(len(expected)))
    for r, line in zip(rows, expected, strict=True):
        assert r["source"] == "/d/x.jsonl"
        want = _expected_jsonl_row(line, split_col)
        assert r["error_reason"] == want[0], (line, r)
        if want[0] is None:
            assert (r["lang_raw"], r["sentence_id"], r["text"]) == want[1:], line
        else:
            assert r["error"]
        for v in (r["lang_raw"], r["split"], r["text"], r["error"]):
            assert v is None or _utf8(v)  # every string written is valid UTF-8


# -- the real ingest on Spark: nothing lost ------------------------------------------------------
LANG_FILES = st.fixed_dictionaries({lang: st.lists(LINE, max_size=12) for lang in ("eng_Latn", "fra_Latn")},
                                   optional={"zzz_Qaaa": st.lists(LINE, max_size=4)})


def _check_ingest_accounts_for_every_row(spark, files: dict[str, list[bytes]]):
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "src", Path(d) / "out"
        src.mkdir()
        for lang, lines in files.items():
            (src / f"{lang}.txt").write_bytes(b"".join(line + b"\n" for line in lines))
        n_in = sum(len(v) for v in files.values())
        try:
            s = ingest(spark, "text", src, "fuzz", out)
        except ConfigError as e:  # nothing kept: then every row must be in the rejects
            assert str(e) == (f"corpus 'fuzz': every row was quarantined (see rejects: "
                              f"{layout.rejects_file(out, 'fuzz')})" if n_in else
                              f"corpus 'fuzz': {src} holds no rows")
            languages, rows_rejected = [], n_in
        else:
            assert s.rows_in == n_in and s.rows_kept + s.rows_rejected == n_in and s.rows_kept
            languages, rows_rejected = s.languages, s.rows_rejected
        rejects = pq.read_table(layout.rejects_file(out, "fuzz")).to_pylist()
        assert len(rejects) == rows_rejected and all(r["reason"] and r["detail"] for r in rejects)
        for lang, lines in files.items():
            path = str((src / f"{lang}.txt").resolve())
            rejected = sorted(r["row"] for r in rejects if r["source"] == path)
            kept = (corpus_store.read_language(out, "fuzz", lang)["sentence_id"].to_pylist()
                    if lang in languages else [])
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


# -- every table source on Spark: wrong types, invalid UTF-8, out-of-range ids ------------------
INT64 = 2**63
ID_VALUES = {  # Arrow type of the id column -> values it may hold
    "int64": st.one_of(st.integers(-3, 6), st.sampled_from([-INT64, INT64 - 1])),
    "float64": st.sampled_from([0.0, 1.0, 2.0, 0.5, -1.0, 2.5, 1e19, float("nan"), float("inf")]),
    "uint64": st.sampled_from([0, 1, 2, 3, INT64, 2**64 - 1]),
    "string": st.sampled_from(["0", "1", "2", "-1", "007", "1.5", "x", "²", "", "9" * 20]),
    "bool": st.booleans(),
}
TEXT_BYTES = st.sampled_from([b"a", b"b c", "中文".encode(), b"caf\xe9", b"\xed\xa0\x80", b"\xff", b" ", b"", None])
TEXT_VALUES = {"string": TEXT_BYTES, "binary": TEXT_BYTES, "int64": st.one_of(st.integers(-5, 5), st.none())}
TABLE = st.sampled_from(sorted(ID_VALUES)).flatmap(lambda it: st.sampled_from(sorted(TEXT_VALUES)).flatmap(
    lambda tt: st.tuples(st.just(it), st.just(tt), st.lists(st.tuples(ID_VALUES[it], TEXT_VALUES[tt]),
                                                             min_size=1, max_size=6))))


def _expected_table_outcome(id_type, text_type, rows, offset=0):
    """({sentence_id: text} kept, {row: reason} rejected), derived from the values by the
    documented rules: invalid_utf8, then bad_record (id, then text), empty_text, duplicate_id."""
    kept, rejected = {}, {}
    for i, (sid, text) in enumerate(rows):
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                rejected[i] = "invalid_utf8"
                continue
        ok_id = id_type in ("int64", "uint64") or (id_type == "float64" and sid == sid and abs(sid) != float("inf")
                                                   and sid == int(sid)) or (
            id_type == "string" and sid not in ("", "-") and set(sid.removeprefix("-")) <= set("0123456789"))
        n = int(sid) - offset if ok_id else None
        if not ok_id or not -INT64 <= n < INT64 or text_type == "int64" and text is not None:
            rejected[i] = "bad_record"
        elif text is None or not text.strip(" "):
            rejected[i] = "empty_text"
        elif n in kept:
            rejected[i] = "duplicate_id"
        else:
            kept[n] = text
    return kept, rejected


def _write_table_source(kind, root: Path, id_type, text_type, rows):
    """The rows as a `kind` source under root; returns (path, corpus name, id offset)."""
    n = len(rows)
    ids = pa.array([r[0] for r in rows], {"int64": pa.int64(), "float64": pa.float64(), "uint64": pa.uint64(),
                                          "string": pa.string(), "bool": pa.bool_()}[id_type])
    raw = [r[1] for r in rows]
    texts = pa.array(raw, pa.int64()) if text_type == "int64" else pa.array(raw, pa.binary())
    if text_type == "string":  # a string column holding the bytes unvalidated, as a careless writer leaves it
        texts = pa.Array.from_buffers(pa.string(), n, texts.buffers(), null_count=texts.null_count)
    if kind == "jsonl":
        def value(v):
            if isinstance(v, bytes):  # JSON cannot hold invalid bytes: a lone surrogate stands in for them
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    return "caf\udce9"
            return v
        path = root / "c.jsonl"
        path.write_bytes(b"".join(json.dumps({"lang": "eng_Latn", "id": value(i), "text": value(t)}).encode()
                                  + b"\n" for i, t in rows))
        return path, "t", 0
    cols = {"parquet": {"lang": ["eng_Latn"] * n, "id": ids, "text": texts},
            "flores-parquet": {"lang": ["eng_Latn"] * n, "split": ["dev"] * n, "sentence_id": ids, "text": texts},
            "udhr": {"key": ["eng"] * n, "iso639_3": ["eng"] * n, "script": ["Latn"] * n, "article_no": ids,
                     "text": texts},
            "flores-plus-hub": {"id": ids, "iso_639_3": ["eng"] * n, "iso_15924": ["Latn"] * n, "text": texts}}[kind]
    path = root / "dev" / "eng_Latn.parquet" if kind == "flores-plus-hub" else root / "t.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return (root if kind == "flores-plus-hub" else path), "t", 1 if kind == "flores-plus-hub" else 0


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "flores-parquet", "udhr", "flores-plus-hub"])
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(table=TABLE)
def test_table_sources_quarantine_bad_values_on_spark(spark, kind, table):
    id_type, text_type, rows = table
    if kind == "jsonl":  # JSON has no uint64 or bytes: the same values as numbers and strings
        text_type = "int64" if text_type == "int64" else "string"
    kept, rejected = _expected_table_outcome(id_type, text_type, rows, 1 if kind == "flores-plus-hub" else 0)
    with tempfile.TemporaryDirectory() as d:
        path, corpus, _ = _write_table_source(kind, Path(d), id_type, text_type, rows)
        out = Path(d) / "out"
        if kept:
            s = ingest(spark, kind, path, corpus, out)
            assert (s.rows_in, s.rows_kept, s.rows_rejected) == (len(rows), len(kept), len(rejected))
            t = corpus_store.read_language(out, corpus, "eng_Latn")
            assert dict(zip(t["sentence_id"].to_pylist(), t["text"].to_pylist(), strict=True)) == kept
        else:
            with pytest.raises(ConfigError, match="every row was quarantined"):
                ingest(spark, kind, path, corpus, out)
        got = {r["row"]: r["reason"] for r in pq.read_table(layout.rejects_file(out, corpus)).to_pylist()}
        assert got == rejected


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
    cut = data[: int(len(data) * frac)]
    tok = _load_or_clear_error(fmt, cut, tmp_path)
    if fmt == "tiktoken-ranks" and data[len(cut) - 1:len(cut) + 1].count(b"\n"):  # cut at a line end
        assert tok is not None and tok.vocab_size == len(cut.splitlines())  # whole lines: a smaller, valid file
    else:
        assert tok is None  # a truncated file that loads is a failure, not a pass


def test_tiktoken_ranks_cut_at_a_line_end_keep_exactly_those_lines(artifact_bytes, tmp_path):
    data = artifact_bytes["tiktoken-ranks"]
    cut = data[: data.index(b"\n", len(data) // 3) + 1]
    tok = _load_or_clear_error("tiktoken-ranks", cut, tmp_path)
    assert tok is not None and tok.vocab_size == cut.count(b"\n")


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
