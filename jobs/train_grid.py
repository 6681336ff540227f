"""Training job of a tokenizer grid: one Spark task per tokenizer.

One Spark task per language writes its training sample and evaluation text
(`prepare_samples`), the driver plans the cells (`jobs.analysis.grid_spec.plan`) and runs every cell
without a result as its own Spark task. A task reads only its language's sample,
trains with the library's trainer, checks the vocabulary size it reached, puts the
artifact into the registry's content-addressed store and writes its cell row
(`schemas.grid.GRID_CELLS`) atomically; a trainer that raises or misses the requested
size writes a failure row with the reason instead, and the grid continues. The driver
then registers the new tokenizers in one registry write.

    spark-submit jobs/train_grid.py --spec examples/grid_demo.yaml --out OUT [--registry-root R]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.analysis.grid_spec import (
    GridCell,
    GridSpec,
    Source,
    expand,
    load_spec,
    plan,
    spec_from_dict,
    trainer_versions,
    transition_vocab,
)
from jobs.runtime.fanout import cell_error, fan_out_each
from jobs.store.atomic import write_json_atomic, write_parquet_atomic
from jobs.store.layout import (
    dataset_files,
    grid_cell_path,
    grid_sample_file,
    grid_samples_json,
    grid_work_dir,
    registry_dir,
)
from schemas import conform
from schemas.errors import ConfigError
from schemas.grid import GRID_CELLS
from schemas.languages import try_normalize_lang
from tokenizers_registry.registry import Registry, TokenizerSpec, artifact_relpath, tokenizer_id_for
from tokenizers_registry.store import Store, normalize_root, sha256_file
from tokenizers_registry.superbpe import train_superbpe
from tokenizers_registry.training import (
    ALGORITHMS,
    ARTIFACT_NAMES,
    PRE_TOKENIZERS,
    check_variant,
    train_hf_variant,
    train_sentencepiece,
)

# UDHR names some languages by their individual code where FLORES uses the macrolanguage.
UDHR_ALIASES = {"zho_Hans": "cmn_Hans", "zho_Hant": "cmn_Hant"}
FORMAT_OF = {"hf": "hf-tokenizer-json", "sp": "sentencepiece-model", "superbpe": "hf-tokenizer-json"}
REGISTRY_ALGORITHM = {"hf-bpe": "bpe", "hf-unigram": "unigram", "hf-wordpiece": "wordpiece", "sp-bpe": "bpe",
                      "sp-unigram": "unigram", "superbpe": "superbpe"}


# -- samples -------------------------------------------------------------------
def _version(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def read_source(src: Source, languages: list[str], *, with_ids: bool = False) -> dict[str, list]:
    """{lang: [text, …]} (or [(sentence_id, text), …] with `with_ids`) in a deterministic order."""
    want = set(languages)
    if src.kind == "flores":
        filters = [("lang", "in", sorted(want))]
        if src.splits:
            filters.append(("split", "in", list(src.splits)))
        t = pq.read_table(src.path, columns=["lang", "split", "sentence_id", "text"], filters=filters)
        order = {s: i for i, s in enumerate(src.splits)}
        rows = sorted(zip(t["lang"].to_pylist(), t["split"].to_pylist(), t["sentence_id"].to_pylist(),
                          t["text"].to_pylist(), strict=True),
                      key=lambda r: (r[0], order.get(r[1], len(order)), r[1], r[2]))
        out: dict[str, list] = {}
        for lang, split, sid, text in rows:
            out.setdefault(lang, []).append((f"{split}:{sid}", text) if with_ids else text)
        return out
    if src.kind == "udhr":
        t = pq.read_table(src.path, columns=["iso639_3", "script", "key", "article_no", "text"])
        by_lang: dict[str, dict[str, list]] = {}
        for iso, script, key, no, text in zip(*(t[c].to_pylist() for c in ("iso639_3", "script", "key",
                                                                            "article_no", "text")), strict=True):
            lang, _ = try_normalize_lang(iso, script)
            if lang is None or not text:
                continue
            by_lang.setdefault(lang, {}).setdefault(key, []).append((no, text))
        out = {}
        for lang in languages:
            keys = by_lang.get(lang) or by_lang.get(UDHR_ALIASES.get(lang, ""), {})
            if keys:  # first translation of the language (several exist for some)
                out[lang] = [text for _, text in sorted(keys[sorted(keys)[0]])]
        return out
    if src.kind == "parquet":
        names = pq.read_schema(src.path).names
        missing = [c for c in (src.lang_column, src.text_column) if c not in names]
        if missing:
            raise ConfigError(f"{src.path}: no column(s) {missing}; it has {names}")
        cols = [src.lang_column, src.text_column] + ([src.split_column] if src.splits else [])
        filters = [(src.lang_column, "in", sorted(want))]
        if src.splits:
            filters.append((src.split_column, "in", list(src.splits)))
        t = pq.read_table(src.path, columns=cols, filters=filters)
        out = {}
        for i, (lang, text) in enumerate(zip(t[src.lang_column].to_pylist(), t[src.text_column].to_pylist(),
                                             strict=True)):
            if text:
                out.setdefault(lang, []).append((str(i), text) if with_ids else text)
        return out
    if src.kind == "text":
        out = {}
        for lang in languages:
            p = Path(src.path) / f"{lang}.txt"
            if p.is_file():
                out[lang] = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        return out
    raise ConfigError(f"unknown source kind {src.kind!r}")


def _parallel_source(spec: GridSpec) -> Source | None:
    """The first FLORES training source: parallel and disjoint from evaluation."""
    return next((s for s in spec.data.train if s.kind == "flores"), None)


def prepare_language(spec: GridSpec, lang: str, out) -> dict:
    """Write one language's training sample and evaluation text; return its manifest entry.

    Reads only this language from every source, so one task needs one language's
    text in memory. Training lines identical to an evaluation line are dropped, so
    the two never overlap. `_parallel` ({sentence id: bytes}) feeds the byte premium.
    """
    evals = read_source(spec.data.eval, [lang], with_ids=True).get(lang) or []
    if not evals:
        raise ConfigError(f"no evaluation text for {lang} in {spec.data.eval.path}")
    raw: list[str] = []
    for src in spec.data.train:
        raw.extend(read_source(src, [lang]).get(lang, []))
    eval_texts = {t for _, t in evals}
    train = [t for t in raw if t not in eval_texts]
    ev = pa.table({"sentence_id": pa.array([i for i, _ in evals], pa.string()),
                   "text": pa.array([t for _, t in evals], pa.string())})
    write_parquet_atomic(pa.table({"text": pa.array(train, pa.string())}), grid_sample_file(out, spec.name, lang, "train"))
    write_parquet_atomic(ev, grid_sample_file(out, spec.name, lang, "eval"))
    src = _parallel_source(spec)
    parallel = read_source(src, [lang], with_ids=True).get(lang, []) if src else evals
    return {"version": _version(train), "eval_version": _version(ev["text"].to_pylist()),
            "train_bytes": sum(len(t.encode("utf-8")) for t in train), "n_train_lines": len(train),
            "n_eval": ev.num_rows, "n_dropped_overlap": len(raw) - len(train),
            "_parallel": {i: len(t.encode("utf-8")) for i, t in parallel}}


PREPARED_SCHEMA = pa.schema([("lang", pa.string()), ("entry", pa.string()), ("error", pa.string())])


def prepare_samples(spec: GridSpec, out, spark=None) -> dict[str, dict]:
    """Write each language's training sample and evaluation text; return the manifest.

    With `spark`, every language is prepared by its own Spark task (`prepare_language`),
    so hundreds of MB per language never pass through the driver; without, in a loop.
    Manifest per language: version, eval_version, byte_premium (None unless the spec
    scales budgets), train_bytes, n_train_lines, n_eval, n_dropped_overlap.
    """
    langs = list(spec.languages)
    out = str(Path(out).resolve())
    if spark is None:
        entries = {lang: prepare_language(spec, lang, out) for lang in langs}
    else:
        def fn(lang: str) -> dict:
            try:
                return {"lang": lang, "entry": json.dumps(prepare_language(spec, lang, out)), "error": None}
            except ConfigError as e:  # re-raised on the driver with its message intact
                return {"lang": lang, "entry": None, "error": str(e)}

        rows = fan_out_each(spark, langs, fn, PREPARED_SCHEMA)
        errors = [r["error"] for r in rows if r["error"]]
        if errors:
            raise ConfigError("; ".join(errors))
        entries = {r["lang"]: json.loads(r["entry"]) for r in rows}
    src = _parallel_source(spec)
    basis = f"{src.kind}:{','.join(src.splits) or 'all'}" if src else "eval"
    parallel = {lang: entries[lang].pop("_parallel") for lang in langs}
    common = set.intersection(*(set(p) for p in parallel.values())) if parallel else set()
    size = {lang: sum(b for i, b in parallel[lang].items() if i in common) for lang in langs}
    ref = size.get(spec.reference_lang) or 0
    manifest = {}
    for lang in langs:
        premium = size[lang] / ref if ref and size[lang] else None
        manifest[lang] = {**entries[lang], "byte_premium": premium if spec.scale_by_byte_premium else None,
                          "byte_premium_measured": premium, "byte_premium_basis": basis}
    write_json_atomic(manifest, grid_samples_json(out, spec.name))
    return manifest


def read_samples_index(out, grid: str) -> dict[str, dict]:
    p = grid_samples_json(out, grid)
    if not p.is_file():
        raise ConfigError(f"grid {grid!r} has no samples under {p.parent}; run the grid first")
    return json.loads(p.read_text(encoding="utf-8"))


def plan_grid(spec: GridSpec, out, extra_cells: list[GridCell] | None = None, spark=None) -> tuple[list[GridCell], dict]:
    """Prepare samples (on `spark` when given) and plan the grid's cells (plus `extra_cells`,
    e.g. a second pass)."""
    manifest = prepare_samples(spec, out, spark)
    return plan([*expand(spec), *(extra_cells or [])], manifest), manifest


# -- one cell (worker) ------------------------------------------------------------------
def take_budget(texts: list[str], budget: int) -> tuple[list[str], int]:
    """Leading whole lines until `budget` UTF-8 bytes are reached (the last line may cross it)."""
    out, total = [], 0
    for t in texts:
        if total >= budget:
            break
        out.append(t)
        total += len(t.encode("utf-8"))
    return out, total


def store_artifact(root, path: Path) -> tuple[str, str]:
    """Copy `path` into the registry's content-addressed store (a directory or fsspec URL);
    returns (relative uri, sha256). Same layout as `Registry.add`, so registering it later
    copies nothing."""
    sha = sha256_file(path)
    rel = artifact_relpath(sha, path.name)
    Store(root).put_file(path, rel)
    return rel, sha


def artifact_vocab_size(fmt: str, path: Path) -> int:
    """Ids in a freshly trained artifact, read with the library itself (the registry loader
    would also probe offsets, which costs more than small trainings)."""
    if fmt == "sentencepiece-model":
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(path)).vocab_size()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    return max(tok.get_vocab_size(with_added_tokens=True), max(tok.get_vocab(with_added_tokens=True).values()) + 1)


def train_grid_cell(algorithm: str, texts: Sequence[str], vocab_size: int, directory: str | Path,
                    pre_tokenizer: str | None = None, transition_vocab: int | None = None) -> Path:
    """Train one grid cell's tokenizer into `directory`; returns the artifact path.

    `algorithm` is a label of `ALGORITHMS`; `transition_vocab` is the superword BPE's
    stage-1 vocabulary size (required for `superbpe`, ignored otherwise).
    """
    pre_tokenizer = pre_tokenizer or PRE_TOKENIZERS.get(algorithm, ("",))[0]
    check_variant(algorithm, pre_tokenizer)
    lib, algo = ALGORITHMS[algorithm]
    path = Path(directory) / ARTIFACT_NAMES[lib]
    if lib == "hf":
        return train_hf_variant(algo, texts, vocab_size, path, pre_tokenizer)
    if lib == "sp":
        return train_sentencepiece(algo, texts, vocab_size, path, split_by_whitespace=pre_tokenizer == "whitespace")
    if transition_vocab is None:
        raise ConfigError("superbpe needs a transition vocabulary size")
    return train_superbpe(texts, vocab_size, transition_vocab, path)


def train_cell(cell: dict, train_file: str, registry_root: str, out: str, min_fraction: float,
               max_fraction: float) -> dict:
    """Train one cell and write its GRID_CELLS row; never raises for a failing trainer."""
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core per task: Spark runs tasks side by side

    t0 = time.perf_counter()
    lib = ALGORITHMS[cell["algorithm"]][0]
    versions = trainer_versions()
    row = {k: cell[k] for k in ("cell_id", "lang", "algorithm", "pre_tokenizer", "vocab_size", "transition_vocab",
                                "train_bytes", "byte_budget", "byte_premium", "sample_version")}
    row["trainer"] = f"sentencepiece {versions['sentencepiece']}" if lib == "sp" else f"tokenizers {versions['tokenizers']}"
    texts = pq.read_table(train_file, columns=["text"])["text"].to_pylist()
    lines, seen = take_budget(texts, cell["byte_budget"])
    row.update(bytes_seen=seen, lines_seen=len(lines), data_limited=seen < cell["byte_budget"])
    work = grid_work_dir(out, cell["cell_id"])

    def finish(status, reason=None, error=None):
        row.update(status=status, reason=reason, error=error, task_seconds=time.perf_counter() - t0,
                   trained_at=datetime.now(timezone.utc))
        write_parquet_atomic(conform(pa.Table.from_pylist([row]), GRID_CELLS), grid_cell_path(out, cell["cell_id"]))
        shutil.rmtree(work, ignore_errors=True)
        return {"cell_id": cell["cell_id"], "status": status, "reason": reason, "error": error,
                "train_seconds": row.get("train_seconds"), "task_seconds": row["task_seconds"]}

    if not lines:
        return finish("failed", "no_training_text", f"language {cell['lang']} has no training text")
    try:
        t1 = time.perf_counter()
        path = train_grid_cell(cell["algorithm"], lines, cell["vocab_size"], work, cell["pre_tokenizer"],
                               cell["transition_vocab"])
        row["train_seconds"] = time.perf_counter() - t1
        fmt = FORMAT_OF[lib]
        actual = artifact_vocab_size(fmt, path)
    except BaseException as e:  # trainers raise RuntimeError, OSError, ValueError, a Rust panic… for impossible cells
        cell_error(e)
        row.setdefault("train_seconds", time.perf_counter() - t0)
        return finish("failed", "trainer_error", f"{type(e).__name__}: {e}"[:2000])
    row["actual_vocab_size"] = actual
    want = cell["vocab_size"]
    if actual < want * min_fraction:
        return finish("failed", "vocab_not_reached",
                      f"trainer stopped at {actual} of the requested {want} tokens on {seen} bytes "
                      f"(minimum accepted {min_fraction:.0%})")
    if actual > want * max_fraction:
        return finish("failed", "vocab_exceeded",
                      f"{actual} tokens for a requested {want}: the requested size is below what the "
                      f"algorithm's alphabet or special tokens need")
    rel, sha = store_artifact(registry_root, path)
    row.update(artifact_uri=rel, sha256=sha, format=fmt, tokenizer_id=tokenizer_id_for(sha, fmt, None),
               tokenizer_name=GridCell(**{k: cell[k] for k in GridCell.__dataclass_fields__}).name)
    return finish("ok")


# -- Spark ------------------------------------------------------------------------------
SUMMARY_SCHEMA = pa.schema([("cell_id", pa.string()), ("status", pa.string()), ("reason", pa.string()),
                            ("error", pa.string()), ("train_seconds", pa.float64()), ("task_seconds", pa.float64())])


@dataclass
class GridStatus:
    planned: int = 0
    done: int = 0
    failed: int = 0
    remaining: int = 0
    failures: list = field(default_factory=list)  # (cell_id, lang, algorithm, vocab_size, reason, error)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("planned", "done", "failed", "remaining", "failures")}


def read_cells(out, cell_ids: list[str] | None = None) -> pa.Table:
    """GRID_CELLS rows (of `cell_ids` when given) from the cell store."""
    paths = dataset_files(out, GRID_CELLS) if cell_ids is None else \
        [p for p in (grid_cell_path(out, c) for c in dict.fromkeys(cell_ids)) if p.is_file()]
    if not paths:
        return GRID_CELLS.schema.empty_table()
    return conform(pa.concat_tables([pq.read_table(p) for p in paths]), GRID_CELLS)


def grid_status(out, cells: list[GridCell]) -> GridStatus:
    rows = {r["cell_id"]: r for r in read_cells(out, [c.cell_id for c in cells]).to_pylist()}
    s = GridStatus(planned=len({c.cell_id for c in cells}))
    for r in rows.values():
        if r["status"] == "ok":
            s.done += 1
        else:
            s.failed += 1
            s.failures.append((r["cell_id"], r["lang"], r["algorithm"], r["vocab_size"], r["reason"], r["error"]))
    s.remaining = s.planned - s.done - s.failed
    return s


def cells_todo(out, cells: list[GridCell], retry_failed: bool = False) -> list[GridCell]:
    """Cells without a result (and failed ones when `retry_failed`), each id once."""
    rows = {r["cell_id"]: r["status"] for r in read_cells(out, [c.cell_id for c in cells])
            .select(["cell_id", "status"]).to_pylist()}
    todo = {}
    for c in cells:
        st = rows.get(c.cell_id)
        if st is None or (retry_failed and st != "ok"):
            todo.setdefault(c.cell_id, c)
    return list(todo.values())


def register_cells(out, registry_root, cells: list[GridCell]) -> int:
    """Add the registry rows of trained cells that are not registered yet (one write)."""
    reg = Registry(registry_root)
    existing = reg.specs()
    known = {s.tokenizer_id for s in existing}
    names = {s.name for s in existing}
    new = []
    for r in read_cells(out, [c.cell_id for c in cells]).to_pylist():
        if r["status"] != "ok" or r["tokenizer_id"] in known:
            continue
        name = r["tokenizer_name"] if r["tokenizer_name"] not in names else f"{r['tokenizer_name']}-{r['tokenizer_id']}"
        params = {"grid_cell": r["cell_id"], "algorithm": r["algorithm"], "pre_tokenizer": r["pre_tokenizer"]}
        new.append(TokenizerSpec(
            tokenizer_id=r["tokenizer_id"], name=name, format=r["format"], artifact_uri=r["artifact_uri"],
            sha256=r["sha256"], algorithm=REGISTRY_ALGORITHM[r["algorithm"]], vocab_size=r["actual_vocab_size"],
            pre_tokenizer=r["pre_tokenizer"], params_json="{}",
            provenance=f"tokatlas grid cell {r['cell_id']}: {json.dumps(params, sort_keys=True)}; "
                       f"{r['bytes_seen']} training bytes of {r['lang']} sample {r['sample_version']}",
            source_path=None, added_at=datetime.now(timezone.utc)))
        known.add(r["tokenizer_id"])
        names.add(name)
    return reg.add_specs(new)


@dataclass
class TrainSummary:
    planned: int = 0
    skipped: int = 0
    trained: int = 0
    failed: int = 0
    registered: int = 0
    train_seconds: float = 0.0  # sum of time inside the trainers
    task_seconds: float = 0.0  # sum of task wall times
    wall_seconds: float = 0.0
    failures: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def train_cells(spark, out, spec: GridSpec, cells: list[GridCell], *, registry_root=None, retry_failed: bool = False,
                wave_size: int = 0, progress=None) -> TrainSummary:
    """Train every cell without a result, one Spark task each, in waves of `wave_size`
    tasks (0: one wave); `progress(summary)` is called after each wave."""
    t0 = time.perf_counter()
    out = str(Path(out).resolve())
    reg_root = normalize_root(registry_root or registry_dir(out))
    todo = cells_todo(out, cells, retry_failed)
    s = TrainSummary(planned=len({c.cell_id for c in cells}))
    s.skipped = s.planned - len(todo)
    min_f, max_f, grid = spec.min_vocab_fraction, spec.max_vocab_fraction, spec.name

    def fn(c: dict) -> dict:
        return train_cell(c, str(grid_sample_file(out, grid, c["lang"], "train")), reg_root, out, min_f, max_f)

    wave = wave_size or len(todo) or 1
    for start in range(0, len(todo), wave):
        rows = fan_out_each(spark, [c.to_dict() for c in todo[start:start + wave]], fn, SUMMARY_SCHEMA)
        for r in rows:
            if r["status"] == "ok":
                s.trained += 1
            else:
                s.failed += 1
                s.failures.append((r["cell_id"], r["reason"], r["error"]))
            s.train_seconds += r["train_seconds"] or 0.0
            s.task_seconds += r["task_seconds"] or 0.0
        s.registered += register_cells(out, reg_root, todo[start:start + wave])
        if progress:
            progress(s)
    s.registered += register_cells(out, reg_root, cells)  # cells trained by an interrupted earlier run
    s.wall_seconds = time.perf_counter() - t0
    return s


def cells_from_dicts(dicts: list[dict]) -> list[GridCell]:
    """Cells from their `to_dict()` form (plain data, as `plan_job` returns them)."""
    return [GridCell(**{k: d[k] for k in GridCell.__dataclass_fields__}) for d in dicts]


def second_pass_cells(spec: GridSpec, optimal_rows: list[dict], manifest: dict) -> list[GridCell]:
    """Cells training each language's optimal vocabulary size (the spec's second-pass algorithms),
    from the `_optimal_rows` of a first analysis."""
    algs = set(spec.analysis.second_pass_algorithms or spec.algorithms)
    cells = []
    for r in optimal_rows:
        if r["_base_algorithm"] not in algs:
            continue
        tf = r["_transition_frac"]
        cells.append(GridCell(r["lang"], r["_base_algorithm"], r["pre_tokenizer"], r["v_opt"], r["train_bytes"],
                          transition_vocab(tf, r["v_opt"]) if tf else None))
    return plan(cells, manifest)


def spec_status(spec: GridSpec, out) -> dict:
    """Done/failed/remaining of a grid from its stored results (no training, no Spark)."""
    try:
        manifest = read_samples_index(out, spec.name)
    except ConfigError:
        return {"planned": len(expand(spec)), "done": 0, "failed": 0, "remaining": len(expand(spec)),
                "failures": [], "note": "never run: no samples yet"}
    return grid_status(out, plan(expand(spec), manifest)).to_dict()


def plan_job(spark, spec: dict, out, extra_cells: list[dict] | None = None) -> dict:
    """`plan_grid` with plain-data arguments and result, for `jobs.runtime.spark.call_job`."""
    cells, manifest = plan_grid(spec_from_dict(spec), out, cells_from_dicts(extra_cells or []), spark=spark)
    return {"cells": [c.to_dict() for c in cells], "manifest": manifest}


def train_job(spark, spec: dict, out, cells: list[dict], registry_root=None, retry_failed: bool = False,
              wave_size: int = 0) -> dict:
    """`train_cells` with plain-data arguments and result, for `jobs.runtime.spark.call_job`."""
    return train_cells(spark, out, spec_from_dict(spec), cells_from_dicts(cells), registry_root=registry_root,
                       retry_failed=retry_failed, wave_size=wave_size).to_dict()


def main(argv: list[str] | None = None) -> int:
    from jobs.runtime.params import add_spark_options

    p = argparse.ArgumentParser(prog="jobs/train_grid.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", required=True, help="grid spec YAML")
    p.add_argument("--out", required=True, help="output root")
    p.add_argument("--registry-root", help="registry root (default OUT/registry)")
    p.add_argument("--retry-failed", action="store_true", help="train failed cells again")
    add_spark_options(p, launcher=False)
    a = p.parse_args(argv)
    spec = load_spec(a.spec)
    from jobs.runtime.spark import build_spark

    spark = build_spark("tokatlas-train-grid", master=a.spark_master)
    cells, _ = plan_grid(spec, a.out, spark=spark)
    s = train_cells(spark, a.out, spec, cells, registry_root=a.registry_root,
                    retry_failed=a.retry_failed)
    st = grid_status(a.out, cells)
    print(f"grid {spec.name}: {s.planned} cells, {s.skipped} already had a result, {s.trained} trained, "
          f"{s.failed} failed in {s.wall_seconds:.1f}s; now done {st.done}, failed {st.failed}, remaining {st.remaining}")
    for f in s.failures:
        print("FAILED", *f, file=sys.stderr)
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.train_grid")
