"""The video of the Sa2VA oracle fixture: 8 real DAVIS-2016 frames, resized small (shared by harness and test).

Both sides -- :mod:`make_sa2va_fixture` (run with the reference implementation) and
``tests/test_sa2va_oracle.py`` (run with svac) -- read the frames with this module, so the
two pipelines see the same pixels. The frames are not committed (DAVIS is CC BY-NC): they
are read from ``../shared/data/davis16`` beside the repository, and the fixture records their
SHA-256 so a change of JPEG decoder or resampler is reported instead of silently compared.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

#: Frames of DAVIS-2016 used by the fixture (folder under ``data/davis16``).
SEQUENCE = "JPEGImages/480p/blackswan"
#: Number of frames (the first ones): 5 are the MLLM's, 3 more are tracked by SAM-2 memory.
NUM_FRAMES = 8
#: Size the 854 x 480 frames are resized to, ``(width, height)`` in pixels (PIL bicubic).
FRAME_SIZE = (427, 240)
#: The referring expression of the fixture.
EXPRESSION = "the swan"


def shared_davis16(repo_root: Path) -> Path:
    """``../shared/data/davis16`` beside ``repo_root``.

    Raises:
        FileNotFoundError: when the folder is absent (it is laid beside every checkout of the project).
    """
    root = repo_root.parent / "shared" / "data" / "davis16"
    if not root.is_dir():
        raise FileNotFoundError(f"shared DAVIS-2016 data missing: expected {root} (see ../shared/README.md)")
    return root


def load_frames(davis16: Path) -> np.ndarray:
    """The fixture's frames: ``uint8 (NUM_FRAMES, H, W, 3)`` RGB, H x W = ``FRAME_SIZE`` reversed.

    Each JPEG is decoded by PIL, converted to RGB and resized with PIL's bicubic filter.

    Raises:
        FileNotFoundError: when a frame is missing.
    """
    from PIL import Image

    folder = davis16 / SEQUENCE
    frames = []
    for i in range(NUM_FRAMES):
        path = folder / f"{i:05d}.jpg"
        if not path.is_file():
            raise FileNotFoundError(f"frame {path} missing")
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB").resize(FRAME_SIZE, Image.Resampling.BICUBIC)))
    return np.stack(frames)


def frames_sha256(frames: np.ndarray) -> str:
    """SHA-256 of the frames' bytes (``uint8``, C order), recorded in the fixture."""
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.uint8).tobytes()).hexdigest()
