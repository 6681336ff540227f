"""Check that a code change (e.g. moving modules around) does not change what tokatlas writes.

    record   runs a fixed set of small scenarios through the real CLI into a work folder and
             writes a canonical digest of every dataset and artifact they wrote;
    compare  compares two digests and prints every difference (exit 1 if there is any);
    digest   re-digests a work folder recorded before, without running anything (it rewrites
             --digest with the scenarios of --only, default all).

    python bench/compare_outputs.py record --python /work/base/.venv/bin/python \\
        --work /work/baseline/work --digest /work/baseline/digest.json [--only default,flores,grid,trim,mixture]
    python bench/compare_outputs.py record --python /work/main/.venv/bin/python \\
        --work /work/after/work --digest /work/after/digest.json
    python bench/compare_outputs.py compare /work/baseline/digest.json /work/after/digest.json

The script only runs the CLI (the `tokatlas` console script beside `--python`, else
`PYTHON -m flows.cli`, or `--cli "..."`) and reads outputs with pyarrow, json and the standard
library; it imports nothing from the project, so the same file works on the old and the new
module layout. Each run gets DO_NOT_TRACK=1, PREFECT_SERVER_ANALYTICS_ENABLED=false,
SPARK_LOCAL_IP=127.0.0.1, TZ=UTC, PYSPARK_PYTHON=--python, a private PREFECT_HOME in the work
folder, and none of the caller's TOKATLAS_*, PREFECT_*, SPARK_*, PYSPARK_* variables.

Scenarios. Inputs are prepared in W/_inputs: `flores200_subset.parquet` (the 16,072 rows of
the 8 languages used below, filtered from the shared FLORES-200 file with pyarrow, so that
ingest reads 16k rows, not 410k), a 4-tokenizer subset of the shared MANIFEST.json (gpt2: tiktoken,
claude-legacy: HF BPE, mistral-v1: SentencePiece BPE, minilm-wordpiece: HF WordPiece) copied
beside its new manifest, and grid.yaml (every key given, paths relative to it). Every option
with a default is given; Spark is `--spark-master local[2] --spark-launcher in-process`. Seeds are
not CLI options: the premium and mixture bootstraps use the flows' fixed seed 0.

  default  tokatlas run --out W/default --corpus-source django --corpus-name django
           --reference eng_Latn --bootstrap 1000 --min-language-coverage 0.95
           (the embedded default: Django gettext catalogs, 48 languages, four tokenizers trained
           on the spot + Mistral Tekken and v1 from mistral-common)
  flores   tokatlas run --corpus-source flores-parquet --corpus-path W/_inputs/flores200_subset.parquet
           --corpus-name flores200 --languages eng_Latn,deu_Latn,zho_Hans,hin_Deva,arb_Arab
           --min-language-coverage 0.95 --tokenizer-manifest W/_inputs/tokenizers/MANIFEST.json
           --reference eng_Latn --bootstrap 200 --shard-size 1000
  grid     tokatlas grid run --spec W/_inputs/grid.yaml --registry-root W/grid/registry --wave-size 0:
           eng_Latn,fin_Latn,rus_Cyrl x hf-bpe,sp-bpe x V 500,1000 x 60 kB scaled by byte premium,
           train FLORES dev, evaluate devtest, target auto, no second pass (12 tokenizers).
           hf-unigram/hf-wordpiece are left out: their artifacts are not reproducible (below).
  trim     tokatlas trim --tokenizer gpt2, then --tokenizer mistral-v1 (same output root), each
           --tokenizer-manifest ... --corpus-source flores-parquet --corpus-path ... --corpus-name
           flores200 --languages eng_Latn,fra_Latn --coverage-languages deu_Latn,zho_Hans
           --min-frequency 1 --splits dev --heldout-splits devtest --hidden-size 768
  mixture  tokatlas mixture infer --tokenizers gpt2,mistral-v1 --flores ... --languages
           eng_Latn,deu_Latn,rus_Cyrl,zho_Hans --code-bytes 20000 --T 200 --lp-T 200
           --no-reuse-counts --bootstrap 2 --bootstrap-unit merges --lp-method lazy
           --gap-tolerance 1e-6 (no --lp-max-seconds: a time limit makes the result load-dependent)

Digest. Every file under each scenario's output root is one entry (key = scenario/path):
  * Parquet: one dataset per folder relative to the output root (hive partition folders are
    part of the key: `token_counts/lang=eng_Latn`; file names, which hold ids and start times,
    are not); a folder whose files have different schemas (`coverage/corpus=flores200/`,
    `trim/<tok>/<run>/`, `grid/<grid>/analysis/`) gives one dataset per file. Per dataset:
    schema (names and types as strings), column docs, files, rows, sha256 of the normalised rows
    sorted canonically, sha256 per column (to name the columns that differ). The sorted rows
    are stored beside the digest (`<digest>.rows/`, Parquet, one JSON line per row) so that
    `compare` shows the differing rows.
  * JSON (summaries, catalog.json, _ingest.json, samples.json, trim.json, loader_params.json,
    solution and replicate files): normalised, dumped with sorted keys, hashed, stored.
  * text (report.md, .html, .svg, ...): normalised, hashed, stored.
  * NumPy .npz (mixture solves): sha256 per member (the zip headers hold write times).
  * tokenizer artifacts (`registry/artifacts/**`, `trained/**`, trimmed tokenizer files in
    `trim/**`), PNG, CSS, JS, `_SUCCESS` and every other file: sha256 of the exact bytes.
  * skipped: only Hadoop's `.*.crc` checksums beside Spark's part files (their content is
    digested itself). No HTML, SVG or PNG is skipped: HTML and SVG normalise (below), PNGs are
    byte-identical run to run; the exception is the default scenario's premium renderings
    (below), which are compared for presence only.

Normalisation (what differs between two runs of the same code, or after a move):
  * strings everywhere (values, JSON, text, keys): absolute paths -> `<out>` (the scenario's
    output root), `<work>`, `<shared>`, `<venv>`, `<repo>`, `<stdlib>`, `<python>`, `<home>`;
    ISO timestamps -> `<timestamp>`; UUIDs -> `<uuid>`; the host name -> `<host>`; names of
    project modules (dotted or slashed names under jobs, flows, tokenizers_registry, schemas,
    infra, bench, tokatlas, src, plus --module-root; e.g. `jobs/ingest.py`, `jobs.encode`,
    `tokenizers_registry.merges`) -> `<module>`: the names replaced are kept per entry
    (`modules`) and printed by `compare`, but not compared;
  * timestamp-typed Parquet columns (run_log started_at/finished_at, registry added_at,
    grid_cells trained_at) -> `<timestamp>`, nulls kept;
  * JSON held in Parquet string columns named *_json is parsed and normalised like a JSON file;
  * matplotlib's salted SVG ids (`p53a5464350`, `m5272049cba`, `image78aa54abc1`,
    `C0_0_f57bc5d1db`) are renumbered in order of first appearance;
  * the named fields of VOLATILE_COLUMNS, VOLATILE_KEYS, VOLATILE_MD_COLUMNS, VOLATILE_NPZ and
    PATH_RULES below -> `<volatile>`;
  * default scenario: default-hf-unigram-4k and default-hf-wordpiece-4k, trained on the spot by
    HF `tokenizers` 0.23, are not reproducible (even single-threaded, RAYON_NUM_THREADS=1: tied
    pieces get other ids run to run, and in one of two pairs WordPiece chose different pieces:
    token counts of 29 of 48 languages changed, e.g. als_Latn corpus tokens 9935 vs 9955). Their
    tokenizer_id and sha256 become `<unstable:NAME:id|sha256>` everywhere; their artifacts are
    digested without vocab/merges (configuration and sizes only); in rows measured with them
    (token_counts, corpus_counts, premium) every number except the text facts TEXT_COLUMNS
    becomes `<unstable>` (rows, keys, languages, sentence ids, bytes and chars still compared);
    the premium renderings that plot them beside the others (UNSTABLE_RENDERINGS) are compared
    for presence only (flores renders the same report from reproducible tokenizers, in full).

Evidence: each rule was added because a field differed between two records of 68ae867 (work
folders /tmp/probe/default vs default2, then /tmp/probe/w2 vs /work/baseline/work recorded at
the same time, then a third record with this file):
  * run_log/ (every flow): run_id (Prefect flow run UUID), started_at, finished_at, duration_s,
    stage_durations_json; in input_versions_json: files.*.mtime, corpus.ingest.fingerprint and
    its summary's seconds; paths in parameters_json and input_versions_json; file names (start
    time + run id); tokatlas_version is normalised because the brief says so (it did not change);
  * registry/tokenizers.parquet: added_at, source_path (absolute);
  * corpus/corpus=*/_ingest.json: fingerprint (jobs/fingerprint.py: source path, size, mtime),
    summary.seconds, out and path (absolute);
  * grid/cells: train_seconds, task_seconds, trained_at;
  * mixture/cells (Spark part files): seconds; mixture/estimates/.tokenizer=*.solution.json:
    lp_seconds, fingerprint; mixture/solves/tokenizer=*/<fingerprint>/ (folder named by a
    fingerprint over trajectory files' mtimes); main.npz: numbers[3] (solve seconds) and the
    zip members' times; reports/mixture/report.md: the "LP s" column;
  * trim/<tok>/<run>/summary.parquet trim_seconds and trim.json trim_seconds;
  * catalog.json: generated_at, output_root, last_runs[].run_id/started_at/finished_at, and
    datasets[].bytes (tokenizers, run_log, mixture_cells, default token_counts/premium change
    size with the paths, times and unstable tokenizers they hold; rows and files are compared);
  * SVG figures: <dc:date> and the salted ids above; PNGs were byte-identical;
  * default scenario: the two unstable tokenizers above.
Everything else (every other column, key and file, including all tokenizer artifacts, trimmed
tokenizers, grid-trained tokenizers, FLORES token counts, premiums, mixture estimates,
coverage and faithfulness tables) was identical and is compared exactly (floats bit for bit).
"""

