"""Registry roots given as fsspec URLs: memory:// in one process, file:// across Spark tasks."""

from __future__ import annotations

import uuid

import fsspec
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from schemas.errors import TokenizerFileError
from tokenizers_registry import registry as registry_mod
from tokenizers_registry.registry import Registry, load_tokenizer
from tokenizers_registry.store import Store

SENTENCES = ["Hello world, this is tokatlas.", "Grüße aus Köln: ÄÖÜ ß", "数据混合推断"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKATLAS_ARTIFACT_CACHE", str(tmp_path / "cache"))
    registry_mod._CACHE.clear()
    yield tmp_path / "cache"
    registry_mod._CACHE.clear()


def _memory_registry() -> tuple[Registry, str]:
    root = f"memory://tokatlas-{uuid.uuid4().hex}/registry"
    reg = Registry(root)
    reg.add_manifest(shared_path("tokenizers", "MANIFEST.json"), names=["gpt2", "mistral-v1"])
    return reg, root


def test_remote_registry_round_trips_specs_and_loads_verified_artifacts(cache):
    reg, root = _memory_registry()
    local = Registry(cache.parent / "local")
    local.add_manifest(shared_path("tokenizers", "MANIFEST.json"), names=["gpt2", "mistral-v1"])
    assert [s.tokenizer_id for s in Registry(root).specs()] == [s.tokenizer_id for s in local.specs()]
    fs = fsspec.filesystem("memory")
    stored = fs.cat_file(root.removeprefix("memory:/") + "/" + reg.get("gpt2").artifact_uri)
    assert stored == shared_path("tokenizers", "gpt2.tiktoken").read_bytes()
    for name in ("gpt2", "mistral-v1"):
        remote = load_tokenizer(reg.get(name), root)
        registry_mod._CACHE.clear()
        here = load_tokenizer(local.get(name), local.root)
        assert remote.encode_batch(SENTENCES) == here.encode_batch(SENTENCES)
        assert reg.artifact_path(reg.get(name)).is_relative_to(cache)
    assert [p for p in fs.find(root.removeprefix("memory:/")) if p.endswith(".tmp")] == []


def test_a_tampered_remote_artifact_is_refused_with_both_hashes(cache):
    reg, root = _memory_registry()
    spec = reg.get("gpt2")
    fs = fsspec.filesystem("memory")
    path = root.removeprefix("memory:/") + "/" + spec.artifact_uri
    fs.pipe_file(path, fs.cat_file(path) + b"IQ== 50257\n")  # one rank more
    with pytest.raises(TokenizerFileError, match=f"does not match the registry's {spec.sha256}"):
        load_tokenizer(spec, root)
    assert not any(cache.rglob("tokenizer.json"))  # nothing unverified is cached


@pytest.mark.parametrize("bad", ["../outside.json", "artifacts/../../outside.json", "/etc/passwd",
                                 "s3://elsewhere/x.json"])
def test_remote_paths_that_escape_the_root_are_refused(bad):
    store = Store(f"memory://tokatlas-{uuid.uuid4().hex}/registry")
    with pytest.raises(TokenizerFileError, match="escapes|absolute"):
        store.local_path(bad, "0" * 64)


def test_grid_training_writes_to_a_url_root_from_spark_tasks(spark, tmp_path):
    """Spark tasks store artifacts through fsspec; the registry at that URL loads them."""
    from jobs.analysis.grid_spec import AnalysisSpec, DataSpec, GridSpec, Source, check_spec
    from jobs.train_grid import plan_grid, read_cells, train_cells

    flores = str(shared_path("flores200", "flores200_dev_devtest.parquet"))
    spec = check_spec(GridSpec(
        name="url", languages=("eng_Latn",), algorithms=("hf-bpe", "sp-bpe"), vocab_sizes=(500,),
        train_bytes=(20000,), data=DataSpec(train=(Source("flores", flores, ("dev",)),),
                                            eval=Source("flores", flores, ("devtest",))),
        analysis=AnalysisSpec()))
    root = f"file://{tmp_path / 'shared-store'}"
    cells, _ = plan_grid(spec, tmp_path / "out", spark=spark)
    s = train_cells(spark, tmp_path / "out", spec, cells, registry_root=root)
    assert (s.trained, s.failed, s.registered) == (2, 0, 2), s.failures
    rows = read_cells(tmp_path / "out", [c.cell_id for c in cells]).to_pylist()
    reg = Registry(root)
    assert sorted(x.tokenizer_id for x in reg.specs()) == sorted(r["tokenizer_id"] for r in rows)
    for r in rows:
        on_disk = tmp_path / "shared-store" / r["artifact_uri"]
        assert on_disk.is_file() and registry_mod.sha256_file(on_disk) == r["sha256"]
        tok = load_tokenizer(reg.get(r["tokenizer_id"]), root)
        assert tok.vocab_size == r["actual_vocab_size"]
    assert pq.read_table(tmp_path / "shared-store" / "tokenizers.parquet").num_rows == 2
    again = train_cells(spark, tmp_path / "out", spec, cells, registry_root=root)
    assert (again.skipped, again.trained, again.registered) == (2, 0, 0)
