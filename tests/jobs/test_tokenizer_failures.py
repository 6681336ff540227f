"""A tokenizer whose encoder panics fails only its own cells; registration refuses such patterns.

A Rust panic in tiktoken or HF `tokenizers` reaches Python as pyo3's `PanicException`, a
BaseException outside `Exception`. The pattern `(\\p{L}|\\p{L})*(?=\\d)|\\s+|[^\\s]` backtracks
exponentially on a run of letters not followed by a digit: fancy-regex (tiktoken) stops at its
backtrack limit, Oniguruma (HF) at its retry limit, and both libraries turn that error into a
panic; it also matches the empty string before a digit, on which tiktoken panics. Every
expected count and error below comes from the library called directly.

The runtime tests register the panicking tokenizers with `register_unchecked`: the spec row
`Registry.add` would write, without its probe, as in a registry written before patterns were
checked. The probe itself is tested by registering the same files through `Registry.add` and the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, shared_path
from helpers import EVIL, make_english_only_bpe, register_unchecked, write_evil_hf

from jobs.analysis.mixture.trajectory import read_trajectory, trajectory_for_texts
from jobs.corpus.samples import write_sample
from jobs.encode import encode
from jobs.ingest import _write_language
from jobs.mixture_counts import count_cells, make_cells
from jobs.store import corpus_store
from jobs.store.layout import registry_dir, trajectory_dir
from jobs.token_freqs import read_token_freqs, token_freqs
from schemas.errors import ConfigError, TokenizerFileError
from tokenizers_registry.formats import load_merges
from tokenizers_registry.registry import Registry

pytestmark = pytest.mark.shared

CORPUS = "mini"
# What makes EVIL fail: in deu_Latn, words of 20+ letters followed by a space (fancy-regex's backtrack
# limit, Oniguruma's retry limit); in fra_Latn, a number after a space, where EVIL matches the empty
# string, on which tiktoken panics (HF does not). eng_Latn has neither: its long run of letters is
# followed by a digit, which EVIL matches without backtracking.
TEXTS = {
    "deu_Latn": {"dev": ["Ein kurzer Satz.", "Die Donaudampfschifffahrtsgesellschaft fährt heute.", "Noch mehr."],
                 "devtest": ["Rechtsschutzversicherungsgesellschaften sind teuer.", "Gut."]},
    "eng_Latn": {"dev": ["The cat sat on the mat.", "abcdefghijklmnopqrstuvwxyz1 is fine", "We met at noon."],
                 "devtest": ["Short words only here.", "It is late."]},
    "fra_Latn": {"dev": ["Le chat dort.", "Nous sommes 12 amis."], "devtest": ["Il est 10 heures.", "Bonne nuit."]},
}
FAILING = {("evil", "deu_Latn"), ("evil", "fra_Latn"), ("evil-hf", "deu_Latn")}
LANGS = sorted(TEXTS)  # deu_Latn sorts first: its panicking cells run before eng_Latn's in the same worker


def write_corpus(out: Path) -> None:
    written = {}
    for lang, splits in TEXTS.items():
        rows = [{"corpus": CORPUS, "lang": lang, "script": "Latn", "split": split, "sentence_id": i, "text": t,
                 "n_bytes": len(t.encode()), "n_chars": len(t)}
                for split, texts in splits.items() for i, t in enumerate(texts)]
        written[lang] = _write_language(pa.Table.from_pylist(rows), str(out), CORPUS, lang)
    corpus_store.write_versions(out, CORPUS, written)


def sentences(lang: str) -> list[tuple[str, int, str]]:
    """(split, sentence_id, text) in the encode job's order."""
    return sorted((s, i, t) for s, texts in TEXTS[lang].items() for i, t in enumerate(texts))


def gpt2_pattern() -> str:
    doc = json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())
    return next(e["pattern"] for e in doc["tokenizers"] if e["name"] == "gpt2")


