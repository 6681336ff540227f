"""Vocabulary coverage from token_freqs: what part of a vocabulary each language uses.

Pure functions over a token_freqs table of one tokenizer (small: at most one row per
(language, split, used id)), so they run on the driver with numpy. Special tokens are
left out of every figure.

    per language  vocab used; ids needed for 90/99/99.9/100% of its tokens; the curve itself;
                  embedding rows and parameters a trim to the used ids would remove
    per pair      Jaccard of the used sets, and asymmetric shares (ids, and token occurrences)
    per set       union of the used ids of a set of languages, and of their 99% sets
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import coverage_dir
from schemas import conform, validate
from schemas.trim import COVERAGE_CURVE, VOCAB_COVERAGE, VOCAB_OVERLAP, VOCAB_UNION

LEVELS = {"vocab_p90": 0.90, "vocab_p99": 0.99, "vocab_p999": 0.999, "vocab_p100": 1.0}


@dataclass
class LanguageCounts:
    """Non-special counts of one language: `ids` sorted by count descending (ties: smaller id first)."""

    lang: str
    ids: np.ndarray
    counts: np.ndarray
    n_special_tokens: int

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def needed(self, share: float) -> int:
        """Fewest ids whose occurrences cover at least `share` of the language's tokens."""
        if not len(self.counts):
            return 0
        cum = np.cumsum(self.counts)
        # integer comparison for 100% so rounding can never leave the last id out
        target = self.total if share >= 1.0 else share * self.total
        return int(np.searchsorted(cum, target, side="left") + 1)

    def top(self, share: float) -> np.ndarray:
        return self.ids[:self.needed(share)]


def language_counts(freqs: pa.Table) -> dict[str, LanguageCounts]:
    """Group a token_freqs table (one tokenizer) by language, summing over splits."""
    out = {}
    langs = np.asarray(freqs["lang"].to_pylist(), dtype=object)
    ids_all = freqs["token_id"].to_numpy()
    counts_all = freqs["count"].to_numpy()
    special_all = freqs["is_special"].to_numpy(zero_copy_only=False)
    for lang in sorted(set(langs.tolist())):
        m = langs == lang
        n_special = int(counts_all[m & special_all].sum())
        keep = m & ~special_all
        ids, inv = np.unique(ids_all[keep], return_inverse=True)
        counts = np.bincount(inv, weights=counts_all[keep], minlength=len(ids)).astype(np.int64)
        order = np.lexsort((ids, -counts))
        out[lang] = LanguageCounts(lang, ids[order], counts[order], n_special)
    return out


def coverage_tables(freqs: pa.Table, *, corpus: str, tokenizer_id: str, tokenizer_name: str, vocab_size: int,
                    n_special: int, hidden_size: int, splits: Sequence[str],
                    language_sets: Mapping[str, Sequence[str]] | None = None) -> dict[str, pa.Table]:
    """coverage, curve, overlap and union tables of one tokenizer."""
    langs = language_counts(freqs)
    base = vocab_size - n_special
    cov, curve, overlap, union = [], [], [], []
    for lang, lc in langs.items():
        row = {"corpus": corpus, "tokenizer_id": tokenizer_id, "tokenizer_name": tokenizer_name, "lang": lang,
               "splits": ",".join(splits), "vocab_size": vocab_size, "n_special": n_special, "n_tokens": lc.total,
               "n_special_tokens": lc.n_special_tokens, "vocab_used": len(lc.ids),
               "vocab_used_share": len(lc.ids) / base if base else None, "hidden_size": hidden_size}
        row.update({k: lc.needed(v) for k, v in LEVELS.items()})
        row["rows_removable"] = base - len(lc.ids)
        row["params_saved_tied"] = row["rows_removable"] * hidden_size
        row["params_saved_untied"] = 2 * row["rows_removable"] * hidden_size
        cov.append(row)
        k = np.arange(1, len(lc.ids) + 1, dtype=np.int64)
        curve.append(pa.table({"corpus": pa.array([corpus] * len(k)), "tokenizer_id": pa.array([tokenizer_id] * len(k)),
                               "lang": pa.array([lang] * len(k)), "k": k,
                               "coverage": np.cumsum(lc.counts) / max(lc.total, 1)}))
    sets = {lang: set(lc.ids.tolist()) for lang, lc in langs.items()}
    for a, la in langs.items():
        for b in langs:
            if a == b:
                continue
            shared = sets[a] & sets[b]
            in_b = np.isin(la.ids, np.fromiter(sets[b], dtype=np.int64, count=len(sets[b])))
            overlap.append({"corpus": corpus, "tokenizer_id": tokenizer_id, "lang_a": a, "lang_b": b,
                            "n_a": len(sets[a]), "n_b": len(sets[b]), "n_shared": len(shared),
                            "jaccard": len(shared) / max(len(sets[a] | sets[b]), 1),
                            "share_a_in_b": len(shared) / max(len(sets[a]), 1),
                            "token_share_a_in_b": float(la.counts[in_b].sum()) / max(la.total, 1)})
    all_sets = {"all": list(langs), **{k: list(v) for k, v in (language_sets or {}).items()}}
    for name, members in all_sets.items():
        present = [m for m in members if m in langs]
        used = set().union(*(sets[m] for m in present)) if present else set()
        p99 = set().union(*(set(langs[m].top(0.99).tolist()) for m in present)) if present else set()
        saved = (base - len(used)) * hidden_size
        union.append({"corpus": corpus, "tokenizer_id": tokenizer_id, "language_set": name,
                      "languages": ",".join(present), "vocab_size": vocab_size, "union_used": len(used),
                      "union_p99": len(p99), "hidden_size": hidden_size, "params_saved_tied": saved,
                      "params_saved_untied": 2 * saved})
    curve_t = pa.concat_tables(curve) if curve else COVERAGE_CURVE.schema.empty_table()
    return {"coverage": conform(pa.Table.from_pylist(cov), VOCAB_COVERAGE) if cov else VOCAB_COVERAGE.schema.empty_table(),
            "curve": conform(curve_t, COVERAGE_CURVE),
            "overlap": conform(pa.Table.from_pylist(overlap), VOCAB_OVERLAP) if overlap
            else VOCAB_OVERLAP.schema.empty_table(),
            "union": conform(pa.Table.from_pylist(union), VOCAB_UNION)}


def write_coverage(out, corpus: str, per_tokenizer: Sequence[dict[str, pa.Table]]) -> dict[str, Path]:
    """Concatenate the tables of several tokenizers, validate and write them atomically."""
    datasets = {"coverage": VOCAB_COVERAGE, "curve": COVERAGE_CURVE, "overlap": VOCAB_OVERLAP, "union": VOCAB_UNION}
    paths = {}
    for name, ds in datasets.items():
        parts = [t[name] for t in per_tokenizer]
        table = pa.concat_tables(parts) if parts else ds.schema.empty_table()
        validate(table, ds)
        paths[name] = write_parquet_atomic(table, coverage_dir(out, corpus) / f"{name}.parquet")
    return paths
