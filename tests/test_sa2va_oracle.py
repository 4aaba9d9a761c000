"""svac against Sa2VA's own implementation (issue 13): tiny releases built and run by the reference code.

The fixture ``tests/fixtures/sa2va_tiny/<variant>/`` was made by ``tests/oracles/make_sa2va_fixture.py``
with Sa2VA's HF export (bytedance/Sa2VA 9832e1a) -- never with svac's builders: a tiny Sa2VA in
the release layout and what the reference's ``predict_forward`` computed on 8 real DAVIS frames
("the swan", forced answer "Sure, [SEG]."). svac loads each folder through its normal loading
path and must reproduce the reference stage by stage (:mod:`sa2va_compare`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracles"))

from sa2va_compare import (LOW_RES_TOL, MIN_IOU, SEG_PROMPT_TOL, compare, reference_masks,  # noqa: E402
                           reference_outputs)
from sa2va_frames import EXPRESSION, load_frames  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sa2va_tiny"
#: The release layouts of the fixture (see the harness's docstring for what each stands for).
VARIANTS = ("sa2va_1b", "sa2va_4b", "sa2va_26b", "sa2va_internvl3")


@pytest.fixture(scope="module")
def frames(davis16):
    return load_frames(davis16)


@pytest.mark.parametrize("variant", VARIANTS)
def test_svac_reproduces_the_reference_stage_by_stage(variant, frames):
    report = compare(FIXTURES / variant, frames=frames)
    table = report.table(variant)
    assert report.load_error is None, table
    assert report.pipeline == "sa2va", table
    assert report.ids_equal, table
    assert report.mllm_pixels == 0.0 and report.sam2_pixels == 0.0, table
    assert report.seg_prompt <= SEG_PROMPT_TOL, table
    assert report.prompted_frames == report.reference_prompted == [0, 1, 2, 3, 4], table
    assert len(report.low_res) == len(frames) and max(report.low_res) <= LOW_RES_TOL, table
    assert len(report.iou) == len(frames) and min(report.iou) >= MIN_IOU, table


def test_fixture_exercises_what_it_is_meant_to_check():
    """The reference outputs are not degenerate: masks neither empty nor full, object scores of both
    signs across the fixture (so keeping absent-object logits matters), best-IoU masks other than the first."""
    scores, best, fractions = [], [], []
    for variant in VARIANTS:
        ref, meta = reference_outputs(FIXTURES / variant)
        scores += ref["object_score_logits"].tolist()
        best += ref["ious"].argmax(dim=1).tolist()
        fractions += reference_masks(ref, meta).mean(axis=(1, 2)).tolist()
    assert min(scores) < -0.03 and max(scores) > 0.03
    assert set(best) - {0}
    assert 0.05 < min(fractions) and max(fractions) < 0.98


def test_cli_segments_a_release_folder_like_the_reference(tmp_path, frames):
    from PIL import Image

    from svac.cli import main

    video = tmp_path / "swan"
    video.mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(video / f"{i:05d}.png")
    folder = FIXTURES / "sa2va_1b"
    out = tmp_path / "out"
    code = main(["segment", str(video), EXPRESSION, "--model", str(folder), "--out", str(out), "--no-overlay",
                 "--quiet", "--set", "inference.answer_mode=template", "--set", "inference.dtype=float32"])
    assert code == 0
    ref, meta = reference_outputs(folder)
    expected = reference_masks(ref, meta)
    written = sorted((out / "masks").glob("*/*.png"))
    assert len(written) == len(frames)
    for path, want in zip(written, expected):
        got = np.asarray(Image.open(path)) > 0
        assert (got & want).sum() / (got | want).sum() >= MIN_IOU, path


def test_sa2va_question_is_refvos_prompt_with_or_without_question_mark():
    from svac.prompting import load_sa2va_prompts

    prompts = load_sa2va_prompts()
    video = prompts.video_text(2, 3)
    assert video == "<img>" + "<IMG_CONTEXT>" * 3 + "</img>\n<img>" + "<IMG_CONTEXT>" * 3 + "</img>"
    # refVOS.py: "<image>\nPlease segment {}." / "<image>\n {} Please respond with a segmentation mask."
    assert str(prompts.ask(video, "the swan")) == video + "\nPlease segment the swan."
    question = prompts.ask(video, "which [SEG] bird swims?")
    assert str(question) == video + "\n which [SEG] bird swims? Please respond with a segmentation mask."
    assert question.user_spans() == [(len(video) + 2, len(video) + 2 + len("which [SEG] bird swims?"))]  # user text
    assert str(prompts.reply("[SEG]")) == "Sure, [SEG]."


def test_generation_stops_at_a_stop_word_the_tokenizer_has_no_token_for(frames, monkeypatch):
    """Sa2VA-4B: the phi3 template's ``<|end|>`` is text for its Qwen2.5 tokenizer; Sa2VA stops on it."""
    import torch
    from transformers import LogitsProcessorList

    from svac.checkpoints.loader import load_checkpoint
    from svac.model import SVAC
    from svac.inference import answer_by_generation, encode_turns, prepare_video
    from svac.mllm.chat_template import Turn
    from svac.prompting import load_sa2va_prompts

    model = load_checkpoint(FIXTURES / "sa2va_4b", model_class=SVAC, torch_dtype=torch.float32).model
    assert model.config.pipeline == "sa2va" and model.config.inference.max_new_tokens == 2048
    tok = model.tokenizer
    assert tok.convert_tokens_to_ids("<|end|>") is None  # not a token: only a stop string can end the answer
    forced = tok("Sure, [SEG].<|end|>[SEG] and [SEG]", add_special_tokens=False).input_ids + [tok.eos_token_id]

    def force(input_ids, scores):  # the random LLM says the forced text, then keeps going past <|end|>
        step = min(input_ids.shape[1] - prompt_len, len(forced) - 1)
        out = torch.full_like(scores, float("-inf"))
        out[:, forced[step]] = 0.0
        return out

    generate = model.mllm.generate
    monkeypatch.setattr(model.mllm, "generate",
                        lambda **kw: generate(logits_processor=LogitsProcessorList([force]), **kw))
    with torch.inference_mode():
        prepared = prepare_video(model, frames)
        question = load_sa2va_prompts().ask(prepared.video_text, EXPRESSION)
        prompt_len = len(encode_turns(model, [Turn(question)])[0])
        answer = answer_by_generation(model, prepared, [Turn(question)])
    assert answer.text == "Sure, [SEG]."
    assert answer.seg_hidden.shape[0] == 1  # the [SEG]s after <|end|> were never generated
