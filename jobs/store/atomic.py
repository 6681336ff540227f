"""Atomic commits: the one way anything under an output root (or a registry) is written.

A file or a folder is built under a hidden temp name beside its destination and renamed over
it at the end, so a reader sees the old version or the new one, never a half-written one:

    <dir>/.<name>.<uuid>.tmp    the temp name; hidden, so Spark, polars and DuckDB scans skip it,
                                and `clean_temp` removes what a killed writer left behind

`atomic_path` is the mechanism (a file, a folder, or with `fs=` an fsspec path, where the final
move is one PUT of the finished object); the `write_*_atomic` helpers hand it bytes, text, JSON,
a Parquet table or a CSV file.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _temp_name(name: str) -> str:
    return f".{name}.{uuid.uuid4().hex}.tmp"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit(tmp: Path, dest: Path) -> None:
    if not tmp.is_dir() or not dest.exists():
        os.replace(tmp, dest)
        return
    # a folder cannot be renamed over a non-empty one: move the old aside first (two renames, no copy)
    old = dest.with_name(_temp_name(dest.name))
    with contextlib.suppress(FileNotFoundError):
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        if not dest.exists():  # a concurrent writer that just swapped its folder in is as fresh as ours
            raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, fs=None) -> Iterator:
    """Yield a temp path beside `path` (not created: write a file or make a folder there); on
    success it replaces `path`, on an exception it is removed. With an fsspec filesystem `fs`,
    `path` is a path of that filesystem and the temp path yielded is a str."""
    if fs is not None:
        dest = str(path)
        fs.makedirs(posixpath.dirname(dest), exist_ok=True)
        tmp = posixpath.join(posixpath.dirname(dest), _temp_name(posixpath.basename(dest)))
        try:
            yield tmp
            fs.mv(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):  # the caller's error is the one to report
                if fs.exists(tmp):
                    fs.rm(tmp)
            raise
        return
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(_temp_name(dest.name))
    try:
        yield tmp
        _commit(tmp, dest)
    except BaseException:
        _remove(tmp)
        raise


def write_bytes_atomic(data: bytes, path: str | Path, fs=None):
    """Replace `path` (a local path, or one of fsspec filesystem `fs`) with `data`; returns `path`."""
    with atomic_path(path, fs) as tmp:
        if fs is not None:
            fs.pipe_file(tmp, data)
        else:
            tmp.write_bytes(data)
    return path if fs is not None else Path(path)


def write_text_atomic(text: str, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(obj, path: str | Path, *, sort_keys: bool = True) -> Path:
    """`obj` as indented UTF-8 JSON with a final newline (keys sorted unless `sort_keys=False`)."""
    return write_text_atomic(json.dumps(obj, indent=1, sort_keys=sort_keys, ensure_ascii=False) + "\n", path)


def write_parquet_atomic(table: pa.Table, path: str | Path) -> Path:
    """`table` with pyarrow's default writer options."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_csv_atomic(table: pa.Table, path: str | Path) -> Path:
    """`table` as CSV with pyarrow's default options (header, quoted strings)."""
    import pyarrow.csv as pacsv

    with atomic_path(path) as tmp:
        pacsv.write_csv(table, tmp)
    return Path(path)


def clean_temp(root: str | Path) -> int:
    """Remove the temp files and folders left by writers that were killed; returns how many."""
    n = 0
    for p in sorted(Path(root).rglob(".*.tmp")):  # a folder sorts before what it holds
        if os.path.lexists(p):
            _remove(p)
            n += 1
    return n
