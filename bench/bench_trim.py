"""Benchmark of vocabulary trimming, figures as ratios against baselines measured in the same run.

1. Trimming a ~100k-vocabulary tokenizer (cl100k_base) for a set of FLORES languages:
   selection + merge closure + writing, against (a) loading the tokenizer once and
   (b) vocabtrimmer's way of filtering a vocabulary (`w in new_vocab` on a Python list,
   timed on a slice of the vocabulary and scaled to the whole; said so in the output).
2. Frequency counting throughput against raw encoding of the same text: in-process
   (`encode_batch` + `np.bincount`) and the Spark token_freqs job (session already
   started, local[2]).
3. With --faithfulness: trim every shared tokenizer on FLORES dev of the languages and
   report the share of identical sentences on dev (the trimming text) and devtest (held out).

    nice -n 10 .venv/bin/python bench/bench_trim.py [--languages eng_Latn,fra_Latn,...] [--faithfulness] [--no-spark]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.ingest import _write_language  # noqa: E402
from jobs.store import corpus_store  # noqa: E402
from jobs.token_freqs import count_ids  # noqa: E402
from jobs.trim import check_faithfulness, id_lookup  # noqa: E402
from tokenizers_registry.formats import load_format, open_trimmer  # noqa: E402
from tokenizers_registry.trim.plan import plan_keep  # noqa: E402

SHARED = Path(os.environ.get("TOKATLAS_SHARED", ROOT.parent / "shared")) / "data"
LANGS = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "hin_Deva", "arb_Arab",
         "jpn_Jpan", "swh_Latn"]
FORMATS_TO_CHECK = ["gpt2", "cl100k_base", "o200k_base", "qwen", "claude-legacy", "mistral-v1", "minilm-wordpiece",
                    "mistral-tekken-240718"]


def manifest() -> dict[str, dict]:
    return {e["name"]: e for e in json.loads((SHARED / "tokenizers" / "MANIFEST.json").read_text())["tokenizers"]}


def entry(name: str) -> tuple[Path, str, dict]:
    e = manifest()[name]
    return SHARED / "tokenizers" / e["file"], e["format"], ({"pattern": e["pattern"]}
                                                            if e["format"] == "tiktoken-ranks" else {})


def flores_rows(langs: list[str]) -> pa.Table:
    return pq.read_table(SHARED / "flores200" / "flores200_dev_devtest.parquet",
                         filters=[("lang", "in", langs)])


def texts_of(rows: pa.Table, split: str | None = None) -> list[str]:
    r = rows if split is None else rows.filter(pa.compute.equal(rows["split"], split))
    return r["text"].to_pylist()


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_trim(rows: pa.Table) -> None:
    path, fmt, params = entry("cl100k_base")
    dev = texts_of(rows, "dev")
    load_s = best_of(lambda: load_format(fmt, path, params))
    tok = load_format(fmt, path, params)
    counts, n_tokens = count_ids(tok, dev)
    out = Path(tempfile.mkdtemp(prefix="bench_trim_"))
    state = {}

    def trim():
        trimmer = open_trimmer(path, fmt, params)
        plan = plan_keep(trimmer, counts)
        trimmer.write(plan.keep, out)
        state["plan"], state["trimmer"] = plan, trimmer

    trim_s = best_of(trim)
    plan, trimmer = state["plan"], state["trimmer"]
    # vocabtrimmer: `for w, s in vocab: if w in new_vocab` with new_vocab a list
    new_vocab = [trimmer.token_text(i) for i in plan.keep.tolist()]
    vocab = [trimmer.token_text(i) for i in range(trimmer.vocab_size)]
    sample = vocab[:2000]
    t0 = time.perf_counter()
    kept_sample = [w for w in sample if w in new_vocab]
    list_s = (time.perf_counter() - t0) * len(vocab) / len(sample)
    print(f"## 1. trimming cl100k_base ({trimmer.vocab_size:,} ids) for {len(set(rows['lang'].to_pylist()))} "
          f"languages' FLORES dev ({len(dev):,} sentences, {n_tokens:,} tokens)")
    print(f"kept {len(plan.keep):,} ids ({plan.n_closure:,} for merge closure), "
          f"merges {trimmer.n_merges():,} -> {trimmer.n_merges(set(plan.keep.tolist())):,}; "
          f"{len(kept_sample)} of the first 2,000 entries kept")
    print(f"load tokenizer (baseline a):            {load_s:8.3f} s")
    print(f"trim: select + closure + write (ours):  {trim_s:8.3f} s   = {trim_s / load_s:6.2f} x loading it")
    print(f"vocabtrimmer list filter (baseline b):  {list_s:8.3f} s   (scaled from 2,000 entries) "
          f"= {list_s / trim_s:6.1f} x our whole trim")
    shutil.rmtree(out, ignore_errors=True)


def bench_counting(rows: pa.Table, spark_too: bool) -> None:
    path, fmt, params = entry("cl100k_base")
    tok = load_format(fmt, path, params)
    texts = texts_of(rows)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    tok.encode_batch(texts[:2000])  # warm the encoder's thread pool
    raw_s = best_of(lambda: [tok.encode_batch(texts[i:i + 1000]) for i in range(0, len(texts), 1000)])
    count_s = best_of(lambda: count_ids(tok, texts))
    print(f"\n## 2. frequency counting, cl100k_base on {len(texts):,} FLORES sentences ({mb:.1f} MB)")
    print(f"raw encode_batch (baseline):            {raw_s:8.3f} s   {mb / raw_s:6.2f} MB/s")
    print(f"encode + bincount (count_ids):          {count_s:8.3f} s   {mb / count_s:6.2f} MB/s "
          f"= {count_s / raw_s:5.2f} x raw")
    if not spark_too:
        return
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from jobs.runtime.spark import build_spark
    from jobs.store.layout import registry_dir
    from jobs.token_freqs import token_freqs
    from tokenizers_registry.registry import Registry

    out = Path(tempfile.mkdtemp(prefix="bench_freqs_"))
    written = {}
    for lang in sorted(set(rows["lang"].to_pylist())):
        t = rows.filter(pa.compute.equal(rows["lang"], lang))
        t = pa.table({"corpus": ["flores200"] * len(t), "lang": t["lang"], "script": t["script"], "split": t["split"],
                      "sentence_id": t["sentence_id"], "text": t["text"],
                      "n_bytes": [len(x.encode()) for x in t["text"].to_pylist()],
                      "n_chars": [len(x) for x in t["text"].to_pylist()]})
        written[lang] = _write_language(t, str(out), "flores200", lang)
    corpus_store.write_versions(out, "flores200", written)
    Registry(registry_dir(out)).add(path, name="cl100k_base", fmt=fmt, params=params)
    spark = build_spark("bench-trim", master="local[2]")
    token_freqs(spark, out, "flores200", overwrite=True)  # warm-up: starts the Python workers
    spark_s = best_of(lambda: token_freqs(spark, out, "flores200", overwrite=True), repeat=2)
    print(f"Spark token_freqs job (local[2]):       {spark_s:8.3f} s   {mb / spark_s:6.2f} MB/s "
          f"= {spark_s / raw_s:5.2f} x raw (includes reading the corpus and writing Parquet)")
    spark.stop()
    shutil.rmtree(out, ignore_errors=True)


def bench_faithfulness(rows: pa.Table) -> None:
    langs = sorted(set(rows["lang"].to_pylist()))
    print(f"\n## 3. faithfulness: trim on FLORES dev of {len(langs)} languages, min frequency 1")
    print(f"{'tokenizer':24} {'vocab':>8} {'kept':>7} {'closure':>7} {'dev identical':>14} {'devtest identical':>18}"
          f" {'devtest misses: dropped/other':>30}")
    dev, held = texts_of(rows, "dev"), texts_of(rows, "devtest")
    for name in FORMATS_TO_CHECK:
        path, fmt, params = entry(name)
        tok = load_format(fmt, path, params)
        counts, _ = count_ids(tok, dev)
        trimmer = open_trimmer(path, fmt, params)
        plan = plan_keep(trimmer, counts)
        tmp = Path(tempfile.mkdtemp(prefix="bench_faith_"))
        new_path, new_params = trimmer.write(plan.keep, tmp)
        new = load_format(fmt, new_path, {**params, **new_params})
        shutil.rmtree(tmp, ignore_errors=True)  # loaded: the file is no longer needed
        lut = id_lookup(plan.keep, trimmer.vocab_size)
        f_dev = check_faithfulness(tok, new, lut, dev)
        f_held = check_faithfulness(tok, new, lut, held)
        print(f"{name:24} {trimmer.vocab_size:8,} {len(plan.keep):7,} {plan.n_closure:7,} "
              f"{100 * f_dev.share:13.2f}% {100 * f_held.share:17.2f}% "
              f"{f_held.n_miss_dropped:>22,}/{f_held.n_miss_other:,}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", default=",".join(LANGS))
    ap.add_argument("--faithfulness", action="store_true", help="also trim every shared tokenizer (slower)")
    ap.add_argument("--no-spark", action="store_true", help="skip the Spark job measurement")
    a = ap.parse_args(argv)
    rows = flores_rows([x for x in a.languages.split(",") if x])
    print("(figures measured on a shared 2-core machine; compare the ratios, not the seconds)\n")
    bench_trim(rows)
    bench_counting(rows, spark_too=not a.no_spark)
    if a.faithfulness:
        bench_faithfulness(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
