"""Trim one registered tokenizer for a set of languages and check that it stays faithful.

Counts come from the token_freqs dataset (jobs/token_freqs.py) restricted to the chosen
languages and splits (the trimming text). The keep rule and closure are in
`tokenizers_registry.trim`, each format's trimmer in `tokenizers_registry/formats/<format>/trim.py`;
this module reads the counts, writes the run directory and re-encodes the text to measure
faithfulness:

    <out>/trim/<tokenizer name>/<run>/<trimmed tokenizer file>   same format as the original
                                   /loader_params.json           parameters to load it (tiktoken: pattern, specials)
                                   /id_map.parquet               old -> new id of every kept token (schemas.trim.ID_MAP)
                                   /summary.parquet              one row (schemas.trim.TRIM_SUMMARY)
                                   /faithfulness.parquet         per (language, split) (schemas.trim.FAITHFULNESS)
                                   /embeddings.<ext>, head.<ext> trimmed matrices, when given

The run directory is written under a temporary name and renamed into place, so a re-run
replaces it whole. The trimmed tokenizer is also registered (name `<orig>-trim-<run hash>`).

    spark-submit jobs/trim.py --out OUT --corpus-name flores200 --tokenizer gpt2 --languages eng_Latn,fra_Latn
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.runtime.params import csv_list
from jobs.store import corpus_store
from jobs.store.atomic import atomic_path, write_parquet_atomic
from jobs.store.layout import registry_dir, trim_run_dir
from jobs.token_freqs import read_token_freqs
from schemas import conform, validate
from schemas.errors import ConfigError
from schemas.trim import FAITHFULNESS, ID_MAP, TRIM_SUMMARY
from tokenizers_registry.base import Tokenizer
from tokenizers_registry.formats import load_format, open_trimmer
from tokenizers_registry.registry import Registry, tokenizer_id_for
from tokenizers_registry.store import sha256_file
from tokenizers_registry.trim.plan import KeepPlan, plan_keep
from tokenizers_registry.trim.surgery import trim_matrix_file


@dataclass
class TrimRequest:
    """A trim: which tokenizer, which languages' counts, which rule."""

    tokenizer: str
    languages: list[str]
    corpus: str = "flores200"
    splits: list[str] = field(default_factory=lambda: ["dev"])
    heldout_splits: list[str] = field(default_factory=lambda: ["devtest"])
    min_frequency: int = 1
    top_n: int | None = None
    keep_tokens: list[str] = field(default_factory=list)
    hidden_size: int = 768
    embeddings: str | None = None
    head: str | None = None
    register: bool = True

    def run_name(self) -> str:
        """Readable and unique: languages, rule, and a hash of every choice that changes the result."""
        key = json.dumps({k: v for k, v in asdict(self).items() if k not in ("hidden_size", "register")},
                         sort_keys=True)
        h = hashlib.sha256(key.encode()).hexdigest()[:8]
        langs = "+".join(sorted(self.languages)) if len(self.languages) <= 3 else f"{len(self.languages)}langs"
        return f"{langs}-minf{self.min_frequency}-top{self.top_n if self.top_n is not None else 'all'}-{h}"


@dataclass
class Faithfulness:
    n_sentences: int = 0
    n_identical: int = 0
    n_miss_dropped: int = 0
    n_miss_other: int = 0
    tokens_original: int = 0
    tokens_trimmed: int = 0
    example: str | None = None

    @property
    def share(self) -> float | None:
        return self.n_identical / self.n_sentences if self.n_sentences else None


def id_lookup(keep: np.ndarray, vocab_size: int) -> np.ndarray:
    """old id -> new id, -1 where dropped."""
    lut = np.full(vocab_size, -1, dtype=np.int64)
    lut[keep] = np.arange(len(keep), dtype=np.int64)
    return lut


