"""Refining a result with clicks or a box (issue 16 §3): SAM-2 correction prompts re-propagated through memory.

The replay is checked against SAM 2's own interactive video predictor (``SAM2VideoPredictor``
with the same weights and frames): the same masks on every frame after a sequence of positive
and negative clicks, clicks added to a frame's earlier ones, and a box. The bundled default
model is used where SAM-2 must predict an object (a random tiny SAM-2 predicts none).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import EXAMPLE, RED_SQUARE, frame_j

from svac.cli import main
from svac.refinement import Correction, apply_corrections, check_correction, frame_prompts

H, W, N = 48, 64, 12


@pytest.fixture(scope="module")
def square_video() -> np.ndarray:
    """``uint8 (12, 48, 64, 3)``: a red square moving right on a blue-grey background."""
    frames = np.full((N, H, W, 3), 20, dtype=np.uint8)
    frames[..., 2] = 90
    for t in range(N):
        frames[t, 16:32, 4 + 4 * t:20 + 4 * t] = (230, 40, 40)
    return frames


def _clicks_only(result):
    """``result`` with its object's ``[SEG]`` prompt removed (an answer without ``[SEG]``: an empty object)."""
    t = result.tracking
    return dataclasses.replace(result, masks=np.zeros_like(result.masks),
                               tracking=dataclasses.replace(t, prompts=t.prompts[:, :0], tracked=()))


def _sam2_video_predictor(model):
    """SAM 2's ``SAM2VideoPredictor`` with ``model``'s SAM-2 weights; a clicked frame becomes a conditioning frame."""
    from hydra.utils import instantiate
    from omegaconf import open_dict
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from svac.grounding.sam2_hydra import sam2_model_node

    node = sam2_model_node(model.config.sam2, SAM2VideoPredictor)
    accepted = (set(inspect.signature(SAM2Base.__init__).parameters)
                | set(inspect.signature(SAM2VideoPredictor.__init__).parameters))
    with open_dict(node):
        for key in [k for k in node if k != "_target_" and k not in accepted]:
            del node[key]
        node["fill_hole_area"] = 0
        node["add_all_frames_to_correct_as_cond"] = True
    predictor = instantiate(node, _recursive_=True)
    predictor.load_state_dict(model.grounding.state_dict(), strict=True)
    return predictor.eval()


def test_refinement_gives_sam2_video_predictors_masks(default_model, square_video, tmp_path):
    """The replay reproduces SAM 2's interactive semantics: add_new_points_or_box then propagate_in_video both ways."""
    from PIL import Image

    from svac.grounding.sam2_model import preprocess_frames

    corrections = [Correction(frame=5, object=1, points=((30.0, 24.0),), labels=(1,)),
                   Correction(frame=9, object=1, points=((10.0, 10.0),), labels=(0,)),
                   Correction(frame=5, object=1, points=((28.0, 20.0),), labels=(1,)),  # added to frame 5's click
                   Correction(frame=2, object=1, box=(10.0, 14.0, 30.0, 34.0))]
    # the default model's SAM-2 tracks by memory alone only briefly (it always has a [SEG] prompt): a positive and a
    # negative click on more frames make enough of them non-empty for the comparison to mean something
    corrections += [Correction(frame=t, object=1, points=((12.0 + 4 * t, 24.0), (0.5, 0.5)), labels=(1, 0))
                    for t in (0, 3, 7, 8, 11)]
    corrections.append(Correction(frame=6, object=1, box=(28.0, 16.0, 44.0, 32.0)))  # a box last: frame 6 restarts from it
    result = _clicks_only(default_model.segment(square_video, "the red square"))
    ours = apply_corrections(default_model, result, corrections)  # what four result.refine calls in a row give

    predictor = _sam2_video_predictor(default_model)
    for t, frame in enumerate(square_video):
        Image.fromarray(frame).save(tmp_path / f"{t:05d}.jpg")
    theirs = {}
    with torch.inference_mode():
        state = predictor.init_state(str(tmp_path))
        state["images"] = preprocess_frames(square_video, default_model.sam2_image_size)  # svac's resize (not PIL's)
        state["cached_features"] = {}
        for c in corrections:
            predictor.add_new_points_or_box(state, c.frame, 1, points=list(c.points) or None,
                                            labels=list(c.labels) or None, box=list(c.box) if c.box else None,
                                            clear_old_points=c.box is not None)
            for reverse in (False, True):
                for t, _, masks in predictor.propagate_in_video(state, start_frame_idx=c.frame, reverse=reverse):
                    theirs[t] = (masks[0, 0] > 0).numpy()
    assert sorted(theirs) == list(range(N))
    areas = ours.masks[0].sum(axis=(1, 2))
    assert (areas > 0).sum() >= N // 2 and len(set(areas.tolist())) > 2  # masks that differ between frames
    for t in range(N):
        inter = (ours.masks[0, t] & theirs[t]).sum()
        union = (ours.masks[0, t] | theirs[t]).sum()
        assert union == 0 or inter / union >= 0.99, f"frame {t}: IoU {inter / union:.3f} with SAM2VideoPredictor"


