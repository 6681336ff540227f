"""Token-premium job and report on counts from real tokenizers over real FLORES sentences.

The counts are written here with pyarrow in the encode job's layout (tests do not depend
on the encode job): gpt2 (tiktoken) on every language, claude-legacy (HF tokenizers)
missing one language (a failed cell), cl100k_base missing the reference language.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import shutil
import time
from html.parser import HTMLParser

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.premium import (
    bootstrap_weights,
    compute_premium,
    main,
    premium_matrix,
    write_premium,
)
from jobs.reports.premium import render_premium_report
from jobs.store.atomic import write_parquet_atomic
from jobs.store.layout import cell_file, premium_file
from schemas import (
    CORPUS_COUNTS,
    PREMIUM,
    TOKEN_COUNTS,
    TOKENIZERS,
    check_schema,
    conform,
    validate,
)
from schemas.errors import ConfigError
from schemas.languages import script_of, word_segmentation

pytestmark = pytest.mark.shared

CORPUS = "flores200"
REF = "eng_Latn"
LANGS = ["eng_Latn", "fra_Latn", "zho_Hans", "hin_Deva", "amh_Ethi", "shn_Mymr"]
PER_SPLIT = 60  # sentences from each of dev and devtest: sentence ids collide across splits on purpose
B = 400
SEED = 7
TOKENIZERS_USED = {"gpt2": None, "claude-legacy": "amh_Ethi", "cl100k_base": REF}  # name -> language left out


def tid(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


# -- real tokenizers and an independent counter ------------------------------------------------
def _tiktoken(name: str):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    manifest = json.loads(shared_path("tokenizers", "MANIFEST.json").read_text())
    entry = next(t for t in manifest["tokenizers"] if t["name"] == name)
    enc = tiktoken.Encoding(name, pat_str=entry["pattern"],
                            mergeable_ranks=load_tiktoken_bpe(str(shared_path("tokenizers", entry["file"]))),
                            special_tokens={})

    def encode(text):
        ids = enc.encode_ordinary(text)
        return ids, enc.decode_with_offsets(ids)[1]
    return encode


def _hf(file: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(shared_path("tokenizers", file)))

    def encode(text):
        e = tok.encode(text, add_special_tokens=False)
        return e.ids, [o[0] for o in e.offsets]
    return encode


def count_sentence(encode, text: str, segmentation: str) -> dict:
    ids, starts = encode(text)
    spans = ([(i, i + 1) for i, c in enumerate(text) if not c.isspace()] if segmentation == "character"
             else [m.span() for m in re.finditer(r"\S+", text)])
    starts = sorted(starts)
    continued = 0
    for a, b in spans:  # tokens starting inside the word, plus one covering its start from before
        k = bisect.bisect_left(starts, b) - bisect.bisect_left(starts, a) + (a not in starts)
        continued += k >= 2
    return {"n_tokens": len(ids), "n_unk": 0, "n_bytes": len(text.encode()), "n_chars": len(text),
            "n_words": len(spans), "n_continued_words": continued, "word_segmentation": segmentation}


@pytest.fixture(scope="module")
def sentences(flores_parquet):
    t = pq.read_table(flores_parquet, columns=["lang", "split", "sentence_id", "text"],
                      filters=[("lang", "in", LANGS), ("sentence_id", "<", PER_SPLIT)])
    t = t.sort_by([("lang", "ascending"), ("split", "ascending"), ("sentence_id", "ascending")])
    return {lang: t.filter(pc.equal(t["lang"], lang)) for lang in LANGS}


@pytest.fixture(scope="module")
def raw_counts(sentences):
    """name -> lang -> per-sentence counts by direct encoding, with the texts and the encoder."""
    encoders = {"gpt2": _tiktoken("gpt2"), "cl100k_base": _tiktoken("cl100k_base"),
                "claude-legacy": _hf("claude_legacy.tokenizer.json")}
    raw = {}
    for name, enc in encoders.items():
        for lang, rows in sentences.items():
            seg = word_segmentation(script_of(lang))
            texts = rows["text"].to_pylist()
            per = [count_sentence(enc, x, seg) for x in texts]
            raw.setdefault(name, {})[lang] = {"split": rows["split"].to_pylist(),
                                              "sentence_id": rows["sentence_id"].to_pylist(), "rows": per,
                                              "texts": texts, "encode": enc}
    return raw


def write_dataset(out, raw, n_per_split=PER_SPLIT, names=TOKENIZERS_USED):
    """token_counts/corpus_counts cell files in the encode job's layout, plus a registry table."""
    for name, skip in names.items():
        for lang, d in raw[name].items():
            if lang == skip:
                continue
            keep = [i for i, s in enumerate(d["sentence_id"]) if s < n_per_split]
            rows = [{**d["rows"][i], "split": d["split"][i], "sentence_id": d["sentence_id"][i]} for i in keep]
            version = f"v-{lang}"
            base = {"corpus": CORPUS, "corpus_version": version, "tokenizer_id": tid(name)}
            t = conform(pa.Table.from_pylist([{**base, **r} for r in rows]), TOKEN_COUNTS, files=True)
            write_parquet_atomic(t, cell_file(out, "token_counts", lang, tid(name), CORPUS, version))
            texts = [d["texts"][i] for i in keep]
            joined = " ".join(texts)
            cc = {**base, "n_sentences": len(rows), "n_tokens": len(d["encode"](joined)[0]),
                  "n_tokens_sentence_sum": sum(r["n_tokens"] for r in rows),
                  "n_bytes": len(joined.encode()), "n_chars": len(joined)}
            write_parquet_atomic(conform(pa.Table.from_pylist([cc]), CORPUS_COUNTS, files=True),
                                 cell_file(out, "corpus_counts", lang, tid(name), CORPUS, version))
    reg = [{"tokenizer_id": tid(n), "name": n, "format": "test", "artifact_uri": n, "sha256": tid(n)} for n in names]
    write_parquet_atomic(conform(pa.Table.from_pylist(reg), TOKENIZERS), out / "registry" / "tokenizers.parquet")
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, raw_counts):
    return write_dataset(tmp_path_factory.mktemp("premium"), raw_counts)


