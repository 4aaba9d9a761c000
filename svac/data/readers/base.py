"""What every dataset reader shares: the sample sequence, skip accounting and file helpers.

A reader parses a dataset's annotation files once, at construction, into a
list of :class:`~svac.data.sample.ReferringSample`. Parsing reads JSON,
lists frame folders and (with ``check_sizes``) reads image *headers*; it never
decodes pixels. Masks are decoded later, by each sample's ``mask_loader``,
only for the frame positions asked for.

Invalid annotations raise :class:`InvalidAnnotation` (an
:class:`~svac.errors.AnnotationError` that also says *why*, as one of the
``REASON_*`` strings). With ``skip_invalid=True`` a reader drops the affected
expressions instead, counts them in a :class:`SkipReport` and emits one
:class:`SkippedAnnotationsWarning` at the end.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from svac.data.sample import ReferringSample
from svac.errors import AnnotationError

REASON_MISSING_FRAME = "missing frame"
REASON_MISSING_MASK = "missing mask"
REASON_SIZE_MISMATCH = "size mismatch"
REASON_NO_OBJECT = "no object"
REASON_MISSING_ANNO_ID = "missing anno_id"
REASON_MALFORMED = "malformed entry"

#: Frame file suffixes a reader looks for, in order of preference when two
#: files share a stem (benchmarks ship ``.jpg``; the custom format allows all).
FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")

_DIGITS = re.compile(r"(\d+)")


class InvalidAnnotation(AnnotationError):
    """An annotation problem that invalidates one expression (or every expression of a video).

    Attributes:
        reason: one of the ``REASON_*`` constants of this module, used to
            count skipped expressions (e.g. ``"missing frame"``).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SkippedAnnotationsWarning(UserWarning):
    """Emitted once by a reader built with ``skip_invalid=True`` that dropped expressions."""


@dataclass(frozen=True)
class SkippedExpression:
    """One expression a reader dropped.

    Attributes:
        video_id: the video the expression belongs to.
        exp_id: the expression id, or ``None`` when the video entry was too
            malformed to enumerate its expressions (then it counts as one).
        reason: one of the ``REASON_*`` constants.
        message: the full error message (names the file).
    """

    video_id: str
    exp_id: str | None
    reason: str
    message: str


@dataclass(frozen=True)
class SkipReport:
    """How many expressions a reader read and dropped, and why.

    Attributes:
        dataset: registry name of the dataset (e.g. ``"mevis"``).
        split: the split read.
        total: expressions seen (kept + skipped).
        skipped: the dropped expressions, in file order.
    """

    dataset: str
    split: str
    total: int
    skipped: tuple[SkippedExpression, ...] = ()

    @property
    def num_skipped(self) -> int:
        """Number of dropped expressions."""
        return len(self.skipped)

    @property
    def counts(self) -> dict[str, int]:
        """Dropped expressions per reason, most frequent first (ties by name)."""
        counter = Counter(item.reason for item in self.skipped)
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        """One line, e.g. ``"skipped 3 of 120 expressions: 2 missing frame, 1 no object"``."""
        text = f"skipped {self.num_skipped} of {self.total} expressions"
        if self.skipped:
            text += ": " + ", ".join(f"{n} {reason}" for reason, n in self.counts.items())
        return text


class ReferringDataset(Sequence[ReferringSample]):
    """A parsed dataset split: an immutable sequence of :class:`ReferringSample`.

    Supports ``len()``, iteration and indexing (ints, negative ints, slices).
    Subclasses parse their format in ``__init__`` through :meth:`_collector`
    and finish with :meth:`_seal`.

    Attributes:
        name: registry name of the dataset; every sample's ``dataset`` field.
        root: the dataset root folder.
        split: the split read.
        skip_invalid: whether invalid expressions are dropped instead of raising.
        skip_report: counts of expressions read and dropped (:class:`SkipReport`).
    """

    def __init__(self, name: str, root: Path, split: str, *, skip_invalid: bool) -> None:
        self.name = name
        self.root = root
        self.split = split
        self.skip_invalid = skip_invalid
        self._samples: tuple[ReferringSample, ...] = ()
        self.skip_report = SkipReport(dataset=name, split=split, total=0)

    def _collector(self) -> SampleCollector:
        return SampleCollector(self.name, self.split, skip_invalid=self.skip_invalid)

    def _seal(self, collector: SampleCollector) -> None:
        self._samples, self.skip_report = collector.finish()

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, index: int) -> ReferringSample: ...

    @overload
    def __getitem__(self, index: slice) -> list[ReferringSample]: ...

    def __getitem__(self, index: int | slice) -> ReferringSample | list[ReferringSample]:
        if isinstance(index, slice):
            return list(self._samples[index])
        return self._samples[index]

    def __iter__(self) -> Iterator[ReferringSample]:
        return iter(self._samples)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self)}, skipped={self.skip_report.num_skipped})"
        )


