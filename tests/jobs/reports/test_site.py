"""The static report site renders in a real headless Chromium (no network, fresh profile).

The output root is small but real: the premium flow on 3 FLORES languages x 50 sentences with
2 shared tokenizers (real Prefect, real Spark), plus coverage tables from GPT-2 counts, a
grid analysis of 9 BPE tokenizers trained on the spot, and a mixture LP solved on a BPE
trained on a known mixture. The site is then built and every page loaded in Chromium.
"""

from __future__ import annotations

import json
import struct
import subprocess
import uuid
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CHROMIUM, shared_path

from jobs.reports.site import build_site
from schemas import conform

pytestmark = pytest.mark.shared

LANGS = ["eng_Latn", "deu_Latn", "ell_Grek"]
PER_SPLIT = 25
NAMES = ["gpt2", "mistral-v1"]
SHOT = (1280, 2000)


def _flores(lang: str, split: str) -> list[str]:
    from jobs.corpus.samples import flores_texts

    return flores_texts(shared_path("flores200", "flores200_dev_devtest.parquet"), lang, (split,))


def _premium(out: Path, tmp: Path, prefect_harness, spark) -> None:
    from flows.premium_flow import PremiumParams, token_premium

    folder = tmp / "flores_mini"
    for lang in LANGS:
        for split in ("dev", "devtest"):
            (folder / split).mkdir(parents=True, exist_ok=True)
            lines = _flores(lang, split)[:PER_SPLIT]
            (folder / split / f"{lang}.{split}").write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    from helpers import write_manifest_subset

    write_manifest_subset(tmp / "MANIFEST.json", NAMES)
    token_premium(PremiumParams(out=str(out), corpus_source="flores-folder", corpus_path=str(folder),
                                corpus_name="mini", tokenizer_manifest=str(tmp / "MANIFEST.json"), n_bootstrap=50))


def _coverage(out: Path) -> None:
    """GPT-2 token counts of the three languages (tiktoken), through the coverage job's tables."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from jobs.analysis.coverage import coverage_tables, write_coverage
    from schemas.trim import TOKEN_FREQS

    tok_dir = shared_path("tokenizers")
    e = next(x for x in json.loads((tok_dir / "MANIFEST.json").read_text())["tokenizers"] if x["name"] == "gpt2")
    enc = tiktoken.Encoding("gpt2", pat_str=e["pattern"], special_tokens={},
                            mergeable_ranks=load_tiktoken_bpe(str(tok_dir / e["file"])))
    rows = []
    for lang in LANGS:
        for split in ("dev", "devtest"):
            c = Counter(i for t in _flores(lang, split)[:PER_SPLIT] for i in enc.encode_ordinary(t))
            rows += [{"corpus": "mini", "corpus_version": "v", "tokenizer_id": "gpt2", "lang": lang, "split": split,
                      "token_id": i, "count": n, "is_special": False} for i, n in sorted(c.items())]
    freqs = conform(pa.Table.from_pylist(rows), TOKEN_FREQS)
    tables = coverage_tables(freqs, corpus="mini", tokenizer_id="gpt2", tokenizer_name="gpt2",
                             vocab_size=enc.n_vocab, n_special=0, hidden_size=64, splits=["dev", "devtest"],
                             language_sets={"latin": ["eng_Latn", "deu_Latn"]})
    write_coverage(out, "mini", [tables])


def _grid(out: Path, tmp: Path) -> None:
    """BPE tokenizers trained per language at three vocabulary sizes; CTC on held-out text."""
    from tokenizers import Tokenizer

    from jobs.analysis.grid import analyse
    from jobs.grid_analysis import write_analysis
    from schemas.grid import GRID_CTC, GRID_FEATURES
    from tokenizers_registry.training import train_hf

    rows, feats = [], []
    for lang in LANGS:
        train, held = _flores(lang, "dev")[:300], _flores(lang, "devtest")[:100]
        text = " ".join(held)
        for v in (300, 500, 800):
            tok = Tokenizer.from_file(str(train_hf("bpe", train, v, tmp / f"grid-{lang}-{v}" / "tokenizer.json")))
            rows.append({"cell_id": f"{lang}-{v}", "tokenizer_id": f"{lang}-{v}", "lang": lang, "algorithm": "hf-bpe",
                         "pre_tokenizer": "bytelevel", "vocab_size": v, "train_bytes": 10_000, "byte_budget": 10_000,
                         "actual_vocab_size": tok.get_vocab_size(), "eval_version": "e", "n_sentences": len(held),
                         "ctc": len(tok.encode(text).ids), "n_bytes": len(text.encode()), "n_chars": len(text),
                         "n_unk": 0})
        words = text.split()
        feats.append({"lang": lang, "script": lang[-4:], "mean_word_chars": float(np.mean([len(w) for w in words])),
                      "whitespace_share": text.count(" ") / len(text), "bytes_per_char": len(text.encode()) / len(text),
                      "train_eval_similarity": 0.5})
    tables = analyse(conform(pa.Table.from_pylist(rows), GRID_CTC), conform(pa.Table.from_pylist(feats), GRID_FEATURES),
                     vmin=100, vmax=20_000)
    write_analysis(tables, out, "mini")


def _mixture(out: Path, tmp: Path) -> None:
    """A byte-level BPE trained on known shares of the three languages; mixture LP on held-out text."""
    from jobs.analysis.mixture.problem import MixtureProblem, estimates_table
    from jobs.analysis.mixture.solve import solve_mixture
    from jobs.analysis.mixture.trajectory import trajectory_for_texts
    from jobs.mixture_eval import mixture_corpus
    from jobs.store.atomic import write_parquet_atomic
    from tokenizers_registry.formats import load_merges
    from tokenizers_registry.training import train_hf

    train = {lang: _flores(lang, "dev")[:250] for lang in LANGS}
    parts = mixture_corpus(train, np.array([0.2, 0.3, 0.5]), 60_000)
    corpus = [x for lang in LANGS for x in parts[lang]]
    np.random.default_rng(0).shuffle(corpus)
    ml = load_merges(train_hf("bpe", corpus, 257 + 200, tmp / "mix" / "tokenizer.json"), "hf-tokenizer-json", {}, "mix")
    T = 150
    prob = MixtureProblem(LANGS, [trajectory_for_texts(ml, _flores(lang, "devtest")[:200], T) for lang in LANGS], T)
    sol = solve_mixture(prob, n_bootstrap=10)
    write_parquet_atomic(estimates_table("mix-bpe", sol, T), out / "mixture" / "estimates" / "tokenizer=mix-bpe.parquet")


@pytest.fixture(scope="module")
def site(prefect_harness, spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    out = tmp / "out"
    _premium(out, tmp, prefect_harness, spark)
    # The flow's last task rebuilt the site: a premium page only, the other datasets come next.
    assert (out / "site" / "premium.html").is_file() and not (out / "site" / "grid.html").exists()
    assert 'href="site/premium.html"' in (out / "index.html").read_text(encoding="utf-8")
    _coverage(out)
    _grid(out, tmp)
    _mixture(out, tmp)
    return out, build_site(out)


# -- Chromium ----------------------------------------------------------------------------------------
def chromium(tmp: Path, url: str, *args: str) -> str:
    """Run headless Chromium on `url` with a fresh profile and no network; returns stdout.
    The calling test takes the `browser` fixture (it skips where Chromium is not installed)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / f'profile-{uuid.uuid4().hex}'}",
           "--virtual-time-budget=10000", *args, url]
    # The timeout only guards against a hung browser; it is not a performance limit.
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