@pytest.fixture(scope="module")
def written(spark, dataset):
    t0 = time.perf_counter()
    table, path = write_premium(spark, dataset, CORPUS, reference_lang=REF, n_bootstrap=B, seed=SEED)
    print(f"write_premium: {time.perf_counter() - t0:.1f}s")
    return table, path


def cell(table, name, lang) -> dict:
    rows = [r for r in table.to_pylist() if r["tokenizer_id"] == tid(name) and r["lang"] == lang]
    assert len(rows) == 1, (name, lang, len(rows))
    return rows[0]


# -- the job -----------------------------------------------------------------------------------
def test_grid_names_and_schema(written):
    table, path = written
    assert path == premium_file(path.parents[2], CORPUS, REF)
    assert path.name == f"reference={REF}.parquet" and path.parent.name == f"corpus={CORPUS}"
    check_schema(pq.read_schema(path), PREMIUM, files=True)
    on_disk = pq.read_table(path)
    validate(on_disk, PREMIUM)
    assert on_disk.equals(table)
    assert table.num_rows == len(TOKENIZERS_USED) * len(LANGS)  # full grid, missing cells as null rows
    assert set(table["tokenizer_name"].to_pylist()) == set(TOKENIZERS_USED)
    assert set(table["reference_lang"].to_pylist()) == {REF}
    assert set(table["n_bootstrap"].to_pylist()) == {B}


