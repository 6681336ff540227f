"""jobs.store.atomic (the one writer) and jobs.store.layout (the one home of output paths)."""

from __future__ import annotations

import datetime
import json
import uuid

import fsspec
import pyarrow as pa
import pytest

from jobs.store import layout
from jobs.store.atomic import (
    atomic_path,
    clean_temp,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from schemas import DATASETS
from schemas.errors import ConfigError


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = write_text_atomic("old\n", tmp_path / "a" / "f.txt")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert path.read_text() == "old\n" and sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]


def test_json_is_written_byte_for_byte_as_documented(tmp_path):
    obj = {"b": 1, "a": ["é", 2.5]}
    assert write_json_atomic(obj, tmp_path / "s.json").read_bytes() == \
        (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    assert write_json_atomic(obj, tmp_path / "u.json", sort_keys=False).read_text(encoding="utf-8").startswith('{\n "b"')


def test_a_folder_is_swapped_in_whole(tmp_path):
    dest = tmp_path / "run"
    for version in ("one", "two"):
        with atomic_path(dest) as tmp:
            tmp.mkdir()
            (tmp / f"{version}.txt").write_text(version)
    assert [p.name for p in dest.iterdir()] == ["two.txt"] and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_clean_temp_removes_the_temp_files_and_folders_of_killed_writers(tmp_path):
    keep = write_parquet_atomic(pa.table({"a": [1]}), tmp_path / "d" / "x.parquet")
    (tmp_path / "d" / f".x.parquet.{uuid.uuid4().hex}.tmp").write_bytes(b"half")
    (tmp_path / f".run.{uuid.uuid4().hex}.tmp" / "sub").mkdir(parents=True)
    assert clean_temp(tmp_path) == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["d", "d/x.parquet"]
    assert keep.is_file()


def test_remote_writes_go_through_a_temp_object(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/atomic-{uuid.uuid4().hex}"
    write_bytes_atomic(b"data", f"{root}/a/b.bin", fs=fs)
    assert fs.cat_file(f"{root}/a/b.bin") == b"data" and fs.find(root) == [f"{root}/a/b.bin"]


def test_every_dataset_file_the_layout_names_is_found_through_its_dataset(tmp_path):
    """Paths built by the layout functions and the `Dataset.path` globs agree."""
    written = {
        "corpus": layout.language_file(tmp_path, "c", "eng_Latn"),
        "rejects": layout.rejects_file(tmp_path, "c"),
        "tokenizers": layout.tokenizers_file(tmp_path),
        "token_counts": layout.cell_file(tmp_path, "token_counts", "eng_Latn", "t1", "c", "v1", 2),
        "token_freqs": layout.cell_file(tmp_path, "token_freqs", "eng_Latn", "t1", "c", "v1"),
        "premium": layout.premium_file(tmp_path, "c", "eng_Latn"),
        "grid_cells": layout.grid_cell_path(tmp_path, "cell-1"),
        "grid_ctc": layout.grid_ctc_path(tmp_path, "cell-1", "e1"),
        "grid_fits": layout.grid_analysis_dir(tmp_path, "g") / "fits.parquet",
        "vocab_coverage": layout.coverage_dir(tmp_path, "c") / "coverage.parquet",
        "trim_summary": layout.trim_run_dir(tmp_path, "gpt2", "run-1") / "summary.parquet",
        "mixture_traj_steps": layout.trajectory_dir(tmp_path, "gpt2", "code") / "steps.parquet",
        "mixture_estimates": layout.estimates_path(tmp_path, "gpt2"),
        "run_log": layout.run_log_file(tmp_path, datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc), "r1"),
    }
    for path in written.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    for name, path in written.items():
        assert layout.dataset_files(tmp_path, DATASETS[name]) == [path], name
    assert layout.premium_files(tmp_path, "c") == [written["premium"]] and layout.premium_files(tmp_path, "d") == []


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "a=b", ".hidden"])
def test_path_parts_are_checked_names(tmp_path, bad):
    with pytest.raises(ConfigError):
        layout.premium_file(tmp_path, bad, "eng_Latn")
    with pytest.raises(ConfigError):
        layout.trajectory_dir(tmp_path, "gpt2", bad)


def test_a_template_refuses_values_it_has_no_place_for(tmp_path):
    with pytest.raises(TypeError):
        layout.dataset_path(tmp_path, DATASETS["premium"], corpus="c", reference="r", lang="x")
    with pytest.raises(TypeError):
        layout.dataset_path(tmp_path, DATASETS["premium"], corpus="c")
