"""Encode job on real FLORES sentences with real tokenizers of five formats.

Every count is checked against the tokenizer's own library called directly (tiktoken,
`tokenizers`, sentencepiece, mistral-common), never against tokatlas' loaders.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from helpers import make_english_only_bpe, session_processes, wait_until

from jobs.encode import encode, plan_cells
from jobs.ingest import ingest
from jobs.store import corpus_store
from jobs.store.layout import registry_dir
from schemas import CELL_FAILURES, CORPUS_COUNTS, TOKEN_COUNTS, check_schema
from tokenizers_registry.registry import Registry

pytestmark = pytest.mark.shared

CORPUS = "mini"
LANGS = ["eng_Latn", "fra_Latn", "zho_Hans", "amh_Ethi"]
PER_SPLIT = 40
NAMES = ["gpt2", "claude-legacy", "minilm-wordpiece", "mistral-v1", "mistral-tekken-240718"]


def _write_folder(root: Path) -> None:
    table = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"),
                          columns=["lang", "split", "sentence_id", "text"], filters=[("lang", "in", LANGS)])
    for lang in LANGS:
        for split in ("dev", "devtest"):
            rows = [r for r in table.to_pylist() if r["lang"] == lang and r["split"] == split]
            rows.sort(key=lambda r: r["sentence_id"])
            path = root / split / f"{lang}.{split}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(r["text"] + "\n" for r in rows[:PER_SPLIT]), encoding="utf-8")


@pytest.fixture(scope="module")
def base(spark, tmp_path_factory):
    """An output root holding the ingested corpus and the registered tokenizers (no counts)."""
    root = tmp_path_factory.mktemp("encode")
    _write_folder(root / "flores")
    out = root / "base"
    ingest(spark, "flores-folder", root / "flores", CORPUS, out)
    reg = Registry(registry_dir(out))
    specs = reg.add_manifest(shared_path("tokenizers", "MANIFEST.json"), names=NAMES)
    eng_only = reg.add(make_english_only_bpe(root / "eng_only.json"), name="english-only-bpe")
    return out, {s.name: s for s in [*specs, eng_only]}


def _copy(base_out: Path, dest: Path) -> Path:
    shutil.copytree(base_out, dest)
    return dest


@pytest.fixture(scope="module")
def encoded(spark, base, tmp_path_factory):
    out, specs = base
    out = _copy(out, tmp_path_factory.mktemp("encoded") / "out")
    summary = encode(spark, out, CORPUS)
    return out, specs, summary


def _reference_counters():
    """name -> text -> (n_tokens, n_unk), calling each library directly."""
    import sentencepiece as spm
    import tiktoken
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer
    from tiktoken.load import load_tiktoken_bpe
    from tokenizers import Tokenizer

    tok_dir = shared_path("tokenizers")
    manifest = {e["name"]: e for e in json.loads((tok_dir / "MANIFEST.json").read_text())["tokenizers"]}
    gpt2 = tiktoken.Encoding("gpt2", pat_str=manifest["gpt2"]["pattern"],
                             mergeable_ranks=load_tiktoken_bpe(str(tok_dir / "gpt2.tiktoken")), special_tokens={})
    claude = Tokenizer.from_file(str(tok_dir / "claude_legacy.tokenizer.json"))
    minilm = Tokenizer.from_file(str(tok_dir / "minilm_wordpiece.tokenizer.json"))
    for t in (claude, minilm):  # the files ship padding/truncation for model input; counts need neither
        t.no_padding()
        t.no_truncation()
    minilm_unk = minilm.token_to_id("[UNK]")
    sp = spm.SentencePieceProcessor(model_file=str(tok_dir / "mistral_v1.model"))
    tekken = Tekkenizer.from_file(str(tok_dir / "mistral_tekken_240718.json"))

    def hf(tok, unk=None):
        def count(text):
            ids = tok.encode(text, add_special_tokens=False).ids
            return len(ids), sum(i == unk for i in ids)
        return count

    return {
        "gpt2": lambda t: (len(gpt2.encode_ordinary(t)), 0),
        "claude-legacy": hf(claude),
        "minilm-wordpiece": hf(minilm, minilm_unk),
        "mistral-v1": lambda t: (len(sp.encode(t)), sum(i == sp.unk_id() for i in sp.encode(t))),
        "mistral-tekken-240718": lambda t: (len(tekken.encode(t, bos=False, eos=False)), 0),
    }


def _rows(out: Path, dataset: str) -> list[dict]:
    root = out / dataset
    if not root.exists():
        return []
    return ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pylist()


def _sentences(out: Path, lang: str) -> list[dict]:
    t = corpus_store.read_language(out, CORPUS, lang)
    return sorted(t.to_pylist(), key=lambda r: (r["split"], r["sentence_id"]))


def test_counts_equal_each_library(encoded):
    out, specs, summary = encoded
    ref = _reference_counters()
    rows = _rows(out, "token_counts")
    by_cell = {}
    for r in rows:
        by_cell.setdefault((r["tokenizer_id"], r["lang"]), {})[(r["split"], r["sentence_id"])] = r
    for name in NAMES:
        for lang in LANGS:
            got = by_cell[(specs[name].tokenizer_id, lang)]
            sentences = _sentences(out, lang)
            assert len(got) == len(sentences) == 2 * PER_SPLIT
            for s in sentences:
                row = got[(s["split"], s["sentence_id"])]
                assert (row["n_tokens"], row["n_unk"]) == ref[name](s["text"]), (name, lang, s["sentence_id"])
                assert row["n_bytes"] == len(s["text"].encode()) and row["n_chars"] == len(s["text"])
                assert row["n_words"] == (len(s["text"].split()) if lang != "zho_Hans"
                                          else sum(not c.isspace() for c in s["text"]))
                assert row["word_segmentation"] == ("character" if lang == "zho_Hans" else "whitespace")


def test_corpus_level_count_is_one_encode_of_joined_lines(encoded):
    out, specs, _ = encoded
    ref = _reference_counters()
    rows = {(r["tokenizer_id"], r["lang"]): r for r in _rows(out, "corpus_counts")}
    for name in NAMES:
        for lang in LANGS:
            joined = " ".join(s["text"] for s in _sentences(out, lang))
            row = rows[(specs[name].tokenizer_id, lang)]
            assert row["n_tokens"] == ref[name](joined)[0]
            assert row["n_bytes"] == len(joined.encode()) and row["n_sentences"] == 2 * PER_SPLIT
    # Merges across sentence boundaries make the corpus-level count differ from the sum for some cell.
    assert any(r["n_tokens"] != r["n_tokens_sentence_sum"] for r in rows.values())


def test_failing_tokenizer_records_the_first_bad_sentence_and_run_continues(encoded):
    out, specs, summary = encoded
    from tokenizers import Tokenizer

    eng_only = specs["english-only-bpe"]
    lib = Tokenizer.from_file(str(Registry(registry_dir(out)).artifact_path(eng_only)))
    failures = {r["lang"]: r for r in _rows(out, "cell_failures")}
    expected = {}
    for lang in LANGS:
        for s in _sentences(out, lang):
            try:
                lib.encode(s["text"], add_special_tokens=False)
            except Exception:
                expected[lang] = (s["split"], s["sentence_id"])
                break
    assert "zho_Hans" in expected  # the English-only vocabulary cannot encode Chinese
    assert {lang: (r["split"], r["sentence_id"]) for lang, r in failures.items()} == expected
    assert all(r["tokenizer_id"] == eng_only.tokenizer_id and r["stage"] == "encode" for r in failures.values())
    n_cells = len(LANGS) * (len(NAMES) + 1)
    assert summary.cells_planned == n_cells and summary.cells_failed == len(expected)
    assert summary.cells_ok == n_cells - len(expected)
    assert {(f[0], f[1]) for f in summary.failures} == {(eng_only.tokenizer_id, lang) for lang in expected}


def test_written_files_match_their_schemas_exactly(encoded):
    out, _, _ = encoded
    for dataset, contract in (("token_counts", TOKEN_COUNTS), ("corpus_counts", CORPUS_COUNTS),
                              ("cell_failures", CELL_FAILURES)):
        files = sorted((out / dataset).rglob("*.parquet"))
        assert files, dataset
        for f in files:
            check_schema(pq.read_schema(f), contract, files=True)


def test_second_run_does_no_work_beyond_failed_cells(spark, encoded):
    out, _, first = encoded
    before = {p: p.stat().st_mtime_ns for p in (out / "token_counts").rglob("*.parquet")}
    again = encode(spark, out, CORPUS)
    assert again.cells_ok == 0 and again.cells_skipped == first.cells_planned - first.cells_failed
    assert again.cells_failed == first.cells_failed  # failed cells are retried, and fail the same way
    assert {p: p.stat().st_mtime_ns for p in (out / "token_counts").rglob("*.parquet")} == before


def test_spark_submit_killed_mid_run_then_resumed_equals_uninterrupted(spark, base, encoded, tmp_path):
    """Kill a spark-submit'ed encode job after some cells are written; the re-run must
    produce exactly the uninterrupted output: same rows, no duplicates, no temp files."""
    base_out, specs = base
    out = _copy(base_out, tmp_path / "out")
    names = ",".join(NAMES)
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
           str(ROOT / "jobs" / "encode.py"), "--out", str(out), "--corpus", CORPUS, "--tokenizers", names,
           "--shard-size", "8", "--max-tasks", "40"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    log = tmp_path / "spark-submit.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fh, start_new_session=True)
    n_total = len(LANGS) * len(NAMES) * (2 * PER_SPLIT // 8)

    def cells_written(n):
        assert proc.poll() is None, f"spark-submit ended before it could be killed: {log.read_text()[-2000:]!r}"
        return (out / "token_counts").exists() and len(list((out / "token_counts").rglob("*.parquet"))) >= n

    wait_until(lambda: cells_written(3), 600, "3 cells written by the spark-submit'ed encode", interval=0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The group kill ends the JVM and the Python driver, but not pyspark's daemon and the Python workers it
    # forked: the daemon moves to a process group of its own (pyspark/daemon.py: os.setpgid(0, 0)) and ends
    # its workers only once it sees the JVM gone, so a worker may still finish a cell meanwhile. They all
    # stay in the session: count the finished cells only when none of it is left.
    wait_until(lambda: not session_processes(proc.pid), 600, "every process of the killed spark-submit ended",
               interval=0.05)
    done_before = len(list((out / "token_counts").rglob("*.parquet")))
    assert 3 <= done_before < n_total
    # A shard-0 cell killed between its token_counts and corpus_counts files is not done: it reruns.
    complete = sum(c.is_done(out) for c in plan_cells(out, CORPUS, [specs[n] for n in NAMES], shard_size=8))
    assert complete <= done_before

    resumed = encode(spark, out, CORPUS, NAMES, shard_size=8, wave_cells=7)  # resumed in waves of 7 cells
    assert resumed.cells_planned == n_total and resumed.cells_skipped == complete
    assert resumed.waves == -(-(n_total - resumed.cells_skipped) // 7)
    assert resumed.cells_ok + resumed.cells_skipped == n_total and resumed.cells_failed == 0
    assert not list(out.rglob(".*.tmp"))

    key = ("tokenizer_id", "lang", "split", "sentence_id")
    got = sorted((tuple(r[k] for k in key), r["n_tokens"], r["n_unk"]) for r in _rows(out, "token_counts"))
    ids = {specs[n].tokenizer_id for n in NAMES}
    want = sorted((tuple(r[k] for k in key), r["n_tokens"], r["n_unk"])
                  for r in _rows(encoded[0], "token_counts") if r["tokenizer_id"] in ids)
    assert len({g[0] for g in got}) == len(got)  # no duplicate sentence rows
    assert got == want
