"""MeViS and ReVOS readers on small fixtures in the released layouts (RLE masks written with pycocotools)."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile
from pycocotools import mask as mask_utils

from svac.data.readers import MeViSReader, ReVOSReader, SkippedAnnotationsWarning, load_dataset
from svac.errors import AnnotationError

HEIGHT, WIDTH = 10, 14
NUM_FRAMES = 4


def write_frame(path: Path, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def encode(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def random_track(rng: np.random.Generator, absent: set[int]) -> tuple[list[np.ndarray], list[dict | None]]:
    """Per-frame random masks (all-False where absent) and their RLEs (None where absent)."""
    masks, rles = [], []
    for t in range(NUM_FRAMES):
        if t in absent:
            masks.append(np.zeros((HEIGHT, WIDTH), dtype=bool))
            rles.append(None)
        else:
            mask = rng.random((HEIGHT, WIDTH)) < 0.3
            masks.append(mask)
            rles.append(encode(mask))
    return masks, rles


def frame_names() -> list[str]:
    return [f"{t:05d}" for t in range(NUM_FRAMES)]


def build_mask_dict_videos(rng, frames_root: Path, videos: list[str]):
    """Frames for ``videos`` and three anno tracks per video; returns (tracks, mask_dict)."""
    tracks: dict[str, list[np.ndarray]] = {}
    mask_dict: dict[str, list] = {}
    anno = 0
    for video in videos:
        for name in frame_names():
            write_frame(frames_root / video / f"{name}.jpg", rng)
        for obj in range(3):
            masks, rles = random_track(rng, absent={obj} if obj < NUM_FRAMES else set())
            tracks[str(anno)], mask_dict[str(anno)] = masks, rles
            anno += 1
    return tracks, mask_dict


@pytest.fixture
def mevis(tmp_path: Path):
    rng = np.random.default_rng(0)
    root = tmp_path / "mevis"
    tracks, mask_dict = build_mask_dict_videos(rng, root / "train" / "JPEGImages", ["v0", "v1"])
    expressions = {
        "v0": {
            "0": {"exp": "the two fish swimming left", "obj_id": [0, 2], "anno_id": [0, 2]},
            "1": {"exp": "fish that stops", "obj_id": [1], "anno_id": ["1"]},
        },
        "v1": {"0": {"exp": "the cow turning around", "obj_id": [0], "anno_id": [3]}},
    }
    write_json(
        root / "train" / "meta_expressions.json",
        {"videos": {v: {"expressions": e, "vid_id": i, "frames": frame_names()} for i, (v, e) in enumerate(expressions.items())}},
    )
    write_json(root / "train" / "mask_dict.json", mask_dict)
    for name in frame_names():
        write_frame(root / "valid" / "JPEGImages" / "v9" / f"{name}.jpg", rng)
    write_json(
        root / "valid" / "meta_expressions.json",
        {"videos": {"v9": {"expressions": {"0": {"exp": "moving car"}}, "vid_id": 0, "frames": frame_names()}}},
    )
    return root, tracks


def test_mevis_listing_and_mask_union(mevis):
    root, tracks = mevis
    ds = MeViSReader(root, "train")
    assert [(s.video_id, s.exp_id) for s in ds] == [("v0", "0"), ("v0", "1"), ("v1", "0")]
    sample = ds[0]
    assert sample.dataset == "mevis" and sample.object_ids == (0, 2)
    assert sample.meta == {"anno_ids": ("0", "2")}
    assert sample.frame_paths == tuple(root / "train" / "JPEGImages" / "v0" / f"{n}.jpg" for n in frame_names())
    masks = sample.load_masks()
    expected = np.stack([tracks["0"][t] | tracks["2"][t] for t in range(NUM_FRAMES)])
    assert masks.dtype == bool and masks.shape == (NUM_FRAMES, HEIGHT, WIDTH)
    np.testing.assert_array_equal(masks, expected)
    # anno "1" is absent (null RLE) on frame 1: empty mask of the frame's size
    one = ds[1].load_masks([1, 3])
    assert not one[0].any()
    np.testing.assert_array_equal(one[1], tracks["1"][3])
    np.testing.assert_array_equal(ds[2].load_masks([2])[0], tracks["3"][2])


def test_mevis_split_without_mask_dict(mevis):
    root, _ = mevis
    ds = load_dataset(f"mevis:{root}", "valid")
    assert len(ds) == 1 and ds[0].mask_loader is None and ds[0].object_ids == ()
    assert not ds.has_masks


def test_mevis_is_lazy(mevis, monkeypatch):
    root, _ = mevis
    decoded: list[int] = []
    loads: list[str] = []
    original_decode = mask_utils.decode
    original_load = ImageFile.ImageFile.load

    def counting_decode(rle):
        decoded.append(1)
        return original_decode(rle)

    def counting_load(self):
        loads.append(self.filename)
        return original_load(self)

    monkeypatch.setattr(mask_utils, "decode", counting_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    ds = MeViSReader(root, "train")
    assert decoded == [] and loads == []
    ds[0].load_masks([3])
    assert len(decoded) == 2 and loads == []  # two anno_ids on one frame; frames are never decoded


def test_mevis_missing_anno_id_and_no_object(mevis):
    root, _ = mevis
    mask_dict_path = root / "train" / "mask_dict.json"
    mask_dict = json.loads(mask_dict_path.read_text())
    del mask_dict["2"]
    write_json(mask_dict_path, mask_dict)
    with pytest.raises(AnnotationError, match=r"mask_dict\.json: anno_id '2' \(video 'v0'.*\) is missing"):
        MeViSReader(root, "train")
    meta_path = root / "train" / "meta_expressions.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"]["v1"]["expressions"]["0"]["anno_id"] = []
    write_json(meta_path, meta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = MeViSReader(root, "train", skip_invalid=True)
    assert [(s.video_id, s.exp_id) for s in ds] == [("v0", "1")]
    assert ds.skip_report.counts == {"missing anno_id": 1, "no object": 1}
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedAnnotationsWarning)]
    assert messages == ["mevis (train): skipped 2 of 3 expressions: 1 missing anno_id, 1 no object"]


def test_mevis_rle_size_mismatch_and_wrong_length(mevis):
    root, _ = mevis
    mask_dict_path = root / "train" / "mask_dict.json"
    mask_dict = json.loads(mask_dict_path.read_text())
    mask_dict["3"][2] = encode(np.ones((HEIGHT, WIDTH + 2), dtype=bool))
    write_json(mask_dict_path, mask_dict)
    with pytest.raises(AnnotationError, match=r"mask_dict\.json: anno_id '3' \(video 'v1'\) frame 2: mask is 10x16 but frame"):
        MeViSReader(root, "train")
    ds = MeViSReader(root, "train", check_sizes=False)  # the loader still checks when decoding
    with pytest.raises(AnnotationError, match=r"anno_id '3' frame 2: mask is 10x16 but frame .*00002\.jpg is 10x14"):
        ds[2].load_masks([2])
    mask_dict["3"] = mask_dict["3"][:2]
    write_json(mask_dict_path, mask_dict)
    with pytest.raises(AnnotationError, match=r"anno_id '3' \(video 'v1'\): expected a list of 4 per-frame RLEs .* got 2"):
        MeViSReader(root, "train", check_sizes=False)


def test_mevis_missing_frame_and_wrong_root(mevis, tmp_path):
    root, _ = mevis
    (root / "train" / "JPEGImages" / "v1" / "00003.jpg").unlink()
    with pytest.raises(AnnotationError, match=r"video 'v1'.*JPEGImages/v1/00003\.jpg not found"):
        MeViSReader(root, "train")
    with pytest.warns(SkippedAnnotationsWarning, match="skipped 1 of 3 expressions: 1 missing frame"):
        ds = MeViSReader(root, "train", skip_invalid=True)
    assert ds.skip_report.summary() == "skipped 1 of 3 expressions: 1 missing frame"
    with pytest.raises(AnnotationError, match=r"splits present: \['train', 'valid'\]"):
        MeViSReader(root, "valid_u")
    with pytest.raises(AnnotationError, match=r"does not exist; expected a MeViS root"):
        MeViSReader(tmp_path / "missing", "train")


def test_mevis_malformed_json(mevis):
    root, _ = mevis
    (root / "train" / "mask_dict.json").write_text("{\"0\": [")
    with pytest.raises(AnnotationError, match=r"mask_dict\.json: malformed JSON in mask_dict file"):
        MeViSReader(root, "train", skip_invalid=True)


@pytest.fixture
def revos(tmp_path: Path):
    rng = np.random.default_rng(1)
    root = tmp_path / "ReVOS"
    videos = ["UVO/all/clip1", "MOSE/clip2"]
    tracks, mask_dict = build_mask_dict_videos(rng, root / "JPEGImages", videos)
    write_json(root / "mask_dict.json", mask_dict)
    foreground = {}
    for i, video in enumerate(videos):
        union = [np.logical_or.reduce([tracks[str(3 * i + k)][t] for k in range(3)]) for t in range(NUM_FRAMES)]
        foreground[video] = {"masks_rle": [encode(m) for m in union]}
    write_json(root / "mask_dict_foreground.json", foreground)
    valid = {
        "UVO/all/clip1": {
            "expressions": {
                "0": {"exp": "the person holding a cup", "obj_id": [0], "anno_id": [0], "type_id": 0},
                "1": {"exp": "who is likely to be thirsty?", "obj_id": [0, 1], "anno_id": [0, 1], "type_id": 1},
            },
            "vid_id": 0,
            "frames": frame_names(),
        }
    }
    train = {"MOSE/clip2": {"expressions": {"0": {"exp": "a fish", "obj_id": [2], "anno_id": [5]}}, "frames": frame_names()}}
    write_json(root / "meta_expressions_valid_.json", {"videos": valid})
    write_json(root / "meta_expressions_train_.json", {"videos": train})
    return root, tracks


def test_revos_types_nested_ids_and_masks(revos):
    root, tracks = revos
    ds = load_dataset(f"revos:{root}", "valid")
    assert isinstance(ds, ReVOSReader)
    assert [s.meta["type"] for s in ds] == ["referring", "reasoning"]
    assert ds[1].meta["type_id"] == 1 and ds[1].object_ids == (0, 1)
    assert ds[0].frame_paths[0] == root / "JPEGImages" / "UVO" / "all" / "clip1" / "00000.jpg"
    np.testing.assert_array_equal(
        ds[1].load_masks(), np.stack([tracks["0"][t] | tracks["1"][t] for t in range(NUM_FRAMES)])
    )
    train = ReVOSReader(root, "train")
    assert len(train) == 1 and "type" not in train[0].meta
    np.testing.assert_array_equal(train[0].load_masks([3])[0], tracks["5"][3])


def test_revos_no_target_expressions_are_read_with_an_empty_ground_truth(revos):
    """type_id 2 with empty obj_id / anno_id: kept (not rejected, not dropped), masks all False.

    The official script (VISA tools/eval_revos.py) sums the masks of no anno_id for them, i.e. scores
    them against an all-zero ground truth.
    """
    root, _ = revos
    meta_path = root / "meta_expressions_valid_.json"
    meta = json.loads(meta_path.read_text())
    expressions = meta["videos"]["UVO/all/clip1"]["expressions"]
    expressions["2"] = {"exp": "the unicorn in the kitchen", "obj_id": [], "anno_id": [], "type_id": 2}
    write_json(meta_path, meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedAnnotationsWarning)
        ds = ReVOSReader(root, "valid")
    assert [(s.exp_id, s.meta["type"]) for s in ds] == [("0", "referring"), ("1", "reasoning"), ("2", "no_target")]
    assert ds.skip_report.summary() == "skipped 0 of 3 expressions"
    no_target = ds[2]
    assert no_target.object_ids == () and "anno_ids" not in no_target.meta
    masks = no_target.load_masks()
    assert masks.dtype == bool and masks.shape == (NUM_FRAMES, HEIGHT, WIDTH) and not masks.any()
    # obj_id and anno_id must agree; a missing key is not read as "no target"
    expressions["2"] = {"exp": "x", "obj_id": [0], "anno_id": [], "type_id": 2}
    write_json(meta_path, meta)
    with pytest.raises(AnnotationError, match=r"expression '2': 'obj_id' \[0\] and 'anno_id' \[\] disagree"):
        ReVOSReader(root, "valid")
    expressions["2"] = {"exp": "x", "type_id": 2}
    write_json(meta_path, meta)
    with pytest.raises(AnnotationError, match=r"expression '2': 'obj_id' / 'anno_id' missing"):
        ReVOSReader(root, "valid")


def test_revos_foreground_loader(revos):
    root, tracks = revos
    ds = ReVOSReader(root, "valid")
    foreground = ds.foreground_loader(ds[0])([0, 2])
    expected = [np.logical_or.reduce([tracks[str(k)][t] for k in range(3)]) for t in (0, 2)]
    np.testing.assert_array_equal(foreground, np.stack(expected))


def test_revos_wrong_split_lists_files(revos):
    root, _ = revos
    with pytest.raises(AnnotationError, match=r"meta_expressions_test_\.json not found .*meta_expressions_train_\.json"):
        ReVOSReader(root, "test")


def test_samples_survive_pickling_for_dataloader_workers(mevis):
    root, tracks = mevis
    sample = MeViSReader(root, "train")[0]
    copy = pickle.loads(pickle.dumps(sample))
    assert copy.frame_paths == sample.frame_paths and copy.object_ids == sample.object_ids
    np.testing.assert_array_equal(copy.load_masks([1]), sample.load_masks([1]))
    np.testing.assert_array_equal(copy.load_masks([1])[0], tracks["0"][1] | tracks["2"][1])
