"""Readers that turn any parallel corpus into raw rows for `jobs.ingest`.

Every reader returns a Spark DataFrame with `RAW_SCHEMA`: one row per input
sentence, nothing validated or dropped yet.

    corpus        corpus name
    lang_raw      the language label as found (eng_Latn, pt_BR, de, cmn_Hans …)
    variant       translation variant when a source has several per language
                  (UDHR key, FLORES+ file stem), else null; ingest keeps one
    split         dev, devtest, all …
    sentence_id   aligned id (same id = same content in every language)
    text          the sentence as decoded; null when absent
    source        file the row came from
    row           0-based row (Parquet) or line number (text files) in source
    error_reason  invalid_utf8 | bad_record when the reader could not read the row
    error         what was wrong, e.g. the invalid byte sequence and its offset

Text files are read as bytes (`binaryFile`) and split into lines on the executors
with `mapInArrow`, so many files scale out and invalid UTF-8 is reported per line
rather than replaced silently. Values of JSONL records and Parquet columns, whatever
their type, go through one check (`check_fields`): what is no valid UTF-8 or has the
wrong type becomes an `invalid_utf8` / `bad_record` row, never an exception. Paths are
listed on the driver: local (or mounted) file systems only.
"""

from __future__ import annotations

import gettext
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa

from schemas.languages import try_normalize_lang

RAW_SCHEMA = pa.schema([
    ("corpus", pa.string()), ("lang_raw", pa.string()), ("variant", pa.string()), ("split", pa.string()),
    ("sentence_id", pa.int64()), ("text", pa.string()), ("source", pa.string()), ("row", pa.int64()),
    ("error_reason", pa.string()), ("error", pa.string()),
])
RAW_COLUMNS = tuple(RAW_SCHEMA.names)

FLORES_PLUS_REPO = "openlanguagedata/flores_plus"
BOM = b"\xef\xbb\xbf"
_CHUNK = 8192  # lines per Arrow batch yielded by the line splitter: bounds worker memory


def raw_spark_schema():
    from schemas.spark import to_spark_schema

    return to_spark_schema(RAW_SCHEMA)


def _local(p) -> str:
    return str(Path(p).expanduser().resolve())


def _file_uri_to_path(uri: str) -> str:
    """`file:/a%20b/x` → `/a b/x` (Spark reports paths as URIs)."""
    u = urlparse(uri)
    return unquote(u.path) if u.scheme in ("file", "") else uri


def _source_col(col: str = "_metadata.file_path"):
    from pyspark.sql import functions as F

    return F.regexp_replace(F.col(col), r"^file:(//)?", "")


# -- bytes → lines ----------------------------------------------------------------------
def split_lines(content: bytes) -> list[bytes]:
    """Lines of a file: split on LF, a trailing LF ends the last line, CR before LF and a
    leading UTF-8 BOM are line/file framing and removed; nothing else is touched."""
    if content.startswith(BOM):
        content = content[len(BOM):]
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def decode_line(line: bytes, what: str = "line") -> tuple[str, str | None]:
    """(text, None) for valid UTF-8, else (text with \\x escapes, what was invalid)."""
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as e:
        bad = line[e.start:e.end]
        return (line.decode("utf-8", "backslashreplace"),
                f"invalid UTF-8 at byte {e.start} of the {what} ({bad!r}: {e.reason})")


# -- values → checked fields: one rule set for every source -------------------------------
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_INT_STRING = re.compile(r"-?[0-9]+")  # ASCII digits only: no '²', '٣', spaces or '1.5'
_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", Decimal: "number", str: "string", bytes: "bytes",
               dict: "object", list: "array", tuple: "array"}


