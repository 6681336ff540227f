"""The token_freqs Spark job on real FLORES text and real tokenizers, checked against a direct
recount with each tokenizer's own library (tiktoken, tokenizers), not our loaders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.ingest import _write_language
from jobs.store import corpus_store
from jobs.store.layout import registry_dir
from jobs.token_freqs import read_token_freqs, token_freqs
from schemas import check_schema, validate
from schemas.trim import TOKEN_FREQS
from tokenizers_registry.registry import Registry

pytestmark = pytest.mark.shared

LANGS = ["eng_Latn", "fra_Latn", "zho_Hans"]
PER_SPLIT = 80


def write_small_corpus(out: Path, langs=LANGS, per_split: int = PER_SPLIT, corpus: str = "flores200") -> dict:
    """The ingested-corpus layout for the first `per_split` dev and devtest sentences of each language,
    written with the ingest job's own writer (no Spark needed)."""
    t = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"),
                      filters=[("lang", "in", list(langs))])
    written = {}
    for lang in langs:
        rows = []
        for split in ("dev", "devtest"):
            sel = [r for r in t.to_pylist() if r["lang"] == lang and r["split"] == split][:per_split]
            rows += [{"corpus": corpus, "lang": lang, "script": r["script"], "split": split,
                      "sentence_id": r["sentence_id"], "text": r["text"], "n_bytes": len(r["text"].encode()),
                      "n_chars": len(r["text"])} for r in sel]
        written[lang] = _write_language(pa.Table.from_pylist(rows), str(out), corpus, lang)
    corpus_store.write_versions(out, corpus, written)
    return written


def register_manifest(out: Path, names: list[str]) -> Registry:
    reg = Registry(registry_dir(out))
    reg.add_manifest(shared_path("tokenizers", "MANIFEST.json"), names=names)
    return reg


def english_only_bpe(out: Path) -> Path:
    """A character-level BPE trained on the corpus' English rows whose `unk_token` is not in its
    vocab: `tokenizers` raises on any character those rows lack (accents, Chinese)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=[], show_progress=False)
    tok.train_from_iterator(corpus_store.read_language(out, "flores200", "eng_Latn")["text"].to_pylist(),
                            trainer=trainer)
    path = out / "eng_only.tokenizer.json"
    tok.save(str(path))
    return path


def library_failures(out: Path, path: Path) -> set[str]:
    """Languages with a sentence the HF library refuses to encode."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    failed = set()
    for lang in LANGS:
        for text in corpus_store.read_language(out, "flores200", lang)["text"].to_pylist():
            try:
                tok.encode(text, add_special_tokens=False)
            except Exception:
                failed.add(lang)
    return failed


def direct_counts(out: Path, name: str, langs=LANGS, path: Path | None = None) -> Counter:
    """(lang, split, token_id) -> count with the tokenizer's own library (`path`: an HF file)."""
    m = {e["name"]: e for e in json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())["tokenizers"]}
    e = m.get(name, {"format": "hf-tokenizer-json"})
    path = path or shared_path("tokenizers", e["file"])
    if e["format"] == "tiktoken-ranks":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        enc = tiktoken.Encoding(name, pat_str=e["pattern"], mergeable_ranks=load_tiktoken_bpe(str(path)),
                                special_tokens={})
        encode = enc.encode_ordinary
    else:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        tok.no_truncation()
        tok.no_padding()
        encode = lambda text: tok.encode(text, add_special_tokens=False).ids  # noqa: E731
    c = Counter()
    for lang in langs:
        rows = corpus_store.read_language(out, "flores200", lang)
        for split, text in zip(rows["split"].to_pylist(), rows["text"].to_pylist(), strict=True):
            for i in encode(text):
                c[(lang, split, i)] += 1
    return c


@pytest.fixture(scope="module")
def freqs_out(tmp_path_factory, spark):
    out = tmp_path_factory.mktemp("freqs")
    write_small_corpus(out)
    reg = register_manifest(out, ["gpt2", "minilm-wordpiece"])
    reg.add(english_only_bpe(out), name="english-only")
    summary = token_freqs(spark, out, "flores200")
    return out, reg, summary


FAILED = {"fra_Latn", "zho_Hans"}  # english-only's cells; its English cell is counted


def _rows(out, reg, name) -> pa.Table:
    return read_token_freqs(out, "flores200", reg.get(name).tokenizer_id)


def test_counts_equal_direct_recount(freqs_out):
    out, reg, summary = freqs_out
    eng_only = reg.get("english-only").tokenizer_id
    assert library_failures(out, out / "eng_only.tokenizer.json") == FAILED
    assert (summary.cells_planned, summary.cells_ok, summary.cells_failed) == (9, 9 - len(FAILED), len(FAILED))
    assert sorted((t, lang) for t, lang, _ in summary.failures) == [(eng_only, lang) for lang in sorted(FAILED)]
    for name in ("gpt2", "minilm-wordpiece"):
        table = _rows(out, reg, name)
        validate(table, TOKEN_FREQS)
        got = {(r["lang"], r["split"], r["token_id"]): r["count"] for r in table.to_pylist()}
        assert got == dict(direct_counts(out, name))
        assert not any(table["is_special"].to_pylist())  # specials are never produced from text here


def test_files_schema_and_failed_cell(freqs_out):
    out, reg, summary = freqs_out
    files = sorted((out / "token_freqs").rglob("*.parquet"))
    assert len(files) == summary.cells_ok == 9 - len(FAILED)
    for f in files:
        check_schema(pq.read_schema(f), TOKEN_FREQS, files=True)
    eng_only = reg.get("english-only").tokenizer_id
    failed = {lang for tid, lang, err in summary.failures if tid == eng_only and "Unk token" in err}
    assert failed == FAILED  # each failure names its cause
    # the other cell of that tokenizer was still counted, exactly
    got = {(r["lang"], r["split"], r["token_id"]): r["count"] for r in _rows(out, reg, "english-only").to_pylist()}
    assert got == dict(direct_counts(out, "english-only", ["eng_Latn"], out / "eng_only.tokenizer.json"))


def test_rerun_skips_and_overwrite_never_duplicates(freqs_out, spark):
    out, reg, _ = freqs_out
    gpt2 = reg.get("gpt2").tokenizer_id
    before = _rows(out, reg, "gpt2")
    again = token_freqs(spark, out, "flores200", ["gpt2"])
    assert (again.cells_planned, again.cells_skipped, again.cells_ok) == (3, 3, 0)
    forced = token_freqs(spark, out, "flores200", [gpt2], ["eng_Latn"], overwrite=True)
    assert forced.cells_ok == 1
    after = _rows(out, reg, "gpt2")
    assert after.num_rows == before.num_rows
    assert after.sort_by([("lang", "ascending"), ("split", "ascending"), ("token_id", "ascending")]).equals(
        before.sort_by([("lang", "ascending"), ("split", "ascending"), ("token_id", "ascending")]))
