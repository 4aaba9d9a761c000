"""Shared fixtures: repository paths, the shared DAVIS data, and one tiny random SVAC per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def davis16() -> Path:
    """``../shared/data/davis16`` (real DAVIS-2016 frames, masks and reference metrics)."""
    root = SHARED_DATA / "davis16"
    if not root.is_dir():
        pytest.fail(f"shared test data missing: expected the DAVIS-2016 subset at {root} "
                    "(see ../shared/README.md on the project's machines)")
    return root


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny random-weight config shipped in configs/tiny.yaml."""
    from svac.config import load_config

    return load_config("tiny.yaml")


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    """A tiny SVAC with reproducible random weights, in eval mode on the CPU (shared: do not mutate)."""
    from svac.loading import build_from_config

    return build_from_config(tiny_config).eval()


@pytest.fixture
def small_video() -> np.ndarray:
    """A 12-frame 48x64 RGB video of a bright square moving right on a dark background, ``uint8 (12, 48, 64, 3)``."""
    frames = np.full((12, 48, 64, 3), 20, dtype=np.uint8)
    for t in range(12):
        frames[t, 16:32, 4 + 4 * t:20 + 4 * t] = (230, 40, 40)
    return frames