from __future__ import annotations

import argparse
import ast
import base64
import datetime as dt
import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FORMAT = 1
SCENARIOS = ("default", "flores", "grid", "trim", "mixture")
MARKER = ".compare_outputs"
DEFAULT_SHARED = "/work/shared/data"
MODULE_ROOTS = ("jobs", "flows", "tokenizers_registry", "schemas", "infra", "bench", "tokatlas", "src")

# Manifest subset for the flores, trim and mixture scenarios: one tokenizer per format family.
SUBSET = ("gpt2", "claude-legacy", "mistral-v1", "minilm-wordpiece")
FLORES_LANGS = "eng_Latn,deu_Latn,zho_Hans,hin_Deva,arb_Arab"
TRIM_TOKENIZERS = ("gpt2", "mistral-v1")
MIXTURE_TOKENIZERS = "gpt2,mistral-v1"
MIXTURE_LANGS = "eng_Latn,deu_Latn,rus_Cyrl,zho_Hans"
GRID_LANGS = ("eng_Latn", "fin_Latn", "rus_Cyrl")
TRIM_LANGS, TRIM_COVERAGE = "eng_Latn,fra_Latn", "deu_Latn,zho_Hans"
FLORES_SUBSET = {*FLORES_LANGS.split(","), *MIXTURE_LANGS.split(","), *GRID_LANGS, *TRIM_LANGS.split(","),
                 *TRIM_COVERAGE.split(",")}
SPARK = ["--spark-master", "local[2]", "--spark-launcher", "in-process"]

# Tokenizers whose trained artifacts differ run to run (see the module docstring), per scenario;
# the renderings (figures, HTML and Markdown reports) that plot or tabulate them beside the others;
# and the columns of their measurement rows that describe the text, not the tokenizer (kept).
UNSTABLE_TOKENIZERS = {"default": ("default-hf-unigram-4k", "default-hf-wordpiece-4k")}
UNSTABLE_RENDERINGS = ("reports/premium-*", "site/premium.html", "site/fig/premium-*")
TEXT_COLUMNS = {"sentence_id", "n_sentences", "n_bytes", "n_chars", "n_words"}

