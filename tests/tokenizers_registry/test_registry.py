"""The tokenizer registry on the real tokenizer files: ids, idempotence, integrity, schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import shared_path

import schemas
from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry import registry as registry_mod
from tokenizers_registry.registry import Registry, load_tokenizer, resolve_under, tokenizer_id_for


@pytest.fixture(scope="module")
def manifest() -> Path:
    return shared_path("tokenizers", "MANIFEST.json")


@pytest.fixture(scope="module")
def entries(manifest) -> list[dict]:
    return json.loads(manifest.read_text())["tokenizers"]


@pytest.fixture(scope="module")
def registry(manifest, tmp_path_factory) -> Registry:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.add_manifest(manifest)
    return reg


@pytest.fixture
def fresh_cache():
    registry_mod._CACHE.clear()
    yield
    registry_mod._CACHE.clear()


def test_add_manifest_registers_all(registry, entries):
    specs = registry.specs()
    assert [s.name for s in specs] == [e["name"] for e in entries]
    assert len({s.tokenizer_id for s in specs}) == 10
    for s, e in zip(specs, entries, strict=True):
        assert s.sha256 == e["sha256"] and s.format == e["format"]
        assert registry.artifact_path(s).read_bytes() == shared_path("tokenizers", e["file"]).read_bytes()
        assert s.algorithm and s.vocab_size and s.pre_tokenizer
    tik = registry.get("cl100k_base")
    assert tik.params == {"pattern": next(e["pattern"] for e in entries if e["name"] == "cl100k_base")}
    assert registry.get("minilm-wordpiece").algorithm == "wordpiece"


def test_ids_stable_across_fresh_registries(registry, manifest, tmp_path):
    again = Registry(tmp_path / "again").add_manifest(manifest)
    assert [s.tokenizer_id for s in again] == [s.tokenizer_id for s in registry.specs()]
    for s in again:
        assert s.tokenizer_id == tokenizer_id_for(s.sha256, s.format, s.params)
    assert again[0].artifact_uri == registry.specs()[0].artifact_uri  # content-addressed


def test_readding_returns_same_spec_without_duplicates(registry, manifest):
    before = registry.specs()
    again = registry.add_manifest(manifest, names=["gpt2", "mistral-v1"])
    assert again == [registry.get("gpt2"), registry.get("mistral-v1")]
    assert registry.specs() == before
    assert pq.read_table(registry.table_path).num_rows == 10


def test_get_unknown_lists_known_names(registry):
    with pytest.raises(ConfigError, match="'nope'.*known: .*cl100k_base.*gpt2"):
        registry.get("nope")
    assert registry.get(registry.get("qwen").tokenizer_id).name == "qwen"


def test_name_clash_with_other_content_is_refused(registry, tmp_path):
    with pytest.raises(ConfigError, match="'gpt2' is already used"):
        registry.add(shared_path("tokenizers", "qwen.tiktoken"), name="gpt2",
                     params={"pattern": registry.get("gpt2").params["pattern"]})  # new params: new id


def test_sha_mismatch_raises_naming_file(tmp_path, manifest):
    with pytest.raises(TokenizerFileError, match="mistral_v1.model.*does not match"):
        Registry(tmp_path).add(shared_path("tokenizers", "mistral_v1.model"), expected_sha256="0" * 64)
    assert not (tmp_path / "tokenizers.parquet").exists()


@pytest.mark.parametrize(("name", "fmt", "corrupt"), [
    ("claude_legacy.tokenizer.json", "hf-tokenizer-json", lambda b: b[: len(b) // 2]),
    ("mistral_v1.model", "sentencepiece-model", lambda b: b[: len(b) // 3]),
    ("gpt2.tiktoken", "tiktoken-ranks", lambda b: b + b"%%% garbage %%%\nxx yy zz\n"),
    ("clip_bpe_simple_vocab_16e6.txt.gz", "clip-merges", lambda b: b[: len(b) // 2]),
])
def test_corrupt_files_raise_naming_file(tmp_path, name, fmt, corrupt):
    src = shared_path("tokenizers", name)
    bad = tmp_path / ("corrupt_" + name)
    bad.write_bytes(corrupt(src.read_bytes()))
    params = {"pattern": r"\S+|\s+"} if fmt == "tiktoken-ranks" else None
    reg = Registry(tmp_path / "reg")
    with pytest.raises(TokenizerFileError, match="corrupt_"):
        reg.add(bad, fmt=fmt, params=params)
    assert reg.specs() == []  # nothing registered, no artifact kept
    assert not (tmp_path / "reg" / "artifacts").exists()


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(TokenizerFileError, match="unknown tokenizer format 'bogus'"):
        Registry(tmp_path).add(shared_path("tokenizers", "gpt2.tiktoken"), fmt="bogus")
    with pytest.raises(TokenizerFileError, match="nothing.json: no such tokenizer file"):
        Registry(tmp_path).add(tmp_path / "nothing.json")


def test_missing_tiktoken_pattern_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="gpt2.tiktoken.*pattern"):
        Registry(tmp_path).add(shared_path("tokenizers", "gpt2.tiktoken"))


def test_resolve_under_refuses_escapes(tmp_path):
    assert resolve_under(tmp_path, "artifacts/ab/x.json") == (tmp_path / "artifacts/ab/x.json").resolve()
    with pytest.raises(TokenizerFileError, match="escapes"):
        resolve_under(tmp_path, "../x")
    with pytest.raises(TokenizerFileError, match="escapes"):
        resolve_under(tmp_path, "artifacts/../../x")
    with pytest.raises(TokenizerFileError, match="absolute"):
        resolve_under(tmp_path, "/etc/passwd")
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(TokenizerFileError, match="escapes"):
        resolve_under(tmp_path, "link/etc/passwd")


def test_load_tokenizer_caches_and_accepts_rows(registry, fresh_cache):
    spec = registry.get("gpt2")
    tok = load_tokenizer(spec, registry.root)
    assert load_tokenizer(spec, registry.root) is tok
    assert load_tokenizer(spec.to_row(), registry.root) is tok  # a dict row, as Spark tasks pass it
    assert tok.encode("hello world") == [31373, 995]


def test_load_tokenizer_refuses_changed_artifact(manifest, tmp_path, fresh_cache):
    reg = Registry(tmp_path / "reg")
    (spec,) = reg.add_manifest(manifest, names=["minilm-wordpiece"])
    artifact = reg.artifact_path(spec)
    data = artifact.read_bytes()
    artifact.write_bytes(data.replace(b'"[UNK]"', b'"[UNX]"', 1))
    with pytest.raises(TokenizerFileError, match=f"{artifact.name}.*does not match"):
        load_tokenizer(spec, reg.root)
    artifact.unlink()
    with pytest.raises(TokenizerFileError, match="is missing"):
        load_tokenizer(spec, reg.root)
    moved = {**spec.to_row(), "artifact_uri": "../outside.json"}
    with pytest.raises(TokenizerFileError, match="escapes"):
        load_tokenizer(moved, reg.root)


def test_registry_table_matches_schema(registry):
    schemas.check_schema(pq.read_schema(registry.table_path), schemas.TOKENIZERS, files=True)
    table = pq.read_table(registry.table_path)
    schemas.validate(table, schemas.TOKENIZERS)
    assert set(table["format"].to_pylist()) == {"tiktoken-ranks", "hf-tokenizer-json", "tekken-json",
                                               "sentencepiece-model", "clip-merges"}


def test_registry_survives_a_copied_root(registry, tmp_path, fresh_cache):
    """Artifact URIs are relative: a copied registry (e.g. shipped to executors) still loads."""
    copy = tmp_path / "copy"
    shutil.copytree(registry.root, copy)
    spec = Registry(copy).get("clip")
    assert load_tokenizer(spec, copy).vocab_size == 49408


# -- one strict manifest reader -------------------------------------------------------------
RULE = ("use 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit "
        "(no '/', '..', '=' or spaces)")
WANT = 'expected a JSON object with a "tokenizers" array of {"name", "file", ...} entries'


@pytest.mark.parametrize(("text", "message"), [
    (b'{"tokenizers": [', f"not valid JSON (Expecting value at line 1 column 17); {WANT}"),
    (b"\xff\xfe{}", f"not UTF-8 text; {WANT}"),
    (b"[]", f"{WANT}, got an array"),
    (b'"x"', f"{WANT}, got a string"),
    (b'{"about": "x"}', f'{WANT}, got an object without "tokenizers"'),
    (b'{"tokenizers": {"name": "x"}}', '"tokenizers" must be an array of entries, got an object'),
    (b'{"tokenizers": ["gpt2"]}', "tokenizers[0] must be an object, got a string"),
    (b'{"tokenizers": [{"file": "gpt2.tiktoken"}]}',
     'tokenizers[0] lacks "name" (every entry needs "name" and "file")'),
    (b'{"tokenizers": [{"name": "gpt2"}]}', 'tokenizers[0] lacks "file" (every entry needs "name" and "file")'),
    (b'{"tokenizers": [{"name": 5, "file": "f"}]}', "tokenizers[0].name must be a string, got a number"),
    (b'{"tokenizers": [{"name": "a", "file": ["f"]}]}', "tokenizers[0].file must be a string, got an array"),
    (b'{"tokenizers": [{"name": "a", "file": "f", "pattern": 7}]}',
     "tokenizers[0].pattern must be a string or null, got a number"),
    (b'{"tokenizers": [{"name": "a", "file": "f", "sha256": ["x"]}]}',
     "tokenizers[0].sha256 must be a string or null, got an array"),
    (b'{"tokenizers": [{"name": "a", "file": null}]}', "tokenizers[0].file must be a string, got null"),
    (b'{"tokenizers": [{"name": "a", "file": "f", "format": "pickle"}]}',
     "tokenizers[0] (a): unknown format 'pickle'; known: clip-merges, hf-tokenizer-json, sentencepiece-model, "
     "tekken-json, tiktoken-ranks"),
    (b'{"tokenizers": [{"name": "a", "file": "f"}, {"name": "a", "file": "g"}]}',
     "tokenizers[1] (a): the name is listed twice"),
    (b'{"tokenizers": [{"name": "../a", "file": "f"}]}', f"tokenizers[0]: invalid tokenizer name '../a': {RULE}"),
    (b'{"tokenizers": [{"name": "a", "file": ""}]}', "tokenizers[0] (a): file '' is not a file name"),
    (b'{"tokenizers": [{"name": "a", "file": "f\\u0000"}]}', "tokenizers[0] (a): file 'f\\x00' is not a file name"),
    pytest.param(b"[" * 100000 + b"]" * 100000, f"JSON nested too deeply; {WANT}", id="deeply-nested"),
])
def test_malformed_manifests_are_one_line_config_errors(tmp_path, text, message):
    from tokenizers_registry.registry import manifest_entries, read_manifest

    m = tmp_path / "MANIFEST.json"
    m.write_bytes(text)
    for read in (read_manifest, Registry(tmp_path / "reg").add_manifest, manifest_entries):
        with pytest.raises(ConfigError) as e:
            read(m)
        assert str(e.value) == f"{m}: {message}"
    assert not (tmp_path / "reg").exists()


def test_manifest_entries_and_add_manifest_share_the_confinement(tmp_path, manifest):
    """A file outside the manifest's folder is refused by both readers unless allowed; never opened."""
    from tokenizers_registry.registry import manifest_entries

    m = tmp_path / "MANIFEST.json"
    m.write_text(json.dumps({"tokenizers": [{"name": "passwd", "file": "../" * 12 + "etc/passwd",
                                             "format": "tiktoken-ranks", "pattern": r"\S+"}]}))
    expected = f"{m}: tokenizers[0] (passwd): file '{'../' * 12}etc/passwd' is outside the manifest's folder {tmp_path}"
    for read in (manifest_entries, Registry(tmp_path / "reg").add_manifest):
        with pytest.raises(ConfigError) as e:
            read(m)
        assert str(e.value) == expected
    assert manifest_entries(m, allow_outside=True)[0]["path"] == "/etc/passwd"
    # allowed, the file is read as what it claims to be, and its content is still not echoed
    with pytest.raises(TokenizerFileError) as e:
        Registry(tmp_path / "reg").add_manifest(m, allow_outside=True)
    assert str(e.value) == "/etc/passwd: line 1 is not '<base64 token> <integer rank>'"


def test_adding_a_registered_file_under_a_new_name_says_so(registry, manifest):
    gpt2 = registry.get("gpt2")
    path = shared_path("tokenizers", "gpt2.tiktoken")
    with pytest.raises(ConfigError) as e:
        registry.add(path, name="my-gpt2", params=gpt2.params)
    assert str(e.value) == f"{path} is already registered as 'gpt2' (tokenizer {gpt2.tokenizer_id}); use that name"
    assert registry.add(path, name="gpt2", params=gpt2.params) == gpt2  # same name: the same spec
    assert registry.add(path, params=gpt2.params) == gpt2  # no name asked for: the registered one
    assert [s.name for s in registry.specs()].count("gpt2") == 1 and "my-gpt2" not in {s.name for s in registry.specs()}