class SampleCollector:
    """Gathers samples while parsing; raises or records invalid expressions.

    Args:
        dataset: registry name, used in the report.
        split: split name, used in the report.
        skip_invalid: record problems instead of raising them.
    """

    def __init__(self, dataset: str, split: str, *, skip_invalid: bool) -> None:
        self._dataset = dataset
        self._split = split
        self._skip_invalid = skip_invalid
        self._samples: list[ReferringSample] = []
        self._skipped: list[SkippedExpression] = []

    def add(self, sample: ReferringSample) -> None:
        """Keep a valid sample."""
        self._samples.append(sample)

    def reject(self, error: InvalidAnnotation, video_id: str, exp_ids: Sequence[str | None]) -> None:
        """Drop the expressions ``exp_ids`` of ``video_id`` for ``error``.

        Raises:
            InvalidAnnotation: ``error`` itself, unless the collector skips invalid samples.
        """
        if not self._skip_invalid:
            raise error
        for exp_id in exp_ids or [None]:
            self._skipped.append(SkippedExpression(video_id, exp_id, error.reason, str(error)))

    def finish(self) -> tuple[tuple[ReferringSample, ...], SkipReport]:
        """Return the kept samples and the report; warn once if anything was dropped."""
        report = SkipReport(
            dataset=self._dataset,
            split=self._split,
            total=len(self._samples) + len(self._skipped),
            skipped=tuple(self._skipped),
        )
        if report.skipped:
            warnings.warn(
                f"{self._dataset} ({self._split}): {report.summary()}",
                SkippedAnnotationsWarning,
                stacklevel=_stacklevel_outside_package(),
            )
        return tuple(self._samples), report


def _stacklevel_outside_package() -> int:
    """``stacklevel`` that makes a warning point at the first caller outside this package."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package_dir:
        frame = frame.f_back
        level += 1
    return level


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON annotation file.

    Args:
        path: the file.
        what: what the file is, for messages (e.g. ``"MeViS meta_expressions"``).

    Raises:
        AnnotationError: the file is missing, unreadable, or not valid JSON
            (message names the file, line and column).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise AnnotationError(f"{path}: {what} file not found") from exc
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{path}: malformed JSON in {what} file (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read {what} file ({exc})") from exc


def require_mapping(value: Any, key: str, path: Path) -> dict:
    """Return ``value[key]`` when ``value`` is a dict holding a dict under ``key``.

    Raises:
        AnnotationError: otherwise, naming the file and the key.
    """
    if not isinstance(value, dict) or not isinstance(value.get(key), dict):
        raise AnnotationError(f"{path}: expected a JSON object with a {key!r} object at the top level")
    return value[key]


def require_dir(path: Path, expected: str) -> Path:
    """Return ``path`` if it is a folder.

    Args:
        path: the folder.
        expected: a description of the expected layout, put in the message.

    Raises:
        AnnotationError: ``path`` is missing or not a folder.
    """
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise AnnotationError(f"{path} {state}; expected {expected}")
    return path


def natural_key(name: str) -> tuple:
    """Sort key that compares digit runs as numbers (``frame_2`` before ``frame_10``)."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


