"""Before/after benchmark of the matching method's OR-Tools: a worker process (an older checkout)
against the same flow in the solving process (this checkout), on the same counted trajectories.

    python bench/bench_matching_inprocess.py --counted DIR --before /work/base [--after .]
        [--tokenizer o200k_base] [--T 30000] [--n 100] [--count-lines 2009] [--no-time-box]

Each side is one subprocess run by its checkout's own Python (`<checkout>/.venv/bin/python`, or
--before-python / --after-python) in its checkout's directory, so it imports that checkout's code
(`jobs.analysis.mixture`, or `jobs.mixture_lp` / `jobs.mixture_matching` before the restructure).
It loads `code_python` + n − 1 evenly spaced languages of DIR (picked as bench_mixture_solve.py
picks them), cut to the first T merges, and times the main matching solve (`solve_matching`, the
defaults `--lp-method matching` uses). The sides run one after the other, never side by side.
Printed per side: solve wall seconds, the seconds spent in the matching oracle (summed from the
round log), CPU seconds of the process and of its finished children (the old worker), peak RSS of
the process and of its largest child, rounds, rows, certified gap; then after / before, and
whether proportions, α and objective are bit-identical.

The simplex time box (a simplex re-solve abandoned for interior point after 120 s wall) makes the
solve's path depend on machine load; the rounds where it fired are counted per side, and
--no-time-box turns it off on both sides (simplex_seconds=None) so that the two paths are the same.

With --count-lines N and no trajectories under DIR, the categories are counted first (in this
process, this checkout's code): the languages among 99 evenly spaced FLORES-200 languages that the
pick needs, N lines each (2009: every dev + devtest line), and `code_python` of their mean size,
which is how `bench_mixture.py --save-counted` made the samples of docs/mixture.md's benchmarks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
LANGUAGES = 99  # FLORES languages of the benchmark samples (bench_mixture.py --n ...,100)

# One side's solve; argv: counted dir, tokenizer, T, categories (comma-separated), time box (1/0),
# result prefix. Runs in the checkout's directory, whichever layout its packages have.
CHILD = r"""
import json, re, resource, sys, time
import numpy as np
counted, tokenizer, T, cats, time_box, out = sys.argv[1:]
try:
    from jobs.analysis.mixture.matching import solve_matching
    from jobs.analysis.mixture.solve import load_problem
except ImportError:  # before the restructure into jobs/analysis/
    from jobs.mixture_lp import load_problem
    from jobs.mixture_matching import solve_matching
prob = load_problem(counted, tokenizer, cats.split(","), int(T))
kw = {} if time_box == "1" else {"simplex_seconds": None}
lines = []
def log(s):
    lines.append(s)
    print(s, file=sys.stderr, flush=True)
c0, k0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.time()
sol = solve_matching(prob, log=log, **kw)
wall = time.time() - t0
k1 = resource.getrusage(resource.RUSAGE_CHILDREN)
np.savez(out + ".npz", proportion=sol.proportion, alpha=sol.alpha, objective=np.array([sol.objective]))
json.dump({"wall": wall, "cpu": time.process_time() - c0,
           "cpu_children": (k1.ru_utime + k1.ru_stime) - (k0.ru_utime + k0.ru_stime),
           "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_child_mb": k1.ru_maxrss / 1024,
           "oracle": sum(float(x) for s in lines for x in re.findall(r"; oracle ([0-9.]+) s", s)),
           "time_box_fired": sum("simplex stopped at" in s for s in lines),
           "rounds": sol.n_rounds, "rows": sol.n_constraints, "gap": sol.gap, "status": sol.status,
           "n": prob.n, "merges_used": int(prob.used.sum())}, open(out + ".json", "w"))
