"""Conform tables to a dataset's schema and check them against it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from schemas.datasets import Dataset
from schemas.errors import SchemaMismatch


def conform(table: pa.Table, ds: Dataset, *, files: bool = False) -> pa.Table:
    """Select and cast `table`'s columns to the dataset schema (file schema if `files`).

    Missing nullable columns are added as nulls; extra columns are an error, since
    a silently dropped column is lost data.
    """
    target = ds.file_schema if files else ds.schema
    extra = set(table.column_names) - set(ds.schema.names)
    if extra:
        raise SchemaMismatch(f"{ds.name}: unexpected columns {sorted(extra)}")
    cols = []
    for f in target:
        if f.name in table.column_names:
            cols.append(table[f.name].cast(f.type))
        else:
            cols.append(pa.nulls(len(table), f.type))
    return pa.Table.from_arrays(cols, schema=target)


def check_schema(actual: pa.Schema, ds: Dataset, *, files: bool = True) -> None:
    """Raise SchemaMismatch unless `actual` equals the dataset's (file) schema (names, types, order)."""
    expected = ds.file_schema if files else ds.schema
    a = [(f.name, f.type) for f in actual]
    e = [(f.name, f.type) for f in expected]
    if a != e:
        raise SchemaMismatch(f"{ds.name}: schema differs\n  expected {e}\n  actual   {a}")


def validate(table: pa.Table, ds: Dataset) -> None:
    """Check schema, non-null `required` columns and key uniqueness of a full (non-file) table."""
    check_schema(table.schema, ds, files=False)
    for name in ds.required:
        nulls = table[name].null_count
        if nulls:
            raise SchemaMismatch(f"{ds.name}: {nulls} null values in required column {name!r}")
    if ds.key and len(table):
        n_unique = table.group_by(list(ds.key)).aggregate([]).num_rows
        if n_unique != len(table):
            raise SchemaMismatch(f"{ds.name}: {len(table) - n_unique} duplicate keys on {ds.key}")


def null_mask_any(table: pa.Table, names) -> pa.ChunkedArray:
    """True where any of `names` is null (helper for quarantining incomplete rows)."""
    mask = pc.is_null(table[names[0]])
    for n in names[1:]:
        mask = pc.or_(mask, pc.is_null(table[n]))
    return mask
