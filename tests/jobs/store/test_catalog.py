"""The dataset catalog equals the schemas: docs/datasets.md and <out>/catalog.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
from test_query import WRITTEN_BY_PREMIUM

from jobs.store.catalog import (
    DOCS_PATH,
    catalog_markdown,
    dataset_entry,
    write_catalog,
)
from jobs.store.layout import catalog_file
from schemas import DATASETS


def test_committed_docs_equal_the_generated_catalog():
    """docs/datasets.md cannot drift: regenerate with `tokatlas catalog --docs docs/datasets.md`."""
    assert DOCS_PATH.read_text(encoding="utf-8") == catalog_markdown()


def test_catalog_entries_equal_the_schemas():
    for name, ds in DATASETS.items():
        e = dataset_entry(ds)
        assert [(c["name"], c["type"], c["doc"]) for c in e["columns"]] == \
               [(f.name, str(f.type), f.metadata[b"doc"].decode()) for f in ds.schema], name
        assert all(c["doc"] for c in e["columns"]), name
        assert e["path"].endswith(".parquet") and e["produced_by"], name
        # hive directories in the path are exactly the partition columns, in order
        if ds.partition_by:
            assert re.findall(r"(\w+)=\*/", e["path"]) == list(ds.partition_by), name
    md = catalog_markdown()
    for name, ds in DATASETS.items():
        section = md.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for f in ds.schema:
            assert f"| `{f.name}` |" in section, (name, f.name)


def test_every_writer_path_is_registered():
    """Each dataset directory the jobs write Parquet into belongs to a registered dataset."""
    roots = {ds.path.split("/")[0] for ds in DATASETS.values()}
    src = "\n".join(p.read_text() for p in Path(DOCS_PATH).parents[1].joinpath("jobs").glob("*.py"))
    for d in re.findall(r'dataset_(?:dir|file)\(out, "(\w+)"', src) + re.findall(r'cell_file\(out, "(\w+)"', src):
        assert d in roots, d
    for top in ("token_counts", "corpus_counts", "cell_failures", "token_freqs", "premium", "coverage", "trim",
                "grid", "mixture", "registry", "corpus", "rejects", "run_log"):
        assert top in roots, top


def _contract(ds) -> dict:
    """A dataset's catalog entry, read from its registration and schema (not from jobs.store.catalog)."""
    cols = [{"name": f.name, "type": str(f.type), "doc": f.metadata[b"doc"].decode(),
             "partition": f.name in ds.partition_by, "required": f.name in ds.required} for f in ds.schema]
    return {"name": ds.name, "description": ds.description, "path": ds.path, "partition_by": list(ds.partition_by),
            "key": list(ds.key), "sort_by": list(ds.sort_by), "produced_by": ds.produced_by, "columns": cols}


def test_manifest_of_a_real_run(premium_out):
    params, result = premium_out
    path = catalog_file(params.out)
    assert path.is_file()  # written by the flow itself
    doc = json.loads(write_catalog(params.out).read_text())
    by_name = {d["name"]: d for d in doc["datasets"]}
    assert list(by_name) == list(DATASETS)
    assert {n for n, d in by_name.items() if d["present"]} == WRITTEN_BY_PREMIUM
    root = Path(params.out)
    for name in WRITTEN_BY_PREMIUM:
        ds = DATASETS[name]
        files = [f for f in root.glob(ds.path) if not any(p.startswith(".") for p in f.relative_to(root).parts)]
        assert files and by_name[name]["files"] == len(files)
        assert by_name[name]["rows"] == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        assert {k: by_name[name][k] for k in _contract(ds)} == _contract(ds)
    versions = json.loads((Path(params.out) / "corpus" / "corpus=mini" / "_versions.json").read_text())
    assert by_name["token_counts"]["versions"] == sorted(f"corpus_version={v['version']}" for v in versions.values())
    assert [r["flow"] for r in by_name["token_counts"]["last_runs"]] == ["token-premium"]
    assert by_name["token_counts"]["last_runs"][0]["state"] == "completed"
    assert by_name["grid_fits"] == {**_contract(DATASETS["grid_fits"]), "present": False, "files": 0,
                                    "last_runs": []}
