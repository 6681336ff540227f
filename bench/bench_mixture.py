"""Benchmark of data mixture inference: pair counting per MB and the lazy LP at scale.

    python bench/bench_mixture.py [--lines 300] [--T 1000,10000,30000] [--n 5,30,100] [--tokenizer o200k_base]
        [--save-counted DIR | --counted DIR] [--lp-max-seconds S] [--continuation K]

Pair counting: seconds and peak RSS per MB of sample for each T (one category, ~1 MB of
four European FLORES languages), as a ratio to the baseline of pre-tokenizing the same bytes
(the tokenizer's normaliser + regex, `count_words`) in the same run. LP: for each (T, n), n
FLORES languages (`--lines` lines of each, counted once at max T), solved by lazy constraint
generation (every n includes `code_python`, Python stdlib source of the languages' mean sample
size); printed with the problem sizes (count events, rows of the full LP that were never
built, rows used, rounds) and as a ratio to the baseline of one HiGHS solve of the initial row
set (the first round of the same problem), with CPU seconds and simplex iterations next to
wall seconds (the machine is shared, so wall time depends on load) and, for a solve stopped at
the limit, its certified relative optimality gap. Peak memory is the process's VmHWM, reset before
each measurement (Linux /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.analysis.mixture.lazy import LazyLP
from jobs.analysis.mixture.problem import MixtureProblem, initial_rows
from jobs.analysis.mixture.solve import load_problem, solve_mixture  # noqa: E402
from jobs.analysis.mixture.trajectory import trajectory_for_texts, write_trajectory  # noqa: E402
from jobs.corpus.samples import flores_languages, flores_texts, python_stdlib_texts  # noqa: E402
from jobs.store.layout import trajectory_dir  # noqa: E402
from tokenizers_registry.formats import load_merges  # noqa: E402
from tokenizers_registry.registry import manifest_entries  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ru.ru_utime + ru.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default="o200k_base")
    ap.add_argument("--T", default="1000,10000,30000")
    ap.add_argument("--n", default="5,30,100")
    ap.add_argument("--lines", type=int, default=300, help="FLORES lines per category for the LP benchmark")
    ap.add_argument("--lp-T", help="T values for the LP part (default: --T)")
    ap.add_argument("--lp-max-seconds", type=float, default=None, help="time limit per LP solve")
    ap.add_argument("--skip-counting", action="store_true")
    ap.add_argument("--counted", help="solve trajectories already counted under this --out of the mixture job "
                                      "(its categories, cut to each T) instead of counting --lines of FLORES")
    ap.add_argument("--save-counted", help="also write the counted LP trajectories under this dir (for --counted)")
    ap.add_argument("--continuation", type=int, default=0, help="solve_mixture(continuation=K), stride kind")
    ap.add_argument("--method", default="lazy",
                    help="comma-separated solve_mixture methods: lazy, matching, bundle, auto")
    ap.add_argument("--gap-tolerance", type=float, default=1e-6, help="matching, bundle: stop at this certified gap")
    ap.add_argument("--log", action="store_true", help="print each LP round")
    a = ap.parse_args(argv)
    Ts = [int(x) for x in a.T.split(",")]
    lp_Ts = [int(x) for x in (a.lp_T or a.T).split(",")]
    ns = [int(x) for x in a.n.split(",")]
    flores = SHARED / "flores200" / "flores200_dev_devtest.parquet"
    e = manifest_entries(SHARED / "tokenizers" / "MANIFEST.json", [a.tokenizer])[0]
    t0 = time.time()
    ml = load_merges(e["path"], e["format"], e["params"], e["name"])
    print(f"tokenizer {ml.name}: {ml.n_derived} merges derived in {time.time() - t0:.1f}s")

    if not a.skip_counting:
        texts = [x for lang in ("eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn") for x in flores_texts(flores, lang)]
        mb = sum(len(x.encode()) for x in texts) / 1e6
        t0 = time.time()
        wc = ml.pretokenizer.count_words(texts)
        base = time.time() - t0
        print(f"\n## pair counting, one category of {mb:.2f} MB ({len(texts)} lines, {len(wc)} distinct words)")
        print(f"baseline: pre-tokenization (normaliser + regex + word counts) {base:.2f} s = {base / mb:.2f} s/MB")
        print("| T | seconds | s per MB | x pre-tokenization | peak RSS MB | step-0 pairs | stored deltas |")
        print("|---|---|---|---|---|---|---|")
        for T in Ts:
            reset_peak()
            t0 = time.time()
            tr = trajectory_for_texts(ml, texts, T)
            dt = time.time() - t0
            print(f"| {tr.T} | {dt:.2f} | {dt / mb:.2f} | {dt / base:.1f} | {peak_mb():.0f} | {len(tr.init_pair)} "
                  f"| {len(tr.delta)} |", flush=True)

    if a.counted:
        full = load_problem(a.counted, ml.name)
        # code_python first, so that every n keeps it
        order = sorted(range(full.n), key=lambda i: full.names[i] != "code_python")
        pick, trajs = [full.names[i] for i in order], [full.trajs[i] for i in order]
        ns = [n for n in ns if n <= len(pick)]
        print(f"\n## LP: {len(pick)} categories counted under {a.counted} (T={min(t.T for t in trajs)}); "
              f"mean sample {np.mean([t.n_bytes for t in trajs]) / 1e3:.0f} kB")
    else:
        langs = flores_languages(flores)
        pick = [langs[i] for i in np.linspace(0, len(langs) - 1, max(ns) - 1).astype(int)]
        print(f"\n## LP: counting {len(pick)} languages x {a.lines} lines + code_python at T={max(lp_Ts)}")
        t0 = time.time()
        trajs = [trajectory_for_texts(ml, flores_texts(flores, lang)[: a.lines], max(lp_Ts)) for lang in pick]
        code = python_stdlib_texts(int(np.mean([t.n_bytes for t in trajs])))
        pick, trajs = ["code_python", *pick], [trajectory_for_texts(ml, code, max(lp_Ts)), *trajs]
        if a.save_counted:
            for c, tr in zip(pick, trajs, strict=True):
                write_trajectory(tr, trajectory_dir(a.save_counted, ml.name, c), {"tokenizer": ml.name, "category": c})
        print(f"counted in {time.time() - t0:.0f}s; mean sample {np.mean([t.n_bytes for t in trajs]) / 1e3:.0f} kB")
    print("| T | n | method | merges used | count events | full-LP rows (pairs x steps) | rows used | rounds | status | certified gap "
          "| LP seconds | LP CPU s | simplex iterations | baseline s (1 solve of initial rows) | x baseline "
          "| peak RSS MB (this process) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for T in lp_Ts:
        for n in ns:
            idx = np.r_[0, np.linspace(1, len(pick) - 1, n - 1).astype(int)]
            reset_peak()
            prob = MixtureProblem([pick[i] for i in idx], [trajs[i] for i in idx], T)
            ev = prob.events()
            n_events = len(ev.pair)
            full_rows = int((np.minimum(ev.seg_end, T) - ev.slot).clip(min=0).sum())  # (pair, step) cells, upper bound
            t0 = time.time()
            lp = LazyLP(prob)
            lp.add_rows(*initial_rows(prob, 3))
            lp.solve()
            base = time.time() - t0
            del lp
            for method in a.method.split(","):
                c0 = cpu_seconds()
                sol = solve_mixture(prob, max_seconds=a.lp_max_seconds, continuation=a.continuation, method=method,
                                    gap_tolerance=a.gap_tolerance, log=print if a.log else None)
                cpu = cpu_seconds() - c0
                print(f"| {prob.T} | {n} | {method} | {sol.merges_used} | {n_events} | ≤{full_rows} | {sol.n_constraints} | {sol.n_rounds} "
                      f"| {sol.status} | {sol.gap:.1e} | {sol.seconds:.1f} | {cpu:.1f} | {sol.iterations} | {base:.1f} "
                      f"| {sol.seconds / base:.1f} | {peak_mb():.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