def _type_name(v) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def utf8_safe(s: str) -> str:
    """`s` with lone surrogates as `\\udxxx` escapes: always encodable as UTF-8."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _decoded(v, what: str) -> tuple[object, str | None]:
    """Bytes decoded and strings checked for lone surrogates (JSON `\\ud800` escapes):
    (value, None) or (value with escapes, why it is not valid UTF-8); other values as they are."""
    if isinstance(v, bytes):
        return decode_line(v, what)
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError as e:
            return (utf8_safe(v), f"lone surrogate U+{ord(v[e.start]):04X} at character {e.start} of the {what} "
                                  "(not valid UTF-8)")
    return v, None


def _shown(v) -> str:
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 60 else s[:59] + "…"


def as_sentence_id(v, offset: int = 0) -> tuple[int | None, str | None]:
    """(v - offset, None) when `v` is an integer id, else (None, why not); (None, None) when null.

    Integers, integral floats (3.0 is 3) and strings of ASCII digits count; booleans,
    fractions, other strings and other types do not, nor anything outside int64."""
    if v is None:
        return None, None
    if isinstance(v, str):
        digits = v.lstrip("-").lstrip("0")
        if not _INT_STRING.fullmatch(v):
            return None, f"id {_shown(v)} is not an integer"
        if len(digits) > 19:  # beyond int64 whatever the digits; int() of a huge string is slow
            return None, f"id {_shown(v)} is out of the int64 range"
        n = int(v)
    elif isinstance(v, float | Decimal) and not isinstance(v, bool):
        if not (v.is_finite() if isinstance(v, Decimal) else math.isfinite(v)) or v != int(v):
            return None, f"id {_shown(v)} is not an integer"
        n = int(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        return None, f"id has type {_type_name(v)}, not integer"
    if not INT64_MIN <= n - offset <= INT64_MAX:
        return None, f"id {_shown(n)} is out of the int64 range"
    return n - offset, None


def _rendered(v) -> str | None:
    """A non-string value as text for the rejects (JSON for objects and arrays)."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict | list | tuple | bool):
        return utf8_safe(json.dumps(v, ensure_ascii=False, default=str))
    return utf8_safe(str(v))


def check_fields(lang, variant, split, sid, text, id_offset: int = 0) -> dict:
    """The RAW fields (lang_raw, variant, split, sentence_id, text, error_reason, error) of one
    input row whose values may have any type, by the rules in docs/ingest.md: invalid_utf8
    first (bytes that are not UTF-8 or lone surrogates, in the language label, variant,
    split, text or id), then bad_record (an id that is no int64 integer, text or split that
    is no string). Every string returned is valid UTF-8; a valid id is kept even in a reject."""
    out, errors = {}, []
    for key, v, what in (("lang_raw", lang, "language label"), ("variant", variant, "variant"),
                         ("split", split, "split"), ("text", text, "text"), ("sentence_id", sid, "id")):
        out[key], bad = _decoded(v, what)
        if bad:
            errors.append(("invalid_utf8", bad))
    out["sentence_id"], bad = as_sentence_id(out["sentence_id"], id_offset)
    if bad:
        errors.append(("bad_record", bad))
    for key in ("text", "split"):
        if not isinstance(out[key], str | None):
            errors.append(("bad_record", f"{key} has type {_type_name(out[key])}, not string"))
    out.update({k: _rendered(out[k]) for k in ("lang_raw", "variant", "split", "text")})
    reason, err = errors[0] if errors else (None, None)
    return {**out, "error_reason": reason, "error": err}


@dataclass(frozen=True)
class LineFile:
    """A text file of one language and split, one sentence per line."""

    path: str
    lang_raw: str
    split: str


def _empty_raw() -> dict:
    return {n: [] for n in RAW_COLUMNS}


def _lines_to_raw(content: bytes, spec: LineFile, corpus: str):
    cols = _empty_raw()
    for i, line in enumerate(split_lines(content)):
        text, err = decode_line(line)
        for k, v in (("corpus", corpus), ("lang_raw", spec.lang_raw), ("variant", None), ("split", spec.split),
                     ("sentence_id", i), ("text", text), ("source", spec.path), ("row", i),
                     ("error_reason", "invalid_utf8" if err else None), ("error", err)):
            cols[k].append(v)
        if len(cols["row"]) >= _CHUNK:
            yield pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)
            cols = _empty_raw()
    if cols["row"]:
        yield pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)


