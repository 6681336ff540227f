"""Where everything lives under an output root: the one home of output paths, one section per family.

    <out>/registry/                                          tokenizer registry (tokenizers_registry.Registry)
    <out>/trained/                                           the embedded default's tokenizers, as trained
    <out>/catalog.json                                       dataset catalog (jobs.store.catalog)
    <out>/corpus/corpus=<c>/lang=<l>/part-0.parquet          validated sentences; _versions.json, _ingest.json
    <out>/rejects/corpus=<c>/part-0.parquet                  quarantined input rows
    <out>/{token_counts,corpus_counts,cell_failures,token_freqs}/lang=<l>/<cell>.parquet    one file per cell
    <out>/premium/corpus=<c>/reference=<r>.parquet           token-premium table
    <out>/grid/cells/, grid/ctc/, grid/<grid>/{samples,analysis}/    tokenizer grid
    <out>/coverage/corpus=<c>/*.parquet, trim/<tokenizer>/<run>/     vocabulary coverage and trims
    <out>/mixture/{samples,trajectories,bootstrap,cells,solves,estimates}/    data mixture inference
    <out>/run_log/<started>-<run_id>.parquet                 one row per flow run
    <out>/reports/<report>/, site/, index.html               human-readable reports and the site

A registered dataset's files are placed by filling its `Dataset.path` template (schemas/), so
that place is spelled once; what no dataset describes is spelled here. A cell file's name is
derived from (tokenizer, corpus, corpus version, shard) only, so a re-run or a retried task
overwrites it instead of adding a duplicate. Names that become path parts pass `check_name`,
and whatever is written or removed under a path derived from a name is first checked with
`inside(root, path)`. Writes go through `jobs.store.atomic`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from schemas import CORPUS, DATASETS, PREMIUM, REJECTS, TOKENIZERS, Dataset
from schemas.grid import GRID_CELLS, GRID_CTC, GRID_FITS
from schemas.mixture import MIXTURE_CELLS, MIXTURE_ESTIMATES, TRAJ_STEPS
from schemas.names import check_name
from schemas.run_log import RUN_LOG
from schemas.trim import TRIM_SUMMARY, VOCAB_COVERAGE
from tokenizers_registry.store import inside  # the one containment check, also for jobs

_VERSIONS = "_versions.json"  # {lang: {"version", "n_sentences"}} of an ingested corpus
_WHAT = {"corpus": "corpus name", "lang": "language", "reference": "reference language",
         "tokenizer": "tokenizer name", "category": "mixture category"}


# -- any dataset -------------------------------------------------------------------------
def _fill(ds: Dataset, *names: str, file: str | None = None, upto: str | None = None, glob: bool = False,
          **keys: str | None) -> str:
    """`ds.path` with each `<key>=*` part filled from `keys`, each other `*` directory from `names` in
    order and the file's `*` from `file` (a stem the caller built from checked parts); stops after the
    part of key `upto`. With `glob`, what is not given stays `*`."""
    parts, rest, filled = ds.path.split("/"), list(names), []

    def value(v, what: str) -> str:
        if v is None:
            if glob:
                return "*"
            raise TypeError(f"{ds.path}: no value given for the {what}")
        return v if what == "file" else check_name(v, what)

    for i, part in enumerate(parts):
        key, hive, suffix = part.partition("=*")
        if hive:
            filled.append(f"{key}={value(keys.pop(key, None), _WHAT.get(key, key))}{suffix}")
            if key == upto:
                upto = None
                break
        elif "*" in part and i == len(parts) - 1:
            filled.append(part.replace("*", value(file, "file"), 1))
            file = None
        elif "*" in part:
            filled.append(part.replace("*", value(rest.pop(0) if rest else None, f"{ds.name} path part"), 1))
        else:
            filled.append(part)
    if rest or file is not None or upto is not None or any(v is not None for v in keys.values()):
        raise TypeError(f"{ds.path} has no place for {rest or file or upto or keys}")
    return "/".join(filled)


def dataset_path(out, ds: Dataset, *names: str, file: str | None = None, **keys: str) -> Path:
    """One file of `ds` under `out` (see `_fill`)."""
    return Path(out) / _fill(ds, *names, file=file, **keys)


def dataset_files(out, ds: Dataset, *names: str, **keys: str | None) -> list[Path]:
    """The dataset's Parquet files under `out` (those of the given partition values, or all), sorted;
    hidden files and directories (temp writes) excluded."""
    if not ds.path:
        return []
    root = Path(out)
    real = root.resolve()
    return sorted(p for p in root.glob(_fill(ds, *names, glob=True, **keys))
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
                  and p.resolve().is_relative_to(real))  # a symlink out of the root is not the root's file


def dataset_root(out, ds: Dataset) -> Path:
    """The dataset's root directory: the path components before the first glob or hive key."""
    parts = []
    for part in ds.path.split("/")[:-1]:
        if "*" in part or "=" in part:
            break
        parts.append(part)
    return Path(out).joinpath(*parts)


