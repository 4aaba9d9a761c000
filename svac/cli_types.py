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


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value