def test_replay_starts_from_the_original_run(default_model, square_video):
    """Before its correction the replay is the engine's own run: the same masks on every frame."""
    from svac.grounding.engine import logits_to_masks
    from svac.grounding.replay import _Replay
    from svac.outputs import Timings

    result = default_model.segment(square_video, "the red square")
    state = _Replay(default_model, result.source, result.tracking, 0, 8, Timings())
    with torch.inference_mode():
        state.original_run(until=N - 1, keep=range(N))
    logits = {**{t: v[0] for t, v in state.cond_logits.items()}, **state.near_logits}
    assert sorted(logits) == list(range(N)) and 0 in state.cond
    masks = logits_to_masks(default_model, torch.cat([logits[t] for t in range(N)], dim=1), pipeline="svac",
                            frame_size=(H, W))
    assert np.array_equal(masks, result.masks)


def _recorded_steps(monkeypatch, model) -> list:
    """``(frame, has [SEG] prompt, conditioning frames read)`` of every SAM-2 step from now on."""
    from svac.grounding.sam2_model import TEXT_PROMPT_KEY

    sam, steps = model.grounding, []
    original = type(sam).track_step

    def recording(self, frame_idx, is_init_cond_frame, *args, **kwargs):
        inputs = kwargs["point_inputs"]
        steps.append((frame_idx, inputs is not None and TEXT_PROMPT_KEY in inputs,
                      sorted(kwargs["output_dict"]["cond_frame_outputs"])))
        return original(self, frame_idx, is_init_cond_frame, *args, **kwargs)

    monkeypatch.setattr(type(sam), "track_step", recording)
    return steps


def test_after_correction_memory_tracks_the_frames_after_a_correction_from_memory_alone(default_model, square_video,
                                                                                       monkeypatch):
    """after_correction="memory": the frames after the correction lose their [SEG] prompt and the [SEG] anchors
    after it stop being conditioning frames (decoded again); the frames up to it keep their [SEG]; "seg" keeps
    every prompt and skips the anchors (SAM2VideoPredictor's semantics, checked above)."""
    result = default_model.segment(square_video, "the red square")
    i = 4
    anchors = sorted(t for t in result.tracking.conditioning_frames if t > i)
    assert anchors  # clip anchors after the clicked frame
    seen = {}
    for mode in ("seg", "memory"):
        steps = _recorded_steps(monkeypatch, default_model)
        refined = result.refine(frame=i, points=[(14.0, 24.0)], labels=[1], after_correction=mode)
        monkeypatch.undo()
        correction = [n for n, (t, _, _) in enumerate(steps) if t == i][-1]  # the correction, after the original run
        seen[mode] = (steps[correction], steps[correction + 1:], refined.masks[0])
    (t, seg_prompted, _), sweeps, _ = seen["memory"]
    assert t == i and seg_prompted  # the corrected frame keeps its [SEG] beside the click
    forward = [s for s in sweeps if s[0] > i]
    assert [s[0] for s in forward] == list(range(i + 1, N))  # the anchors are decoded again
    assert not any(prompted for _, prompted, _ in forward)
    assert all(not set(anchors) & set(cond) for _, _, cond in forward)  # only the correction and earlier anchors
    assert all(prompted for t, prompted, _ in sweeps if t < i)
    seg_forward = [s for s in seen["seg"][1] if s[0] > i]
    assert all(prompted for _, prompted, _ in seg_forward) and not {s[0] for s in seg_forward} & set(anchors)
    assert not np.array_equal(seen["seg"][2][i + 1:], seen["memory"][2][i + 1:])
    with pytest.raises(ValueError, match="after_correction must be one of seg, memory"):
        result.refine(frame=i, points=[(14.0, 24.0)], labels=[1], after_correction="prompts")