def dataset_dir(out: str | Path, name: str) -> Path:
    return Path(out) / name


def registry_dir(out: str | Path) -> Path:
    return Path(out) / "registry"


def trained_dir(out) -> Path:
    """Artifacts of the embedded default's tokenizers, trained on the spot before they are registered."""
    return Path(out) / "trained"


def tokenizers_file(out) -> Path:
    """The table of the registry under the output root."""
    return dataset_path(out, TOKENIZERS)


def catalog_file(out) -> Path:
    return Path(out) / "catalog.json"


# -- corpus ------------------------------------------------------------------------------
def corpus_dir(out, corpus: str) -> Path:
    return Path(out) / _fill(CORPUS, upto="corpus", corpus=corpus)


def corpus_lang_dir(out: str | Path, corpus: str, lang: str) -> Path:
    return Path(out) / _fill(CORPUS, upto="lang", corpus=corpus, lang=lang)


def language_file(out, corpus: str, lang: str) -> Path:
    return dataset_path(out, CORPUS, file="part-0", corpus=corpus, lang=lang)


def versions_file(out, corpus: str) -> Path:
    return corpus_dir(out, corpus) / _VERSIONS


def ingest_record_file(out, corpus: str) -> Path:
    return corpus_dir(out, corpus) / "_ingest.json"


def ingested_corpora(out) -> list[str]:
    """Names of the corpora under `out` that have a `_versions.json`, sorted."""
    found = Path(out).glob(f"{_fill(CORPUS, upto='corpus', glob=True)}/{_VERSIONS}")
    return sorted(p.parent.name.split("=", 1)[1] for p in found if p.is_file())


def rejects_file(out, corpus: str) -> Path:
    return dataset_path(out, REJECTS, file="part-0", corpus=corpus)


# -- cells: token_counts, corpus_counts, cell_failures, token_freqs ----------------------
def cell_file(out: str | Path, dataset: str, lang: str, tokenizer_id: str, corpus: str,
              corpus_version: str, shard: int = 0) -> Path:
    stem = f"{check_name(tokenizer_id, 'tokenizer id')}-{check_name(corpus, 'corpus name')}-" \
           f"{check_name(corpus_version, 'corpus version')}-{shard:05d}"
    return dataset_path(out, DATASETS[dataset], file=stem, lang=lang)


# -- premium -----------------------------------------------------------------------------
def premium_file(out: str | Path, corpus: str, reference_lang: str) -> Path:
    """`<out>/premium/corpus=<c>/reference=<R>.parquet`."""
    return dataset_path(out, PREMIUM, corpus=corpus, reference=reference_lang)


def premium_files(out, corpus: str | None = None) -> list[Path]:
    """Premium tables of one corpus, or of all."""
    return dataset_files(out, PREMIUM, corpus=corpus)


# -- tokenizer grid ----------------------------------------------------------------------
def grid_root(out) -> Path:
    return dataset_root(out, GRID_CELLS).parent


def grid_cells_dir(out) -> Path:
    return dataset_root(out, GRID_CELLS)


def grid_cell_path(out, cell_id: str) -> Path:
    return dataset_path(out, GRID_CELLS, file=check_name(cell_id, "grid cell id"))


def grid_work_dir(out, cell_id: str) -> Path:
    """A training cell's scratch folder (hidden; removed once the cell's row is written)."""
    return grid_cells_dir(out) / f".work-{check_name(cell_id, 'grid cell id')}-{uuid.uuid4().hex[:8]}"


def grid_samples_dir(out, grid: str) -> Path:
    return grid_root(out) / check_name(grid, "grid name") / "samples"


def grid_sample_file(out, grid: str, lang: str, kind: str) -> Path:
    """A language's training sample (`kind` train) or evaluation text (eval)."""
    return grid_samples_dir(out, grid) / f"lang={check_name(lang, 'language')}" / f"{check_name(kind, 'kind')}.parquet"


def grid_samples_json(out, grid: str) -> Path:
    """Per-language facts of a grid's samples (versions, byte premium, sizes)."""
    return grid_samples_dir(out, grid) / "samples.json"


def grid_ctc_path(out, cell_id: str, eval_version: str) -> Path:
    return dataset_path(out, GRID_CTC, file=f"{check_name(cell_id, 'grid cell id')}-"
                                            f"{check_name(eval_version, 'eval version')}")


def grid_analysis_dir(out, grid: str) -> Path:
    return dataset_path(out, GRID_FITS, check_name(grid, "grid name")).parent


def grid_analysis_dirs(out) -> list[Path]:
    """Analysis folders of every grid that has its CTC table."""
    return sorted(d for d in Path(out).glob(str(Path(_fill(GRID_FITS, glob=True)).parent))
                  if (d / "ctc.parquet").exists())