def test_premium_ctc_exact_and_mean_of_ratios(written, raw_counts):
    table, _ = written
    for name in ("gpt2", "claude-legacy"):
        d = raw_counts[name]
        ref_ctc = len(d[REF]["encode"](" ".join(d[REF]["texts"]))[0])
        ref_n = np.array([r["n_tokens"] for r in d[REF]["rows"]], dtype=np.float64)
        for lang in LANGS:
            if lang == TOKENIZERS_USED[name]:
                continue
            row = cell(table, name, lang)
            ctc = len(d[lang]["encode"](" ".join(d[lang]["texts"]))[0])
            assert row["ctc"] == ctc and row["ctc_reference"] == ref_ctc
            assert row["premium_ctc"] == np.float64(ctc) / np.float64(ref_ctc)  # exactly
            n = np.array([r["n_tokens"] for r in d[lang]["rows"]], dtype=np.float64)
            assert row["premium_mean"] == pytest.approx(np.mean(n / ref_n), rel=1e-12)
            assert row["n_sentences"] == 2 * PER_SPLIT and row["n_reference_zero"] == 0
            tot = {k: sum(r[k] for r in d[lang]["rows"]) for k in d[lang]["rows"][0] if k.startswith("n_")}
            assert row["bytes_per_token"] == pytest.approx(tot["n_bytes"] / tot["n_tokens"])
            assert row["chars_per_token"] == pytest.approx(tot["n_chars"] / tot["n_tokens"])
            assert row["fertility"] == pytest.approx(tot["n_tokens"] / tot["n_words"])
            assert row["continued_word_rate"] == pytest.approx(tot["n_continued_words"] / tot["n_words"])
            assert row["unk_rate"] == 0.0
            assert row["word_segmentation"] == word_segmentation(script_of(lang))


def test_reference_is_one_and_intervals_contain_estimates(written):
    table, _ = written
    for name in ("gpt2", "claude-legacy"):
        ref = cell(table, name, REF)
        for k in ("premium_ctc", "premium_mean"):
            assert ref[k] == 1.0 and ref[f"{k}_lo"] <= 1.0 <= ref[f"{k}_hi"]
        for lang in LANGS:
            row = cell(table, name, lang)
            if row["premium_ctc"] is None:
                continue
            for k in ("premium_ctc", "premium_mean"):
                assert row[f"{k}_lo"] <= row[k] <= row[f"{k}_hi"], (name, lang, k)
                if lang != REF:
                    assert row[f"{k}_lo"] < row[f"{k}_hi"]
    # the Shan/Latin gap is large and certain for a byte-level English-centric BPE
    assert cell(table, "gpt2", "shn_Mymr")["premium_ctc_lo"] > 3


def test_intervals_are_the_paired_bootstrap(written, raw_counts):
    """The same sentence draws for every language and tokenizer, recomputed directly."""
    table, _ = written
    w = bootstrap_weights(CORPUS, 2 * PER_SPLIT, B, SEED)
    assert w.shape == (B, 2 * PER_SPLIT) and (w.sum(axis=1) == 2 * PER_SPLIT).all()
    for name in ("gpt2", "claude-legacy"):
        d = raw_counts[name]
        ref_n = np.array([r["n_tokens"] for r in d[REF]["rows"]], dtype=np.float64)
        for lang in ("fra_Latn", "shn_Mymr"):
            n = np.array([r["n_tokens"] for r in d[lang]["rows"]], dtype=np.float64)
            row = cell(table, name, lang)
            lo, hi = np.percentile((w @ (n / ref_n)) / w.sum(axis=1), [2.5, 97.5])
            assert (row["premium_mean_lo"], row["premium_mean_hi"]) == pytest.approx((lo, hi), rel=1e-9)
            scale = row["premium_ctc"] / (n.sum() / ref_n.sum())
            lo, hi = np.percentile((w @ n) / (w @ ref_n), [2.5, 97.5]) * scale
            assert (row["premium_ctc_lo"], row["premium_ctc_hi"]) == pytest.approx((lo, hi), rel=1e-9)


