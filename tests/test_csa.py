"""CSA (SVAC §3.4): [SEG] allocation per clip, the count contract, and [SEG] states from generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import scripted_generate, variant

from svac.config import CSAConfig
from svac.csa import SINGLE_FALLBACK, allocate, expected_seg_count, seg_tokens
from svac.errors import SegCountError
from svac.inference import answer_by_generation, encode_turns, prepare_video
from svac.mllm.chat_template import Turn
from svac.mllm.tokens import SEG_TOKEN


def test_per_clip_allocation_orders_objects_then_clips():
    emb = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 4)  # 6 [SEG] rows, value = index
    alloc = allocate(emb, 3, CSAConfig(mode="per_clip"))
    assert alloc.prompts.shape == (3, 2, 4) and alloc.policy_applied is None
    assert alloc.prompts[:, 0, 0].tolist() == [0, 1, 2]  # object 0: tokens 0..2, one per clip
    assert alloc.prompts[:, 1, 0].tolist() == [3, 4, 5]


def test_single_mode_prompts_every_clip_with_each_token():
    emb = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    alloc = allocate(emb, 4, CSAConfig(mode="single"))
    assert alloc.prompts.shape == (4, 2, 2)
    assert (alloc.prompts[:, 0] == 1).all() and (alloc.prompts[:, 1] == 2).all()


def test_zero_seg_is_a_text_only_answer():
    alloc = allocate(torch.zeros(0, 8), 5, CSAConfig())
    assert alloc.num_objects == 0


@pytest.mark.parametrize("found", [1, 2, 4, 7])
def test_count_mismatch_raises(found):
    with pytest.raises(SegCountError) as info:
        allocate(torch.zeros(found, 8), 3, CSAConfig(count_policy="raise"))
    assert info.value.found == found and info.value.expected == 3
    assert "3 clip" in str(info.value)


def test_count_mismatch_single_fallback_is_explicit():
    emb = torch.randn(2, 8)
    with pytest.warns(UserWarning, match="single_fallback"):
        alloc = allocate(emb, 3, CSAConfig(count_policy="single_fallback"))
    assert alloc.policy_applied == SINGLE_FALLBACK
    assert alloc.prompts.shape == (3, 2, 8)  # each [SEG] one object over every clip: nothing dropped or invented
    assert torch.equal(alloc.prompts[2, 1], emb[1])


def test_seg_tokens_text():
    assert seg_tokens(3, CSAConfig()) == SEG_TOKEN * 3
    assert seg_tokens(3, CSAConfig(mode="single")) == SEG_TOKEN
    assert expected_seg_count(4, CSAConfig(), num_objects=2) == 8


def _generate_answer(model, video, answer: str, monkeypatch):
    prepared = prepare_video(model, video, num_frames=10, clip_len=5)
    turns = [Turn(model.prompts.question(prepared.video_text, "the red square"))]
    tokens = model.tokenizer(answer + model.chat_template.assistant_suffix, add_special_tokens=False).input_ids
    monkeypatch.setattr(model.mllm, "generate", scripted_generate(model.mllm, tokens))
    with torch.inference_mode():
        return prepared, turns, answer_by_generation(model, prepared, turns)


def test_generated_seg_states_equal_teacher_forced_states(tiny_model, small_video, monkeypatch):
    """[SEG] states captured during decoding are the last-layer states at the [SEG] inputs."""
    answer = f"It is {SEG_TOKEN}{SEG_TOKEN}."
    prepared, turns, got = _generate_answer(tiny_model, small_video, answer, monkeypatch)
    assert got.text == answer and got.seg_hidden.shape[0] == 2
    ids, start = encode_turns(tiny_model, [Turn(turns[0].user, answer)])
    full = torch.tensor([ids])
    with torch.inference_mode():
        _, hidden = tiny_model.mllm_forward(full, torch.ones_like(full), prepared.pixel_values)
    expected = hidden[0, tiny_model.seg_positions(full[0], start)]
    torch.testing.assert_close(got.seg_hidden, expected, rtol=1e-4, atol=1e-5)


def test_answer_ending_on_seg_still_gets_its_state(tiny_model, small_video, monkeypatch):
    prepared = prepare_video(tiny_model, small_video, num_frames=10, clip_len=5)
    turns = [Turn(tiny_model.prompts.question(prepared.video_text, "x"))]
    tokens = tiny_model.tokenizer(f"ok {SEG_TOKEN}", add_special_tokens=False).input_ids  # no end token
    monkeypatch.setattr(tiny_model.mllm, "generate", scripted_generate(tiny_model.mllm, tokens))
    with torch.inference_mode():
        got = answer_by_generation(tiny_model, prepared, turns)
    assert got.seg_hidden.shape == (1, tiny_model.mllm.config.text_config.hidden_size)


def test_segment_in_generate_mode_applies_the_count_policy(tiny_model, small_video, monkeypatch):
    raising = variant(tiny_model, inference={"answer_mode": "generate"}, csa={"count_policy": "raise"})
    tokens = tiny_model.tokenizer(f"It is {SEG_TOKEN}.<|im_end|>", add_special_tokens=False).input_ids
    monkeypatch.setattr(tiny_model.mllm, "generate", scripted_generate(tiny_model.mllm, tokens))
    with pytest.raises(SegCountError):
        raising.segment(small_video, "the red square", num_frames=10, clip_len=5)  # 2 clips, 1 [SEG]
    lenient = variant(tiny_model, inference={"answer_mode": "generate"}, csa={"count_policy": "single_fallback"})
    with pytest.warns(UserWarning, match="single_fallback"):
        result = lenient.segment(small_video, "the red square", num_frames=10, clip_len=5)
    assert result.seg_policy_applied == SINGLE_FALLBACK and result.masks.shape == (1, 12, 48, 64)


def test_real_generate_runs_on_tiny_model(tiny_model, small_video):
    model = variant(tiny_model, inference={"answer_mode": "generate", "max_new_tokens": 8},
                    csa={"count_policy": "single_fallback"})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.segment(small_video, "the red square", num_frames=10, clip_len=5)
    assert isinstance(result.text, str)
    assert result.masks.shape[1:] == (12, 48, 64)
    assert result.timings.llm_prefill > 0