def libraries(evil_hf_path: Path) -> dict:
    """name -> encode function of the library itself (tiktoken, tokenizers)."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tokenizers import Tokenizer

    ranks = load_tiktoken_bpe(str(shared_path("tokenizers", "gpt2.tiktoken")))
    gpt2 = tiktoken.Encoding("gpt2", pat_str=gpt2_pattern(), mergeable_ranks=ranks, special_tokens={})
    evil = tiktoken.Encoding("evil", pat_str=EVIL, mergeable_ranks=ranks, special_tokens={})
    hf = Tokenizer.from_file(str(evil_hf_path))
    hf.no_padding()
    hf.no_truncation()
    return {"gpt2": gpt2.encode_ordinary, "evil": evil.encode_ordinary,
            "evil-hf": lambda t: hf.encode(t, add_special_tokens=False).ids}


def outcome(encode_fn, text: str):
    """The ids, or the library's exception as (type name, message)."""
    try:
        return encode_fn(text)
    except BaseException as e:  # noqa: BLE001  (the panic under test is a BaseException)
        if isinstance(e, KeyboardInterrupt):
            raise
        return (type(e).__name__, str(e))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokfail")
    out = root / "out"
    write_corpus(out)
    reg = Registry(registry_dir(out))
    gpt2 = reg.add(shared_path("tokenizers", "gpt2.tiktoken"), name="gpt2", params={"pattern": gpt2_pattern()})
    evil = register_unchecked(reg, shared_path("tokenizers", "gpt2.tiktoken"), "evil", "tiktoken-ranks",
                              {"pattern": EVIL})
    evil_hf_path = write_evil_hf(root / "evil_hf.json")
    evil_hf = register_unchecked(reg, evil_hf_path, "evil-hf", "hf-tokenizer-json")
    libs = libraries(evil_hf_path)
    # What each library does on each sentence: ids, or the exception it raises.
    expected = {(name, lang): [(s, i, outcome(libs[name], t)) for s, i, t in sentences(lang)]
                for name in libs for lang in LANGS}
    # The premise: each library panics on exactly the FAILING cells' text.
    for (name, lang), rows in expected.items():
        panics = [r for r in rows if isinstance(r[2], tuple)]
        assert bool(panics) == ((name, lang) in FAILING), (name, lang)
        assert all(r[2][0] == "PanicException" for r in panics)
    return out, {"gpt2": gpt2, "evil": evil, "evil-hf": evil_hf}, libs, expected


def _rows(out: Path, dataset: str) -> list[dict]:
    return ds.dataset(out / dataset, format="parquet", partitioning="hive").to_table().to_pylist()


def _first_panic(rows):
    return next((s, i, r) for s, i, r in rows if isinstance(r, tuple))


def test_encode_panicking_tokenizer_fails_only_its_own_cells(spark, setup):
    out, specs, libs, expected = setup
    # one task: every cell runs in one worker, so evil's eng_Latn cells use the tokenizer that just panicked
    summary = encode(spark, out, CORPUS, max_tasks=1)
    assert (summary.cells_planned, summary.cells_ok, summary.cells_failed) == (9, 6, 3)
    by_id = {s.tokenizer_id: n for n, s in specs.items()}
    assert {(by_id[f[0]], f[1]) for f in summary.failures} == FAILING
    assert all(f[2] == "encode" and f[3].startswith("PanicException: ") for f in summary.failures)

    failures = {(by_id[r["tokenizer_id"]], r["lang"]): r for r in _rows(out, "cell_failures")}
    assert set(failures) == FAILING
    for key, r in failures.items():
        split, sid, (etype, msg) = _first_panic(expected[key])
        assert (r["stage"], r["split"], r["sentence_id"], r["error_type"], r["error"]) == \
            ("encode", split, sid, "PanicException", msg)
    assert "BacktrackLimitExceeded" in failures[("evil", "deu_Latn")]["error"]
    assert "range end index" in failures[("evil", "fra_Latn")]["error"]  # tiktoken on an empty match
    assert "retry-limit-in-match over" in failures[("evil-hf", "deu_Latn")]["error"]

    counts = {}
    for r in _rows(out, "token_counts"):
        counts.setdefault((by_id[r["tokenizer_id"]], r["lang"]), {})[(r["split"], r["sentence_id"])] = r["n_tokens"]
    healthy = {(n, lang) for n in specs for lang in LANGS} - FAILING
    assert set(counts) == healthy
    for key in healthy:
        assert counts[key] == {(s, i): len(ids) for s, i, ids in expected[key]}, key
    corpus = {(by_id[r["tokenizer_id"]], r["lang"]): r["n_tokens"] for r in _rows(out, "corpus_counts")}
    assert corpus == {(n, lang): len(libs[n](" ".join(t for *_, t in sentences(lang)))) for n, lang in healthy}


