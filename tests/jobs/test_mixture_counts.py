"""Pair-count trajectories: match a brute-force recount; the Spark job writes what the function computes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.analysis.mixture.trajectory import (
    CountIndex,
    pair_trajectory,
    read_trajectory,
    trajectory_for_texts,
    word_symbols,
)
from jobs.corpus.samples import flores_texts, write_sample
from jobs.mixture_counts import count_cells, make_cells
from jobs.store.layout import trajectory_dir
from tokenizers_registry.formats import load_merges
from tokenizers_registry.merges import pair_key
from tokenizers_registry.registry import manifest_entries


def _merges(name):
    e = manifest_entries(shared_path("tokenizers", "MANIFEST.json"), [name])[0]
    return load_merges(e["path"], e["format"], e["params"], e["name"]), e


@pytest.fixture(scope="module")
def flores():
    return shared_path("flores200", "flores200_dev_devtest.parquet")


def brute_counts(ml, words, freqs, t):
    """Pair counts after the first t merges, by re-encoding every word from scratch."""
    ranks = ml.ranks(t)
    c = Counter()
    for w, f in zip(words, freqs, strict=True):
        e = ml.encode_word(w, ranks)
        for i in range(len(e) - 1):
            c[pair_key(e[i], e[i + 1])] += f
    return c


@pytest.mark.shared
@pytest.mark.parametrize("name,lang", [("gpt2", "eng_Latn"), ("mistral-v1", "rus_Cyrl"), ("clip", "fra_Latn")])
def test_trajectory_matches_bruteforce_recount(name, lang, flores):
    ml, _ = _merges(name)
    words, freqs, *_ = word_symbols(ml, flores_texts(flores, lang, ("dev",))[:150])
    T = 400
    tr = pair_trajectory(words, freqs, ml, T, top_k=5)
    idx = CountIndex(tr)
    for t in (0, 1, 7, 50, 199, 399):
        ref = brute_counts(ml, words, freqs, t)
        keys = np.array(sorted(set(ref) | set(tr.init_pair.tolist())), np.int64)
        got = idx.lookup(keys, np.full(len(keys), t))
        assert np.array_equal(got, np.array([ref.get(int(k), 0) for k in keys])), (name, t)
        assert tr.merged_count[t] == ref.get(int(tr.merged_pair[t]), 0)
        # stored top-K: the K largest other pairs, and the bound is the next count
        others = sorted((c for k, c in ref.items() if k != tr.merged_pair[t] and c > 0), reverse=True)
        assert sorted(tr.topk_count[tr.topk_step == t].tolist(), reverse=True) == others[:5]
        assert tr.bound[t] == (others[5] if len(others) > 5 else 0)
    if lang == "eng_Latn":  # GPT-2's first merges are frequent English pairs
        assert tr.merged_count[:20].min() > 0


@pytest.mark.shared
def test_spark_job_one_task_per_cell(spark, tmp_path, flores):
    out = tmp_path / "out"
    samples = {lang: str(write_sample(out, lang, flores_texts(flores, lang, ("dev",))[:60]))
               for lang in ("eng_Latn", "deu_Latn")}
    clip = manifest_entries(shared_path("tokenizers", "MANIFEST.json"), ["clip"])[0]
    bad = {"name": "broken", "format": "tiktoken-ranks", "path": str(tmp_path / "missing.tiktoken"),
           "params": {"pattern": "x"}}
    cells = make_cells(out, [clip, bad], samples, T=150, top_k=4, n_bootstrap=1)
    assert len(cells) == 8
    rows = {(r.tokenizer, r.category, r.replicate): r for r in count_cells(spark, cells).collect()}
    assert {k for k, r in rows.items() if r.status == "ok"} == {("clip", c, b) for c in samples for b in (0, 1)}
    assert all(r.status == "failed" and "missing.tiktoken" in r.error for k, r in rows.items() if k[0] == "broken")
    ml, _ = _merges("clip")
    for lang in samples:
        tr, md = read_trajectory(trajectory_dir(out, "clip", lang))
        ref = trajectory_for_texts(ml, pq.read_table(samples[lang])["text"].to_pylist(), 150, top_k=4)
        assert md["merges"]["n_derived"] == 48894 and tr.T == 150
        assert np.array_equal(tr.merged_count, ref.merged_count)
        assert np.array_equal(np.sort(tr.delta_pair), np.sort(ref.delta_pair))
        # replicate 1: the sample's lines drawn with replacement from the stream seeded 1
        lines = pq.read_table(samples[lang])["text"].to_pylist()
        drawn = [lines[i] for i in np.random.default_rng(1).integers(0, len(lines), len(lines))]
        rep, _ = read_trajectory(trajectory_dir(out, "clip", lang, replicate=1))
        ref = trajectory_for_texts(ml, drawn, 150, top_k=4)
        assert rep.n_bytes == sum(len(x.encode()) for x in drawn) != tr.n_bytes  # a resample, not a copy
        assert np.array_equal(rep.merged_count, ref.merged_count) and rep.total_pairs == ref.total_pairs
    # a re-run with reuse keeps cells counted from the same sample with >= T merges, recounts the rest
    again = make_cells(out, [clip], samples, T=100, top_k=4, reuse=True)
    again[0]["T"] = 200
    rows = {r.category: r.status for r in count_cells(spark, again).collect()}
    assert rows == {again[0]["category"]: "ok", again[1]["category"]: "reused"}