def check_faithfulness(original: Tokenizer, trimmed: Tokenizer, lut: np.ndarray, texts: Sequence[str],
                       token_text=None) -> Faithfulness:
    """Encode `texts` with both tokenizers; a sentence is identical when the trimmed ids equal
    the original ids mapped through the id map. Misses are split into those whose original
    segmentation uses a dropped token (expected) and the rest (a bug, by the closure argument)."""
    f = Faithfulness(n_sentences=len(texts))
    for start in range(0, len(texts), 1000):
        chunk = list(texts[start:start + 1000])
        for text, a, b in zip(chunk, original.encode_batch(chunk), trimmed.encode_batch(chunk), strict=True):
            mapped = lut[np.asarray(a, dtype=np.int64)] if a else np.zeros(0, np.int64)
            f.tokens_original += len(a)
            f.tokens_trimmed += len(b)
            if len(mapped) == len(b) and np.array_equal(mapped, np.asarray(b, dtype=np.int64)):
                f.n_identical += 1
                continue
            dropped = [int(i) for i, m in zip(a, mapped, strict=True) if m < 0]
            if dropped:
                f.n_miss_dropped += 1
            else:
                f.n_miss_other += 1
            if f.example is None or (not dropped and f.n_miss_other == 1):
                names = [token_text(i) if token_text else str(i) for i in dict.fromkeys(dropped)][:5]
                f.example = f"{text[:100]!r}; dropped tokens used: {names}"
    return f


def _language_texts(out, corpus: str, lang: str, splits: Sequence[str]) -> list[str]:
    rows = corpus_store.read_language(out, corpus, lang, columns=["split", "text"])
    return [t for s, t in zip(rows["split"].to_pylist(), rows["text"].to_pylist(), strict=True) if s in splits]


def counts_for(out, corpus: str, tokenizer_id: str, languages: Sequence[str], splits: Sequence[str],
               vocab_size: int) -> np.ndarray:
    """Summed counts per id over the languages and splits; ConfigError naming what is missing."""
    table = read_token_freqs(out, corpus, tokenizer_id, languages, splits)
    have = set(table["lang"].to_pylist()) if len(table) else set()
    missing = sorted(set(languages) - have)
    if missing:
        raise ConfigError(f"no token_freqs for tokenizer {tokenizer_id} on {missing} (splits {list(splits)}) of "
                          f"corpus {corpus!r} under {out}; run the token_freqs job first")
    ids = table["token_id"].to_numpy()
    if len(ids) and ids.max() >= vocab_size:
        raise ConfigError(f"token_freqs of {tokenizer_id} name id {ids.max()} >= vocab size {vocab_size}")
    return np.bincount(ids, weights=table["count"].to_numpy(), minlength=vocab_size).astype(np.int64)


def id_map_table(plan: KeepPlan, token_text) -> pa.Table:
    keep = plan.keep.tolist()
    return conform(pa.table({
        "old_id": pa.array(keep, pa.int64()),
        "new_id": pa.array(range(len(keep)), pa.int64()),
        "token": pa.array([token_text(i) for i in keep], pa.string()),
        "reason": pa.array([plan.reason[i] for i in keep], pa.string()),
    }), ID_MAP)


