"""One query entry point over every dataset under an output root: DuckDB views, polars and Spark readers.

Each dataset registered in `schemas/` whose files exist under the output root becomes a
view named after the dataset, reading the files of its `path` glob with hive partitions
typed as declared and `union_by_name` (files written before a column was added read it as
null). Columns come in the declared order and types; columns a file has beyond the
declared schema follow them.

    tokatlas query "SELECT lang, avg(premium_ctc) FROM premium GROUP BY ALL" --out out/flores

    from jobs.store.query import duckdb_connection, scan, spark_read
    duckdb_connection("out/flores").sql("SELECT * FROM corpus_counts").pl()
    duckdb_connection("out/flores", trusted=True)  # full DuckDB: other files, COPY, ATTACH, ...
    scan("out/flores", "token_counts").filter(pl.col("lang") == "eng_Latn").collect()
    spark_read(spark, "out/flores", "token_counts")

`query` and `duckdb_connection` are sandboxed unless `trusted=True`: once the views exist the
connection can read the views' files and nothing else, cannot write, attach or load anything,
and its configuration is locked; `query` runs exactly one statement that only reads
(docs/security.md).
"""

from __future__ import annotations

import difflib
import re
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from jobs.store.layout import dataset_files, dataset_root
from schemas import DATASETS, Dataset
from schemas.errors import ConfigError
from schemas.names import printable


class QueryError(ConfigError):
    """A query names an unknown dataset or column, or is not valid SQL; the message lists what exists."""


def present_datasets(out) -> dict[str, list[Path]]:
    """{dataset name: files} for every registered dataset with at least one file under `out`."""
    found = {}
    for name, ds in DATASETS.items():
        files = dataset_files(out, ds)
        if files:
            found[name] = files
    return found


