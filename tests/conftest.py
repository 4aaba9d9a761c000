"""Shared fixtures: repository paths, the shared DAVIS data, one tiny random SVAC and the bundled default model per
session, and the ground truth of examples/synthetic.mp4."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import EXAMPLE

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
def probe_bench_root(tmp_path_factory):
    """A 4-video synthetic benchmark (seed 7, 12-13 frames of 64x64; split ``train``) for the probes' tests."""
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("probe_bench") / "bench"
    write_benchmark(root, videos=4, seed=7, num_frames=(12, 13), size=(64, 64), progress=False)
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


@pytest.fixture(scope="session")
def default_model():
    """The bundled trained default model (its SAM-2 predicts objects on synthetic shapes), loaded once."""
    from svac.loading import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model().eval()


@pytest.fixture(scope="session")
def example_truth() -> np.ndarray:
    """``uint8 (31, 120, 160)`` object ids of ``examples/synthetic.mp4`` on every frame, regenerated in memory
    (video s2026_00006 of ``svac data synth --videos 8 --seed 2026 --split valid``: the generator's own masks, as
    ``svac data synth`` writes them; ``examples/README.md``). Objects: 1 a white square, 2 a red square, 3 a red
    triangle, 4 a blue triangle."""
    from svac.data.synthetic.generator import VideoSpec, generate_video
    from svac.data.synthetic.writer import video_rng

    if not EXAMPLE.is_file():
        pytest.fail(f"{EXAMPLE} is missing: the repository's examples/ folder is needed")
    video = generate_video(video_rng(2026, 6, split="valid"), VideoSpec(num_frames=(16, 64), size=(160, 120)))
    assert video.frames.shape == (31, 120, 160, 3) and [o.obj_id for o in video.objects] == [1, 2, 3, 4]
    return video.masks