def test_token_freqs_panicking_tokenizer_fails_only_its_own_cells(spark, setup):
    out, specs, libs, expected = setup
    summary = token_freqs(spark, out, CORPUS, max_tasks=1)
    assert (summary.cells_planned, summary.cells_ok, summary.cells_failed) == (9, 6, 3)
    by_id = {s.tokenizer_id: n for n, s in specs.items()}
    assert {(by_id[tid], lang) for tid, lang, _ in summary.failures} == FAILING
    for tid, lang, err in summary.failures:
        assert err == "PanicException: " + _first_panic(expected[(by_id[tid], lang)])[2][1]
    for name, spec in specs.items():
        got = Counter({(r["lang"], r["split"], r["token_id"]): r["count"]
                       for r in read_token_freqs(out, CORPUS, spec.tokenizer_id).to_pylist()})
        want = Counter()
        for lang in LANGS:
            if (name, lang) in FAILING:
                continue
            for s, _, ids in expected[(name, lang)]:
                want.update((lang, s, i) for i in ids)
        assert got == want, name


def test_mixture_counts_panicking_pretokenizer_fails_only_its_own_cells(spark, tmp_path):
    out = tmp_path / "mix"
    samples = {lang: str(write_sample(out, lang, [t for *_, t in sentences(lang)])) for lang in LANGS}
    gpt2 = {"name": "gpt2", "format": "tiktoken-ranks", "path": str(shared_path("tokenizers", "gpt2.tiktoken")),
            "params": {"pattern": gpt2_pattern()}}
    evil_hf = {"name": "evil-hf", "format": "hf-tokenizer-json", "path": str(write_evil_hf(tmp_path / "e.json")),
               "params": {}}
    cells = make_cells(out, [gpt2, evil_hf], samples, T=40, top_k=3)
    rows = {(r.tokenizer, r.category): r for r in count_cells(spark, cells).collect()}
    assert {k: r.status for k, r in rows.items()} == {
        (t, lang): "failed" if (t, lang) in FAILING else "ok" for t in ("gpt2", "evil-hf") for lang in LANGS}
    err = rows[("evil-hf", "deu_Latn")].error
    assert err.startswith("PanicException: ") and "retry-limit-in-match over" in err
    for tok in (gpt2, evil_hf):
        ml = load_merges(tok["path"], tok["format"], tok["params"], tok["name"])
        for lang in LANGS:
            if (tok["name"], lang) in FAILING:
                assert not (trajectory_dir(out, tok["name"], lang) / "steps.parquet").exists()
                continue
            tr, _ = read_trajectory(trajectory_dir(out, tok["name"], lang))
            ref = trajectory_for_texts(ml, pq.read_table(samples[lang])["text"].to_pylist(), 40, top_k=3)
            assert np.array_equal(tr.merged_count, ref.merged_count) and tr.n_bytes == ref.n_bytes