# -- coverage and trims ------------------------------------------------------------------
def coverage_dir(out, corpus: str) -> Path:
    return Path(out) / _fill(VOCAB_COVERAGE, upto="corpus", corpus=corpus)


def coverage_dirs(out) -> list[Path]:
    return sorted(p.parent for p in dataset_files(out, VOCAB_COVERAGE))


def trim_run_dir(out, tokenizer_name: str, run_name: str) -> Path:
    """`<out>/trim/<name>/<run>`, checked to stay there (it is replaced whole)."""
    d = dataset_path(out, TRIM_SUMMARY, check_name(tokenizer_name, "tokenizer name"), run_name).parent
    inside(dataset_dir(out, "trim"), d)
    return d


def trim_runs(out) -> list[Path]:
    return sorted(p.parent for p in dataset_files(out, TRIM_SUMMARY))


# -- data mixture inference --------------------------------------------------------------
def mixture_root(out) -> Path:
    return dataset_root(out, MIXTURE_CELLS).parent


def mixture_sample_path(out: str | Path, category: str) -> Path:
    return mixture_root(out) / "samples" / f"category={check_name(category, 'mixture category')}" / "sample.parquet"


def trajectories_dir(out: str | Path, tokenizer: str, replicate: int = 0) -> Path:
    """A tokenizer's trajectories, one folder per category. Replicate 0 is the samples themselves;
    b > 0 are bootstrap resamples of their lines."""
    if replicate == 0:
        return Path(out) / _fill(TRAJ_STEPS, upto="tokenizer", tokenizer=tokenizer)
    return mixture_root(out) / "bootstrap" / f"replicate={int(replicate)}" / \
        f"tokenizer={check_name(tokenizer, 'tokenizer name')}"


def trajectory_dir(out: str | Path, tokenizer: str, category: str, replicate: int = 0) -> Path:
    return trajectories_dir(out, tokenizer, replicate) / f"category={check_name(category, 'mixture category')}"


def trajectory_dirs(out: str | Path, tokenizer: str, replicate: int = 0) -> list[Path]:
    """The tokenizer's category folders that hold a complete trajectory (`steps.parquet` is written last)."""
    steps = Path(TRAJ_STEPS.path).name
    return sorted(p for p in trajectories_dir(out, tokenizer, replicate).glob("category=*") if (p / steps).exists())


def mixture_cells_dir(out) -> Path:
    return dataset_root(out, MIXTURE_CELLS)


def solves_dir(out, tokenizer: str) -> Path:
    """Every solve (one folder per input fingerprint) of a tokenizer."""
    return mixture_root(out) / "solves" / f"tokenizer={check_name(tokenizer, 'tokenizer name')}"


def solve_dir(out, tokenizer: str, fingerprint: str) -> Path:
    return solves_dir(out, tokenizer) / check_name(fingerprint, "fingerprint")


def solution_file(out, tokenizer: str, fingerprint: str) -> Path:
    """The main solution of a solve."""
    return solve_dir(out, tokenizer, fingerprint) / "main.npz"


def replicate_path(out, tokenizer: str, fingerprint: str, b: int) -> Path:
    """Bootstrap replicate b (from 1) of a solve."""
    return solve_dir(out, tokenizer, fingerprint) / f"replicate={int(b)}.json"


def estimates_path(out, tokenizer: str) -> Path:
    return dataset_path(out, MIXTURE_ESTIMATES, tokenizer=tokenizer)


def estimates_files(out) -> list[Path]:
    return dataset_files(out, MIXTURE_ESTIMATES)


def solution_record_path(out, tokenizer: str) -> Path:
    """The fingerprint and result of the tokenizer's last solve, hidden beside its estimates
    (not part of the dataset)."""
    e = estimates_path(out, tokenizer)
    return e.with_name(f".{e.stem}.solution.json")


# -- run log -----------------------------------------------------------------------------
def run_log_dir(out) -> Path:
    return dataset_root(out, RUN_LOG)


def run_log_file(out, started_at: datetime, run_id: str) -> Path:
    """`<out>/run_log/<started>-<run_id>.parquet`: a run's one row, started then final."""
    return dataset_path(out, RUN_LOG, file=check_name(f"{started_at.strftime('%Y%m%dT%H%M%S')}-{run_id}", "run id"))


# -- reports and the site ----------------------------------------------------------------
def report_dir(out: str | Path, report: str) -> Path:
    d = Path(out) / "reports" / report
    inside(d.parent, d)  # report names are built from checked names (premium-<corpus>, trim-<tokenizer>)
    return d


def report_dirs(out) -> list[Path]:
    """Every report folder that has its index.html."""
    return sorted(p.parent for p in (Path(out) / "reports").glob("*/index.html"))


def site_dir(out) -> Path:
    return Path(out) / "site"


def site_index_file(out) -> Path:
    return Path(out) / "index.html"
