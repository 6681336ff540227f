"""`tokatlas` command line: runs the flows and manages the tokenizer registry.

examples (`tokatlas COMMAND --help` for each command's options):
    tokatlas run                                   embedded default (Django catalogs, default tokenizers)
    tokatlas run --corpus-source flores-parquet --corpus-path ../shared/data/flores200/flores200_dev_devtest.parquet \\
                 --tokenizer-manifest ../shared/data/tokenizers/MANIFEST.json --out out/flores
    tokatlas run --config premium.yaml             same parameters from YAML (CLI flags win)
    tokatlas tokenizers add FILE [--name N] [--format F] [--pattern REGEX] --out OUT
    tokatlas tokenizers list|show NAME --out OUT
    tokatlas status --out OUT [--corpus C] [--tokenizers gpt2,o200k_base]     computed / failed / missing cells
    tokatlas query "SELECT lang, avg(premium_ctc) FROM premium GROUP BY ALL" --out OUT [--csv F | --parquet F | --json]
    tokatlas catalog --out OUT [--docs docs/datasets.md]                        dataset catalog (catalog.json)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from flows.prefect_env import configure_prefect_env, one_line_errors
from jobs.corpus.sources import SOURCES
from jobs.runtime.params import add_spark_options, csv_list, params_from_args, parse_command_line
from schemas.errors import ConfigError, TokatlasError
from schemas.names import printable

# Modules exposing add_cli(subparsers), each adding its own command.
EXTRA_COMMANDS = ("flows.grid_flow", "flows.mixture_flow", "flows.trim_flow", "flows.site_flow", "flows.deployments")


def add_run(sub) -> None:
    p = sub.add_parser("run", help="run the token-premium flow",
                       description="Ingest a parallel corpus, register tokenizers, encode every (tokenizer, "
                                   "language) cell on Spark, write Parquet and a report. With no arguments it "
                                   "runs on the embedded default corpus and tokenizers.",
                       epilog="example: tokatlas run --corpus-source flores-parquet --corpus-path "
                              "../shared/data/flores200/flores200_dev_devtest.parquet --tokenizer-manifest "
                              "../shared/data/tokenizers/MANIFEST.json --out out/flores",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with flow parameters (keys as below, underscores)")
    p.add_argument("--out", help="output root (default tokatlas-out)")
    p.add_argument("--corpus-source", help=" | ".join(SOURCES))
    p.add_argument("--corpus-path")
    p.add_argument("--corpus-name")
    p.add_argument("--languages", help="comma-separated iso639_3_Script codes (default: all)")
    p.add_argument("--min-language-coverage", type=float)
    p.add_argument("--tokenizer-manifest", help="MANIFEST.json listing tokenizer files")
    p.add_argument("--tokenizer-file", action="append", dest="tokenizer_files", help="tokenizer file (repeatable)")
    p.add_argument("--tokenizers", help="comma-separated registry names/ids to use")
    p.add_argument("--reference", dest="reference_lang", help="reference language (default eng_Latn)")
    p.add_argument("--bootstrap", dest="n_bootstrap", type=int, help="bootstrap replicates (default 1000)")
    p.add_argument("--no-word-stats", dest="word_stats", action="store_false", default=None,
                   help="skip continued-word counts (faster encode)")
    p.add_argument("--shard-size", type=int, help="sentences per encode cell (default: whole language)")
    add_spark_options(p)
    p.set_defaults(func=cmd_run)


def cmd_run(a) -> int:
    from flows.premium_flow import PremiumParams
    from jobs.preflight import check_premium

    params = check_premium(params_from_args(PremiumParams, a).checked())  # fails here, before Spark or Prefect start
    configure_prefect_env()
    from flows.premium_flow import token_premium

    one_line_errors()

    result = token_premium(params)
    enc, ing = result["encode"], result["ingest"]
    print(f"corpus {params.corpus_name}: {ing.get('rows_kept')} sentences kept, {ing.get('rows_rejected')} "
          f"quarantined {ing.get('rejects_by_reason') or ''}")
    print(f"cells: {enc['cells_planned']} planned, {enc['cells_skipped']} already done, {enc['cells_ok']} encoded, "
          f"{enc['cells_failed']} failed")
    for f in enc["failures"][:20]:
        print("  failed:", *f)
    print(f"premium table: {result['report']['premium']}")
    print(f"report:        {result['report']['html']}")
    print(f"datasets:      {Path(params.out) / 'catalog.json'}  (tokatlas query --list --out {params.out})")
    print(f"done in {result['seconds']:.1f}s")
    return 0


def add_tokenizers(sub) -> None:
    p = sub.add_parser("tokenizers", help="add, list and show registered tokenizers",
                       epilog="example: tokatlas tokenizers add-manifest ../shared/data/tokenizers/MANIFEST.json "
                              "--out out/flores")
    tsub = p.add_subparsers(dest="action", required=True)
    add = tsub.add_parser("add", help="register a tokenizer file",
                          epilog="example: tokatlas tokenizers add ../shared/data/tokenizers/gpt2.tiktoken "
                                 "--name gpt2 --pattern \"'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| "
                                 "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+\"")
    add.add_argument("file")
    add.add_argument("--name")
    add.add_argument("--format", help="hf-tokenizer-json | sentencepiece-model | tiktoken-ranks | tekken-json | "
                                      "clip-merges (default: sniffed)")
    add.add_argument("--pattern", help="pre-tokenization regex (tiktoken rank files need one)")
    add.add_argument("--sha256", help="expected sha256 of the file")
    add.add_argument("--provenance")
    man = tsub.add_parser("add-manifest", help="register every tokenizer a MANIFEST.json lists",
                          epilog="example: tokatlas tokenizers add-manifest ../shared/data/tokenizers/MANIFEST.json "
                                 "--out out/flores")
    man.add_argument("manifest")
    man.add_argument("--allow-manifest-outside", action="store_true",
                     help="accept `file` entries outside the manifest's folder (refused by default)")
    tsub.add_parser("list", help="list registered tokenizers", epilog="example: tokatlas tokenizers list --out out/flores")
    show = tsub.add_parser("show", help="show one tokenizer's spec",
                           epilog="example: tokatlas tokenizers show gpt2 --out out/flores")
    show.add_argument("name")
    for q in (add, man, *tsub.choices.values()):
        if not any(x.dest == "out" for x in q._actions):
            q.add_argument("--out", default="tokatlas-out", help="output root holding registry/")
    p.set_defaults(func=cmd_tokenizers)


def cmd_tokenizers(a) -> int:
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import Registry

    reg = Registry(registry_dir(a.out))
    if a.action == "add":
        params = {"pattern": a.pattern} if a.pattern else None
        s = reg.add(a.file, name=a.name, fmt=a.format, params=params, provenance=a.provenance,
                    expected_sha256=a.sha256)
        print(f"{s.tokenizer_id}  {s.name}  {s.format}  {s.algorithm}  vocab {s.vocab_size}")
    elif a.action == "add-manifest":
        for s in reg.add_manifest(a.manifest, allow_outside=a.allow_manifest_outside):
            print(f"{s.tokenizer_id}  {s.name}  {s.format}  {s.algorithm}  vocab {s.vocab_size}")
    elif a.action == "list":
        from schemas.names import printable  # names may come from third-party manifests

        specs = reg.specs()
        print(f"{'id':16}  {'name':28}  {'format':20}  {'algorithm':9}  vocab")
        for s in specs:
            print(f"{printable(s.tokenizer_id):16}  {printable(s.name):28}  {printable(s.format):20}  "
                  f"{printable(s.algorithm or ''):9}  {s.vocab_size}")
        print(f"{len(specs)} tokenizers in {printable(str(reg.root))}")
    else:
        from schemas.names import printable

        row = reg.get(a.name).to_row()
        row["added_at"] = str(row["added_at"])
        # JSON escapes C0 controls; printable the C1 ones, bidi overrides and lone surrogates too
        print(printable(json.dumps(row, indent=2, ensure_ascii=False), newlines=True))
    return 0


def add_status(sub) -> None:
    p = sub.add_parser("status", help="computed / failed / missing encode cells of a corpus x registry",
                       description="For an ingested corpus and the registered tokenizers (or those named), count the "
                                   "(tokenizer, language) cells whose token counts are computed, failed (a "
                                   "cell_failures row) or missing, per tokenizer and in total. Reads files only: "
                                   "no Spark, no Prefect.",
                       epilog="examples:\n  tokatlas status --out out/flores\n"
                              "  tokatlas status --out out/flores --corpus flores200 --tokenizers gpt2,o200k_base --json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="tokatlas-out", help="output root")
    p.add_argument("--corpus", help="ingested corpus name (default: the only one under --out)")
    p.add_argument("--tokenizers", help="comma-separated registry names or ids (default: all registered)")
    p.add_argument("--languages", help="comma-separated iso639_3_Script codes (default: all of the corpus)")
    p.add_argument("--shard-size", type=int, help="the --shard-size the run used (default: one cell per language)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_status)


def cmd_status(a) -> int:
    from jobs.encode import encode_status

    s = encode_status(a.out, a.corpus, csv_list(a.tokenizers), csv_list(a.languages), a.shard_size)
    if a.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"corpus {s['corpus']} ({s['languages']} languages) x {len(s['tokenizers'])} tokenizers under {a.out}")
    print(f"{'tokenizer':28}  {'id':16}  {'computed':>8}  {'failed':>6}  {'missing':>7}  {'cells':>5}")
    for r in s["tokenizers"]:
        print(f"{r['name']:28}  {r['tokenizer_id']:16}  {r['computed']:>8}  {r['failed']:>6}  {r['missing']:>7}  "
              f"{r['cells']:>5}")
    t = s["total"]
    print(f"{'total':28}  {'':16}  {t['computed']:>8}  {t['failed']:>6}  {t['missing']:>7}  {t['cells']:>5}")
    for r in s["tokenizers"]:
        if r["missing_languages"]:
            langs = r["missing_languages"]
            print(f"  {r['name']} missing: {', '.join(langs[:12])}{' …' if len(langs) > 12 else ''}")
    print("premium tables: " + (", ".join(s["premium_tables"]) or "none yet"))
    return 0


def add_query(sub) -> None:
    p = sub.add_parser("query", help="run DuckDB SQL over every dataset under an output root",
                       description="Every dataset present under --out is a view named after it (see "
                                   "docs/datasets.md or `tokatlas query --list`): hive partitions typed as "
                                   "declared, files of older versions read with missing columns as null. Read-only: one "
                                   "statement that reads, and no file but the views' (docs/security.md).",
                       epilog="examples:\n"
                              "  tokatlas query \"SELECT tokenizer_name, lang, premium_ctc FROM premium ORDER BY "
                              "premium_ctc DESC LIMIT 10\" --out out/flores\n"
                              "  tokatlas query \"SELECT lang, tokenizer_id, sum(n_tokens) AS tokens FROM token_counts "
                              "GROUP BY ALL\" --out out/flores --csv tokens.csv\n"
                              "  tokatlas query --list --out out/flores",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sql", nargs="?", help="the SQL query")
    p.add_argument("--out", default="tokatlas-out", help="output root")
    p.add_argument("--list", action="store_true", help="list the views and their columns instead")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--csv", metavar="FILE", help="write the result as CSV")
    g.add_argument("--parquet", metavar="FILE", help="write the result as Parquet")
    g.add_argument("--json", action="store_true", help="print the result as JSON lines")
    p.add_argument("--max-rows", type=int, default=50, help="rows shown in the printed table (default 50)")
    p.set_defaults(func=cmd_query)


def cmd_query(a) -> int:
    from jobs.store.query import (
        QueryError,
        datasets_named,
        duckdb_connection,
        explained,
        printable_table,
        query,
    )
    from schemas.names import printable

    # Sandboxed (read-only, confined to the views' files, one statement): docs/security.md.
    con = duckdb_connection(a.out, only=None if a.list else datasets_named(a.sql or ""))
    if a.list:
        rows = con.execute("SELECT table_name, string_agg(column_name, ', ' ORDER BY ordinal_position) "
                           "FROM information_schema.columns WHERE table_schema = 'main' GROUP BY 1 "
                           "ORDER BY 1").fetchall()
        for name, cols in rows:
            print(printable(f"{name}: {cols}"))  # extra columns are named by the files
        if not rows:
            print(f"no datasets under {a.out}")
        return 0
    if not a.sql:
        raise QueryError("give a SQL query, e.g. tokatlas query \"SELECT * FROM premium LIMIT 5\", or --list")
    rel = query(a.out, a.sql, con)
    if rel is None:
        return 0
    with explained(a.out, con, a.sql):
        table = rel.to_arrow_table()
    if a.parquet or a.csv:
        from jobs.store.atomic import write_csv_atomic, write_parquet_atomic

        (write_parquet_atomic if a.parquet else write_csv_atomic)(table, a.parquet or a.csv)
        print(f"{table.num_rows} rows -> {a.parquet or a.csv}")
    elif a.json:
        for row in table.to_pylist():
            print(json.dumps(row, default=str, ensure_ascii=False))
    else:
        import polars as pl

        with pl.Config(tbl_rows=a.max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            print(pl.from_arrow(printable_table(table)))
    return 0


def add_catalog(sub) -> None:
    p = sub.add_parser("catalog", help="write the dataset catalog (OUT/catalog.json, docs/datasets.md)",
                       description="The catalog is generated from schemas/: every dataset's files, partitioning, "
                                   "key, writer and columns with their meaning; catalog.json adds what is present "
                                   "under the output root and the last run of each flow.",
                       epilog="examples:\n  tokatlas catalog --out out/flores\n"
                              "  tokatlas catalog --docs docs/datasets.md",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="output root: write OUT/catalog.json")
    p.add_argument("--docs", metavar="FILE", help="write the Markdown catalog (docs/datasets.md)")
    p.set_defaults(func=cmd_catalog)


def cmd_catalog(a) -> int:
    from jobs.store.catalog import write_catalog, write_docs

    if not a.out and not a.docs:
        raise ConfigError("give --out OUT (writes OUT/catalog.json) and/or --docs FILE")
    if a.docs:
        print(f"wrote {write_docs(a.docs)}")
    if a.out:
        print(f"wrote {write_catalog(a.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokatlas", description="Measure how tokenizers treat the world's "
                                     "languages.", epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_tokenizers(sub)
    add_status(sub)
    add_query(sub)
    add_catalog(sub)
    for mod in EXTRA_COMMANDS:
        try:
            importlib.import_module(mod).add_cli(sub)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; `given_dests` names the options typed (see `jobs.runtime.params.given`)."""
    return parse_command_line(build_parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    one_line_errors()
    try:
        return args.func(args)
    except TokatlasError as e:
        print(f"tokatlas: error: {printable(str(e))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
