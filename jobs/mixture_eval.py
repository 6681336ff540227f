"""Controlled evaluation of mixture inference (its report: jobs/reports/mixture.py).

A trial: pick n FLORES languages, draw byte proportions β uniformly from the simplex, train an
HF byte-level BPE tokenizer with T merges on a corpus with exactly those byte shares (lines of
the *train* split, cycled when a share needs more bytes than the split has), then run the attack
with held-out samples (lines of the *attack* split) and score log10 MSE(β, β̂). Baselines in the
same trial: a random guess (another simplex draw) and the uniform guess.

    python -m jobs.mixture_eval --flores FLORES.parquet --n 5,10 --T 1000,3000 --trials 10 --out OUT
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jobs.analysis.mixture.problem import LP_METHODS, MixtureProblem
from jobs.analysis.mixture.solve import solve_mixture
from jobs.analysis.mixture.trajectory import trajectory_for_texts
from jobs.corpus.samples import flores_languages, flores_texts, python_stdlib_texts
from jobs.reports.mixture import write_controlled_report
from jobs.runtime.fanout import cell_error, fan_out_each

DEFAULT_POOL = 112  # how many FLORES languages trials choose from (all when larger)
SUMMARY_COLUMNS = ["kind", "categories", "n", "T", "sample_lines", "sample_bytes", "trials", "converged", "log10_mse",
                   "log10_mse_random", "log10_mse_uniform", "lp_method", "max_gap", "constraints", "lp_seconds"]


def mixture_corpus(texts: dict[str, list[str]], beta: np.ndarray, total_bytes: int) -> dict[str, list[str]]:
    """Per category, the lines it contributes: β_i·total bytes of its lines (cycled, last one cut)."""
    res = {}
    for (cat, lines), b in zip(texts.items(), beta, strict=True):
        out = res[cat] = []
        need, i = int(round(b * total_bytes)), 0
        while need > 0 and lines:
            line = lines[i % len(lines)]
            enc = line.encode("utf-8")
            if len(enc) > need:  # cut the last line so the share is exact in bytes
                line = enc[:need].decode("utf-8", errors="ignore")
                enc = line.encode("utf-8")
                if not enc:
                    break
            out.append(line)
            need -= len(enc)
            i += 1
    return res


def run_trial(trial: dict) -> dict:
    """One controlled trial (plain dict in/out so it can run as a Spark task): {"rows": [...],
    "error": None}, or no rows and the error when the trial raised (a Rust panic in the trainer
    too), so that one trial's failure never ends the others."""
    try:
        return {"rows": _trial_rows(trial), "error": None}
    except BaseException as e:
        cell_error(e)
        return {"rows": [], "error": f"trial seed {trial['seed']} (n={trial['n']}, sample_lines="
                                     f"{trial['sample_lines']}): {type(e).__name__}: {e}"[:2000]}


def _trial_rows(trial: dict) -> list[dict]:
    """The trial's rows: one per (T, held-out or in-sample) solve."""
    from tokenizers_registry.formats import load_merges
    from tokenizers_registry.training import train_hf

    t0 = time.time()
    rng = np.random.default_rng(trial["seed"])
    code = bool(trial.get("code"))
    langs = list(rng.choice(trial["pool"], trial["n"] - code, replace=False))
    beta = rng.dirichlet(np.ones(trial["n"]))
    train = {lang: flores_texts(trial["flores"], lang, (trial["train_split"],)) for lang in langs}
    attack = {lang: flores_texts(trial["flores"], lang, (trial["attack_split"],))[: trial["sample_lines"]]
              for lang in langs}
    if code:  # Python stdlib: alternate 20-line chunks for training and attack (held-out text)
        chunks = python_stdlib_texts(2 * trial["train_bytes"])
        train["code_python"] = chunks[0::2]
        want = np.mean([sum(len(x.encode()) for x in attack[lang]) for lang in langs])
        held, size = [], 0
        for c in chunks[1::2]:
            if size >= want:
                break
            held.append(c)
            size += len(c.encode())
        attack["code_python"] = held
        langs.append("code_python")
    parts = mixture_corpus(train, beta, trial["train_bytes"])
    corpus = [line for lines in parts.values() for line in lines]
    rng.shuffle(corpus)
    # the shares actually realised (a tiny share can round to zero bytes)
    beta = np.array([sum(len(x.encode()) for x in parts[lang]) for lang in langs], float)
    beta /= beta.sum()
    T = max(trial["T_list"])
    with tempfile.TemporaryDirectory() as d:
        path = train_hf("bpe", corpus, 256 + 1 + T, Path(d) / "tokenizer.json")
        ml = load_merges(path, "hf-tokenizer-json", {}, "trial")
    rows = []
    trajs = {lang: trajectory_for_texts(ml, attack[lang], T) for lang in langs}
    # in-sample: the exact lines each category contributed, so only the solver can err
    insample = {lang: trajectory_for_texts(ml, parts[lang], T) for lang in langs} if trial.get("in_sample") else None
    guess = rng.dirichlet(np.ones(trial["n"]))
    for t_use in trial["T_list"]:
        for kind, tr in (("held_out", trajs), ("in_sample", insample)):
            if tr is None:
                continue
            prob = MixtureProblem(langs, [tr[lang] for lang in langs], t_use)
            sol = solve_mixture(prob, method=trial.get("lp_method", "auto"))
            rows.append({
                "seed": trial["seed"], "n": trial["n"], "T": prob.T, "sample_lines": trial["sample_lines"],
                "sample_bytes": int(sum(tr[lang].n_bytes for lang in langs) / len(langs)),
                "train_bytes": trial["train_bytes"], "kind": kind, "langs": ",".join(langs), "code": code,
                # per category, in the order of `langs`: so a reader can recompute every score
                "true_proportion": beta.tolist(), "estimated_proportion": sol.proportion.tolist(),
                "random_guess": guess.tolist(),
                "mse": float(np.mean((sol.proportion - beta) ** 2)),
                "mse_random": float(np.mean((guess - beta) ** 2)),
                "mse_uniform": float(np.mean((1.0 / trial["n"] - beta) ** 2)),
                "status": sol.status, "lp_method": sol.method, "gap": sol.gap,
                "n_constraints": sol.n_constraints, "n_rounds": sol.n_rounds,
                "lp_seconds": sol.seconds, "seconds": time.time() - t0,
            })
    return rows