# Volatile Parquet columns: (glob on the dataset key, i.e. its folder relative to the output
# root, column). The whole value is replaced by "<volatile>".
VOLATILE_COLUMNS: list[tuple[str, str]] = [
    ("run_log", "run_id"),
    ("run_log", "duration_s"),
    ("run_log", "stage_durations_json"),
    ("run_log", "tokatlas_version"),
    ("grid/cells", "train_seconds"),
    ("grid/cells", "task_seconds"),
    ("mixture/cells", "seconds"),
    ("trim/*", "trim_seconds"),
]
# Volatile JSON keys: (glob on the entry key: a JSON file's path relative to the output root, or
# "<dataset>:<column>" for JSON held in a Parquet column named *_json; key). The key matches at
# any depth, or is a dotted path from the top where `*` matches any key or list index.
VOLATILE_KEYS: list[tuple[str, str]] = [
    ("*", "seconds"),
    ("*", "fingerprint"),  # make-like skip keys over (path, size, mtime) of inputs: jobs/fingerprint.py
    ("trim/*/trim.json", "trim_seconds"),
    ("mixture/estimates/*.solution.json", "lp_seconds"),
    ("catalog.json", "generated_at"),
    ("catalog.json", "tokatlas_version"),
    ("catalog.json", "datasets.*.bytes"),
]

# Volatile columns of Markdown tables: (glob on the file's key, column header).
VOLATILE_MD_COLUMNS: list[tuple[str, str]] = [
    ("reports/mixture/report.md", "LP s"),  # LP wall seconds
]
# Volatile elements of NumPy .npz members: (glob on the file's key, member, flat indices).
VOLATILE_NPZ: list[tuple[str, str, tuple[int, ...]]] = [
    # jobs/mixture_solve.py save: numbers = [objective, n_constraints, n_rounds, seconds, T, ...]
    ("mixture/solves/*/main.npz", "numbers", (3,)),
]

# Volatile parts of file paths (entry keys): mixture solves live under a folder named by the
# fingerprint of their inputs, which includes the inputs' modification times.
PATH_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^(mixture/solves/tokenizer=[^/]+/)[0-9a-f]{16}(?=/|$)"), r"\1<fingerprint>"),
]

TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
SVG_ID_RE = re.compile(r"\b(image|C\d+_\d+_|[mp])([0-9a-f]{10})\b")  # matplotlib's salted ids
TEXT_EXT = {".md", ".html", ".htm", ".svg", ".txt", ".yaml", ".yml", ".csv", ".tsv", ".log"}
RAW_DIRS = ("registry/artifacts/", "trained/")
TRIM_META = {"loader_params.json", "trim.json"}
SHOW = 5  # differing rows / lines shown per entry


# ---------------------------------------------------------------------------------------------
# normalisation