def _jsonl_to_raw(content: bytes, path: str, corpus: str, lang_col: str, id_col: str, text_col: str,
                  split_col: str | None, default_split: str):
    cols = _empty_raw()

    def add(row, text, reason, err, lang=None):
        add_fields(row, {"lang_raw": lang, "variant": None, "split": default_split, "sentence_id": None,
                         "text": text, "error_reason": reason, "error": err})

    def add_fields(row, fields):
        for k, v in {**fields, "corpus": corpus, "source": path, "row": row}.items():
            cols[k].append(v)

    for i, line in enumerate(split_lines(content)):
        text, err = decode_line(line)
        rec = None
        if err:
            add(i, text, "invalid_utf8", err)
        elif not text.strip():
            add(i, text, "bad_record", "blank line: no JSON record")
        else:
            try:
                rec = json.loads(text)
            except ValueError as e:  # also numbers of more than 4300 digits
                add(i, text, "bad_record", f"invalid JSON: {e}")
            if rec is not None and not isinstance(rec, dict):
                add(i, text, "bad_record", f"JSON record is a {type(rec).__name__}, not an object")
            elif rec is not None:
                missing = [c for c in (lang_col, id_col, text_col) if c not in rec]
                lang = rec.get(lang_col)
                if missing:
                    add(i, text, "bad_record", f"missing field(s) {', '.join(missing)}",
                        None if lang is None else utf8_safe(_rendered(lang)))
                else:
                    add_fields(i, check_fields(lang, None, rec.get(split_col) if split_col else default_split,
                                               rec[id_col], rec[text_col]))
        if len(cols["row"]) >= _CHUNK:
            yield pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)
            cols = _empty_raw()
    if cols["row"]:
        yield pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)


def _checked_rows(batches, id_offset: int = 0):
    """mapInArrow over rows selected as RAW_COLUMNS whose lang_raw, variant, split,
    sentence_id and text hold the source's values of any type: `check_fields` per row."""
    checked = ("lang_raw", "variant", "split", "sentence_id", "text")
    for batch in batches:
        fast = _all_valid(batch, id_offset)
        if fast is not None:
            yield fast
            continue
        values = {}
        for name in checked:
            col = batch.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                col = col.cast(pa.large_binary())  # decoded per value: invalid UTF-8 is a reject, not a crash
            values[name] = col.to_pylist()
        cols = {k: [] for k in (*checked, "error_reason", "error")}
        for row in zip(*values.values(), strict=True):
            for k, v in check_fields(*row, id_offset=id_offset).items():
                cols[k].append(v)
        for k in ("corpus", "source", "row"):
            cols[k] = batch.column(k).cast(RAW_SCHEMA.field(k).type)
        yield pa.RecordBatch.from_pydict(cols, schema=RAW_SCHEMA)


def _all_valid(batch, id_offset: int):
    """The RAW batch when every row passes `check_fields` by type alone (integer ids, UTF-8
    strings): the common case, done without a Python loop; else None."""
    import pyarrow.compute as pc

    strings = [batch.column(k) for k in ("lang_raw", "variant", "split", "text")]
    sid = batch.column("sentence_id")
    if not pa.types.is_signed_integer(sid.type) or not all(
            pa.types.is_string(c.type) or pa.types.is_large_string(c.type) or pa.types.is_null(c.type)
            for c in strings):
        return None
    try:
        for c in strings:
            c.validate(full=True)  # raises on invalid UTF-8
        sid = pc.subtract_checked(sid.cast(pa.int64()), id_offset)  # raises on overflow
    except pa.ArrowInvalid:
        return None
    cols = {k: batch.column(k) for k in RAW_COLUMNS if k in batch.schema.names}
    cols.update(sentence_id=sid, error_reason=pa.nulls(batch.num_rows, pa.string()),
                error=pa.nulls(batch.num_rows, pa.string()))
    return pa.RecordBatch.from_arrays([cols[k].cast(RAW_SCHEMA.field(k).type) for k in RAW_COLUMNS],
                                      schema=RAW_SCHEMA)


