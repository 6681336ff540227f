"""Cheap fingerprints of inputs, to skip work whose inputs did not change.

Like make, a file counts as changed when its size or modification time does; content
hashes (corpus versions, artifact sha256) still decide what goes stale downstream.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def files_under(root: str | Path) -> list[Path]:
    """`root` itself if a file, else every file below it, hidden ones (temp files, markers) excluded."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(f for f in root.rglob("*") if f.is_file()
                  and not any(part.startswith(".") for part in f.relative_to(root).parts))


def fingerprint(params: dict, files: list[Path], base: str | Path | None = None) -> str:
    """16 hex chars over the JSON of `params` and each file's (name, size, mtime)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for f in files:
        st = f.stat()
        name = f.relative_to(base) if base is not None and f != Path(base) else f.name
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
