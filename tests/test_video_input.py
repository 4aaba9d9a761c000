"""Video input: decord files, frame folders, in-memory frames, sampling, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from svac.errors import VideoReadError
from svac.video.reader import ArrayVideo, open_video, sample_frame_indices


def test_uniform_sampling_spans_the_whole_video():
    idx = sample_frame_indices(50, 20)
    assert idx[0] == 0 and idx[-1] == 49 and len(idx) == 20
    assert (np.diff(idx) > 0).all()


@pytest.mark.parametrize("n", [1, 2, 7, 50, 333])
@pytest.mark.parametrize("t", [1, 2, 5, 20, 400])
def test_sampling_is_sorted_unique_and_bounded(n, t):
    idx = sample_frame_indices(n, t)
    assert len(idx) == min(n, t)
    assert (np.diff(idx) > 0).all() and idx.min() >= 0 and idx.max() < n


def test_first_policy_takes_the_first_frames():
    assert list(sample_frame_indices(50, 5, "first")) == [0, 1, 2, 3, 4]


def test_mp4_frames_match_the_jpeg_frames(davis16):
    video = open_video(davis16 / "blackswan.mp4")
    assert (video.num_frames, video.height, video.width) == (50, 480, 854)
    assert video.fps == pytest.approx(24.0)
    frames = video.read([0, 25, 49])
    assert frames.shape == (3, 480, 854, 3) and frames.dtype == np.uint8
    jpeg = np.asarray(Image.open(davis16 / "JPEGImages/480p/blackswan/00025.jpg").convert("RGB"))
    assert np.abs(frames[1].astype(int) - jpeg.astype(int)).mean() < 8  # lossy codecs, same picture


def test_frame_folder_is_read_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.full((8, 10, 3), i, dtype=np.uint8)).save(tmp_path / f"f{i}.png")
    video = open_video(tmp_path)
    assert video.frame_names == ("f1", "f2", "f10")
    assert list(video.read([0, 1, 2])[:, 0, 0, 0]) == [1, 2, 10]


def test_grayscale_and_rgba_frames_are_converted(tmp_path):
    Image.fromarray(np.full((8, 10), 77, dtype=np.uint8), mode="L").save(tmp_path / "0.png")
    Image.fromarray(np.full((8, 10, 4), 99, dtype=np.uint8), mode="RGBA").save(tmp_path / "1.png")
    frames = open_video(tmp_path).read([0, 1])
    assert frames.shape == (2, 8, 10, 3)
    assert (frames[0] == 77).all() and (frames[1] == 99).all()
    mem = ArrayVideo([np.full((8, 10), 5, np.uint8), np.full((8, 10, 4), 6, np.uint8)])
    assert mem.read([0, 1]).shape == (2, 8, 10, 3)


def test_mixed_sizes_are_rejected(tmp_path):
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "0.png")
    Image.fromarray(np.zeros((9, 10, 3), np.uint8)).save(tmp_path / "1.png")
    with pytest.raises(VideoReadError, match="mixed sizes"):
        open_video(tmp_path)
    with pytest.raises(VideoReadError, match="mixed sizes"):
        open_video([np.zeros((8, 10, 3), np.uint8), np.zeros((9, 10, 3), np.uint8)])


def test_zero_frames_are_rejected(tmp_path):
    with pytest.raises(VideoReadError, match="zero frames"):
        open_video(tmp_path)
    with pytest.raises(VideoReadError, match="zero frames"):
        open_video([])


def test_corrupt_and_missing_videos_are_rejected(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not an mp4 " * 100)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        open_video(bad)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        open_video(empty)
    with pytest.raises(VideoReadError, match="not found"):
        open_video(tmp_path / "nope.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(VideoReadError, match="unsupported"):
        open_video(text)


def test_truncated_video_is_rejected(tmp_path, davis16):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((davis16 / "blackswan.mp4").read_bytes()[:3000])
    with pytest.raises(VideoReadError, match="cut.mp4"):
        video = open_video(cut)
        video.read(range(video.num_frames))


def test_float_frames_are_rejected_not_coerced():
    with pytest.raises(VideoReadError, match="uint8"):
        open_video([np.zeros((8, 10, 3), np.float32)])


def test_out_of_range_index():
    with pytest.raises(IndexError):
        ArrayVideo([np.zeros((4, 4, 3), np.uint8)]).read([1])
