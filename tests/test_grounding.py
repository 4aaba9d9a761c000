"""SAM-2 grounding: [SEG] prompt injection, one encoder pass per frame, memory, and gradient flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from svac.csa import allocate
from svac.grounding.sam2_model import TEXT_PROMPT_KEY, preprocess_frames
from svac.grounding.tracking import MemoryBank, track
from svac.inference import encode_turns, ground, prepare_video
from svac.loading import build_from_config
from svac.mllm.chat_template import Turn
from svac.mllm.tokens import SEG_TOKEN


def _count_encoder_frames(model):
    seen = []
    handle = model.grounding.image_encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    return seen, handle


@pytest.mark.parametrize("num_objects", [1, 3])
def test_each_frame_is_encoded_once_whatever_the_number_of_objects(tiny_model, small_video, num_objects):
    prepared = prepare_video(tiny_model, small_video, num_frames=10, clip_len=5)
    prompts = torch.randn(prepared.plan.num_clips, num_objects, tiny_model.grounding.hidden_dim)
    seen, handle = _count_encoder_frames(tiny_model)
    try:
        with torch.inference_mode():
            out = ground(tiny_model, prepared.source, prepared.plan, prompts)
    finally:
        handle.remove()
    assert sum(seen) == small_video.shape[0]  # every frame once, in chunks
    assert max(seen) <= tiny_model.config.sam2.encoder_batch_size
    assert out.masks.shape == (num_objects, 12, 48, 64) and out.masks.dtype == bool
    assert out.scores.shape == (num_objects,) and ((0 <= out.scores) & (out.scores <= 1)).all()


def test_segment_encodes_each_frame_once(tiny_model, small_video):
    seen, handle = _count_encoder_frames(tiny_model)
    try:
        result = tiny_model.segment(small_video, "the red square", num_frames=10, clip_len=5)
    finally:
        handle.remove()
    assert sum(seen) == 12 and result.masks.shape == (1, 12, 48, 64)


def test_seg_prompt_changes_the_mask_decoder_output(tiny_model, small_video):
    sam = tiny_model.grounding
    with torch.inference_mode():
        feats = sam.encode_frames(preprocess_frames(small_video[:1], sam.image_size))[0]
        outs = []
        for seed in (0, 1):
            prompt = torch.randn(1, sam.hidden_dim, generator=torch.Generator().manual_seed(seed))
            out = next(track(sam, [(0, feats)], lambda t: prompt, num_frames=1))
            outs.append(torch.cat([out.mask_logits.flatten(), out.object_score_logits.flatten()]))
    assert not torch.allclose(outs[0], outs[1])


def test_text_point_inputs_shape_check(tiny_model):
    sam = tiny_model.grounding
    inputs = sam.text_point_inputs(torch.zeros(2, sam.hidden_dim))
    assert inputs[TEXT_PROMPT_KEY].shape == (2, 1, sam.hidden_dim)
    assert (inputs["point_labels"] == -1).all()
    with pytest.raises(ValueError, match="prompts must be"):
        sam.text_point_inputs(torch.zeros(2, sam.hidden_dim + 1))


def test_memory_bank_keeps_conditioning_frames_and_a_bounded_window():
    bank = MemoryBank(horizon=3)
    entry = {"maskmem_features": 1, "maskmem_pos_enc": 2, "obj_ptr": 3, "pred_masks_high_res": 4}
    bank.add(0, entry, conditioning=True)
    for t in range(1, 10):
        bank.add(t, entry, conditioning=(t == 5))
    assert sorted(bank.cond) == [0, 5]
    assert sorted(bank.non_cond) == [7, 8, 9]
    assert "pred_masks_high_res" not in bank.non_cond[9]


def test_memory_carries_information_across_frames(tiny_model, small_video):
    """With memory, frame 1's prediction depends on frame 0's image; without it, it does not."""
    sam = tiny_model.grounding
    with torch.inference_mode():
        feats = sam.encode_frames(preprocess_frames(small_video[:2], sam.image_size))
        other = sam.encode_frames(preprocess_frames(small_video[::-1][:1].copy(), sam.image_size))[0]
        prompt = torch.randn(1, sam.hidden_dim, generator=torch.Generator().manual_seed(0))

        def frame1(first, use_memory):
            outs = list(track(sam, [(0, first), (1, feats[1])], lambda t: prompt, num_frames=2,
                              use_memory=use_memory))
            return torch.cat([outs[1].mask_logits.flatten(), outs[1].object_score_logits.flatten()])

        assert not torch.allclose(frame1(feats[0], True), frame1(other, True))
        torch.testing.assert_close(frame1(feats[0], False), frame1(other, False))


def test_frames_must_increase(tiny_model, small_video):
    sam = tiny_model.grounding
    with torch.inference_mode():
        feats = sam.encode_frames(preprocess_frames(small_video[:2], sam.image_size))
        with pytest.raises(ValueError, match="increasing"):
            list(track(sam, [(1, feats[0]), (0, feats[1])], lambda t: torch.zeros(1, sam.hidden_dim), num_frames=2))


def _train_step_hidden(model, video, loss_frames, isolate=False):
    """Teacher-forced pass + SAM-2 tracking over the sampled frames; mask loss on ``loss_frames`` positions."""
    prepared = prepare_video(model, video, num_frames=10, clip_len=5)
    plan = prepared.plan
    question = model.prompts.question(prepared.video_text, "the red square")
    ids, start = encode_turns(model, [Turn(question, model.prompts.answer(SEG_TOKEN * plan.num_clips, "the red square"))])
    input_ids = torch.tensor([ids])
    _, hidden = model.mllm_forward(input_ids, torch.ones_like(input_ids), prepared.pixel_values)
    hidden.retain_grad()
    positions = model.seg_positions(input_ids[0], start)
    prompts = allocate(model.seg_prompts(hidden[0, positions]), plan.num_clips, model.config.csa).prompts
    sam = model.grounding
    frames = prepared.source.read(plan.frame_indices)
    feats = sam.encode_frames(preprocess_frames(frames, sam.image_size))
    clip_of_position = [c.index for c in plan.clips for _ in c.positions]
    anchors = [c.positions[0] for c in plan.clips]
    outs = list(track(sam, enumerate(feats), lambda t: prompts[clip_of_position[t]], conditioning_frames=anchors,
                      num_frames=len(feats), isolate_prompts=isolate))
    logits = torch.cat([o.mask_logits for o in outs])[:, 0]  # (T, S/4, S/4)
    presence = torch.cat([o.object_score_logits for o in outs])[:, 0]  # (T,)
    target = torch.from_numpy(frames[..., 0] > 128).float()[:, None]
    target = F.interpolate(target, size=logits.shape[-2:], mode="nearest")[:, 0]
    # masks of frames predicted "absent" are constant in SAM-2, so presence is supervised too
    loss = (F.binary_cross_entropy_with_logits(logits[loss_frames], target[loss_frames])
            + F.binary_cross_entropy_with_logits(presence[loss_frames], torch.ones_like(presence[loss_frames])))
    loss.backward()
    return hidden.grad[0, positions]


def test_mask_loss_gradient_reaches_every_seg_hidden_state(tiny_config, small_video):
    model = build_from_config(tiny_config).train()
    grads = _train_step_hidden(model, small_video, slice(None))
    assert grads.shape[0] == 2
    assert torch.isfinite(grads).all()
    assert (grads.abs().sum(dim=1) > 0).all()  # both clips' [SEG] states receive gradient


def test_later_clip_seg_gets_no_gradient_from_earlier_frames(tiny_config, small_video):
    """Clip 1's [SEG] prompts only clip 1's frames, and memory flows forward in time."""
    model = build_from_config(tiny_config).train()
    grads = _train_step_hidden(model, small_video, slice(0, 5))  # loss on clip 0's sampled frames only
    assert grads[0].abs().sum() > 0
    assert grads[1].abs().sum() == 0


@pytest.mark.parametrize("isolate", [False, True])
def test_isolated_prompts_make_supervision_per_clip(tiny_config, small_video, isolate):
    """With isolate_prompts, clip 1's frames supervise only clip 1's [SEG]; otherwise memory leaks gradient."""
    model = build_from_config(tiny_config).train()
    head = model.grounding.sam_mask_decoder.pred_obj_score_head
    with torch.no_grad():  # make SAM-2 see the object, so masks and pointers (not constants) enter memory
        (head.layers[-1] if hasattr(head, "layers") else head).bias.fill_(10.0)
    grads = _train_step_hidden(model, small_video, slice(5, 10), isolate=isolate)  # clip 1's sampled frames
    assert grads[1].abs().sum() > 0
    assert (grads[0].abs().sum() == 0) == isolate
