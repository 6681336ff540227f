"""Coverage figures equal a brute-force recount; special tokens are excluded; the report renders."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import shared_path
from test_token_freqs import LANGS, write_small_corpus

from jobs.analysis.coverage import coverage_tables, write_coverage
from jobs.encode import EncodeCell
from jobs.reports.trim import render_trim_report
from jobs.store import corpus_store
from jobs.token_freqs import cell_table
from schemas import validate
from schemas.trim import COVERAGE_CURVE, VOCAB_COVERAGE, VOCAB_OVERLAP, VOCAB_UNION
from tokenizers_registry.formats import load_format

pytestmark = pytest.mark.shared
HIDDEN = 64


@pytest.fixture(scope="module")
def gpt2_freqs(tmp_path_factory):
    """token_freqs rows built by the job's own cell function, plus an independent tiktoken Counter."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    out = tmp_path_factory.mktemp("cov")
    versions = write_small_corpus(out)
    e = next(x for x in json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())["tokenizers"]
             if x["name"] == "gpt2")
    path = shared_path("tokenizers", e["file"])
    tok = load_format("tiktoken-ranks", path, {"pattern": e["pattern"]})
    enc = tiktoken.Encoding("gpt2", pat_str=e["pattern"], mergeable_ranks=load_tiktoken_bpe(str(path)),
                            special_tokens={})
    parts, direct = [], {}
    for lang in LANGS:
        rows = corpus_store.read_language(out, "flores200", lang)
        t, _ = cell_table(EncodeCell("gpt2id", lang, 0, 1, "flores200", versions[lang]["version"]), tok, rows)
        parts.append(t.append_column("lang", pa.array([lang] * t.num_rows)))
        direct[lang] = Counter(i for text in rows["text"].to_pylist() for i in enc.encode_ordinary(text))
    return out, pa.concat_tables(parts), direct, tok.vocab_size


def brute_needed(counter: Counter, share: float) -> int:
    counts = sorted(counter.values(), reverse=True)
    total, acc = sum(counts), 0
    for k, c in enumerate(counts, 1):
        acc += c
        if acc >= share * total:
            return k
    return len(counts)


def test_coverage_equals_brute_force(gpt2_freqs):
    out, freqs, direct, vocab = gpt2_freqs
    tables = coverage_tables(freqs, corpus="flores200", tokenizer_id="gpt2id", tokenizer_name="gpt2", vocab_size=vocab,
                             n_special=0, hidden_size=HIDDEN, splits=["dev", "devtest"],
                             language_sets={"latin": ["eng_Latn", "fra_Latn"]})
    for name, ds in (("coverage", VOCAB_COVERAGE), ("curve", COVERAGE_CURVE), ("overlap", VOCAB_OVERLAP),
                     ("union", VOCAB_UNION)):
        validate(tables[name], ds)
    cov = {r["lang"]: r for r in tables["coverage"].to_pylist()}
    for lang, c in direct.items():
        r = cov[lang]
        assert r["n_tokens"] == sum(c.values()) and r["vocab_used"] == len(c) == r["vocab_p100"]
        for col, share in (("vocab_p90", 0.9), ("vocab_p99", 0.99), ("vocab_p999", 0.999)):
            assert r[col] == brute_needed(c, share), (lang, col)
        assert r["params_saved_tied"] == (vocab - len(c)) * HIDDEN == r["params_saved_untied"] // 2
        curve = [x["coverage"] for x in tables["curve"].to_pylist() if x["lang"] == lang]
        assert len(curve) == len(c) and curve[-1] == pytest.approx(1.0)
        assert curve[9] == pytest.approx(sum(sorted(c.values(), reverse=True)[:10]) / sum(c.values()))
    for r in tables["overlap"].to_pylist():
        a, b = set(direct[r["lang_a"]]), set(direct[r["lang_b"]])
        assert r["n_shared"] == len(a & b) and r["jaccard"] == pytest.approx(len(a & b) / len(a | b))
        assert r["share_a_in_b"] == pytest.approx(len(a & b) / len(a))
        ca = direct[r["lang_a"]]
        assert r["token_share_a_in_b"] == pytest.approx(sum(ca[i] for i in a & b) / sum(ca.values()))
    assert len(tables["overlap"]) == len(LANGS) * (len(LANGS) - 1)
    union = {r["language_set"]: r for r in tables["union"].to_pylist()}
    assert union["latin"]["union_used"] == len(set(direct["eng_Latn"]) | set(direct["fra_Latn"]))
    assert union["all"]["union_used"] == len(set().union(*map(set, direct.values())))
    assert union["latin"]["union_p99"] <= union["latin"]["union_used"]


def test_specials_excluded_and_exact_thresholds():
    # lang x: ids 5 (count 6), 7 (3), 9 (1) and a special id 0 (count 100); 10 ids, 1 special
    freqs = pa.table({"lang": ["x"] * 4 + ["y"] * 2, "split": ["dev"] * 6, "token_id": [5, 7, 9, 0, 7, 8],
                      "count": [6, 3, 1, 100, 2, 2], "is_special": [False, False, False, True, False, False]})
    t = coverage_tables(freqs, corpus="c", tokenizer_id="t", tokenizer_name="t", vocab_size=10, n_special=1,
                        hidden_size=2, splits=["dev"])
    x = next(r for r in t["coverage"].to_pylist() if r["lang"] == "x")
    assert (x["n_tokens"], x["n_special_tokens"], x["vocab_used"]) == (10, 100, 3)
    assert (x["vocab_p90"], x["vocab_p99"], x["vocab_p100"]) == (2, 3, 3)  # 6+3 = 90% exactly
    assert x["vocab_used_share"] == pytest.approx(3 / 9) and x["rows_removable"] == 6
    xy = next(r for r in t["overlap"].to_pylist() if (r["lang_a"], r["lang_b"]) == ("x", "y"))
    assert (xy["n_shared"], xy["jaccard"], xy["share_a_in_b"], xy["token_share_a_in_b"]) == (1, 0.25, 1 / 3, 0.3)


def test_write_and_render_report(gpt2_freqs, tmp_path):
    out, freqs, direct, vocab = gpt2_freqs
    tables = coverage_tables(freqs, corpus="flores200", tokenizer_id="gpt2id", tokenizer_name="gpt2", vocab_size=vocab,
                             n_special=0, hidden_size=HIDDEN, splits=["dev", "devtest"])
    paths = write_coverage(tmp_path, "flores200", [tables])
    assert pq.read_table(paths["coverage"]).num_rows == len(LANGS)
    rendered = render_trim_report({k: pq.read_table(v) for k, v in paths.items()}, tmp_path / "report")
    md = rendered["markdown"].read_text()
    html = rendered["html"].read_text()
    for lang in LANGS:
        assert f"| {lang} " in md and lang in html
    for stem in ("coverage_curves", "vocab_used", "overlap_jaccard"):
        assert rendered[f"{stem}_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count("data:image/png;base64,") == 3
