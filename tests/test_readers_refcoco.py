"""RefCOCO / RefCOCO+ / RefCOCOg reader on a small COCO-style fixture; pickle refs are refused."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from svac.data.readers import RefCOCOReader, SkippedAnnotationsWarning, load_dataset
from svac.errors import AnnotationError

SIZES = {1: (20, 30), 2: (16, 24)}  # image id -> (height, width)
RECT = (3, 2, 11, 9)  # x0, y0, x1, y1 of the polygon annotation


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def refcoco(tmp_path: Path):
    rng = np.random.default_rng(0)
    root = tmp_path / "refcoco"
    images = []
    for image_id, (h, w) in SIZES.items():
        name = f"COCO_train2014_{image_id:012d}.jpg"
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / name)
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
    x0, y0, x1, y1 = RECT
    crowd = rng.random(SIZES[1]) < 0.4
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd.astype(np.uint8)))
    compressed = rng.random(SIZES[2]) < 0.5
    compressed_rle = mask_utils.encode(np.asfortranarray(compressed.astype(np.uint8)))
    uncompressed_counts = _uncompressed_counts(crowd)
    annotations = [
        {"id": 101, "image_id": 1, "category_id": 1, "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "iscrowd": 0},
        {"id": 102, "image_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": {"size": list(crowd_rle["size"]), "counts": uncompressed_counts}},
        {"id": 201, "image_id": 2, "category_id": 3, "iscrowd": 0,
         "segmentation": {"size": list(compressed_rle["size"]), "counts": compressed_rle["counts"].decode()}},
    ]
    write_json(root / "instances.json", {"images": images, "annotations": annotations, "categories": []})
    refs = [
        {"ref_id": 0, "ann_id": 101, "image_id": 1, "split": "train", "category_id": 1, "sent_ids": [0, 1],
         "sentences": [{"sent": "man on left", "raw": "Man on left.", "sent_id": 0}, {"sent": "left guy", "sent_id": 1}]},
        {"ref_id": 1, "ann_id": 102, "image_id": 1, "split": "train", "category_id": 1,
         "sentences": [{"sent": "crowd in back", "sent_id": 2}]},
        {"ref_id": 2, "ann_id": 201, "image_id": 2, "split": "testA", "category_id": 3,
         "sentences": [{"sent": "red car", "sent_id": 3}]},
    ]
    write_json(root / "refs(unc).json", refs)
    expected = {101: np.zeros(SIZES[1], dtype=bool), 102: crowd, 201: compressed}
    expected[101][y0:y1, x0:x1] = True
    return root, expected


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: column-major run lengths starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return counts


def test_one_sample_per_sentence_with_exact_masks(refcoco):
    root, expected = refcoco
    ds = load_dataset(f"refcoco:{root}", "train")
    assert isinstance(ds, RefCOCOReader)
    assert [(s.video_id, s.exp_id, s.expression) for s in ds] == [
        ("COCO_train2014_000000000001", "0", "man on left"),
        ("COCO_train2014_000000000001", "1", "left guy"),
        ("COCO_train2014_000000000001", "2", "crowd in back"),
    ]
    first = ds[0]
    assert first.dataset == "refcoco" and first.num_frames == 1
    assert first.frame_paths == (root / "images" / "COCO_train2014_000000000001.jpg",)
    assert first.object_ids == (101,)
    assert first.meta == {"ref_id": 0, "image_id": 1, "ann_id": 101, "category_id": 1, "raw": "Man on left."}
    np.testing.assert_array_equal(first.load_masks()[0], expected[101])  # polygon → annToMask
    np.testing.assert_array_equal(ds[2].load_masks([0])[0], expected[102])  # uncompressed (crowd) RLE
    test_a = load_dataset(f"refcoco+:{root}", "testA")
    assert test_a[0].dataset == "refcoco+"
    mask = test_a[0].load_masks()
    assert mask.shape == (1, *SIZES[2]) and mask.dtype == bool
    np.testing.assert_array_equal(mask[0], expected[201])  # compressed RLE


def test_unknown_split_lists_present_ones(refcoco):
    root, _ = refcoco
    with pytest.raises(AnnotationError, match=r"no refs of split 'val' \(splits present: \['testA', 'train'\]\)"):
        RefCOCOReader(root, "val")


def test_pickle_refs_are_refused_never_loaded(refcoco, monkeypatch):
    root, _ = refcoco

    def forbidden(*args, **kwargs):
        raise AssertionError("the reader must never unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    pickled = root / "refs(unc).p"
    pickled.write_bytes(b"not really a pickle")
    with pytest.raises(AnnotationError, match=r"refs\(unc\)\.p: svac does not load pickle files.*json\.dump"):
        load_dataset(f"refcocog:{pickled}", "train")
    with pytest.raises(AnnotationError, match=r"does not load pickle files"):
        RefCOCOReader(root, "train", refs_file="refs(unc).p")
    (root / "refs(unc).json").unlink()
    with pytest.raises(AnnotationError, match=r"refs\(unc\)\.p: svac does not load pickle files"):
        RefCOCOReader(root, "train")


def test_refs_json_path_as_root_and_refcocog_default(refcoco):
    root, _ = refcoco
    ds = RefCOCOReader(root / "refs(unc).json", "testA", name="refcocog")
    assert ds.refs_file == root / "refs(unc).json" and len(ds) == 1
    (root / "refs(umd).json").write_text(json.dumps([]))
    with pytest.raises(AnnotationError, match=r"no refs of split 'train'"):
        load_dataset(f"refcocog:{root}", "train")  # refcocog prefers refs(umd).json


def test_bad_refs_errors_and_skip_counts(refcoco):
    root, _ = refcoco
    refs = json.loads((root / "refs(unc).json").read_text())
    refs[1]["ann_id"] = 999
    refs.append({"ref_id": 3, "ann_id": 201, "image_id": 2, "split": "train", "sentences": [{"sent": " "}]})
    write_json(root / "refs(unc).json", refs)
    with pytest.raises(AnnotationError, match=r"instances\.json: ann_id 999 of ref 1 .* is missing"):
        RefCOCOReader(root, "train")
    with pytest.warns(SkippedAnnotationsWarning, match=r"skipped 2 of 4 expressions: 1 malformed entry, 1 missing anno_id"):
        ds = RefCOCOReader(root, "train", skip_invalid=True)
    assert [s.exp_id for s in ds] == ["0", "1"]


def test_missing_image_and_size_mismatch(refcoco):
    root, _ = refcoco
    image = root / "images" / "COCO_train2014_000000000002.jpg"
    Image.new("RGB", (5, 5)).save(image)
    with pytest.raises(AnnotationError, match=r"000000000002\.jpg: image is 5x5 but .*instances\.json says 16x24"):
        RefCOCOReader(root, "testA")
    image.unlink()
    with pytest.raises(AnnotationError, match=r"000000000002\.jpg: image of ref 2 not found"):
        RefCOCOReader(root, "testA")


def test_wrong_root(tmp_path):
    with pytest.raises(AnnotationError, match=r"does not exist; expected a RefCOCO root holding instances\.json"):
        RefCOCOReader(tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationError, match=r"no refs JSON file"):
        RefCOCOReader(tmp_path / "empty", "train")