def test_missing_cells_are_null_rows(written):
    table, _ = written
    failed = cell(table, "claude-legacy", "amh_Ethi")
    assert failed["n_sentences"] == 0 and failed["ctc"] is None
    assert all(failed[k] is None for k in ("premium_ctc", "premium_ctc_lo", "premium_mean", "bytes_per_token"))
    for lang in set(LANGS) - {"amh_Ethi"}:
        assert cell(table, "claude-legacy", lang)["premium_ctc"] is not None
    assert cell(table, "gpt2", "amh_Ethi")["premium_ctc"] is not None
    # reference failed for cl100k_base: premiums null, the language's own statistics kept
    for lang in LANGS:
        row = cell(table, "cl100k_base", lang)
        assert row["premium_ctc"] is None and row["premium_mean"] is None and row["premium_mean_lo"] is None
        if lang != REF:
            assert row["bytes_per_token"] > 0 and row["ctc"] > 0 and row["ctc_reference"] is None


def test_intervals_shrink_with_more_sentences(spark, tmp_path, raw_counts, written):
    small = write_dataset(tmp_path / "small", raw_counts, n_per_split=10, names={"gpt2": None})
    t_small = compute_premium(spark, small, CORPUS, REF, n_bootstrap=B, seed=SEED, tokenizer_names={})
    assert t_small.num_rows == len(LANGS) and t_small["tokenizer_name"].null_count == len(LANGS)
    t_big, _ = written
    for lang in set(LANGS) - {REF}:
        s, b = cell(t_small, "gpt2", lang), cell(t_big, "gpt2", lang)
        assert s["n_sentences"] == 20 and b["n_sentences"] == 2 * PER_SPLIT
        for k in ("premium_ctc", "premium_mean"):
            assert b[f"{k}_hi"] - b[f"{k}_lo"] < s[f"{k}_hi"] - s[f"{k}_lo"], (lang, k)


def test_config_errors(spark, tmp_path, dataset, raw_counts):
    with pytest.raises(ConfigError, match=r"'yor_Latn'.*languages present \(6: amh_Ethi, eng_Latn, fra_Latn"):
        compute_premium(spark, dataset, CORPUS, reference_lang="yor_Latn", n_bootstrap=10)
    with pytest.raises(ConfigError, match="not an iso639_3_Script"):
        compute_premium(spark, dataset, CORPUS, reference_lang="english")
    with pytest.raises(ConfigError, match="encode"):
        compute_premium(spark, tmp_path / "empty", CORPUS)
    # stale cell files of an earlier corpus version (other counts) are refused unless versions are given
    stale = tmp_path / "stale"
    shutil.copytree(dataset, stale)
    for ds in ("corpus_counts", "token_counts"):
        old = pq.read_table(cell_file(stale, ds, "fra_Latn", tid("gpt2"), CORPUS, "v-fra_Latn"))
        old = old.set_column(old.schema.get_field_index("corpus_version"), "corpus_version",
                             pa.array(["old"] * old.num_rows))
        i = old.schema.get_field_index("n_tokens")
        old = old.set_column(i, old.schema.field(i), pc.add(pc.multiply(old["n_tokens"], 2), 1).cast(old.schema.field(i).type))
        write_parquet_atomic(old, cell_file(stale, ds, "fra_Latn", tid("gpt2"), CORPUS, "old"))
    with pytest.raises(ConfigError, match="several corpus versions.*fra_Latn"):
        compute_premium(spark, stale, CORPUS, n_bootstrap=10)
    t = compute_premium(spark, stale, CORPUS, n_bootstrap=0, tokenizer_ids=[tid("gpt2"), "0" * 16],
                        corpus_versions={lang: f"v-{lang}" for lang in LANGS}, tokenizer_names={})
    assert t["premium_ctc_lo"].null_count == t.num_rows
    # the current version's premium exactly, from the library's own counts
    d = raw_counts["gpt2"]
    ctc, ref_ctc = (len(d[lang]["encode"](" ".join(d[lang]["texts"]))[0]) for lang in ("fra_Latn", REF))
    n, ref_n = (np.array([r["n_tokens"] for r in d[lang]["rows"]], dtype=np.float64) for lang in ("fra_Latn", REF))
    row = cell(t, "gpt2", "fra_Latn")
    assert (row["ctc"], row["ctc_reference"], row["n_sentences"]) == (ctc, ref_ctc, 2 * PER_SPLIT)
    assert row["premium_ctc"] == np.float64(ctc) / np.float64(ref_ctc)
    assert row["premium_mean"] == pytest.approx(np.mean(n / ref_n), rel=1e-12)
    assert row["bytes_per_token"] == pytest.approx(sum(r["n_bytes"] for r in d["fra_Latn"]["rows"]) / n.sum())
    # a requested tokenizer whose every cell failed still has (null) rows
    failed = [r for r in t.to_pylist() if r["tokenizer_id"] == "0" * 16]
    assert len(failed) == len(LANGS) and all(r["premium_ctc"] is None and r["n_sentences"] == 0 for r in failed)


