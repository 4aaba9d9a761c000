"""The custom format (docs/custom_data.md): every mask kind, splits, validation, and the check command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from svac.data.readers import CustomReader, SkippedAnnotationsWarning, load_dataset
from svac.data.readers.check import check_dataset, main
from svac.errors import AnnotationError

HEIGHT, WIDTH = 9, 13
NUM_FRAMES = 3
OBJECTS = (1, 2)


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def build(root: Path, masks: str, *, frames_listed: bool = True, splits: dict | None = None) -> dict:
    """Two videos (frames f1,f2,f10 sort as numbers), objects 1 and 2; returns per-object bool masks."""
    rng = np.random.default_rng(7)
    names = ["f1.jpg", "f2.png", "f10.jpg"]
    truth: dict[tuple[str, int], np.ndarray] = {}
    rle: dict[str, dict] = {}
    for video in ("cam_a", "cam_b"):
        ids = rng.integers(0, 3, (NUM_FRAMES, HEIGHT, WIDTH)).astype(np.uint8)
        for t, name in enumerate(names):
            frame = root / "JPEGImages" / video / name
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(frame)
            stem = Path(name).stem
            if masks == "ids":
                path = root / "Annotations" / video / f"{stem}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(ids[t]).save(path)  # greyscale, value = object id
            for obj in OBJECTS:
                if masks == "binary":
                    path = root / "Annotations" / video / str(obj) / f"{stem}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray((ids[t] == obj).astype(np.uint8) * 255).save(path)
        for obj in OBJECTS:
            truth[video, obj] = ids == obj
            if masks == "rle":
                per_frame = []
                for t in range(NUM_FRAMES):
                    if t == 1 and obj == 2:
                        truth[video, obj][t] = False
                        per_frame.append(None)
                        continue
                    encoded = mask_utils.encode(np.asfortranarray(truth[video, obj][t].astype(np.uint8)))
                    per_frame.append({"size": list(encoded["size"]), "counts": encoded["counts"].decode()})
                rle.setdefault(video, {})[str(obj)] = per_frame
    if masks == "rle":
        write_json(root / "masks_rle.json", rle)
    video_entry = {
        "expressions": {
            "0": {"text": "the left box", "objects": [1]},
            "1": {"text": "both boxes", "objects": [1, 2], "meta": {"difficulty": "easy"}},
            "2": {"text": "the forklift", "no_target": True},
        }
    }
    if frames_listed:
        video_entry["frames"] = names
    data = {"version": 1, "masks": masks, "videos": {"cam_a": video_entry, "cam_b": json.loads(json.dumps(video_entry))}}
    if splits is not None:
        data["splits"] = splits
    write_json(root / "expressions.json", data)
    return truth


@pytest.mark.parametrize("masks", ["ids", "binary", "rle"])
def test_each_mask_kind_gives_the_union_of_objects(tmp_path, masks):
    truth = build(tmp_path, masks)
    ds = CustomReader(tmp_path, "train")
    assert [(s.video_id, s.exp_id) for s in ds] == [(v, e) for v in ("cam_a", "cam_b") for e in ("0", "1", "2")]
    both = ds[1]
    assert both.dataset == "custom" and both.object_ids == (1, 2) and both.meta == {"difficulty": "easy"}
    np.testing.assert_array_equal(both.load_masks(), truth["cam_a", 1] | truth["cam_a", 2])
    np.testing.assert_array_equal(ds[3].load_masks([2, 0]), truth["cam_b", 1][[2, 0]])
    forklift = ds[2]
    assert forklift.object_ids == () and forklift.meta == {"no_target": True}
    assert forklift.load_masks().shape == (NUM_FRAMES, HEIGHT, WIDTH) and not forklift.load_masks().any()


def test_default_frames_sort_digits_as_numbers_and_splits(tmp_path):
    build(tmp_path, "ids", frames_listed=False, splits={"train": ["cam_b"], "val": ["cam_a"]})
    ds = load_dataset(f"custom:{tmp_path}", "train")
    assert {s.video_id for s in ds} == {"cam_b"}
    assert [p.name for p in ds[0].frame_paths] == ["f1.jpg", "f2.png", "f10.jpg"]
    with pytest.raises(AnnotationError, match=r"split 'test' not in 'splits' \(present: \['train', 'val'\]\)"):
        CustomReader(tmp_path, "test")


def test_masks_none_has_no_loader(tmp_path):
    build(tmp_path, "none")
    ds = CustomReader(tmp_path, "anything")
    assert len(ds) == 6 and all(s.mask_loader is None for s in ds) and not ds.has_masks


def test_schema_errors_are_not_skippable(tmp_path):
    build(tmp_path, "ids")
    path = tmp_path / "expressions.json"
    data = json.loads(path.read_text())
    for change, pattern in [
        ({"version": 2}, r"'version' must be 1"),
        ({"masks": "polygons"}, r"'masks' must be one of"),
        ({"split": {}}, r"unknown top-level keys \['split'\]"),
    ]:
        write_json(path, {**data, **change})
        with pytest.raises(AnnotationError, match=pattern):
            CustomReader(tmp_path, "train", skip_invalid=True)


def test_invalid_expressions_raise_or_are_counted(tmp_path):
    build(tmp_path, "binary")
    path = tmp_path / "expressions.json"
    data = json.loads(path.read_text())
    data["videos"]["cam_a"]["expressions"]["3"] = {"text": "box", "objects": [3]}  # no PNGs for object 3
    data["videos"]["cam_a"]["expressions"]["4"] = {"text": "box", "objects": []}
    data["videos"]["cam_a"]["expressions"]["5"] = {"txt": "typo", "objects": [1]}
    write_json(path, data)
    with pytest.raises(AnnotationError, match=r"expressions\.json: video 'cam_a': mask file .*cam_a/3/f1\.png not found"):
        CustomReader(tmp_path, "train")
    with pytest.warns(SkippedAnnotationsWarning, match="skipped 3 of 9 expressions"):
        ds = CustomReader(tmp_path, "train", skip_invalid=True)
    assert ds.skip_report.counts == {"malformed entry": 1, "missing mask": 1, "no object": 1}
    assert len(ds) == 6


def test_size_mismatch_and_missing_frame(tmp_path):
    build(tmp_path, "ids")
    Image.fromarray(np.zeros((HEIGHT, WIDTH + 1), dtype=np.uint8)).save(tmp_path / "Annotations" / "cam_b" / "f2.png")
    with pytest.raises(AnnotationError, match=r"cam_b/f2\.png: mask is 9x14 but frame .*cam_b/f2\.png is 9x13"):
        CustomReader(tmp_path, "train")
    (tmp_path / "JPEGImages" / "cam_a" / "f10.jpg").unlink()
    with pytest.warns(SkippedAnnotationsWarning):
        ds = CustomReader(tmp_path, "train", skip_invalid=True)
    assert ds.skip_report.counts == {"missing frame": 3, "size mismatch": 3}
    assert len(ds) == 0


def test_wrong_root(tmp_path):
    with pytest.raises(AnnotationError, match=r"expected a custom-format root holding expressions\.json"):
        CustomReader(tmp_path / "missing", "train")
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(AnnotationError, match=r"expressions\.json not found"):
        CustomReader(tmp_path, "train")


def test_check_dataset_finds_empty_masks_and_cli_exit_codes(tmp_path, capsys):
    build(tmp_path, "ids")
    path = tmp_path / "expressions.json"
    data = json.loads(path.read_text())
    data["videos"]["cam_b"]["expressions"]["9"] = {"text": "a pallet", "objects": [7]}  # id 7 never drawn
    write_json(path, data)
    result = check_dataset(CustomReader(tmp_path, "train"), decode_masks=True)
    assert result.empty_masks == (("cam_b", "9"),)
    assert (result.num_samples, result.num_videos, result.num_frames) == (7, 2, 6)
    assert main([f"custom:{tmp_path}", "--split", "train", "--decode"]) == 0
    assert "custom (train): 7 expressions, 2 videos, 6 frames" in capsys.readouterr().out
    (tmp_path / "Annotations" / "cam_a" / "f1.png").unlink()
    assert main([f"custom:{tmp_path}", "--split", "train"]) == 1
    assert "cam_a/f1.png not found" in capsys.readouterr().err
    assert main([f"custom:{tmp_path}", "--split", "train", "--skip-invalid"]) == 1
    assert "[missing mask]" in capsys.readouterr().out
