"""Where a registry keeps its table and artifacts: a local directory or any fsspec URL.

    Registry("out/registry")                 local directory
    Registry("s3://bucket/tokatlas/registry") object store (needs s3fs; same for gs://, abfs://, hdfs://)
    Registry("file:///mnt/shared/registry")  a shared mount, addressed as a URL

Tokenizer libraries read local files only, so a remote artifact is downloaded once
per machine into a cache keyed by its sha256 ($TOKATLAS_ARTIFACT_CACHE, default
~/.cache/tokatlas/artifacts) and verified before use. Artifact paths are checked
against the root the same way for both kinds: relative, and never escaping it.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.store.atomic import atomic_path, write_bytes_atomic
from schemas.errors import ConfigError, TokenizerFileError
from schemas.names import printable


def is_url(root: str | Path) -> bool:
    return "://" in str(root)


def normalize_root(root: str | Path) -> str:
    """An absolute local path, or the URL unchanged: what Spark tasks receive."""
    return str(root) if is_url(root) else str(Path(root).resolve())


def resolve_under(root: str | Path, relative: str) -> Path:
    """`root/relative`, refusing anything that escapes `root` (.., absolute paths, symlinks out)."""
    root_p = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise TokenizerFileError(f"artifact path {relative!r} is absolute; it must be relative to {root_p}")
    target = (root_p / rel).resolve()
    try:
        return target if target == root_p else inside(root_p, target)
    except ConfigError:
        raise TokenizerFileError(f"artifact path {relative!r} escapes the registry root {root_p}") from None


def inside(root: str | Path, path: str | Path) -> Path:
    """`path` resolved (symlinks followed) if that lies strictly under `root`, else ConfigError.

    The one containment check: for files a manifest names, and before writing or removing
    anything whose path was built from a name.
    """
    root_p, target = Path(root).resolve(), Path(path).resolve()
    if root_p not in target.parents:
        raise ConfigError(f"path {printable(str(path))} is not under {root_p}")
    return target


def _checked_relative(root: str, relative: str) -> str:
    norm = posixpath.normpath(relative)
    if relative.startswith("/") or "://" in relative:
        raise TokenizerFileError(f"artifact path {relative!r} is absolute; it must be relative to {root}")
    if norm == ".." or norm.startswith("../"):
        raise TokenizerFileError(f"artifact path {relative!r} escapes the registry root {root}")
    return norm


def artifact_cache_dir() -> Path:
    return Path(os.environ.get("TOKATLAS_ARTIFACT_CACHE") or Path.home() / ".cache" / "tokatlas" / "artifacts")


class Store:
    """Files under one root; local paths go through pathlib, URLs through fsspec."""

    def __init__(self, root: str | Path):
        self.root = normalize_root(root) if is_url(root) else str(root)
        self.remote = is_url(root)
        if self.remote:
            from fsspec.core import url_to_fs

            self.fs, self._base = url_to_fs(self.root)

    def _remote_path(self, relative: str) -> str:
        return posixpath.join(self._base, _checked_relative(self.root, relative))

    def exists(self, relative: str) -> bool:
        if self.remote:
            return self.fs.exists(self._remote_path(relative))
        return resolve_under(self.root, relative).exists()

    def read_table(self, relative: str) -> pa.Table | None:
        """The Parquet table at `relative`, or None if there is none."""
        if not self.exists(relative):
            return None
        if self.remote:
            with self.fs.open(self._remote_path(relative), "rb") as f:
                return pq.read_table(f)
        return pq.read_table(resolve_under(self.root, relative))

    def write_table(self, table: pa.Table, relative: str) -> None:
        """Replace `relative` atomically: temp file then rename (a single PUT on object stores)."""
        self.put_bytes(_parquet_bytes(table), relative)

    def put_bytes(self, data: bytes, relative: str) -> None:
        if self.remote:
            write_bytes_atomic(data, self._remote_path(relative), fs=self.fs)
        else:
            write_bytes_atomic(data, resolve_under(self.root, relative))

    def put_file(self, path: str | Path, relative: str) -> None:
        """Copy a local file to `relative` unless it is there (artifacts never change)."""
        if not self.exists(relative):
            self.put_bytes(Path(path).read_bytes(), relative)

    def local_path(self, relative: str, sha256: str | None = None) -> Path:
        """A local file with the artifact's bytes: the file itself, or a verified cached copy."""
        if not self.remote:
            return resolve_under(self.root, relative)
        if not sha256:
            raise TokenizerFileError(f"{self.root}/{relative}: a remote artifact needs its sha256 to be cached")
        cached = artifact_cache_dir() / sha256[:2] / sha256 / posixpath.basename(relative)
        if cached.is_file():
            return cached
        src = self._remote_path(relative)
        if not self.fs.exists(src):
            raise TokenizerFileError(f"{self.root}/{relative}: artifact is missing")
        with atomic_path(cached) as tmp:
            with self.fs.open(src, "rb") as f, open(tmp, "wb") as g:
                while chunk := f.read(1 << 20):
                    g.write(chunk)
            got = sha256_file(tmp)
            if got != sha256:  # raised inside: the copy is removed, not kept
                raise TokenizerFileError(f"{self.root}/{relative}: sha256 {got} does not match the registry's {sha256}")
        return cached


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