def trim_tokenizer(out, req: TrimRequest, *, registry_root=None, log=print) -> dict:
    """Trim, write the run directory, check faithfulness on the trimming and held-out text."""
    out = Path(out).resolve()
    if not req.languages:
        raise ConfigError("name at least one language to trim for")
    reg = Registry(registry_root or registry_dir(out))
    spec = reg.get(req.tokenizer)
    final = trim_run_dir(out, spec.name, req.run_name())  # refuses a name that is no safe path part before any work
    path = reg.artifact_path(spec)
    t0 = time.perf_counter()
    trimmer = open_trimmer(path, spec.format, spec.params)
    counts = counts_for(out, req.corpus, spec.tokenizer_id, req.languages, req.splits, trimmer.vocab_size)
    plan = plan_keep(trimmer, counts, min_frequency=req.min_frequency, top_n=req.top_n, keep_tokens=req.keep_tokens)
    with atomic_path(final) as tmp:  # a failure (e.g. a bad embedding file) leaves no half-written run directory behind
        tok_file, loader_params = trimmer.write(plan.keep, tmp)
        trim_seconds = time.perf_counter() - t0
        params = {**spec.params, **loader_params}
        (tmp / "loader_params.json").write_text(json.dumps(params, ensure_ascii=False, indent=1), encoding="utf-8")
        write_parquet_atomic(id_map_table(plan, trimmer.token_text), tmp / "id_map.parquet")

        original = load_format(spec.format, path, spec.params)
        trimmed = load_format(spec.format, tok_file, params)  # proves the file loads in its own library
        lut = id_lookup(plan.keep, trimmer.vocab_size)
        rows = []
        for lang in req.languages:
            for role, splits in (("trim", req.splits), ("heldout", req.heldout_splits)):
                for split in splits:
                    texts = _language_texts(out, req.corpus, lang, [split])
                    f = check_faithfulness(original, trimmed, lut, texts, trimmer.token_text)
                    rows.append({"tokenizer_id": spec.tokenizer_id, "lang": lang, "split": split, "role": role,
                                 "n_sentences": f.n_sentences, "n_identical": f.n_identical,
                                 "identical_share": f.share, "n_miss_dropped": f.n_miss_dropped,
                                 "n_miss_other": f.n_miss_other, "tokens_original": f.tokens_original,
                                 "tokens_trimmed": f.tokens_trimmed, "example": f.example})
        faith = conform(pa.Table.from_pylist(rows), FAITHFULNESS)
        validate(faith, FAITHFULNESS)
        write_parquet_atomic(faith, tmp / "faithfulness.parquet")

        surgery = {}
        for name, src in (("embeddings", req.embeddings), ("head", req.head)):
            if src:
                src_p = Path(src)
                surgery[name] = trim_matrix_file(src_p, plan.keep, trimmer.vocab_size, tmp / f"{name}{src_p.suffix}")

        removed = trimmer.vocab_size - len(plan.keep)
        summary = {
            "tokenizer_id": spec.tokenizer_id, "tokenizer_name": spec.name, "format": spec.format,
            "algorithm": trimmer.algorithm, "languages": ",".join(req.languages), "splits": ",".join(req.splits),
            "min_frequency": req.min_frequency, "top_n": req.top_n, "n_user_tokens": len(req.keep_tokens),
            "vocab_before": trimmer.vocab_size, "vocab_after": len(plan.keep), "n_by_frequency": plan.n_by_frequency,
            "n_structural": plan.n_structural, "n_closure": plan.n_closure, "merges_before": trimmer.n_merges(),
            "merges_after": trimmer.n_merges(set(plan.keep.tolist())),
            "used_tokens_dropped": plan.stats["used_tokens_dropped"], "hidden_size": req.hidden_size,
            "params_saved_tied": removed * req.hidden_size, "params_saved_untied": 2 * removed * req.hidden_size,
            "trim_seconds": trim_seconds, "artifact": tok_file.name,
        }
        summary_t = conform(pa.Table.from_pylist([summary]), TRIM_SUMMARY)
        write_parquet_atomic(summary_t, tmp / "summary.parquet")
        (tmp / "trim.json").write_text(json.dumps({"request": asdict(req), "summary": summary, "surgery": {
            k: {n: [list(a), list(b)] for n, (a, b) in v.items()} for k, v in surgery.items()}}, indent=1,
            ensure_ascii=False), encoding="utf-8")

    registered = None
    if req.register:
        name = f"{spec.name[:100]}-trim-{req.run_name().rsplit('-', 1)[1]}"  # a valid name, hash included
        provenance = f"trimmed from {spec.name} ({spec.tokenizer_id}) by tokatlas: {req.run_name()}"
        tid = tokenizer_id_for(sha256_file(final / tok_file.name), spec.format, params or None)
        try:  # another request with the same result reuses its registration
            trimmed_spec = next((s for s in reg.specs() if s.tokenizer_id == tid), None) or \
                reg.add(final / tok_file.name, name=name, fmt=spec.format, params=params or None,
                        provenance=provenance)
        except ConfigError:  # same request, different result (e.g. the corpus changed): a new name
            sha = hashlib.sha256((final / tok_file.name).read_bytes()).hexdigest()[:8]
            trimmed_spec = reg.add(final / tok_file.name, name=f"{name}-{sha}", fmt=spec.format,
                                   params=params or None, provenance=provenance)
        registered = trimmed_spec.name
    log(f"trimmed {spec.name}: {summary['vocab_before']} -> {summary['vocab_after']} ids "
        f"({plan.n_closure} for merge closure), used tokens dropped {summary['used_tokens_dropped']}")
    return {"run_dir": str(final), "summary": summary, "faithfulness": faith.to_pylist(),
            "registered": registered, "surgery": {k: {n: [list(a), list(b)] for n, (a, b) in v.items()}
                                                  for k, v in surgery.items()}}


