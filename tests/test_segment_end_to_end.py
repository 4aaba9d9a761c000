"""The main job end to end: `svac segment` and `svac chat` on real DAVIS frames, outputs and bad input."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
import torch
from helpers import scripted_generate
from PIL import Image

from svac.cli import main
from svac.mllm.tokens import SEG_TOKEN
from svac.video.export import export_result
from svac.video.reader import open_video


def test_cli_segment_on_real_video(davis16, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["segment", str(davis16 / "blackswan.mp4"), "a black swan swimming on the pond", "--out", str(out),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "UNTRAINED" not in captured.err  # the shipped default model is trained
    pngs = sorted((out / "masks" / "1").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:05d}.png" for i in range(50)]
    with Image.open(pngs[0]) as im:
        assert im.size == (854, 480) and im.mode == "P"
    with av.open(str(out / "overlay.mp4")) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == 50 and (frames[0].width, frames[0].height) == (854, 480)
    summary = json.loads((out / "result.json").read_text())
    assert summary["num_frames"] == 50 and summary["num_objects"] == 1
    assert summary["clip_spans"][0][0] == 0 and summary["clip_spans"][-1][1] == 50
    # the default model: 128 px images, 8 px patches, pixel shuffle 0.5 -> (128 / 8) ** 2 / 4 = 64 tokens
    assert summary["num_visual_tokens"] == 2 * len(summary["clip_spans"]) * (128 // 8) ** 2 // 4
    assert [s for s in summary["frame_indices"]] == sorted(set(summary["frame_indices"]))


def test_segment_on_real_frame_folder_keeps_frame_names(davis16, tiny_model, tmp_path):
    folder = davis16 / "JPEGImages/480p/car-shadow"
    result = tiny_model.segment(folder, "the silver car", num_frames=16, clip_len=4)
    assert result.masks.shape == (1, 40, 480, 854)
    assert len(result.clip_spans) == 4 and result.num_visual_tokens == 4 * 2 * 16
    files = export_result(result, open_video(folder), tmp_path / "o", overlay=False)
    assert files.num_mask_files == 40 and (tmp_path / "o/masks/1/00039.png").exists()


def test_refuses_existing_results_and_leaves_them_untouched(davis16, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "masks").mkdir(parents=True)
    (out / "result.json").write_text("precious")
    code = main(["segment", str(davis16 / "blackswan.mp4"), "the swan", "--out", str(out), "--quiet"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "result.json").read_text() == "precious"


def test_overwrite_replaces_results_but_keeps_other_files(tmp_path, capsys):
    frames = np.zeros((3, 16, 20, 3), np.uint8)
    video = tmp_path / "frames"
    video.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(video / f"{i:05d}.png")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "result.json").write_text("old")
    code = main(["segment", str(video), "x", "--out", str(out), "--overwrite", "--quiet", "--frames", "3"])
    assert code == 0, capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "result.json").read_text())["num_frames"] == 3


@pytest.mark.parametrize("make_bad, message", [
    (lambda d: d.joinpath("broken.mp4").write_bytes(b"garbage" * 50) and d / "broken.mp4", "broken.mp4"),
    (lambda d: d.joinpath("empty").mkdir() or d / "empty", "zero frames"),
])
def test_bad_videos_fail_cleanly_without_partial_output(tmp_path, capsys, make_bad, message):
    bad = make_bad(tmp_path)
    out = tmp_path / "run"
    code = main(["segment", str(bad), "the swan", "--out", str(out), "--quiet"])
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".svac-" in p.name]  # no staging left behind


def test_mixed_size_folder_fails_cleanly(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(folder / "0.png")
    Image.fromarray(np.zeros((10, 8, 3), np.uint8)).save(folder / "1.png")
    code = main(["segment", str(folder), "x", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2 and "mixed sizes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_empty_query_fails_cleanly(tmp_path, capsys, tiny_model, small_video):
    code = main(["segment", str(tmp_path), "   ", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2 and "query is empty" in capsys.readouterr().err
    with pytest.raises(ValueError, match="query is empty"):
        tiny_model.segment(small_video, "")


def test_failure_while_writing_leaves_no_partial_output(tiny_model, small_video, tmp_path, monkeypatch):
    result = tiny_model.segment(small_video, "the red square", num_frames=6, clip_len=3)
    import svac.video.export as export

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(export.OverlayWriter, "write", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        export_result(result, open_video(small_video), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.iterdir()) == []


def test_one_frame_video_works(tiny_model, tmp_path):
    frame = np.random.default_rng(0).integers(0, 255, (1, 30, 40, 3), dtype=np.uint8)
    result = tiny_model.segment(frame, "the thing")
    assert result.masks.shape == (1, 1, 30, 40)
    assert list(result.frame_indices) == [0] and result.clip_spans == [(0, 1)]
    files = export_result(result, open_video(frame), tmp_path / "one")
    assert files.num_mask_files == 1
    with av.open(str(files.overlay)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 1


def test_chat_multi_turn_text_only_then_masks(tiny_model, small_video, monkeypatch):
    session = tiny_model.start_chat(small_video, num_frames=10, clip_len=5)
    tok = tiny_model.tokenizer
    end = tiny_model.chat_template.assistant_suffix
    monkeypatch.setattr(tiny_model.mllm, "generate",
                        scripted_generate(tiny_model.mllm, tok("A red square." + end, add_special_tokens=False).input_ids))
    first = session.ask("What is in the video?")
    assert first.text == "A red square." and first.result is None  # no [SEG]: text only
    answer = f"The square, {SEG_TOKEN * 2}."
    monkeypatch.setattr(tiny_model.mllm, "generate",
                        scripted_generate(tiny_model.mllm, tok(answer + end, add_special_tokens=False).input_ids))
    second = session.ask("What moves? Segment it.")
    assert second.text == answer and second.result is not None
    assert second.result.masks.shape == (1, 12, 48, 64)
    assert len(session.turns) == 2 and str(session.turns[0].assistant) == "A red square."
    assert session.turns[0].user.count("<IMG_CONTEXT>") == 2 * 2 * 16 and "<IMG_CONTEXT>" not in session.turns[1].user
    with pytest.raises(ValueError, match="empty"):
        session.ask(" ")


def test_cli_chat_reads_questions_from_stdin(davis16, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("What is this?\nexit\n"))
    code = main(["chat", str(davis16 / "JPEGImages/480p/blackswan"), "--frames", "5", "--set",
                 "inference.max_new_tokens=4"])
    out = capsys.readouterr().out
    assert code == 0 and "svac> " in out
