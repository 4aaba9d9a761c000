"""Property tests (hypothesis) of the pure parts: ASTC clip planning and composite geometry (SVAC §3.3),
CSA allocation and its count contract (SVAC §3.4), and the DAVIS metrics J and F (issue 12 §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from svac.astc import build_mllm_images, composite_grid_size, make_composite, plan_clips
from svac.config import ASTCConfig, CSAConfig
from svac.csa import SINGLE_FALLBACK, allocate, expected_seg_count, seg_tokens
from svac.errors import SegCountError
from svac.metrics.davis import boundary_map, contour_accuracy, region_similarity
from svac.metrics.iou import mask_iou
from svac.mllm.tokens import IMG_CONTEXT, SEG_TOKEN
from svac.prompting import load_segmentation_prompts

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ("astc", "uncompressed", "first_k")

video_frames = st.integers(1, 400)
sampled = st.integers(1, 64)
clip_lens = st.integers(1, 16)


def _plan(n, t, m, mode, k=5):
    return plan_clips(n, ASTCConfig(mode=mode, num_frames=t, clip_len=m, first_k=k))


# ------------------------------------------------------------------ ASTC clip planning


@FAST
@given(n=video_frames, t=sampled, m=clip_lens, mode=st.sampled_from(MODES), k=st.integers(1, 8))
def test_every_sampled_frame_is_in_exactly_one_clip(n, t, m, mode, k):
    plan = _plan(n, t, m, mode, k)
    idx = plan.frame_indices
    wanted = k if mode == "first_k" else t
    assert len(idx) == min(wanted, n)
    assert idx.dtype == np.int64 and (np.diff(idx) > 0).all() and idx[0] >= 0 and idx[-1] < n
    positions = [p for clip in plan.clips for p in clip.positions]
    assert positions == list(range(len(idx)))  # each sampled frame once, in order
    for clip in plan.clips:
        assert list(clip.frame_indices) == [int(idx[p]) for p in clip.positions]
        assert 1 <= len(clip.positions) <= m
    assert plan.num_clips == math.ceil(len(idx) / m)


@FAST
@given(n=video_frames, t=sampled, m=clip_lens, mode=st.sampled_from(MODES))
def test_clip_spans_cover_the_video_once(n, t, m, mode):
    plan = _plan(n, t, m, mode)
    spans = [c.span for c in plan.clips]
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(a < b for a, b in spans) and all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    for clip in plan.clips:
        a, b = clip.span
        assert all(a <= f < b for f in clip.frame_indices)  # a clip prompts the frames it holds
        assert clip.index == 0 or a == clip.anchor_frame
    owner = plan.clip_of_frame()
    assert owner.shape == (n,) and (np.diff(owner) >= 0).all() and owner[0] == 0 and owner[-1] == plan.num_clips - 1


@FAST
@given(n=video_frames, t=sampled, m=clip_lens, tokens=st.sampled_from([1, 4, 16, 256]))
def test_astc_reads_two_images_per_clip_2_over_m_of_uncompressed(n, t, m, tokens):
    astc, full = _plan(n, t, m, "astc"), _plan(n, t, m, "uncompressed")
    sampled_count = len(full.frame_indices)
    assert astc.num_images == 2 * astc.num_clips and full.num_images == sampled_count
    assert astc.image_roles == ("anchor", "composite") * astc.num_clips
    prompts = load_segmentation_prompts()
    astc_tokens = prompts.video_text(astc, tokens).count(IMG_CONTEXT)
    full_tokens = prompts.video_text(full, tokens).count(IMG_CONTEXT)
    assert astc_tokens == 2 * math.ceil(sampled_count / m) * tokens and full_tokens == sampled_count * tokens
    if sampled_count % m == 0:
        assert astc_tokens * m == 2 * full_tokens  # exactly 2/m of the uncompressed count


# ------------------------------------------------------------------ composite geometry


@FAST
@given(n=st.integers(0, 400))
def test_the_grid_is_the_smallest_square_holding_the_frames(n):
    g = composite_grid_size(n)
    assert g >= 1 and g * g >= n and (n == 0 or (g - 1) * (g - 1) < n)


@FAST
@given(n=st.integers(0, 10), h=st.integers(1, 9), w=st.integers(1, 9), data=st.data())
def test_composites_keep_the_frame_size(n, h, w, data):
    frames = data.draw(arrays(np.uint8, (n, h, w, 3)))
    out = make_composite(frames, h, w)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if n == 0:
        assert not out.any()
    if n == 1:
        assert np.array_equal(out, frames[0])  # a 1x1 grid is the frame itself


@FAST
@given(g=st.integers(1, 3), side=st.integers(2, 8), value=st.integers(0, 255))
def test_a_full_grid_of_one_colour_stays_that_colour(g, side, value):
    frames = np.full((g * g, side, side, 3), value, np.uint8)
    assert np.abs(make_composite(frames, side, side).astype(int) - value).max() <= 1


@FAST
@given(t=st.integers(1, 12), m=st.integers(1, 5), data=st.data())
def test_anchor_images_are_the_untouched_first_frames(t, m, data):
    plan = _plan(t, t, m, "astc")
    frames = data.draw(arrays(np.uint8, (t, 4, 5, 3)))
    images = build_mllm_images(frames, plan)
    assert images.shape == (2 * plan.num_clips, 4, 5, 3)
    for clip in plan.clips:
        assert np.array_equal(images[2 * clip.index], frames[clip.positions[0]])


# ------------------------------------------------------------------ CSA allocation


@FAST
@given(clips=st.integers(1, 8), n=st.integers(0, 30), dim=st.integers(1, 4),
       mode=st.sampled_from(["per_clip", "single"]), policy=st.sampled_from(["raise", "single_fallback"]))
def test_csa_count_contract_holds_or_raises(clips, n, dim, mode, policy):
    emb = torch.arange(n * dim, dtype=torch.float32).reshape(n, dim)
    cfg = CSAConfig(mode=mode, count_policy=policy)
    if mode == "per_clip" and n % clips and policy == "raise":
        with pytest.raises(SegCountError) as info:
            allocate(emb, clips, cfg)
        assert info.value.found == n and info.value.expected == clips
        return
    if mode == "per_clip" and n % clips:
        with pytest.warns(UserWarning, match="single_fallback"):
            alloc = allocate(emb, clips, cfg)
        assert alloc.policy_applied == SINGLE_FALLBACK
    else:
        alloc = allocate(emb, clips, cfg)
        assert alloc.policy_applied is None
    k = alloc.num_objects
    assert alloc.prompts.shape == (clips, k, dim)
    # every [SEG] embedding is used, none is invented
    used = {tuple(alloc.prompts[c, o].tolist()) for c in range(clips) for o in range(k)}
    assert used == {tuple(row) for row in emb.tolist()}
    if mode == "per_clip" and n % clips == 0:
        assert k == n // clips and expected_seg_count(clips, cfg, k) == n
        for c in range(clips):
            for o in range(k):
                assert torch.equal(alloc.prompts[c, o], emb[o * clips + c])  # object o's c-th token prompts clip c
    else:
        assert k == n and all(torch.equal(alloc.prompts[c], emb) for c in range(clips))


@FAST
@given(clips=st.integers(1, 8), objects=st.integers(1, 4), mode=st.sampled_from(["per_clip", "single"]))
def test_the_answer_template_holds_what_allocation_expects(clips, objects, mode):
    cfg = CSAConfig(mode=mode)
    text = seg_tokens(clips, cfg, objects)
    assert text.count(SEG_TOKEN) == expected_seg_count(clips, cfg, objects)
    alloc = allocate(torch.zeros(text.count(SEG_TOKEN), 2), clips, cfg)
    assert alloc.num_objects == objects


# ------------------------------------------------------------------ DAVIS J and F


def masks(t=st.integers(1, 3), h=st.integers(1, 10), w=st.integers(1, 10)):
    return st.tuples(t, h, w).flatmap(lambda s: st.tuples(arrays(bool, s), arrays(bool, s), arrays(bool, s)))


@FAST
@given(triple=masks())
def test_j_is_symmetric_in_0_1_and_1_on_identical_masks(triple):
    a, b, void = triple
    j = region_similarity(a, b)
    assert np.array_equal(j, region_similarity(b, a))
    assert ((0 <= j) & (j <= 1)).all()
    assert (region_similarity(a, a) == 1).all()
    assert np.array_equal(region_similarity(a, b, void), region_similarity(a & ~void, b & ~void))
    for t in range(a.shape[0]):
        assert mask_iou(a[t], b[t]) == pytest.approx(float(j[t]))


@FAST
@given(triple=masks())
def test_f_is_symmetric_in_0_1_and_1_on_identical_masks(triple):
    a, b, void = triple
    f = contour_accuracy(a, b)
    assert ((0 <= f) & (f <= 1)).all()
    assert np.array_equal(f, contour_accuracy(b, a))
    assert (contour_accuracy(a, a) == 1).all()
    assert np.array_equal(contour_accuracy(a, b, void), contour_accuracy(a & ~void, b & ~void))


@FAST
@given(mask=arrays(bool, st.tuples(st.integers(1, 10), st.integers(1, 10))))
def test_davis_empty_mask_conventions(mask):
    empty = np.zeros_like(mask)
    assert region_similarity(empty, empty) == 1.0 and contour_accuracy(empty, empty) == 1.0
    if mask.any():
        assert region_similarity(mask, empty) == 0.0 and region_similarity(empty, mask) == 0.0
    has_boundary = boundary_map(mask).any()
    # an empty prediction against a mask with a boundary: precision 1, recall 0 -> F = 0 (and symmetric)
    assert contour_accuracy(empty, mask) == (0.0 if has_boundary else 1.0)
    assert contour_accuracy(mask, empty) == (0.0 if has_boundary else 1.0)
    full = np.ones_like(mask)
    assert not boundary_map(full).any() and contour_accuracy(full, full) == 1.0
