"""`jobs.query`: every dataset as a DuckDB view / polars scan / Spark read, on a small real run.

The session fixture `premium_out` (also used by test_run_log.py and test_cli.py) runs the real
token-premium flow (Prefect, Spark) on FLORES: 3 languages x 2 x 20 sentences x 2 tokenizers.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import write_flores_folder, write_manifest_subset

from jobs.layout import write_parquet_atomic
from jobs.query import (
    QueryError,
    dataset_files,
    duckdb_connection,
    duckdb_type,
    query,
    scan,
    spark_read,
)
from schemas import DATASETS, conform

LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PER_SPLIT = 20
NAMES = ["gpt2", "mistral-v1"]
WRITTEN_BY_PREMIUM = {"corpus", "rejects", "tokenizers", "token_counts", "corpus_counts", "premium", "run_log"}


@pytest.fixture(scope="session")
def premium_out(prefect_harness, spark, tmp_path_factory):
    """(params, result) of one real token-premium flow run on a FLORES subset."""
    from flows.premium_flow import PremiumParams, token_premium

    folder = write_flores_folder(tmp_path_factory.mktemp("flores_q"), LANGS, PER_SPLIT)
    manifest = write_manifest_subset(tmp_path_factory.mktemp("manifest_q") / "MANIFEST.json", NAMES)
    out = tmp_path_factory.mktemp("premium_q") / "out"
    params = PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(folder), corpus_name="mini",
                           tokenizer_manifest=str(manifest), n_bootstrap=20)
    return params, token_premium(params)


def _file_rows(out, name: str) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in dataset_files(out, DATASETS[name]))


def test_every_present_view_is_queryable_and_counts_match_the_files(premium_out):
    params, result = premium_out
    con = duckdb_connection(params.out)
    views = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert views == WRITTEN_BY_PREMIUM
    for name in views:
        ds = DATASETS[name]
        described = [(r[0], r[1]) for r in con.sql(f"DESCRIBE {name}").fetchall()]
        assert described == [(f.name, duckdb_type(f.type)) for f in ds.schema], name
        assert con.sql(f"SELECT count(*) FROM {name}").fetchall()[0][0] == _file_rows(params.out, name), name
    n_cells = len(LANGS) * len(NAMES)
    assert con.sql("SELECT count(*) FROM token_counts").fetchall()[0][0] == n_cells * 2 * PER_SPLIT
    assert con.sql("SELECT count(*), count(DISTINCT lang) FROM corpus_counts").fetchall() == [(n_cells, 3)]
    assert con.sql("SELECT count(*) FROM premium WHERE lang = 'eng_Latn' AND premium_ctc = 1.0").fetchall() == [(2,)]


def test_views_equal_the_files_row_for_row(premium_out):
    params, _ = premium_out
    out = Path(params.out)
    expected = pa.concat_tables(
        [pq.read_table(f).append_column("lang", pa.array([f.parent.name.split("=")[1]] * pq.read_metadata(f).num_rows))
         for f in sorted((out / "corpus_counts").glob("lang=*/*.parquet"))])
    cols = DATASETS["corpus_counts"].schema.names
    key = [("lang", "ascending"), ("tokenizer_id", "ascending")]
    got = query(out, "SELECT * FROM corpus_counts").to_arrow_table()
    assert got.sort_by(key).to_pylist() == expected.select(cols).sort_by(key).to_pylist()
    assert scan(out, "corpus_counts").collect().to_arrow().sort_by(key).to_pylist() == got.sort_by(key).to_pylist()


def test_spark_and_polars_read_the_declared_schema(premium_out, spark):
    from schemas.spark import to_spark_schema

    params, _ = premium_out
    for name in ("token_counts", "corpus", "premium", "tokenizers"):
        ds = DATASETS[name]
        df = spark_read(spark, params.out, name)
        assert df.schema == to_spark_schema(ds), name
        assert df.count() == _file_rows(params.out, name), name
        lf = scan(params.out, name)
        assert lf.collect_schema().names() == ds.schema.names
        assert lf.select("*").collect().height == _file_rows(params.out, name)
    eng = spark_read(spark, params.out, "token_counts").where("lang = 'eng_Latn'").count()
    assert eng == len(NAMES) * 2 * PER_SPLIT


def _one_row_path(ds) -> str:
    """A concrete file path of the dataset's glob (each * replaced by a value)."""
    parts = ds.path.split("/")
    return "/".join(p.replace("*", "x1") for p in parts)


