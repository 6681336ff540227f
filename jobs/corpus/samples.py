"""Category samples for mixture inference: FLORES-200 languages and Python source code.

Each sample is one Parquet file with a `text` column (one line or chunk per row), under
<out>/mixture/samples/category=<c>/sample.parquet. Samples hold raw text; every tokenizer's
own normaliser and pre-tokenizer is applied when counting.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import mixture_sample_path
from schemas.errors import ConfigError


def flores_texts(path: str | Path, lang: str, splits: tuple[str, ...] = ("dev", "devtest")) -> list[str]:
    t = pq.read_table(path, columns=["lang", "split", "sentence_id", "text"],
                      filters=[("lang", "=", lang), ("split", "in", list(splits))])
    if t.num_rows == 0:
        raise ConfigError(f"{path}: no FLORES lines for {lang!r} in splits {splits}")
    t = t.sort_by([("split", "ascending"), ("sentence_id", "ascending")])
    return t["text"].to_pylist()


def flores_languages(path: str | Path) -> list[str]:
    return sorted(pc.unique(pq.read_table(path, columns=["lang"])["lang"]).to_pylist())


def python_stdlib_texts(max_bytes: int = 1 << 20, root: str | Path | None = None,
                        chunk_lines: int = 20) -> list[str]:
    """Chunks of `chunk_lines` lines from the Python standard library's .py files (sorted, tests skipped)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).parts
        if any(p in ("test", "tests", "site-packages", "idlelib", "lib2to3") for p in rel):
            continue
        try:
            lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        except (UnicodeDecodeError, OSError):
            continue
        for i in range(0, len(lines), chunk_lines):
            chunk = "".join(lines[i:i + chunk_lines])
            out.append(chunk)
            total += len(chunk.encode("utf-8"))
            if total >= max_bytes:
                return out
    if not out:
        raise ConfigError(f"no Python source files under {root}")
    return out


def write_sample(out: str | Path, category: str, texts: list[str]) -> Path:
    return write_parquet_atomic(pa.table({"text": pa.array(texts, pa.string())}), mixture_sample_path(out, category))


def build_samples(out: str | Path, flores_path: str | Path | None, languages: list[str],
                  code_bytes: int = 0, splits: tuple[str, ...] = ("dev", "devtest")) -> dict[str, str]:
    """Write one sample per category; returns category -> sample path.

    Languages come from FLORES; `code_bytes` > 0 adds a `code_python` category of that many
    bytes of standard-library source.
    """
    samples = {}
    for lang in languages:
        samples[lang] = str(write_sample(out, lang, flores_texts(flores_path, lang, splits)))
    if code_bytes:
        samples["code_python"] = str(write_sample(out, "code_python", python_stdlib_texts(code_bytes)))
    return samples