class FolderIndex:
    """Lists each frame / mask folder once and answers name look-ups from memory.

    Listing a folder costs one ``scandir``; this avoids one ``stat`` per frame
    on datasets with hundreds of thousands of frames.
    """

    def __init__(self) -> None:
        self._cache: dict[Path, frozenset[str] | None] = {}

    def names(self, folder: Path) -> frozenset[str] | None:
        """File names in ``folder``, or ``None`` when it is not a folder."""
        if folder not in self._cache:
            try:
                self._cache[folder] = frozenset(entry.name for entry in _scandir(folder) if not entry.is_dir())
            except (FileNotFoundError, NotADirectoryError):
                self._cache[folder] = None
        return self._cache[folder]

    def find_frame(self, folder: Path, stem: str, suffixes: Sequence[str] = FRAME_SUFFIXES) -> Path | None:
        """Path of the frame named ``stem`` + one of ``suffixes`` (first found), else ``None``."""
        names = self.names(folder)
        if names is None:
            return None
        for suffix in suffixes:
            if stem + suffix in names:
                return folder / (stem + suffix)
        return None

    def has_file(self, path: Path) -> bool:
        """Whether ``path`` is a file (looked up in its folder's listing)."""
        names = self.names(path.parent)
        return names is not None and path.name in names


def _scandir(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return list(entries)


def resolve_frames(
    index: FolderIndex, folder: Path, frame_names: Sequence[str], *, source: Path, video_id: str
) -> tuple[Path, ...]:
    """Paths of the listed frames of one video, in the listed (temporal) order.

    Args:
        index: the reader's folder listing cache.
        folder: the video's frame folder.
        frame_names: frame stems as listed by the annotation file (e.g. ``"00005"``).
        source: the annotation file, named in messages.
        video_id: the video, named in messages.

    Raises:
        InvalidAnnotation: (``missing frame``) the folder or a frame is missing.
    """
    if index.names(folder) is None:
        raise InvalidAnnotation(
            f"{source}: video {video_id!r}: frame folder {folder} does not exist", reason=REASON_MISSING_FRAME
        )
    paths = []
    for name in frame_names:
        path = index.find_frame(folder, name)
        if path is None:
            raise InvalidAnnotation(
                f"{source}: video {video_id!r}: frame file {folder / (name + FRAME_SUFFIXES[0])} not found "
                f"(looked for suffixes {', '.join(FRAME_SUFFIXES)})",
                reason=REASON_MISSING_FRAME,
            )
        paths.append(path)
    return tuple(paths)


def parse_frame_list(value: Any, *, source: Path, video_id: str) -> list[str]:
    """Validate a video's ``"frames"`` entry: a non-empty list of unique strings.

    Raises:
        InvalidAnnotation: (``malformed entry``) otherwise.
    """
    if not isinstance(value, list) or not value or not all(isinstance(name, str) and name for name in value):
        raise InvalidAnnotation(
            f"{source}: video {video_id!r}: 'frames' must be a non-empty list of frame names", reason=REASON_MALFORMED
        )
    if len(set(value)) != len(value):
        raise InvalidAnnotation(f"{source}: video {video_id!r}: 'frames' lists a frame twice", reason=REASON_MALFORMED)
    return value


def parse_int_ids(value: Any, *, source: Path, video_id: str, exp_id: str, key: str) -> tuple[int, ...]:
    """Parse object ids given as an int, a digit string, or a list of those.

    Raises:
        InvalidAnnotation: (``malformed entry``) for anything else (bools, floats, words).
    """
    items = value if isinstance(value, list) else [value]
    ids = []
    for item in items:
        if isinstance(item, bool):
            item = None
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            item = int(item)
        if not isinstance(item, int):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: {key!r} must be an integer id or a list of them, "
                f"got {value!r}",
                reason=REASON_MALFORMED,
            )
        ids.append(item)
    return tuple(ids)


def parse_text(value: Any, *, source: Path, video_id: str, exp_id: str, key: str) -> str:
    """Return the expression text, which must be a non-blank string.

    Raises:
        InvalidAnnotation: (``malformed entry``) otherwise.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidAnnotation(
            f"{source}: video {video_id!r} expression {exp_id!r}: {key!r} must be a non-empty string, got {value!r}",
            reason=REASON_MALFORMED,
        )
    return value