# -- DuckDB -----------------------------------------------------------------------------
def duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    if pa.types.is_binary(t):
        return "BLOB"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    raise TypeError(f"no DuckDB type for {t}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _read_parquet_sql(files: list[str], ds: Dataset) -> str:
    if ds.partition_by:
        types = ", ".join(f"{_lit(c)}: {_lit(duckdb_type(ds.schema.field(c).type))}" for c in ds.partition_by)
        hive = f"hive_partitioning=true, hive_types={{{types}}}, hive_types_autocast=false"
    else:  # directories like premium/corpus=<c>/ are not partitions: the column is in the file
        hive = "hive_partitioning=false"
    return f"read_parquet([{', '.join(_lit(f) for f in files)}], {hive}, union_by_name=true)"


def _abs_files(out, ds: Dataset) -> list[str]:
    """The dataset's files as resolved absolute paths: the view reads these, and only these are allowed."""
    return [str(p.resolve()) for p in dataset_files(out, ds)]


def create_view(con, out, ds: Dataset, files: list[str] | None = None) -> None:
    """CREATE VIEW <name> over the dataset's files (those listed, or all under `out`): declared columns
    first (cast, or NULL when no file has them yet), then any extra columns the files carry."""
    src = _read_parquet_sql(_abs_files(out, ds) if files is None else files, ds)
    have = {r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    cols = []
    for f in ds.schema:
        expr = _q(f.name) if f.name in have else "NULL"
        cols.append(f"CAST({expr} AS {duckdb_type(f.type)}) AS {_q(f.name)}")
    cols += [_q(c) for c in sorted(have - set(ds.schema.names))]
    con.execute(f"CREATE OR REPLACE VIEW {_q(ds.name)} AS SELECT {', '.join(cols)} FROM {src}")


def duckdb_connection(out, con=None, *, only: list[str] | None = None, trusted: bool = False):
    """A DuckDB connection (new in-memory one unless given) with a view per dataset present under
    `out` (or only those of `only` that are present: binding a view reads every file's footer).

    Sandboxed unless `trusted` (see `sandbox`); `trusted=True` leaves the full DuckDB."""
    import duckdb

    if not Path(out).is_dir():
        raise QueryError(f"output root {out} does not exist")
    con = con or duckdb.connect()
    allowed = []
    for name in present_datasets(out):
        if only is None or name in only:
            files = _abs_files(out, DATASETS[name])
            create_view(con, out, DATASETS[name], files)
            allowed += files
    if not trusted:
        sandbox(con, allowed)
    return con


def sandbox(con, files: list[str]) -> None:
    """Confine `con` to reading `files`: no other file (read, glob or write), no ATTACH, no extension
    installed or loaded, and the configuration locked so that SQL cannot undo any of it.

    DuckDB checks `allowed_paths` even with external access disabled, so views over exactly these
    files keep working; `query` also refuses every statement but one read-only query."""
    con.execute(f"SET allowed_paths = [{', '.join(_lit(f) for f in files)}]")
    for setting in ("enable_external_access", "autoinstall_known_extensions", "autoload_known_extensions",
                    "allow_community_extensions"):
        con.execute(f"SET {setting} = false")
    con.execute("SET lock_configuration = true")


READ_ONLY_HINT = "tokatlas query runs one query that only reads (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE)"


def check_read_only(con, sql: str) -> None:
    """Raise QueryError unless `sql` is exactly one statement of DuckDB's SELECT type (which covers
    WITH, FROM-first, VALUES, DESCRIBE, SHOW and SUMMARIZE)."""
    import duckdb

    statements = con.extract_statements(sql)  # a duckdb.ParserException is the caller's to report
    if len(statements) != 1:
        raise QueryError(f"give exactly one SQL statement, not {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        # The statement's own keyword: DuckDB types INSTALL as LOAD and PIVOT as MULTI.
        text = re.sub(r"^(\s+|--[^\n]*|/\*.*?\*/)*", "", statements[0].query, flags=re.S)
        kind = (re.match(r"\w+", text) or [statements[0].type.name])[0].upper()
        raise QueryError(f"refused {kind} statement: {READ_ONLY_HINT}")


def datasets_named(sql: str) -> list[str]:
    """Registered dataset names that occur as words in `sql` (the views a query can need)."""
    return [n for n in DATASETS if re.search(rf"\b{re.escape(n)}\b", sql, re.IGNORECASE)]


def _views(con) -> dict[str, list[str]]:
    rows = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                       "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall()
    views: dict[str, list[str]] = {}
    for t, c in rows:
        views.setdefault(t, []).append(c)
    return views


def _what_exists(out, con) -> str:
    present = sorted(present_datasets(out))
    empty = sorted(set(DATASETS) - set(present))
    return (f"views over {out}: {', '.join(present) or '(none: nothing written yet)'}"
            + (f"; known datasets with no files there: {', '.join(empty)}" if empty else ""))


def query(out, sql: str, con=None, *, trusted: bool = False):
    """Run `sql` over the output root's views and return the DuckDB relation.

    Unless `trusted`, `sql` must be one read-only statement and runs on a sandboxed connection
    (a `con` given is used as it is). Raises QueryError as `explained` says; fetch the result
    inside `explained` too (a refused file can surface only then).
    """
    con = con or duckdb_connection(out, only=datasets_named(sql), trusted=trusted)
    with explained(out, con, sql):
        if not trusted:
            check_read_only(con, sql)
        rel = con.sql(sql)
        if rel is not None:
            rel.columns  # binding errors surface here at the latest  # noqa: B018
    return rel


@contextmanager
def explained(out, con, sql: str):
    """DuckDB's errors for `sql` as one-line QueryErrors: a refused statement or file, an unknown
    dataset (listing the views present and the known but empty datasets), an unknown column
    (listing the columns of the views the query names), or a syntax error."""
    import duckdb

    try:
        yield
    except duckdb.CatalogException as e:
        m = re.search(r'with name "?([^"\s!]+)"? does not exist', str(e))
        what = f"unknown dataset {m.group(1)!r}" if m else str(e).splitlines()[0]
        hint = difflib.get_close_matches(m.group(1), list(DATASETS), n=1) if m else []
        what += f" (did you mean {hint[0]!r}?)" if hint else ""
        raise QueryError(f"{what}; {_what_exists(out, con)}") from None
    except duckdb.BinderException as e:
        m = re.search(r'[Cc]olumn "?([^"\s]+)"? not found', str(e))
        views = _views(con)
        named = [v for v in views if re.search(rf"\b{re.escape(v)}\b", sql, re.IGNORECASE)] or sorted(views)
        cols = "; ".join(f"{v}: {', '.join(views[v])}" for v in named)
        what = f"unknown column {m.group(1)!r}" if m else str(e).splitlines()[0]
        raise QueryError(f"{what}; columns of {', '.join(named)} — {cols}") from None
    except duckdb.ParserException as e:
        raise QueryError(f"SQL syntax error: {str(e).splitlines()[0]}; {_what_exists(out, con)}") from None
    except duckdb.PermissionException as e:
        m = re.search(r'Cannot access (?:file|directory) "([^"]*)"', str(e))
        what = f'the query reads "{m.group(1)}", which is not a file of the views' if m else str(e).splitlines()[0]
        raise QueryError(f"refused: {what}; tokatlas query reads only the views over {out}") from None


def printable_table(table: pa.Table) -> pa.Table:
    """`table` with column names and string values (also inside lists and structs) passed through
    `printable`: for showing a result in a terminal, where a value must not drive the terminal."""
    def esc(v):
        if isinstance(v, str):
            return printable(v)
        if isinstance(v, (list, tuple)):  # lists, and maps' (key, value) pairs
            return type(v)(esc(x) for x in v)
        return {k: esc(x) for k, x in v.items()} if isinstance(v, dict) else v

    def texty(t: pa.DataType) -> bool:
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_nested(t)

    cols = [pa.array(esc(col.to_pylist()), col.type) if texty(col.type) else col for col in table.columns]
    return pa.table(cols, names=[printable(n) for n in table.column_names])


# -- polars -----------------------------------------------------------------------------
def polars_type(t: pa.DataType):
    import polars as pl

    return pl.from_arrow(pa.array([], t)).dtype


def scan(out, name: str):
    """polars LazyFrame over one dataset: declared schema, hive partitions typed as declared,
    columns missing from older files read as null."""
    import polars as pl

    ds = _known(name)
    files = dataset_files(out, ds)
    if not files:
        raise QueryError(f"dataset {name!r} has no files under {out} ({ds.path}); present: "
                         f"{', '.join(sorted(present_datasets(out))) or '(none)'}")
    file_schema = {f.name: polars_type(f.type) for f in ds.file_schema}
    hive_schema = {c: polars_type(ds.schema.field(c).type) for c in ds.partition_by} or None
    lf = pl.scan_parquet(str(Path(out).resolve() / ds.path), hive_partitioning=bool(ds.partition_by),
                         hive_schema=hive_schema, schema=file_schema, missing_columns="insert",
                         extra_columns="ignore", hidden_file_prefix=".")
    return lf.select(ds.schema.names)


# -- Spark ------------------------------------------------------------------------------
def spark_read(spark, out, name: str):
    """Spark DataFrame over one dataset with the declared schema (partition columns from the paths)."""
    from schemas.spark import to_spark_schema

    ds = _known(name)
    files = [str(p.resolve()) for p in dataset_files(out, ds)]
    if not files:
        raise QueryError(f"dataset {name!r} has no files under {out} ({ds.path}); present: "
                         f"{', '.join(sorted(present_datasets(out))) or '(none)'}")
    reader = spark.read.schema(to_spark_schema(ds))
    if ds.partition_by:
        reader = reader.option("basePath", str(dataset_root(out, ds).resolve()))
    # Without basePath, explicit files' parent directories are not read as partitions.
    return reader.parquet(*files).select(*ds.schema.names)


def _known(name: str) -> Dataset:
    if name not in DATASETS:
        raise QueryError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]
