"""Test helpers: small real tokenizers (one that panics) and corpora from shared data, and waiting on processes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from conftest import shared_path  # also puts the checkout on sys.path, for infra/

from infra.cluster import session_members, wait_until  # noqa: F401  (one polling loop, one /proc scan)


def english_lines(n: int = 300) -> list[str]:
    """The first `n` English FLORES-200 dev sentences."""
    table = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"), columns=["text"],
                          filters=[("lang", "=", "eng_Latn"), ("split", "=", "dev")])
    return table["text"].to_pylist()[:n]


def make_english_only_bpe(path: str | Path, n_lines: int = 300, vocab_size: int = 500) -> Path:
    """Write a character-level BPE `tokenizer.json` trained on English lines, whose
    `unk_token` ("[UNK]") is not in its vocab, and return its path.

    `tokenizers` raises a plain `Exception("Unk token `[UNK]` not found in the vocabulary")`
    when such a tokenizer meets a character it has never seen (e.g. any Chinese text):
    the per-cell failure the encode job must record.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[], show_progress=False)
    tok.train_from_iterator(english_lines(n_lines), trainer=trainer)
    assert tok.token_to_id("[UNK]") is None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


# A pre-tokenization pattern that makes tiktoken and HF `tokenizers` panic (pyo3's PanicException, a
# BaseException) on ordinary text: it backtracks exponentially on a run of letters not followed by a
# digit (tests/jobs/test_tokenizer_failures.py says which texts and why).
EVIL = r"(\p{L}|\p{L})*(?=\d)|\s+|[^\s]"


def write_evil_hf(path: Path) -> Path:
    """claude-legacy's tokenizer.json with EVIL as a Split pre-tokenizer before its byte-level mapping."""
    import json

    doc = json.loads(shared_path("tokenizers", "claude_legacy.tokenizer.json").read_text())
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": EVIL}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    path.write_text(json.dumps(doc))
    return path


def register_unchecked(reg, path: Path, name: str, fmt: str, params: dict | None = None):
    """Write the spec `Registry.add` would write, skipping its encode probe (a registry from before the check)."""
    from datetime import datetime, timezone

    from tokenizers_registry.formats import load_format
    from tokenizers_registry.registry import (
        TokenizerSpec,
        artifact_relpath,
        canonical_params,
        tokenizer_id_for,
    )
    from tokenizers_registry.store import sha256_file

    sha = sha256_file(path)
    tok = load_format(fmt, path, params)
    rel = artifact_relpath(sha, path.name)
    reg.store.put_file(path, rel)
    spec = TokenizerSpec(tokenizer_id=tokenizer_id_for(sha, fmt, params), name=name, format=fmt, artifact_uri=rel,
                         sha256=sha, algorithm=tok.algorithm, vocab_size=tok.vocab_size,
                         pre_tokenizer=tok.pre_tokenizer, params_json=canonical_params(params),
                         source_path=str(path), added_at=datetime.now(timezone.utc))
    assert reg.add_specs([spec]) == 1
    return spec


def write_flores_folder(root: str | Path, langs: list[str], per_split: int) -> Path:
    """A FLORES-style folder (`<split>/<lang>.<split>`) with the first `per_split` sentences
    of each language and split of the shared FLORES-200 file; returns `root`."""
    table = pq.read_table(shared_path("flores200", "flores200_dev_devtest.parquet"),
                          columns=["lang", "split", "sentence_id", "text"], filters=[("lang", "in", list(langs))])
    root = Path(root)
    rows = sorted(table.to_pylist(), key=lambda r: (r["lang"], r["split"], r["sentence_id"]))
    for lang in langs:
        for split in ("dev", "devtest"):
            lines = [r["text"] for r in rows if r["lang"] == lang and r["split"] == split][:per_split]
            (root / split).mkdir(parents=True, exist_ok=True)
            (root / split / f"{lang}.{split}").write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    return root


def write_manifest_subset(path: str | Path, names: list[str]) -> Path:
    """The shared tokenizer MANIFEST restricted to `names`, its files copied beside it
    (a manifest reads only files in its own folder)."""
    import json
    import shutil

    from tokenizers_registry.registry import read_manifest

    entries = [e for e in read_manifest(shared_path("tokenizers", "MANIFEST.json")) if e["name"] in names]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for e in entries:
        if not (path.parent / e["file"]).is_file():
            shutil.copyfile(e["path"], path.parent / e["file"])
    path.write_text(json.dumps({"tokenizers": [{k: v for k, v in e.items() if k != "path"} for e in entries]}))
    return path


def session_processes(sid: int) -> dict[int, str]:
    """pid -> command line of every live process of session `sid` (see infra.cluster.session_members):
    what a process started with `start_new_session=True` and all its descendants still run."""
    found = {}
    for pid in session_members(sid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # ended meanwhile
            continue
    return found