def test_a_results_corrections_keep_the_after_correction_they_were_replayed_with(default_model, square_video,
                                                                                  tmp_path, capsys):
    """A refined result replays all its corrections on the next refinement, so after_correction is recorded in
    the result (and result.json) and reused; another value is refused (Python and CLI) before any work, instead
    of silently replaying the earlier corrections another way."""
    result = default_model.segment(square_video, "the red square")
    # the default model has a memory tracker: its results replay corrections with "memory" unless told otherwise
    assert result.after_correction == "memory" and result.summary()["after_correction"] == "memory"
    once = result.refine(frame=4, points=[(14.0, 24.0)], labels=[1], after_correction="seg")
    twice = once.refine(frame=8, points=[(40.0, 24.0)], labels=[1])  # reuses "seg"
    assert once.after_correction == twice.after_correction == "seg"
    both = result.refine(frame=4, points=[(14.0, 24.0)], labels=[1], after_correction="seg").refine(
        frame=8, points=[(40.0, 24.0)], labels=[1], after_correction="seg")
    assert np.array_equal(twice.masks, both.masks)
    memory_twice = result.refine(frame=4, points=[(14.0, 24.0)], labels=[1]).refine(
        frame=8, points=[(40.0, 24.0)], labels=[1])
    assert memory_twice.after_correction == "memory"
    assert not np.array_equal(twice.masks, memory_twice.masks)  # the choice matters, so mixing it would be wrong
    with pytest.raises(ValueError, match="replayed with after_correction='seg'"):
        once.refine(frame=8, points=[(40.0, 24.0)], labels=[1], after_correction="memory")

    video = _frames_folder(square_video, tmp_path / "video")
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    assert main(["segment", str(video), "the red square", "--out", str(first), "--quiet", "--no-overlay"]) == 0
    assert json.loads((first / "result.json").read_text())["after_correction"] == "memory"
    assert main(["refine", str(first), "--frame", "4", "--point", "14,24,1", "--after-correction", "seg",
                 "--out", str(second), "--no-overlay", "--quiet"]) == 0
    assert json.loads((second / "result.json").read_text())["after_correction"] == "seg"
    assert main(["refine", str(second), "--frame", "8", "--point", "40,24,1", "--after-correction", "memory",
                 "--out", str(third), "--no-overlay", "--quiet"]) == 2
    assert "refined with --after-correction seg" in capsys.readouterr().err and not third.exists()
    assert main(["refine", str(second), "--frame", "8", "--point", "40,24,1", "--out", str(third), "--no-overlay",
                 "--quiet"]) == 0
    saved = json.loads((third / "result.json").read_text())
    assert saved["after_correction"] == "seg"
    assert saved["objects"][0]["area_pixels"] == [int(a) for a in twice.masks[0].sum(axis=(1, 2))]