def _checked_table(df, id_offset: int = 0):
    """`df` (RAW_COLUMNS, the checked ones with any type) → RAW rows, see `_checked_rows`."""
    return df.mapInArrow(lambda batches: _checked_rows(batches, id_offset), raw_spark_schema())


def _read_binary_files(spark, paths: list[str], to_raw):
    """binaryFile → mapInArrow(to_raw(content, local_path)) → RAW rows."""
    if not paths:
        return spark.createDataFrame([], raw_spark_schema())

    def explode(batches):
        for batch in batches:
            uris = batch.column("path").to_pylist()
            contents = batch.column("content")
            for i, uri in enumerate(uris):
                yield from to_raw(contents[i].as_py(), _file_uri_to_path(uri))

    df = spark.read.format("binaryFile").load(paths).select("path", "content")
    return df.mapInArrow(explode, raw_spark_schema())


def read_line_files(spark, files: list[LineFile], corpus: str):
    """One sentence per line; sentence_id = row = 0-based line number."""
    specs = {_local(f.path): LineFile(_local(f.path), f.lang_raw, f.split) for f in files}

    def to_raw(content, path):
        spec = specs.get(path) or specs[_local(path)]
        yield from _lines_to_raw(content, spec, corpus)

    return _read_binary_files(spark, sorted(specs), to_raw)


def _filter_files(files: list[LineFile], languages) -> list[LineFile]:
    if not languages:
        return files
    wanted = set(languages)
    return [f for f in files if try_normalize_lang(f.lang_raw)[0] in wanted]


