"""Incremental and fault-tolerant runs: only missing cells are computed, and Prefect retries
transient failures but never configuration errors (real Prefect, real Spark, real tokenizers)."""

from __future__ import annotations

import asyncio
import importlib

import pyarrow.parquet as pq
import pytest
from helpers import write_flores_folder, write_manifest_subset
from prefect import flow, task
from prefect.tasks import Task

from flows.premium_flow import PremiumParams, token_premium
from flows.retries import retry_unless_config_error
from jobs.store import corpus_store
from schemas.errors import ConfigError, TokenizerFileError

# -- retries ----------------------------------------------------------------------------------
CALLS: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_unless_config_error)
def flaky(key: str, error: str) -> str:
    """Fails on its first call with `error`, then succeeds."""
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] == 1:
        raise {"transient": ConnectionResetError("executor lost"), "config": ConfigError("unknown language xx_Zzzz"),
               "tokenizer": TokenizerFileError("/x/tok.json: sha256 a does not match b")}[error]
    return f"{key} ok"


@flow
def run_flaky(key: str, error: str):
    return flaky(key, error, return_state=True)


async def _task_run(task_run_id):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_task_run(task_run_id)


def test_transient_failure_is_retried_by_prefect(prefect_harness):
    state = run_flaky("t", "transient")
    assert state.is_completed() and state.result() == "t ok"
    assert CALLS["t"] == 2
    assert asyncio.run(_task_run(state.state_details.task_run_id)).run_count == 2


@pytest.mark.parametrize("error", ["config", "tokenizer"])
def test_config_and_tokenizer_file_errors_are_not_retried(prefect_harness, error):
    state = run_flaky(error, error, return_state=True)
    assert state.is_failed()
    assert CALLS[error] == 1  # two retries were allowed; the condition refused both
    with pytest.raises(ConfigError if error == "config" else TokenizerFileError):
        state.result()


@pytest.mark.parametrize("module", ["flows.premium_flow", "flows.grid_flow", "flows.trim_flow",
                                    "flows.mixture_flow"])
def test_every_flow_task_uses_the_shared_retry_rule(module):
    tasks = [t for t in vars(importlib.import_module(module)).values() if isinstance(t, Task)]
    assert tasks
    retried = [t for t in tasks if t.retries]
    assert retried, module  # the Spark steps retry transient failures ...
    for t in retried:  # ... and never configuration errors
        assert t.retry_condition_fn is retry_unless_config_error, (module, t.name)


# -- incremental premium runs -------------------------------------------------------------------
def _library_count(name: str, text: str) -> int:
    """Tokens of `text` by the tokenizer's own library (tiktoken, sentencepiece)."""
    import json

    from conftest import shared_path

    tok_dir = shared_path("tokenizers")
    if name == "gpt2":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        entry = next(e for e in json.loads((tok_dir / "MANIFEST.json").read_text())["tokenizers"] if e["name"] == name)
        enc = tiktoken.Encoding(name, pat_str=entry["pattern"], special_tokens={},
                                mergeable_ranks=load_tiktoken_bpe(str(tok_dir / entry["file"])))
        return len(enc.encode_ordinary(text))
    import sentencepiece as spm

    return len(spm.SentencePieceProcessor(model_file=str(tok_dir / "mistral_v1.model")).encode(text))


LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PER_SPLIT = 12


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A FLORES-style folder (3 languages × 2 splits × 12 sentences) and manifests of one and two tokenizers."""
    root = tmp_path_factory.mktemp("incremental")
    write_flores_folder(root / "corpus", LANGS, PER_SPLIT)
    for names in (["mistral-v1"], ["mistral-v1", "gpt2"]):
        write_manifest_subset(root / f"manifest-{len(names)}.json", names)
    return root


def test_premium_computes_only_missing_cells(prefect_harness, spark, inputs, tmp_path):
    out = tmp_path / "out"
    last_ingest_skipped = [None]

    def run(languages, n_tokenizers):
        p = PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(inputs / "corpus"),
                          corpus_name="inc", languages=languages, n_bootstrap=20,
                          tokenizer_manifest=str(inputs / f"manifest-{n_tokenizers}.json"))
        r = token_premium(p)
        last_ingest_skipped[0] = r["ingest"].get("skipped")
        enc = r["encode"]
        premium = pq.read_table(r["report"]["premium"])
        return (enc["cells_planned"], enc["cells_skipped"], enc["cells_ok"], enc["cells_failed"]), premium

    two = LANGS[:2]
    assert run(two, 1)[0] == (2, 0, 2, 0)
    assert run(two, 2)[0] == (4, 2, 2, 0)  # a new tokenizer: its cells only
    assert run(LANGS, 2)[0] == (6, 4, 2, 0)  # a new language: its cells only

    # a changed sentence changes the language's corpus version: its cells are recomputed
    before = corpus_store.read_corpus_versions(out, "inc")
    deu = inputs / "corpus" / "dev" / "deu_Latn.dev"
    original = deu.read_text(encoding="utf-8")
    try:
        deu.write_text(original.replace("\n", " (geändert)\n", 1), encoding="utf-8")
        counts, premium = run(LANGS, 2)
        after = corpus_store.read_corpus_versions(out, "inc")
    finally:
        deu.write_text(original, encoding="utf-8")
    assert counts == (6, 4, 2, 0)
    assert after["deu_Latn"] != before["deu_Latn"]
    assert {k: v for k, v in after.items() if k != "deu_Latn"} == {k: v for k, v in before.items() if k != "deu_Latn"}
    # the premium table uses the current version only, one row per (tokenizer, language)
    assert premium.num_rows == 6 and set(premium["lang"].to_pylist()) == set(LANGS)
    # the recomputed counts are the libraries' counts of the changed text, per sentence and joined
    changed = {"dev": original.splitlines(),  # sentence id = line number
               "devtest": (inputs / "corpus" / "devtest" / "deu_Latn.devtest").read_text(encoding="utf-8").splitlines()}
    changed["dev"][0] += " (geändert)"
    ids = {r["name"]: r["tokenizer_id"] for r in pq.read_table(out / "registry" / "tokenizers.parquet").to_pylist()}
    for name in ("mistral-v1", "gpt2"):
        (f,) = (out / "token_counts" / "lang=deu_Latn").glob(f"{ids[name]}-inc-{after['deu_Latn']}-*.parquet")
        got = {(r["split"], r["sentence_id"]): r["n_tokens"] for r in pq.read_table(f).to_pylist()}
        assert got == {(split, i): _library_count(name, line) for split, lines in changed.items()
                       for i, line in enumerate(lines)}, name
        assert got[("dev", 0)] != _library_count(name, original.splitlines()[0])  # the change shows
        row = next(r for r in premium.to_pylist() if r["tokenizer_name"] == name and r["lang"] == "deu_Latn")
        assert row["ctc"] == _library_count(name, " ".join(changed["dev"] + changed["devtest"])), name

    # the original text again: its counts are still there, so nothing is computed, as in an identical run
    counts, premium = run(LANGS, 2)
    assert counts == (6, 6, 0, 0)
    assert corpus_store.read_corpus_versions(out, "inc") == before
    assert premium.num_rows == 6
    assert last_ingest_skipped[0] is False  # the file was rewritten: read again
    counts, _ = run(LANGS, 2)
    assert counts == (6, 6, 0, 0)
    assert last_ingest_skipped[0] is True  # an identical run reads nothing either
