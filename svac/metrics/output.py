"""Atomic, no-clobber writing of metric result files (CSV, JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

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

    A reader never sees a half-written file, and an interrupted write leaves any previous file
    intact. The file gets the usual permissions (``0o666 & ~umask``).

    Raises:
        svac.errors.OutputExistsError: when ``path`` exists and ``overwrite`` is False.
        OSError: when the folder cannot be written.
    """
    write_texts_atomic({path: text}, overwrite=overwrite)


def report_json(payload: dict, out: str | os.PathLike[str] | None) -> str:
    """Print ``payload`` as indented JSON and, when ``out`` is given, write it there too (never over a file).

    What the probe and evaluation command lines (``python -m svac.evaluation.feature_probe`` ...) end with.

    Returns:
        The JSON text.

    Raises:
        svac.errors.OutputExistsError: when ``out`` exists (checked before printing).
        OSError: when ``out``'s folder cannot be written.
    """
    import json

    text = json.dumps(payload, indent=1)
    if out:
        write_text_atomic(Path(out), text + "\n", overwrite=False)
    print(text)
    return text


def write_texts_atomic(files: Mapping[Path, str], *, overwrite: bool) -> None:
    """Write several UTF-8 files as one set: every file is written to a temporary file first, then all are renamed.

    A failure while writing (a full disk, a permission error) leaves every previous file intact
    and no new one; the renames that follow do not allocate space.

    Raises:
        svac.errors.OutputExistsError: when one of the paths exists and ``overwrite`` is False.
        OSError: when a folder cannot be written.
    """
    from svac.atomic_folder import staging_name

    paths = [Path(p) for p in files]
    refuse_existing(paths, overwrite=overwrite)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in zip(paths, files.values()):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / staging_name(path)
            staged.append((tmp, path))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
