"""Output folders written as a whole: staged beside the target, swapped in at the end, locked while written.

Every svac command that writes a folder of results (``svac segment``, ``chat --out``, ``export``,
``data synth``, checkpoints, prediction folders) goes through :class:`OutputFolder`:

- **Checked before any compute**: the target is not a file, its parent can be created and
  written (the lock file and the staging folder are created right away: that is the writability
  probe), the file system is not full, and a folder already holding results is refused unless
  ``overwrite``.
- **Locked**: a lock file beside the target (``.<name>.svac-lock``; inside it, ``.run.svac-lock``,
  for folders written in place such as an evaluation run), holding the owner's pid, host and
  start time, is held with ``flock`` while the folder is written, so a second run into the same
  folder refuses at once with :class:`~svac.errors.OutputLockedError`, whatever ``overwrite``
  says. The kernel releases the lock when its owner dies, so a stale lock file
  (``kill -9``) is simply taken over.
- **Staged and swapped**: results are written, incrementally, into a hidden staging folder
  beside the target (``.<name>.svac-staging-<host>-<pid>-<start>-<random>``, same file system).
  When the block ends normally the staging folder replaces the target in one atomic
  ``renameat2(RENAME_EXCHANGE)`` (two renames where the kernel lacks it), and the old folder is
  deleted. When the block fails, the staging folder is deleted. So the target holds, at every
  moment and after any failure, either its old contents or the new ones, never a mix; a run that
  fails on a new target leaves nothing.
- **Leftovers of killed runs are cleaned**: a staging (or retired) entry whose owner process is
  gone -- same host, pid not running or running with another start time, so a reused pid is not
  mistaken for the owner -- is removed by the next writer into the same parent folder. Staging
  names start with a dot and carry the ``.svac-staging-`` mark: no reader takes them for results.
- **Usual permissions**: folders and files are created with the process umask (``0o777 &
  ~umask``), unlike ``tempfile.mkdtemp`` / ``mkstemp`` (``0o700`` / ``0o600``).

A write that fails for lack of space or permission (``ENOSPC``, ``EDQUOT``, ``EROFS``, ``EACCES``,
``EPERM``) is reported as one :class:`~svac.errors.OutputWriteError` naming the target and
saying what it now holds.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from svac.errors import OutputExistsError, OutputLockedError, OutputWriteError

#: Suffix of the lock file beside a target: ``.<name>.svac-lock``.
LOCK_SUFFIX = ".svac-lock"
#: Mark of a staging entry's name: ``.<name>.svac-staging-<host>-<pid>-<start>-<random>``.
STAGING_MARK = ".svac-staging-"
#: Mark of a replaced folder waiting to be deleted: ``.<name>.svac-old-<host>-<pid>-<start>-<random>``.
RETIRED_MARK = ".svac-old-"
#: errno values that mean "this place cannot be written" (reported as :class:`OutputWriteError`).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
#: ``renameat2`` flag swapping two paths atomically (Linux >= 3.15; ext4, xfs, btrfs, tmpfs ...).
_RENAME_EXCHANGE = 2
#: ``renameat2``'s "relative to the current directory" file descriptor.
_AT_FDCWD = -100


# ----------------------------------------------------------------------------- owners of staging entries


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, Linux ``/proc``), or ``None`` when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def _owner_tag() -> str:
    pid = os.getpid()
    return f"{_host()}-{pid}-{_start_time(pid) or 0}"


def _alive(host: str, pid: int, start: str) -> bool:
    """Whether the owner ``(host, pid, start)`` of a staging entry may still be running.

    Entries of other hosts are assumed alive (a shared file system: their owner cannot be checked).
    """
    if host != _host():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    now = _start_time(pid)
    return now is None or start == "0" or now == start


def staging_name(target: Path, mark: str = STAGING_MARK) -> str:
    """A fresh hidden name beside ``target`` for a staging entry owned by this process."""
    return f".{target.name}{mark}{_owner_tag()}-{secrets.token_hex(4)}"


def _stale(entry_name: str) -> bool:
    for mark in (STAGING_MARK, RETIRED_MARK):
        head, sep, tail = entry_name.rpartition(mark)
        if not sep or not head.startswith("."):
            continue
        parts = tail.rsplit("-", 3)  # host may hold '-'... it does not: _host() maps it to '_'
        if len(parts) != 4 or not parts[1].isdigit():
            return False
        host, pid, start, _ = parts
        return not _alive(host, int(pid), start)
    return False


def clean_stale(parent: str | Path) -> list[Path]:
    """Delete staging and retired entries in ``parent`` whose owner process is gone (see the module docstring),
    and lock files no process holds.

    A retired folder (the old contents of a target, renamed aside during a non-atomic swap)
    whose target is missing is renamed back instead: the swap was interrupted before the new
    folder arrived.

    Returns:
        The entries removed or restored.
    """
    parent = Path(parent)
    done = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return done
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(LOCK_SUFFIX):
            if _remove_free_lock(Path(entry.path)):
                done.append(Path(entry.path))
            continue
        if not entry.name.startswith(".") or not _stale(entry.name):
            continue
        path = Path(entry.path)
        if RETIRED_MARK in entry.name:
            target = parent / entry.name[1:].rpartition(RETIRED_MARK)[0]
            if not target.exists() and not target.is_symlink():
                try:
                    os.rename(path, target)
                    done.append(path)
                    continue
                except OSError:
                    pass
        _remove(path)
        done.append(path)
    return done


def _remove_free_lock(path: Path) -> bool:
    """Remove a lock file nobody holds (its owner was killed); ``True`` when removed."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink()  # while holding it: a writer that opened it meanwhile sees the file gone and retries
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# ----------------------------------------------------------------------------- the lock


