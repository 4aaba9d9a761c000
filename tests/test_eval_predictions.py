"""Prediction formats: binary / indexed PNGs, RLE JSON, server submission zips; frame-list and looped videos."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from svac.errors import OutputExistsError, SVACError, VideoReadError
from svac.evaluation.predictions import (
    MEVIS_ZIP_PREFIX,
    REVOS_FOREGROUND_VALUE,
    YTVOS_ZIP_PREFIX,
    decode_rle,
    encode_rle,
    read_binary_png,
    write_binary_pngs,
    write_indexed_pngs,
    write_submission_zip,
)
from svac.evaluation.runner import run_benchmark
from svac.evaluation.video_sources import FrameListVideo, LoopedVideo
from svac.video.reader import ArrayVideo

from test_eval_runner import EXPRESSIONS, NUM_FRAMES, NUM_VIDEOS, ColorModel, write_rvos_fixture


def random_masks(seed: int, shape=(4, 21, 33)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) > 0.6


def test_binary_pngs_are_named_like_the_frames_and_read_back(tmp_path):
    masks = random_masks(0)
    names = ("00000", "00005", "00010", "00015")
    files = write_binary_pngs(masks, names, tmp_path / "vid" / "0")
    assert [f.name for f in files] == [f"{n}.png" for n in names]
    assert sorted(p.name for p in (tmp_path / "vid" / "0").iterdir()) == [f"{n}.png" for n in names]
    with Image.open(files[1]) as im:
        assert im.mode == "L" and set(np.unique(np.asarray(im))) <= {0, 255}
    assert np.array_equal(np.stack([read_binary_png(f) for f in files]), masks)
    with pytest.raises(OutputExistsError):
        write_binary_pngs(masks, names, tmp_path / "vid" / "0")
    write_binary_pngs(~masks, names, tmp_path / "vid" / "0", overwrite=True)
    assert np.array_equal(read_binary_png(files[0]), ~masks[0])
    assert not [p for p in (tmp_path / "vid").iterdir() if p.name.startswith(".")]  # no staging left behind
    with pytest.raises(ValueError, match="4 masks for 3 frame names"):
        write_binary_pngs(masks, names[:3], tmp_path / "other")


def test_binary_pngs_in_another_grey_level_read_back_the_same(tmp_path):
    masks = random_masks(3, shape=(2, 5, 7))
    files = write_binary_pngs(masks, ("a", "b"), tmp_path / "revos", foreground_value=REVOS_FOREGROUND_VALUE)
    with Image.open(files[0]) as im:
        assert im.mode == "L" and np.array_equal(np.asarray(im), masks[0].astype(np.uint8))  # 0 / 1 grey levels
    assert np.array_equal(np.stack([read_binary_png(f) for f in files]), masks)
    for bad in (0, 256, True, 1.0):
        with pytest.raises(ValueError, match="foreground_value must be an int in 1..255"):
            write_binary_pngs(masks, ("a", "b"), tmp_path / f"bad{bad}", foreground_value=bad)
        assert not (tmp_path / f"bad{bad}").exists()


def test_indexed_pngs_hold_object_ids_with_the_davis_palette(tmp_path):
    labels = np.random.default_rng(1).integers(0, 4, (2, 10, 12)).astype(np.uint8)
    files = write_indexed_pngs(labels, ("a", "b"), tmp_path / "seq")
    with Image.open(files[0]) as im:
        assert im.mode == "P" and im.getpalette()[3:6] == [128, 0, 0]
        assert np.array_equal(np.asarray(im), labels[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_json_decodes_back_exactly(seed):
    for mask in [random_masks(seed)[0], np.zeros((7, 9), bool), np.ones((7, 9), bool)]:
        rle = encode_rle(mask)
        assert rle["size"] == list(mask.shape) and isinstance(rle["counts"], str)
        assert np.array_equal(decode_rle(json.loads(json.dumps(rle))), mask)
    with pytest.raises(ValueError, match="bool"):
        encode_rle(np.zeros((3, 3), np.uint8))
    with pytest.raises(SVACError, match="not a COCO RLE"):
        decode_rle({"counts": "abc"})


def test_submission_zip_layouts(tmp_path):
    masks = random_masks(3, (2, 6, 8))
    write_binary_pngs(masks, ("00000", "00005"), tmp_path / "p" / "vidA" / "1")
    write_binary_pngs(masks, ("00000", "00005"), tmp_path / "p" / "vidB" / "0")
    folders = [("vidB/0", tmp_path / "p" / "vidB" / "0"), ("vidA/1", tmp_path / "p" / "vidA" / "1")]
    assert write_submission_zip(tmp_path / "ytvos.zip", folders, prefix=YTVOS_ZIP_PREFIX) == 4
    with zipfile.ZipFile(tmp_path / "ytvos.zip") as z:
        assert z.namelist() == ["Annotations/vidA/1/00000.png", "Annotations/vidA/1/00005.png",
                                "Annotations/vidB/0/00000.png", "Annotations/vidB/0/00005.png"]
    write_submission_zip(tmp_path / "mevis.zip", folders, prefix=MEVIS_ZIP_PREFIX)
    with zipfile.ZipFile(tmp_path / "mevis.zip") as z:
        assert z.namelist()[0] == "vidA/1/00000.png"
    with pytest.raises(SVACError, match="no prediction PNGs"):
        write_submission_zip(tmp_path / "bad.zip", [("x/0", tmp_path / "nothing")], prefix="")
    assert not (tmp_path / "bad.zip").exists()


def test_refytvos_split_without_masks_writes_the_codalab_zip(tmp_path):
    root = write_rvos_fixture(tmp_path / "ytvos", with_masks=False)
    out = tmp_path / "run"
    result = run_benchmark("refytvos", data_root=root, model_spec="color", out_dir=out, model=ColorModel(),
                           progress=False)
    assert result.scores is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scores"] is None and "evaluation server" in metrics["notes"][0]
    with zipfile.ZipFile(result.files["submission"]) as z:
        names = z.namelist()
    assert len(names) == NUM_VIDEOS * len(EXPRESSIONS) * NUM_FRAMES
    assert "Annotations/vid1/0/00025.png" in names and all(n.startswith("Annotations/vid") for n in names)


def test_frame_list_video_reads_the_listed_frames_in_order(tmp_path):
    frames = np.random.default_rng(4).integers(0, 255, (3, 8, 10, 3), dtype=np.uint8)
    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"f{10 - i}.png")
        Image.fromarray(frame).save(paths[-1])
    video = FrameListVideo(paths[::-1], name="v")
    assert video.frame_names == ("f8", "f9", "f10") and (video.height, video.width) == (8, 10)
    assert np.array_equal(video.read([0, 2]), frames[[2, 0]])
    Image.fromarray(frames[0][:4]).save(paths[1])
    with pytest.raises(VideoReadError, match="f9.png is 10x4"):
        video.read([1])
    with pytest.raises(VideoReadError, match="empty"):
        FrameListVideo([])


def test_looped_video_repeats_from_the_start():
    frames = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    looped = LoopedVideo(ArrayVideo(list(frames)), 7)
    assert looped.num_frames == 7 and len(looped.frame_names) == 7
    assert np.array_equal(looped.read(range(7)), frames[[0, 1, 2, 0, 1, 2, 0]])
