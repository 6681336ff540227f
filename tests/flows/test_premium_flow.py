"""The token-premium Prefect flow and the `tokatlas` CLI, end to end on real data and real Prefect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from helpers import write_flores_folder, write_manifest_subset

from flows.cli import main as cli_main
from flows.premium_flow import PremiumParams, token_premium
from schemas import PREMIUM, check_schema
from schemas.errors import ConfigError

pytestmark = pytest.mark.shared

LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PER_SPLIT = 30
NAMES = ["gpt2", "mistral-v1"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A FLORES-style folder with the first sentences of three languages."""
    return write_flores_folder(tmp_path_factory.mktemp("flores_mini"), LANGS, PER_SPLIT)


@pytest.fixture(scope="module")
def manifest_subset(tmp_path_factory):
    """The shared MANIFEST restricted to NAMES, with absolute file paths."""
    return write_manifest_subset(tmp_path_factory.mktemp("manifest") / "MANIFEST.json", NAMES)


@pytest.fixture(scope="module")
def flow_run(prefect_harness, spark, folder, manifest_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "out"
    params = PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(folder), corpus_name="mini",
                           tokenizer_manifest=str(manifest_subset), n_bootstrap=100)
    return params, token_premium(params)


def _library_ctc(name: str, text: str) -> int:
    """Corpus token count by the tokenizer's own library."""
    tok_dir = shared_path("tokenizers")
    if name == "gpt2":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        pattern = next(e["pattern"] for e in json.loads((tok_dir / "MANIFEST.json").read_text())["tokenizers"]
                       if e["name"] == "gpt2")
        enc = tiktoken.Encoding("gpt2", pat_str=pattern, special_tokens={},
                                mergeable_ranks=load_tiktoken_bpe(str(tok_dir / "gpt2.tiktoken")))
        return len(enc.encode_ordinary(text))
    import sentencepiece as spm

    return len(spm.SentencePieceProcessor(model_file=str(tok_dir / "mistral_v1.model")).encode(text))


def test_flow_writes_premium_equal_to_library_counts(flow_run, folder):
    params, result = flow_run
    assert result["encode"]["cells_ok"] == len(LANGS) * len(NAMES) and result["encode"]["cells_failed"] == 0
    assert result["ingest"]["rows_kept"] == len(LANGS) * 2 * PER_SPLIT and result["ingest"]["rows_rejected"] == 0
    path = result["report"]["premium"]
    check_schema(pq.read_schema(path), PREMIUM, files=True)
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == len(LANGS) * len(NAMES)

    def joined(lang):  # dev lines then devtest lines, in sentence order, joined by single spaces
        return " ".join(line for split in ("dev", "devtest")
                        for line in (folder / split / f"{lang}.{split}").read_text(encoding="utf-8").splitlines())

    for r in rows:
        ctc = {lang: _library_ctc(r["tokenizer_name"], joined(lang)) for lang in (r["lang"], "eng_Latn")}
        assert r["premium_ctc"] == pytest.approx(ctc[r["lang"]] / ctc["eng_Latn"], rel=1e-12)
        assert r["premium_ctc_lo"] <= r["premium_ctc"] <= r["premium_ctc_hi"]
        assert r["n_sentences"] == 2 * PER_SPLIT
    greek = {r["tokenizer_name"]: r["premium_ctc"] for r in rows if r["lang"] == "ell_Grek"}
    assert greek["gpt2"] > 2  # GPT-2's byte-level English vocabulary spends several tokens per Greek word


def test_flow_attaches_the_report_as_a_prefect_artifact(flow_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    params, result = flow_run

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["token-premium-mini"])))

    # Other tests in this session's Prefect database may run a corpus named "mini" too.
    md = Path(result["report"]["markdown"]).read_text(encoding="utf-8")
    ours = [a for a in asyncio.run(read()) if a.data == md]
    assert ours and ours[0].type == "markdown" and "ell_Grek" in md


def test_second_flow_run_encodes_nothing(flow_run):
    params, first = flow_run
    again = token_premium(params)
    assert again["encode"]["cells_skipped"] == first["encode"]["cells_planned"] and again["encode"]["cells_ok"] == 0
    assert pq.read_table(again["report"]["premium"]).num_rows == len(LANGS) * len(NAMES)


def test_bad_parameters_fail_before_spark(tmp_path, capsys):
    with pytest.raises(ConfigError, match="does not exist"):
        PremiumParams(corpus_source="flores-folder", corpus_path=str(tmp_path / "nope")).checked()
    with pytest.raises(ConfigError, match="iso639_3_Script"):
        PremiumParams(languages=["english"]).checked()
    with pytest.raises(ConfigError, match="unknown corpus source"):
        PremiumParams(corpus_source="floris").checked()
    assert cli_main(["run", "--corpus-source", "flores-folder", "--corpus-path", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_tokenizers_add_list_show(tmp_path, capsys):
    tok = shared_path("tokenizers", "mistral_v1.model")
    out = str(tmp_path / "o")
    assert cli_main(["tokenizers", "add", str(tok), "--name", "mv1", "--out", out]) == 0
    added = capsys.readouterr().out.split()
    assert added[1:4] == ["mv1", "sentencepiece-model", "bpe"]
    assert cli_main(["tokenizers", "list", "--out", out]) == 0
    listing = capsys.readouterr().out
    assert "mv1" in listing and "1 tokenizers" in listing
    assert cli_main(["tokenizers", "show", "mv1", "--out", out]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tokenizer_id"] == added[0] and shown["vocab_size"] == 32000
    assert cli_main(["tokenizers", "show", "nope", "--out", out]) == 2
    assert "mv1" in capsys.readouterr().err  # the unknown-name error lists what exists
    bad = tmp_path / "bad.model"
    bad.write_bytes(tok.read_bytes()[:1000])
    assert cli_main(["tokenizers", "add", str(bad), "--out", out]) == 2
    assert "bad.model" in capsys.readouterr().err
