"""Ref-DAVIS17: four unsupervised runs averaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.errors import ConfigError, OutputExistsError
from svac.metrics.davis_eval import DavisGlobalScores
from svac.metrics.refdavis17 import SUMMARY_JSON, combine_refdavis17_runs, evaluate_refdavis17

HEIGHT, WIDTH = 10, 12
FRAMES = ("00000", "00001", "00002")


def scores(j: float, f: float) -> DavisGlobalScores:
    return DavisGlobalScores(
        jf_mean=(j + f) / 2, j_mean=j, j_recall=0.0, j_decay=0.0, f_mean=f, f_recall=0.0, f_decay=0.0, n_objects=1
    )


def test_combine_averages_the_runs() -> None:
    result = combine_refdavis17_runs([scores(0.5, 0.7), scores(0.6, 0.8), scores(0.7, 0.9), scores(0.2, 0.2)])
    assert result.j == pytest.approx(0.5, abs=1e-15)
    assert result.f == pytest.approx(0.65, abs=1e-15)
    assert result.jf == pytest.approx(0.575, abs=1e-15)
    assert len(result.runs) == 4
    with pytest.raises(ConfigError, match="4 runs"):
        combine_refdavis17_runs([scores(0.5, 0.5)] * 3)


def palette_png(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [64] * (3 * 253))
    image.save(path)


def test_evaluate_four_folders(tmp_path: Path) -> None:
    labels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    labels[1:4, 1:4] = 1
    labels[6:9, 6:10] = 2
    for frame in FRAMES:
        palette_png(tmp_path / "gt" / "v" / f"{frame}.png", labels)
    runs = []
    for run in range(4):
        pred = np.zeros_like(labels)
        pred[labels == 1] = 2  # ids swapped: the Hungarian matching must undo it
        if run < 2:
            pred[labels == 2] = 1  # runs 0, 1 find both objects; runs 2, 3 only object 1
        for frame in FRAMES:
            palette_png(tmp_path / f"anno_{run}" / "v" / f"{frame}.png", pred)
        runs.append(tmp_path / f"anno_{run}")
    result, evaluations = evaluate_refdavis17(tmp_path / "gt", runs, tmp_path / "out")
    assert [e.global_scores.j_mean for e in evaluations] == [1.0, 1.0, 0.5, 0.5]
    assert all(e.protocol == "unsupervised" and e.per_object[0].n_frames == len(FRAMES) for e in evaluations)
    assert result.j == 0.75 and result.f == 0.75 and result.jf == 0.75
    assert (tmp_path / "out" / SUMMARY_JSON).is_file()
    assert (tmp_path / "out" / "anno_3" / "per_frame.csv").is_file()
    with pytest.raises(OutputExistsError):
        evaluate_refdavis17(tmp_path / "gt", runs, tmp_path / "out")
    (tmp_path / "out" / SUMMARY_JSON).unlink()
    (tmp_path / "out" / "anno_0" / "per_frame.csv").unlink()
    with pytest.raises(OutputExistsError, match="anno_1"):  # checked for every run before any work
        evaluate_refdavis17(tmp_path / "gt", runs, tmp_path / "out")
    assert not (tmp_path / "out" / "anno_0" / "per_frame.csv").exists()
    with pytest.raises(ConfigError, match="4 result folders"):
        evaluate_refdavis17(tmp_path / "gt", runs[:3], None)
