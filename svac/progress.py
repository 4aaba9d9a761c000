"""Progress reporting: one hook for the command line's bars and any other display (e.g. the demo page).

Long-running library functions take a ``progress`` argument of type :data:`Progress`:

- ``False``: report nothing;
- ``True``: draw a tqdm bar per stage on stderr (what ``svac segment`` shows);
- a callable ``callback(event)``: receive a :class:`ProgressEvent` when a stage starts and after
  every unit of work, and draw nothing. The demo page feeds Gradio's progress tracker this way.

Both kinds see the same stages (``"SAM-2"`` frames, ``"masks"`` PNGs, ``"overlay"`` chunks, ...)
because both come from :func:`progress_bar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar, Union

from tqdm.auto import tqdm

T = TypeVar("T")


@dataclass(frozen=True)
class ProgressEvent:
    """The state of one stage of work.

    Attributes:
        stage: the stage's name, as on the command line's bar (``"SAM-2"``, ``"masks"``, ``"overlay"``).
        done: units finished so far in this stage (0 when the stage starts).
        total: units in the stage, or ``None`` when unknown.
        unit: what a unit is (``"frame"``, ``"png"``, ``"window"``).
    """

    stage: str
    done: int
    total: int | None
    unit: str

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or ``None`` when the total is unknown or zero."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


#: A function receiving progress events.
ProgressCallback = Callable[[ProgressEvent], None]
#: What a ``progress`` argument accepts: ``False`` (nothing), ``True`` (tqdm bars) or a :data:`ProgressCallback`.
Progress = Union[bool, ProgressCallback]


class _CallbackBar:
    """The subset of tqdm's interface svac uses (``update``, ``close``, context manager), sending events."""

    def __init__(self, callback: ProgressCallback, *, total: int | None, desc: str, unit: str) -> None:
        self._callback = callback
        self._total = total
        self._desc = desc
        self._unit = unit
        self._done = 0
        callback(ProgressEvent(desc, 0, total, unit))

    def update(self, n: int = 1) -> None:
        self._done += n
        self._callback(ProgressEvent(self._desc, self._done, self._total, self._unit))

    def close(self) -> None:
        """Nothing to release (tqdm compatibility)."""

    def __enter__(self) -> "_CallbackBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check(progress: Progress) -> None:
    if not isinstance(progress, bool) and not callable(progress):
        raise TypeError(f"progress must be True, False or a callable taking a ProgressEvent, "
                        f"got {type(progress).__name__}")


def progress_bar(progress: Progress, *, total: int | None, desc: str, unit: str):
    """A bar for one stage: tqdm when ``progress`` is a bool (hidden when false), events when it is a callback.

    Args:
        progress: ``True``, ``False`` or a :data:`ProgressCallback`.
        total: units in the stage (``None`` if unknown).
        desc: the stage's name.
        unit: the unit's name.

    Returns:
        An object with ``update(n=1)`` and ``close()``, usable as a context manager.

    Raises:
        TypeError: when ``progress`` is neither a bool nor callable.
    """
    _check(progress)
    if callable(progress):
        return _CallbackBar(progress, total=total, desc=desc, unit=unit)
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress)


def progress_iter(iterable: Iterable[T], progress: Progress, *, total: int | None, desc: str,
                  unit: str) -> Iterator[T]:
    """Yield from ``iterable``, reporting one unit of progress after each item is consumed (like ``tqdm(iterable)``).

    Raises:
        TypeError: when ``progress`` is neither a bool nor callable (at the call, not at the first item).
    """
    _check(progress)

    def items() -> Iterator[T]:
        with progress_bar(progress, total=total, desc=desc, unit=unit) as bar:
            for item in iterable:
                yield item
                bar.update(1)
    return items()