def test_refine_returns_a_new_result_and_keeps_the_old_one(default_model, square_video):
    result = default_model.segment(square_video, ["the red square", "the background"])
    t = result.tracking  # object 2 without its [SEG]: empty until clicked (the default model ignores clicks otherwise)
    result = dataclasses.replace(result, masks=np.stack([result.masks[0], np.zeros_like(result.masks[1])]),
                                 tracking=dataclasses.replace(t, prompts=t.prompts[:, :1], tracked=(0,)))
    before = result.masks.copy()
    refined = result.refine(frame=4, points=[(25, 24)], labels=[1], object=2)
    assert refined is not result and refined.masks is not result.masks
    assert np.array_equal(result.masks, before) and result.corrections == ()
    assert refined.corrections == (Correction(frame=4, object=2, points=((25.0, 24.0),), labels=(1,)),)
    assert np.array_equal(refined.masks[0], before[0])  # the other object is not tracked again
    assert not np.array_equal(refined.masks[1], before[1])
    assert refined.model is default_model and refined.source is result.source
    again = refined.refine(frame=8, box=(20, 10, 60, 40), object=2)  # corrections add up
    assert [c.frame for c in again.corrections] == [4, 8]
    summary = again.summary()
    assert summary["corrections"][1] == {"frame": 8, "object": 2, "points": [], "labels": [],
                                         "box": [20.0, 10.0, 60.0, 40.0]}
    assert summary["objects"][1]["score"] == pytest.approx(float(again.scores[1]))


def test_a_click_and_a_box_track_an_empty_object_both_ways(default_model, square_video):
    """An object without [SEG] (empty on every frame) tracked from a click or a box, forwards and backwards:
    SAM-2 steps through every frame before and after the prompted one (its presence probability, the sigmoid
    of SAM-2's object score, is computed there: never left at its initial 0); the click's frame gets a mask."""
    from svac.grounding.replay import FramePrompt, replay_object

    result = _clicks_only(default_model.segment(square_video, "the red square"))
    assert not result.masks.any()
    i = 6
    scale = np.array([default_model.sam2_image_size / W, default_model.sam2_image_size / H], dtype=np.float32)
    for coords, labels in ((np.array([[4 + 4 * i + 8, 24], [0.5, 0.5]]), [1, 0]),
                           (np.array([[4 + 4 * i, 16], [20 + 4 * i, 32]]), [2, 3])):  # a box: its two corners
        prompt = FramePrompt(frame=i, coords=(coords * scale).astype(np.float32), labels=np.array(labels, np.int32))
        out = replay_object(default_model, result.source, result.tracking, 0, [prompt])
        assert (out.presence > 0).all()  # tracked (SAM-2 stepped through it, not left at 0) on every frame, both ways
        # the click and the box find the square on their frame (stage 4 of the default recipe trains both; the
        # previous default model, trained on clicks only, gave an empty mask for the box). That a box is replayed
        # as SAM 2's predictor does is test_refinement_gives_sam2_video_predictors_masks'.
        square = np.zeros((H, W), dtype=bool)
        square[16:32, 4 + 4 * i:20 + 4 * i] = True
        assert (out.masks[i] & square).sum() > 0.5 * (out.masks[i] | square).sum(), labels  # J > 0.5
    refined = result.refine(frame=i, points=[(4 + 4 * i + 8, 24), (0.5, 0.5)], labels=[1, 0])
    assert refined.masks[0, i].any() and refined.scores[0] > 0
    assert refined.objects[0].score == pytest.approx(float(refined.scores[0]))


