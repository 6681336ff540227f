"""`tokatlas` command line: runs the flows and manages the tokenizer registry.

    tokatlas run                                   embedded default (Django catalogs, default tokenizers)
    tokatlas run --corpus-source flores-parquet --corpus-path ../shared/data/flores200/flores200_dev_devtest.parquet \\
                 --tokenizer-manifest ../shared/data/tokenizers/MANIFEST.json --out out/flores
    tokatlas run --config premium.yaml             same parameters from YAML (CLI flags win)
    tokatlas tokenizers add FILE [--name N] [--format F] [--pattern REGEX] --out OUT
    tokatlas tokenizers list|show NAME --out OUT
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import fields
from pathlib import Path

from flows.prefect_env import configure_prefect_env
from jobs.args import csv_list
from tokenizers_registry.base import ConfigError, TokatlasError

EXTRA_COMMANDS = ("flows.grid_flow", "flows.mixture_flow", "flows.trim_flow")  # modules exposing add_cli(subparsers)


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
    p.add_argument("--corpus-source", help="django | flores-parquet | flores-folder | flores-plus-hub | udhr | "
                                           "parquet | jsonl | text")
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
    p.add_argument("--spark-master", help="Spark master URL (default local[*] or $TOKATLAS_SPARK_MASTER)")
    p.set_defaults(func=cmd_run)


def params_from_args(a):
    from flows.premium_flow import PremiumParams

    values = {}
    if a.config:
        import yaml

        values.update(yaml.safe_load(Path(a.config).read_text()) or {})
        unknown = set(values) - {f.name for f in fields(PremiumParams)}
        if unknown:
            raise ConfigError(f"{a.config}: unknown keys {sorted(unknown)}; known: "
                              f"{', '.join(f.name for f in fields(PremiumParams))}")
    for f in fields(PremiumParams):
        v = getattr(a, f.name, None)
        if f.name in ("languages", "tokenizers") and isinstance(v, str):
            v = csv_list(v)
        if v is not None:
            values[f.name] = v
    return PremiumParams(**values)


def cmd_run(a) -> int:
    params = params_from_args(a).checked()  # fails here, before Spark or Prefect start
    configure_prefect_env()
    from flows.premium_flow import token_premium

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
    print(f"done in {result['seconds']:.1f}s")
    return 0


def add_tokenizers(sub) -> None:
    p = sub.add_parser("tokenizers", help="add, list and show registered tokenizers")
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
    man = tsub.add_parser("add-manifest", help="register every tokenizer a MANIFEST.json lists")
    man.add_argument("manifest")
    tsub.add_parser("list", help="list registered tokenizers")
    show = tsub.add_parser("show", help="show one tokenizer's spec")
    show.add_argument("name")
    for q in (add, man, *tsub.choices.values()):
        if not any(x.dest == "out" for x in q._actions):
            q.add_argument("--out", default="tokatlas-out", help="output root holding registry/")
    p.set_defaults(func=cmd_tokenizers)


def cmd_tokenizers(a) -> int:
    from jobs.layout import registry_dir
    from tokenizers_registry.registry import Registry

    reg = Registry(registry_dir(a.out))
    if a.action == "add":
        params = {"pattern": a.pattern} if a.pattern else None
        s = reg.add(a.file, name=a.name, fmt=a.format, params=params, provenance=a.provenance,
                    expected_sha256=a.sha256)
        print(f"{s.tokenizer_id}  {s.name}  {s.format}  {s.algorithm}  vocab {s.vocab_size}")
    elif a.action == "add-manifest":
        for s in reg.add_manifest(a.manifest):
            print(f"{s.tokenizer_id}  {s.name}  {s.format}  {s.algorithm}  vocab {s.vocab_size}")
    elif a.action == "list":
        specs = reg.specs()
        print(f"{'id':16}  {'name':28}  {'format':20}  {'algorithm':9}  vocab")
        for s in specs:
            print(f"{s.tokenizer_id:16}  {s.name:28}  {s.format:20}  {s.algorithm or '':9}  {s.vocab_size}")
        print(f"{len(specs)} tokenizers in {reg.root}")
    else:
        row = reg.get(a.name).to_row()
        row["added_at"] = str(row["added_at"])
        print(json.dumps(row, indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokatlas", description="Measure how tokenizers treat the world's "
                                     "languages.", epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_run(sub)
    add_tokenizers(sub)
    for mod in EXTRA_COMMANDS:
        try:
            importlib.import_module(mod).add_cli(sub)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TokatlasError as e:
        print(f"tokatlas: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
