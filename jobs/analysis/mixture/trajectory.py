"""Pair-count trajectories of data mixture inference: counting adjacent pairs along a tokenizer's merges.

Pure functions over a merge list and texts, plus the trajectory files one counted cell writes.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.store.atomic import write_parquet_atomic
from tokenizers_registry.merges import PAIR_SHIFT, MergeList

DEFAULT_TOP_K = 16


@dataclass
class Trajectory:
    """Compact pair-count trajectory of one (tokenizer, category) sample."""

    T: int
    merged_pair: np.ndarray  # int64[T]
    merged_count: np.ndarray  # int64[T]
    bound: np.ndarray  # int64[T]: (K+1)-th largest count among pairs != m_t at step t
    init_pair: np.ndarray  # int64
    init_count: np.ndarray  # int64
    delta_step: np.ndarray  # int32
    delta_pair: np.ndarray  # int64
    delta: np.ndarray  # int64
    topk_step: np.ndarray  # int32
    topk_pair: np.ndarray  # int64
    topk_count: np.ndarray  # int64
    total_pairs: int  # sum of step-0 pair counts (normaliser)
    n_bytes: int  # UTF-8 bytes of the sample text
    n_words: int  # pre-tokenized words (with multiplicity)

    def counts_at(self, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """c(p, t) for arrays of pairs and steps (vectorised replay of the deltas)."""
        return CountIndex(self).lookup(pairs, steps)


class CountIndex:
    """Sorted (pair, step) -> cumulative count, to answer c(p, t) with searchsorted."""

    def __init__(self, tr: Trajectory):
        stride = tr.T + 1
        pairs = np.concatenate([tr.init_pair, tr.delta_pair])
        # step-0 counts sit at slot 0; the delta of merge t takes effect at slot t+1
        slots = np.concatenate([np.zeros(len(tr.init_pair), np.int64), tr.delta_step.astype(np.int64) + 1])
        vals = np.concatenate([tr.init_count, tr.delta])
        keys = pairs * stride + slots
        order = np.argsort(keys, kind="stable")
        self.keys, self.stride = keys[order], stride
        vals, pairs = vals[order], pairs[order]
        csum = np.cumsum(vals)
        # running sum restarted at each pair's first row
        first = np.r_[True, pairs[1:] != pairs[:-1]] if len(pairs) else np.zeros(0, bool)
        start = np.maximum.accumulate(np.where(first, np.arange(len(vals)), 0))
        self.cum = csum - csum[start] + vals[start]
        self.pairs = pairs

    def lookup(self, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs, np.int64)
        if len(self.keys) == 0:
            return np.zeros(len(pairs), np.int64)
        q = pairs * self.stride + np.asarray(steps, np.int64)
        idx = np.searchsorted(self.keys, q, side="right") - 1
        ok = idx >= 0
        idx = np.where(ok, idx, 0)
        ok &= self.pairs[idx] == pairs
        return np.where(ok, self.cum[idx], 0)


def word_symbols(ml: MergeList, texts) -> tuple[list[list[int]], list[int], int, int]:
    """Pre-tokenize texts as the tokenizer does: (symbol lists, frequencies, n_bytes, n_words)."""
    wc = ml.pretokenizer.count_words(texts)
    words, freqs = [], []
    for w, f in wc.items():
        s = ml.pretokenizer.symbols(w)
        if len(s) > 0:
            words.append(s)
            freqs.append(f)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return words, freqs, n_bytes, sum(wc.values())


def pair_trajectory(words: list[list[int]], freqs: list[int], ml: MergeList, T: int,
                    top_k: int = DEFAULT_TOP_K, n_bytes: int = 0, n_words: int = 0) -> Trajectory:
    """Apply the first T merges to frequency-weighted words, recording the counts' trajectory."""
    T = min(T, len(ml))
    words = [list(w) for w in words]
    counts: dict[int, int] = defaultdict(int)
    where: dict[int, set[int]] = defaultdict(set)
    for wi, (w, f) in enumerate(zip(words, freqs, strict=True)):
        for i in range(len(w) - 1):
            k = (w[i] << PAIR_SHIFT) | w[i + 1]
            counts[k] += f
            where[k].add(wi)
    init_pair = np.fromiter(counts.keys(), np.int64, len(counts))
    init_count = np.fromiter(counts.values(), np.int64, len(counts))
    total = int(init_count.sum())
    heap = [(-c, k) for k, c in counts.items()]
    heapq.heapify(heap)

    merged_pair = np.zeros(T, np.int64)
    merged_count = np.zeros(T, np.int64)
    bound = np.zeros(T, np.int64)
    d_step, d_pair, d_val = [], [], []
    k_step, k_pair, k_count = [], [], []
    left, right, new = ml.left.tolist(), ml.right.tolist(), ml.new.tolist()
    for t in range(T):
        a, b, n = left[t], right[t], new[t]
        mk = (a << PAIR_SHIFT) | b
        merged_pair[t] = mk
        merged_count[t] = counts.get(mk, 0)
        # top K competitors at step t: pop valid entries, then push them back
        popped, seen = [], set()
        while heap and len(popped) < top_k + 2:
            negc, k = heapq.heappop(heap)
            if k in seen or counts.get(k, 0) != -negc or negc == 0:
                continue  # stale or duplicate entry
            seen.add(k)
            popped.append((negc, k))
        for e in popped:
            heapq.heappush(heap, e)
        comp = [(-c, k) for c, k in popped if k != mk]
        for c, k in comp[:top_k]:
            k_step.append(t)
            k_pair.append(k)
            k_count.append(c)
        bound[t] = comp[top_k][0] if len(comp) > top_k else 0

        delta: dict[int, int] = defaultdict(int)
        for wi in where.pop(mk, ()):
            w = words[wi]
            f = freqs[wi]
            out, i, hit = [], 0, False
            L = len(w)
            while i < L:
                if i < L - 1 and w[i] == a and w[i + 1] == b:
                    out.append(n)
                    i += 2
                    hit = True
                else:
                    out.append(w[i])
                    i += 1
            if not hit:
                continue
            for i in range(L - 1):
                delta[(w[i] << PAIR_SHIFT) | w[i + 1]] -= f
            for i in range(len(out) - 1):
                k = (out[i] << PAIR_SHIFT) | out[i + 1]
                delta[k] += f
                if out[i] == n or out[i + 1] == n:
                    where[k].add(wi)
            words[wi] = out
        for k, dv in delta.items():
            if dv == 0:
                continue
            c = counts[k] + dv
            if c:
                counts[k] = c
                heapq.heappush(heap, (-c, k))
            else:
                del counts[k]
            d_step.append(t)
            d_pair.append(k)
            d_val.append(dv)
        if len(heap) > 4 * len(counts) + 1024:  # drop stale entries now and then
            heap = [(-c, k) for k, c in counts.items()]
            heapq.heapify(heap)
    return Trajectory(
        T=T, merged_pair=merged_pair, merged_count=merged_count, bound=bound,
        init_pair=init_pair, init_count=init_count,
        delta_step=np.array(d_step, np.int32), delta_pair=np.array(d_pair, np.int64), delta=np.array(d_val, np.int64),
        topk_step=np.array(k_step, np.int32), topk_pair=np.array(k_pair, np.int64), topk_count=np.array(k_count, np.int64),
        total_pairs=total, n_bytes=n_bytes, n_words=n_words,
    )


