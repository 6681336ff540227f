"""Batched word statistics against a per-word brute force, on real tokenizer offsets and random input."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.analysis.counting import continued_words, word_stats_batch
from tokenizers_registry.registry import Registry, load_tokenizer


def brute_force(text: str, starts: list[int], segmentation: str) -> tuple[int, int]:
    """Words, and words that two or more tokens touch: those starting inside the word plus
    the one (if any) that started before it and still runs at its first character."""
    spans = ([(i, i + 1) for i, c in enumerate(text) if not c.isspace()] if segmentation == "character"
             else [m.span() for m in re.finditer(r"\S+", text)])
    ends = [*starts[1:], len(text)] if starts else []
    continued = 0
    for a, b in spans:
        k = sum(a <= s < b for s in starts) + any(s < a < e for s, e in zip(starts, ends, strict=True))
        continued += k >= 2
    return len(spans), continued


@pytest.mark.shared
@pytest.mark.parametrize("name", ["gpt2", "claude-legacy", "mistral-v1"])
def test_batch_equals_brute_force_on_real_offsets(name, tmp_path):
    langs = {"eng_Latn": "whitespace", "rus_Cyrl": "whitespace", "zho_Hans": "character", "tha_Thai": "whitespace"}
    table = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["lang", "text"],
                          filters=[("lang", "in", list(langs)), ("split", "=", "dev")])
    reg = Registry(tmp_path / "reg")
    tok = load_tokenizer(reg.add_manifest(shared_path("tokenizers", "MANIFEST.json"), names=[name])[0], reg.root)
    for lang, seg in langs.items():
        texts = [r["text"] for r in table.to_pylist() if r["lang"] == lang][:60]
        starts = [s for _, s in tok.encode_batch_with_starts(texts)]
        words, cont = word_stats_batch(texts, starts, seg)
        want = [brute_force(t, s, seg) for t, s in zip(texts, starts, strict=True)]
        assert list(zip(words.tolist(), cont.tolist(), strict=True)) == want, (name, lang)
        assert sum(c for _, c in want) > 0  # the check is not vacuous


texts_and_starts = st.lists(
    st.text(alphabet=st.sampled_from("ab cé\n\t\u3000字\u00a0x"), max_size=25).flatmap(
        lambda t: st.tuples(st.just(t), st.lists(st.integers(0, len(t)), max_size=12).map(sorted))),
    max_size=8)


@settings(max_examples=300, deadline=None)
@given(texts_and_starts, st.sampled_from(["whitespace", "character"]))
def test_batch_equals_brute_force_on_random_input(batch, segmentation):
    texts = [t for t, _ in batch]
    starts = [s for _, s in batch]
    words, cont = word_stats_batch(texts, starts, segmentation)
    want = [brute_force(t, s, segmentation) for t, s in batch]
    assert list(zip(words.tolist(), cont.tolist(), strict=True)) == want
    for (t, s), w in zip(batch, want, strict=True):
        assert continued_words(t, s, segmentation) == w