class Normaliser:
    """String and value normalisation for one scenario's output root."""

    def __init__(self, out: Path, prefixes: dict[str, str], module_roots: tuple[str, ...],
                 unstable: dict[str, str]):
        self.out = out
        pairs = []
        for p, tag in [(str(out), "<out>"), *prefixes.items()]:
            for v in {p, os.path.realpath(p)}:
                if v and v != "/":
                    pairs.append((v.rstrip("/"), tag))
        pairs.sort(key=lambda x: -len(x[0]))  # longest first: <out> lies inside <work>
        self.prefix_tag = dict(pairs)
        alts = "|".join(re.escape(p) for p, _ in pairs) or "(?!)"
        self.prefix_re = re.compile(rf"(?<![\w.\-])(?:{alts})(?![\w.\-])")
        roots = "|".join(re.escape(r) for r in module_roots) or "(?!)"
        self.module_re = re.compile(rf"(?<![\w.\-<])(?:{roots})(?:[./][A-Za-z_][A-Za-z0-9_]*)+(?:\.py)?\b")
        self.unstable = sorted(unstable.items(), key=lambda x: -len(x[0]))
        self.host = socket.gethostname()
        self.modules: set[str] = set()
        self.cache: dict[str, str] = {}
        self.cache_modules: dict[str, set[str]] = {}

    def text(self, s: str) -> str:
        if len(s) <= 200:  # ids, names, languages, paths repeat across rows
            r = self.cache.get(s)
            if r is None:
                r = self.cache[s] = self._text(s)
            else:
                self.modules.update(self.cache_modules.get(s, ()))
            return r
        return self._text(s)

    def _text(self, s: str) -> str:
        orig = s
        for old, new in self.unstable:
            if old in s:
                s = s.replace(old, new)
        if "/" in s:
            s = self.prefix_re.sub(lambda m: self.prefix_tag[m.group(0)], s)
        s = TIMESTAMP_RE.sub("<timestamp>", s)
        s = UUID_RE.sub("<uuid>", s)
        if len(self.host) >= 4 and self.host in s:
            s = s.replace(self.host, "<host>")

        def module(m: re.Match) -> str:
            self.modules.add(m.group(0))
            self.cache_modules.setdefault(orig, set()).add(m.group(0))
            return "<module>"

        return self.module_re.sub(module, s)

    def value(self, v):
        """A JSON-able, normalised form of one Parquet/JSON value."""
        if v is None or isinstance(v, bool | int):
            return v
        if isinstance(v, float):
            return v if v == v and v not in (float("inf"), float("-inf")) else repr(v)
        if isinstance(v, str):
            return self.text(v)
        if isinstance(v, bytes):
            return {"$bytes": base64.b64encode(v).decode()}
        if isinstance(v, dt.datetime | dt.date | dt.time):
            return "<timestamp>"
        if isinstance(v, dt.timedelta):
            return "<duration>"
        if isinstance(v, dict):
            return {self.text(str(k)): self.value(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):  # a Parquet map
                return sorted(([self.value(k), self.value(x)] for k, x in v), key=canon)
            return [self.value(x) for x in v]
        return self.text(str(v))


def canon(v) -> str:
    return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def volatile_fields(key: str, rules: list[tuple[str, str]]) -> list[str]:
    return [f for g, f in rules if fnmatch.fnmatch(key, g) or fnmatch.fnmatch(key, g + "/*")]


def normalise_json(doc, norm: Normaliser, fields: list[str], path: tuple = ()):
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            p = (*path, str(k))
            if _volatile(p, fields):
                out[norm.text(str(k))] = "<volatile>"
            else:
                out[norm.text(str(k))] = normalise_json(v, norm, fields, p)
        return out
    if isinstance(doc, list):
        return [normalise_json(v, norm, fields, (*path, str(i))) for i, v in enumerate(doc)]
    return norm.value(doc)


def embedded_json(v: str, norm: Normaliser, keys: list[str]):
    """A JSON document held in a string column, normalised like a JSON file."""
    try:
        doc = json.loads(v)
    except json.JSONDecodeError:
        return norm.value(v)
    return {"$json": normalise_json(doc, norm, keys)}


def _volatile(path: tuple, fields: list[str]) -> bool:
    for f in fields:
        parts = f.split(".")
        if len(parts) == 1:
            if path[-1] == f:
                return True
        elif len(parts) == len(path) and all(a == "*" or a == b for a, b in zip(parts, path, strict=True)):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# digest


def unstable_ids(out: Path, names: tuple[str, ...]) -> dict[str, str]:
    """tokenizer_id / sha256 / artifact path of the named (not reproducible) tokenizers → placeholders."""
    reg = out / "registry" / "tokenizers.parquet"
    if not names or not reg.is_file():
        return {}
    rep = {}
    for r in pq.ParquetFile(reg).read().to_pylist():
        if r.get("name") in names:
            n = r["name"]
            if r.get("sha256"):
                sha = r["sha256"]
                rep[f"{sha[:2]}/{sha}"] = f"<unstable:{n}:sha256>"
                rep[sha] = f"<unstable:{n}:sha256>"
            if r.get("tokenizer_id"):
                rep[r["tokenizer_id"]] = f"<unstable:{n}:id>"
    return rep


def canonical_tokenizer_json(data: bytes) -> bytes:
    """An HF tokenizer.json of a non-reproducible trainer without what the trainer chose: its
    vocabulary and merges become their sizes; the configuration (normaliser, pre-tokenizer,
    model type and options, special tokens, post-processor) is kept."""
    doc = json.loads(data)
    model = doc.get("model") or {}
    for k in ("vocab", "merges"):
        if isinstance(model.get(k), list | dict):
            model[k] = f"<{len(model[k])} entries>"
    return canon(doc).encode()


def npz_entry(key: str, f: Path) -> dict:
    """A NumPy .npz by its members' names and bytes (the zip headers carry write times), with the
    volatile elements of VOLATILE_NPZ replaced (the .npy format is read with the standard library)."""
    members = {}
    with zipfile.ZipFile(f) as z:
        for i in z.infolist():
            data = z.read(i)
            name = i.filename[:-4] if i.filename.endswith(".npy") else i.filename
            for g, member, idx in VOLATILE_NPZ:
                if member == name and fnmatch.fnmatch(key, g):
                    data = blank_npy(data, idx)
            members[name] = sha(data)
    return {"kind": "npz", "sha256": sha(canon(members).encode()), "members": members}


def blank_npy(data: bytes, idx: tuple[int, ...]) -> bytes:
    """An .npy of a 1-d little-endian 8-byte array with the elements at `idx` zeroed."""
    if data[:6] != b"\x93NUMPY":
        return data
    n = 2 if data[6] == 1 else 4
    hlen = int.from_bytes(data[8:8 + n], "little")
    start = 8 + n + hlen
    header = ast.literal_eval(data[8 + n:start].decode("latin1"))
    if header.get("descr") not in ("<f8", "<i8") or len(header.get("shape", ())) != 1:
        return data
    body = bytearray(data[start:])
    for i in idx:
        if 0 <= i < header["shape"][0]:
            body[8 * i:8 * i + 8] = struct.pack("<d", 0.0)
    return data[:start] + bytes(body)


class Digester:
    def __init__(self, work: Path, side: Path, prefixes: dict[str, str], module_roots: tuple[str, ...]):
        self.work, self.side, self.prefixes, self.module_roots = work, side, prefixes, module_roots

    @staticmethod
    def path_key(rel: str, norm: Normaliser) -> str:
        for rx, rep in PATH_RULES:
            rel = rx.sub(rep, rel)
        return norm.text(rel)

    def scenario(self, name: str) -> dict[str, dict]:
        out = self.work / name
        unstable_names = UNSTABLE_TOKENIZERS.get(name, ())
        norm = Normaliser(out, self.prefixes, self.module_roots, unstable_ids(out, unstable_names))
        unstable_files = set(unstable_names)
        entries: dict[str, dict] = {}
        files = sorted(p for p in out.rglob("*") if p.is_file())
        groups: dict[str, list[Path]] = {}
        for f in files:
            rel = f.relative_to(out).as_posix()
            if f.name.startswith(".") and f.name.endswith(".crc"):
                continue  # Hadoop's checksum of the sibling file, whose content is digested itself
            if f.suffix == ".parquet" and not rel.startswith(RAW_DIRS):
                groups.setdefault(f.parent.relative_to(out).as_posix(), []).append(f)
                continue
            key = self.path_key(rel, norm)
            if unstable_names and any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g + "/*")
                                      for g in UNSTABLE_RENDERINGS):
                entries[key] = {"kind": "unstable-rendering", "sha256": ""}  # compared for presence only
                continue
            if rel.startswith(RAW_DIRS) or (rel.startswith("trim/") and f.suffix != ".parquet"
                                             and f.name not in TRIM_META):
                data = f.read_bytes()
                e = {"kind": "raw", "bytes": len(data)}
                if any(n in f.name for n in unstable_files):
                    e = {"kind": "raw-canonical", "sha256": sha(canonical_tokenizer_json(data))}
                else:
                    e["sha256"] = sha(data)
            elif f.suffix == ".json":
                e = self.json_entry(name, key, f, norm)
            elif f.suffix in TEXT_EXT:
                e = self.text_entry(name, key, f, norm)
            elif f.suffix == ".npz":
                e = npz_entry(key, f)
            else:
                data = f.read_bytes()
                e = {"kind": "raw", "bytes": len(data), "sha256": sha(data)}
            entries[key] = e
        for d, fs in groups.items():
            for key, members in self.split_by_schema(self.path_key(d, norm), fs, norm).items():
                mask = unstable_names if not key.startswith("registry") else ()
                entries[key] = self.parquet_entry(name, key, members, norm, mask)
        for e in entries.values():
            e.setdefault("modules", [])
        return entries

    @staticmethod
    def split_by_schema(d: str, fs: list[Path], norm: Normaliser) -> dict[str, list[Path]]:
        schemas = {f: pq.read_schema(f).remove_metadata() for f in fs}
        first = schemas[fs[0]]
        if all(s.equals(first) for s in schemas.values()):
            return {d: fs}
        return {Digester.path_key(f"{d}/{f.name}" if d != "." else f.name, norm): [f] for f in fs}

    def side_path(self, scenario: str, key: str, ext: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._=-]+", "_", key)[:80]
        return self.side / scenario / f"{safe}-{hashlib.sha1(key.encode()).hexdigest()[:10]}{ext}"

    def parquet_entry(self, scenario: str, key: str, fs: list[Path], norm: Normaliser,
                      unstable: tuple[str, ...] = ()) -> dict:
        norm.modules = set()
        tables = [pq.ParquetFile(f).read() for f in fs]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        schema = [[fld.name, str(fld.type)] for fld in table.schema]
        docs = {fld.name: norm.text(b"; ".join(v for k, v in sorted((fld.metadata or {}).items())).decode("utf-8", "replace"))
                for fld in table.schema if fld.metadata}
        fields = volatile_fields(key, VOLATILE_COLUMNS)
        cols = []
        for i, fld in enumerate(table.schema):
            values = table.column(i).to_pylist()
            if fld.name in fields:
                cols.append(["<volatile>"] * table.num_rows)
            elif pa.types.is_timestamp(fld.type) or pa.types.is_date(fld.type):
                cols.append([None if v is None else "<timestamp>" for v in values])
            elif fld.name.endswith("_json") and (pa.types.is_string(fld.type) or pa.types.is_large_string(fld.type)):
                keys = volatile_fields(f"{key}:{fld.name}", VOLATILE_KEYS)
                cols.append([norm.value(v) if v is None else embedded_json(v, norm, keys) for v in values])
            else:
                cols.append([norm.value(v) for v in values])
        n_unstable = 0
        if unstable and cols:  # measurements made with a non-reproducible tokenizer: keep the text facts
            names = table.schema.names
            keep = [n in TEXT_COLUMNS for n in names]
            for r in range(table.num_rows):
                if any(isinstance(c[r], str) and (c[r].startswith("<unstable:") or c[r] in unstable) for c in cols):
                    n_unstable += 1
                    for c, k in zip(cols, keep, strict=True):
                        if not k and isinstance(c[r], int | float) and not isinstance(c[r], bool):
                            c[r] = "<unstable>"
        rows = sorted(canon(list(r)) for r in zip(*cols, strict=True)) if cols else []
        col_sha = {fld.name: sha("\n".join(sorted(canon(v) for v in c)).encode())
                   for fld, c in zip(table.schema, cols, strict=True)}
        side = self.side_path(scenario, key, ".parquet")
        side.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"row": pa.array(rows, pa.string())}), side, compression="zstd")
        return {"kind": "parquet", "files": len(fs), "schema": schema, "docs": docs, "rows": table.num_rows,
                "sha256": sha("\n".join(rows).encode()), "columns": col_sha,
                "side": side.relative_to(self.side).as_posix(), "modules": sorted(norm.modules),
                **({"unstable_rows": n_unstable} if n_unstable else {})}

    def json_entry(self, scenario: str, key: str, f: Path, norm: Normaliser) -> dict:
        norm.modules = set()
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self.text_entry(scenario, key, f, norm)
        text = json.dumps(normalise_json(doc, norm, volatile_fields(key, VOLATILE_KEYS)), ensure_ascii=False, sort_keys=True,
                          indent=1) + "\n"
        return self.store(scenario, key, "json", text, norm)

    def text_entry(self, scenario: str, key: str, f: Path, norm: Normaliser) -> dict:
        norm.modules = set()
        data = f.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return {"kind": "raw", "bytes": len(data), "sha256": sha(data)}
        text = norm.text(text)
        cols = [c for g, c in VOLATILE_MD_COLUMNS if fnmatch.fnmatch(key, g)]
        if cols:
            text = blank_md_columns(text, cols)
        if f.suffix == ".svg" or "<svg" in text:
            ids: dict[str, str] = {}
            text = SVG_ID_RE.sub(lambda m: ids.setdefault(m.group(0), f"{m.group(1)}{len(ids):010d}"), text)
        return self.store(scenario, key, "text", text, norm)

    def store(self, scenario: str, key: str, kind: str, text: str, norm: Normaliser) -> dict:
        side = self.side_path(scenario, key, ".txt")
        side.parent.mkdir(parents=True, exist_ok=True)
        side.write_text(text, encoding="utf-8")
        return {"kind": kind, "sha256": sha(text.encode()), "side": side.relative_to(self.side).as_posix(),
                "modules": sorted(norm.modules)}


