"""Value types of svac's command-line options: bad values are refused while the arguments are parsed.

Each function is an ``argparse`` ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with a one-line message, which argparse prints as
``svac <command>: error: argument --frames: ...`` (exit code 2) before any model is built.
"""

from __future__ import annotations

import argparse
import math

#: Largest TCP port number.
MAX_PORT = 65535


def positive_int(text: str) -> int:
    """An integer >= 1 (frames, clip lengths, counts, steps)."""
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (seeds)."""
    return _int_at_least(text, 0)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def positive_int_list(text: str) -> list[int]:
    """Integers >= 1 separated by commas or spaces, at least one (``5,10,20``)."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return [_int_at_least(p, 1) for p in parts]


def port(text: str) -> int:
    """A TCP port number, 1 to 65535."""
    value = _int_at_least(text, 1)
    if value > MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to {MAX_PORT}, got {text!r}")
    return value


def device(text: str) -> str:
    """A device name svac runs on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    from svac.config import check_device
    from svac.errors import ConfigError

    try:
        return check_device(text, where="the device")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def frame_size(text: str) -> tuple[int, int]:
    """A frame size ``WxH`` in pixels, both >= 1 (``160x120``)."""
    width, sep, height = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        size = (int(width), int(height))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 160x120 (width x height in pixels), got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"width and height must be >= 1 pixel, got {text!r}")
    return size


def click(text: str) -> tuple[float, float, int]:
    """A click ``X,Y,LABEL``: pixel coordinates of the original video frame and 1 (the object is here) or 0 (it is not).

    The coordinates are checked against the frame once the result is read (:func:`svac.refinement.check_correction`).
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"must look like 320,240,1 (x, y in pixels, then 1 or 0), got {text!r}")
    x, y = (_finite(p, text) for p in parts[:2])
    if parts[2] not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"the label (third number) must be 1 (the object is here) or 0 (it is not), "
                                         f"got {text!r}")
    return x, y, int(parts[2])


def box(text: str) -> tuple[float, float, float, float]:
    """A box ``X0,Y0,X1,Y1``: top-left and bottom-right corners in pixels of the original video frame."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"must look like 100,80,260,200 (x0, y0, x1, y1 in pixels), got {text!r}")
    x0, y0, x1, y1 = (_finite(p, text) for p in parts)
    if not (x0 < x1 and y0 < y1):
        raise argparse.ArgumentTypeError(f"needs x0 < x1 and y0 < y1 (top-left, then bottom-right corner), "
                                         f"got {text!r}")
    return x0, y0, x1, y1


def _finite(part: str, text: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"coordinates must be finite numbers of pixels, got {text!r}")
    return value


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value
