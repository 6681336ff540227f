"""The tokenizer registry: specs with stable ids, a content-addressed artifact store,
and a loader cache that loads each tokenizer once per worker process.

Layout under a registry root:

    <root>/tokenizers.parquet                       one row per tokenizer (schemas.TOKENIZERS)
    <root>/artifacts/<sha[:2]>/<sha>/<file name>    artifacts, never modified once written
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from schemas import TOKENIZERS, conform, validate
from tokenizers_registry.base import ConfigError, Tokenizer, TokenizerFileError
from tokenizers_registry.formats import FORMATS, load_format, sniff_format
from tokenizers_registry.store import Store, is_url, resolve_under  # noqa: F401  (resolve_under: public)

REGISTRY_FILE = "tokenizers.parquet"


@dataclass(frozen=True)
class TokenizerSpec:
    """One registered tokenizer; a row of the `tokenizers` dataset."""

    tokenizer_id: str
    name: str
    format: str
    artifact_uri: str
    sha256: str
    algorithm: str | None = None
    vocab_size: int | None = None
    pre_tokenizer: str | None = None
    params_json: str = "{}"
    provenance: str | None = None
    source_path: str | None = None
    added_at: datetime | None = None

    @property
    def params(self) -> dict:
        return json.loads(self.params_json or "{}")

    def to_row(self) -> dict:
        return asdict(self)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def canonical_params(params: dict | None) -> str:
    """Canonical JSON of loader parameters (sorted keys, no spaces): part of the id."""
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def artifact_relpath(sha256: str, file_name: str) -> str:
    """Content-addressed place of an artifact under a registry root."""
    return f"artifacts/{sha256[:2]}/{sha256}/{file_name}"


def tokenizer_id_for(sha256: str, fmt: str, params: dict | None) -> str:
    """Stable id: the artifact's content plus every loader parameter that changes output."""
    payload = f"{sha256}\n{fmt}\n{canonical_params(params)}".encode()
    return hashlib.sha256(payload).hexdigest()[:16]


