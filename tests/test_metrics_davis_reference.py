"""DAVIS J/F and statistics reproduce the official DAVIS-2016 tables to 1e-12 (every row)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from svac.metrics.davis_eval import PER_FRAME_COLUMNS, PER_SEQUENCE_COLUMNS, evaluate_davis_folders

TOLERANCE = 1e-12
METHODS = ("osvos", "cut")
SEQUENCES = ("blackswan", "car-shadow", "paragliding-launch")
KEY_COLUMNS_FRAME = ("method", "sequence", "frame")
KEY_COLUMNS_SEQUENCE = ("method", "sequence", "n_frames")


@pytest.fixture(scope="module")
def davis16_reference() -> Path:
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
    needed = [root / "Annotations" / "480p", root / "reference" / "per_frame_2016_official.csv"]
    needed += [root / "Results" / m for m in METHODS]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.fail(f"DAVIS-2016 test data is missing (expected at <repo>/../shared/data/davis16): {missing}")
    return root


@pytest.fixture(scope="module")
def evaluated(davis16_reference: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("davis16_eval")
    folders = {}
    for method in METHODS:
        result = evaluate_davis_folders(
            davis16_reference / "Annotations" / "480p",
            davis16_reference / "Results" / method,
            out / method,
            protocol="semi",
        )
        assert result.method == method
        assert result.files is not None
        folders[method] = out / method
    return folders


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _compare(reference: list[dict[str, str]], ours: list[dict[str, str]], keys: tuple[str, ...]) -> None:
    assert len(ours) == len(reference)
    for ref_row, our_row in zip(reference, ours):
        assert [our_row[k] for k in keys] == [ref_row[k] for k in keys]
        for column, ref_value in ref_row.items():
            if column in keys:
                continue
            assert abs(float(our_row[column]) - float(ref_value)) <= TOLERANCE, (ref_row, column, our_row[column])


def test_per_frame_table_matches_official(davis16_reference: Path, evaluated: dict[str, Path]) -> None:
    ref_columns, reference = _read(davis16_reference / "reference" / "per_frame_2016_official.csv")
    ours: list[dict[str, str]] = []
    for method in METHODS:
        columns, rows = _read(evaluated[method] / "per_frame.csv")
        assert tuple(columns) == tuple(ref_columns) == PER_FRAME_COLUMNS
        ours.extend(rows)
    assert {r["sequence"] for r in ours} == set(SEQUENCES)
    _compare(reference, ours, KEY_COLUMNS_FRAME)


def test_per_sequence_table_matches_official(davis16_reference: Path, evaluated: dict[str, Path]) -> None:
    ref_columns, reference = _read(davis16_reference / "reference" / "per_sequence_2016_official.csv")
    ours: list[dict[str, str]] = []
    for method in METHODS:
        columns, rows = _read(evaluated[method] / "per_sequence.csv")
        assert tuple(columns) == tuple(ref_columns) == PER_SEQUENCE_COLUMNS
        ours.extend(rows)
    _compare(reference, ours, KEY_COLUMNS_SEQUENCE)


def test_global_json_is_the_mean_of_the_reference_rows(davis16_reference: Path, evaluated: dict[str, Path]) -> None:
    _, reference = _read(davis16_reference / "reference" / "per_sequence_2016_official.csv")
    for method in METHODS:
        rows = [r for r in reference if r["method"] == method]
        record = json.loads((evaluated[method] / "global.json").read_text())
        j_mean = sum(float(r["J_mean"]) for r in rows) / len(rows)
        f_mean = sum(float(r["F_mean"]) for r in rows) / len(rows)
        assert record["J-Mean"] == pytest.approx(j_mean, abs=TOLERANCE)
        assert record["F-Mean"] == pytest.approx(f_mean, abs=TOLERANCE)
        assert record["J&F-Mean"] == pytest.approx((j_mean + f_mean) / 2, abs=TOLERANCE)
        assert record["J-Decay"] == pytest.approx(sum(float(r["J_decay"]) for r in rows) / len(rows), abs=TOLERANCE)
        assert record["F-Recall"] == pytest.approx(sum(float(r["F_recall"]) for r in rows) / len(rows), abs=TOLERANCE)
        assert record["n_objects"] == len(SEQUENCES)
        assert record["protocol"] == "semi"


def test_unsupervised_scores_every_frame_with_the_same_values(davis16_reference: Path) -> None:
    gt_dir, pred_dir = davis16_reference / "Annotations" / "480p", davis16_reference / "Results" / "osvos"
    semi = evaluate_davis_folders(gt_dir, pred_dir, None, sequences=["car-shadow"])
    unsupervised = evaluate_davis_folders(gt_dir, pred_dir, None, protocol="unsupervised", sequences=["car-shadow"])
    semi_rows = {r.frame: (r.j, r.f) for r in semi.per_frame}
    unsupervised_rows = {r.frame: (r.j, r.f) for r in unsupervised.per_frame}
    assert len(unsupervised_rows) == len(semi_rows) + 2  # first and last frame added
    assert {k: unsupervised_rows[k] for k in semi_rows} == semi_rows
    assert unsupervised.per_object[0].proposal_id == 1
