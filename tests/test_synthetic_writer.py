"""On-disk synthetic benchmark: Ref-YouTube-VOS layout, byte determinism, atomic writes, real backgrounds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.data.synthetic.backgrounds import RealBackgrounds
from svac.data.synthetic.generator import VideoSpec, generate_video
from svac.data.synthetic.writer import (
    JPEG_QUALITY,
    SYNTH_CONFIG_NAME,
    davis_palette,
    video_rng,
    write_benchmark,
)
from svac.errors import ConfigError, OutputExistsError

SMALL = dict(num_frames=(12, 14), size=(96, 72), progress=False)


@pytest.fixture
def davis_frames(davis16: Path) -> Path:
    """DAVIS-2016 frame folders (``JPEGImages/480p/<seq>``) from the shared test data (conftest ``davis16``)."""
    return davis16 / "JPEGImages" / "480p"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_json_schema(tmp_path):
    out = tmp_path / "bench"
    info = write_benchmark(out, videos=3, seed=4, split="valid", **SMALL)
    assert info.num_videos == 3 and info.split == "valid" and info.out_dir == out
    meta = json.loads((out / "valid" / "meta.json").read_text())
    expressions = json.loads((out / "meta_expressions" / "valid" / "meta_expressions.json").read_text())
    config = json.loads((out / SYNTH_CONFIG_NAME).read_text())
    assert sorted(meta["videos"]) == sorted(expressions["videos"]) == sorted(info.video_ids)
    assert config["videos"] == 3 and config["seed"] == 4 and config["split"] == "valid"
    assert config["subset"] == "standard" and config["domain"] == "base" and config["size"] == [96, 72]
    assert config["jpeg_quality"] == JPEG_QUALITY and config["backgrounds"] is None
    palette = davis_palette()
    total_expressions = 0
    for vid, entry in expressions["videos"].items():
        names = entry["frames"]
        assert 12 <= len(names) <= 14
        assert names == [f"{t:05d}" for t in range(len(names))]
        jpgs = sorted(p.stem for p in (out / "valid" / "JPEGImages" / vid).iterdir())
        pngs = sorted(p.stem for p in (out / "valid" / "Annotations" / vid).iterdir())
        assert jpgs == pngs == names
        objects = meta["videos"][vid]["objects"]
        assert 2 <= len(objects) <= 4
        seen = {key: [] for key in objects}
        for name in names:
            frame = Image.open(out / "valid" / "JPEGImages" / vid / f"{name}.jpg")
            assert frame.format == "JPEG" and frame.mode == "RGB" and frame.size == (96, 72)
            mask = Image.open(out / "valid" / "Annotations" / vid / f"{name}.png")
            assert mask.mode == "P" and mask.size == (96, 72)
            assert bytes(mask.getpalette()) == palette
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values <= {0} | {int(key) for key in objects}
            for key in objects:
                if int(key) in values:
                    seen[key].append(name)
        for key, record in objects.items():
            assert record["category"] in {"circle", "square", "triangle", "star"}
            assert record["frames"] == seen[key]
        for number, expression in entry["expressions"].items():
            total_expressions += 1
            assert number.isdigit()
            assert expression["obj_id"] in objects
            assert expression["exp"].startswith("the ")
            assert expression["families"] == [a["family"] for a in expression["attributes"]]
            assert expression["subset"] == "standard" and expression["domain"] == "base"
            assert expression["late_onset"] is None
    assert total_expressions == info.num_expressions == config["num_expressions"]


def test_written_videos_match_the_in_memory_generator(tmp_path):
    out = tmp_path / "bench"
    info = write_benchmark(out, videos=2, seed=9, subset="late", **SMALL)
    spec = VideoSpec(num_frames=SMALL["num_frames"], size=SMALL["size"], subset="late")
    expressions = json.loads((out / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    for index, vid in enumerate(info.video_ids):
        video = generate_video(video_rng(9, index, split="train", subset="late"), spec)
        for t in range(video.num_frames):
            mask = np.asarray(Image.open(out / "train" / "Annotations" / vid / f"{t:05d}.png"))
            np.testing.assert_array_equal(mask, video.masks[t])
            frame = np.asarray(Image.open(out / "train" / "JPEGImages" / vid / f"{t:05d}.jpg"), dtype=int)
            assert np.abs(frame - video.frames[t]).mean() < 4.0  # JPEG at quality 95
        written = expressions["videos"][vid]["expressions"]
        assert [e["exp"] for e in written.values()] == [e.text for e in video.expressions]
        assert all(e["subset"] == "late" and e["late_onset"] >= 6 for e in written.values())


def test_project_reader_reads_the_benchmark(tmp_path):
    """The Ref-YouTube-VOS reader of the project yields one sample per expression with the right masks."""
    from svac.data.readers import READERS

    out = tmp_path / "bench"
    info = write_benchmark(out, videos=2, seed=3, split="valid", **SMALL)
    dataset = READERS["rvos"](out, "valid")
    assert len(dataset) == info.num_expressions
    spec = VideoSpec(num_frames=SMALL["num_frames"], size=SMALL["size"])
    videos = {vid: generate_video(video_rng(3, i, split="valid"), spec) for i, vid in enumerate(info.video_ids)}
    for sample in dataset:
        video = videos[sample.video_id]
        expression = video.expressions[int(sample.exp_id)]
        assert sample.expression == expression.text and sample.object_ids == (expression.obj_id,)
        assert sample.meta["families"] == list(expression.families)
        np.testing.assert_array_equal(sample.load_masks(), video.object_mask(expression.obj_id))


def test_same_arguments_give_identical_bytes_and_seeds_differ(tmp_path):
    first = write_benchmark(tmp_path / "a", videos=3, seed=1, **SMALL)
    write_benchmark(tmp_path / "b", videos=3, seed=1, **SMALL)
    write_benchmark(tmp_path / "c", videos=3, seed=2, **SMALL)
    files_a, files_b, files_c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(files_a) > 70
    assert files_a == files_b
    frames_a = {k: v for k, v in files_a.items() if k.endswith(".jpg")}
    frames_c = {k.replace("s2_", "s1_"): v for k, v in files_c.items() if k.endswith(".jpg")}
    shared = set(frames_a) & set(frames_c)
    assert shared and all(frames_a[k] != frames_c[k] for k in shared)
    assert first.video_ids == ("s1_00000", "s1_00001", "s1_00002")


def test_splits_and_subsets_do_not_repeat_videos():
    spec = VideoSpec(num_frames=(12, 14), size=(96, 72))
    train = generate_video(video_rng(0, 0, split="train"), spec)
    valid = generate_video(video_rng(0, 0, split="valid"), spec)
    assert train.frames.shape != valid.frames.shape or not np.array_equal(train.frames, valid.frames)


def test_refuses_to_overwrite_and_leaves_no_temporary_folders(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    keep = out / "mine.txt"
    keep.write_text("user data")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_benchmark(out, videos=1, seed=0, **SMALL)
    assert keep.read_text() == "user data"
    write_benchmark(out, videos=1, seed=0, overwrite=True, **SMALL)
    assert not keep.exists() and (out / SYNTH_CONFIG_NAME).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    write_benchmark(empty, videos=1, seed=0, **SMALL)
    assert (empty / "train" / "meta.json").is_file()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputExistsError, match="not a folder"):
        write_benchmark(a_file, videos=1, seed=0, overwrite=True, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench", "empty", "file"]


def test_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def broken(rng, spec):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("generator crashed")
        return generate_video(rng, spec)

    monkeypatch.setattr("svac.data.synthetic.writer.generate_video", broken)
    with pytest.raises(RuntimeError, match="crashed"):
        write_benchmark(tmp_path / "bench", videos=3, seed=0, **SMALL)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(videos=0, seed=0), "videos"),
        (dict(videos=True, seed=0), "videos"),
        (dict(videos=1, seed=-1), "seed"),
        (dict(videos=1, seed=0, split="a/b"), "split"),
        (dict(videos=1, seed=0, subset="slow"), "subset"),
        (dict(videos=1, seed=0, domain="real_backgrounds"), "backgrounds"),
        (dict(videos=1, seed=0, num_frames=(4, 8)), "num_frames"),
        (dict(videos=1, seed=0, size=(20, 20)), "size"),
        (dict(videos=1, seed=0, overwrite="yes"), "overwrite"),
    ],
)
def test_bad_arguments_are_refused_before_writing(tmp_path, arguments, message):
    with pytest.raises(ConfigError, match=message):
        write_benchmark(tmp_path / "bench", progress=False, **arguments)
    assert list(tmp_path.iterdir()) == []


def test_backgrounds_only_with_the_real_domain(tmp_path, davis_frames):
    with pytest.raises(ConfigError, match="only by domain"):
        write_benchmark(tmp_path / "bench", videos=1, seed=0, backgrounds=davis_frames, **SMALL)
    with pytest.raises(ConfigError, match="no frame images"):
        RealBackgrounds(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        RealBackgrounds(tmp_path / "missing")


def test_real_backgrounds_domain(tmp_path, davis_frames):
    sequences = RealBackgrounds(davis_frames)
    assert [p.name for p in sequences.sequences] == ["blackswan", "car-shadow"]
    spec = VideoSpec(num_frames=(12, 12), size=(96, 72), domain="real_backgrounds", backgrounds=sequences)
    video = generate_video(np.random.default_rng(0), spec)
    assert video.background.split(":")[1] in {"blackswan", "car-shadow"}
    background = video.masks == 0
    first, last = video.frames[0][background[0] & background[-1]], video.frames[-1][background[0] & background[-1]]
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 1.0  # the real background moves
    assert np.unique(video.frames[0][background[0]].reshape(-1, 3), axis=0).shape[0] > 500
    out = tmp_path / "bench"
    blackswan = davis_frames / "blackswan"
    info = write_benchmark(out, videos=2, seed=0, domain="real_backgrounds", backgrounds=blackswan, **SMALL)
    config = json.loads((out / SYNTH_CONFIG_NAME).read_text())
    assert config["domain"] == "real_backgrounds" and config["backgrounds"] == str(blackswan)
    assert info.domain == "real_backgrounds"
    written = json.loads((out / "meta_expressions" / "train" / "meta_expressions.json").read_text())
    assert all(e["domain"] == "real_backgrounds" for v in written["videos"].values() for e in v["expressions"].values())


def test_davis_palette_matches_the_benchmark_colors():
    palette = davis_palette()
    assert len(palette) == 768
    colors = [tuple(palette[3 * i : 3 * i + 3]) for i in range(256)]
    assert colors[:6] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128)]
    assert colors[255] == (224, 224, 192)
    assert len(set(colors)) == 256
