"""svac.atomic_folder: a folder appears whole or not at all, is locked while written, and leftovers of
killed writers are cleaned (issue 12 §4)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from svac.atomic_folder import (LOCK_SUFFIX, RETIRED_MARK, STAGING_MARK, FolderLock, OutputFolder, _host,
                                _start_time, clean_stale, replace_folder, reserve_folder, staged_folder)
from svac.errors import OutputExistsError, OutputLockedError


def _hidden(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_staged_folder_creates_a_new_folder_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "deep" / "out"
    with staged_folder(target) as staging:
        assert staging.parent == target.parent and staging.name.startswith(".out" + STAGING_MARK)
        assert not target.exists()
        (staging / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new"
    assert _hidden(target.parent) == []


def test_staged_folder_replaces_an_existing_folder_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    inode = os.stat(target / "old.txt").st_ino
    with staged_folder(target) as staging:
        assert (target / "old.txt").stat().st_ino == inode  # the old folder is untouched while writing
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


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_replace_folder_restores_the_old_folder_when_the_rename_fails(tmp_path, monkeypatch, exchange):
    import svac.atomic_folder as af

    target, staging = tmp_path / "out", tmp_path / ".out.new"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    if not exchange:
        monkeypatch.setattr(af, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def failing(src, dst, *a, **k):
        if str(src) == str(staging):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", failing)
    if exchange:
        monkeypatch.setattr(af, "_exchange", lambda a, b: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        replace_folder(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.new", "out"]


def test_the_swap_is_one_atomic_exchange(tmp_path):
    """With renameat2 the target path never goes missing: it is the old folder, then the new one."""
    import svac.atomic_folder as af

    target, staging = tmp_path / "out", tmp_path / ".s"
    target.mkdir()
    staging.mkdir()
    (target / "v").write_text("old")
    (staging / "v").write_text("new")
    assert af._exchange(staging, target)
    assert (target / "v").read_text() == "new" and (staging / "v").read_text() == "old"


def test_folders_and_files_get_the_umask_permissions_not_0700(tmp_path):
    old = os.umask(0o027)
    try:
        with staged_folder(tmp_path / "out") as staging:
            (staging / "sub").mkdir()
        with reserve_folder(tmp_path / "other"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "out" / "sub").stat().st_mode & 0o777 == 0o750


def test_existing_results_are_refused_but_other_files_are_kept(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    (target / "result.json").write_text("old")
    results = {"result.json", "masks"}.__contains__
    with pytest.raises(OutputExistsError, match="--overwrite"):
        OutputFolder(target, results=results).open()
    with OutputFolder(target, overwrite=True, results=results) as folder:
        (folder.path / "result.json").write_text("new")
    assert (target / "notes.txt").read_text() == "mine" and (target / "result.json").read_text() == "new"
    assert _hidden(tmp_path) == []


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        OutputFolder(tmp_path / "out", overwrite=True).open()
    assert (tmp_path / "out").read_text() == "x"


# ---------------------------------------------------------------- leftovers of killed writers


def _name(target: str, mark: str, host: str, pid: int, start) -> str:
    return f".{target}{mark}{host}-{pid}-{start}-abcd1234"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleaning_removes_dead_owners_staging_only(tmp_path):
    me, start = os.getpid(), _start_time(os.getpid())
    dead = _dead_pid()
    entries = {
        "dead": _name("a", STAGING_MARK, _host(), dead, 12345),
        "reused_pid": _name("b", STAGING_MARK, _host(), me, int(start) + 1),  # our pid, another start time
        "alive": _name("c", STAGING_MARK, _host(), me, start),
        "other_host": _name("d", STAGING_MARK, "elsewhere", dead, 1),
        "dead_file": _name("e.csv", STAGING_MARK, _host(), dead, 7),
    }
    for key, name in entries.items():
        (tmp_path / name).mkdir() if key != "dead_file" else (tmp_path / name).write_text("x")
    (tmp_path / "results").mkdir()
    clean_stale(tmp_path)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"results", entries["alive"], entries["other_host"]}


def test_an_interrupted_two_rename_swap_is_rolled_back(tmp_path):
    """Killed between 'old aside' and 'new in': the old folder comes back, it is not deleted."""
    retired = tmp_path / _name("out", RETIRED_MARK, _host(), _dead_pid(), 1)
    retired.mkdir()
    (retired / "v").write_text("old")
    clean_stale(tmp_path)
    assert (tmp_path / "out" / "v").read_text() == "old" and not retired.exists()


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from svac.atomic_folder import staged_folder
    with staged_folder(sys.argv[1]) as staging:
        (staging / "half").write_text("x")
        print("writing", flush=True)
        time.sleep(60)
""")


def _writer(target):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def test_kill_9_leaves_a_staging_folder_that_the_next_run_removes(tmp_path):
    killed = _writer(tmp_path / "a")
    alive = _writer(tmp_path / "b")
    try:
        killed.kill()
        killed.wait()
        staging = [p.name for p in tmp_path.iterdir() if STAGING_MARK in p.name]
        assert len(staging) == 2
        with staged_folder(tmp_path / "c") as s:
            (s / "v").write_text("c")
        left = sorted(p.name for p in tmp_path.iterdir())
        # the dead writer's staging is gone; the live one's is kept; nothing took a staging folder for results
        assert [n for n in left if STAGING_MARK in n] == [n for n in staging if n.startswith(".b")]
        assert "a" not in left and (tmp_path / "c" / "v").read_text() == "c"
    finally:
        alive.kill()
        alive.wait()


# ---------------------------------------------------------------- the lock

HOLDER = textwrap.dedent("""
    import sys, time
    from svac.atomic_folder import FolderLock
    lock = FolderLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_second_writer_is_refused_with_the_owners_pid(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for overwrite in (False, True):
            with pytest.raises(OutputLockedError, match=f"process {holder.pid} "):
                OutputFolder(tmp_path / "out", overwrite=overwrite).open()
        assert [p.name for p in tmp_path.iterdir()] == [".out" + LOCK_SUFFIX]  # no staging was made
    finally:
        holder.kill()
        holder.wait()
    # the owner died (kill -9): its lock file is left, and taken over; a dead lock beside another target is removed
    assert (tmp_path / (".out" + LOCK_SUFFIX)).exists()
    (tmp_path / (".gone" + LOCK_SUFFIX)).write_text("{}")
    with staged_folder(tmp_path / "out") as s:
        (s / "v").write_text("v")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_lock_this_process_holds_is_borrowed_by_inner_writers(tmp_path):
    with FolderLock(tmp_path / "out") as outer:
        with staged_folder(tmp_path / "out") as s:  # e.g. save_pretrained inside a command that holds the lock
            (s / "v").write_text("v")
        assert outer.held and (tmp_path / (".out" + LOCK_SUFFIX)).exists()
        info = json.loads((tmp_path / (".out" + LOCK_SUFFIX)).read_text())
        assert info["pid"] == os.getpid()
    assert not (tmp_path / (".out" + LOCK_SUFFIX)).exists()
