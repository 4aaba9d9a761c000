"""SAM-2's input frames (:func:`svac.grounding.sam2_model.preprocess_frames`) and the tracker's prompt inputs:
the streaming engine's cheaper forms give the same floats as the plain computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from svac.config import IMAGENET_MEAN, IMAGENET_STD
from svac.grounding.sam2_model import InputWorkspace, preprocess_frames
from svac.grounding.tracking import SVACTracker


def _plain(frames: np.ndarray, size: int, stats_dtype=torch.float32) -> torch.Tensor:
    """The computation written out: uint8 bicubic resize, then ((x / 255) - mean) / std per channel, in (n, 3, S, S)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    x = x.contiguous().float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=stats_dtype).float().view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=stats_dtype).float().view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("shape", [(3, 32, 32, 3), (2, 48, 64, 3)])  # at SAM-2's size / resized
@pytest.mark.parametrize("stats_dtype", [torch.float32, torch.bfloat16])
def test_frames_preprocessed_in_a_reused_workspace_equal_the_plain_computation(shape, stats_dtype):
    rng = np.random.default_rng(0)
    workspace = InputWorkspace()
    first = preprocess_frames(rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), 32, workspace=workspace)
    storage = first.data_ptr()
    frames = rng.integers(0, 256, shape, dtype=np.uint8)
    fresh = preprocess_frames(frames, 32, stats_dtype=stats_dtype)
    reused = preprocess_frames(frames, 32, stats_dtype=stats_dtype, workspace=workspace)
    plain = _plain(frames, 32, stats_dtype)
    assert torch.equal(fresh, plain) and torch.equal(reused, plain)
    assert reused.data_ptr() == storage  # the same storage: nothing allocated for the second chunk
    assert reused.is_contiguous(memory_format=torch.channels_last)  # the layout the image encoder always got
    assert fresh.stride() == reused.stride()
    bigger = preprocess_frames(rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), 32, workspace=workspace)
    assert bigger.shape == (6, 3, 32, 32)  # grown when a chunk has more frames


def test_the_tracker_builds_a_clips_prompt_inputs_once_and_tracks_as_with_new_ones(tiny_model, small_video,
                                                                                     monkeypatch):
    sam = tiny_model.grounding
    g = torch.Generator().manual_seed(0)
    prompts = torch.randn(3, 2, sam.hidden_dim, generator=g)  # 3 clips of 4 frames, 2 objects
    per_clip = list(prompts.unbind(0))
    built = []
    original = type(sam).text_point_inputs
    monkeypatch.setattr(type(sam), "text_point_inputs", lambda self, p: built.append(1) or original(self, p))

    def run(prompt_of_frame):
        with torch.inference_mode():
            feats = sam.encode_frames(preprocess_frames(small_video, sam.image_size))
            tracker = SVACTracker(sam, prompt_of_frame, conditioning_frames=(0, 4, 8), num_frames=len(feats))
            outs = [tracker.step(t, f) for t, f in enumerate(feats)]
        return torch.cat([o.mask_logits for o in outs], dim=1), torch.cat([o.object_score_logits for o in outs], dim=1)

    shared = run(lambda t: per_clip[t // 4])  # one tensor per clip, as the streaming engine hands them
    assert len(built) == 3
    built.clear()
    new = run(lambda t: prompts[t // 4].clone())  # a new tensor on every frame
    assert len(built) == len(small_video)
    assert torch.equal(shared[0], new[0]) and torch.equal(shared[1], new[1])