def write_tokenizer_coverage(out, corpus: str, spec: dict, languages: Sequence[str], *, hidden_size: int,
                             language_sets: dict[str, list[str]]) -> dict[str, Path]:
    """The vocabulary coverage datasets of one registered tokenizer (registry row `spec`) on the
    token_freqs of `languages`, over every split counted; `language_sets` adds union figures."""
    from jobs.analysis.coverage import coverage_tables, write_coverage
    from tokenizers_registry.registry import load_tokenizer

    tok = load_tokenizer(spec, registry_dir(out))
    freqs = read_token_freqs(out, corpus, spec["tokenizer_id"], languages)
    splits = sorted(set(freqs["split"].to_pylist()))
    tables = coverage_tables(freqs, corpus=corpus, tokenizer_id=spec["tokenizer_id"], tokenizer_name=spec["name"],
                             vocab_size=tok.vocab_size, n_special=len(tok.special_ids), hidden_size=hidden_size,
                             splits=splits, language_sets=language_sets)
    return write_coverage(out, corpus, [tables])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/trim.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--corpus-name", default="flores200", help="ingested corpus (default flores200)")
    p.add_argument("--tokenizer", required=True, help="registry name or id")
    p.add_argument("--languages", required=True, help="comma-separated iso639_3_Script codes")
    p.add_argument("--splits", default="dev", help="splits whose counts drive the trim")
    p.add_argument("--heldout-splits", default="devtest", help="splits re-encoded as held-out text")
    p.add_argument("--min-frequency", type=int, default=1)
    p.add_argument("--top-n", type=int)
    p.add_argument("--keep-tokens", help="comma-separated tokens always kept")
    p.add_argument("--hidden-size", type=int, default=768)
    p.add_argument("--embeddings", help=".npy/.npz/.safetensors input embedding matrix to trim")
    p.add_argument("--head", help="output head (or bias) to trim")
    a = p.parse_args(argv)
    req = TrimRequest(tokenizer=a.tokenizer, languages=csv_list(a.languages), corpus=a.corpus_name,
                      splits=csv_list(a.splits), heldout_splits=csv_list(a.heldout_splits) or [],
                      min_frequency=a.min_frequency, top_n=a.top_n, keep_tokens=csv_list(a.keep_tokens) or [],
                      hidden_size=a.hidden_size, embeddings=a.embeddings, head=a.head)
    res = trim_tokenizer(a.out, req)
    for r in res["faithfulness"]:
        print(f"{r['lang']} {r['split']} ({r['role']}): {r['n_identical']}/{r['n_sentences']} identical; misses "
              f"using a dropped token {r['n_miss_dropped']}, other {r['n_miss_other']}")
    print(f"run directory: {res['run_dir']}")
    return 0


if __name__ == "__main__":
    from jobs.runtime.entry import run_job

    run_job("jobs.trim")
