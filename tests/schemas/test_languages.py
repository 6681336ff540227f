"""Language-code normalisation (schemas.languages): no Spark."""

from __future__ import annotations

import pytest

from schemas.languages import (
    ISO639_1,
    LANGUAGE_NAMES,
    is_lang_code,
    known_languages,
    language_name,
    near_matches,
    normalize_lang,
    script_of,
    try_normalize_lang,
    word_segmentation,
)

DJANGO_LOCALES = (
    "af ar ar_DZ ast az be bg bn br bs ca ckb cs cy da de de_CH dsb el en en_AU en_CA en_GB en_IE eo es es_AR "
    "es_CO es_MX es_NI es_PR es_VE et eu fa fi fr fr_BE fr_CA fr_CH fy ga gd gl he hi hr hsb hu hy ia id ig io "
    "is it ja ka kab kk km kn ko ky lb lt lv mk ml mn mr ms my nb ne nl nn os pa pl pt pt_BR ro ru sk sl sq sr "
    "sr_Latn sv sw ta te tg th tk tr tt udm ug uk ur uz vi zh_Hans zh_Hant am"
).split()


@pytest.mark.parametrize("code, expected", [
    # FLORES codes pass through; a variety suffix is dropped
    ("eng_Latn", "eng_Latn"), ("zho_Hant", "zho_Hant"), ("lld_Latn_gherd", "lld_Latn"),
    # ISO 639-1 → the individual language FLORES-200 uses, with its default script
    ("de", "deu_Latn"), ("EN", "eng_Latn"), ("ar", "arb_Arab"), ("fa", "pes_Arab"), ("lv", "lvs_Latn"),
    ("ms", "zsm_Latn"), ("sw", "swh_Latn"), ("uz", "uzn_Latn"), ("mn", "khk_Cyrl"), ("sq", "als_Latn"),
    ("ne", "npi_Deva"), ("no", "nob_Latn"), ("nb", "nob_Latn"), ("zh", "zho_Hans"), ("ko", "kor_Hang"),
    ("ja", "jpn_Jpan"), ("he", "heb_Hebr"), ("iw", "heb_Hebr"),
    # ISO 639-3 and 639-2/B
    ("deu", "deu_Latn"), ("ger", "deu_Latn"), ("fre", "fra_Latn"), ("ara", "arb_Arab"), ("ast", "ast_Latn"),
    ("ckb", "ckb_Arab"), ("cmn", "cmn_Hans"), ("yue", "yue_Hant"),
    # BCP-47
    ("zh-Hant", "zho_Hant"), ("zh-TW", "zho_Hant"), ("zh-CN", "zho_Hans"), ("sr-Latn", "srp_Latn"),
    ("sr-Cyrl-RS", "srp_Cyrl"), ("de-1901", "deu_Latn"), ("es-419", "spa_Latn"), ("pt-BR", "por_Latn"),
    ("en-x-private", "eng_Latn"),
    # gettext locales
    ("pt_BR", "por_Latn"), ("es_AR", "spa_Latn"), ("en_GB", "eng_Latn"), ("zh_Hans", "zho_Hans"),
    ("sr_Latn", "srp_Latn"), ("sr@latin", "srp_Latn"), ("de_DE.UTF-8", "deu_Latn"), ("ca@valencia", "cat_Latn"),
])
def test_normalize_lang(code, expected):
    assert normalize_lang(code) == expected
    assert is_lang_code(expected)


def test_explicit_script():
    assert normalize_lang("cmn", "Hant") == "cmn_Hant"
    assert normalize_lang("kor", "Kore") == "kor_Kore"
    assert normalize_lang("xyz", "latn") == "xyz_Latn"  # any ISO 639-3 shape with a script
    assert normalize_lang("sr_Latn", "Latn") == "srp_Latn"
    with pytest.raises(ValueError, match="says script Latn"):
        normalize_lang("sr_Latn", "Cyrl")


@pytest.mark.parametrize("code", [
    "", "   ", None, "xx", "klingon", "english", "und", "und_Kore", "mis_Latn", "zxx_Latn", "qaa_Latn",
    "eng_Latm", "eng_Zzzz", "xyz", "e1",
])
def test_unknown_codes_raise(code):
    with pytest.raises(ValueError):
        normalize_lang(code)
    lang, err = try_normalize_lang(code)
    assert lang is None and err


def test_error_messages_are_specific():
    with pytest.raises(ValueError, match="no default script"):
        normalize_lang("xyz")
    with pytest.raises(ValueError, match="not an ISO 15924"):
        normalize_lang("eng_Latm")
    with pytest.raises(ValueError, match="no particular language"):
        normalize_lang("und_Kore")


def test_every_django_locale_maps_and_variants_collapse():
    mapped = {loc: normalize_lang(loc) for loc in DJANGO_LOCALES}
    assert mapped["pt_BR"] == mapped["pt"] == "por_Latn"
    assert mapped["es_AR"] == mapped["es_MX"] == mapped["es"] == "spa_Latn"
    assert {mapped[x] for x in ("en", "en_AU", "en_GB", "en_IE", "en_CA")} == {"eng_Latn"}
    assert mapped["sr"] == "srp_Cyrl" and mapped["sr_Latn"] == "srp_Latn"
    assert mapped["zh_Hans"] != mapped["zh_Hant"]
    assert mapped["uz"] == "uzn_Latn" and mapped["udm"] == "udm_Cyrl" and mapped["kab"] == "kab_Latn"


def test_flores_codes_default_scripts(flores_parquet):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    langs = pc.unique(pq.read_table(flores_parquet, columns=["lang"])["lang"]).to_pylist()
    assert len(langs) == 204
    assert all(normalize_lang(x) == x for x in langs)
    # every FLORES language is also known by its bare ISO 639-3 code (default script)
    bare = {x.split("_")[0] for x in langs}
    assert all(is_lang_code(normalize_lang(a)) for a in bare)
    assert normalize_lang("zho") == "zho_Hans" and normalize_lang("ace") == "ace_Latn"


def test_table_size_and_names():
    assert len(ISO639_1) >= 120
    assert len(known_languages()) >= 190
    assert language_name("deu_Latn") == "German"
    assert all(LANGUAGE_NAMES[a3] for a3 in ISO639_1.values())


def test_near_matches():
    assert near_matches("german")[0] == "deu_Latn"
    assert near_matches("de")[0] == "deu_Latn"
    assert "srp_Cyrl" in near_matches("srp_Latn", ["srp_Cyrl", "eng_Latn"])
    assert near_matches("eng_Latm", ["eng_Latn", "fra_Latn"])[0] == "eng_Latn"
    assert near_matches("klingon", ["eng_Latn"]) == []


def test_existing_helpers_unchanged():
    assert script_of("zho_Hans") == "Hans"
    with pytest.raises(ValueError):
        script_of("zh")
    assert word_segmentation("Hans") == "character" and word_segmentation("Latn") == "whitespace"