class FolderLock:
    """Exclusive right to write ``target``: ``flock`` on ``.<name>.svac-lock`` beside it (POSIX).

    The lock file holds the owner's pid, host and start time (for the error message). The kernel
    releases the lock when the owner exits or is killed, so a lock file left by a dead process is
    taken over. Taking a lock this process already holds (an outer caller holds it) succeeds
    without taking it again, and releasing that inner hold leaves the outer one in place.

    Args:
        target: the folder (or file) to be written.
        tag: distinguishes locks on one target that may be held at once (e.g. one per shard of a
            distributed evaluation writing the same run folder).
        inside: keep the lock file inside the target folder (``<target>/.run.svac-lock``, the
            folder is created) rather than beside it: for folders written in place, whose parent
            need not be writable.
    """

    def __init__(self, target: str | Path, *, tag: str = "", inside: bool = False) -> None:
        self.target = Path(os.path.abspath(target))
        self.path = (self.target / f".run{tag}{LOCK_SUFFIX}" if inside
                     else self.target.parent / f".{self.target.name}{tag}{LOCK_SUFFIX}")
        self._fd: int | None = None
        self._borrowed = False

    @property
    def held(self) -> bool:
        """Whether this object holds (or borrows) the lock."""
        return self._fd is not None or self._borrowed

    def acquire(self) -> "FolderLock":
        """Take the lock, or refuse at once.

        Raises:
            svac.errors.OutputLockedError: another process holds it (the message names its pid).
            svac.errors.OutputWriteError: the parent folder cannot be created or written.
        """
        import fcntl

        with write_errors(self.target, "lock"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    owner = self._owner()
                    if owner.get("pid") == os.getpid() and owner.get("host") == _host():
                        self._borrowed = True
                        return self
                    who = (f"process {owner['pid']} on {owner.get('host', '?')}, started "
                           f"{owner.get('since', '?')}" if "pid" in owner else "another process")
                    raise OutputLockedError(f"{self.target} is being written by another svac run ({who}); wait for "
                                            "it to finish or choose another output folder") from None
                except OSError as exc:  # ENOLCK / EOPNOTSUPP: this file system has no locks
                    os.close(fd)
                    raise OutputWriteError(f"cannot lock {self.path}: {exc.strerror}; this file system does not "
                                           "support file locks, choose an output folder on another one") from exc
                try:
                    same = os.stat(self.path)
                except FileNotFoundError:
                    same = None
                mine = os.fstat(fd)
                if same is None or (same.st_dev, same.st_ino) != (mine.st_dev, mine.st_ino):
                    os.close(fd)  # the previous owner removed the file as we opened it: take the new one
                    continue
                info = {"pid": os.getpid(), "host": _host(), "start": _start_time(os.getpid()),
                        "since": time.strftime("%Y-%m-%d %H:%M:%S")}
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps(info).encode())
                self._fd = fd
                return self

    def _owner(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def release(self) -> None:
        """Give the lock back (and remove the lock file); a borrowed hold is just forgotten."""
        if self._fd is not None:
            try:
                self.path.unlink()
            except OSError:
                pass
            os.close(self._fd)
        self._fd = None
        self._borrowed = False

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------------------- checks and errors


def check_writable(target: str | Path, *, folder: bool = True, in_place: bool = False) -> Path:
    """The writability probe: refuse a target that is a file (when a folder is wanted), on a full or
    read-only file system, or in a place that cannot be written.

    Creates the missing parents of ``target`` (not ``target`` itself).

    Args:
        target: the output.
        folder: a folder is wanted (a file at ``target`` is refused).
        in_place: the output is written inside ``target`` (checked itself when it exists); otherwise
            it is staged beside it and renamed, which needs its parent (and ``target``) writable.

    Returns:
        ``target`` as an absolute path.

    Raises:
        svac.errors.OutputExistsError: ``target`` is a file and a folder is wanted.
        svac.errors.OutputWriteError: the place cannot be created or written, or has no free space.
    """
    target = Path(os.path.abspath(target))
    if folder and (target.is_file() or (target.exists() and not target.is_dir())):
        raise OutputExistsError(f"{target} is a file, not a folder; choose a folder for the output")
    with write_errors(target, "create"):
        target.parent.mkdir(parents=True, exist_ok=True)
        if in_place:
            places = [target if target.exists() else target.parent]
        else:
            places = [target.parent] + ([target] if target.exists() else [])
        for place in places:
            st = os.statvfs(place)
            if st.f_flag & os.ST_RDONLY:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(place))
            if not os.access(place, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(place))
            if st.f_bavail == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(place))
    return target