"""


def pick_categories(cats: list[str], n: int) -> list[str]:
    """code_python + n − 1 evenly spaced languages of the sorted categories (bench_mixture_solve.py)."""
    langs = [c for c in cats if c != "code_python"]
    return sorted({"code_python", *(langs[i] for i in np.linspace(0, len(langs) - 1, n - 1).astype(int))})


def count(counted: Path, tokenizer: str, T: int, n: int, lines: int) -> None:
    """Count the categories the pick needs, as bench_mixture.py --save-counted does (module doc)."""
    from jobs.analysis.mixture.trajectory import trajectory_for_texts, write_trajectory
    from jobs.corpus.samples import flores_languages, flores_texts, python_stdlib_texts
    from jobs.store.layout import trajectory_dir
    from tokenizers_registry.formats import load_merges
    from tokenizers_registry.registry import manifest_entries

    flores = SHARED / "flores200" / "flores200_dev_devtest.parquet"
    langs = flores_languages(flores)
    langs = [langs[i] for i in np.linspace(0, len(langs) - 1, LANGUAGES).astype(int)]
    texts = {lang: flores_texts(flores, lang)[:lines] for lang in langs}
    need = [c for c in pick_categories(["code_python", *langs], n) if c != "code_python"]
    code = python_stdlib_texts(int(np.mean([sum(len(x.encode()) for x in t) for t in texts.values()])))
    e = manifest_entries(SHARED / "tokenizers" / "MANIFEST.json", [tokenizer])[0]
    ml = load_merges(e["path"], e["format"], e["params"], e["name"])
    t0 = time.time()
    for c, tx in [("code_python", code), *((lang, texts[lang]) for lang in need)]:
        write_trajectory(trajectory_for_texts(ml, tx, T), trajectory_dir(counted, ml.name, c),
                         {"tokenizer": ml.name, "category": c})
    print(f"counted {len(need) + 1} categories x {lines} lines at T = {T} in {time.time() - t0:.0f} s", flush=True)


def run_side(python: Path, checkout: Path, counted: Path, tokenizer: str, T: int, cats: list[str],
             time_box: bool, tmp: Path, name: str) -> tuple[dict, dict]:
    out = tmp / name
    subprocess.run([str(python), "-c", CHILD, str(counted), tokenizer, str(T), ",".join(cats), "1" if time_box else "0",
                    str(out)], cwd=checkout, check=True, stdin=subprocess.DEVNULL)
    with np.load(f"{out}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(Path(f"{out}.json").read_text()), arrays


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counted", required=True, help="directory with mixture/trajectories/tokenizer=<name>/")
    ap.add_argument("--before", required=True, help="checkout whose matching runs OR-Tools in a worker process")
    ap.add_argument("--after", default=str(ROOT), help="checkout that runs it in-process (default: this one)")
    ap.add_argument("--before-python", help="default: <before>/.venv/bin/python")
    ap.add_argument("--after-python", help="default: <after>/.venv/bin/python")
    ap.add_argument("--tokenizer", default="o200k_base")
    ap.add_argument("--T", type=int, default=30_000)
    ap.add_argument("--n", type=int, default=100, help="categories: code_python + n - 1 languages")
    ap.add_argument("--count-lines", type=int, help="count the categories first if DIR has none (module doc)")
    ap.add_argument("--no-time-box", action="store_true", help="simplex_seconds=None on both sides")
    a = ap.parse_args(argv)

    counted = Path(a.counted).resolve()
    src = counted / "mixture" / "trajectories" / f"tokenizer={a.tokenizer}"
    if not list(src.glob("category=*/steps.parquet")):
        if not a.count_lines:
            print(f"no trajectories under {src}; pass --count-lines N to count them first", file=sys.stderr)
            return 2
        count(counted, a.tokenizer, a.T, a.n, a.count_lines)
    cats = pick_categories(sorted(d.parent.name.split("=", 1)[1] for d in src.glob("category=*/steps.parquet")), a.n)
    print(f"{a.tokenizer}, T = {a.T}, n = {len(cats)} categories, matching method, "
          f"simplex time box {'off' if a.no_time_box else 'on'}", flush=True)
    sides = {"before": (Path(a.before_python or Path(a.before) / ".venv/bin/python"), Path(a.before).resolve()),
             "after": (Path(a.after_python or Path(a.after) / ".venv/bin/python"), Path(a.after).resolve())}
    res, arr = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-matching-") as tmp:
        for name, (python, checkout) in sides.items():
            print(f"\n## {name}: {checkout} ({python})", flush=True)
            res[name], arr[name] = run_side(python, checkout, counted, a.tokenizer, a.T, cats, not a.no_time_box,
                                            Path(tmp), name)
    print("\n| side | solve wall s | oracle s | CPU s (process) | CPU s (children) | peak RSS MB (process) "
          "| peak RSS MB (largest child) | rounds | rows | certified gap | time box fired |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['wall']:.1f} | {r['oracle']:.1f} | {r['cpu']:.1f} | {r['cpu_children']:.1f} "
              f"| {r['rss_mb']:.0f} | {r['rss_child_mb']:.0f} | {r['rounds']} | {r['rows']} | {r['gap']:.1e} "
              f"| {r['time_box_fired']} |")
    b, f = res["before"], res["after"]
    print(f"\nafter / before: solve wall {f['wall'] / b['wall']:.3f}x, oracle {f['oracle'] / max(b['oracle'], 1e-9):.3f}x, "
          f"CPU (process + children) {(f['cpu'] + f['cpu_children']) / (b['cpu'] + b['cpu_children']):.3f}x")
    same = {k: bool(np.array_equal(arr["before"][k], arr["after"][k])) for k in ("proportion", "alpha", "objective")}
    diff = float(np.abs(arr["before"]["proportion"] - arr["after"]["proportion"]).max())
    print(f"bit-identical: {', '.join(f'{k} {v}' for k, v in same.items())} "
          f"(max |proportion difference| {diff:.1e}); status before: {b['status']}; after: {f['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