# -- 1. FLORES-200 Parquet (and any Parquet with lang/id/text columns) -------------------
def read_parquet_table(spark, path, corpus: str, *, lang_col: str = "lang", id_col: str = "id",
                       text_col: str = "text", split_col: str | None = None, default_split: str = "all",
                       raw_langs=None):
    """Parquet file(s) with one row per sentence; `raw_langs` pushes a filter on the raw label."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(path))
    if raw_langs is not None:
        df = df.filter(F.col(lang_col).cast("string").isin(sorted(raw_langs)))
    return _checked_table(df.select(
        F.lit(corpus).alias("corpus"),
        F.col(lang_col).cast("string").alias("lang_raw"),
        F.lit(None).cast("string").alias("variant"),
        (F.col(split_col) if split_col else F.lit(default_split)).alias("split"),
        F.col(id_col).alias("sentence_id"),
        F.col(text_col).alias("text"),
        _source_col().alias("source"),
        F.col("_metadata.row_index").cast("long").alias("row"),
    ))


def read_flores_parquet(spark, path, corpus: str = "flores200", raw_langs=None):
    """FLORES-200 Parquet (`lang, iso639_3, script, split, sentence_id, global_id, text`)."""
    return read_parquet_table(spark, path, corpus, lang_col="lang", id_col="sentence_id", text_col="text",
                              split_col="split", raw_langs=raw_langs)


# -- 2. FLORES folder {root}/{split}/{lang}.{split} ----------------------------------------
def flores_folder_files(root) -> list[LineFile]:
    """Every `{root}/{split}/{lang}.{split}` file, sorted; other files are not corpus files."""
    root = Path(root)
    files = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        split = split_dir.name
        for f in sorted(split_dir.iterdir()):
            if f.is_file() and not f.name.startswith(".") and f.name.endswith("." + split) \
                    and len(f.name) > len(split) + 1:
                files.append(LineFile(str(f), f.name[: -len(split) - 1], split))
    return files


def read_flores_folder(spark, root, corpus: str = "flores200", languages=None):
    """FLORES-style folder; files of languages not in `languages` are not read."""
    return read_line_files(spark, _filter_files(flores_folder_files(root), languages), corpus)


# -- 2b. FLORES+ from the Hugging Face hub (parquet layout {split}/{lang}.parquet) ---------
def flores_plus_files(root) -> list[tuple[str, str, str]]:
    """(path, split, file stem) of every `{root}/{split}/{stem}.parquet`."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [(str(f), f.parent.name, f.stem) for f in sorted(root.glob("*/*.parquet"))
            if not f.name.startswith(".") and not f.parent.name.startswith(".")]


def fetch_flores_plus(dest, languages=None, splits=("dev", "devtest"), revision: str | None = None,
                      token: str | None = None) -> Path:
    """Download FLORES+ Parquet files from the hub into `dest` (network; never in tests).

    The dataset is gated: accept its terms on the hub and pass `token` (or set HF_TOKEN).
    """
    from schemas.errors import ConfigError

    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise ConfigError("fetching FLORES+ needs the huggingface_hub package") from e
    pats = [f"{s}/{lang}*.parquet" for s in splits for lang in languages] if languages else \
        [f"{s}/*.parquet" for s in splits]
    try:
        snapshot_download(repo_id=FLORES_PLUS_REPO, repo_type="dataset", revision=revision, local_dir=str(dest),
                          allow_patterns=pats, token=token)
    except Exception as e:
        if type(e).__name__ in ("GatedRepoError", "RepositoryNotFoundError", "RevisionNotFoundError"):
            raise ConfigError(f"cannot fetch {FLORES_PLUS_REPO}: {e}. Accept the dataset's terms on the hub and "
                              f"set HF_TOKEN, or pass --path to a local copy") from e
        raise
    return Path(dest)


def read_flores_plus(spark, root, corpus: str = "flores_plus", languages=None, id_offset: int = 1):
    """Local FLORES+ Parquet files: lang from `iso_639_3` + `iso_15924`, split from the folder,
    sentence_id = `id` - `id_offset` (FLORES+ ids start at 1; FLORES-200 ids at 0), and the
    file stem as variant (glottocode-suffixed varieties of one language get one kept)."""
    from pyspark.sql import functions as F

    files = flores_plus_files(root)
    if languages:
        wanted = set(languages)
        files = [f for f in files if try_normalize_lang(f[2])[0] in wanted]
    if not files:
        return spark.createDataFrame([], raw_spark_schema())
    df = spark.read.parquet(*[f[0] for f in files])
    path = _source_col()
    return _checked_table(df.select(
        F.lit(corpus).alias("corpus"),
        F.concat_ws("_", F.col("iso_639_3"), F.col("iso_15924")).alias("lang_raw"),
        F.regexp_extract(path, r"([^/]+)\.parquet$", 1).alias("variant"),
        F.regexp_extract(path, r"([^/]+)/[^/]+\.parquet$", 1).alias("split"),
        F.col("id").alias("sentence_id"),
        F.col("text").alias("text"),
        path.alias("source"),
        F.col("_metadata.row_index").cast("long").alias("row"),
    ), id_offset)


# -- 3. UDHR articles -----------------------------------------------------------------------
def read_udhr(spark, path, corpus: str = "udhr"):
    """UDHR article Parquet: lang = iso639_3 + script, sentence_id = article_no
    (0 preamble, 1-30 articles), split 'all', variant = the translation key."""
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(path))
    return _checked_table(df.select(
        F.lit(corpus).alias("corpus"),
        F.concat_ws("_", F.col("iso639_3"), F.col("script")).alias("lang_raw"),
        F.col("key").cast("string").alias("variant"),
        F.lit("all").alias("split"),
        F.col("article_no").alias("sentence_id"),
        F.col("text").alias("text"),
        _source_col().alias("source"),
        F.col("_metadata.row_index").cast("long").alias("row"),
    ))


# -- 4. generic JSONL and text files ---------------------------------------------------------
def jsonl_files(path) -> list[str]:
    p = Path(path)
    if p.is_file():
        return [str(p)]
    return sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix in (".jsonl", ".ndjson")
                  and not f.name.startswith("."))


def read_jsonl(spark, path, corpus: str, *, lang_col: str = "lang", id_col: str = "id", text_col: str = "text",
               split_col: str | None = None, default_split: str = "all"):
    """JSON Lines, one object per line; unparsable lines become `bad_record` rows."""
    files = [_local(f) for f in jsonl_files(path)]

    def to_raw(content, p):
        yield from _jsonl_to_raw(content, p, corpus, lang_col, id_col, text_col, split_col, default_split)

    return _read_binary_files(spark, files, to_raw)


def text_files(path) -> list[LineFile]:
    """`<lang>.txt` files of a folder (or one such file); split 'all'."""
    p = Path(path)
    found = [p] if p.is_file() else sorted(f for f in p.glob("*.txt") if f.is_file() and not f.name.startswith("."))
    return [LineFile(str(f), f.name[: -len(".txt")] if f.name.endswith(".txt") else f.name, "all") for f in found]


def read_text_files(spark, path, corpus: str, languages=None):
    return read_line_files(spark, _filter_files(text_files(path), languages), corpus)


# -- 5. Django's gettext catalogs (the embedded default) -------------------------------------
def django_root() -> Path:
    import django

    return Path(django.__file__).resolve().parent


def django_catalogs(root=None) -> dict[str, list[Path]]:
    """locale → its `django.mo` files (conf first, then contrib apps), from `root` (default:
    the installed Django)."""
    root = Path(root) if root else django_root()
    by_locale: dict[str, list[Path]] = {}
    for f in sorted(root.rglob("locale/*/LC_MESSAGES/django.mo")):
        by_locale.setdefault(f.parent.parent.name, []).append(f)
    return by_locale