@contextmanager
def write_errors(target: str | Path, action: str = "write") -> Iterator[None]:
    """Turn an ``OSError`` meaning "cannot write here" inside the block into one :class:`OutputWriteError`."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, OutputWriteError) or exc.errno not in WRITE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(target) else ""
        raise OutputWriteError(f"cannot {action} {target}: {exc.strerror or exc}{where}") from exc


def unexpected_entries(folder: Path, allowed: Callable[[str], bool]) -> list[str]:
    """Names in ``folder`` that ``allowed`` does not accept (svac's hidden staging, retired and lock entries excepted)."""
    return sorted(n for n in os.listdir(folder)
                  if not allowed(n) and not (n.startswith(".") and (STAGING_MARK in n or RETIRED_MARK in n
                                                                    or n.endswith(LOCK_SUFFIX))))


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst`` with hard links to its files (copies where links are refused)."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        os.mkdir(dst)
        shutil.copystat(src, dst)
        for child in os.listdir(src):
            _link_tree(src / child, dst / child)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


@contextmanager
def reserve_folder(target: str | Path, *, overwrite: bool | None = None, tag: str = "",
                   what: str = "results") -> Iterator[FolderLock]:
    """Hold the right to write ``target`` for a whole command, checked before any compute.

    For outputs that are not written as one staged folder (a resumable evaluation or training
    run, a few result files beside others) or that a library call stages later (a checkpoint):
    the writability probe (:func:`check_writable`), the lock (:class:`FolderLock`, kept inside
    ``target``, so a second run refuses at once and the parent need not be writable), and the
    cleaning of dead staging entries inside ``target``.

    Args:
        target: the output folder.
        overwrite: ``False`` refuses a non-empty ``target``; ``None`` does not look inside.
        tag: see :class:`FolderLock`.
        what: a word for messages.

    Raises:
        svac.errors.OutputExistsError: ``target`` is a file, or not empty while ``overwrite`` is ``False``.
        svac.errors.OutputLockedError: another run is writing ``target``.
        svac.errors.OutputWriteError: ``target`` cannot be written.
    """
    target = check_writable(target, in_place=True)
    created = not target.exists()
    try:
        with FolderLock(target, tag=tag, inside=True) as lock:
            clean_stale(target)
            if overwrite is False:
                present = unexpected_entries(target, lambda name: False)
                if present:
                    raise OutputExistsError(f"{target} already holds {what} ({', '.join(present[:5])}); choose "
                                            "another folder or pass --overwrite")
            yield lock
    finally:
        if created:  # a folder made for the lock alone is not left behind
            try:
                target.rmdir()
            except OSError:
                pass


# ----------------------------------------------------------------------------- the folder


class OutputFolder:
    """A folder written as a whole (see the module docstring): ``with OutputFolder(out) as f: write into f.path``.

    Entering checks the target, takes its lock, cleans dead staging entries beside it and creates
    the staging folder (all before any compute the caller does inside the block). Leaving the
    block normally swaps the staging folder in; leaving it by an exception deletes the staging
    folder and keeps the target as it was.

    Args:
        target: the folder to write.
        overwrite: replace a target that already holds results; without it such a target is refused.
        results: when given, tells which entry names of the target are svac's results (e.g.
            ``masks``, ``overlay.mp4``, ``result.json``): only those are replaced, and every other
            entry of the old target is carried into the new one (hard links, so nothing is
            copied and nothing of the user's is ever deleted). ``None``: the whole folder is
            svac's (a checkpoint), every entry counts as a result.
        commit_on_exit: swap the staging folder in when the block ends normally (``False``: only
            :meth:`commit` does, e.g. a chat session that saves nothing keeps the old folder).
        what: a word for messages (``"results"``, ``"checkpoint"``).

    Raises (on entering):
        svac.errors.OutputExistsError: the target is a file, holds results without ``overwrite``,
            (or, with ``results``, the target holds no result but is not a folder).
        svac.errors.OutputLockedError: another run is writing the target.
        svac.errors.OutputWriteError: the target cannot be written (permission, read-only or full).
    """

    def __init__(self, target: str | Path, *, overwrite: bool = False, results: Callable[[str], bool] | None = None,
                 commit_on_exit: bool = True, what: str = "results") -> None:
        self.target = Path(os.path.abspath(target))
        self.overwrite = overwrite
        self.results = results
        self.commit_on_exit = commit_on_exit
        self.what = what
        self.lock = FolderLock(self.target)
        self.staging: Path | None = None
        self.committed = False
        self._existed = False

    @property
    def path(self) -> Path:
        """Where to write: the staging folder before :meth:`commit`, the target after it."""
        if self.committed:
            return self.target
        if self.staging is None:
            raise RuntimeError("the output folder is not open: use it in a with block")
        return self.staging

    def open(self) -> "OutputFolder":
        """Check, lock, clean and create the staging folder (see the class docstring)."""
        check_writable(self.target)
        self.lock.acquire()
        try:
            clean_stale(self.target.parent)
            self._existed = self.target.is_dir()
            if self._existed:
                self._check_contents()
            with write_errors(self.target, "write"):
                staging = self.target.parent / staging_name(self.target)
                os.mkdir(staging)  # 0o777 & ~umask, like any folder the user makes
                self.staging = staging
        except BaseException:
            self.lock.release()
            raise
        return self

    def _check_contents(self) -> None:
        present = [n for n in unexpected_entries(self.target, lambda name: False)
                   if self.results is None or self.results(n)]
        if present and not self.overwrite:
            shown = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "")
            raise OutputExistsError(f"{self.target} already holds {self.what} ({shown}); choose another folder or "
                                    "pass --overwrite (overwrite=True)")

    def commit(self) -> None:
        """Swap the staging folder in place of the target (atomic); the folder stays locked until closed.

        Raises:
            svac.errors.OutputWriteError: the swap failed (the target keeps its old contents).
        """
        if self.committed:
            return
        staging = self.path
        with write_errors(self.target, "replace"):
            if self.results is not None and self.target.is_dir():
                for name in unexpected_entries(self.target, self.results):
                    if not (staging / name).exists():
                        _link_tree(self.target / name, staging / name)
            replace_folder(staging, self.target)
        self.staging = None
        self.committed = True

    def close(self, failed: bool = False) -> None:
        """Delete an uncommitted staging folder and release the lock."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self.lock.release()

    def describe_failure(self) -> str:
        """What the target holds after a failed write (for messages)."""
        if self.committed:
            return f"{self.target} holds the entries written before the failure"
        return (f"{self.target} keeps its previous {self.what}" if self._existed
                else f"nothing was written at {self.target}")

    def __enter__(self) -> "OutputFolder":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.commit_on_exit:
                self.commit()
        except BaseException:
            self.close(failed=True)
            raise
        self.close(failed=exc_type is not None)
        if isinstance(exc, OSError) and not isinstance(exc, OutputWriteError) and exc.errno in WRITE_ERRNOS:
            where = f" ({exc.filename})" if exc.filename else ""
            raise OutputWriteError(f"cannot write {self.target}: {exc.strerror or exc}{where}; "
                                   f"{self.describe_failure()}") from exc


@contextmanager
def staged_folder(target: str | Path, *, overwrite: bool = True, suffix: str = "",
                  results: Callable[[str], bool] | None = None, what: str = "results") -> Iterator[Path]:
    """Yield a staging folder that replaces ``target`` as a whole when the block ends normally.

    A shorthand for :class:`OutputFolder` (the target is checked, locked, staged and swapped).

    Args:
        target: the folder to write (its parents are created).
        overwrite: replace a non-empty ``target`` (default ``True``: the caller decided).
        suffix: ignored (kept for callers of the former signature).
        results: see :class:`OutputFolder`.
        what: a word for messages.

    Raises:
        see :class:`OutputFolder`.
    """
    with OutputFolder(target, overwrite=overwrite, results=results, what=what) as folder:
        yield folder.path


def replace_folder(staging: str | Path, target: str | Path) -> None:
    """Put the finished folder ``staging`` at ``target``, replacing an existing ``target`` as a whole.

    With an existing target the two are exchanged in one ``renameat2(RENAME_EXCHANGE)`` call and
    the old folder (now at ``staging``'s path) is deleted. Where the kernel or file system lacks
    the exchange, the old target is renamed aside first (``.<name>.svac-old-...``) and restored if
    the second rename fails; should the process die between the two renames, the next
    :func:`clean_stale` renames it back.

    Raises:
        OSError: when a rename fails (``target`` then holds its previous contents).
    """
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)
        return
    retired = target.parent / staging_name(target, RETIRED_MARK)
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; ``False`` when unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


# ----------------------------------------------------------------------------- single files


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a fresh hidden file path beside ``path`` that is renamed to ``path`` when the block ends normally.

    The file is created empty with the umask's permissions (``0o666 & ~umask``); on failure it is
    deleted. Its name carries the staging mark, so a killed writer's leftover is cleaned by
    :func:`clean_stale`.
    """
    path = Path(path)
    tmp = path.parent / staging_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