@pytest.mark.parametrize("kwargs, message", [
    ({"frame": 12, "points": [(1, 1)], "labels": [1]}, "frame 12 is outside the video: its frames are 0..11"),
    ({"frame": -1, "points": [(1, 1)], "labels": [1]}, "frame -1 is outside"),
    ({"frame": 1.0, "points": [(1, 1)], "labels": [1]}, "frame must be an integer"),
    ({"frame": True, "points": [(1, 1)], "labels": [1]}, "frame must be an integer"),
    ({"frame": 0}, "nothing to refine with"),
    ({"frame": 0, "points": [(1, 1)]}, "points need labels"),
    ({"frame": 0, "labels": [1]}, "labels were given without points"),
    ({"frame": 0, "points": [(1, 1), (2, 2)], "labels": [1]}, "2 points but 1 labels"),
    ({"frame": 0, "points": [(1, 1)], "labels": [2]}, "label 1 must be 1 (the object is here) or 0"),
    ({"frame": 0, "points": [(1, 1)], "labels": [True]}, "label 1 must be 1"),
    ({"frame": 0, "points": [(65, 1)], "labels": [1]}, "point 1 (65, 1) is outside the 64x48 frame"),
    ({"frame": 0, "points": [(1, -0.5)], "labels": [1]}, "outside the 64x48 frame"),
    ({"frame": 0, "points": [(1, float("nan"))], "labels": [1]}, "point 1 y must be a finite number"),
    ({"frame": 0, "points": [(1, 2, 3)], "labels": [1]}, "point 1 must be an (x, y) pair"),
    ({"frame": 0, "points": "1,2", "labels": [1]}, "points must be a list or tuple"),
    ({"frame": 0, "box": (10, 10, 5, 20)}, "x0 < x1 and y0 < y1"),
    ({"frame": 0, "box": (0, 0, 70, 20)}, "must lie inside the 64x48 frame"),
    ({"frame": 0, "box": (0, 0, 10)}, "box must be (x0, y0, x1, y1)"),
    ({"frame": 0, "points": [(1, 1)], "labels": [1], "object": 3}, "object 3 does not exist: the result's objects "
                                                                  "are numbered 1..2"),
    ({"frame": 0, "points": [(1, 1)], "labels": [1], "object": 0}, "object 0 does not exist"),
    ({"frame": 0, "points": [(1, 1)], "labels": [1], "object": None}, "the result has 2 objects: say which one"),
])
def test_bad_corrections_are_refused_with_the_problem_named(kwargs, message):
    with pytest.raises(ValueError) as err:
        check_correction(**{"object": 1, **kwargs}, num_frames=N, num_objects=2, frame_size=(H, W))
    assert message in str(err.value)


def test_valid_corrections_take_plain_numbers_and_edges():
    c = check_correction(frame=np.int64(3), points=np.array([[0, 0], [64, 48]]), labels=[np.int64(1), 0],
                         box=(0, 0, 64, 48), object=None, num_frames=N, num_objects=1, frame_size=(H, W))
    assert c == Correction(frame=3, object=1, points=((0.0, 0.0), (64.0, 48.0)), labels=(1, 0),
                           box=(0.0, 0.0, 64.0, 48.0))
    assert type(c.frame) is int and type(c.points[0][0]) is float


def test_frame_prompts_accumulate_clicks_and_a_box_restarts_the_frame():
    cs = [Correction(frame=2, object=1, points=((32.0, 24.0),), labels=(1,)),
          Correction(frame=2, object=2, points=((1.0, 1.0),), labels=(1,)),  # another object
          Correction(frame=2, object=1, points=((16.0, 12.0),), labels=(0,)),
          Correction(frame=2, object=1, box=(0.0, 0.0, 64.0, 48.0), points=((8.0, 4.0),), labels=(1,))]
    prompts = frame_prompts(cs, 1, (H, W), 128)  # x * 128/64, y * 128/48
    assert [p.frame for p in prompts] == [2, 2, 2]
    np.testing.assert_allclose(prompts[1].coords, [[64.0, 64.0], [32.0, 32.0]])
    assert prompts[1].labels.tolist() == [1, 0]
    assert prompts[2].labels.tolist() == [2, 3, 1]  # box corners first, earlier clicks dropped (SAM-2's order)
    np.testing.assert_allclose(prompts[2].coords, [[0.0, 0.0], [128.0, 128.0], [16.0, 32.0 / 3]], rtol=1e-6)


