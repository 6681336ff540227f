"""Superword BPE: tokens cross whitespace, fewer tokens than its BPE twin, a loadable artifact."""

from __future__ import annotations

import json

import pytest
from helpers import english_lines
from tokenizers import Tokenizer

from jobs.train_grid import train_grid_cell
from schemas.errors import ConfigError
from tokenizers_registry.registry import Registry, load_tokenizer
from tokenizers_registry.superbpe import train_superbpe

V, T = 2000, 1600


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    d = tmp_path_factory.mktemp("superbpe")
    lines = english_lines(997)
    sb = train_grid_cell("superbpe", lines, V, d / "sb", transition_vocab=T)
    bpe = train_grid_cell("hf-bpe", lines, V, d / "bpe")
    stage1 = train_grid_cell("hf-bpe", lines, T, d / "stage1")
    return lines, sb, bpe, stage1, d


def _inner_whitespace(token: str) -> bool:
    return any(c.isspace() for c in token.strip())


def test_superword_tokens_contain_whitespace(twins):
    lines, sb, bpe, _, _ = twins
    tok = Tokenizer.from_file(str(sb))
    assert tok.get_vocab_size() == V
    decoded = [tok.decode([i]) for i in range(tok.get_vocab_size())]
    superwords = [t for t in decoded if _inner_whitespace(t)]
    assert len(superwords) >= 50
    twin = Tokenizer.from_file(str(bpe))
    assert not [t for t in (twin.decode([i]) for i in range(twin.get_vocab_size())) if _inner_whitespace(t)]
    # and they are used: some encoded tokens of the training text span a space
    enc = tok.encode(lines[0], add_special_tokens=False)
    assert any(_inner_whitespace(tok.decode([i])) for i in tok.encode(" ".join(lines[:50])).ids)
    assert tok.decode(enc.ids) == lines[0]


def test_fewer_tokens_than_the_bpe_twin_on_the_same_text(twins):
    lines, sb, bpe, _, _ = twins
    text = " ".join(lines)
    n_sb = len(Tokenizer.from_file(str(sb)).encode(text, add_special_tokens=False).ids)
    n_bpe = len(Tokenizer.from_file(str(bpe)).encode(text, add_special_tokens=False).ids)
    assert n_sb < n_bpe


def test_stage_one_is_the_bpe_trained_to_the_transition(twins):
    _, sb, _, stage1, _ = twins
    merges = json.loads(sb.read_text())["model"]["merges"]
    first = json.loads(stage1.read_text())["model"]["merges"]
    assert merges[:len(first)] == first
    assert len(merges) > len(first)
    doc = json.loads(sb.read_text())
    assert doc["pre_tokenizer"]["type"] == "ByteLevel" and doc["pre_tokenizer"]["use_regex"] is False


def test_registry_loads_it_and_training_is_deterministic(twins, tmp_path):
    lines, sb, _, _, d = twins
    again = train_grid_cell("superbpe", lines, V, d / "sb2", transition_vocab=T)
    assert again.read_bytes() == sb.read_bytes()
    reg = Registry(tmp_path / "registry")
    spec = reg.add(sb, name="superbpe-test")
    assert spec.format == "hf-tokenizer-json" and spec.vocab_size == V
    tok = load_tokenizer(spec, reg.root)
    raw = Tokenizer.from_file(str(sb))
    for line in lines[:20]:
        assert tok.encode(line) == raw.encode(line, add_special_tokens=False).ids


def test_bad_transition_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="transition 3000 must be in"):
        train_superbpe(["a b c"], 1000, 3000, tmp_path / "x.json")
