"""Atomic, no-clobber writing of metric result files (CSV, JSON)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from svac.errors import OutputExistsError


def refuse_existing(paths: Iterable[Path], *, overwrite: bool) -> None:
    """Raise when any of ``paths`` exists and ``overwrite`` is False.

    Raises:
        svac.errors.OutputExistsError: naming every existing file.
    """
    if overwrite:
        return
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise OutputExistsError(
            f"refusing to overwrite existing result files: {', '.join(existing)} (pass overwrite=True)"
        )


def write_text_atomic(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves
    any previous file intact.

    Raises:
        svac.errors.OutputExistsError: when ``path`` exists and ``overwrite`` is False.
        OSError: when the folder cannot be written.
    """
    refuse_existing([path], overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
