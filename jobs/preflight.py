"""Checks of a flow's inputs that need no Spark and no Prefect: each flow command of the CLI runs
`check_<flow>(params.checked())` before it starts Prefect, so a bad input fails in seconds, as one
ConfigError line naming the file. (`checked()` validates the parameters alone, without reading inputs.)

Reads are cheap: Parquet footers and the language column, the first records of JSON Lines
files (all of them up to `SCAN_BYTES`), the registry table and the tokenizer manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobs.corpus.sources import PARQUET_SOURCES
from schemas.errors import ConfigError
from schemas.names import printable

SCAN_BYTES = 64 << 20  # JSON Lines sources up to this size are scanned for their languages
KEY_RECORDS = 1000  # JSON records per file inspected for the required fields


def parquet_files(path) -> list[Path]:
    """The data files of a Parquet file or folder (hidden and `_` files skipped, as readers do)."""
    p = Path(path)
    if p.is_file():
        return [p]
    return sorted(f for f in p.rglob("*") if f.is_file()
                  and not any(part.startswith((".", "_")) for part in f.relative_to(p).parts))


def check_parquet(path, what: str = "Parquet source") -> list[Path]:
    """Every file's footer is readable; a folder holds at least one file."""
    import pyarrow.parquet as pq

    files = parquet_files(path)
    if not files:
        raise ConfigError(f"{what} {path}: the folder holds no Parquet files")
    for f in files:
        try:
            pq.read_metadata(f)
        except PermissionError:
            raise ConfigError(f"{what} {f}: permission denied") from None
        except Exception as e:  # truncated, empty, not Parquet
            reason = "no Parquet footer (truncated, or not a Parquet file)" if "magic bytes" in str(e) \
                else f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            raise ConfigError(f"{what} {f}: not a readable Parquet file: {reason}") from None
    return files


def _scan_jsonl(files: list[str], needed: list[str], lang_col: str) -> set[str] | None:
    """Raise unless every file with JSON records has each needed field in one of its first records;
    the raw language labels when the files are small enough to read whole, else None."""
    whole = sum(Path(f).stat().st_size for f in files) <= SCAN_BYTES
    labels: set[str] = set()
    for f in files:
        try:
            n, seen = _scan_file(f, needed, lang_col, labels, whole)
        except PermissionError:
            raise ConfigError(f"JSON Lines file {f}: permission denied") from None
        missing = [k for k in needed if k not in seen]
        if n and missing:
            raise ConfigError(f"JSON Lines file {f}: no record has the field(s) {', '.join(map(repr, missing))} "
                              f"(of the first {min(n, KEY_RECORDS)} records; expected fields {', '.join(needed)})")
    return labels if whole else None


def _scan_file(f, needed, lang_col, labels: set, whole: bool) -> tuple[int, set]:
    """(JSON object records read, needed fields seen in the first KEY_RECORDS); adds languages to `labels`."""
    seen: set[str] = set()
    n = 0
    with open(f, "rb") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:  # quarantined by ingest, row by row
                continue
            if not isinstance(rec, dict):
                continue
            n += 1
            if n <= KEY_RECORDS:
                seen.update(k for k in needed if k in rec)
            elif not whole:
                break
            if rec.get(lang_col) is not None:
                labels.add(str(rec[lang_col]))
    return n, seen


def check_source(kind: str, path, corpus_name, out, languages=None, reference: str | None = None, *,
                 min_language_coverage: float | None = None, options=None):
    """The ingest source is readable and has the requested languages and the reference language;
    returns jobs.ingest's checked config."""
    from jobs import ingest
    from jobs.corpus import readers
    from schemas.languages import try_normalize_lang

    if kind in PARQUET_SOURCES and path and Path(path).exists():
        check_parquet(path, f"{kind} source")
    kw = {} if min_language_coverage is None else {"min_language_coverage": min_language_coverage}
    cfg = ingest.check_config(kind, path, corpus_name, out, languages, options=options, **kw)
    available = cfg.available
    if kind == "jsonl":
        o = cfg.options
        labels = _scan_jsonl(readers.jsonl_files(cfg.path), [c for c in (o.lang_col, o.id_col, o.text_col) if c],
                             o.lang_col)
        if labels is not None:
            available = {lang for lang in (try_normalize_lang(x)[0] for x in labels) if lang}
            require_languages(cfg.languages, available, f"jsonl source {cfg.path}")
    if reference and available is not None:
        require_languages([reference], available, f"{kind} source {cfg.path or 'django'} (reference language)")
    return cfg


def check_ingested(out, corpus: str, languages) -> None:
    """The corpus is ingested under `out` with every language (flows that reuse an ingest)."""
    from jobs.store import corpus_store

    have = set(corpus_store.read_corpus_versions(out, corpus))
    if not have:
        raise ConfigError(f"corpus {corpus!r} has not been ingested under {out}: give --corpus-path to ingest it")
    require_languages(languages, have, f"corpus {corpus!r} ingested under {out}")


def check_columns(path, needed: list[str], what: str) -> list[str]:
    """Readable Parquet with the columns `needed`; returns the column names."""
    import pyarrow.parquet as pq

    files = check_parquet(path, what)
    names = pq.read_schema(files[0]).names
    missing = [c for c in needed if c not in names]
    if missing:
        raise ConfigError(f"{what} {path}: no column(s) {', '.join(map(repr, missing))}; it has {', '.join(names)}")
    return names