@dataclass
class DjangoCorpus:
    """The aligned Django corpus built on the driver, and how it was chosen."""

    table: pa.Table  # RAW_SCHEMA rows
    languages: list[str]  # iso639_3_Script, English included
    locales: dict[str, str]  # lang -> locale whose catalog was used ('msgid' for English)
    n_sentences: int
    n_messages: int  # messages translated in at least half of the candidate catalogs
    coverage: dict[str, float]  # locale -> share of those messages it translates
    skipped_variants: dict[str, str] = field(default_factory=dict)  # locale -> base locale used instead
    below_coverage: list[str] = field(default_factory=list)  # locales not selected
    n_catalog_files: int = 0


def _load_catalog(files: list[Path]) -> dict[str, tuple[str, str, int]]:
    """msg key → (translation, file, row) over one locale's catalogs, first file wins.

    Singular entries only (GNUTranslations stores plural forms under tuple keys); the
    header (empty msgid) and untranslated entries are skipped. Keys keep a msgctxt as
    `ctxt\\x04msgid`, so the same English text in two contexts is two messages.
    """
    merged: dict[str, tuple[str, str, int]] = {}
    for f in files:
        with open(f, "rb") as fh:
            cat = gettext.GNUTranslations(fh)._catalog  # data only: msgid -> msgstr
        keys = sorted(k for k in cat if isinstance(k, str))
        for row, k in enumerate(keys):
            v = cat[k]
            if k and isinstance(v, str) and v and k not in merged:
                merged[k] = (v, str(f), row)
    return merged


def _base_first(locale: str) -> tuple:
    # base locale (fewest subtags) first: de before de_CH, pt before pt_BR
    return (locale.count("_") + locale.count("@"), locale)