def test_main_other_reference_with_report(spark, dataset, capsys):
    argv = ["--out", str(dataset), "--corpus", CORPUS, "--bootstrap", "50", "--tokenizers", "gpt2,claude-legacy"]
    assert main([*argv, "--reference", "fra_Latn", "--report"]) == 0
    t = pq.read_table(premium_file(dataset, CORPUS, "fra_Latn"))
    assert t.num_rows == 2 * len(LANGS) and set(t["reference_lang"].to_pylist()) == {"fra_Latn"}
    assert set(t["tokenizer_name"].to_pylist()) == {"gpt2", "claude-legacy"}
    assert cell(t, "gpt2", "fra_Latn")["premium_ctc"] == 1.0 and cell(t, "gpt2", REF)["premium_ctc"] < 1
    assert (dataset / "reports" / f"premium-{CORPUS}" / "index.html").exists()
    capsys.readouterr()
    assert main([*argv[:-1], "nope"]) == 2 and "unknown tokenizer 'nope'" in capsys.readouterr().err


# -- numpy core --------------------------------------------------------------------------------
def test_premium_matrix_skips_empty_reference_sentences():
    ref = np.array([2.0, 0.0, 4.0, np.nan])
    counts = np.array([[2.0, 0.0, 4.0, np.nan], [4.0, 3.0, np.nan, 5.0], [np.nan] * 4])
    res = premium_matrix(counts, ref, bootstrap_weights("c", 4, 50))
    assert res["n_sentences"].tolist() == [3, 2, 0] and res["n_reference_zero"].tolist() == [1, 1, 0]
    assert res["premium_mean"][:2].tolist() == [1.0, 2.0] and np.isnan(res["premium_mean"][2])
    assert res["sum_ratio"][:2].tolist() == [1.0, 3.5] and np.isnan(res["sum_ratio_lo"][2])
    assert res["premium_mean_lo"][0] == res["premium_mean_hi"][0] == 1.0
    assert (bootstrap_weights("c", 4, 50, 1) != bootstrap_weights("c", 4, 50, 0)).any()