def parquet_languages(path, column: str = "lang", split_column: str | None = None, splits=()) -> set[str]:
    """Distinct values of the language column (within `splits` when given)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    cols = [column, *([split_column] if splits else [])]
    t = ds.dataset(str(path), format="parquet").to_table(columns=cols)
    if splits:
        t = t.filter(pc.is_in(t[split_column].cast(pa.string()), value_set=pa.array(list(splits))))
    return {str(x) for x in pc.unique(t[column]).to_pylist() if x is not None}


def require_languages(languages, available: set[str], where: str) -> None:
    """ConfigError listing the languages missing from `where`, with near matches (ingest's message)."""
    from jobs import ingest

    ingest._check_present(languages, available, where)


def manifest_names(path) -> list[str]:
    """Tokenizer names a MANIFEST.json lists; ConfigError naming the file if it is not a valid manifest."""
    from tokenizers_registry.registry import read_manifest

    return [e["name"] for e in read_manifest(path)]


def check_tokenizers(out, names=None, manifest=None, *, also=()) -> None:
    """The manifest (if any) is a valid manifest, and each of `names` is listed in it, registered
    under `out` (name or id) or in `also`."""
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import Registry

    known = set(also) | set(manifest_names(manifest) if manifest else ())
    missing = [n for n in names or () if n not in known]
    if missing:
        known |= {x for s in Registry(registry_dir(out)).specs() for x in (s.name, s.tokenizer_id)}
        missing = [n for n in missing if n not in known]
    if missing:
        listed = ", ".join(printable(n) for n in sorted(known)[:12]) or "none"
        where = f"{manifest} or the registry under {out}" if manifest else f"the registry under {out}"
        raise ConfigError(f"unknown tokenizer(s) {', '.join(printable(repr(n)) for n in missing)} in {where}; "
                          f"known: {listed}")


# -- one check per flow: what its CLI command runs after `params.checked()` ---------------------
FLORES_COLUMNS = ["lang", "split", "sentence_id", "text"]


def check_premium(p):
    """Token premium: the source, its languages and the reference language, the manifest, named tokenizers."""
    check_source(p.corpus_source, p.corpus_path, p.corpus_name, p.out, p.languages, p.reference_lang,
                 min_language_coverage=p.min_language_coverage)
    check_tokenizers(p.out, p.tokenizers, p.tokenizer_manifest)
    return p


def check_trim(p):
    """Trim: the source (or the corpus already ingested), its languages, the manifest and the tokenizer."""
    if p.corpus_path:
        check_source(p.corpus_source, p.corpus_path, p.corpus_name, p.out, p.coverage_languages)
    else:
        check_ingested(p.out, p.corpus_name, p.coverage_languages)
    check_tokenizers(p.out, [p.tokenizer], p.tokenizer_manifest, also=[p.tokenizer] if p.tokenizer_file else ())
    return p


def check_flores(path, languages=(), splits=("dev", "devtest")) -> None:
    """FLORES-200 Parquet with its columns and every language in `splits`."""
    check_columns(path, FLORES_COLUMNS, "FLORES Parquet")
    if languages:
        require_languages(languages, parquet_languages(path, "lang", "split", splits),
                          f"FLORES Parquet {path} (splits {', '.join(splits)})")


def check_mixture(p):
    """Mixture inference: the FLORES file has the category languages; the manifest lists the tokenizers."""
    check_flores(p.flores, p.languages)
    names = manifest_names(p.tokenizer_manifest)
    missing = [t for t in p.tokenizers or () if t not in names]
    if missing:
        raise ConfigError(f"tokenizer manifest {p.tokenizer_manifest} lists no {', '.join(map(repr, missing))}; "
                          f"it lists {', '.join(names) or 'nothing'}")
    return p


def check_controlled(p):
    """Controlled mixture evaluation: a readable FLORES file."""
    check_flores(p.flores)
    return p


def check_grid(p):
    """Training grid: every data source is readable with its columns; the evaluation text has every language."""
    spec = p.grid
    sources = [*((f"data.train[{i}]", s) for i, s in enumerate(spec.data.train)), ("data.eval", spec.data.eval)]
    for where, s in sources:
        what = f"grid {spec.name} {where} ({s.kind})"
        if s.kind == "flores":
            check_columns(s.path, FLORES_COLUMNS, what)
        elif s.kind == "udhr":
            check_columns(s.path, ["iso639_3", "script", "key", "article_no", "text"], what)
        elif s.kind == "parquet":
            check_columns(s.path, [s.lang_column, s.text_column, *([s.split_column] if s.splits else [])], what)
        elif s.kind == "text" and not (Path(s.path).is_dir() and any(Path(s.path).glob("*.txt"))):
            raise ConfigError(f"{what} {s.path}: expected a folder of <lang>.txt files, found none")
    ev = spec.data.eval
    lang_col = "lang" if ev.kind == "flores" else ev.lang_column
    split_col = "split" if ev.kind == "flores" else ev.split_column
    if ev.kind in ("flores", "parquet"):
        require_languages(spec.languages, parquet_languages(ev.path, lang_col, split_col, ev.splits),
                          f"grid {spec.name} data.eval {ev.path}" + (f" (splits {', '.join(ev.splits)})"
                                                                     if ev.splits else ""))
    return p