def test_results_that_cannot_be_refined_say_why(tiny_model, small_video):
    from svac.outputs import merge_results

    result = tiny_model.segment(small_video, "the red square")
    with pytest.raises(ValueError, match="not bound to an SVAC model"):
        dataclasses.replace(result, model=None).refine(frame=0, points=[(1, 1)], labels=[1])
    merged = merge_results([result])
    with pytest.raises(ValueError, match="keeps no SAM-2 prompts or video"):
        tiny_model.refine(merged, frame=0, points=[(1, 1)], labels=[1])
    with pytest.raises(ValueError, match="frame 40 is outside"):
        result.refine(frame=40, points=[(1, 1)], labels=[1])


def _frames_folder(frames, folder):
    from PIL import Image

    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
    return folder


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_refine_writes_a_new_folder_and_leaves_the_old_one(default_model, square_video, tmp_path, capsys):
    video = _frames_folder(square_video, tmp_path / "video")
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    assert main(["segment", str(video), "the red square", "--out", str(first), "--quiet", "--no-overlay"]) == 0
    kept = _snapshot(first)
    assert main(["refine", str(first), "--frame", "6", "--point", "32,24,1", "--point", "2,2,0",
                 "--out", str(second), "--no-overlay"]) == 0
    assert "object 1 refined at frame 6" in capsys.readouterr().out
    assert _snapshot(first) == kept
    summary = json.loads((second / "result.json").read_text())
    assert summary["corrections"] == [{"frame": 6, "object": 1, "points": [[32.0, 24.0], [2.0, 2.0]],
                                       "labels": [1, 0], "box": None}]
    assert summary["video_path"] == str(video.resolve())
    expected = default_model.segment(square_video, "the red square").refine(
        frame=6, points=[(32, 24), (2, 2)], labels=[1, 0])
    assert summary["objects"][0]["area_pixels"] == [int(a) for a in expected.masks[0].sum(axis=(1, 2))]

    # a refined folder is refined again: its corrections are replayed first; a box, DAVIS layout
    assert main(["refine", str(second), "--frame", "2", "--box", "10,14,30,34", "--out", str(third),
                 "--format", "davis", "--no-overlay"]) == 0
    summary = json.loads((third / "result.json").read_text())
    assert [c["frame"] for c in summary["corrections"]] == [6, 2] and summary["files"]["format"] == "davis"
    assert len(list((third / "video").glob("*.png"))) == N

    # never over existing results without --overwrite, never into RESULT_DIR
    assert main(["refine", str(first), "--frame", "6", "--point", "32,24,1", "--out", str(second)]) == 2
    assert "already" in capsys.readouterr().err
    assert main(["refine", str(first), "--frame", "6", "--point", "32,24,1", "--out", str(first)]) == 2
    assert "RESULT_DIR is kept" in capsys.readouterr().err
    assert _snapshot(first) == kept


