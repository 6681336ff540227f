"""The dataset catalog, generated from `schemas/` so it cannot drift.

    docs/datasets.md          every registered dataset: path, partitioning, key, writer, columns with docs
    <out>/catalog.json        the same as data, plus what is present under that output root (files,
                              bytes, rows, content versions) and the last run of each producing flow

    tokatlas catalog --docs docs/datasets.md     regenerate the Markdown (a test compares it)
    tokatlas catalog --out OUT                   (re)write OUT/catalog.json
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq

from jobs.store.atomic import write_json_atomic, write_text_atomic
from jobs.store.layout import catalog_file, dataset_files
from schemas import DATASETS, Dataset

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
VERSION_COLUMNS = ("corpus_version", "eval_version", "sample_version")  # content hashes of the inputs
FLOWS = ("token-premium", "tokenizer-grid", "vocab-trim", "mixture-inference", "mixture-controlled")


def columns(ds: Dataset) -> list[dict]:
    docs = ds.column_docs()
    return [{"name": f.name, "type": str(f.type), "doc": docs[f.name],
             "partition": f.name in ds.partition_by, "required": f.name in ds.required} for f in ds.schema]


def dataset_entry(ds: Dataset) -> dict:
    """The dataset's contract as plain data (what both the Markdown and the manifest show)."""
    return {"name": ds.name, "description": ds.description, "path": ds.path, "partition_by": list(ds.partition_by),
            "key": list(ds.key), "sort_by": list(ds.sort_by), "produced_by": ds.produced_by,
            "columns": columns(ds)}


# -- Markdown ---------------------------------------------------------------------------
def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def catalog_markdown() -> str:
    """docs/datasets.md, deterministic (registration order of `schemas.DATASETS`)."""
    lines = [
        "# Datasets",
        "",
        "Every dataset tokatlas writes under an output root (`--out`), generated from `schemas/` by "
        "`tokatlas catalog --docs docs/datasets.md` (`jobs/store/catalog.py`); do not edit by hand, a test "
        "regenerates it and compares. Each output root also holds `catalog.json`: the same contracts plus what "
        "is present there (files, rows, content versions) and the last run of each flow (`run_log`).",
        "",
        "Query any of them with `tokatlas query \"SELECT …\" --out OUT` (each is a DuckDB view named after "
        "the dataset), or from Python with `jobs.store.query.duckdb_connection(out)`, `jobs.store.query.scan(out, name)` "
        "(polars) and `jobs.store.query.spark_read(spark, out, name)`. Partition columns live in hive-style "
        "directory names (`lang=eng_Latn/`), not in the files; all columns are nullable in the files, "
        "*required* ones are checked non-null by the writers.",
        "",
        "| dataset | files under the output root | partitioned by | description |",
        "|---|---|---|---|",
    ]
    for ds in DATASETS.values():
        lines.append(f"| [`{ds.name}`](#{ds.name}) | `{ds.path}` | {', '.join(ds.partition_by) or '—'} | "
                     f"{_cell(ds.description)} |")
    for ds in DATASETS.values():
        lines += ["", f"## {ds.name}", "", ds.description, "",
                  f"- files: `{ds.path}`",
                  f"- partitioned by: {', '.join(f'`{c}`' for c in ds.partition_by) or 'nothing'}",
                  f"- key: {', '.join(f'`{c}`' for c in ds.key) or '—'}"]
        if ds.sort_by:
            lines.append(f"- sorted by: {', '.join(f'`{c}`' for c in ds.sort_by)}")
        lines += [f"- written by: {ds.produced_by or '—'}", "",
                  "| column | type | | meaning |", "|---|---|---|---|"]
        for c in columns(ds):
            flag = "partition" if c["partition"] else ("required" if c["required"] else "")
            lines.append(f"| `{c['name']}` | {c['type']} | {flag} | {_cell(c['doc'])} |")
    return "\n".join(lines) + "\n"


def write_docs(path=DOCS_PATH) -> Path:
    return write_text_atomic(catalog_markdown(), path)


# -- manifest at the output root --------------------------------------------------------
def _present_facts(out, ds: Dataset, files: list[Path]) -> dict:
    import duckdb

    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    versions: list[str] = []
    cols = [c for c in VERSION_COLUMNS if c in ds.schema.names]
    if cols:  # one scan of the version columns over all files (thousands of cells on a full run)
        from jobs.store.query import _lit

        src = f"read_parquet([{', '.join(_lit(str(f)) for f in files)}], union_by_name=true)"
        for c in cols:
            try:
                vals = duckdb.sql(f"SELECT DISTINCT {c} FROM {src} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT 100")
            except duckdb.BinderException:  # files older than the column
                continue
            versions += [f"{c}={v[0]}" for v in vals.fetchall()]
    return {"present": True, "files": len(files), "bytes": sum(f.stat().st_size for f in files), "rows": rows,
            "versions": versions}


def _last_runs(out) -> dict[str, dict]:
    from jobs.store.run_log import read_run_log

    last = {}
    for r in read_run_log(out).to_pylist():  # oldest first: the newest run of each flow wins
        last[r["flow"]] = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()
                           if k in ("run_id", "flow", "started_at", "finished_at", "state", "tokatlas_version")}
    return last


def catalog_content(out) -> dict:
    """catalog.json's content: every dataset's contract, what is present under `out`, and for each the
    last run of the flows that write it."""
    from jobs.store.run_log import tokatlas_version

    runs = _last_runs(out)
    entries = []
    for ds in DATASETS.values():
        files = dataset_files(out, ds)
        e = dataset_entry(ds)
        e.update(_present_facts(out, ds, files) if files else {"present": False, "files": 0})
        e["last_runs"] = [runs[f] for f in FLOWS if f in runs and f in ds.produced_by]
        entries.append(e)
    return {"output_root": str(Path(out).resolve()), "generated_at": datetime.now(timezone.utc).isoformat(),
            "tokatlas_version": tokatlas_version(), "datasets": entries}


def write_catalog(out) -> Path:
    """Write `<out>/catalog.json` atomically."""
    return write_json_atomic(catalog_content(out), catalog_file(out), sort_keys=False)
