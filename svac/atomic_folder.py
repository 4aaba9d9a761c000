"""Write a whole folder at once: build it in a hidden staging folder beside the target, then rename it.

A reader never sees a half-written checkpoint, prediction folder or diagnostic output, and a
failure (an exception, Ctrl-C) leaves the previous folder as it was and no staging folder behind.
Used by the svac checkpoint writers, the prediction PNG writer and the click-oracle diagnostic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def staged_folder(target: str | Path, *, suffix: str = ".partial") -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``target`` when the ``with`` block ends normally.

    The staging folder is created beside ``target`` (same file system, so the final rename is
    atomic), named ``.<target name>.<random><suffix>``. On a normal exit it is renamed to
    ``target`` by :func:`replace_folder`; when the block raises, it is deleted and ``target``
    is untouched. Whether an existing ``target`` may be replaced is the caller's decision: check
    it before entering the block.

    Args:
        target: the folder to write (its parents are created).
        suffix: suffix of the staging folder's name.

    Yields:
        The staging folder (a :class:`pathlib.Path`).

    Raises:
        OSError: when the parent folder cannot be written or the rename fails (then ``target``
            keeps its previous contents).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))
    try:
        yield staging
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_folder(staging: str | Path, target: str | Path) -> None:
    """Rename the finished folder ``staging`` to ``target``, replacing an existing ``target``.

    An existing ``target`` is first renamed aside (``.<name>.<random>.old``), restored if the
    second rename fails, and deleted once ``staging`` is in place; so at every moment either the
    old or the new folder is complete at ``target`` (except between the two renames).

    Raises:
        OSError: when a rename fails (``target`` then holds its previous contents).
    """
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.replace(staging, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    backup.rmdir()
    os.replace(target, backup)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
