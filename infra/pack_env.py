"""Pack this virtualenv and the tokatlas packages into one archive for Spark executors.

    python -m infra.pack_env [--out env.tar.gz] [--venv .venv] [--exclude PATTERN ...]
    spark-submit --archives env.tar.gz#env --conf spark.pyspark.python=./env/bin/python \
        --conf spark.pyspark.driver.python=.venv/bin/python jobs/encode.py --out OUT --corpus C

`tokenizers`, `sentencepiece`, `pyarrow` and `numpy` are native extensions, so they cannot
travel as `--py-files` zips; Spark unpacks an `--archives` tarball in every executor's
working directory instead. This does what venv-pack does, but venv-pack refuses editable
installs, and tokatlas is installed editable in development: the project packages are
copied into the archive's site-packages in place of the editable hook.

Like venv-pack, the archive holds the venv, not the interpreter: `env/bin/python` links to
the base Python the venv was made from (`home` in pyvenv.cfg), which must exist at the
same path on every worker (same image or same pyenv/conda path). Otherwise build the venv
on a relocatable interpreter or ship a container image (see infra/README.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tarfile
import time
from pathlib import Path

from jobs.store.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("jobs", "schemas", "tokenizers_registry", "flows")
PACKAGE_DATA = ("*.py", "*.yaml", "*.json")
# Executors run their own JVM from the cluster's Spark; pyspark's jars are driver-side weight.
DEFAULT_EXCLUDE = ("*/__pycache__", "*.pyc", "lib/python*/site-packages/pyspark/jars",
                   "lib/python*/site-packages/pyspark/examples", "lib/python*/site-packages/__editable__*")


def _site_packages(venv: Path) -> str:
    sp = sorted(venv.glob("lib/python*/site-packages"))
    if not sp:
        raise SystemExit(f"{venv} has no lib/python*/site-packages: not a virtualenv")
    return str(sp[0].relative_to(venv))


def pack(out: str | Path = "env.tar.gz", venv: str | Path | None = None, exclude=DEFAULT_EXCLUDE,
         compresslevel: int = 1) -> Path:
    """Write the archive atomically and return its path; `exclude` are fnmatch patterns on
    paths relative to the venv (a matching directory is skipped whole)."""
    venv = Path(venv or sys.prefix).resolve()
    if not (venv / "pyvenv.cfg").exists():
        raise SystemExit(f"{venv} is not a virtualenv (no pyvenv.cfg)")
    out = Path(out).resolve()
    site = _site_packages(venv)
    project = {p for p in PROJECT_PACKAGES if (ROOT / p).is_dir()}

    def skip(rel: str) -> bool:
        top = rel[len(site) + 1:].split("/", 1)[0] if rel.startswith(site + "/") else None
        return top in project or any(fnmatch.fnmatch(rel, pat) for pat in exclude)

    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz", compresslevel=compresslevel) as tar:
        for dirpath, dirnames, filenames in os.walk(venv):
            rel_dir = os.path.relpath(dirpath, venv)
            rel_dir = "" if rel_dir == "." else rel_dir
            keep = []
            for d in sorted(dirnames):  # symlinked dirs are stored as links; os.walk does not follow them
                rel = f"{rel_dir}/{d}" if rel_dir else d
                if not skip(rel):
                    tar.add(os.path.join(dirpath, d), arcname=rel, recursive=False)
                    keep.append(d)
            dirnames[:] = keep
            for f in sorted(filenames):
                rel = f"{rel_dir}/{f}" if rel_dir else f
                if not skip(rel):
                    tar.add(os.path.join(dirpath, f), arcname=rel, recursive=False)
        for pkg in sorted(project):
            for path in sorted((ROOT / pkg).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and \
                        any(fnmatch.fnmatch(path.name, pat) for pat in PACKAGE_DATA):
                    tar.add(path, arcname=f"{site}/{path.relative_to(ROOT)}", recursive=False)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.pack_env", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="env.tar.gz", help="archive to write (default env.tar.gz)")
    p.add_argument("--venv", help="virtualenv to pack (default: the one running this)")
    p.add_argument("--exclude", action="append", default=[],
                   help="extra fnmatch pattern relative to the venv, repeatable, e.g. "
                        "'lib/python*/site-packages/polars*' for packages executors never import")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    path = pack(a.out, a.venv, (*DEFAULT_EXCLUDE, *a.exclude))
    print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f}s")
    print(f"use: spark-submit --archives {path}#env --conf spark.pyspark.python=./env/bin/python "
          f"--conf spark.pyspark.driver.python={sys.executable} …", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
