"""Crosslingual inequity statistics of a trained grid (after Arnett et al. 2025): pure functions.

Power-law fits of corpus token count against vocabulary size, optimal sizes, variance and
paired tests, regressions on language features. `jobs.grid_analysis` computes their inputs on Spark.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa
from scipy import optimize, stats

from schemas import conform
from schemas.grid import (
    GRID_FITS,
    GRID_OPTIMAL,
    GRID_REGRESSIONS,
    GRID_TARGETS,
    GRID_TESTS,
)

AXES = ("lang", "algorithm", "pre_tokenizer", "vocab_size", "transition_vocab", "train_bytes", "byte_budget")
FIT_KEY = ("algorithm", "pre_tokenizer", "train_bytes", "transition_frac")


# -- power-law fits ---------------------------------------------------------------------
def fit_power_law(v, ctc, *, offset: bool = False) -> dict:
    """Fit CTC = a V^b (+ c). Without offset: OLS of log CTC on log V, with the parameter
    covariance of (log a, b); with offset: nonlinear least squares started from it."""
    v = np.asarray(v, dtype=float)
    y = np.asarray(ctc, dtype=float)
    if len(v) < 2 or len(set(v)) < 2:
        raise ValueError("a power-law fit needs at least two distinct vocabulary sizes")
    x, ly = np.log(v), np.log(y)
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
    resid = ly - X @ coef
    dof = len(v) - 2
    s2 = float(resid @ resid / dof) if dof > 0 else float("nan")
    cov = s2 * np.linalg.inv(X.T @ X) if dof > 0 else np.full((2, 2), np.nan)
    a, b, c = float(math.exp(coef[0])), float(coef[1]), 0.0
    if offset and len(v) >= 3:
        try:
            (a, b, c), pcov = optimize.curve_fit(lambda vv, aa, bb, cc: aa * vv ** bb + cc, v, y,
                                                 p0=(a, b, 0.0), maxfev=20000)
            a, b, c = float(a), float(b), float(c)
            cov = np.full((2, 2), np.nan) if not np.all(np.isfinite(pcov)) else cov
        except RuntimeError:
            c = 0.0
    pred = a * v ** b + c
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    lp = np.log(np.maximum(pred, 1e-12))
    r2 = 1 - float(((ly - lp) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    loo = None
    if len(v) >= 3 and not offset:
        errs = []
        for i in range(len(v)):
            m = np.arange(len(v)) != i
            ci, *_ = np.linalg.lstsq(X[m], ly[m], rcond=None)
            errs.append(abs(math.exp(ci[0] + ci[1] * x[i]) / y[i] - 1))
        loo = float(np.mean(errs))
    return {"a": a, "b": b, "c": c, "cov": cov, "r2": r2, "n_points": len(v),
            "b_se": float(math.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) else None,
            "rmse_rel": float(np.sqrt(np.mean((pred / y - 1) ** 2))), "loo_rel_error": loo,
            "v_min": int(v.min()), "v_max": int(v.max())}


def predict(fit: dict, v) -> np.ndarray:
    return fit["a"] * np.asarray(v, dtype=float) ** fit["b"] + fit["c"]


def optimal_vocab(fit: dict, target: float) -> tuple[float, float | None, float | None]:
    """(V, lo, hi): the vocabulary size where the fit reaches `target`, and a 95% interval
    from the covariance of (log a, b) by the delta method (None when unavailable)."""
    a, b, c = fit["a"], fit["b"], fit["c"]
    if target <= c or b == 0:
        return float("inf"), None, None
    lv = (math.log(target - c) - math.log(a)) / b
    cov = fit["cov"]
    if not np.all(np.isfinite(cov)) or c:
        return math.exp(lv), None, None
    grad = np.array([-1 / b, -lv / b])  # d logV / d(log a, b)
    se = math.sqrt(max(float(grad @ cov @ grad), 0.0))
    z = stats.norm.ppf(0.975)
    return math.exp(lv), math.exp(lv - z * se), math.exp(lv + z * se)


def transition_frac(row: dict) -> float | None:
    t = row.get("transition_vocab")
    return round(t / row["vocab_size"], 2) if t else None


def _group_label(algorithm, pre_tokenizer, train_bytes, tf) -> str:
    alg = f"{algorithm}@{tf:g}" if tf else algorithm
    return f"{alg}/{pre_tokenizer}/b{train_bytes}"


def fit_all(ctc: pa.Table, *, offset: bool = False) -> tuple[pa.Table, dict]:
    """GRID_FITS rows and {(lang, algorithm, pre_tokenizer, train_bytes, transition_frac): fit}.
    superbpe fits group cells by transition as a fraction of V (the natural axis)."""
    groups = defaultdict(list)
    for r in ctc.to_pylist():
        groups[(r["lang"], r["algorithm"], r["pre_tokenizer"], r["train_bytes"], transition_frac(r))].append(r)
    fits, rows = {}, []
    for key, rs in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        sizes = sorted({r["vocab_size"] for r in rs})
        if len(sizes) < 2:
            continue
        f = fit_power_law([r["vocab_size"] for r in rs], [r["ctc"] for r in rs], offset=offset)
        fits[key] = f
        alg = key[1] if key[4] is None else f"{key[1]}@{key[4]:g}"
        rows.append({"lang": key[0], "algorithm": alg, "pre_tokenizer": key[2], "train_bytes": key[3],
                     **{k: f[k] for k in ("n_points", "a", "b", "c", "b_se", "r2", "rmse_rel", "loo_rel_error",
                                          "v_min", "v_max")}})
    return conform(pa.Table.from_pylist(rows), GRID_FITS) if rows else GRID_FITS.schema.empty_table(), fits


def choose_targets(fits: dict, vmin: int, vmax: int, target: str | float = "auto", n_candidates: int = 200
                   ) -> tuple[pa.Table, dict]:
    """Per (algorithm, pre_tokenizer, train_bytes, transition): candidate targets and the chosen one.

    For a target T each language's optimal size is clipped to [vmin, vmax]; the spread is
    the variance across languages of the fitted CTC there (0 when nobody is clipped).
    Candidates span the fitted CTC range of all languages; ties go to the candidate whose
    optimal sizes need the least extrapolation. Returns (GRID_TARGETS, {group: T})."""
    by_group = defaultdict(dict)
    for (lang, alg, pt, tb, tf), f in fits.items():
        by_group[(alg, pt, tb, tf)][lang] = f
    rows, chosen = [], {}
    for g, per_lang in sorted(by_group.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        if len(per_lang) < 2:
            continue
        lo = min(float(predict(f, f["v_max"])) for f in per_lang.values())
        hi = max(float(predict(f, f["v_min"])) for f in per_lang.values())
        cands = [float(target)] if target != "auto" else list(np.geomspace(lo, hi, n_candidates))
        mid = math.sqrt(lo * hi)
        best = None
        g_rows = []
        for T in cands:
            preds, clipped, extrap = [], 0, 0
            for f in per_lang.values():
                v, _, _ = optimal_vocab(f, T)
                vc = min(max(v, vmin), vmax)
                clipped += vc != v
                extrap += not f["v_min"] <= vc <= f["v_max"]
                preds.append(float(predict(f, vc)))
            var = float(np.var(preds, ddof=1))
            # Ties (no language clipped: variance 0) go to the target needing the least
            # extrapolation, then to the middle of the candidate range.
            key = (round(var, 3), clipped, extrap, abs(math.log(T / mid)))
            if best is None or key < best[0]:
                best = (key, T)
            g_rows.append({"algorithm": _group_label(g[0], g[1], g[2], g[3]).split("/")[0], "pre_tokenizer": g[1],
                           "train_bytes": g[2], "target_ctc": T, "variance": var, "n_clipped": clipped,
                           "n_extrapolated": extrap})
        for r in g_rows:
            r["chosen"] = r["target_ctc"] == best[1]
        rows += g_rows
        chosen[g] = best[1]
    table = conform(pa.Table.from_pylist(rows), GRID_TARGETS) if rows else GRID_TARGETS.schema.empty_table()
    return table, chosen


def optimal_sizes(fits: dict, targets: dict, vmin: int, vmax: int) -> list[dict]:
    """GRID_OPTIMAL rows (without second-pass measurements) for every fitted language."""
    rows = []
    for (lang, alg, pt, tb, tf), f in sorted(fits.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        T = targets.get((alg, pt, tb, tf))
        if T is None:
            continue
        v, lo, hi = optimal_vocab(f, T)
        vc = int(round(min(max(v, vmin), vmax)))
        rows.append({"lang": lang, "algorithm": f"{alg}@{tf:g}" if tf else alg, "pre_tokenizer": pt,
                     "train_bytes": tb, "target_ctc": T, "v_opt_raw": v if math.isfinite(v) else None, "v_opt": vc,
                     "clipped": not vmin <= v <= vmax, "extrapolated": not f["v_min"] <= vc <= f["v_max"],
                     "v_opt_lo": lo, "v_opt_hi": hi, "ctc_predicted": float(predict(f, vc)),
                     "_base_algorithm": alg, "_transition_frac": tf})
    return rows


def optimal_table(rows: list[dict]) -> pa.Table:
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return conform(pa.Table.from_pylist(clean), GRID_OPTIMAL) if clean else GRID_OPTIMAL.schema.empty_table()


# -- tests ------------------------------------------------------------------------------
def f_test(equal: list[float], optimal: list[float]) -> tuple[float, float]:
    """(F, one-sided p) for H1: variance at equal size > variance at optimal size."""
    v1, v2 = float(np.var(equal, ddof=1)), float(np.var(optimal, ddof=1))
    if v2 == 0:
        return float("inf"), 0.0
    F = v1 / v2
    return F, float(stats.f.sf(F, len(equal) - 1, len(optimal) - 1))


def variance_tests(ctc: pa.Table, optimal_rows: list[dict]) -> list[dict]:
    """F-tests per fit group and per equal vocabulary size: measured second-pass CTCs when
    every language has one, else the fitted CTC at the optimal size (basis 'predicted')."""
    by = defaultdict(lambda: defaultdict(dict))
    for r in ctc.to_pylist():
        by[(r["algorithm"], r["pre_tokenizer"], r["train_bytes"], transition_frac(r))][r["vocab_size"]][r["lang"]] = r["ctc"]
    opt = defaultdict(dict)
    for r in optimal_rows:
        opt[(r["_base_algorithm"], r["pre_tokenizer"], r["train_bytes"], r["_transition_frac"])][r["lang"]] = r
    rows = []
    for g, per_lang in sorted(opt.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        langs = sorted(per_lang)
        measured = all(per_lang[lang].get("ctc_measured") is not None for lang in langs)
        opt_vals = [per_lang[lang]["ctc_measured"] if measured else per_lang[lang]["ctc_predicted"] for lang in langs]
        for v, vals in sorted(by[g].items()):
            if not all(lang in vals for lang in langs) or len(langs) < 2:
                continue
            equal = [vals[lang] for lang in langs]
            F, p = f_test(equal, opt_vals)
            rows.append({"test": "f_equal_vs_optimal", "group": f"{_group_label(*g)} at V={v}",
                         "basis": "measured" if measured else "predicted", "n1": len(equal), "n2": len(opt_vals),
                         "stat1": float(np.var(equal, ddof=1)), "stat2": float(np.var(opt_vals, ddof=1)),
                         "statistic": F, "p_value": p, "p_value_t": None})
    return rows


def algorithm_label(r: dict) -> str:
    tf = transition_frac(r)
    return f"{r['algorithm']}@{tf:g}" if tf else r["algorithm"]


def paired_tests(ctc: pa.Table) -> list[dict]:
    """Wilcoxon signed-rank and paired t on log CTC between every two algorithm labels,
    pairing cells of the same language, vocabulary size and training bytes (each label's
    default pre-tokenizer variant first when several were trained)."""
    cells = defaultdict(dict)
    for r in sorted(ctc.to_pylist(), key=lambda r: r["pre_tokenizer"]):
        cells[algorithm_label(r)].setdefault((r["lang"], r["vocab_size"], r["train_bytes"]), r["ctc"])
    labels = sorted(cells)
    rows = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            keys = sorted(set(cells[a]) & set(cells[b]))
            if len(keys) < 2:
                continue
            la = np.log([cells[a][k] for k in keys])
            lb = np.log([cells[b][k] for k in keys])
            d = la - lb
            if np.all(d == 0):
                w, p, pt = 0.0, 1.0, 1.0
            else:
                w, p = stats.wilcoxon(la, lb)
                pt = float(stats.ttest_rel(la, lb).pvalue) if len(keys) > 2 else None
            rows.append({"test": "paired_algorithms", "group": f"{a} vs {b}", "basis": "log CTC", "n1": len(keys),
                         "n2": None, "stat1": float(np.exp(np.median(d))), "stat2": float(d.mean()),
                         "statistic": float(w), "p_value": float(p), "p_value_t": pt})
    return rows


def tests_table(rows: list[dict]) -> pa.Table:
    return conform(pa.Table.from_pylist(rows), GRID_TESTS) if rows else GRID_TESTS.schema.empty_table()


# -- regressions ------------------------------------------------------------------------
NUMERIC_FEATURES = ("mean_word_chars", "whitespace_share", "bytes_per_char", "train_eval_similarity")


def ols(X: np.ndarray, y: np.ndarray) -> dict:
    """OLS with intercept already in X: R^2, adjusted R^2, coefficients, F-test p-value."""
    n, k = X.shape
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    ss_res = float(((y - X @ coef) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    adj = p = None
    if n > k and k > 1 and ss_tot > 0:
        adj = 1 - (1 - r2) * (n - 1) / (n - k)
        F = (r2 / (k - 1)) / max((1 - r2) / (n - k), 1e-300)
        p = float(stats.f.sf(F, k - 1, n - k))
    return {"r2": r2, "adj_r2": adj, "coef": coef, "p_value": p, "n": n, "n_params": k}


def regressions(ctc: pa.Table, features: pa.Table) -> pa.Table:
    """Per (algorithm label, pre-tokenizer, bytes, V) slice with >= 3 languages: log CTC on
    each numeric feature, on script (one-hot), and on all of them combined."""
    feats = {r["lang"]: r for r in features.to_pylist()}
    slices = defaultdict(dict)
    for r in ctc.to_pylist():
        slices[(algorithm_label(r), r["pre_tokenizer"], r["train_bytes"], r["vocab_size"])][r["lang"]] = r["ctc"]
    rows = []
    for (alg, pt, tb, v), per_lang in sorted(slices.items()):
        langs = sorted(lang for lang in per_lang if lang in feats)
        if len(langs) < 3:
            continue
        y = np.log([per_lang[lang] for lang in langs])
        one = np.ones((len(langs), 1))
        base = {"algorithm": alg, "pre_tokenizer": pt, "train_bytes": tb, "vocab_size": v}
        cols = []
        for name in NUMERIC_FEATURES:
            x = np.array([feats[lang][name] if feats[lang][name] is not None else np.nan for lang in langs])
            if np.isnan(x).any() or np.ptp(x) == 0:
                continue
            cols.append(x)
            res = ols(np.column_stack([one, x]), y)
            rows.append({**base, "feature": name, "n": res["n"], "n_params": res["n_params"], "r2": res["r2"],
                         "adj_r2": res["adj_r2"], "slope": float(res["coef"][1]), "p_value": res["p_value"]})
        scripts = sorted({feats[lang]["script"] for lang in langs})
        dummies = [np.array([feats[lang]["script"] == s for lang in langs], float) for s in scripts[1:]]
        if dummies:
            res = ols(np.column_stack([one, *dummies]), y)
            rows.append({**base, "feature": "script", "n": res["n"], "n_params": res["n_params"], "r2": res["r2"],
                         "adj_r2": res["adj_r2"], "slope": None, "p_value": res["p_value"]})
        allx = cols + dummies
        if allx:
            res = ols(np.column_stack([one, *allx]), y)
            rows.append({**base, "feature": "combined", "n": res["n"], "n_params": res["n_params"], "r2": res["r2"],
                         "adj_r2": res["adj_r2"], "slope": None, "p_value": res["p_value"]})
    return conform(pa.Table.from_pylist(rows), GRID_REGRESSIONS) if rows else GRID_REGRESSIONS.schema.empty_table()


def analyse(ctc: pa.Table, features: pa.Table, *, vmin: int, vmax: int, target: str | float = "auto",
            offset: bool = False, second_pass: dict | None = None) -> dict[str, pa.Table]:
    """Every analysis table from the grid's CTC table. `second_pass` maps (lang, base
    algorithm, pre_tokenizer, train_bytes, transition_frac) to the measured GRID_CTC row of
    the tokenizer trained at that language's optimal size."""
    fits_table, fits = fit_all(ctc, offset=offset)
    targets_table, targets = choose_targets(fits, vmin, vmax, target)
    opt = optimal_sizes(fits, targets, vmin, vmax)
    for r in opt:
        m = (second_pass or {}).get((r["lang"], r["_base_algorithm"], r["pre_tokenizer"], r["train_bytes"],
                                     r["_transition_frac"]))
        if m is not None:
            r.update(ctc_measured=m["ctc"], actual_vocab_size=m["actual_vocab_size"], cell_id=m["cell_id"])
    tests = variance_tests(ctc, opt) + paired_tests(ctc)
    return {"ctc": ctc, "features": features, "fits": fits_table, "targets": targets_table,
            "optimal": optimal_table(opt), "tests": tests_table(tests), "regressions": regressions(ctc, features),
            "_optimal_rows": opt}
