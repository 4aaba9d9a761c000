"""Progress events (svac.progress): the same stages reach tqdm bars and callbacks."""

from __future__ import annotations

import pytest

from svac.progress import ProgressEvent, progress_bar, progress_iter
from svac.video.export import export_result, write_overlay
from svac.video.reader import open_video


def test_callback_bar_reports_start_and_every_update():
    events = []
    with progress_bar(events.append, total=3, desc="masks", unit="png") as bar:
        bar.update(1)
        bar.update(2)
    assert events == [ProgressEvent("masks", 0, 3, "png"), ProgressEvent("masks", 1, 3, "png"),
                      ProgressEvent("masks", 3, 3, "png")]
    assert [e.fraction for e in events] == [0.0, pytest.approx(1 / 3), 1.0]
    assert ProgressEvent("x", 2, None, "frame").fraction is None


def test_progress_iter_yields_every_item_and_counts_them():
    events = []
    assert list(progress_iter("abc", events.append, total=3, desc="SAM-2", unit="frame")) == ["a", "b", "c"]
    assert [e.done for e in events] == [0, 1, 2, 3]
    assert list(progress_iter(range(4), False, total=4, desc="SAM-2", unit="frame")) == [0, 1, 2, 3]


def test_bool_progress_draws_a_tqdm_bar(capsys):
    list(progress_iter(range(2), True, total=2, desc="SAM-2", unit="frame"))
    assert "SAM-2" in capsys.readouterr().err
    list(progress_iter(range(2), False, total=2, desc="SAM-2", unit="frame"))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_progress_must_be_a_bool_or_a_callable(bad):
    with pytest.raises(TypeError, match="progress must be"):
        progress_bar(bad, total=1, desc="x", unit="y")
    with pytest.raises(TypeError, match="progress must be"):
        progress_iter([], bad, total=0, desc="x", unit="y")


def test_segment_and_export_send_the_command_line_stages(tiny_model, small_video, tmp_path):
    events = []
    result = tiny_model.segment(small_video, "the red square", num_frames=6, clip_len=3, progress=events.append)
    sam2 = [e for e in events if e.stage == "SAM-2"]
    done = [e.done for e in sam2]  # one event per chunk of frames (config.sam2.encoder_batch_size), in order
    chunk = tiny_model.config.sam2.encoder_batch_size
    assert done[0] == 0 and done[-1] == 12 and {e.total for e in sam2} == {12}
    assert all(0 < b - a <= chunk for a, b in zip(done, done[1:]))
    assert {e.unit for e in sam2} == {"frame"}
    events.clear()
    export_result(result, open_video(small_video), tmp_path / "out", progress=events.append)
    assert [(e.stage, e.done, e.total) for e in events if e.done in (0, e.total)] == [("write", 0, 12), ("write", 12, 12)]
    events.clear()
    write_overlay(result.masks, open_video(small_video), tmp_path / "o.mp4", fps=10, progress=events.append)
    assert [(e.stage, e.done, e.total, e.unit) for e in events] == [("overlay", 0, 1, "chunk"), ("overlay", 1, 1, "chunk")]