def trajectory_for_texts(ml: MergeList, texts, T: int, top_k: int = DEFAULT_TOP_K) -> Trajectory:
    words, freqs, n_bytes, n_words = word_symbols(ml, texts)
    return pair_trajectory(words, freqs, ml, T, top_k, n_bytes=n_bytes, n_words=n_words)


# -- storage ---------------------------------------------------------------------------
def resample(texts: list[str], replicate: int) -> list[str]:
    """Lines drawn with replacement, seeded by the replicate (0 returns the sample unchanged)."""
    if replicate == 0:
        return texts
    rng = np.random.default_rng(replicate)
    return [texts[i] for i in rng.integers(0, len(texts), len(texts))]


def write_trajectory(tr: Trajectory, d: str | Path, meta: dict) -> Path:
    """Write the four tables of a trajectory; `steps.parquet` (written last) carries the metadata."""
    from schemas.mixture import TRAJ_DELTAS, TRAJ_INITIAL, TRAJ_STEPS, TRAJ_TOPK

    d = Path(d)
    write_parquet_atomic(pa.table({"pair": tr.init_pair, "count": tr.init_count}, schema=TRAJ_INITIAL.file_schema), d / "initial.parquet")
    write_parquet_atomic(pa.table({"step": tr.delta_step, "pair": tr.delta_pair, "delta": tr.delta},
                                  schema=TRAJ_DELTAS.file_schema), d / "deltas.parquet")
    write_parquet_atomic(pa.table({"step": tr.topk_step, "pair": tr.topk_pair, "count": tr.topk_count},
                                  schema=TRAJ_TOPK.file_schema), d / "topk.parquet")
    steps = pa.table({"step": np.arange(tr.T, dtype=np.int32), "merged_pair": tr.merged_pair,
                      "merged_count": tr.merged_count, "bound": tr.bound}, schema=TRAJ_STEPS.file_schema)
    md = {"T": tr.T, "total_pairs": tr.total_pairs, "n_bytes": tr.n_bytes, "n_words": tr.n_words, **meta}
    steps = steps.replace_schema_metadata({b"tokatlas.mixture": json.dumps(md).encode()})
    write_parquet_atomic(steps, d / "steps.parquet")
    return d


def read_trajectory(d: str | Path) -> tuple[Trajectory, dict]:
    d = Path(d)
    st = pq.read_table(d / "steps.parquet")
    md = json.loads(st.schema.metadata[b"tokatlas.mixture"])
    ini = pq.read_table(d / "initial.parquet")
    de = pq.read_table(d / "deltas.parquet")
    tk = pq.read_table(d / "topk.parquet")
    arr = lambda t, c, dt: t[c].to_numpy().astype(dt, copy=False)  # noqa: E731
    tr = Trajectory(
        T=md["T"], merged_pair=arr(st, "merged_pair", np.int64), merged_count=arr(st, "merged_count", np.int64),
        bound=arr(st, "bound", np.int64), init_pair=arr(ini, "pair", np.int64), init_count=arr(ini, "count", np.int64),
        delta_step=arr(de, "step", np.int32), delta_pair=arr(de, "pair", np.int64), delta=arr(de, "delta", np.int64),
        topk_step=arr(tk, "step", np.int32), topk_pair=arr(tk, "pair", np.int64), topk_count=arr(tk, "count", np.int64),
        total_pairs=md["total_pairs"], n_bytes=md["n_bytes"], n_words=md["n_words"],
    )
    return tr, md


# -- one cell, and the Spark job ----------------------------------------------------------
def read_sample(path: str | Path) -> list[str]:
    return pq.read_table(path, columns=["text"])["text"].to_pylist()
