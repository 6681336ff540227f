"""Model surgery: cut an embedding matrix (or output head, or bias) down to the kept ids.

NumPy `.npy` / `.npz` always; `.safetensors` when the `safetensors` package is installed
(optional; nothing else is needed). Row `new_id` of the result is row `old_id` of the
input. Rows past the tokenizer's vocabulary (models often pad the matrix to a multiple
of 64) have no token and are dropped. Arrays are loaded with `allow_pickle=False`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schemas.errors import ConfigError


def _vocab_axis(shape: tuple[int, ...], vocab_size: int) -> int:
    """Axis indexed by token id: rows, unless only the columns are long enough (a (hidden, vocab) head)."""
    if shape[0] >= vocab_size:
        return 0
    if len(shape) == 2 and shape[1] >= vocab_size:
        return 1
    raise ConfigError(f"matrix of shape {shape} has no axis with the tokenizer's {vocab_size} ids")


def read_arrays(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """{name: array} and the container kind (npy | npz | safetensors)."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ConfigError(f"embedding file {path} does not exist")
    if suffix == ".npy":
        return {"": np.load(path, allow_pickle=False)}, "npy"
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, "npz"
    if suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ConfigError(f"{path}: reading .safetensors needs the optional 'safetensors' package; "
                              "convert to .npy or install it") from None
        return dict(load_file(str(path))), "safetensors"
    raise ConfigError(f"{path}: embedding files must be .npy, .npz or .safetensors")


def write_arrays(arrays: dict[str, np.ndarray], kind: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "npy":
        np.save(path, arrays[""], allow_pickle=False)
    elif kind == "npz":
        np.savez(path, **arrays)
    else:
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    return path


def trim_matrix_file(path: str | Path, keep: np.ndarray, vocab_size: int, out_path: str | Path,
                     keys: list[str] | None = None) -> dict:
    """Write `out_path` (same container as `path`) with the kept ids' rows of each array.

    `keys` chooses arrays of an .npz/.safetensors (default: every array with a vocabulary
    axis); the others are copied unchanged. Returns {name: (old shape, new shape)}.
    """
    path, out_path = Path(path), Path(out_path)
    arrays, kind = read_arrays(path)
    keep = np.asarray(keep, dtype=np.int64)
    shapes = {}
    out = {}
    for name, a in arrays.items():
        if keys is not None and name not in keys:
            out[name] = a
            continue
        if a.ndim not in (1, 2):
            if keys is not None:
                raise ConfigError(f"{path}: array {name!r} has {a.ndim} dimensions; expected 1 or 2")
            out[name] = a
            continue
        try:
            axis = _vocab_axis(a.shape, vocab_size)
        except ConfigError as e:
            if keys is not None or kind == "npy":
                raise ConfigError(f"{path}: {name or 'array'}: {e}") from None
            out[name] = a
            continue
        out[name] = np.take(a, keep, axis=axis)
        shapes[name] = (tuple(a.shape), tuple(out[name].shape))
    if not shapes:
        raise ConfigError(f"{path}: no array with a vocabulary axis of {vocab_size} ids")
    write_arrays(out, kind, out_path)
    return shapes