def blank_md_columns(text: str, cols: list[str]) -> str:
    """Markdown tables with the cells of the named columns replaced by <volatile>."""
    lines, out, idx = text.split("\n"), [], []
    for i, line in enumerate(lines):
        cells = line.split("|")
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|-"):
            idx = [j for j, c in enumerate(cells) if c.strip() in cols]  # a header row
        elif line.startswith("|") and idx and not line.startswith("|-"):
            for j in idx:
                if j < len(cells) - 1:
                    cells[j] = " <volatile> "
            line = "|".join(cells)
        elif not line.startswith("|"):
            idx = []
        out.append(line)
    return "\n".join(out)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def side_dir(digest: Path) -> Path:
    return digest.with_name(digest.stem + ".rows")


def python_prefixes(python: str) -> dict[str, str]:
    """Absolute locations of the environment and the repository, so paths under them compare equal."""
    code = "import json, sys, sysconfig; print(json.dumps([sys.prefix, sys.base_prefix, sysconfig.get_paths()['stdlib']]))"
    prefix, base, stdlib = json.loads(subprocess.run([python, "-c", code], check=True, capture_output=True,
                                                     text=True).stdout)
    p = {prefix: "<venv>", stdlib: "<stdlib>", base: "<python>", str(Path.home()): "<home>"}
    repo = Path(prefix).parent
    if (repo / "pyproject.toml").is_file():
        p[str(repo)] = "<repo>"
    return p