def _one_row(ds) -> pa.Table:
    values = {pa.string(): "v", pa.int32(): 7, pa.int64(): 7, pa.float64(): 0.5, pa.bool_(): True}
    row = {f.name: values.get(f.type, datetime(2026, 1, 1, tzinfo=timezone.utc)) for f in ds.file_schema}
    return conform(pa.Table.from_pylist([row]), ds, files=True)


def test_every_registered_dataset_is_a_typed_view(tmp_path, spark):
    """One file per registered dataset at its declared path: DuckDB, polars and Spark all see the
    declared columns and types, partition values typed from the path."""
    from schemas.spark import to_spark_schema

    for ds in DATASETS.values():
        write_parquet_atomic(_one_row(ds), tmp_path / _one_row_path(ds))
    con = duckdb_connection(tmp_path)
    views = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert views == set(DATASETS)
    for ds in DATASETS.values():
        described = [(r[0], r[1]) for r in con.sql(f"DESCRIBE {ds.name}").fetchall()]
        assert described == [(f.name, duckdb_type(f.type)) for f in ds.schema], ds.name
        rows = con.sql(f"SELECT * FROM {ds.name}").to_arrow_table().to_pylist()
        assert len(rows) == 1, ds.name
        for c in ds.partition_by:
            assert rows[0][c] == "x1", (ds.name, c)
        assert scan(tmp_path, ds.name).collect().height == 1
        assert spark_read(spark, tmp_path, ds.name).schema == to_spark_schema(ds)


def test_older_files_without_a_column_read_as_null(premium_out, tmp_path):
    """Schema evolution: a file written before a column existed reads with that column null."""
    params, _ = premium_out
    src = sorted((Path(params.out) / "token_counts").glob("lang=eng_Latn/*.parquet"))[0]
    old = pq.read_table(src).drop(["n_continued_words", "word_segmentation"])
    write_parquet_atomic(pq.read_table(src), tmp_path / "token_counts" / "lang=eng_Latn" / "new.parquet")
    write_parquet_atomic(old, tmp_path / "token_counts" / "lang=deu_Latn" / "old.parquet")
    got = query(tmp_path, "SELECT lang, count(*), count(n_continued_words), count(word_segmentation) "
                          "FROM token_counts GROUP BY ALL ORDER BY lang").fetchall()
    n = old.num_rows
    assert got == [("deu_Latn", n, 0, 0), ("eng_Latn", n, n, n)]
    pl_counts = scan(tmp_path, "token_counts").group_by("lang").agg(
        pl.col("n_continued_words").count()).sort("lang").collect().rows()
    assert pl_counts == [("deu_Latn", 0), ("eng_Latn", n)]


def test_unknown_dataset_lists_present_and_empty_ones(premium_out):
    params, _ = premium_out
    with pytest.raises(QueryError) as e:
        query(params.out, "SELECT * FROM premum")
    msg = str(e.value)
    assert "unknown dataset 'premum'" in msg
    for name in WRITTEN_BY_PREMIUM:
        assert name in msg.split("known datasets with no files there")[0]
    assert "known datasets with no files there: cell_failures, grid_cells" in msg


def test_unknown_column_lists_the_views_columns(premium_out):
    params, _ = premium_out
    with pytest.raises(QueryError) as e:
        query(params.out, "SELECT tokenizer, lang FROM premium")
    msg = str(e.value)
    assert "unknown column 'tokenizer'" in msg
    assert "premium: " + ", ".join(DATASETS["premium"].schema.names) in msg
    with pytest.raises(QueryError, match="SQL syntax error"):
        query(params.out, "SELEC 1")
    with pytest.raises(QueryError, match="dataset 'grid_fits' has no files under"):
        scan(params.out, "grid_fits")
    with pytest.raises(QueryError, match="unknown dataset 'nope'; known: cell_failures, corpus"):
        scan(params.out, "nope")
