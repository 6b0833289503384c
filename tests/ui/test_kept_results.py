"""Kept single-image results: a fresh time-named folder per job, the caller's file names, pruned to the newest N."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest

from ui.kept_results import FOLDER_FORMAT, KeptResults

FILES = {"商品图-cutout.png": b"\x89PNG cutout", "商品图-alpha.png": b"\x89PNG alpha"}


def test_a_job_gets_a_fresh_time_named_folder_holding_exactly_its_files(tmp_path):
    before = datetime.now()
    folder = KeptResults(tmp_path / "results").keep(FILES)
    assert folder.parent == tmp_path / "results"
    assert before - timedelta(seconds=1) <= datetime.strptime(folder.name, FOLDER_FORMAT) <= datetime.now()
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == FILES


def test_folders_sort_in_the_order_jobs_were_kept_even_within_one_microsecond(tmp_path):
    kept = KeptResults(tmp_path)
    folders = [kept.keep({f"photo-{index}.png": bytes([index])}) for index in range(20)]
    assert kept.folders() == folders
    assert len(set(folders)) == 20


def test_only_the_newest_folders_stay_and_other_entries_are_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "exports").mkdir()
    kept = KeptResults(tmp_path, limit=3)
    folders = [kept.keep({f"photo-{index}.png": b"x"}) for index in range(5)]
    assert kept.folders() == folders[-3:]
    assert not folders[0].exists() and not folders[1].exists()
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "exports").is_dir()


def test_the_folder_just_written_survives_a_clock_set_back(tmp_path):
    kept = KeptResults(tmp_path, limit=1)
    future = tmp_path / (datetime.now() + timedelta(days=1)).strftime(FOLDER_FORMAT)
    future.mkdir()
    folder = kept.keep({"cat.png": b"cat"})
    assert kept.folders() == [folder]


def test_a_failed_write_leaves_no_folder_behind(tmp_path, monkeypatch):
    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        KeptResults(tmp_path).keep(FILES)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "../escape.png", "sub/photo.png", "sub\\photo.png", ".hidden.png", "..",
                                  "nul\0.png"])
def test_names_that_are_not_one_plain_file_are_refused_before_anything_is_written(tmp_path, name):
    with pytest.raises(ValueError):
        KeptResults(tmp_path).keep({"photo.png": b"ok", name: b"bad"})
    assert list(tmp_path.iterdir()) == []


def test_nothing_to_keep_is_refused(tmp_path):
    with pytest.raises(ValueError):
        KeptResults(tmp_path).keep({})