def input_digests(work: Path, prefixes: dict[str, str]) -> dict[str, str]:
    """sha256 of the inputs `record` prepared (Parquet by its rows, text with paths normalised)."""
    norm = Normaliser(work / "_inputs", prefixes, (), {})
    out = {}
    for f in sorted((work / "_inputs").rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            t = pq.read_table(f)
            data = canon([[fld.name, str(fld.type)] for fld in t.schema]) + "".join(canon(r) for r in t.to_pylist())
            out[f.relative_to(work).as_posix()] = sha(data.encode())
        elif f.suffix in (".yaml", ".json"):
            out[f.relative_to(work).as_posix()] = sha(norm.text(f.read_text(encoding="utf-8")).encode())
        else:
            out[f.relative_to(work).as_posix()] = sha(f.read_bytes())
    return out


def write_digest(args, work: Path, digest: Path, scenarios: list[str], runs: dict) -> int:
    side = side_dir(digest)
    if side.exists():
        shutil.rmtree(side)
    side.mkdir(parents=True)
    prefixes = {str(work): "<work>", str(Path(args.shared).resolve()): "<shared>", args.shared: "<shared>",
                **python_prefixes(args.python)}
    d = Digester(work, side, prefixes, (*MODULE_ROOTS, *args.module_root))
    entries = {}
    for s in scenarios:
        if not (work / s).is_dir():
            raise SystemExit(f"{work / s} does not exist: run `record` first")
        t0 = time.monotonic()
        for k, e in d.scenario(s).items():
            entries[f"{s}/{k}"] = e
        print(f"digest {s}: {sum(k.startswith(s + '/') for k in entries)} entries in {time.monotonic() - t0:.1f}s")
    doc = {"format": FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(), "work": str(work),
           "python": args.python, "scenarios": scenarios, "runs": runs, "inputs": input_digests(work, prefixes),
           "entries": entries}
    digest.parent.mkdir(parents=True, exist_ok=True)
    digest.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {digest} ({len(entries)} entries; rows and texts in {side})")
    return 0


# ---------------------------------------------------------------------------------------------
# scenarios


def cli_command(args) -> list[str]:
    if args.cli:
        return args.cli.split()
    script = Path(args.python).parent / "tokatlas"
    return [str(script)] if script.is_file() else [args.python, "-m", "flows.cli"]


def prepare_inputs(work: Path, shared: Path) -> dict[str, Path]:
    inputs = work / "_inputs"
    tok = inputs / "tokenizers"
    tok.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((shared / "tokenizers" / "MANIFEST.json").read_text(encoding="utf-8"))
    entries = [e for e in manifest["tokenizers"] if e["name"] in SUBSET]
    if sorted(e["name"] for e in entries) != sorted(SUBSET):
        raise SystemExit(f"the shared manifest lacks one of {SUBSET}")
    for e in entries:
        shutil.copyfile(shared / "tokenizers" / e["file"], tok / e["file"])
    sub = {**manifest, "tokenizers": entries}
    (tok / "MANIFEST.json").write_text(json.dumps(sub, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    flores = inputs / "flores200_subset.parquet"  # the languages the scenarios use: ingest reads 16k rows, not 410k
    if not flores.is_file():
        src = pq.read_table(shared / "flores200" / "flores200_dev_devtest.parquet")
        keep = pa.array(sorted(FLORES_SUBSET), src.schema.field("lang").type)
        table = src.filter(pc.is_in(src.column("lang"), value_set=keep))
        pq.write_table(table.replace_schema_metadata(src.schema.metadata), flores, compression="zstd")
    grid, grid_langs = inputs / "grid.yaml", ", ".join(GRID_LANGS)
    grid.write_text(f"""# compare_outputs grid scenario: every key given; paths relative to this file
name: cmp
languages: [{grid_langs}]
algorithms: [hf-bpe, sp-bpe]
vocab_sizes: [500, 1000]
train_bytes: [60000]
scale_by_byte_premium: true
reference_lang: eng_Latn
transitions: [0.8]
pre_tokenizers: [default]
min_vocab_fraction: 0.95
max_vocab_fraction: 1.05
data:
  train:
    - {{kind: flores, path: {flores.name}, splits: [dev]}}
  eval: {{kind: flores, path: {flores.name}, splits: [devtest]}}
analysis:
  target_ctc: auto
  second_pass: false
  optimal_min_vocab: 256
  optimal_max_vocab: 4000
  fit_offset: false
""", encoding="utf-8")
    return {"manifest": tok / "MANIFEST.json", "flores": flores, "grid": grid}


def scenario_commands(name: str, work: Path, inp: dict[str, Path]) -> list[list[str]]:
    out = str(work / name)
    flores, manifest = str(inp["flores"]), str(inp["manifest"])
    if name == "default":
        return [["run", "--out", out, "--corpus-source", "django", "--corpus-name", "django", "--reference", "eng_Latn",
                 "--bootstrap", "1000", "--min-language-coverage", "0.95", *SPARK]]
    if name == "flores":
        return [["run", "--out", out, "--corpus-source", "flores-parquet", "--corpus-path", flores,
                 "--corpus-name", "flores200", "--languages", FLORES_LANGS, "--min-language-coverage", "0.95",
                 "--tokenizer-manifest", manifest, "--reference", "eng_Latn", "--bootstrap", "200",
                 "--shard-size", "1000", *SPARK]]
    if name == "grid":
        return [["grid", "run", "--spec", str(inp["grid"]), "--out", out, "--registry-root", f"{out}/registry",
                 "--wave-size", "0", *SPARK]]
    if name == "trim":
        return [["trim", "--tokenizer", t, "--tokenizer-manifest", manifest, "--corpus-source", "flores-parquet",
                 "--corpus-path", flores, "--corpus-name", "flores200", "--languages", TRIM_LANGS,
                 "--coverage-languages", TRIM_COVERAGE, "--min-frequency", "1", "--splits", "dev",
                 "--heldout-splits", "devtest", "--hidden-size", "768", "--out", out, *SPARK]
                for t in TRIM_TOKENIZERS]
    if name == "mixture":
        return [["mixture", "infer", "--tokenizer-manifest", manifest, "--tokenizers", MIXTURE_TOKENIZERS,
                 "--flores", flores, "--languages", MIXTURE_LANGS, "--code-bytes", "20000", "--T", "200",
                 "--lp-T", "200", "--no-reuse-counts", "--bootstrap", "2", "--bootstrap-unit", "merges",
                 "--lp-method", "lazy", "--gap-tolerance", "1e-6", "--out", out, *SPARK]]
    raise SystemExit(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")


def child_env(args, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TOKATLAS_", "PREFECT_", "PYSPARK_", "SPARK_")) and k != "VIRTUAL_ENV"}
    env.update({"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "SPARK_LOCAL_IP": "127.0.0.1",
                "PREFECT_HOME": str(work / "_prefect"), "PYSPARK_PYTHON": args.python,
                "PYSPARK_DRIVER_PYTHON": args.python, "TZ": "UTC"})
    return env


def record(args) -> int:
    work = Path(args.work).resolve()
    scenarios = only(args.only)
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        raise SystemExit(f"{work} is not empty and not a compare_outputs work folder: refusing to write there")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("work folder of bench/compare_outputs.py\n", encoding="utf-8")
    (work / "_logs").mkdir(exist_ok=True)
    (work / "_prefect").mkdir(exist_ok=True)
    inp = prepare_inputs(work, Path(args.shared).resolve())
    cli, env = cli_command(args), child_env(args, work)
    runs = previous_runs(args.digest)
    t_all = time.monotonic()
    for s in scenarios:
        out = work / s
        if out.exists():
            shutil.rmtree(out)
        t0 = time.monotonic()
        for i, cmd in enumerate(scenario_commands(s, work, inp)):
            argv = [*(["nice", "-n", str(args.nice)] if args.nice else []), *cli, *cmd]
            log = work / "_logs" / f"{s}.{i}.log"
            print(f"[{s}] {' '.join(cli + cmd)}", flush=True)
            t1 = time.monotonic()
            with log.open("w", encoding="utf-8") as fh:
                rc = subprocess.run(argv, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
            print(f"[{s}] exit {rc} in {time.monotonic() - t1:.0f}s (log {log})", flush=True)
            if rc != 0:
                print(log.read_text(encoding="utf-8", errors="replace")[-3000:], file=sys.stderr)
                raise SystemExit(f"scenario {s} failed: exit {rc}")
        runs[s] = {"commands": [[*cli, *c] for c in scenario_commands(s, work, inp)],
                   "seconds": round(time.monotonic() - t0, 1), "load_average": os.getloadavg()}
    print(f"all scenarios in {time.monotonic() - t_all:.0f}s")
    return write_digest(args, work, Path(args.digest).resolve(), scenarios, runs)


def previous_runs(digest: str) -> dict:
    """The runs recorded in an existing digest (kept when only some scenarios are re-run)."""
    try:
        return json.loads(Path(digest).read_text(encoding="utf-8")).get("runs", {})
    except (OSError, ValueError):
        return {}


def only(spec: str | None) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()] if spec else list(SCENARIOS)
    bad = [s for s in names if s not in SCENARIOS]
    if bad:
        raise SystemExit(f"unknown scenario(s) {', '.join(bad)}; known: {', '.join(SCENARIOS)}")
    return names


# ---------------------------------------------------------------------------------------------
# compare


def compare(args) -> int:
    pa_, pb_ = Path(args.a), Path(args.b)
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in (pa_, pb_))
    sa, sb = side_dir(pa_), side_dir(pb_)
    ea, eb = a["entries"], b["entries"]
    common = set(a["scenarios"]) & set(b["scenarios"])
    if set(a["scenarios"]) != set(b["scenarios"]):
        print(f"note: scenarios differ ({a['scenarios']} vs {b['scenarios']}); comparing {sorted(common)}")
    keys = sorted(k for k in set(ea) | set(eb) if k.split("/", 1)[0] in common)
    n = 0
    ia, ib = a.get("inputs", {}), b.get("inputs", {})
    for k in sorted(set(ia) | set(ib)):
        if ia.get(k) != ib.get(k):
            print(f"input {k} differs between the two records (made by different versions of this script "
                  "or of pyarrow?): outputs may differ for that reason")
            n += 1
    for k in keys:
        x, y = ea.get(k), eb.get(k)
        if x is None or y is None:
            print(f"{k}: only in {'second' if x is None else 'first'} digest ({(x or y)['kind']})")
            n += 1
            continue
        lines = diff_entry(k, x, y, sa, sb, args.show)
        if lines:
            n += 1
            print(lines[0])
            for line in lines[1:]:
                print("    " + line)
    mods = {m for e in ea.values() for m in e.get("modules", [])}
    mods_b = {m for e in eb.values() for m in e.get("modules", [])}
    if mods != mods_b:
        print(f"(info, not a difference) module names normalised to <module>: only in first "
              f"{sorted(mods - mods_b)}, only in second {sorted(mods_b - mods)}")
    print(f"{n} differing entries of {len(keys)}" if n else f"no differences ({len(keys)} entries)")
    return 1 if n else 0


def diff_entry(k: str, x: dict, y: dict, sa: Path, sb: Path, show: int) -> list[str]:
    """[summary line, detail lines...] of an entry that differs, [] when equal."""
    if x["kind"] != y["kind"]:
        return [f"{k}: kind {x['kind']} != {y['kind']}"]
    if x["kind"] == "parquet":
        what, detail = [], []
        if x["schema"] != y["schema"]:
            what.append("schema")
            detail += schema_diff(x["schema"], y["schema"])
        da, db = x.get("docs", {}), y.get("docs", {})
        if da != db:
            what.append("column docs")
            detail += [f"~ doc of {c}: {da.get(c)!r} -> {db.get(c)!r}" for c in sorted(set(da) | set(db))
                       if da.get(c) != db.get(c)][:show]
        for f in ("files", "rows"):
            if x[f] != y[f]:
                what.append(f"{f} {x[f]} != {y[f]}")
        if x["sha256"] != y["sha256"]:
            cols = sorted(c for c in set(x["columns"]) | set(y["columns"])
                          if x["columns"].get(c) != y["columns"].get(c))
            what.append(f"row values (columns: {', '.join(cols) or 'none: only how values combine into rows'})")
            detail += row_diff(x, y, sa, sb, show)
        return [f"{k}: parquet differs: {'; '.join(what)}", *detail] if what else []
    if x["sha256"] == y["sha256"]:
        return []
    if x["kind"] == "npz":
        ma, mb = x.get("members", {}), y.get("members", {})
        return [f"{k}: npz differs: members {', '.join(sorted(m for m in set(ma) | set(mb) if ma.get(m) != mb.get(m)))}"]
    if x["kind"] in ("json", "text") and "side" in x and "side" in y:
        try:
            ta = (sa / x["side"]).read_text(encoding="utf-8").splitlines()
            tb = (sb / y["side"]).read_text(encoding="utf-8").splitlines()
        except OSError:
            return [f"{k}: {x['kind']} differs (side files missing)"]
        return [f"{k}: {x['kind']} differs", *text_diff(ta, tb, show)]
    return [f"{k}: {x['kind']} differs: sha256 {x['sha256'][:16]} != {y['sha256'][:16]}"
            + (f", bytes {x.get('bytes')} != {y.get('bytes')}" if x.get("bytes") != y.get("bytes") else "")]


def schema_diff(a: list, b: list) -> list[str]:
    da, db = dict(map(tuple, a)), dict(map(tuple, b))
    out = [f"- column {c}: {t}" for c, t in a if c not in db]
    out += [f"+ column {c}: {t}" for c, t in b if c not in da]
    out += [f"~ column {c}: {t} -> {db[c]}" for c, t in a if c in db and db[c] != t]
    if not out:
        out.append(f"~ column order {[c for c, _ in a]} -> {[c for c, _ in b]}")
    return out


def text_diff(ta: list[str], tb: list[str], show: int) -> list[str]:
    """Changed lines; for a long changed line only the region around the change."""
    out = []
    sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
    ops = [op for op in sm.get_opcodes() if op[0] != "equal"]
    out.append(f"~ {sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in ops)} lines differ, in {len(ops)} places")
    for tag, i1, i2, j1, j2 in ops[:show]:
        la, lb = ta[i1:i2], tb[j1:j2]
        if tag == "replace" and len(la) == len(lb) == 1 and max(len(la[0]), len(lb[0])) > 160:
            a, b = la[0], lb[0]
            p = len(os.path.commonprefix([a, b]))
            q = len(os.path.commonprefix([a[p:][::-1], b[p:][::-1]]))
            ctx = 60
            out.append(f"@ line {i1 + 1}, char {p + 1}:")
            out.append(f"- …{a[max(0, p - ctx):len(a) - q + ctx]}…")
            out.append(f"+ …{b[max(0, p - ctx):len(b) - q + ctx]}…")
            continue
        out.append(f"@ line {i1 + 1}:")
        out += [f"- {line[:240]}" for line in la[:show]] + [f"+ {line[:240]}" for line in lb[:show]]
    return out


def row_diff(x: dict, y: dict, sa: Path, sb: Path, show: int) -> list[str]:
    try:
        ra = pq.read_table(sa / x["side"]).column("row").to_pylist()
        rb = pq.read_table(sb / y["side"]).column("row").to_pylist()
    except (OSError, KeyError):
        return ["(rows side files missing)"]
    ca, cb = count(ra), count(rb)
    only_a = [r for r, c in ca.items() for _ in range(c - cb.get(r, 0))]
    only_b = [r for r, c in cb.items() for _ in range(c - ca.get(r, 0))]
    names_a = [c for c, _ in x["schema"]]
    names_b = [c for c, _ in y["schema"]]
    out = [f"~ {len(only_a)} rows only in first, {len(only_b)} only in second"]
    pool = [json.loads(r) for r in only_b[:5000]]
    for r in only_a[:show]:
        va = json.loads(r)
        if pool and names_a == names_b:
            best = max(range(len(pool)), key=lambda i: sum(p == q for p, q in zip(va, pool[i], strict=False)))
            vb = pool.pop(best)
            key = {c: v for c, v, w in zip(names_a, va, vb, strict=False) if v == w and not isinstance(v, list | dict)}
            diffs = {c: f"{trim(v)} -> {trim(w)}" for c, v, w in zip(names_a, va, vb, strict=False) if v != w}
            out.append(f"~ row {trim(key, 200)}: {diffs}")
        else:
            out.append(f"- {trim(dict(zip(names_a, va, strict=False)), 300)}")
    for r in only_b[:show] if names_a != names_b or not only_a else []:
        out.append(f"+ {trim(dict(zip(names_b, json.loads(r), strict=False)), 300)}")
    return out


def count(rows: list[str]) -> dict[str, int]:
    c: dict[str, int] = {}
    for r in rows:
        c[r] = c.get(r, 0) + 1
    return c


def trim(v, n: int = 80) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[:n] + "…"


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("record", "digest"):
        r = sub.add_parser(name, help="run the scenarios and write a digest" if name == "record"
                           else "write the digest of a work folder recorded before (no runs)")
        r.add_argument("--python", required=True, help="python of the environment under test")
        r.add_argument("--work", required=True, help="work folder (scenario output roots go under it)")
        r.add_argument("--digest", required=True, help="digest JSON to write (rows beside it in <name>.rows/)")
        r.add_argument("--only", help=f"comma-separated scenarios (default all: {','.join(SCENARIOS)})")
        r.add_argument("--shared", default=DEFAULT_SHARED, help=f"shared data folder (default {DEFAULT_SHARED})")
        r.add_argument("--cli", help="command that runs the tokatlas CLI (default: the tokatlas script beside "
                                     "--python, else `PYTHON -m flows.cli`)")
        r.add_argument("--module-root", action="append", default=[],
                       help=f"extra top-level package whose module names are normalised (default {MODULE_ROOTS})")
        r.add_argument("--nice", type=int, default=0, help="run the CLI under `nice -n N` (default 0: not niced)")
    c = sub.add_parser("compare", help="compare two digests; exit 1 on any difference")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--show", type=int, default=SHOW, help=f"differing rows/lines shown per entry (default {SHOW})")
    a = p.parse_args(argv)
    if a.cmd == "record":
        return record(a)
    if a.cmd == "digest":
        return write_digest(a, Path(a.work).resolve(), Path(a.digest).resolve(), only(a.only), previous_runs(a.digest))
    return compare(a)


if __name__ == "__main__":
    sys.exit(main())
