"""Ingest: readers, validation and quarantine, atomic idempotent writes, on real data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import shared_path

from jobs.corpus import readers
from jobs.ingest import REASONS, check_config, ingest, main, validate_corpus
from jobs.store import corpus_store, layout
from schemas import CORPUS, REJECTS, check_schema
from schemas.errors import ConfigError

FLORES5 = ["eng_Latn", "fra_Latn", "zho_Hans", "arb_Arab", "hin_Deva"]


def flores_lines(lang: str, n: int = 20) -> list[str]:
    t = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["text"],
                      filters=[("lang", "=", lang), ("split", "=", "dev")])
    return t["text"].to_pylist()[:n]


def write_lines(path: Path, lines: list[bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))
    return path


def rejects_of(out, corpus) -> list[dict]:
    path = layout.rejects_file(out, corpus)
    check_schema(pq.read_schema(path), REJECTS, files=True)
    return pq.read_table(path).to_pylist()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corpus_files(out, corpus) -> dict[str, str]:
    root = layout.corpus_dir(out, corpus)
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def assert_no_row_lost(s):
    assert s.rows_in == s.rows_kept + s.rows_rejected
    assert s.rows_rejected == sum(s.rejects_by_reason.values())
    assert s.rows_kept == sum(s.n_sentences.values())


# -- FLORES-200 Parquet --------------------------------------------------------------------------
def test_flores_parquet_subset(spark, flores_parquet, tmp_path):
    out = tmp_path / "out"
    s = ingest(spark, "flores-parquet", flores_parquet, "flores200", out, languages=FLORES5)
    assert s.languages == sorted(FLORES5)
    assert s.rows_in == s.rows_kept == 5 * (997 + 1012) and s.rows_rejected == 0
    assert s.n_sentences == {lang: 2009 for lang in FLORES5}
    assert_no_row_lost(s)

    for lang in FLORES5:
        f = layout.language_file(out, "flores200", lang)
        check_schema(pq.read_schema(f), CORPUS, files=True)
        t = corpus_store.read_language(out, "flores200", lang)
        assert t.num_rows == corpus_store.language_size(out, "flores200", lang) == 2009
        splits = t["split"].to_pylist()
        assert splits.count("dev") == 997 and splits.count("devtest") == 1012
        # sorted by (split, sentence_id) and aligned: ids 0..996 and 0..1011
        assert t["sentence_id"].to_pylist() == list(range(997)) + list(range(1012))
        assert set(t["script"].to_pylist()) == {lang.split("_")[1]}
        texts = t["text"].to_pylist()
        assert t["n_chars"].to_pylist() == [len(x) for x in texts]
        assert t["n_bytes"].to_pylist() == [len(x.encode()) for x in texts]
        assert corpus_store.file_version(f) == s.corpus_versions[lang] == corpus_store.corpus_version(t)
    # text unchanged from the source
    src = pq.read_table(flores_parquet, filters=[("lang", "=", "zho_Hans"), ("split", "=", "devtest")])
    got = corpus_store.read_language(out, "flores200", "zho_Hans").filter(
        pa.compute.equal(corpus_store.read_language(out, "flores200", "zho_Hans")["split"], "devtest"))
    assert got["text"].to_pylist() == src.sort_by("sentence_id")["text"].to_pylist()

    # the whole dataset, read with hive partitioning, has the CORPUS schema
    full = ds.dataset(out / "corpus", format="parquet", partitioning="hive").to_table()
    full = full.select(CORPUS.schema.names).cast(pa.schema([(f.name, f.type) for f in CORPUS.schema]))
    check_schema(full.schema, CORPUS, files=False)
    assert full.num_rows == s.rows_kept
    assert corpus_store.read_corpus_versions(out, "flores200") == s.corpus_versions
    assert rejects_of(out, "flores200") == []  # an empty rejects file, so a re-run clears old rejects


# -- FLORES-style folder with every kind of bad row ---------------------------------------------
@pytest.fixture
def bad_folder(tmp_path) -> Path:
    """dev/{lang}.dev files exercising each reject reason (see test_flores_folder_quarantine)."""
    root = tmp_path / "flores_bad"
    eng, fra, deu, spa = (flores_lines(x) for x in ("eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn"))
    fra_bytes: list[bytes | str] = list(fra)
    fra_bytes[3] = b"Caf" + b"\xe9 au lait \xff\xfe"  # Latin-1 bytes: invalid UTF-8
    deu[5] = "   "  # whitespace only
    write_lines(root / "dev" / "eng_Latn.dev", eng)
    write_lines(root / "dev" / "fra_Latn.dev", fra_bytes)
    write_lines(root / "dev" / "fra_Latn_FR.dev", [fra[0], "Une autre traduction.", fra[2]])  # same lang again
    write_lines(root / "dev" / "deu_Latn.dev", deu)
    write_lines(root / "dev" / "spa_Latn.dev", spa[:10])  # half the sentences
    write_lines(root / "dev" / "klingon.dev", eng)  # not a language code
    (root / "README.md").write_text("not a corpus file")
    return root


def test_flores_folder_quarantine(spark, bad_folder, tmp_path):
    out = tmp_path / "out"
    s = ingest(spark, "flores-folder", bad_folder, "bad", out)
    assert_no_row_lost(s)
    assert s.rows_in == 20 + 20 + 3 + 20 + 10 + 20
    assert s.rejects_by_reason == {"invalid_utf8": 1, "unknown_language": 20, "empty_text": 1, "duplicate_id": 3,
                                   "language_incomplete": 10, "missing_in_languages": 4}
    # eng lacks nothing, fra lacks 3 (invalid), deu lacks 5 (empty): ids 3 and 5 go everywhere
    assert s.languages == ["deu_Latn", "eng_Latn", "fra_Latn"] and s.languages_quarantined == ["spa_Latn"]
    assert s.n_sentences == {"deu_Latn": 18, "eng_Latn": 18, "fra_Latn": 18}
    ids = {lang: corpus_store.read_language(out, "bad", lang)["sentence_id"].to_pylist() for lang in s.languages}
    assert all(v == [i for i in range(20) if i not in (3, 5)] for v in ids.values())

    rej = rejects_of(out, "bad")
    assert len(rej) == s.rows_rejected
    by = {}
    for r in rej:
        by.setdefault(r["reason"], []).append(r)
    d = bad_folder / "dev"
    [bad] = by["invalid_utf8"]
    assert (bad["source"], bad["row"], bad["lang"], bad["sentence_id"]) == (str(d / "fra_Latn.dev"), 3, "fra_Latn", 3)
    assert bad["text"] == "Caf\\xe9 au lait \\xff\\xfe" and "byte 3" in bad["detail"]
    [empty] = by["empty_text"]
    assert (empty["source"], empty["row"], empty["lang"]) == (str(d / "deu_Latn.dev"), 5, "deu_Latn")
    dups = sorted(by["duplicate_id"], key=lambda r: r["row"])
    assert [(r["source"], r["row"]) for r in dups] == [(str(d / "fra_Latn_FR.dev"), i) for i in range(3)]
    assert "same text" in dups[0]["detail"] and "different text" in dups[1]["detail"]
    assert str(d / "fra_Latn.dev") in dups[0]["detail"]
    assert {(r["lang"], r["source"]) for r in by["language_incomplete"]} == {("spa_Latn", str(d / "spa_Latn.dev"))}
    assert "0.5000" in by["language_incomplete"][0]["detail"] and "dev 10/20" in by["language_incomplete"][0]["detail"]
    assert {(r["lang"], r["row"]) for r in by["unknown_language"]} == {("klingon", i) for i in range(20)}
    assert "klingon" in by["unknown_language"][0]["detail"]
    missing = {(r["lang"], r["sentence_id"]): r["detail"] for r in by["missing_in_languages"]}
    assert set(missing) == {("eng_Latn", 3), ("eng_Latn", 5), ("deu_Latn", 3), ("fra_Latn", 5)}
    assert missing[("eng_Latn", 3)] == "missing in 1 of 3 languages: fra_Latn"
    assert missing[("eng_Latn", 5)] == "missing in 1 of 3 languages: deu_Latn"

    report = {r["lang"]: r for r in s.report}
    assert report["fra_Latn"]["n_rows_in"] == 23 and report["fra_Latn"]["duplicate_id"] == 3
    assert all(r["n_rows_in"] == r["n_kept"] + r["n_rejected"] == r["n_kept"] + sum(r[x] for x in REASONS)
               for r in s.report)


def test_lower_coverage_keeps_incomplete_language(spark, bad_folder, tmp_path):
    # spa covers 10 of 20 ids: with a 0.5 minimum it stays, and ids 10-19 are dropped everywhere
    # instead; validate_corpus is the same logic without writing
    raw = readers.read_flores_folder(spark, bad_folder, "bad", ["eng_Latn", "spa_Latn"])
    corpus, rejects, report = validate_corpus(raw, min_language_coverage=0.5)
    kept = corpus.groupBy("lang").count().collect()
    assert {r["lang"]: r["count"] for r in kept} == {"eng_Latn": 10, "spa_Latn": 10}
    assert {r["reason"] for r in rejects.collect()} == {"missing_in_languages"}
    assert {r["lang"]: r["n_rows_in"] for r in report.collect()} == {"eng_Latn": 20, "spa_Latn": 10}


# -- idempotent re-ingest, versions, stale languages (text files, via the CLI) -----------------
def test_reingest_idempotent_and_versioned(spark, tmp_path, monkeypatch):
    src, out = tmp_path / "txt", tmp_path / "out"
    langs = {"eng_Latn": "en", "fra_Latn": "fr", "deu_Latn": "de"}  # ISO 639-1 file names
    for lang, code in langs.items():
        write_lines(src / f"{code}.txt", flores_lines(lang, 12))
    argv = ["--source", "text", "--path", str(src), "--corpus", "txt", "--out", str(out)]
    assert main(argv) == 0
    first = corpus_files(out, "txt")
    versions = corpus_store.read_corpus_versions(out, "txt")
    assert sorted(versions) == sorted(langs)
    assert {corpus_store.language_size(out, "txt", x) for x in langs} == {12}

    assert main(argv) == 0  # same input: the same files, byte for byte, no duplicated rows
    assert corpus_files(out, "txt") == first
    assert not list(out.rglob(".*.tmp"))

    lines = flores_lines("fra_Latn", 12)
    lines[4] = lines[4] + " (révisé)"
    write_lines(src / "fr.txt", lines)
    (src / "de.txt").unlink()
    s = ingest(spark, "text", src, "txt", out)
    new = corpus_store.read_corpus_versions(out, "txt")
    assert sorted(new) == ["eng_Latn", "fra_Latn"] and s.removed_languages == ["deu_Latn"]
    assert new["eng_Latn"] == versions["eng_Latn"] and new["fra_Latn"] != versions["fra_Latn"]
    assert not layout.corpus_dir(out, "txt").joinpath("lang=deu_Latn").exists()
    assert corpus_store.read_language(out, "txt", "fra_Latn")["text"].to_pylist()[4].endswith("(révisé)")
    manifest = json.loads(layout.versions_file(out, "txt").read_text())
    assert manifest == {k: {"version": new[k], "n_sentences": 12} for k in new}



def test_unchanged_source_is_not_read_again(spark, tmp_path):
    """Same files and parameters: no Spark job, the previous summary; a touched file or
    --force ingests again."""
    import os

    src, out = tmp_path / "txt", tmp_path / "out"
    for lang, code in {"eng_Latn": "en", "fra_Latn": "fr"}.items():
        write_lines(src / f"{code}.txt", flores_lines(lang, 10))
    first = ingest(spark, "text", src, "txt", out)
    assert not first.skipped and first.rows_kept == 20
    sc = spark.sparkContext
    sc.setJobGroup("tokatlas-test-skip", "second identical ingest")
    try:
        again = ingest(spark, "text", src, "txt", out)
        assert sc.statusTracker().getJobIdsForGroup("tokatlas-test-skip") == []
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    assert again.skipped and again.fingerprint == first.fingerprint
    assert (again.rows_in, again.rows_kept, again.corpus_versions) == (first.rows_in, 20, first.corpus_versions)
    assert not ingest(spark, "text", src, "txt", out, languages=["eng_Latn"]).skipped  # other parameters
    assert not ingest(spark, "text", src, "txt", out).skipped  # back to both languages: ingested again
    assert ingest(spark, "text", src, "txt", out).skipped
    assert not ingest(spark, "text", src, "txt", out, force=True).skipped
    st = (src / "fr.txt").stat()
    os.utime(src / "fr.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = ingest(spark, "text", src, "txt", out)
    assert not touched.skipped and touched.corpus_versions == first.corpus_versions  # same text, same versions
    layout.language_file(out, "txt", "fra_Latn").unlink()  # outputs damaged: the record is not trusted
    assert not ingest(spark, "text", src, "txt", out).skipped
    assert corpus_store.language_size(out, "txt", "fra_Latn") == 10

# -- UDHR -------------------------------------------------------------------------------------
def test_udhr_variants(spark, tmp_path):
    path = shared_path("udhr", "udhr_articles.parquet")
    out = tmp_path / "out"
    s = ingest(spark, "udhr", path, "udhr", out)
    assert_no_row_lost(s)
    assert s.rows_in == pq.read_metadata(path).num_rows == 16308
    rej = rejects_of(out, "udhr")
    variants = [r for r in rej if r["reason"] == "duplicate_id" and "translation variant" in r["detail"]]
    # German has two complete translations (1901 and 1996 spelling): the smaller key is kept
    deu = {r["detail"] for r in variants if r["lang"] == "deu_Latn"}
    assert deu == {"translation variant 'deu_1996' of deu_Latn; variant 'deu_1901' (31 valid rows) is kept"}
    assert sum(r["lang"] == "deu_Latn" for r in variants) == 31
    # six Mandarin (Simplified) translations: five are quarantined, one kept
    assert len({r["detail"] for r in variants if r["lang"] == "cmn_Hans"}) == 5
    # 'und' (undetermined) is no language code
    assert {r["lang"] for r in rej if r["reason"] == "unknown_language"} >= {"und_Kore"}
    # translations with most articles missing are dropped whole; the rest is fully aligned
    assert "chv_Cyrl" in s.languages_quarantined
    assert len(s.languages) > 400
    assert len(set(s.n_sentences.values())) == 1
    ids = {tuple(corpus_store.read_language(out, "udhr", x)["sentence_id"].to_pylist())
           for x in ("eng_Latn", "deu_Latn", "cmn_Hans", "kor_Hang")}
    assert len(ids) == 1


# -- Django catalogs (the embedded default) ----------------------------------------------------
def test_django_default(spark, tmp_path):
    out = tmp_path / "out"
    s = ingest(spark, "django", None, None, out)
    assert s.corpus == "django" and s.rows_rejected == 0
    assert_no_row_lost(s)
    assert len(s.languages) >= 30 and "eng_Latn" in s.languages
    assert {"por_Latn", "spa_Latn", "srp_Cyrl", "srp_Latn", "zho_Hans", "zho_Hant"} <= set(s.languages)
    ids = {x: corpus_store.read_language(out, "django", x)["sentence_id"].to_pylist() for x in s.languages}
    n = len(ids["eng_Latn"])
    assert n >= 300 and all(v == list(range(n)) for v in ids.values())
    # English is the msgid, other languages the translations, unchanged
    eng = corpus_store.read_language(out, "django", "eng_Latn")["text"].to_pylist()
    deu = corpus_store.read_language(out, "django", "deu_Latn")["text"].to_pylist()
    assert "This field is required." in eng
    assert deu[eng.index("This field is required.")] == "Dieses Feld ist zwingend erforderlich."


def test_django_builder_choices():
    built = readers.build_django_corpus()
    assert built.n_sentences == built.table.num_rows // len(built.languages)
    assert built.skipped_variants["pt_BR"] == "pt" and built.skipped_variants["es_AR"] == "es"
    assert built.locales["por_Latn"] == "pt" and built.locales["eng_Latn"] == "msgid"
    assert all(built.coverage[built.locales[x]] >= 0.95 for x in built.languages if x != "eng_Latn")
    # plural and empty entries are not sentences; nothing is stripped
    assert all(t for t in built.table["text"].to_pylist())
    # asking for languages selects exactly those, aligned over them only (more sentences)
    few = readers.build_django_corpus(languages=["eng_Latn", "deu_Latn", "fra_Latn"])
    assert few.languages == ["deu_Latn", "eng_Latn", "fra_Latn"] and few.n_sentences > built.n_sentences


# -- generic JSONL / Parquet / text -----------------------------------------------------------
def test_jsonl_bad_records(spark, tmp_path):
    src = tmp_path / "c.jsonl"
    eng, deu = flores_lines("eng_Latn", 4), flores_lines("deu_Latn", 4)
    good = [json.dumps({"language": lang, "sid": i, "sentence": t}, ensure_ascii=False)
            for lang, texts in (("en", eng), ("de", deu)) for i, t in enumerate(texts)]
    lines = good + ['{"language": "de", "sid": 9, "sentence": ', '["not", "an", "object"]',
                    json.dumps({"language": "de", "sentence": "no id"}),
                    json.dumps({"language": "de", "sid": "x7", "sentence": "bad id"}),
                    b'{"language": "de", "sid": 11, "sentence": "\xc3\x28"}', ""]
    write_lines(src, lines)
    out = tmp_path / "out"
    s = ingest(spark, "jsonl", src, "j", out, lang_col="language", id_col="sid", text_col="sentence")
    assert_no_row_lost(s)
    assert s.n_sentences == {"deu_Latn": 4, "eng_Latn": 4}
    assert s.rejects_by_reason == {"bad_record": 5, "invalid_utf8": 1}
    rej = {r["row"]: r for r in rejects_of(out, "j")}
    assert sorted(rej) == list(range(8, 14))
    assert "invalid JSON" in rej[8]["detail"] and "not an object" in rej[9]["detail"]
    assert "missing field(s) sid" in rej[10]["detail"] and "'x7' is not an integer" in rej[11]["detail"]
    assert rej[12]["reason"] == "invalid_utf8" and rej[13]["detail"].startswith("blank line")
    with pytest.raises(ConfigError, match="fra_Latn"):  # checked after the scan for JSONL
        ingest(spark, "jsonl", src, "j", out, ["eng_Latn", "fra_Latn"], lang_col="language", id_col="sid",
               text_col="sentence")


def test_generic_parquet_reader(spark, tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"language": ["pt_BR", "pt_BR", "sr-Latn", "xx"], "sid": ["0", "1", "0", "q"],
                             "sentence": ["Olá", None, "Zdravo", "?"]}), path)
    rows = readers.read_parquet_table(spark, path, "g", lang_col="language", id_col="sid",
                                      text_col="sentence").orderBy("row").collect()
    assert [(r["lang_raw"], r["sentence_id"], r["text"], r["row"], r["source"]) for r in rows] == [
        ("pt_BR", 0, "Olá", 0, str(path)), ("pt_BR", 1, None, 1, str(path)), ("sr-Latn", 0, "Zdravo", 2, str(path)),
        ("xx", None, "?", 3, str(path))]
    assert rows[3]["error_reason"] == "bad_record" and rows[0]["split"] == "all"


# -- FLORES+ parquet layout (no network) --------------------------------------------------------
def test_flores_plus_local_layout(spark, tmp_path, monkeypatch):
    root = tmp_path / "flores_plus"
    for split, n in (("dev", 3), ("devtest", 2)):
        for lang in ("eng_Latn", "fra_Latn"):
            texts = flores_lines(lang, n)
            iso, script = lang.split("_")
            (root / split).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({
                "id": pa.array(range(1, n + 1), pa.int64()), "iso_639_3": [iso] * n, "iso_15924": [script] * n,
                "glottocode": ["stan1293" if iso == "eng" else "stan1290"] * n, "text": texts,
                "url": ["https://example.org"] * n, "domain": ["wikinews"] * n, "topic": ["t"] * n,
                "has_image": [False] * n, "has_hyperlink": [False] * n, "last_updated": ["2.0"] * n,
            }), root / split / f"{lang}.parquet")

    def no_network(*a, **k):
        raise AssertionError("fetch_flores_plus must not be called when the files are local")

    monkeypatch.setattr(readers, "fetch_flores_plus", no_network)
    raw = readers.read_flores_plus(spark, root).orderBy("source", "row").collect()
    assert [(r["lang_raw"], r["split"], r["sentence_id"], r["variant"]) for r in raw[:3]] == [
        ("eng_Latn", "dev", 0, "eng_Latn"), ("eng_Latn", "dev", 1, "eng_Latn"), ("eng_Latn", "dev", 2, "eng_Latn")]
    out = tmp_path / "out"
    s = ingest(spark, "flores-plus-hub", root, None, out, languages=["eng_Latn", "fr"])
    assert s.corpus == "flores_plus" and s.n_sentences == {"eng_Latn": 5, "fra_Latn": 5}
    t = corpus_store.read_language(out, "flores_plus", "fra_Latn")
    assert t["text"].to_pylist()[:3] == flores_lines("fra_Latn", 3)


# -- configuration errors: before Spark ---------------------------------------------------------
def test_config_errors_before_spark(tmp_path, flores_parquet, monkeypatch):
    import jobs.runtime.spark

    def no_spark(*a, **k):
        raise AssertionError("Spark must not start on a configuration error")

    monkeypatch.setattr(jobs.runtime.spark, "build_spark", no_spark)
    out = str(tmp_path / "out")
    cases = [
        (["--source", "flores-parket", "--path", str(flores_parquet)], "did you mean flores-parquet"),
        (["--source", "flores-parquet", "--path", str(tmp_path / "nope.parquet")], "does not exist"),
        (["--source", "flores-parquet", "--path", str(flores_parquet), "--languages", "eng_Latn,german"],
         "unknown language 'german'.*deu_Latn"),
        (["--source", "flores-parquet", "--path", str(flores_parquet), "--languages", "srp_Latn"],
         "srp_Latn.*not in.*srp_Cyrl"),
        (["--source", "udhr", "--path", str(flores_parquet)], "lacks column"),
        (["--source", "parquet", "--path", str(flores_parquet)], "needs a corpus name"),
        (["--source", "flores-folder", "--path", str(tmp_path)], "no {split}/{lang}.{split} files"),
        (["--source", "django", "--languages", "tlh_Latn"], "tlh_Latn.*not in"),
        (["--source", "django", "--min-language-coverage", "0"], "min_language_coverage"),
    ]
    for argv, message in cases:
        with pytest.raises(ConfigError, match=message):
            main([*argv, "--out", out])
    cfg = check_config("flores-parquet", flores_parquet, None, out, ["en", "fra_Latn"])
    assert cfg.corpus == "flores200" and cfg.languages == ["eng_Latn", "fra_Latn"]
    assert cfg.raw_langs == {"eng_Latn", "fra_Latn"}


def test_split_lines_and_decode():
    assert readers.split_lines(b"\xef\xbb\xbfa\r\nb\n\nc") == [b"a", b"b", b"", b"c"]
    assert readers.split_lines(b"a\n") == [b"a"] and readers.split_lines(b"") == []
    assert readers.decode_line("é".encode()) == ("é", None)
    text, err = readers.decode_line(b"a\xed\xa0\x80b")  # an encoded surrogate is not valid UTF-8
    assert text == "a\\xed\\xa0\\x80b" and "byte 1" in err


# -- bad values: quarantined with a reason, never a crash (issue 18) ----------------------------
def test_jsonl_bad_values_are_quarantined_naming_file_and_line(spark, tmp_path):
    """A lone surrogate, an id beyond int64, non-integer ids and non-string text are rejects
    naming the file and line; the other lines are ingested."""
    eng = flores_lines("eng_Latn", 3)
    good = [json.dumps({"lang": "eng_Latn", "id": i, "text": t}) for i, t in enumerate(eng)]  # lines 0-2
    bad = [  # (line, reason, detail, reject text)
        ('{"lang": "eng_Latn", "id": 3, "text": "lone \\ud800 surrogate"}', "invalid_utf8",
         "lone surrogate U+D800 at character 5 of the text (not valid UTF-8)", "lone \\ud800 surrogate"),
        ('{"lang": "eng_Latn", "id": 18446744073709551617, "text": "big id"}', "bad_record",
         "id 18446744073709551617 is out of the int64 range", "big id"),
        ('{"lang": "eng_Latn", "id": 0.5, "text": "half"}', "bad_record", "id 0.5 is not an integer", "half"),
        ('{"lang": "eng_Latn", "id": "1.5", "text": "s"}', "bad_record", "id '1.5' is not an integer", "s"),
        ('{"lang": "eng_Latn", "id": "\\u00b2", "text": "sup"}', "bad_record", "id '²' is not an integer", "sup"),
        ('{"lang": "eng_Latn", "id": true, "text": "yes"}', "bad_record", "id has type boolean, not integer", "yes"),
        ('{"lang": "eng_Latn", "id": 7, "text": 7}', "bad_record", "text has type integer, not string", "7"),
        ('{"lang": "eng_Latn", "id": 8, "text": {"a": "\\ud800"}}', "bad_record", "text has type object, not string",
         '{"a": "\\ud800"}'),
        ('{"lang": "x\\udc00", "id": 9, "text": "x"}', "invalid_utf8",
         "lone surrogate U+DC00 at character 1 of the language label (not valid UTF-8)", "x"),
    ]
    lines = [*good, *(b[0] for b in bad), json.dumps({"lang": "eng_Latn", "id": 3.0, "text": "three"})]
    src = write_lines(tmp_path / "c.jsonl", lines)
    out = tmp_path / "out"
    s = ingest(spark, "jsonl", src, "j", out)
    assert_no_row_lost(s)
    assert s.rows_in == len(lines) and s.n_sentences == {"eng_Latn": 4}  # 3.0 is the integer 3
    assert corpus_store.read_language(out, "j", "eng_Latn")["text"].to_pylist() == [*eng, "three"]
    rej = {r["row"]: r for r in rejects_of(out, "j")}
    assert sorted(rej) == list(range(3, 3 + len(bad)))
    for row, (_, reason, detail, text) in enumerate(bad, start=3):
        r = rej[row]
        assert (r["source"], r["reason"], r["detail"], r["text"]) == (str(src), reason, detail, text), row
    assert rej[11]["lang"] == "x\\udc00" and rej[3]["lang"] == "eng_Latn"


def test_parquet_bad_values_are_quarantined(spark, tmp_path):
    """Invalid UTF-8 in a string or binary text column, ids that are not integers or beyond
    int64, text that is not a string: rejects with a reason, the same as the other sources."""
    path = tmp_path / "p.parquet"
    texts = [b"good one", b"caf\xe9 au lait", b"two", b"\xed\xa0\x80 surrogate bytes", b"four", b"five"]
    pq.write_table(pa.table({
        "lang": ["eng_Latn"] * 6,
        "id_float": pa.array([0.0, 1.0, 2.0, 3.0, 0.5, 5.0], pa.float64()),
        "id_u64": pa.array([0, 1, 2, 3, 2**64 - 1, 5], pa.uint64()),
        "id_str": ["0", "1", "2", "3", "4.5", "5"],
        "text_str": pa.Array.from_buffers(pa.string(), 6, pa.array(texts, pa.binary()).buffers()),  # not validated
        "text_bin": pa.array(texts, pa.binary()),
        "text_int": pa.array([0, 1, 2, 3, 4, 5], pa.int64()),
    }), path)
    utf8_1 = ("invalid_utf8", "invalid UTF-8 at byte 3 of the text (b'\\xe9': invalid continuation byte)",
              "caf\\xe9 au lait")
    utf8_3 = ("invalid_utf8", "invalid UTF-8 at byte 0 of the text (b'\\xed': invalid continuation byte)",
              "\\xed\\xa0\\x80 surrogate bytes")
    cases = {  # (id column, text column) -> ({sentence_id: text} kept, {row: (reason, detail, text)} rejected)
        ("id_float", "text_str"): ({0: "good one", 2: "two", 5: "five"},
                                   {1: utf8_1, 3: utf8_3, 4: ("bad_record", "id 0.5 is not an integer", "four")}),
        ("id_u64", "text_bin"): ({0: "good one", 2: "two", 5: "five"},
                                 {1: utf8_1, 3: utf8_3,
                                  4: ("bad_record", "id 18446744073709551615 is out of the int64 range", "four")}),
        ("id_str", "text_int"): ({}, {i: ("bad_record", "id '4.5' is not an integer", str(i)) if i == 4 else
                                      ("bad_record", "text has type integer, not string", str(i)) for i in range(6)}),
    }
    for (id_col, text_col), (kept, rejected) in cases.items():
        out = tmp_path / f"out-{id_col}"
        if not kept:
            with pytest.raises(ConfigError, match=r"^corpus 'g': every row was quarantined \(see rejects: .*\)$"):
                ingest(spark, "parquet", path, "g", out, id_col=id_col, text_col=text_col)
        else:
            s = ingest(spark, "parquet", path, "g", out, id_col=id_col, text_col=text_col)
            assert_no_row_lost(s)
            assert s.rows_in == 6
            t = corpus_store.read_language(out, "g", "eng_Latn")
            assert dict(zip(t["sentence_id"].to_pylist(), t["text"].to_pylist(), strict=True)) == kept
        got = {r["row"]: (r["reason"], r["detail"], r["text"]) for r in rejects_of(out, "g")}
        assert got == rejected, (id_col, text_col)
        assert {r["source"] for r in rejects_of(out, "g")} == {str(path)}


def test_table_sources_check_column_types(spark, tmp_path):
    """flores-parquet, udhr and FLORES+ apply the same id and text rules as `parquet`."""
    flores = tmp_path / "flores.parquet"
    pq.write_table(pa.table({"lang": ["eng_Latn"] * 3, "split": ["dev"] * 3,
                             "sentence_id": pa.array([0.0, 0.5, 1.0]), "text": ["a", "b", "c"]}), flores)
    s = ingest(spark, "flores-parquet", flores, None, tmp_path / "o1")
    assert s.n_sentences == {"eng_Latn": 2} and s.rejects_by_reason == {"bad_record": 1}
    assert [(r["row"], r["detail"]) for r in rejects_of(tmp_path / "o1", "flores200")] == [
        (1, "id 0.5 is not an integer")]
    udhr = tmp_path / "udhr.parquet"
    pq.write_table(pa.table({"key": ["eng"] * 3, "iso639_3": ["eng"] * 3, "script": ["Latn"] * 3,
                             "article_no": pa.array([0, 1, 2], pa.int32()),
                             "text": pa.array([b"ok", b"\xff", b"fine"], pa.binary())}), udhr)
    s = ingest(spark, "udhr", udhr, None, tmp_path / "o2")
    assert s.n_sentences == {"eng_Latn": 2} and s.rejects_by_reason == {"invalid_utf8": 1}
    [r] = rejects_of(tmp_path / "o2", "udhr")
    assert (r["row"], r["text"], r["reason"]) == (1, "\\xff", "invalid_utf8")
    plus = tmp_path / "plus" / "dev"
    plus.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([1, 2, -(2**63)], pa.int64()), "iso_639_3": ["eng"] * 3,
                             "iso_15924": ["Latn"] * 3, "text": pa.array([1, 2, 3])}), plus / "eng_Latn.parquet")
    with pytest.raises(ConfigError, match="every row was quarantined"):
        ingest(spark, "flores-plus-hub", plus.parent, None, tmp_path / "o3")
    assert [(r["row"], r["detail"]) for r in rejects_of(tmp_path / "o3", "flores_plus")] == [
        (0, "text has type integer, not string"), (1, "text has type integer, not string"),
        (2, f"id {-(2**63)} is out of the int64 range")]


def _without_file_permission_override():
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that even root cannot read
    a mode-000 file in the child (no-op for other users, who cannot read it anyway)."""
    import ctypes
    import os

    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: the exec'd child lacks the capability
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_a_one_line_error(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    src = tmp_path / "src"
    write_lines(src / "a.jsonl", [json.dumps({"lang": "eng_Latn", "id": 0, "text": "hello"})])
    locked = write_lines(src / "b.jsonl", [json.dumps({"lang": "eng_Latn", "id": 1, "text": "world"})])
    locked.chmod(0)
    for p in (tmp_path, src):
        p.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "jobs.ingest", "--source", "jsonl", "--path", str(src),
                           "--corpus", "j", "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                          text=True, preexec_fn=_without_file_permission_override)
    assert (proc.returncode, proc.stderr) == (2, f"error: permission denied: {locked}\n")


@pytest.mark.spark  # the CLI's ingest step
def test_every_row_quarantined_says_so_through_the_cli(tmp_path, capsys, prefect_harness):
    from flows.cli import main as cli_main

    src = write_lines(tmp_path / "bad.jsonl", ['{"lang": "eng_Latn", "id": 0, "text": "lone \\ud800"}',
                                               '{"lang": "eng_Latn", "id": 18446744073709551617, "text": "x"}'])
    out = tmp_path / "out"
    code = cli_main(["run", "--corpus-source", "jsonl", "--corpus-path", str(src), "--corpus-name", "allbad",
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    rejects = layout.rejects_file(out, "allbad")
    assert err.splitlines()[-1] == f"tokatlas: error: corpus 'allbad': every row was quarantined (see rejects: {rejects})"
    assert [(r["row"], r["reason"]) for r in pq.read_table(rejects).to_pylist()] == [
        (0, "invalid_utf8"), (1, "bad_record")]
    # tokatlas status and the encode planner say the same, not "has not been ingested"
    assert cli_main(["status", "--out", str(out), "--corpus", "allbad"]) == 2
    assert capsys.readouterr().err == (f"tokatlas: error: corpus 'allbad': every row was quarantined "
                                       f"(see rejects: {rejects})\n")
