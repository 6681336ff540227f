"""The tokenizer registry: specs with stable ids, a content-addressed artifact store,
and a loader cache that loads each tokenizer once per worker process.

Layout under a registry root:

    <root>/tokenizers.parquet                       one row per tokenizer (schemas.TOKENIZERS)
    <root>/artifacts/<sha[:2]>/<sha>/<file name>    artifacts, never modified once written

Tokenizer names pass `check_name` (they become path parts of every dataset), and
MANIFEST.json files are read by `read_manifest` only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from schemas import TOKENIZERS, conform, validate
from schemas.errors import ConfigError, TokenizerFileError
from schemas.names import check_name, printable
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats import FORMATS, check_format, load_format, sniff_format
from tokenizers_registry.formats._common import check_encodes
from tokenizers_registry.store import Store, inside, is_url, resolve_under, sha256_file  # noqa: F401  (resolve_under: public)

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


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}
_ENTRY_STRINGS = ("name", "file", "format", "pattern", "sha256", "source")  # keys read; others are notes


def read_manifest(path: str | Path, *, allow_outside: bool = False) -> list[dict]:
    """The entries of a MANIFEST.json (`{"tokenizers": [{"name", "file", ...}, ...]}`), checked.

    Each entry comes back with `path`, its file resolved against the manifest's folder; a file
    outside that folder (by `..`, an absolute path or a symlink) is refused, and never opened,
    unless `allow_outside`. Any defect is a ConfigError naming the manifest and what was expected.
    """
    path = Path(path)
    want = 'expected a JSON object with a "tokenizers" array of {"name", "file", ...} entries'
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the manifest ({e.strerror or type(e).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; {want}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); {want}") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply; {want}") from None
    if not isinstance(doc, dict) or "tokenizers" not in doc:
        got = 'an object without "tokenizers"' if isinstance(doc, dict) else _JSON_TYPES.get(type(doc))
        raise ConfigError(f"{path}: {want}, got {got}")
    if not isinstance(doc["tokenizers"], list):
        raise ConfigError(f'{path}: "tokenizers" must be an array of entries, got {_JSON_TYPES[type(doc["tokenizers"])]}')
    folder, out, seen = path.parent.resolve(), [], set()
    for i, e in enumerate(doc["tokenizers"]):
        where = f"{path}: tokenizers[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where} must be an object, got {_JSON_TYPES[type(e)]}")
        for key in ("name", "file"):
            if key not in e:
                raise ConfigError(f'{where} lacks "{key}" (every entry needs "name" and "file")')
        for key in _ENTRY_STRINGS:
            optional = key not in ("name", "file")
            if key in e and not isinstance(e[key], str) and not (optional and e[key] is None):
                raise ConfigError(f"{where}.{key} must be a string{' or null' * optional}, "
                                  f"got {_JSON_TYPES[type(e[key])]}")
        try:
            name = check_name(e["name"], "tokenizer name")
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        where = f"{where} ({name})"
        if name in seen:
            raise ConfigError(f"{where}: the name is listed twice")
        seen.add(name)
        if e.get("format") is not None and e["format"] not in FORMATS:
            raise ConfigError(f"{where}: unknown format {printable(repr(e['format']))}; known: {', '.join(sorted(FORMATS))}")
        if not e["file"] or "\x00" in e["file"]:
            raise ConfigError(f"{where}: file {printable(repr(e['file']))} is not a file name")
        file = (folder / e["file"]).resolve()
        if not allow_outside:
            try:
                inside(folder, file)
            except ConfigError:
                raise ConfigError(f"{where}: file {printable(repr(e['file']))} is outside the manifest's folder "
                                  f"{folder}") from None
        out.append({**e, "path": file})
    return out


def manifest_params(entry: dict) -> dict:
    """Loader parameters of a manifest entry: the pattern of a tiktoken rank file (the file lacks it)."""
    pattern = entry.get("pattern")
    return {"pattern": pattern} if entry.get("format") == "tiktoken-ranks" and pattern else {}


def manifest_entries(manifest: str | Path, names: Sequence[str] | None = None, bpe_only: bool = True, *,
                     allow_outside: bool = False) -> list[dict]:
    """Tokenizer entries of a MANIFEST.json as {name, format, path, params}; by default only those
    whose format gives BPE merges (mixture inference), WordPiece files aside."""
    out = []
    for e in read_manifest(manifest, allow_outside=allow_outside):
        fmt = e.get("format")
        if names and e["name"] not in names:
            continue
        if bpe_only and (fmt not in FORMATS or not FORMATS[fmt].merges or "wordpiece" in e["name"]):
            continue
        out.append({"name": e["name"], "format": fmt, "path": str(e["path"]), "params": manifest_params(e)})
    return out


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

        Adding the same file with the same parameters again returns the existing spec, unless
        `name` asks for a different name: that is a ConfigError naming the registered one.
        """
        if name is not None:
            check_name(name, "tokenizer name")
        path = Path(path)
        if not path.is_file():
            raise TokenizerFileError(f"{path}: no such tokenizer file")
        sha = sha256_file(path)
        if expected_sha256 and sha != expected_sha256.lower():
            raise TokenizerFileError(f"{path}: sha256 {sha} does not match the expected {expected_sha256}")
        fmt = fmt or sniff_format(path)
        check_format(fmt, path)
        tid = tokenizer_id_for(sha, fmt, params)
        existing = {s.tokenizer_id: s for s in self.specs()}
        if tid in existing:
            if name not in (None, existing[tid].name):
                raise ConfigError(f"{path} is already registered as {printable(repr(existing[tid].name))} "
                                  f"(tokenizer {tid}); use that name")
            return existing[tid]
        name = name or check_name(path.name.split(".")[0], f"tokenizer name (from {path.name}; pass a name)")
        clash = [s for s in existing.values() if s.name == name]
        if clash:
            raise ConfigError(f"name {name!r} is already used by tokenizer {clash[0].tokenizer_id}; choose another name")
        tok = load_format(fmt, path, params or {})  # fails here, naming the file, if corrupt
        check_encodes(tok, name, path)  # e.g. a pattern that panics on long words: refused before it is stored
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

    def add_manifest(self, manifest: str | Path, names: list[str] | None = None, *,
                     allow_outside: bool = False) -> list[TokenizerSpec]:
        """Register the tokenizers a MANIFEST.json lists (format shared/data/tokenizers/MANIFEST.json).

        The whole manifest is checked first (`read_manifest`): a bad entry registers nothing.
        """
        out = []
        for e in read_manifest(manifest, allow_outside=allow_outside):
            if names and e["name"] not in names:
                continue
            out.append(self.add(e["path"], name=e["name"], fmt=e.get("format"), params=manifest_params(e),
                                provenance=e.get("source"), expected_sha256=e.get("sha256")))
        return out

    def add_specs(self, specs: list[TokenizerSpec]) -> int:
        """Append specs whose tokenizer_id is new, in one atomic write; returns how many.

        For producers that store artifacts themselves (the training grid): `add` rewrites
        the table per tokenizer, which is quadratic over thousands of them.
        """
        existing = self.specs()
        known = {s.tokenizer_id for s in existing}
        new = [s for s in specs if s.tokenizer_id not in known and check_name(s.name, "tokenizer name")]
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

