"""Grid spec: YAML and Python construction, validation errors, expansion and deterministic ids."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import shared_path

from jobs.analysis.grid_spec import (
    AnalysisSpec,
    DataSpec,
    GridCell,
    GridSpec,
    Source,
    check_spec,
    expand,
    load_spec,
    plan,
    spec_from_dict,
)
from schemas.errors import ConfigError


def _yaml(tmp_path: Path, body: str) -> Path:
    flores = shared_path("flores200", "flores200_dev_devtest.parquet")
    p = tmp_path / "grid.yaml"
    p.write_text(textwrap.dedent(body).replace("FLORES", str(flores)), encoding="utf-8")
    return p


GOOD = """
name: t
languages: [eng_Latn, fin_Latn]
algorithms: [hf-bpe, sp-unigram, superbpe]
vocab_sizes: [500, 1000]
train_bytes: [10000, 20000]
transitions: [0.5, 0.8]
data:
  train: [{kind: flores, path: FLORES, splits: [dev]}]
  eval: {kind: flores, path: FLORES, splits: [devtest]}
"""


def test_yaml_expands_to_the_cross_product(tmp_path):
    spec = load_spec(_yaml(tmp_path, GOOD))
    cells = expand(spec)
    # per language: hf-bpe 2 sizes x 2 bytes, sp-unigram 2 x 2, superbpe 2 x 2 x 2 transitions
    assert len(cells) == 2 * (4 + 4 + 8)
    sb = sorted({(c.vocab_size, c.transition_vocab) for c in cells if c.algorithm == "superbpe"})
    assert sb == [(500, 250), (500, 400), (1000, 500), (1000, 800)]
    assert {c.pre_tokenizer for c in cells if c.algorithm == "sp-unigram"} == {"whitespace"}
    assert {c.pre_tokenizer for c in cells if c.algorithm == "hf-bpe"} == {"bytelevel"}


def test_python_construction_equals_yaml(tmp_path):
    flores = str(shared_path("flores200", "flores200_dev_devtest.parquet"))
    spec = check_spec(GridSpec(
        name="t", languages=("eng_Latn", "fin_Latn"), algorithms=("hf-bpe", "sp-unigram", "superbpe"),
        vocab_sizes=(500, 1000), train_bytes=(10000, 20000), transitions=(0.5, 0.8),
        data=DataSpec(train=(Source("flores", flores, ("dev",)),), eval=Source("flores", flores, ("devtest",))),
        analysis=AnalysisSpec()))
    assert spec == load_spec(_yaml(tmp_path, GOOD))


def test_variants_an_algorithm_lacks_are_left_out(tmp_path):
    spec = load_spec(_yaml(tmp_path, GOOD.replace("transitions: [0.5, 0.8]", "pre_tokenizers: [whitespace, none]")))
    cells = expand(spec)
    assert {(c.algorithm, c.pre_tokenizer) for c in cells} == {
        ("hf-bpe", "whitespace"), ("sp-unigram", "whitespace"), ("sp-unigram", "none")}


@pytest.mark.parametrize("old,new,message", [
    ("algorithms: [hf-bpe, sp-unigram, superbpe]", "algorithms: [hf-bpe, bpe-dropout]",
     "algorithms[1]: unknown algorithm 'bpe-dropout'"),
    ("languages: [eng_Latn, fin_Latn]", "languages: [eng_Latn, english]", "languages[1]: 'english' is not"),
    ("vocab_sizes: [500, 1000]", "vocab_sizes: [500, big]", "vocab_sizes[1]: expected an integer"),
    ("train_bytes: [10000, 20000]", "train_bytes: [0]", "train_bytes[0]: 0 must be a positive"),
    ("name: t", "name: t\nvocab_size: 3", "unknown keys ['vocab_size']"),
    ("splits: [dev]}]", "splits: [devtest]}]", "data.train[0]: overlaps the evaluation text"),
    ("splits: [dev]}]", "}]", "data.train[0]: overlaps the evaluation text"),
    ("eval: {kind: flores,", "eval: {kind: udhr,", "data.eval: evaluation text must be parallel"),
    ("train: [{kind: flores, path: FLORES", "train: [{kind: flores, path: /nonexistent/x.parquet",
     "data.train[0]: path /nonexistent/x.parquet does not exist"),
    ("transitions: [0.5, 0.8]", "transitions: [0.5, 0.8]\nanalysis: {target_ctc: lots}",
     "analysis.target_ctc: must be 'auto' or a positive number"),
])
def test_bad_specs_fail_with_a_message_naming_the_field(tmp_path, old, new, message):
    assert old in GOOD
    path = _yaml(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as e:
        load_spec(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'vocab_sizes'"):
        spec_from_dict({"name": "x", "languages": ["eng_Latn"], "algorithms": ["hf-bpe"], "train_bytes": [1],
                        "data": {}})


def test_ids_are_deterministic_and_depend_on_what_is_trained(tmp_path):
    spec = load_spec(_yaml(tmp_path, GOOD))
    samples = {"eng_Latn": {"version": "aaaa", "byte_premium": None},
               "fin_Latn": {"version": "bbbb", "byte_premium": 1.25}}
    versions = {"tokenizers": "1", "sentencepiece": "2"}
    a = plan(expand(spec), samples, versions)
    b = plan(expand(load_spec(_yaml(tmp_path, GOOD))), samples, versions)
    assert [c.cell_id for c in a] == [c.cell_id for c in b]
    assert len({c.cell_id for c in a}) == len(a)  # every cell distinct
    fin = [c for c in a if c.lang == "fin_Latn"]
    assert {c.byte_budget for c in fin} == {12500, 25000}  # scaled by the byte premium
    other = plan(expand(spec), {**samples, "eng_Latn": {"version": "cccc", "byte_premium": None}}, versions)
    changed = {x.cell_id != y.cell_id for x, y in zip(a, other, strict=True) if x.lang == "eng_Latn"}
    assert changed == {True}
    same_fin = {x.cell_id == y.cell_id for x, y in zip(a, other, strict=True) if x.lang == "fin_Latn"}
    assert same_fin == {True}
    newer_sp = plan(expand(spec), samples, {"tokenizers": "1", "sentencepiece": "3"})
    for x, y in zip(a, newer_sp, strict=True):
        assert (x.cell_id == y.cell_id) == (x.algorithm != "sp-unigram")


def test_cell_name_is_readable_and_unique():
    c = GridCell("eng_Latn", "superbpe", "bytelevel", 1000, 5000, 800, 5000, None, "v", "0123456789abcdef")
    assert c.name == "grid-eng_Latn-superbpe-bytelevel-v1000-t800-b5000-01234567"


def test_parquet_and_text_sources_read_per_language(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.train_grid import read_source

    pq.write_table(pa.table({"language": ["eng_Latn", "fin_Latn", "eng_Latn", "eng_Latn"],
                             "body": ["a b", "c", "", "d e"], "part": ["x", "x", "x", "y"]}), tmp_path / "t.parquet")
    src = Source("parquet", str(tmp_path / "t.parquet"), ("x",), lang_column="language", text_column="body",
                 split_column="part")
    assert read_source(src, ["eng_Latn", "fin_Latn"]) == {"eng_Latn": ["a b"], "fin_Latn": ["c"]}
    (tmp_path / "txt").mkdir()
    (tmp_path / "txt" / "eng_Latn.txt").write_text("one\n\n two \n", encoding="utf-8")
    assert read_source(Source("text", str(tmp_path / "txt")), ["eng_Latn", "fin_Latn"]) == {"eng_Latn": ["one", " two "]}
    bad = Source("parquet", str(tmp_path / "t.parquet"))
    with pytest.raises(ConfigError, match=r"no column\(s\) \['lang', 'text'\]"):
        read_source(bad, ["eng_Latn"])