# -- report ------------------------------------------------------------------------------------
class _HTML(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self._rows = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        elif tag == "tbody":
            self._rows = 0
        elif tag == "tr" and self._rows is not None:
            self._rows += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.tables.append(self._rows)
            self._rows = None


def _check_report(paths, n_tokenizers, n_top, n_missing_rows):
    html = paths["html"].read_text(encoding="utf-8")
    p = _HTML()
    p.feed(html)
    assert len(p.imgs) == 4 and all(i["src"].startswith("data:image/png;base64,") for i in p.imgs)
    assert p.tables == [n_tokenizers, n_top] + ([n_missing_rows] if n_missing_rows else [])
    for key, path in paths.items():
        assert path.exists() and path.stat().st_size > 0, key
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["premium_by_language_svg"].read_text()[:200].lstrip().startswith("<?xml")
    md = paths["markdown"].read_text(encoding="utf-8")
    assert md.startswith("# ") and "premium_by_language.png" in md
    return md


def test_report_from_job_output(written, tmp_path):
    table, _ = written
    paths = render_premium_report(table, tmp_path / "report", title="Token premium test")
    md = _check_report(paths, n_tokenizers=3, n_top=len(LANGS) - 1, n_missing_rows=2)
    assert "shn_Mymr" in md and "gpt2" in md and "claude-legacy" in md
    for line in md.splitlines():  # terminal-readable: no embedded data, bounded table lines
        assert "base64" not in line and len(line) < 200


def test_report_scale_204_languages_10_tokenizers(tmp_path):
    rng = np.random.default_rng(0)
    langs = [f"{chr(97 + i // 26 % 26)}{chr(97 + i % 26)}a_Latn" for i in range(204)]
    base = np.exp(rng.normal(0.4, 0.5, 204))
    rows = []
    for t in range(10):
        for i, lang in enumerate(langs):
            p = 1.0 if lang == "aaa_Latn" else base[i] * np.exp(rng.normal(0, 0.2))
            rows.append({"corpus": CORPUS, "tokenizer_id": f"{t:016x}", "tokenizer_name": f"tok-{t}", "lang": lang,
                         "reference_lang": "aaa_Latn", "n_sentences": 1012, "n_reference_zero": 0,
                         "ctc": int(1000 * p), "ctc_reference": 1000, "premium_ctc": p, "premium_ctc_lo": p * 0.97,
                         "premium_ctc_hi": p * 1.03, "premium_mean": p * 1.02, "premium_mean_lo": p * 0.99,
                         "premium_mean_hi": p * 1.05, "bytes_per_token": 4 / p * rng.uniform(0.5, 2),
                         "fertility": 1.3 * p, "n_bootstrap": 1000})
    table = conform(pa.Table.from_pylist(rows), PREMIUM)
    paths = render_premium_report(table, tmp_path / "big", title="scale")
    _check_report(paths, n_tokenizers=10, n_top=20, n_missing_rows=0)


def test_report_flags_premiums_understated_by_unknown_tokens(tmp_path):
    """A WordPiece tokenizer that maps whole words to [UNK] looks cheap; the report must say why."""
    langs = ["eng_Latn", "tha_Thai", "amh_Ethi", "fra_Latn"]
    rows = []
    for name, unk, prem in (("wp", [0.0, 0.40, 0.009, 0.0], [1, 0.3, 1.2, 1.1]),
                            ("bpe", [0.0, 0.0, 0.0, 0.0], [1, 3.0, 4.0, 1.2])):
        for lang, u, p in zip(langs, unk, prem, strict=True):
            rows.append({"corpus": CORPUS, "reference_lang": REF, "tokenizer_id": tid(name), "tokenizer_name": name,
                         "lang": lang, "premium_ctc": float(p), "premium_mean": float(p), "unk_rate": u})
    md = render_premium_report(conform(pa.Table.from_pylist(rows), PREMIUM), tmp_path)["markdown"].read_text()
    section = md.split("## Premiums understated by unknown tokens")[1].split("\n## ")[0]
    flagged = [line for line in section.splitlines() if line.startswith("| wp") or line.startswith("| bpe")]
    assert flagged == [next(line for line in section.splitlines() if line.startswith("| wp"))]
    assert "tha_Thai (40%, 0.30)" in flagged[0] and "amh_Ethi" not in flagged[0]  # 0.9% is under the 1% bar
    assert [c.strip() for c in flagged[0].split("|")][2] == "1"  # one wp cell over the bar
