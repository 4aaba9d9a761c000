"""Backgrounds of the synthetic referring-video benchmark.

Synthetic backgrounds (plain, noisy, gradient) are dark and muted, so the
bright named colors of the shapes always stand out; they are static over the
video. Real backgrounds are consecutive frames of real videos (e.g. DAVIS
``JPEGImages/480p/<seq>``) scaled to cover the frame and cropped, read only
from a folder the caller names explicitly.

Units: sizes are (W, H) in pixels; arrays are uint8 RGB. Source: project
design for the synthetic benchmark (issue 3, item 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from svac.errors import ConfigError, VideoReadError

BACKGROUND_PLAIN = "plain"
BACKGROUND_NOISY = "noisy"
BACKGROUND_GRADIENT = "gradient"
#: Kinds of synthetic background, drawn uniformly.
SYNTHETIC_BACKGROUNDS: tuple[str, ...] = (BACKGROUND_PLAIN, BACKGROUND_NOISY, BACKGROUND_GRADIENT)

#: Range of the base gray level of synthetic backgrounds (0-255); darker than every palette color.
BACKGROUND_GRAY_RANGE = (25, 95)
#: Largest per-channel tint added to the gray level (0-255 units).
BACKGROUND_TINT = 12
#: Half-width of the uniform per-pixel noise of ``noisy`` backgrounds (0-255 units).
BACKGROUND_NOISE = 14
#: Image file suffixes read as real background frames.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})


def synthetic_background(rng: np.random.Generator, kind: str, size: tuple[int, int], num_frames: int) -> np.ndarray:
    """A static synthetic background repeated over ``num_frames`` frames.

    Args:
        rng: random generator (the only source of randomness).
        kind: ``"plain"`` (one muted color), ``"noisy"`` (muted color plus
            uniform per-pixel noise) or ``"gradient"`` (linear blend of two
            muted colors along a random direction).
        size: frame (W, H) in pixels.
        num_frames: number of frames T.

    Returns:
        read-only uint8 ``(T, H, W, 3)`` array (one image broadcast over time).

    Raises:
        ConfigError: for an unknown kind.
    """
    width, height = size
    if kind == BACKGROUND_PLAIN:
        image = np.broadcast_to(_muted_color(rng), (height, width, 3)).astype(np.uint8)
    elif kind == BACKGROUND_NOISY:
        base = _muted_color(rng).astype(np.int16)
        noise = rng.integers(-BACKGROUND_NOISE, BACKGROUND_NOISE + 1, size=(height, width, 3), dtype=np.int16)
        image = np.clip(base + noise, 0, 255).astype(np.uint8)
    elif kind == BACKGROUND_GRADIENT:
        first, second = _muted_color(rng), _muted_color(rng)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        ramp = xs * np.cos(angle) + ys * np.sin(angle)
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
        image = np.rint(first + ramp[..., None] * (second - first)).astype(np.uint8)
    else:
        raise ConfigError(f"unknown background kind {kind!r}; expected one of {SYNTHETIC_BACKGROUNDS}")
    return np.broadcast_to(image, (num_frames, height, width, 3))


def _muted_color(rng: np.random.Generator) -> np.ndarray:
    gray = rng.integers(BACKGROUND_GRAY_RANGE[0], BACKGROUND_GRAY_RANGE[1] + 1)
    tint = rng.integers(-BACKGROUND_TINT, BACKGROUND_TINT + 1, size=3)
    return np.clip(gray + tint, 0, 255).astype(np.float64)


class RealBackgrounds:
    """Real video frames used as moving backgrounds (the ``real_backgrounds`` domain).

    ``root`` is either one sequence folder of frame images or a folder of such
    sequence folders (e.g. DAVIS ``JPEGImages/480p``); frames of a sequence
    are taken in file-name order. A clip is a run of consecutive frames of one
    sequence (played back and forth when the sequence is shorter than the
    clip), scaled to cover the requested size and cropped at a random offset.
    Scaled frames are kept in memory per instance, so reuse one instance for
    many videos.

    Raises:
        ConfigError: at construction when ``root`` is not a folder or holds no frame images.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"backgrounds folder {self.root} does not exist or is not a folder")
        sequences = [self.root] if _frame_files(self.root) else []
        sequences += [child for child in sorted(self.root.iterdir()) if child.is_dir() and _frame_files(child)]
        if not sequences:
            raise ConfigError(
                f"backgrounds folder {self.root} holds no frame images ({sorted(IMAGE_SUFFIXES)}) "
                "directly or in sub-folders"
            )
        self.sequences: tuple[Path, ...] = tuple(sequences)
        self._cache: dict[tuple[Path, int, int], np.ndarray] = {}

    def clip(self, rng: np.random.Generator, num_frames: int, size: tuple[int, int]) -> tuple[np.ndarray, str]:
        """A background clip of ``num_frames`` frames of size (W, H).

        Returns:
            ``(frames, name)``: uint8 ``(T, H, W, 3)`` and the sequence folder name.

        Raises:
            VideoReadError: when a frame image cannot be read.
        """
        sequence = self.sequences[int(rng.integers(len(self.sequences)))]
        scaled = self._scaled(sequence, size)
        length = scaled.shape[0]
        period = max(2 * length - 2, 1)
        start = int(rng.integers(period))
        steps = (start + np.arange(num_frames)) % period
        indices = np.where(steps < length, steps, period - steps)
        width, height = size
        x0 = int(rng.integers(scaled.shape[2] - width + 1))
        y0 = int(rng.integers(scaled.shape[1] - height + 1))
        return scaled[indices, y0 : y0 + height, x0 : x0 + width], sequence.name

    def _scaled(self, sequence: Path, size: tuple[int, int]) -> np.ndarray:
        key = (sequence, int(size[0]), int(size[1]))
        if key not in self._cache:
            self._cache[key] = np.stack([_read_cover(path, size) for path in _frame_files(sequence)])
        return self._cache[key]


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_cover(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Read an image and scale it (bilinear) to the smallest size covering (W, H)."""
    width, height = size
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise VideoReadError(f"cannot read background frame {path}: {exc}") from exc
    scale = max(width / rgb.width, height / rgb.height)
    target = (max(width, round(rgb.width * scale)), max(height, round(rgb.height * scale)))
    return np.asarray(rgb.resize(target, Image.Resampling.BILINEAR), dtype=np.uint8)