class Registry:
    """Tokenizer specs and artifacts under one root: a directory or an fsspec URL."""

    def __init__(self, root: str | Path):
        self.root = root if is_url(root) else Path(root)
        self.store = Store(root)

    # -- reading -------------------------------------------------------------------
    @property
    def table_path(self) -> Path:
        return self.root / REGISTRY_FILE if isinstance(self.root, Path) else f"{self.root}/{REGISTRY_FILE}"

    def specs(self) -> list[TokenizerSpec]:
        table = self.store.read_table(REGISTRY_FILE)
        return [] if table is None else [TokenizerSpec(**row) for row in table.to_pylist()]

    def get(self, name_or_id: str) -> TokenizerSpec:
        """A spec by name or id; the error lists what exists."""
        specs = self.specs()
        for s in specs:
            if name_or_id in (s.name, s.tokenizer_id):
                return s
        known = ", ".join(sorted(s.name for s in specs)) or "(registry is empty)"
        raise ConfigError(f"unknown tokenizer {name_or_id!r} in registry {self.root}; known: {known}")

    def select(self, names: list[str] | None) -> list[TokenizerSpec]:
        """Specs for the given names/ids (all when None), in registry order."""
        if not names:
            return self.specs()
        return [self.get(n) for n in names]

    def artifact_path(self, spec: TokenizerSpec) -> Path:
        """A local file with the artifact (downloaded and verified once for a remote root)."""
        return self.store.local_path(spec.artifact_uri, spec.sha256)

    # -- writing -------------------------------------------------------------------
    def add(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        fmt: str | None = None,
        params: dict | None = None,
        provenance: str | None = None,
        expected_sha256: str | None = None,
    ) -> TokenizerSpec:
        """Register a tokenizer file: verify, load once to describe it, store its artifact.

        Adding the same file with the same parameters again returns the existing spec.
        """
        path = Path(path)
        if not path.is_file():
            raise TokenizerFileError(f"{path}: no such tokenizer file")
        sha = sha256_file(path)
        if expected_sha256 and sha != expected_sha256.lower():
            raise TokenizerFileError(f"{path}: sha256 {sha} does not match the expected {expected_sha256}")
        fmt = fmt or sniff_format(path)
        if fmt not in FORMATS:
            raise TokenizerFileError(f"{path}: unknown tokenizer format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
        tid = tokenizer_id_for(sha, fmt, params)
        name = name or path.name.split(".")[0]
        existing = {s.tokenizer_id: s for s in self.specs()}
        if tid in existing:
            return existing[tid]
        clash = [s for s in existing.values() if s.name == name]
        if clash:
            raise ConfigError(f"name {name!r} is already used by tokenizer {clash[0].tokenizer_id}; choose another name")
        tok = load_format(fmt, path, params or {})  # fails here, naming the file, if corrupt
        rel = artifact_relpath(sha, path.name)
        self.store.put_file(path, rel)
        spec = TokenizerSpec(
            tokenizer_id=tid,
            name=name,
            format=fmt,
            artifact_uri=rel,
            sha256=sha,
            algorithm=tok.algorithm,
            vocab_size=tok.vocab_size,
            pre_tokenizer=tok.pre_tokenizer,
            params_json=canonical_params(params),
            provenance=provenance,
            source_path=str(path),
            added_at=datetime.now(timezone.utc),
        )
        self._write([*existing.values(), spec])
        return spec

    def add_manifest(self, manifest: str | Path, names: list[str] | None = None) -> list[TokenizerSpec]:
        """Register the tokenizers a MANIFEST.json lists (format shared/data/tokenizers/MANIFEST.json)."""
        manifest = Path(manifest)
        entries = json.loads(manifest.read_text())["tokenizers"]
        out = []
        for e in entries:
            if names and e["name"] not in names:
                continue
            params = {}
            pattern = e.get("pattern")
            if e["format"] == "tiktoken-ranks" and pattern:
                params["pattern"] = pattern
            out.append(
                self.add(
                    manifest.parent / e["file"],
                    name=e["name"],
                    fmt=e["format"],
                    params=params,
                    provenance=e.get("source"),
                    expected_sha256=e.get("sha256"),
                )
            )
        return out

    def add_specs(self, specs: list[TokenizerSpec]) -> int:
        """Append specs whose tokenizer_id is new, in one atomic write; returns how many.

        For producers that store artifacts themselves (the training grid): `add` rewrites
        the table per tokenizer, which is quadratic over thousands of them.
        """
        existing = self.specs()
        known = {s.tokenizer_id for s in existing}
        new = [s for s in specs if s.tokenizer_id not in known]
        if new:
            self._write([*existing, *new])
        return len(new)

    def _write(self, specs: list[TokenizerSpec]) -> None:
        """Atomically replace the registry table."""
        table = conform(pa.Table.from_pylist([s.to_row() for s in specs]), TOKENIZERS)
        validate(table, TOKENIZERS)
        self.store.write_table(table, REGISTRY_FILE)


# -- loading, once per worker --------------------------------------------------------
_CACHE: OrderedDict[str, Tokenizer] = OrderedDict()
_CACHE_SIZE = int(os.environ.get("TOKATLAS_TOKENIZER_CACHE", "4"))


def load_tokenizer(spec: TokenizerSpec | dict, root: str | Path, *, verify: bool = True) -> Tokenizer:
    """Load a registered tokenizer, from this process's cache when it was loaded before.

    The artifact path must stay under `root`, and its sha256 must match the spec.
    """
    if isinstance(spec, dict):
        spec = TokenizerSpec(**{k: spec.get(k) for k in TokenizerSpec.__dataclass_fields__})
    hit = _CACHE.get(spec.tokenizer_id)
    if hit is not None:
        _CACHE.move_to_end(spec.tokenizer_id)
        return hit
    path = Store(root).local_path(spec.artifact_uri, spec.sha256)
    if not path.is_file():
        raise TokenizerFileError(f"{path}: artifact of tokenizer {spec.name!r} is missing")
    if verify:
        sha = sha256_file(path)
        if sha != spec.sha256:
            raise TokenizerFileError(f"{path}: sha256 {sha} does not match the registry's {spec.sha256}")
    tok = load_format(spec.format, path, spec.params)
    _CACHE[spec.tokenizer_id] = tok
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return tok