def test_cli_refine_refuses_bad_input_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["refine", str(tmp_path), "--frame", "0", "--point", "1,1,1", "--out", str(out)]) == 2
    assert "has no result.json" in capsys.readouterr().err
    assert main(["refine", str(tmp_path), "--frame", "0", "--out", str(out)]) == 2
    assert "nothing to refine with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["refine", str(tmp_path), "--frame", "0", "--point", "1,1,2", "--out", str(out)])
    assert "must be 1 (the object is here) or 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["refine", str(tmp_path), "--frame", "0", "--box", "5,5,1,1", "--out", str(out)])
    assert "x0 < x1" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refine_with_another_model_than_the_results_says_so(default_model, square_video, tmp_path, capsys):
    video = _frames_folder(square_video, tmp_path / "video")
    first = tmp_path / "first"
    assert main(["segment", str(video), "the red square", "--out", str(first), "--quiet", "--no-overlay"]) == 0
    code = main(["refine", str(first), "--frame", "1", "--point", "10,10,1", "--out", str(tmp_path / "x"),
                 "--model", "tiny.yaml"])
    assert code == 2
    assert "does not give its masks" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_sa2va_pipeline_replays_its_own_schedule_and_keeps_its_prompted_frames(square_video):
    """Sa2VA's schedule (the MLLM's frames prompted on their own, bfloat16 memory) is replayed as the engine ran it."""

    from svac.grounding.engine import logits_to_masks
    from svac.grounding.replay import _Replay
    from svac.loading import load_model
    from svac.outputs import Timings

    folder = Path(__file__).resolve().parent / "fixtures" / "sa2va_tiny" / "sa2va_1b"
    model = load_model(str(folder), overrides=["inference.answer_mode=template", "inference.dtype=float32"])
    n = 7  # its SAM-2 is 1024 px: few frames
    result = model.segment(square_video[:n], "the red square")
    assert result.tracking.pipeline == "sa2va"
    prompted = sorted(result.tracking.conditioning_frames)
    assert prompted == [0, 1, 2, 3, 4]
    state = _Replay(model, result.source, result.tracking, 0, 8, Timings())
    with torch.inference_mode():
        state.original_run(until=n - 1, keep=range(n))
    assert sorted(state.cond) == prompted
    logits = {**{t: v[0] for t, v in state.cond_logits.items()}, **state.near_logits}
    masks = logits_to_masks(model, torch.cat([logits[t] for t in range(n)], dim=1), pipeline="sa2va",
                            frame_size=(H, W))
    assert np.array_equal(masks, result.masks)

    i = 6  # a frame tracked by memory alone
    refined = result.refine(frame=i, points=[(30, 24)], labels=[1])
    assert np.array_equal(refined.masks[0, prompted], result.masks[0, prompted])  # conditioning frames stand
    assert not np.array_equal(refined.masks[0, i], result.masks[0, i])


CLICKED = 10  # the frame clicked (of 31) of examples/synthetic.mp4