def make_trials(flores: str, n_list, T_list, trials: int, sample_lines_list=(1012,), train_bytes: int = 400_000,
                train_split: str = "dev", attack_split: str = "devtest", pool_size: int = DEFAULT_POOL,
                in_sample: bool = True, seed: int = 0, code: bool = False, lp_method: str = "auto") -> list[dict]:
    """Trials for every (n, sample size); code=True makes one of the n categories Python source;
    lp_method: `solve_mixture`'s method for every solve."""
    langs = flores_languages(flores)
    # a fixed, spread-out pool so trials mix scripts as well as related languages
    pool = [langs[i] for i in np.linspace(0, len(langs) - 1, min(pool_size, len(langs))).astype(int)]
    out = []
    for n in n_list:
        for lines in sample_lines_list:
            for k in range(trials):
                out.append({"flores": str(flores), "pool": pool, "n": n, "T_list": list(T_list),
                            "sample_lines": lines, "train_bytes": train_bytes, "train_split": train_split,
                            "attack_split": attack_split, "in_sample": in_sample and lines == max(sample_lines_list),
                            "seed": seed + 1000 * n + 7919 * lines + k, "code": code,
                            "lp_method": lp_method})
    return out


def run_controlled(trials: list[dict], spark=None) -> list[dict]:
    """Run trials, one Spark task each when a session is given; the rows of those that finished.
    A failed trial has no rows (the summary's `trials` column counts the finished ones) and is
    named on stderr."""
    done = fan_out_each(spark, trials, run_trial)
    for x in done:
        if x["error"]:
            print("FAILED", x["error"], file=sys.stderr)
    return [r for x in done for r in x["rows"]]


def controlled_job(spark, flores: str, n, T, trials: int, sample_lines=(1012,), train_bytes: int = 400_000,
                   code: bool = False, lp_method: str = "auto") -> list[dict]:
    """The controlled evaluation as a job: every trial of `make_trials`, one Spark task each; the
    per-trial rows."""
    return run_controlled(make_trials(flores, n, T, trials, sample_lines, train_bytes, code=code, lp_method=lp_method),
                          spark)


def summarize(rows: list[dict]) -> list[dict]:
    """Mean log10 MSE per (kind, n, T, sample size), beside the baselines (as the paper reports)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], bool(r.get("code")), r["n"], r["T"], r["sample_lines"]), []).append(r)
    out = []
    for (kind, code, n, T, lines), g in sorted(groups.items()):
        def lg(k, g=g):
            return float(np.mean([np.log10(max(x[k], 1e-300)) for x in g]))

        out.append({"kind": kind, "categories": "languages+code" if code else "languages", "n": n, "T": T,
                    "sample_lines": lines, "converged": sum("not converged" not in x["status"] for x in g),
                    "sample_bytes": int(np.mean([x["sample_bytes"] for x in g])), "trials": len(g),
                    "log10_mse": lg("mse"), "log10_mse_random": lg("mse_random"),
                    "log10_mse_uniform": lg("mse_uniform"),
                    "lp_method": "/".join(sorted({x.get("lp_method", "lazy") for x in g})),
                    "max_gap": max((x["gap"] for x in g if np.isfinite(x.get("gap", np.nan))), default=np.nan),
                    "lp_seconds": float(np.mean([x["lp_seconds"] for x in g])),
                    "constraints": int(np.mean([x["n_constraints"] for x in g]))})
    return out


def main(argv: list[str] | None = None) -> int:
    from jobs.runtime.params import add_spark_options, csv_list

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flores", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", default="5,10")
    ap.add_argument("--T", default="1000,3000")
    ap.add_argument("--sample-lines", default="1012")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--train-bytes", type=int, default=400_000)
    ap.add_argument("--code", action="store_true", help="one of the n categories is Python stdlib source")
    ap.add_argument("--lp-method", choices=LP_METHODS, default="auto")
    add_spark_options(ap, launcher=False)
    a = ap.parse_args(argv)
    from jobs.runtime.spark import build_spark

    spark = build_spark("tokatlas-mixture-eval", master=a.spark_master)
    rows = controlled_job(spark, a.flores, [int(x) for x in csv_list(a.n)], [int(x) for x in csv_list(a.T)], a.trials,
                          [int(x) for x in csv_list(a.sample_lines)], a.train_bytes, code=a.code, lp_method=a.lp_method)
    _, table = write_controlled_report(a.out, rows, summarize(rows), SUMMARY_COLUMNS)
    print(table)
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.mixture_eval")
