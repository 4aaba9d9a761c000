"""CSA (SVAC §3.4): [SEG] allocation per clip, the count contract, and [SEG] states from generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import scripted_generate, variant

from svac.config import CSAConfig
from svac.csa import SINGLE_FALLBACK, SegRunConstraint, allocate, expected_seg_count, seg_tokens
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


def test_seg_run_constraint_forces_a_run_to_the_clip_count_then_ends_it():
    seg, prompt = 7, 2
    ids = torch.tensor([[seg, seg, 1, 2],   # the prompt's [SEG]s do not count: free
                        [0, 1, 2, seg],     # a run of 1
                        [0, 1, seg, seg],   # a run of 2
                        [0, 1, seg, 3]])    # a run ended by a word: free
    scores = torch.randn(4, 10)
    three = SegRunConstraint(seg, run_length=3, prompt_length=prompt)
    assert three.trailing_run(ids).tolist() == [0, 1, 2, 0]
    out = three(ids, scores)
    for row in (0, 3):
        torch.testing.assert_close(out[row], scores[row])
    for row in (1, 2):  # shorter than 3: only [SEG] may follow
        assert out[row, seg] == scores[row, seg] and torch.isinf(out[row]).sum() == 9
    two = SegRunConstraint(seg, run_length=2, prompt_length=prompt)(ids, scores)
    assert torch.isinf(two[2, seg]) and torch.isinf(two[2]).sum() == 1  # whole: [SEG] may not follow
    assert two[1, seg] == scores[1, seg] and torch.isinf(two[1]).sum() == 9
    assert SegRunConstraint(seg, 2, prompt_length=4).trailing_run(ids).tolist() == [0, 0, 0, 0]  # no answer yet
    with pytest.raises(ValueError, match="run_length"):
        SegRunConstraint(seg, run_length=0, prompt_length=0)


@pytest.mark.parametrize("generation", ["runs", "free"])
def test_a_generated_answer_holds_whole_runs_of_seg_under_runs(tiny_model, small_video, generation):
    """Real decoding with the tiny model pushed to write [SEG] at every step: under ``csa.generation: runs``
    every run holds one [SEG] per clip (2 here) and the count contract holds; ``free`` writes one long run."""
    model = variant(tiny_model, inference={"answer_mode": "generate", "max_new_tokens": 9},
                    csa={"generation": generation})
    seg = model.seg_token_id
    handle = model.mllm.lm_head.register_forward_hook(lambda _m, _i, out: out.index_add(
        -1, torch.tensor([seg]), torch.full((*out.shape[:-1], 1), 1e4)))
    try:
        prepared = prepare_video(model, small_video, num_frames=10, clip_len=5)
        turns = [Turn(model.prompts.question(prepared.video_text, "the red square"))]
        with torch.inference_mode():
            answer = answer_by_generation(model, prepared, turns)
    finally:
        handle.remove()
    tokens = model.tokenizer(answer.text, add_special_tokens=False).input_ids
    lengths, current = [], 0
    for tok in tokens + [-1]:
        if tok == seg:
            current += 1
        elif current:
            lengths.append(current)
            current = 0
    if generation == "runs":
        assert lengths and set(lengths) == {prepared.plan.num_clips} == {2}, answer.text
        assert answer.seg_hidden.shape[0] == sum(lengths)
    else:
        assert lengths == [9], answer.text