def test_registration_refuses_a_pattern_that_panics_on_ordinary_text(tmp_path):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    gpt2_file = shared_path("tokenizers", "gpt2.tiktoken")
    enc = tiktoken.Encoding("e", pat_str=EVIL, mergeable_ranks=load_tiktoken_bpe(str(gpt2_file)), special_tokens={})
    etype, panic = outcome(enc.encode_ordinary, "abcdefghij" * 20 + " x")
    assert etype == "PanicException" and "BacktrackLimitExceeded" in panic
    reg = Registry(tmp_path / "registry")
    with pytest.raises(TokenizerFileError) as ei:
        reg.add(gpt2_file, name="evil", params={"pattern": EVIL})
    assert str(ei.value) == (f"{gpt2_file}: tokenizer 'evil' cannot encode ordinary text (200 letters then a "
                             f"space): PanicException: {panic}; its pre-tokenization pattern backtracks too much "
                             "for its regex engine")
    assert reg.specs() == [] and not (tmp_path / "registry" / "artifacts").exists()

    # the same pattern inside an HF tokenizer.json (Oniguruma's retry limit) is refused the same way
    hf_file = write_evil_hf(tmp_path / "evil_hf.json")
    with pytest.raises(TokenizerFileError) as ei:
        reg.add(hf_file, name="evil-hf")
    assert str(ei.value).startswith(f"{hf_file}: tokenizer 'evil-hf' cannot encode ordinary text (200 letters then "
                                    "a space): PanicException: ")
    assert "retry-limit-in-match over" in str(ei.value) and reg.specs() == []

    # a pattern that does not compile in tiktoken's engine is refused by name
    with pytest.raises(ConfigError) as ei:
        reg.add(gpt2_file, name="open", params={"pattern": "(ab"})
    assert str(ei.value) == ("gpt2.tiktoken: pre-tokenization pattern does not compile in tiktoken's regex engine "
                             "(fancy-regex): Parsing error at position 3: Opening parenthesis without closing "
                             "parenthesis")

    # a healthy pattern still registers, and so does a vocabulary that merely cannot cover the probe's
    # Cyrillic (a plain Exception: a per-cell failure at run time, not a broken pattern)
    assert reg.add(gpt2_file, name="gpt2", params={"pattern": gpt2_pattern()}).name == "gpt2"
    eng_only = make_english_only_bpe(tmp_path / "eng_only.json")
    from tokenizers import Tokenizer

    assert outcome(lambda t: Tokenizer.from_file(str(eng_only)).encode(t).ids, "Привет")[0] == "Exception"
    assert reg.add(eng_only, name="english-only").name == "english-only"


def test_cli_refuses_the_pattern_in_one_line(tmp_path):
    gpt2_file = shared_path("tokenizers", "gpt2.tiktoken")
    p = subprocess.run([sys.executable, "-m", "flows.cli", "tokenizers", "add", str(gpt2_file), "--name", "evil",
                        "--pattern", EVIL, "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
    # stderr also holds the lines Rust's panic hook prints when the probe panics; ours is the last, alone
    lines = p.stderr.splitlines()
    assert p.returncode == 2 and p.stdout == "" and "Traceback" not in p.stderr
    assert [ln for ln in lines if ln.startswith("tokatlas:")] == lines[-1:]
    assert lines[-1].startswith(f"tokatlas: error: {gpt2_file}: tokenizer 'evil' cannot encode ordinary text "
                                "(200 letters then a space): PanicException: ")
    assert not (tmp_path / "out" / "registry" / "tokenizers.parquet").exists()


def test_every_shared_tokenizer_passes_the_probe(tmp_path):
    reg = Registry(tmp_path / "registry")
    entries = json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())["tokenizers"]
    for e in entries:
        params = {"pattern": e["pattern"]} if e["format"] == "tiktoken-ranks" else None
        reg.add(shared_path("tokenizers", e["file"]), name=e["name"], fmt=e["format"], params=params)
    assert sorted(s.name for s in reg.specs()) == sorted(e["name"] for e in entries) and len(entries) == 10


def test_mixture_regex_pretokenizer_stops_a_backtracking_pattern(monkeypatch):
    # Python's `regex` (the mixture pre-tokenizer for rank files) has no backtrack limit: without a
    # time box this pattern takes ~2^n steps on n letters and the cell would never finish.
    from tokenizers_registry import merges

    monkeypatch.setattr(merges, "REGEX_SECONDS", 1)
    pre = merges.RegexBytePretokenizer(EVIL)
    text = "abcdefghij" * 4 + " x"
    with pytest.raises(TimeoutError) as ei:
        pre.words(text)
    assert str(ei.value) == (f"pre-tokenization pattern {EVIL!r} ran over 1 s on one text of {len(text)} "
                             "characters (catastrophic backtracking)")
    healthy = merges.RegexBytePretokenizer(gpt2_pattern())
    assert healthy.words("hello world 42") == ["hello", "Ġworld", "Ġ42"]  # GPT-2: " ?\\p{N}+"