def build_django_corpus(root=None, languages=None, min_catalog_coverage: float = 0.95,
                        corpus: str = "django") -> DjangoCorpus:
    """Django's human-translated messages, aligned across languages.

    One locale per language (the base locale: `pt` not `pt_BR`, `es` not `es_AR`;
    `en*` catalogs are skipped, English is the msgid). The message set is what at least
    half of those catalogs translate; languages whose catalogs translate at least
    `min_catalog_coverage` of it are selected (or exactly `languages` when given), and
    the sentences are the messages translated in all selected languages, so the corpus
    is fully aligned. sentence_id = index in the sorted message keys.
    """
    catalogs = django_catalogs(root)
    groups: dict[str, list[str]] = {}
    unknown: list[str] = []
    for loc in catalogs:
        lang, _ = try_normalize_lang(loc)
        if lang is None:
            unknown.append(loc)
        elif lang != "eng_Latn":
            groups.setdefault(lang, []).append(loc)
    skipped = {}
    chosen: dict[str, str] = {}  # lang -> locale
    for lang, locs in groups.items():
        locs = sorted(locs, key=_base_first)
        chosen[lang] = locs[0]
        skipped.update({v: locs[0] for v in locs[1:]})
    cats = {loc: _load_catalog(catalogs[loc]) for loc in [*chosen.values(), *unknown]}
    wanted = set(languages) if languages else None
    candidates = {lang: loc for lang, loc in chosen.items() if wanted is None or lang in wanted}
    counts = Counter(k for loc in candidates.values() for k in cats[loc])
    half = len(candidates) / 2
    universe = {k for k, c in counts.items() if c >= half}
    coverage = {loc: (len(universe.intersection(cats[loc])) / len(universe) if universe else 0.0)
                for loc in candidates.values()}
    if wanted is not None:
        selected = dict(candidates)  # asked for by name: kept whatever their coverage
    else:
        selected = {lang: loc for lang, loc in candidates.items() if coverage[loc] >= min_catalog_coverage}
    aligned = set(universe)
    for loc in selected.values():
        aligned &= cats[loc].keys()
    keys = sorted(aligned)
    cols = _empty_raw()

    def add(lang_raw, sid, text, source, row):
        for k, v in (("corpus", corpus), ("lang_raw", lang_raw), ("variant", None), ("split", "all"),
                     ("sentence_id", sid), ("text", text), ("source", source), ("row", row),
                     ("error_reason", None), ("error", None)):
            cols[k].append(v)

    with_english = wanted is None or "eng_Latn" in wanted
    first_loc = [selected[lang] for lang in sorted(selected)]
    for sid, k in enumerate(keys):
        if with_english:
            _, src, row = cats[first_loc[0]][k] if first_loc else ("", "msgid", sid)
            add("en", sid, k.split("\x04", 1)[-1], src, row)
        for lang in sorted(selected):
            text, src, row = cats[selected[lang]][k]
            add(selected[lang], sid, text, src, row)
        for loc in unknown:  # kept visible: validation quarantines them as unknown_language
            if k in cats[loc]:
                text, src, row = cats[loc][k]
                add(loc, sid, text, src, row)
    langs = sorted({*selected, *(["eng_Latn"] if with_english else [])})
    return DjangoCorpus(
        table=pa.Table.from_pydict(cols, schema=RAW_SCHEMA), languages=langs,
        locales={**{lang: selected[lang] for lang in selected}, **({"eng_Latn": "msgid"} if with_english else {})},
        n_sentences=len(keys), n_messages=len(universe), coverage=coverage, skipped_variants=skipped,
        below_coverage=sorted(set(candidates.values()) - set(selected.values())),
        n_catalog_files=sum(len(v) for v in catalogs.values()))


def read_django(spark, root=None, corpus: str = "django", languages=None, min_catalog_coverage: float = 0.95):
    """The Django corpus (built on the driver: a few MB) as a DataFrame of raw rows."""
    built = build_django_corpus(root, languages, min_catalog_coverage, corpus)
    return spark.createDataFrame(built.table, schema=raw_spark_schema())
