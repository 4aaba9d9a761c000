"""ASTC (SVAC §3.3): clip splitting, composite grid layout and size, and exact visual-token counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from svac.astc import build_mllm_images, composite_grid_size, make_composite, plan_clips, split_into_clips
from svac.config import ASTCConfig
from svac.inference import encode_turns, prepare_video
from svac.mllm.chat_template import Turn


@pytest.mark.parametrize("T", [1, 5, 16, 33])
@pytest.mark.parametrize("m", [1, 2, 5, 10])
def test_split_into_clips(T, m):
    clips = split_into_clips(T, m)
    assert len(clips) == math.ceil(T / m)
    assert [p for c in clips for p in c] == list(range(T))  # consecutive, every frame once
    assert all(len(c) == m for c in clips[:-1])
    assert 1 <= len(clips[-1]) <= m


@pytest.mark.parametrize("n, g", [(0, 1), (1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (8, 3), (9, 3), (10, 4)])
def test_grid_size_is_ceil_sqrt(n, g):
    assert composite_grid_size(n) == g


def _solid_frames(colors, h=24, w=32):
    return np.stack([np.full((h, w, 3), c, dtype=np.uint8) for c in colors])


def test_composite_is_row_major_grid_resized_to_one_frame():
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # 3 frames -> 2x2 grid, last cell black
    comp = make_composite(_solid_frames(colors), 24, 32)
    assert comp.shape == (24, 32, 3) and comp.dtype == np.uint8
    # quadrant centres: top-left, top-right, bottom-left, bottom-right (empty -> black)
    assert tuple(comp[6, 8]) == colors[0]
    assert tuple(comp[6, 24]) == colors[1]
    assert tuple(comp[18, 8]) == colors[2]
    assert tuple(comp[18, 24]) == (0, 0, 0)


def test_composite_of_nine_frames_uses_3x3_grid():
    colors = [(10 * i, 200 - 10 * i, 5 * i) for i in range(9)]
    comp = make_composite(_solid_frames(colors, 30, 30), 30, 30)
    for k, c in enumerate(colors):
        r, col = divmod(k, 3)
        assert np.abs(comp[5 + 10 * r, 5 + 10 * col].astype(int) - np.array(c)).max() <= 1


def test_single_frame_composite_is_black_and_single_tile_is_identity():
    frames = _solid_frames([(1, 2, 3)])
    assert not make_composite(frames[:0], 24, 32).any()
    assert np.array_equal(make_composite(frames, 24, 32), frames[0])


def test_composite_rejects_wrong_shape():
    with pytest.raises(ValueError, match="uint8 frames"):
        make_composite(np.zeros((2, 10, 10, 3), dtype=np.float32), 10, 10)


def test_plan_spans_partition_the_video_and_anchor_each_clip():
    plan = plan_clips(50, ASTCConfig(num_frames=20, clip_len=5))
    assert plan.num_clips == 4
    spans = [c.span for c in plan.clips]
    assert spans[0][0] == 0 and spans[-1][1] == 50
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert all(c.span[0] == c.anchor_frame for c in plan.clips[1:])
    assert list(plan.clip_of_frame()[[0, 12, 13, 49]]) == [0, 0, 1, 3]
    assert plan.image_roles == ("anchor", "composite") * 4


def test_modes_images():
    frames = np.random.default_rng(0).integers(0, 255, (50, 24, 32, 3), dtype=np.uint8)
    astc = plan_clips(50, ASTCConfig(mode="astc", num_frames=20, clip_len=5))
    imgs = build_mllm_images(frames[astc.frame_indices], astc)
    assert imgs.shape == (8, 24, 32, 3)
    assert np.array_equal(imgs[0], frames[0]) and np.array_equal(imgs[2], frames[astc.clips[1].anchor_frame])
    unc = plan_clips(50, ASTCConfig(mode="uncompressed", num_frames=20, clip_len=5))
    assert unc.num_images == 20 and np.array_equal(unc.frame_indices, astc.frame_indices)
    first = plan_clips(50, ASTCConfig(mode="first_k", first_k=5, clip_len=5))
    assert list(first.frame_indices) == [0, 1, 2, 3, 4] and first.num_images == 5
    assert first.clips[-1].span == (0, 50)  # Sa2VA: one clip prompts the whole video


@pytest.mark.parametrize("T", [1, 5, 16, 33])
@pytest.mark.parametrize("m", [1, 2, 5, 10])
def test_visual_tokens_are_two_images_per_clip(tiny_model, T, m):
    """Visual tokens into the LLM = 2 images x tokens per image x clips, and InternVL accepts them."""
    frames = np.random.default_rng(T * 100 + m).integers(0, 255, (40, 24, 32, 3), dtype=np.uint8)
    prepared = prepare_video(tiny_model, frames, num_frames=T, clip_len=m)
    clips = math.ceil(T / m)
    assert prepared.plan.num_clips == clips
    assert prepared.pixel_values.shape[0] == 2 * clips
    ids, _ = encode_turns(tiny_model, [Turn(tiny_model.prompts.question(prepared.video_text, "the square"))])
    image_id = tiny_model.mllm.config.image_token_id
    assert sum(1 for i in ids if i == image_id) == 2 * clips * tiny_model.tokens_per_image
    input_ids = torch.tensor([ids])
    with torch.inference_mode():  # the model itself checks tokens against features
        out = tiny_model.mllm(input_ids=input_ids, pixel_values=prepared.pixel_values, logits_to_keep=1)
    assert out.image_hidden_states.shape[:2] == (2 * clips, tiny_model.tokens_per_image)


def test_astc_tokens_are_two_over_m_of_uncompressed(tiny_model):
    frames = np.zeros((40, 24, 32, 3), dtype=np.uint8)
    astc = prepare_video(variant_mode(tiny_model, "astc"), frames, num_frames=20, clip_len=5)
    unc = prepare_video(variant_mode(tiny_model, "uncompressed"), frames, num_frames=20, clip_len=5)
    assert astc.num_visual_tokens * 5 == unc.num_visual_tokens * 2


def test_mismatched_image_tokens_are_rejected(tiny_model):
    frames = np.zeros((10, 24, 32, 3), dtype=np.uint8)
    prepared = prepare_video(tiny_model, frames, num_frames=10, clip_len=5)
    ids, _ = encode_turns(tiny_model, [Turn(tiny_model.prompts.question(prepared.video_text, "x"))])
    with pytest.raises(ValueError, match="Image features and image tokens do not match"):
        tiny_model.mllm(input_ids=torch.tensor([ids]), pixel_values=prepared.pixel_values[:-1], logits_to_keep=1)


def variant_mode(model, mode):
    from helpers import variant

    return variant(model, astc={"mode": mode})
