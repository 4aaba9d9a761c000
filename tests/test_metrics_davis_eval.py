"""DAVIS folder evaluation on small synthetic palette / grey PNG sequences."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.errors import AnnotationError, ConfigError, OutputExistsError
from svac.metrics.davis_eval import evaluate_davis_folders, score_unsupervised
from svac.metrics.validation import MetricInputError

HEIGHT, WIDTH = 12, 16
FRAMES = ("00000", "00001", "00002", "00003")
VOID = 255


def palette_png(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [128] * (3 * 252))
    image.save(path)


def grey_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(path)


def two_object_labels() -> np.ndarray:
    """Object 1 top-left, object 2 bottom-right, a void band in the middle rows."""
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[1:4, 1:5] = 1
    labels[7:11, 9:14] = 2
    labels[5, :] = VOID
    return labels


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "mymethod"
    labels = two_object_labels()
    for frame in FRAMES:
        palette_png(gt_dir / "seq" / f"{frame}.png", labels)
        pred = labels.copy()
        pred[pred == VOID] = 0
        pred[5, 0:3] = 1  # extra pixels of object 1 inside the void band: ignored
        if frame == "00002":
            pred[pred == 2] = 0  # object 2 lost on frame 2
        palette_png(pred_dir / "seq" / f"{frame}.png", pred)
    return gt_dir, pred_dir


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_semi_supervised_multi_object(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    gt_dir, pred_dir = dataset
    result = evaluate_davis_folders(gt_dir, pred_dir, tmp_path / "out")
    assert result.method == "mymethod" and result.protocol == "semi"
    # first and last frame dropped: frames 00001, 00002; objects seq_1 and seq_2
    rows = [(r.sequence, r.frame, r.j, r.f) for r in result.per_frame]
    assert rows == [
        ("seq_1", "00001", 1.0, 1.0),
        ("seq_1", "00002", 1.0, 1.0),
        ("seq_2", "00001", 1.0, 1.0),
        ("seq_2", "00002", 0.0, 0.0),  # empty prediction vs object: J = 0, F = 0 (P = 1, R = 0)
    ]
    objects = {o.sequence: o for o in result.per_object}
    assert objects["seq_2"].n_frames == 2 and objects["seq_2"].object_id == 2
    assert objects["seq_2"].j.mean == 0.5 and objects["seq_2"].j.recall == 0.5
    # two frames: edges round(linspace(1, 2, 5)) - 1 = [0, 0, 1, 1, 1];
    # bins [0:1], [0:2], [1:2], [1:2] -> decay = J(frame 1) - J(frame 2) = 1 - 0
    assert objects["seq_2"].j.decay == 1.0
    g = result.global_scores
    assert (g.j_mean, g.f_mean, g.jf_mean, g.n_objects) == (0.75, 0.75, 0.75, 2)
    frame_rows = read_csv(tmp_path / "out" / "per_frame.csv")
    assert [r["sequence"] for r in frame_rows] == ["seq_1", "seq_1", "seq_2", "seq_2"]
    assert frame_rows[3] == {"method": "mymethod", "sequence": "seq_2", "frame": "00002", "J": "0.0", "F": "0.0"}
    seq_rows = read_csv(tmp_path / "out" / "per_sequence.csv")
    assert seq_rows[1]["J_mean"] == "0.5" and seq_rows[1]["n_frames"] == "2"
    record = json.loads((tmp_path / "out" / "global.json").read_text())
    assert record["J&F-Mean"] == 0.75 and record["frames"] == "all but the first and the last"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["global.json", "per_frame.csv", "per_sequence.csv"]


def test_unsupervised_matches_permuted_ids_on_all_frames(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    gt_dir, _ = dataset
    pred_dir = tmp_path / "proposals"
    labels = two_object_labels()
    for frame in FRAMES:
        pred = np.zeros_like(labels)
        pred[labels == 1] = 2
        pred[labels == 2] = 1
        pred[0, 12:16] = 3  # a spurious proposal
        palette_png(pred_dir / "seq" / f"{frame}.png", pred)
    result = evaluate_davis_folders(gt_dir, pred_dir, None, protocol="unsupervised", method="m")
    assert result.files is None
    assert [(o.sequence, o.proposal_id, o.n_frames) for o in result.per_object] == [("seq_1", 2, 4), ("seq_2", 1, 4)]
    assert all(r.j == 1.0 and r.f == 1.0 for r in result.per_frame)
    assert [r.frame for r in result.per_frame][:4] == list(FRAMES)


def test_unsupervised_pads_missing_proposals() -> None:
    gt = np.zeros((2, 1, HEIGHT, WIDTH), dtype=bool)
    gt[0, 0, 0:3, 0:3] = True
    gt[1, 0, 6:9, 6:9] = True
    proposals = gt[1:2].copy()  # only object 2 was found
    scores = score_unsupervised(gt, proposals)
    assert scores.proposal_index == (None, 0)
    assert scores.j.tolist() == [[0.0], [1.0]]
    assert scores.f.tolist() == [[0.0], [1.0]]
    with pytest.raises(MetricInputError, match="exceed"):
        score_unsupervised(gt, np.zeros((21, 1, HEIGHT, WIDTH), dtype=bool))


def test_refuses_to_overwrite(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    gt_dir, pred_dir = dataset
    out = tmp_path / "out"
    evaluate_davis_folders(gt_dir, pred_dir, out)
    before = (out / "per_frame.csv").read_text()
    with pytest.raises(OutputExistsError, match="per_frame.csv"):
        evaluate_davis_folders(gt_dir, pred_dir, out, method="other")
    assert (out / "per_frame.csv").read_text() == before
    evaluate_davis_folders(gt_dir, pred_dir, out, method="other", overwrite=True)
    assert read_csv(out / "per_frame.csv")[0]["method"] == "other"


def test_prediction_of_another_size_raises(dataset: tuple[Path, Path]) -> None:
    gt_dir, pred_dir = dataset
    palette_png(pred_dir / "seq" / "00001.png", np.zeros((HEIGHT, WIDTH + 1), dtype=np.uint8))
    with pytest.raises(MetricInputError, match="00001.png.*same size"):
        evaluate_davis_folders(gt_dir, pred_dir, None)


def test_missing_prediction_frame_raises(dataset: tuple[Path, Path]) -> None:
    gt_dir, pred_dir = dataset
    (pred_dir / "seq" / "00002.png").unlink()
    with pytest.raises(MetricInputError, match="00002.png is missing"):
        evaluate_davis_folders(gt_dir, pred_dir, None)
    (pred_dir / "seq" / "00000.png").unlink()  # not evaluated by the semi protocol, still needed by unsupervised
    with pytest.raises(MetricInputError, match="missing"):
        evaluate_davis_folders(gt_dir, pred_dir, None, protocol="unsupervised")


def test_semi_prediction_with_unknown_object_raises(dataset: tuple[Path, Path]) -> None:
    gt_dir, pred_dir = dataset
    extra = two_object_labels()
    extra[extra == VOID] = 3
    palette_png(pred_dir / "seq" / "00001.png", extra)
    with pytest.raises(MetricInputError, match="object id 3"):
        evaluate_davis_folders(gt_dir, pred_dir, None)


def test_binary_grey_masks_one_object(tmp_path: Path) -> None:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    full = np.ones((HEIGHT, WIDTH), dtype=bool)
    one_pixel = np.zeros((HEIGHT, WIDTH), dtype=bool)
    one_pixel[4, 4] = True
    for frame in FRAMES:
        grey_png(gt_dir / "v" / f"{frame}.png", full)
        grey_png(pred_dir / "v" / f"{frame}.png", one_pixel if frame == "00001" else full)
    result = evaluate_davis_folders(gt_dir, pred_dir, None)
    assert [(r.sequence, r.frame, r.j, r.f) for r in result.per_frame] == [
        ("v", "00001", 1 / (HEIGHT * WIDTH), 0.0),  # prediction boundary vs none: P = 0, R = 1
        ("v", "00002", 1.0, 1.0),  # full frames: no boundary on either side
    ]
    assert result.per_object[0].object_id is None


def test_bad_arguments_and_inputs(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    gt_dir, pred_dir = dataset
    with pytest.raises(ConfigError):
        evaluate_davis_folders(gt_dir, pred_dir, None, protocol="weakly")
    with pytest.raises(ConfigError):
        evaluate_davis_folders(gt_dir, pred_dir, None, mask_format="rgb")
    with pytest.raises(MetricInputError, match="lacks sequences: other"):
        evaluate_davis_folders(gt_dir, pred_dir, None, sequences=["seq", "other"])
    short = tmp_path / "short"
    palette_png(short / "s" / "00000.png", two_object_labels())
    palette_png(short / "s" / "00001.png", two_object_labels())
    with pytest.raises(AnnotationError, match="at least 3"):
        evaluate_davis_folders(short, short, None)
