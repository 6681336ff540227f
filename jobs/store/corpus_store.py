"""Reading (and the low-level writing) of the ingested corpus dataset (paths: `jobs.store.layout`).

    <out>/corpus/corpus=<c>/lang=<l>/part-0.parquet    one file per language, sorted by (split, sentence_id)
    <out>/corpus/corpus=<c>/_versions.json            {lang: {"version": …, "n_sentences": …}}
    <out>/corpus/corpus=<c>/_ingest.json              source fingerprint and summary of the last ingest
    <out>/rejects/corpus=<c>/part-0.parquet            quarantined rows

Plain pyarrow, no Spark: the encode job calls these on executors. A language's
`corpus_version` is a content hash of its rows, so counts keyed by it go stale
exactly when the language's text changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.store.atomic import write_json_atomic
from jobs.store.layout import ingest_record_file, language_file, rejects_file, versions_file
from schemas.errors import ConfigError

VERSION_KEY = b"tokatlas.corpus_version"


def corpus_version(table: pa.Table) -> str:
    """16 hex chars of sha256 over the (split, sentence_id, text) rows in (split, sentence_id) order.

    Length-prefixed fields, so no text can imitate a row boundary.
    """
    t = table.select(["split", "sentence_id", "text"]).sort_by([("split", "ascending"), ("sentence_id", "ascending")])
    h = hashlib.sha256()
    for split, sid, text in zip(t["split"].to_pylist(), t["sentence_id"].to_pylist(), t["text"].to_pylist(), strict=True):
        for part in (split.encode(), str(sid).encode(), text.encode("utf-8")):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()[:16]


def write_versions(out, corpus: str, versions: dict[str, dict]) -> Path:
    """Write `_versions.json` ({lang: {"version", "n_sentences"}}) atomically."""
    return write_json_atomic({k: versions[k] for k in sorted(versions)}, versions_file(out, corpus))


def write_ingest_record(out, corpus: str, record: dict) -> Path:
    return write_json_atomic(record, ingest_record_file(out, corpus))


def read_ingest_record(out, corpus: str) -> dict | None:
    path = ingest_record_file(out, corpus)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def read_corpus_index(out, corpus: str) -> dict[str, dict]:
    """{lang: {"version": str, "n_sentences": int}}; {} when the corpus was never ingested."""
    path = versions_file(out, corpus)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def read_corpus_versions(out, corpus: str) -> dict[str, str]:
    """{lang: corpus_version} of an ingested corpus; {} when it was never ingested."""
    return {lang: v["version"] for lang, v in read_corpus_index(out, corpus).items()}


def ingested_versions(out, corpus: str) -> dict[str, str]:
    """`read_corpus_versions`, or a ConfigError saying why there is nothing to encode."""
    versions = read_corpus_versions(out, corpus)
    if versions:
        return versions
    rejects = rejects_file(out, corpus)
    if rejects.is_file():
        raise ConfigError(f"corpus {corpus!r}: every row was quarantined (see rejects: {rejects})")
    raise ConfigError(f"corpus {corpus!r} has not been ingested under {out}")


def read_language(out, corpus: str, lang: str, columns: list[str] | None = None) -> pa.Table:
    """One language's rows (file schema: script, split, sentence_id, text, n_bytes, n_chars),
    sorted by (split, sentence_id). Raises FileNotFoundError naming the file."""
    path = language_file(out, corpus, lang)
    if not path.is_file():
        raise FileNotFoundError(f"no ingested rows for language {lang!r} of corpus {corpus!r}: {path}")
    return pq.ParquetFile(path).read(columns=columns)


def language_size(out, corpus: str, lang: str) -> int:
    """Number of sentences of one language (from the Parquet footer)."""
    return pq.ParquetFile(language_file(out, corpus, lang)).metadata.num_rows


def file_version(path) -> str | None:
    """The corpus_version recorded in a language file's metadata."""
    meta = pq.read_schema(path).metadata or {}
    v = meta.get(VERSION_KEY)
    return v.decode() if v else None
