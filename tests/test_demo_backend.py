"""The demo page's logic without the page (svac.demo.backend): runs, files, previews, chat, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import scripted_generate
from PIL import Image

from svac.cli import main
from svac.demo.backend import NO_VIDEO_MESSAGE, DemoBackend, DemoRun, example_videos
from svac.errors import VideoReadError
from svac.mllm.tokens import SEG_TOKEN
from svac.video.export import davis_palette
from svac.video.overlay import mask_outline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SYNTHETIC = EXAMPLES / "synthetic.mp4"  # 31 frames, 160x120


@pytest.fixture
def backend(tiny_model, tmp_path):
    return DemoBackend(tiny_model, tmp_path / "work", num_frames=8, clip_len=4)


def test_segment_writes_the_library_files_and_a_zip_of_the_masks(backend):
    events = []
    run = backend.segment(str(SYNTHETIC), "the red square", progress=events.append)
    assert run.result.masks.shape == (1, 31, 120, 160) and run.num_frames == 31
    assert [e.stage for e in events if e.done == 0] == ["SAM-2", "write"]  # the overlay is written with the masks
    summary = json.loads(run.files.summary.read_text())
    assert summary["video"] == "synthetic" and summary["num_frames"] == 31 and summary["text"] == run.result.text
    assert run.files.overlay.stat().st_size > 0
    with zipfile.ZipFile(run.masks_zip) as z:
        names = sorted(n for n in z.namelist() if not n.endswith("/"))  # folders aside
        assert names == [f"masks/1/{i:05d}.png" for i in range(31)]
        with z.open("masks/1/00007.png") as f, Image.open(f) as im:
            assert im.mode == "P" and np.array_equal(np.array(im) == 1, run.result.masks[0, 7])


def test_previews_blend_each_object_in_its_palette_colour(backend):
    run = backend.segment(str(SYNTHETIC), "the red square")
    frame = run.source.read([9])[0]
    (only,) = backend.previews(run, 9)
    mask = run.result.masks[0, 9]
    assert only.image.shape == (120, 160, 3) and only.image.dtype == np.uint8
    assert np.array_equal(only.image[~mask], frame[~mask])  # untouched outside the mask
    if mask.any():  # blended half-way towards palette colour 1 (red) inside it, outlined in black or white
        edge = mask_outline(mask)
        inside = mask & ~edge
        expected = (frame[inside].astype(np.uint16) * 128 + davis_palette()[1].astype(np.uint16) * 128 + 128) >> 8
        assert np.array_equal(only.image[inside], expected.astype(np.uint8))
        shades = np.unique(only.image[edge].reshape(-1, 3), axis=0)
        assert len(shades) == 1 and tuple(shades[0]) in {(0, 0, 0), (255, 255, 255)}
    assert only.caption.startswith("object 1: score") and only.caption.endswith("frame 00009")
    with pytest.raises(IndexError, match="outside"):
        backend.previews(run, 31)


def test_previews_of_several_objects_show_all_then_each(backend):
    run = backend.segment(str(SYNTHETIC), "the red square")
    left = np.zeros((31, 120, 160), bool)
    left[:, :, :80] = True
    two = DemoRun(result=_with_masks(run.result, np.stack([left, ~left])), source=run.source, files=run.files,
                  masks_zip=run.masks_zip)
    previews = backend.previews(two, 3)
    assert [p.caption.split(":")[0].split(",")[0] for p in previews] == ["all 2 objects", "object 1", "object 2"]
    combined = previews[0].image
    assert np.array_equal(combined[:, :80], previews[1].image[:, :80])  # object 1 in red on the left
    assert np.array_equal(combined[:, 80:], previews[2].image[:, 80:])  # object 2 in green on the right
    assert not np.array_equal(previews[1].image[:, :80], previews[2].image[:, :80])


def test_text_only_answer_has_no_preview(backend):
    run = backend.segment(str(SYNTHETIC), "the red square")
    empty = DemoRun(result=_with_masks(run.result, np.zeros((0, 31, 120, 160), bool)), source=run.source,
                    files=run.files, masks_zip=run.masks_zip)
    assert backend.previews(empty, 0) == []


def _with_masks(result, masks):
    import dataclasses

    return dataclasses.replace(result, masks=masks, scores=np.full(len(masks), 0.5, np.float32), objects=[])


def test_bad_input_gives_the_command_line_message(backend, tmp_path, capsys):
    with pytest.raises(VideoReadError, match="no video"):
        backend.segment(None, "the red square")
    assert str(VideoReadError(NO_VIDEO_MESSAGE)) == NO_VIDEO_MESSAGE
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"garbage" * 50)
    for video, query in [(str(SYNTHETIC), "   "), (str(broken), "the swan")]:
        with pytest.raises(ValueError) as caught:
            backend.segment(video, query)
        assert main(["segment", video, query, "--out", str(tmp_path / "run"), "--quiet"]) == 2
        assert capsys.readouterr().err == f"svac: error: {caught.value}\n"
    assert not list((tmp_path / "work").glob("run-*"))  # nothing written for failed runs


def test_chat_answers_text_only_then_segments(backend, tiny_model, monkeypatch):
    tok, end = tiny_model.tokenizer, tiny_model.chat_template.assistant_suffix

    def script(text):
        ids = tok(text + end, add_special_tokens=False).input_ids
        monkeypatch.setattr(tiny_model.mllm, "generate", scripted_generate(tiny_model.mllm, ids))

    session = backend.start_chat(str(SYNTHETIC))
    script("Three shapes.")
    response, run = backend.ask(session, "What is in the video?")
    assert response.text == "Three shapes." and run is None
    script(f"The red one, {SEG_TOKEN * 2}.")
    response, run = backend.ask(session, "Segment the red shape.")
    assert run is not None and run.result.masks.shape == (1, 31, 120, 160)
    assert len(session.turns) == 2 and run.files.summary.is_file()
    with pytest.raises(ValueError, match="empty"):
        backend.ask(session, "  ")
    with pytest.raises(VideoReadError, match="no video"):
        backend.start_chat(None)


def test_old_run_folders_are_deleted(tiny_model, tmp_path):
    backend = DemoBackend(tiny_model, tmp_path / "work", num_frames=4, clip_len=4, keep_runs=2)
    runs = [backend.segment(str(SYNTHETIC), "the red square") for _ in range(3)]
    kept = sorted(p.name for p in (tmp_path / "work").iterdir())
    assert kept == [runs[1].files.out_dir.name, runs[2].files.out_dir.name]
    with pytest.raises(ValueError, match="keep_runs"):
        DemoBackend(tiny_model, tmp_path / "w2", keep_runs=0)


def test_example_videos_lists_the_repository_examples(tmp_path):
    assert SYNTHETIC in example_videos() and all(p.suffix == ".mp4" for p in example_videos())
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "clip.MOV").write_bytes(b"")
    assert example_videos(tmp_path) == [tmp_path / "clip.MOV"]
    assert example_videos(tmp_path / "missing") == []


def test_importing_svac_and_the_demo_does_not_import_gradio():
    code = ("import sys, svac, svac.cli, svac.demo, svac.demo.backend, svac.demo.app; "
            "assert 'gradio' not in sys.modules, 'gradio imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_svac_demo_without_gradio_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    monkeypatch.setattr("svac.cli._load", lambda args: pytest.fail("the model must not load without gradio"))
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("svac: error: svac demo needs Gradio")
    assert 'pip install -e ".[demo]"' in err


def test_refine_writes_a_new_run_with_the_click_and_keeps_the_old_one(backend):
    run = backend.segment(str(SYNTHETIC), "the red square")
    old_summary = run.files.summary.read_text()
    refined = backend.refine(run, frame=5, point=(80.0, 60.0), positive=False)
    assert refined.files.out_dir != run.files.out_dir and run.files.summary.read_text() == old_summary
    summary = json.loads(refined.files.summary.read_text())
    assert summary["corrections"] == [{"frame": 5, "object": 1, "points": [[80.0, 60.0]], "labels": [0], "box": None}]
    assert refined.result.corrections and run.result.corrections == ()
    preview = backend.object_preview(refined, 5, 1)
    assert preview.image.shape == (120, 160, 3) and "frame 00005" in preview.caption
    with pytest.raises(IndexError, match="object 2 is not one of the result's objects 1..1"):
        backend.object_preview(refined, 5, 2)
    with pytest.raises(ValueError, match=r"point 1 \(200, 60\) is outside the 160x120 frame"):
        backend.refine(run, frame=5, point=(200.0, 60.0))
