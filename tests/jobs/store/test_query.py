"""`jobs.store.query`: every dataset as a DuckDB view / polars scan / Spark read, on a small real run.

The session fixture `premium_out` (tests/conftest.py; also used by test_catalog.py, test_cli.py and
test_run_log.py) runs the real token-premium flow (Prefect, Spark) on FLORES: 3 languages x 2 x 20
sentences x 2 tokenizers.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import PREMIUM_OUT_LANGS as LANGS  # premium_out's run
from conftest import PREMIUM_OUT_NAMES as NAMES
from conftest import PREMIUM_OUT_PER_SPLIT as PER_SPLIT

from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import dataset_files
from jobs.store.query import (
    QueryError,
    duckdb_connection,
    duckdb_type,
    query,
    scan,
    spark_read,
)
from schemas import DATASETS, conform

WRITTEN_BY_PREMIUM = {"corpus", "rejects", "tokenizers", "token_counts", "corpus_counts", "premium", "run_log"}


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


# -- the sandbox: `tokatlas query` only reads the views -----------------------------------------
PREMIUM_ROWS = [
    {"corpus": "c1", "tokenizer_id": "t" * 16, "tokenizer_name": "gpt2", "lang": "deu_Latn",
     "reference_lang": "eng_Latn", "ctc": 130, "ctc_reference": 100, "premium_ctc": 1.3},
    {"corpus": "c1", "tokenizer_id": "t" * 16, "tokenizer_name": "gpt2", "lang": "eng_Latn",
     "reference_lang": "eng_Latn", "ctc": 100, "ctc_reference": 100, "premium_ctc": 1.0},
]
READS_ONLY = "tokatlas query runs one query that only reads (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE)"


@pytest.fixture
def small_out(tmp_path):
    """(out, outside): an output root with a premium table and a registry folder holding a non-dataset
    file, and a folder outside it with a CSV and a Parquet file."""
    out, outside = tmp_path / "out", tmp_path / "outside"
    write_parquet_atomic(conform(pa.Table.from_pylist(PREMIUM_ROWS), DATASETS["premium"], files=True),
                         out / "premium" / "corpus=c1" / "reference=eng_Latn.parquet")
    (out / "registry").mkdir(parents=True)
    (out / "registry" / "secret.txt").write_text("registry-secret\n")
    outside.mkdir()
    (outside / "secret.csv").write_text("secret,1\nhidden,2\n")
    pq.write_table(pa.table({"secret": ["outside-parquet"]}), outside / "o.parquet")
    return out, outside


def _one_line_error(capsys, argv) -> str:
    from flows.cli import main

    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1, cap
    return cap.err.rstrip("\n")


def _state(path: Path):
    """Bytes of a file, the sorted listing of a folder, or None when nothing is there."""
    if path.is_dir():
        return sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    return path.read_bytes() if path.exists() else None


def _refused_read(path: str, out) -> str:
    return f'refused: the query reads "{path}", which is not a file of the views; ' \
           f"tokatlas query reads only the views over {out}"


@pytest.mark.parametrize("probe", ["read_csv_passwd", "read_text_passwd", "read_parquet_outside", "glob_outside",
                                   "read_csv_outside", "read_text_in_root_not_a_view", "secrets_at_fetch"])
def test_query_reads_nothing_but_the_views(small_out, capsys, probe):
    out, outside = small_out
    sql, path = {
        "read_csv_passwd": ("SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"),
        "read_text_passwd": ("SELECT content FROM read_text('/etc/passwd')", "/etc/passwd"),
        "read_parquet_outside": (f"SELECT * FROM read_parquet('{outside}/o.parquet')", f"{outside}/o.parquet"),
        "glob_outside": (f"SELECT * FROM glob('{outside}/**')", f"{outside}/**"),
        "read_csv_outside": (f"SELECT p.lang, s.* FROM premium p, read_csv('{outside}/secret.csv') s",
                             f"{outside}/secret.csv"),
        "read_text_in_root_not_a_view": (f"SELECT content FROM read_text('{out}/registry/secret.txt')",
                                         f"{out}/registry/secret.txt"),
        # refused only when the result is fetched, not when the query is bound
        "secrets_at_fetch": ("SELECT * FROM duckdb_secrets()", f"{Path.home()}/.duckdb/stored_secrets"),
    }[probe]
    line = _one_line_error(capsys, ["query", sql, "--out", str(out)])
    assert line == "tokatlas: error: " + _refused_read(path, out)
    for secret in ("root:", "secret,", "hidden", "outside-parquet", "registry-secret", "o.parquet'"):
        assert secret not in line.split("reads ")[0]
    from jobs.store.query import explained

    with pytest.raises(QueryError) as e:
        rel = query(out, sql)
        with explained(out, None, sql):
            rel.fetchall()
    assert str(e.value) == _refused_read(path, out)


def _write_probes(out: Path, outside: Path) -> dict[str, tuple[str, Path, str]]:
    """probe -> (SQL, the file it would write, the error expected)."""
    own = out / "premium" / "corpus=c1" / "reference=eng_Latn.parquet"
    pth = outside / "site-packages" / "tokatlas_probe.pth"
    pth.parent.mkdir(exist_ok=True)
    (outside / "tokatlas_probe.duckdb_extension").write_bytes(b"not an extension")

    def refused(kind):
        return f"refused {kind} statement: {READS_ONLY}"
    return {
        "copy_to_file": (f"COPY (SELECT * FROM premium) TO '{outside}/copied.csv'", outside / "copied.csv",
                         refused("COPY")),
        "copy_over_own_parquet": (f"COPY (SELECT 1 AS x) TO '{own}' (FORMAT parquet)", own, refused("COPY")),
        "pth_into_site_packages": (f"COPY (SELECT 'import os; os.system(''touch {outside}/pwned'')') TO '{pth}' "
                                   "(HEADER false, QUOTE '')", pth, refused("COPY")),
        "attach": (f"ATTACH '{outside}/attached.duckdb' AS a", outside / "attached.duckdb", refused("ATTACH")),
        "install": (f"INSTALL tokatlas_probe FROM '{outside}/repo'", Path.home() / ".duckdb", refused("INSTALL")),
        "load": (f"LOAD '{outside}/tokatlas_probe.duckdb_extension'", outside / "tokatlas_probe.duckdb_extension",
                 refused("LOAD")),
        "set_external_access": ("SET enable_external_access = true", own, refused("SET")),
        "pragma": ("PRAGMA version", own, refused("PRAGMA")),
        "call": ("CALL pragma_version()", own, refused("CALL")),
        "export": (f"EXPORT DATABASE '{outside}/exported'", outside / "exported", refused("EXPORT")),
        "create": (f"CREATE TABLE copied AS SELECT * FROM read_csv('{outside}/secret.csv')", own, refused("CREATE")),
        "two_statements": (f"SELECT * FROM premium; COPY premium TO '{outside}/second.csv'", outside / "second.csv",
                           "give exactly one SQL statement, not 2"),
        "two_reads": ("SELECT 1; SELECT 2", own, "give exactly one SQL statement, not 2"),
        "no_statement": (" ; -- nothing", own, "give exactly one SQL statement, not 0"),
    }


@pytest.mark.parametrize("probe", ["copy_to_file", "copy_over_own_parquet", "pth_into_site_packages", "attach",
                                   "install", "load", "set_external_access", "pragma", "call", "export", "create",
                                   "two_statements", "two_reads", "no_statement"])
def test_query_runs_one_statement_that_only_reads(small_out, capsys, probe):
    out, outside = small_out
    sql, target, expected = _write_probes(out, outside)[probe]
    before, root_before = _state(target), _state(out)
    own_bytes = _state(out / "premium" / "corpus=c1" / "reference=eng_Latn.parquet")
    assert _one_line_error(capsys, ["query", sql, "--out", str(out)]) == "tokatlas: error: " + expected
    with pytest.raises(QueryError) as e:
        query(out, sql)
    assert str(e.value) == expected
    assert _state(target) == before and _state(out) == root_before
    assert _state(out / "premium" / "corpus=c1" / "reference=eng_Latn.parquet") == own_bytes
    assert not (outside / "pwned").exists()
    assert query(out, "SELECT lang, ctc FROM premium ORDER BY lang").fetchall() == [("deu_Latn", 130),
                                                                                    ("eng_Latn", 100)]


def test_sandboxed_connection_is_locked_and_trusted_keeps_full_duckdb(small_out):
    import duckdb

    out, outside = small_out
    con = duckdb_connection(out)
    with pytest.raises(duckdb.InvalidInputException, match="the configuration has been locked"):
        con.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.PermissionException, match="file system operations are disabled"):
        con.sql(f"SELECT * FROM read_csv('{outside}/secret.csv')")
    assert con.sql("SELECT current_setting('enable_external_access'), current_setting('lock_configuration'), "
                   "current_setting('autoload_known_extensions'), current_setting('autoinstall_known_extensions')"
                   ).fetchall() == [(False, True, False, False)]
    trusted = duckdb_connection(out, trusted=True)
    assert trusted.sql(f"SELECT * FROM read_csv('{outside}/secret.csv', header=false) ORDER BY 2").fetchall() == [
        ("secret", 1), ("hidden", 2)]
    assert trusted.sql("SELECT lang FROM premium ORDER BY 1").fetchall() == [("deu_Latn",), ("eng_Latn",)]
    assert query(out, f"SELECT count(*) FROM read_csv('{outside}/secret.csv')", trusted=True).fetchall() == [(2,)]


def test_ordinary_queries_return_the_exact_rows(small_out, capsys):
    from flows.cli import main

    out, _ = small_out
    sql = ("WITH p AS (SELECT lang, ctc, premium_ctc FROM premium) "
           "SELECT lang, ctc, premium_ctc FROM p ORDER BY lang")
    expected = [(r["lang"], r["ctc"], r["premium_ctc"]) for r in sorted(PREMIUM_ROWS, key=lambda r: r["lang"])]
    assert query(out, sql).fetchall() == expected
    assert query(out, "FROM premium SELECT lang ORDER BY lang;").fetchall() == [("deu_Latn",), ("eng_Latn",)]
    assert query(out, "DESCRIBE premium").fetchall()[0][:2] == ("corpus", "VARCHAR")
    capsys.readouterr()
    assert main(["query", sql, "--out", str(out), "--json"]) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == [
        {"lang": a, "ctc": b, "premium_ctc": c} for a, b, c in expected]
    assert main(["query", "--list", "--out", str(out)]) == 0
    assert capsys.readouterr().out == "premium: " + ", ".join(DATASETS["premium"].schema.names) + "\n"


# -- terminal and Markdown escaping -------------------------------------------------------------
HOSTILE = "evil\x1b]0;pwned\x07 \x9b2J \u202eabc|x`y<b>\nz"
HOSTILE_TERMINAL = "evil\\x1b]0;pwned\\x07 \\x9b2J \\u202eabc|x`y<b>\\nz"  # printable(HOSTILE)
HOSTILE_MARKDOWN = "evil\\x1b]0;pwned\\x07 \\x9b2J \\u202eabc\\|x\\`y&lt;b>\\nz"
RAW_CONTROL = ("\x1b", "\x07", "\x9b", "\u202e")


def test_query_table_view_escapes_control_characters(tmp_path, capsys):
    from flows.cli import main

    rows = [{**PREMIUM_ROWS[0], "tokenizer_name": HOSTILE}]
    write_parquet_atomic(conform(pa.Table.from_pylist(rows), DATASETS["premium"], files=True),
                         tmp_path / "premium" / "corpus=c1" / "reference=eng_Latn.parquet")
    sql = 'SELECT tokenizer_name, tokenizer_name AS "col\x1b[31m" FROM premium'
    assert main(["query", sql, "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert not any(c in text for c in RAW_CONTROL)
    assert text.count(HOSTILE_TERMINAL) == 2 and "col\\x1b[31m" in text


def test_tokenizers_list_and_show_escape_control_characters(tmp_path, capsys, shared_tokenizers):
    from flows.cli import main
    from jobs.store.layout import registry_dir
    from schemas import TOKENIZERS
    from tokenizers_registry.registry import Registry

    reg = Registry(registry_dir(tmp_path))
    s = reg.add(shared_tokenizers / "minilm_wordpiece.tokenizer.json", name="minilm", provenance=HOSTILE)
    assert main(["tokenizers", "show", "minilm", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert not any(c in text for c in RAW_CONTROL)
    # json.dumps escapes C0 controls and the newline itself; printable the C1 CSI and the bidi override
    assert '  "provenance": "evil\\u001b]0;pwned\\u0007 \\x9b2J \\u202eabc|x`y<b>\\nz",\n' in text
    # a registry table written by hand (or an older version) with a hostile name
    table = pq.read_table(reg.table_path)
    write_parquet_atomic(conform(table.set_column(1, "name", pa.array([HOSTILE])), TOKENIZERS, files=True),
                         reg.table_path)
    assert main(["tokenizers", "list", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"{s.tokenizer_id:16}  {HOSTILE_TERMINAL:28}  {s.format:20}  {s.algorithm:9}  {s.vocab_size}"


def test_markdown_cell_escapes_table_syntax_html_and_controls():
    from jobs.reports.html import markdown_cell

    assert markdown_cell(HOSTILE) == HOSTILE_MARKDOWN
    assert markdown_cell("a\\|b") == "a\\\\\\|b"  # a trailing backslash cannot unescape the pipe
    assert markdown_cell("gpt2 (1.5) [0.9, 1.2] eng_Latn") == "gpt2 (1.5) [0.9, 1.2] eng_Latn"


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells, split on unescaped pipes."""
    import re

    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_premium_report_markdown_escapes_names(tmp_path):
    from jobs.reports.premium import render_premium_report

    rows = [{**r, "corpus": "c|1<x>", "tokenizer_name": HOSTILE} for r in PREMIUM_ROWS]
    table = conform(pa.Table.from_pylist(rows), DATASETS["premium"])
    md = render_premium_report(table, tmp_path, title="Token premium on c|1<x>\n# injected")["markdown"].read_text()
    assert md.startswith("# Token premium on c\\|1&lt;x>\\n# injected\n")
    assert "Corpus **c\\|1&lt;x>**, reference **eng_Latn**" in md
    assert not any(c in md for c in RAW_CONTROL) and "<b>" not in md and "<x>" not in md
    summary = md.split("## Tokenizers (fairest first)\n\n")[1].split("\n\n")[0].splitlines()
    assert len(summary) == 3
    assert _cells(summary[2]) == [HOSTILE_MARKDOWN, "1", "1.30", "-", "1.30", "0", "deu_Latn 1.30", "deu_Latn 1.30"]


def test_mixture_report_markdown_escapes_names(tmp_path):
    from jobs.reports.mixture import markdown_table, write_mixture_report

    est = {HOSTILE: {"categories": ["a|b", "c`d"], "proportion": [0.25, 0.75], "lo": None, "hi": None,
                     "status": "optimal", "n_constraints": 3, "T": 10}}
    md = (write_mixture_report(tmp_path, est) / "report.md").read_text()
    assert not any(c in md for c in RAW_CONTROL) and "<b>" not in md
    lines = md.splitlines()
    assert _cells(lines[4]) == ["category", HOSTILE_MARKDOWN]
    assert [_cells(x) for x in lines[6:8]] == [["c\\`d", "75.0"], ["a\\|b", "25.0"]]
    assert _cells(next(x for x in lines if x.startswith("| evil"))) == [
        HOSTILE_MARKDOWN, "10", "", "of", "(+0 manual)", "optimal", "3", "", "0.0", "0 x"]
    assert markdown_table([{"tokenizer": "x|y\n", "mse": 0.5}], ["tokenizer", "mse"]).splitlines()[2] == \
        "| x\\|y\\n | 0.5 |"
