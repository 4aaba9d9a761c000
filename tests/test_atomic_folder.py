"""svac.atomic_folder: a folder appears whole or not at all."""

import pytest

from svac.atomic_folder import replace_folder, staged_folder


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_staged_folder_creates_a_new_folder_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "deep" / "out"
    with staged_folder(target) as staging:
        assert staging.parent == target.parent and staging.name.startswith(".out.") and not target.exists()
        (staging / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert _hidden(target.parent) == []


def test_staged_folder_replaces_an_existing_folder_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with staged_folder(target) as staging:
        (staging / "a.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert _hidden(tmp_path) == []


def test_a_failure_inside_the_block_keeps_the_old_folder_and_removes_the_staging(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_folder(target) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert _hidden(tmp_path) == []


def test_replace_folder_restores_the_old_folder_when_the_rename_fails(tmp_path, monkeypatch):
    import os

    target, staging = tmp_path / "out", tmp_path / ".out.new"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src) == str(staging):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        replace_folder(staging, target)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.new", "out"]
