"""The embedded default tokenizers: what `tokatlas run` measures when no tokenizer is named.

Corpus: Django's human-translated gettext catalogs (ingest source `django`, the premium flow's
default). Tokenizers: four trained on the spot on that corpus with the libraries' own trainers,
plus the real Mistral tokenizers that the `mistral-common` package ships. Nothing is
downloaded; everything comes from the clone and its declared dependencies. The premium flow's
register step calls `register_default_tokenizers`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from jobs.store import corpus_store
from jobs.store.layout import trained_dir
from tokenizers_registry.registry import Registry, TokenizerSpec
from tokenizers_registry.training import train_hf, train_sentencepiece

# (registry name, library, algorithm, vocabulary size)
TRAINED = (
    ("default-hf-bpe-8k", "hf", "bpe", 8000),
    ("default-hf-unigram-4k", "hf", "unigram", 4000),
    ("default-hf-wordpiece-4k", "hf", "wordpiece", 4000),
    ("default-sp-unigram-4k", "sp", "unigram", 4000),
)

SHIPPED = (
    # (registry name, package, resource, format)
    ("mistral-tekken-240718", "mistral_common", "data/tekken_240718.json", "tekken-json"),
    ("mistral-v1", "mistral_common", "data/tokenizer.model.v1", "sentencepiece-model"),
)


def shipped_tokenizer_files() -> list[tuple[str, Path, str, str]]:
    """(name, path, format, provenance) of tokenizers shipped inside installed packages."""
    found = []
    for name, package, resource, fmt in SHIPPED:
        try:
            path = Path(str(resources.files(package).joinpath(resource)))
        except ModuleNotFoundError:
            continue
        if path.is_file():
            found.append((name, path, fmt, f"{package} package: {resource}"))
    return found


def register_default_tokenizers(out, corpus: str, registry: Registry) -> list[TokenizerSpec]:
    """Train (once) and register the default tokenizers on the ingested corpus `corpus`."""
    existing = {s.name: s for s in registry.specs()}
    specs = []
    texts = None
    work = trained_dir(out)
    for name, lib, algorithm, vocab in TRAINED:
        if name in existing:  # trained before: keep the same artifact, hence the same id
            specs.append(existing[name])
            continue
        if texts is None:
            texts = [t for lang in sorted(corpus_store.read_corpus_versions(out, corpus))
                     for t in corpus_store.read_language(out, corpus, lang)["text"].to_pylist()]
        if lib == "hf":
            path = train_hf(algorithm, texts, vocab, work / f"{name}.tokenizer.json")
        else:
            path = train_sentencepiece(algorithm, texts, vocab, work / f"{name}.model")
        specs.append(registry.add(path, name=name, provenance=f"trained by tokatlas on corpus {corpus}"))
    for name, path, fmt, provenance in shipped_tokenizer_files():
        specs.append(existing.get(name) or registry.add(path, name=name, fmt=fmt, provenance=provenance))
    return specs
