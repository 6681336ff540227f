"""Tokenizer training grids: the spec (YAML or Python dataclasses), its validation and
its expansion into cells with deterministic ids.

A grid is languages × algorithm × vocabulary size × training bytes × pre-tokenizer
variant (× transition point for the superword BPE). Expansion happens in two steps:
`expand(spec)` lists the abstract cells (no data needed, so a bad spec fails before
Spark starts), and `plan(spec, samples)` fixes each cell's byte budget (scaled by the
language's byte premium when asked) and its id, a hash of everything that determines
the trained tokenizer: language, algorithm, variant, sizes, the content version of the
language's training sample and the trainer library versions. The same cell therefore
always gets the same id, and a re-run trains only cells without a result.

Example (examples/grid_demo.yaml):

    name: demo
    languages: [eng_Latn, deu_Latn, fin_Latn, tur_Latn, arb_Arab, hin_Deva]
    algorithms: [hf-bpe, hf-unigram, sp-bpe, sp-unigram, superbpe]
    vocab_sizes: [1000, 2000, 4000, 8000]
    train_bytes: [200000]
    data:
      train: [{kind: flores, path: ../shared/data/flores200/flores200_dev_devtest.parquet, splits: [dev]},
              {kind: udhr, path: ../shared/data/udhr/udhr_articles.parquet}]
      eval: {kind: flores, path: ../shared/data/flores200/flores200_dev_devtest.parquet, splits: [devtest]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from jobs.corpus.sources import GRID_SOURCES
from schemas.errors import ConfigError
from schemas.languages import is_lang_code
from schemas.names import check_name
from tokenizers_registry.training import ALGORITHMS, PRE_TOKENIZERS

SOURCE_KINDS = tuple(GRID_SOURCES)
SPEC_VERSION = 1  # bump when the meaning of a cell changes; part of every cell id


@dataclass(frozen=True)
class Source:
    """Where text comes from.

    flores: FLORES-200 Parquet (lang, split, sentence_id, text); udhr: the UDHR articles
    Parquet (iso639_3, script, key, article_no, text; first translation per language);
    parquet: any Parquet with `lang_column`/`text_column` (optional `split_column`);
    text: a folder of `<lang>.txt` files, one line per text.
    """

    kind: str
    path: str
    splits: tuple[str, ...] = ()
    lang_column: str = "lang"
    text_column: str = "text"
    split_column: str = "split"


@dataclass(frozen=True)
class DataSpec:
    """Training sources (concatenated in order) and the parallel evaluation text."""

    train: tuple[Source, ...]
    eval: Source


@dataclass(frozen=True)
class AnalysisSpec:
    """Inequity analysis options.

    target_ctc: "auto" (the target minimising cross-language variance) or a CTC value.
    second_pass: train each language's optimal vocabulary size and measure its CTC.
    optimal_min/max_vocab: the vocabulary range an optimal size may take (clipped to it).
    """

    target_ctc: str | float = "auto"
    second_pass: bool = False
    second_pass_algorithms: tuple[str, ...] = ()  # default: all algorithms of the grid
    optimal_min_vocab: int = 256
    optimal_max_vocab: int = 65536
    fit_offset: bool = False  # fit CTC = a V^b + c instead of a V^b


@dataclass(frozen=True)
class GridSpec:
    name: str
    languages: tuple[str, ...]
    algorithms: tuple[str, ...]
    vocab_sizes: tuple[int, ...]
    train_bytes: tuple[int, ...]
    data: DataSpec
    pre_tokenizers: tuple[str, ...] = ("default",)
    transitions: tuple[float, ...] = (0.8,)  # superbpe stage-1 size: fraction of V (<= 1) or absolute
    scale_by_byte_premium: bool = False
    reference_lang: str = "eng_Latn"
    min_vocab_fraction: float = 0.95
    max_vocab_fraction: float = 1.05
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GridCell:
    """One tokenizer of a grid. `cell_id` and `byte_budget` are set by `plan`."""

    lang: str
    algorithm: str
    pre_tokenizer: str
    vocab_size: int
    train_bytes: int
    transition_vocab: int | None = None
    byte_budget: int | None = None
    byte_premium: float | None = None
    sample_version: str | None = None
    cell_id: str | None = None

    @property
    def name(self) -> str:
        """Registry name: readable, and unique through the id suffix."""
        t = f"-t{self.transition_vocab}" if self.transition_vocab else ""
        return check_name(f"grid-{self.lang}-{self.algorithm}-{self.pre_tokenizer}-v{self.vocab_size}{t}-"
                          f"b{self.byte_budget}-{(self.cell_id or '')[:8]}", "grid cell name")

    def to_dict(self) -> dict:
        return asdict(self)


# -- loading and validation -----------------------------------------------------------
def _err(where: str, msg: str) -> ConfigError:
    return ConfigError(f"grid spec {where}: {msg}")


def _tuple(value, where: str, kind=str) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (str, int, float)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _err(where, f"expected a list, got {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise _err(f"{where}[{i}]", f"expected an integer, got {v!r}")
        if kind is float and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _err(f"{where}[{i}]", f"expected a number, got {v!r}")
        if kind is str and not isinstance(v, str):
            raise _err(f"{where}[{i}]", f"expected a string, got {v!r}")
        out.append(v)
    return tuple(out)


def _known_keys(d: dict, cls, where: str) -> None:
    if not isinstance(d, dict):
        raise _err(where, f"expected a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise _err(where, f"unknown keys {sorted(unknown)}; known: {', '.join(sorted(known))}")


def _source(d, where: str, base: Path | None) -> Source:
    _known_keys(d, Source, where)
    if "kind" not in d or "path" not in d:
        raise _err(where, "a source needs 'kind' and 'path'")
    path = Path(str(d["path"]))
    if base is not None and not path.is_absolute():
        path = (base / path)
    return Source(kind=d["kind"], path=str(path), splits=_tuple(d.get("splits"), f"{where}.splits"),
                  **{k: d[k] for k in ("lang_column", "text_column", "split_column") if k in d})


def spec_from_dict(d: dict, *, base_dir: str | Path | None = None) -> GridSpec:
    """Build a GridSpec from parsed YAML/JSON; relative data paths resolve against `base_dir`."""
    _known_keys(d, GridSpec, "top level")
    for key in ("name", "languages", "algorithms", "vocab_sizes", "train_bytes", "data"):
        if key not in d:
            raise _err("top level", f"missing required key {key!r}")
    base = Path(base_dir) if base_dir is not None else None
    data = d["data"]
    _known_keys(data, DataSpec, "data")
    if "train" not in data or "eval" not in data:
        raise _err("data", "needs 'train' (list of sources) and 'eval' (one source)")
    train = data["train"] if isinstance(data["train"], list) else [data["train"]]
    data_spec = DataSpec(train=tuple(_source(s, f"data.train[{i}]", base) for i, s in enumerate(train)),
                         eval=_source(data["eval"], "data.eval", base))
    analysis = d.get("analysis") or {}
    _known_keys(analysis, AnalysisSpec, "analysis")
    analysis = dict(analysis)
    if "second_pass_algorithms" in analysis:
        analysis["second_pass_algorithms"] = _tuple(analysis["second_pass_algorithms"],
                                                    "analysis.second_pass_algorithms")
    kw = {k: d[k] for k in ("scale_by_byte_premium", "reference_lang", "min_vocab_fraction",
                            "max_vocab_fraction") if k in d}
    spec = GridSpec(
        name=str(d["name"]),
        languages=_tuple(d["languages"], "languages"),
        algorithms=_tuple(d["algorithms"], "algorithms"),
        vocab_sizes=_tuple(d["vocab_sizes"], "vocab_sizes", int),
        train_bytes=_tuple(d["train_bytes"], "train_bytes", int),
        pre_tokenizers=_tuple(d.get("pre_tokenizers", ["default"]), "pre_tokenizers"),
        transitions=_tuple(d.get("transitions", [0.8]), "transitions", float),
        data=data_spec,
        analysis=AnalysisSpec(**analysis),
        **kw,
    )
    return check_spec(spec)


def load_spec(path: str | Path) -> GridSpec:
    """Read and validate a YAML grid spec; data paths are relative to the spec's folder."""
    from jobs.runtime.params import (
        load_config,  # YAML errors as file, line and problem, never an excerpt
    )

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"grid spec {path} does not exist")
    d = load_config(path)
    try:
        return spec_from_dict(d, base_dir=path.parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except TypeError as e:  # wrong value types inside nested mappings
        raise ConfigError(f"{path}: {e}") from None


def check_spec(spec: GridSpec) -> GridSpec:
    """Raise ConfigError naming the offending field unless `spec` is valid; returns it."""
    try:  # the grid's folder and its tokenizers' names
        check_name(spec.name, "name")
    except ConfigError as e:
        raise _err("name", str(e)) from None
    for key in ("languages", "algorithms", "vocab_sizes", "train_bytes", "pre_tokenizers"):
        values = getattr(spec, key)
        if not values:
            raise _err(key, "must list at least one value")
        if len(set(values)) != len(values):
            raise _err(key, f"has duplicates: {list(values)}")
    for i, lang in enumerate(spec.languages):
        if not is_lang_code(lang):
            raise _err(f"languages[{i}]", f"{lang!r} is not an iso639_3_Script code (e.g. eng_Latn)")
    for i, a in enumerate(spec.algorithms):
        if a not in ALGORITHMS:
            raise _err(f"algorithms[{i}]", f"unknown algorithm {a!r}; known: {', '.join(ALGORITHMS)}")
    variants = {v for vs in PRE_TOKENIZERS.values() for v in vs} | {"default"}
    for i, v in enumerate(spec.pre_tokenizers):
        if v not in variants:
            raise _err(f"pre_tokenizers[{i}]", f"unknown variant {v!r}; known: {', '.join(sorted(variants))}")
    for i, v in enumerate(spec.vocab_sizes):
        if v < 2:
            raise _err(f"vocab_sizes[{i}]", f"{v} is not a vocabulary size (>= 2)")
    for i, b in enumerate(spec.train_bytes):
        if b < 1:
            raise _err(f"train_bytes[{i}]", f"{b} must be a positive number of bytes")
    for i, t in enumerate(spec.transitions):
        if t <= 0:
            raise _err(f"transitions[{i}]", f"{t} must be a fraction in (0, 1] or a vocabulary size > 1")
    if not 0 < spec.min_vocab_fraction <= 1 <= spec.max_vocab_fraction:
        raise _err("min_vocab_fraction", "need 0 < min_vocab_fraction <= 1 <= max_vocab_fraction")
    if not is_lang_code(spec.reference_lang):
        raise _err("reference_lang", f"{spec.reference_lang!r} is not an iso639_3_Script code")
    if spec.scale_by_byte_premium and spec.reference_lang not in spec.languages:
        raise _err("reference_lang", f"{spec.reference_lang} must be one of the languages to scale by byte premium")
    for i, s in enumerate([*spec.data.train, spec.data.eval]):
        where = f"data.train[{i}]" if i < len(spec.data.train) else "data.eval"
        if s.kind not in SOURCE_KINDS:
            raise _err(where, f"unknown source kind {s.kind!r}; known: {', '.join(SOURCE_KINDS)}")
        if not Path(s.path).exists():
            raise _err(where, f"path {s.path} does not exist")
    ev = spec.data.eval
    if ev.kind in ("udhr", "text"):
        raise _err("data.eval", f"evaluation text must be parallel with sentence ids (flores or parquet), not {ev.kind}")
    for i, s in enumerate(spec.data.train):
        same = Path(s.path).resolve() == Path(ev.path).resolve() and s.kind == ev.kind
        if same and (not s.splits or not ev.splits or set(s.splits) & set(ev.splits)):
            raise _err(f"data.train[{i}]", f"overlaps the evaluation text ({ev.path} splits {list(ev.splits) or 'all'});"
                       " train on other splits, e.g. FLORES dev, and evaluate on devtest")
    a = spec.analysis
    if not (a.target_ctc == "auto" or (isinstance(a.target_ctc, (int, float)) and a.target_ctc > 0)):
        raise _err("analysis.target_ctc", f"must be 'auto' or a positive number, not {a.target_ctc!r}")
    if not 2 <= a.optimal_min_vocab < a.optimal_max_vocab:
        raise _err("analysis.optimal_min_vocab", "need 2 <= optimal_min_vocab < optimal_max_vocab")
    for i, alg in enumerate(a.second_pass_algorithms):
        if alg not in spec.algorithms:
            raise _err(f"analysis.second_pass_algorithms[{i}]", f"{alg!r} is not one of the grid's algorithms")
    if not expand(spec):
        raise _err("pre_tokenizers", "no algorithm supports any listed pre-tokenizer variant: the grid is empty")
    return spec


# -- expansion --------------------------------------------------------------------------
def transition_vocab(t: float, vocab_size: int) -> int:
    """A transition axis value as a stage-1 vocabulary size (fractions are of `vocab_size`)."""
    return max(1, round(t * vocab_size)) if t <= 1 else int(t)


def expand(spec: GridSpec) -> list[GridCell]:
    """Abstract cells (no budget or id yet). Variants an algorithm does not support are
    left out ("default" means each algorithm's own default variant)."""
    cells = []
    for lang in spec.languages:
        for alg in spec.algorithms:
            variants = []
            for v in spec.pre_tokenizers:
                v = PRE_TOKENIZERS[alg][0] if v == "default" else v
                if v in PRE_TOKENIZERS[alg] and v not in variants:
                    variants.append(v)
            for v in variants:
                for size in spec.vocab_sizes:
                    for nbytes in spec.train_bytes:
                        ts = [transition_vocab(t, size) for t in spec.transitions] if alg == "superbpe" else [None]
                        for t in dict.fromkeys(ts):
                            if t is not None and t > size:
                                continue
                            cells.append(GridCell(lang, alg, v, size, nbytes, t))
    return cells


def trainer_versions() -> dict[str, str]:
    import sentencepiece
    import tokenizers

    return {"tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__}


def cell_id(cell: GridCell, sample_version: str, byte_budget: int, versions: dict[str, str]) -> str:
    """16 hex chars identifying what a cell trains: same inputs, same id."""
    lib = ALGORITHMS[cell.algorithm][0]
    payload = {"v": SPEC_VERSION, "lang": cell.lang, "algorithm": cell.algorithm, "pre_tokenizer": cell.pre_tokenizer,
               "vocab_size": cell.vocab_size, "transition_vocab": cell.transition_vocab, "byte_budget": byte_budget,
               "sample": sample_version,
               "trainer": versions["sentencepiece" if lib == "sp" else "tokenizers"]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def plan(cells: list[GridCell], samples: dict[str, dict], versions: dict[str, str] | None = None) -> list[GridCell]:
    """Fix byte budgets and ids. `samples` maps lang to {"version", "byte_premium"} (see
    jobs.train_grid.prepare_samples); byte_premium is None when budgets are not scaled."""
    versions = versions or trainer_versions()
    out = []
    for c in cells:
        s = samples[c.lang]
        premium = s.get("byte_premium")
        budget = round(c.train_bytes * premium) if premium else c.train_bytes
        out.append(GridCell(**{**c.to_dict(), "byte_budget": budget, "byte_premium": premium,
                           "sample_version": s["version"],
                           "cell_id": cell_id(c, s["version"], budget, versions)}))
    return out