class Dom(HTMLParser):
    """The parts of a dumped DOM the assertions need: body attributes, images, table rows."""

    def __init__(self, text: str):
        super().__init__()
        self.body: dict = {}
        self.imgs: list[dict] = []
        self.tables: dict[str, dict] = {}
        self.links: list[str] = []
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id"), {"attrs": a, "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = {"attrs": a, "cells": []}
        elif tag == "td" and self._row is not None:
            self._cell = [a, ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append(tuple(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:  # header rows have <th> only
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def dom(tmp: Path, page: Path, hash_: str = "") -> Dom:
    d = Dom(chromium(tmp, page.as_uri() + hash_, "--dump-dom"))
    assert d.body.get("data-rendered") == "1", d.body
    return d


def visible_rows(d: Dom, table_id: str) -> list[dict]:
    return [r for r in d.tables[table_id]["rows"] if "hidden" not in r["attrs"]]


def assert_figures(d: Dom, expected: int) -> None:
    assert len(d.imgs) == expected
    assert all(i.get("data-loaded") == "1" for i in d.imgs), [i.get("src") for i in d.imgs]
    assert d.body["data-images-loaded"] == d.body["data-images-total"] == str(expected)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- tests -------------------------------------------------------------------------------------------
def test_site_files_are_relative_and_offline(site):
    out, res = site
    assert set(res.pages) == {"premium", "grid", "mixture", "coverage"}
    for page in [res.index, *res.pages.values()]:
        text = page.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and f"{out}" not in text
    for stems in res.figures.values():
        for stem in stems:
            assert png_size(out / "site" / "fig" / f"{stem}.png")[0] > 100
            assert b"<svg" in (out / "site" / "fig" / f"{stem}.svg").read_bytes()[:2000], stem
    assert not list(out.glob(".site-*")) and not list(out.glob(".index.html.*"))


def test_index_renders_with_a_card_and_thumbnail_per_family(site, browser, tmp_path):
    out, res = site
    d = dom(tmp_path, res.index)
    assert_figures(d, 4)
    for fam in ("premium", "grid", "mixture", "coverage"):
        assert f"site/{fam}.html" in d.links and (out / "site" / f"{fam}.html").is_file()
    assert "reports/premium-mini/index.html" in d.links
    shot = tmp_path / "index.png"
    chromium(tmp_path, res.index.as_uri(), f"--screenshot={shot}", f"--window-size={SHOT[0]},{SHOT[1]}")
    assert png_size(shot) == SHOT


def test_premium_page_tables_figures_and_sorting(site, browser, tmp_path):
    out, res = site
    path = out / "premium" / "corpus=mini" / "reference=eng_Latn.parquet"
    premium = pq.read_table(path)
    assert premium.num_rows == len(LANGS) * len(NAMES)
    sid = "premium-mini-eng-latn"
    d = dom(tmp_path, res.pages["premium"], f"#sort={sid}-cells:premium_ctc:desc&filter={sid}-ranking:ell_Grek")
    assert_figures(d, 2)  # heatmap and per-language ranking
    assert d.body["data-tables"] == "3"
    cells = d.tables[f"{sid}-cells"]
    assert len(cells["rows"]) == premium.num_rows and cells["attrs"]["data-rows"] == str(premium.num_rows)
    # Sorted in the page by the hash: premium column (index 3) descending, equal to the dataset's values.
    shown = [float(r["cells"][3][0]["data-v"]) for r in cells["rows"]]
    assert cells["attrs"]["data-sorted"] == "premium_ctc:desc"
    assert shown == sorted(premium["premium_ctc"].to_pylist(), reverse=True)
    # Ranking: one row per non-reference language; the filter leaves Greek only, best tokenizer first.
    ranking = d.tables[f"{sid}-ranking"]
    assert len(ranking["rows"]) == len(LANGS) - 1
    greek = visible_rows(d, f"{sid}-ranking")
    assert len(greek) == 1 and ranking["attrs"]["data-visible"] == "1"
    by_tok = {r["tokenizer_name"]: r["premium_ctc"] for r in premium.to_pylist() if r["lang"] == "ell_Grek"}
    best = min(by_tok, key=by_tok.get)
    assert greek[0]["cells"][2][1] == best and float(greek[0]["cells"][3][0]["data-v"]) == by_tok[best]
    assert len(d.tables[f"{sid}-tokenizers"]["rows"]) == len(NAMES)
    shot = tmp_path / "premium.png"
    chromium(tmp_path, res.pages["premium"].as_uri(), f"--screenshot={shot}", f"--window-size={SHOT[0]},{SHOT[1]}")
    assert png_size(shot) == SHOT


def test_grid_mixture_coverage_pages(site, browser, tmp_path):
    out, res = site
    ana = out / "grid" / "mini" / "analysis"
    d = dom(tmp_path, res.pages["grid"], "#sort=grid-mini-ctc:ctc")
    assert_figures(d, 2)  # CTC vs vocabulary, equal vs optimal
    ctc = pq.read_table(ana / "ctc.parquet")
    rows = d.tables["grid-mini-ctc"]["rows"]
    assert len(rows) == ctc.num_rows == 9
    assert [int(r["cells"][6][0]["data-v"]) for r in rows] == sorted(ctc["ctc"].to_pylist())
    assert len(d.tables["grid-mini-fits"]["rows"]) == pq.read_table(ana / "fits.parquet").num_rows == 3
    assert len(d.tables["grid-mini-optimal"]["rows"]) == pq.read_table(ana / "optimal.parquet").num_rows

    est = pq.read_table(out / "mixture" / "estimates" / "tokenizer=mix-bpe.parquet")
    d = dom(tmp_path, res.pages["mixture"], "#sort=mixture-estimates:proportion:desc")
    assert_figures(d, 1)
    rows = d.tables["mixture-estimates"]["rows"]
    assert len(rows) == est.num_rows == len(LANGS)
    assert [r["cells"][1][1] for r in rows] == [r["category"] for r in
                                                sorted(est.to_pylist(), key=lambda r: -r["proportion"])]

    cov = pq.read_table(out / "coverage" / "corpus=mini" / "coverage.parquet")
    d = dom(tmp_path, res.pages["coverage"], "#filter=coverage-mini-coverage:deu")
    assert_figures(d, 1)
    assert len(d.tables["coverage-mini-coverage"]["rows"]) == cov.num_rows == len(LANGS)
    assert [r["cells"][1][1] for r in visible_rows(d, "coverage-mini-coverage")] == ["deu_Latn"]
    assert len(d.tables["coverage-mini-union"]["rows"]) == pq.read_table(
        out / "coverage" / "corpus=mini" / "union.parquet").num_rows


def test_cli_rebuilds_the_site(site, capsys):
    import argparse

    from flows.site_flow import add_cli

    out, res = site
    before = (out / "site" / "mixture.html").read_text(encoding="utf-8")
    (out / "site" / "mixture.html").unlink()
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="cmd"))
    a = parser.parse_args(["site", "build", "--out", str(out)])
    assert a.func(a) == 0
    printed = capsys.readouterr().out
    assert f"site: {out / 'index.html'}" in printed
    assert all(f"{fam:9s} {out / 'site' / f'{fam}.html'}" in printed for fam in res.pages)
    assert (out / "site" / "mixture.html").read_text(encoding="utf-8") == before


def test_site_without_datasets_and_missing_root(tmp_path):
    from schemas.errors import ConfigError

    res = build_site(tmp_path)
    assert res.pages == {} and "No report datasets found" in res.index.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="does not exist"):
        build_site(tmp_path / "nope")
