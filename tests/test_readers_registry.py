"""The reader registry, dataset specs, and the mask decoding helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from svac.data.readers import (
    READERS,
    CustomReader,
    MeViSReader,
    RefCOCOReader,
    RefDAVISReader,
    RefYouTubeVOSReader,
    ReVOSReader,
    load_dataset,
    parse_spec,
)
from svac.data.readers.base import SkipReport, SkippedExpression, natural_key
from svac.data.readers.masks import (
    IdPngMaskLoader,
    check_positions,
    coco_segmentation_to_mask,
    decode_rle,
    read_binary_mask,
    read_id_mask,
)
from svac.errors import AnnotationError, ConfigError


def test_registry_names_and_factories():
    assert set(READERS) == {"refytvos", "davis17", "mevis", "revos", "refcoco", "refcoco+", "refcocog", "custom", "rvos"}
    assert READERS["mevis"] is MeViSReader and READERS["revos"] is ReVOSReader
    assert READERS["davis17"] is RefDAVISReader and READERS["custom"] is CustomReader
    assert READERS["refytvos"] is RefYouTubeVOSReader
    assert READERS["refcoco+"].func is RefCOCOReader and READERS["refcoco+"].keywords == {"name": "refcoco+"}
    assert READERS["rvos"].keywords["require_masks"] is True
    with pytest.raises(TypeError):
        READERS["mine"] = CustomReader  # type: ignore[index]


def test_parse_spec_and_errors(tmp_path):
    assert parse_spec(f"refcoco+:{tmp_path}") == ("refcoco+", tmp_path)
    assert parse_spec("custom:~/data")[1] == Path.home() / "data"
    with pytest.raises(ConfigError, match=r"must look like 'name:/path/to/root'"):
        parse_spec(str(tmp_path))
    with pytest.raises(ConfigError, match=r"unknown dataset 'ytvos'.*known: refytvos, davis17"):
        load_dataset(f"ytvos:{tmp_path}", "train")
    with pytest.raises(ConfigError, match=r"has no path"):
        parse_spec("mevis:")


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_reports_a_missing_root(tmp_path, name):
    with pytest.raises(AnnotationError, match=r"does not exist; expected a"):
        load_dataset(f"{name}:{tmp_path / 'absent'}", "train")


def test_skip_report_summary_and_counts():
    items = tuple(
        SkippedExpression("v", str(i), reason, "msg")
        for i, reason in enumerate(["no object", "missing frame", "missing frame"])
    )
    report = SkipReport("mevis", "train", total=120, skipped=items)
    assert report.summary() == "skipped 3 of 120 expressions: 2 missing frame, 1 no object"
    assert report.counts == {"missing frame": 2, "no object": 1}
    assert SkipReport("mevis", "train", total=5).summary() == "skipped 0 of 5 expressions"


def test_natural_key_orders_digit_runs_numerically():
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]


def test_id_mask_modes(tmp_path):
    ids = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_id_mask(tmp_path / "p.png"), ids)
    binary = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    Image.fromarray(binary).save(tmp_path / "davis16.png")
    np.testing.assert_array_equal(read_id_mask(tmp_path / "davis16.png", binary_255_is_object_1=True), binary // 255)
    np.testing.assert_array_equal(read_id_mask(tmp_path / "davis16.png"), binary)  # custom "ids": value is the id
    palette_255 = Image.fromarray(binary, mode="P")
    palette_255.putpalette(list(range(256)) * 3)  # without a palette PIL compacts the indices on save
    palette_255.save(tmp_path / "p255.png")
    np.testing.assert_array_equal(read_id_mask(tmp_path / "p255.png", binary_255_is_object_1=True), binary)
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(AnnotationError, match=r"rgb\.png: mask has colour mode 'RGB'"):
        read_id_mask(tmp_path / "rgb.png")
    with pytest.raises(AnnotationError, match=r"gone\.png: mask file not found"):
        read_binary_mask(tmp_path / "gone.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(AnnotationError, match=r"junk\.png: not a readable PNG mask"):
        read_binary_mask(tmp_path / "junk.png")


def test_rle_decoding_compressed_uncompressed_and_bad(tmp_path):
    rng = np.random.default_rng(3)
    mask = rng.random((6, 5)) < 0.5
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    as_str = {"size": [6, 5], "counts": encoded["counts"].decode()}
    np.testing.assert_array_equal(decode_rle(as_str, source=tmp_path, label="x"), mask)
    np.testing.assert_array_equal(decode_rle(encoded, source=tmp_path, label="x"), mask)
    other = rng.random((6, 5)) < 0.5
    other_rle = mask_utils.encode(np.asfortranarray(other.astype(np.uint8)))
    np.testing.assert_array_equal(decode_rle([encoded, other_rle], source=tmp_path, label="x"), mask | other)
    with pytest.raises(AnnotationError, match=r"masks\.json: anno 3: not a COCO RLE"):
        decode_rle({"size": [6], "counts": "abc"}, source=Path("masks.json"), label="anno 3")
    polygon = [[0.0, 0.0, 4.0, 0.0, 4.0, 3.0, 0.0, 3.0]]
    expected = np.zeros((6, 5), dtype=bool)
    expected[0:3, 0:4] = True
    np.testing.assert_array_equal(coco_segmentation_to_mask(polygon, 6, 5, source=tmp_path, label="a"), expected)
    with pytest.raises(AnnotationError, match=r"segmentation must be a list of polygons or an RLE dict"):
        coco_segmentation_to_mask([[1, 2]], 6, 5, source=tmp_path, label="a")


def test_loader_positions_and_empty_request(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "f.jpg")
    Image.fromarray(np.ones((3, 4), dtype=np.uint8)).save(tmp_path / "m.png")
    loader = IdPngMaskLoader((tmp_path / "f.jpg",), (tmp_path / "m.png",), (1,))
    assert loader([]).shape == (0, 3, 4)
    assert loader([0]).all()
    with pytest.raises(IndexError, match="out of range"):
        loader([1])
    with pytest.raises(TypeError):
        check_positions([0.5], 2)  # type: ignore[list-item]
    assert check_positions([np.int64(1)], 2) == [1]
