"""Ref-YouTube-VOS, ``rvos`` and Ref-DAVIS17 readers on small fixtures in the released layouts, plus real DAVIS data."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from svac.data.readers import (
    RefDAVISReader,
    RefYouTubeVOSReader,
    SkippedAnnotationsWarning,
    load_dataset,
)
from svac.errors import AnnotationError

HEIGHT, WIDTH = 12, 16
NUM_OBJECTS = 3
FRAMES = ["00000", "00005", "00010"]
TRAIN_VIDEOS = ["vid_a", "vid_b"]
REPO = Path(__file__).resolve().parents[1]
DAVIS16 = REPO.parent / "shared" / "data" / "davis16"


def write_frame(path: Path, rng: np.random.Generator, size: tuple[int, int] = (HEIGHT, WIDTH)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def write_palette_png(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 236, 95, 103, 249, 145, 87, 250, 200, 99] + [0] * (256 - 4) * 3)
    image.save(path)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def ytvos(tmp_path: Path) -> tuple[Path, dict[tuple[str, str], np.ndarray]]:
    """A Ref-YouTube-VOS root: train (with masks), valid (no masks, lists a test video), test."""
    rng = np.random.default_rng(0)
    root = tmp_path / "ref-youtube-vos"
    ids_of: dict[tuple[str, str], np.ndarray] = {}
    for video in TRAIN_VIDEOS:
        for frame in FRAMES:
            write_frame(root / "train" / "JPEGImages" / video / f"{frame}.jpg", rng)
            ids = rng.integers(0, NUM_OBJECTS + 1, (HEIGHT, WIDTH))
            ids_of[video, frame] = ids
            write_palette_png(root / "train" / "Annotations" / video / f"{frame}.png", ids)
    write_json(
        root / "meta_expressions" / "train" / "meta_expressions.json",
        {
            "videos": {
                "vid_a": {
                    "expressions": {
                        "0": {"exp": "a cat on the left", "obj_id": "1"},
                        "1": {"exp": "the two dogs", "obj_id": ["2", "3"], "source": "synthetic"},
                    },
                    "frames": FRAMES,
                },
                "vid_b": {"expressions": {"0": {"exp": "the bird", "obj_id": 2}}, "frames": FRAMES},
            }
        },
    )
    for video in ("vid_v", "vid_t"):
        split = "valid" if video == "vid_v" else "test"
        for frame in FRAMES[:2]:
            write_frame(root / split / "JPEGImages" / video / f"{frame}.jpg", rng)
    valid_videos = {v: {"expressions": {"0": {"exp": f"thing in {v}"}}, "frames": FRAMES[:2]} for v in ("vid_v", "vid_t")}
    write_json(root / "meta_expressions" / "valid" / "meta_expressions.json", {"videos": valid_videos})
    write_json(root / "meta_expressions" / "test" / "meta_expressions.json", {"videos": {"vid_t": valid_videos["vid_t"]}})
    return root, ids_of


def test_lists_train_samples_in_file_order(ytvos):
    root, _ = ytvos
    ds = RefYouTubeVOSReader(root, "train")
    assert len(ds) == 3
    assert [(s.video_id, s.exp_id) for s in ds] == [("vid_a", "0"), ("vid_a", "1"), ("vid_b", "0")]
    first = ds[0]
    assert first.dataset == "refytvos"
    assert first.expression == "a cat on the left"
    assert first.frame_paths == tuple(root / "train" / "JPEGImages" / "vid_a" / f"{f}.jpg" for f in FRAMES)
    assert first.object_ids == (1,)
    assert ds[1].object_ids == (2, 3)
    assert ds[1].meta == {"source": "synthetic"}
    assert ds[-1].video_id == "vid_b" and ds[-1].object_ids == (2,)
    assert [s.exp_id for s in ds[0:2]] == ["0", "1"]
    assert ds.skip_report.total == 3 and ds.skip_report.num_skipped == 0


def test_masks_are_the_union_of_referred_ids(ytvos):
    root, ids_of = ytvos
    ds = RefYouTubeVOSReader(root, "train")
    two_dogs = ds[1]
    masks = two_dogs.load_masks([2, 0])
    assert masks.dtype == bool and masks.shape == (2, HEIGHT, WIDTH)
    for row, frame in zip(masks, [FRAMES[2], FRAMES[0]]):
        np.testing.assert_array_equal(row, np.isin(ids_of["vid_a", frame], [2, 3]))
    cat = ds[0].load_masks()
    np.testing.assert_array_equal(cat, np.stack([ids_of["vid_a", f] == 1 for f in FRAMES]))


def test_valid_split_has_no_masks_and_drops_test_videos(ytvos):
    root, _ = ytvos
    ds = RefYouTubeVOSReader(root, "valid")
    assert [s.video_id for s in ds] == ["vid_v"]
    assert ds.excluded_videos == ("vid_t",)
    assert ds[0].mask_loader is None and ds[0].object_ids == ()
    with pytest.raises(ValueError, match="no ground-truth"):
        ds[0].load_masks()
    kept = RefYouTubeVOSReader(root, "test")
    assert [s.video_id for s in kept] == ["vid_t"]


def test_rvos_requires_masks_and_accepts_any_split_with_them(ytvos):
    root, _ = ytvos
    ds = load_dataset(f"rvos:{root}", "train")
    assert isinstance(ds, RefYouTubeVOSReader) and {s.dataset for s in ds} == {"rvos"}
    with pytest.raises(AnnotationError, match=r"valid/Annotations does not exist"):
        load_dataset(f"rvos:{root}", "valid")


def test_listing_is_lazy_and_loaders_decode_only_requested_frames(ytvos, monkeypatch):
    root, _ = ytvos
    loads: list[str] = []
    original = ImageFile.ImageFile.load

    def counting_load(self):
        loads.append(self.filename)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    ds = RefYouTubeVOSReader(root, "train")  # check_sizes=True reads headers only
    assert loads == []
    ds[1].load_masks([1])
    assert loads == [str(root / "train" / "Annotations" / "vid_a" / "00005.png")]


def test_missing_frame_names_the_file_and_video(ytvos):
    root, _ = ytvos
    (root / "train" / "JPEGImages" / "vid_b" / "00005.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"video 'vid_b'.*JPEGImages/vid_b/00005\.jpg not found"):
        RefYouTubeVOSReader(root, "train")


def test_missing_mask_names_the_file(ytvos):
    root, _ = ytvos
    (root / "train" / "Annotations" / "vid_a" / "00010.png").unlink()
    with pytest.raises(AnnotationError, match=r"Annotations/vid_a/00010\.png not found"):
        RefYouTubeVOSReader(root, "train")


def test_mask_size_different_from_frame(ytvos):
    root, _ = ytvos
    bad = root / "train" / "Annotations" / "vid_b" / "00000.png"
    write_palette_png(bad, np.ones((HEIGHT + 1, WIDTH), dtype=np.uint8))
    with pytest.raises(AnnotationError, match=r"vid_b/00000\.png: mask is 13x16 but frame .* is 12x16"):
        RefYouTubeVOSReader(root, "train")
    # Without header checks the reader opens, and the loader catches it when decoding that frame.
    ds = RefYouTubeVOSReader(root, "train", check_sizes=False)
    ds[2].load_masks([1])
    with pytest.raises(AnnotationError, match=r"vid_b/00000\.png: mask is 13x16"):
        ds[2].load_masks([0])


def test_expression_without_object_and_malformed_json(ytvos):
    root, _ = ytvos
    meta = root / "meta_expressions" / "train" / "meta_expressions.json"
    data = json.loads(meta.read_text())
    data["videos"]["vid_b"]["expressions"]["0"].pop("obj_id")
    write_json(meta, data)
    with pytest.raises(AnnotationError, match=r"meta_expressions\.json: video 'vid_b' expression '0': no object"):
        RefYouTubeVOSReader(root, "train")
    meta.write_text('{"videos": {"vid_a": ')
    with pytest.raises(AnnotationError, match=r"meta_expressions\.json: malformed JSON .*line 1"):
        RefYouTubeVOSReader(root, "train", skip_invalid=True)


def test_skip_invalid_counts_reasons_and_warns_once(ytvos):
    root, _ = ytvos
    (root / "train" / "JPEGImages" / "vid_a" / "00000.jpg").unlink()  # 2 expressions
    meta = root / "meta_expressions" / "train" / "meta_expressions.json"
    data = json.loads(meta.read_text())
    data["videos"]["vid_b"]["expressions"]["1"] = {"exp": "nothing"}  # no object
    write_json(meta, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = RefYouTubeVOSReader(root, "train", skip_invalid=True)
    relevant = [w for w in caught if issubclass(w.category, SkippedAnnotationsWarning)]
    assert len(relevant) == 1
    assert "skipped 3 of 4 expressions: 2 missing frame, 1 no object" in str(relevant[0].message)
    assert [(s.video_id, s.exp_id) for s in ds] == [("vid_b", "0")]
    report = ds.skip_report
    assert report.counts == {"missing frame": 2, "no object": 1}
    assert {(s.video_id, s.exp_id) for s in report.skipped} == {("vid_a", "0"), ("vid_a", "1"), ("vid_b", "1")}


def test_wrong_root_and_unknown_split(tmp_path, ytvos):
    root, _ = ytvos
    with pytest.raises(AnnotationError, match=r"does not exist; expected a Ref-YouTube-VOS root"):
        RefYouTubeVOSReader(tmp_path / "nowhere", "train")
    with pytest.raises(AnnotationError, match=r"splits present: \['test', 'train', 'valid'\]"):
        RefYouTubeVOSReader(root, "val")
    with pytest.raises(AnnotationError, match=r"meta_expressions/train/meta_expressions\.json not found"):
        RefYouTubeVOSReader(root / "train", "train")


def test_davis_converted_layout_with_annotator_order(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "ref-davis"
    frames = ["00000", "00001"]
    ids_of = {}
    for frame in frames:
        write_frame(root / "valid" / "JPEGImages" / "dogs" / f"{frame}.jpg", rng)
        ids_of[frame] = rng.integers(0, 3, (HEIGHT, WIDTH))
        write_palette_png(root / "valid" / "Annotations" / "dogs" / f"{frame}.png", ids_of[frame])
    expressions = {str(i): {"exp": f"dog {i // 4 + 1} text {i}", "obj_id": str(i // 4 + 1)} for i in range(8)}
    write_json(
        root / "meta_expressions" / "valid" / "meta_expressions.json",
        {"videos": {"dogs": {"expressions": expressions, "frames": frames}}},
    )
    ds = RefDAVISReader(root, "valid", annotator_order=True)
    assert len(ds) == 8
    assert [(s.meta["annotator"], s.meta["annotation_type"]) for s in ds[:4]] == [
        (1, "first_frame"),
        (1, "full_video"),
        (2, "first_frame"),
        (2, "full_video"),
    ]
    assert ds[5].object_ids == (2,) and ds[5].meta == {"annotator": 1, "annotation_type": "full_video"}
    np.testing.assert_array_equal(ds[5].load_masks([1])[0], ids_of["00001"] == 2)
    assert RefDAVISReader(root, "valid")[0].meta == {}
    del expressions["7"]
    write_json(
        root / "meta_expressions" / "valid" / "meta_expressions.json",
        {"videos": {"dogs": {"expressions": expressions, "frames": frames}}},
    )
    with pytest.raises(AnnotationError, match=r"annotator_order needs .* multiple of 4"):
        RefDAVISReader(root, "valid", annotator_order=True)


def test_davis_wrong_root_says_what_is_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match=r"no expressions file .*expected a Ref-DAVIS17 root"):
        RefDAVISReader(tmp_path / "empty", "valid")


@pytest.fixture
def davis16() -> Path:
    if not (DAVIS16 / "meta_expressions.json").is_file():
        pytest.fail(f"real DAVIS-2016 test data not found at {DAVIS16} (see the project README: ../shared/data/davis16)")
    return DAVIS16


def test_real_davis16_through_the_davis_reader(davis16):
    ds = load_dataset(f"davis17:{davis16}", "valid")
    assert isinstance(ds, RefDAVISReader)
    by_video = {s.video_id: s for s in ds}
    assert {v: s.num_frames for v, s in by_video.items()} == {"blackswan": 50, "car-shadow": 40}
    assert len(ds) == 4 and all(s.object_ids == (1,) for s in ds)
    for video, sample in by_video.items():
        assert sample.frame_paths[0] == davis16 / "JPEGImages" / "480p" / video / "00000.jpg"
        masks = sample.load_masks()
        assert masks.shape == (sample.num_frames, 480, 854)
        pngs = sorted((davis16 / "Annotations" / "480p" / video).glob("*.png"))
        assert len(pngs) == sample.num_frames
        expected = np.stack([np.asarray(Image.open(p)) > 0 for p in pngs])
        np.testing.assert_array_equal(masks, expected)
        assert masks.any(axis=(1, 2)).all()