def _nearest_to_centre(region: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` pixel centre of the ``region`` pixel nearest its centroid (inside the region even when it is not convex)."""
    ys, xs = np.nonzero(region)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


@pytest.mark.parametrize("query", ["the white shape", "the red triangle"])
def test_a_positive_click_inside_the_target_raises_j_on_its_frame_and_after(default_model, example_truth, query):
    """Issue 16: a mask wrong on purpose -- the red square asked as "the white shape" (another object), or as
    "the red triangle" (the same colour, another shape: its mask took the red square in part, J 0.32 on the
    clicked frame, before the default model kept one region per mask; now 0.00; the click lifts it to 0.93) -- is corrected by one click inside the
    red square at frame i: J on the red square rises at frame i and on the frames after it, which the default
    model's memory tracker decodes from the corrected frame's memory (after_correction="memory", its default):
    mean J over frames 11-30 0.005 -> 0.375 ("the white shape") and 0.184 -> 0.378 ("the red triangle"), measured
    keeping every region of a mask (one region: 0.005 -> 0.35 and 0.02 -> 0.35, clicked at the centroid); with
    after_correction="seg" those frames keep their clip's wrong [SEG] prompt and do not move. "The red square"
    itself gets J 0.55 on that frame (0.92 after the click); it is not asked here, being the query, not a mask
    wrong on purpose."""
    truth = example_truth == RED_SQUARE
    result = default_model.segment(str(EXAMPLE), query)
    before = frame_j(result.masks[0], truth)
    assert before[CLICKED] < 0.6  # wrong on the clicked frame
    refined = result.refine(frame=CLICKED, points=[_nearest_to_centre(truth[CLICKED])], labels=[1])
    assert refined.after_correction == "memory"
    after = frame_j(refined.masks[0], truth)
    assert after[CLICKED] >= before[CLICKED] + 0.2, (before[CLICKED], after[CLICKED])
    later = slice(CLICKED + 1, None)
    assert after[later].mean() >= before[later].mean() + 0.1, (before[later].mean(), after[later].mean())
    assert after[CLICKED + 1] >= 0.5, after[CLICKED + 1]  # the next frame follows the corrected object


@pytest.mark.parametrize("query", ["the white shape", "the red triangle"])
def test_a_box_around_the_target_raises_j_on_its_frame(default_model, example_truth, query):
    """Issue 16 §3 with a box: the wrong masks of the test above, corrected by the red square's bounding box at
    frame i, score J >= 0.7 on the red square there and more on the frames after it (stage 4 of the default recipe trains boxes beside the
    [SEG] prompt; the previous default model, trained on clicks only, lowered J with a box: README)."""
    truth = example_truth == RED_SQUARE
    result = default_model.segment(str(EXAMPLE), query)
    before = frame_j(result.masks[0], truth)
    ys, xs = np.nonzero(truth[CLICKED])
    refined = result.refine(frame=CLICKED, box=(float(xs.min()), float(ys.min()), float(xs.max()) + 1,
                                                float(ys.max()) + 1))
    after = frame_j(refined.masks[0], truth)
    assert before[CLICKED] < 0.6 and after[CLICKED] >= 0.7, (before[CLICKED], after[CLICKED])
    later = slice(CLICKED + 1, None)  # carried on by the memory tracker: 0.005 / 0.184 -> 0.378 / 0.379 (every region kept)
    assert after[later].mean() >= before[later].mean() + 0.1, (before[later].mean(), after[later].mean())


def test_a_negative_click_on_a_false_positive_lowers_false_positives(default_model):
    """Issue 16: a negative click on a false-positive pixel at frame i removes false positives there, and adds
    none on the frames after it -- over the synthetic videos of ``svac bench refine-clicks`` (seeds 100-111,
    two objects, 24 frames, click on frame 8 at the false-positive pixel nearest the false positives'
    centroid), with the expression's own mask and with a mask wrong on purpose (an expression naming the other
    object).

    The default model's negative clicks are weaker than its positive ones (README "Refine with a click or a
    box"): measured on these videos, the clicked frame's false positives fall by 31 % in total (4514 -> 3132 px
    over 15 clicks, fewer on 14 of them; keeping every region of a mask, ``inference.mask_components: all``:
    7302 -> 4913 px over 20 clicks, rising on 3; the five-stage model before it: by three quarters with its own
    mask on the README's table); on ``examples/synthetic.mp4`` "the red square" covers 1 px outside the square
    on frame 10, and a negative click there removes it and cuts the square to J 0.25."""

    from svac.data.synthetic.generator import VideoSpec, generate_video

    i = 8
    frame_before, frame_after, later_before, later_after, fewer = 0, 0, 0, 0, []
    for seed in range(100, 112):
        video = generate_video(np.random.default_rng(seed), VideoSpec(num_frames=(24, 24), num_objects=(2, 2)))
        target = video.expressions[0]
        others = [e for e in video.expressions if e.obj_id != target.obj_id]
        truth = video.object_mask(target.obj_id)
        if not truth[i].any() or not others:
            continue
        for text in (target.text, others[0].text):
            result = default_model.segment(video.frames, text)
            false = result.masks[0, i] & ~truth[i]
            if not false.any():
                continue
            refined = result.refine(frame=i, points=[_nearest_to_centre(false)], labels=[0])
            before = (result.masks[0] & ~truth).sum(axis=(1, 2))
            after = (refined.masks[0] & ~truth).sum(axis=(1, 2))
            frame_before, frame_after = frame_before + before[i], frame_after + after[i]
            later_before, later_after = later_before + before[i + 1:].sum(), later_after + after[i + 1:].sum()
            fewer.append(after[i] < before[i])
    assert len(fewer) >= 10, len(fewer)  # enough clicks for the totals to mean something
    assert frame_after <= 0.8 * frame_before, (frame_before, frame_after)
    assert np.mean(fewer) >= 0.75, fewer  # most clicks, not a few large ones
    assert later_after <= 1.01 * later_before, (later_before, later_after)
