"""Encode-stage and whole-flow throughput against the raw tokenizer libraries, same run, same cores.

Baseline: for every (tokenizer, language) the library's own batch encoder on the language's
sentences (HF `encode_batch_fast`, tiktoken `encode_ordinary_batch`, SentencePiece
`encode(list, num_threads)`, all with this machine's cores) plus one encode of the lines
joined by spaces (the corpus-level count): exactly the encoding work the encode job does.

Measured against it:
  * the Spark encode job (`jobs.encode.encode`) with and without word statistics
    (word statistics need token offsets, which the raw encoders do not compute);
  * the whole token-premium flow (ingest, register, encode, premium with 1000 bootstrap
    replicates, report) on a fresh output root, Prefect engine included.

    python bench/bench_encode.py                       # FLORES-200, all 204 languages, all 10 tokenizers
    python bench/bench_encode.py --languages 20 --tokenizers gpt2,mistral-v1
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

SHARED = ROOT.parent / "shared" / "data"


def raw_encoder(tok):
    """(batch_fn, one_fn) calling the tokenizer library directly, bypassing tokatlas."""
    threads = os.cpu_count() or 1
    if hasattr(tok, "_enc"):  # tiktoken (rank files, Tekken)
        enc = tok._enc
        return (lambda texts: enc.encode_ordinary_batch(texts, num_threads=threads)), enc.encode_ordinary
    if hasattr(tok, "_sp"):
        sp = tok._sp
        return (lambda texts: sp.encode(texts, num_threads=threads)), sp.encode
    hf = tok._tok  # HF tokenizers (tokenizer.json, CLIP merges)
    fast = getattr(hf, "encode_batch_fast", hf.encode_batch)
    return (lambda texts: fast(texts, add_special_tokens=False)), (lambda t: hf.encode(t, add_special_tokens=False))


def raw_baseline(out: Path, corpus: str, specs, langs: list[str]) -> tuple[float, int, int, int]:
    """Seconds, sentences, tokens and bytes for the raw encoders over every cell."""
    from jobs.store import corpus_store
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import load_tokenizer

    texts = {lang: corpus_store.read_language(out, corpus, lang, ["split", "sentence_id", "text"])
             .sort_by([("split", "ascending"), ("sentence_id", "ascending")])["text"].to_pylist()
             for lang in langs}
    joined = {lang: " ".join(t) for lang, t in texts.items()}
    seconds, n_sent, n_tok, n_bytes = 0.0, 0, 0, 0
    for spec in specs:
        batch, one = raw_encoder(load_tokenizer(spec, registry_dir(out)))
        batch(texts[langs[0]][:100])  # warm-up: thread pools, lazy tables
        t0 = time.perf_counter()
        for lang in langs:
            ids = batch(texts[lang])
            n_tok += sum(len(x) for x in ids)
            one(joined[lang])
        seconds += time.perf_counter() - t0
        n_sent += sum(len(t) for t in texts.values())
        n_bytes += sum(len(j.encode()) for j in joined.values())
    return seconds, n_sent, n_tok, n_bytes


def fresh_counts(out: Path) -> None:
    for name in ("token_counts", "corpus_counts", "cell_failures"):
        shutil.rmtree(out / name, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flores", default=str(SHARED / "flores200" / "flores200_dev_devtest.parquet"))
    p.add_argument("--manifest", default=str(SHARED / "tokenizers" / "MANIFEST.json"))
    p.add_argument("--languages", type=int, default=0, help="first N languages only (0: all)")
    p.add_argument("--tokenizers", help="comma-separated manifest names (default: all)")
    p.add_argument("--no-flow", action="store_true", help="skip the whole-flow measurement")
    a = p.parse_args(argv)
    for path in (a.flores, a.manifest):
        if not Path(path).exists():
            print(f"skipped: {path} not found (needs ../shared/data)")
            return 0

    import pyarrow.parquet as pq

    from jobs.encode import encode
    from jobs.ingest import ingest
    from jobs.runtime.spark import build_spark
    from jobs.store.layout import registry_dir
    from tokenizers_registry.registry import Registry

    names = a.tokenizers.split(",") if a.tokenizers else None
    langs = sorted(set(pq.read_table(a.flores, columns=["lang"])["lang"].to_pylist()))
    langs = langs[:a.languages] if a.languages else langs
    work = Path(tempfile.mkdtemp(prefix="tokatlas-bench-encode-"))
    out = work / "out"
    try:
        spark = build_spark("tokatlas-bench-encode")
        cores = spark.sparkContext.defaultParallelism
        ingest(spark, "flores-parquet", a.flores, "flores200", out, languages=langs)
        specs = Registry(registry_dir(out)).add_manifest(a.manifest, names=names)
        ids = [s.tokenizer_id for s in specs]
        print(f"FLORES-200: {len(langs)} languages x {len(specs)} tokenizers on {cores} cores")

        raw_s, n_sent, n_tok, n_bytes = raw_baseline(out, "flores200", specs, langs)
        results = {}
        for label, word_stats in (("encode job, counts only", False), ("encode job, with word stats", True)):
            fresh_counts(out)
            t0 = time.perf_counter()
            s = encode(spark, out, "flores200", ids, langs, word_stats=word_stats)
            results[label] = time.perf_counter() - t0
            assert s.cells_failed == 0 and s.cells_ok == len(langs) * len(specs), s.failures
            assert s.tokens == n_tok, f"pipeline counted {s.tokens} tokens, raw encoders {n_tok}"
        if not a.no_flow:
            from flows.prefect_env import configure_prefect_env

            configure_prefect_env(work / "prefect")
            from flows.premium_flow import PremiumParams, token_premium

            params = PremiumParams(out=str(work / "flow"), corpus_source="flores-parquet", corpus_path=a.flores,
                                   languages=langs, tokenizer_manifest=a.manifest, tokenizers=names)
            if names:  # register only the chosen manifest entries
                Registry(registry_dir(params.out)).add_manifest(a.manifest, names=names)
                params.tokenizer_manifest = None
            from prefect import flow

            t0 = time.perf_counter()
            flow(lambda: None, name="warm-up")()  # starts Prefect's temporary server: a one-off cost
            server_start = time.perf_counter() - t0
            t0 = time.perf_counter()
            token_premium(params)
            results["whole flow (ingest..report)"] = time.perf_counter() - t0

        print(f"raw encoders: {raw_s:.1f} s for {n_sent:,} sentences + {len(langs) * len(specs)} corpus-level "
              f"encodes, {n_tok:,} tokens ({n_sent / raw_s:,.0f} sentences/s, {n_tok / raw_s:,.0f} tokens/s, "
              f"{n_bytes / raw_s / 1e6:.2f} MB/s)")
        print(f"{'stage':32} {'seconds':>8} {'sentences/s':>12} {'tokens/s':>12} {'throughput / raw':>17}")
        for label, sec in results.items():
            print(f"{label:32} {sec:8.1f} {n_sent / sec:12,.0f} {n_tok / sec:12,.0f} {raw_s / sec:17.2f}")
        if not a.no_flow:
            print(f"(not in the whole-flow time: Prefect's temporary server took {server_start:.1f} s to start; "
                  "a deployment's server is already running)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
