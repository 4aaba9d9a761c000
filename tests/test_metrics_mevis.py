"""Hand-computed MeViS scores: per-expression J/F over all frames, missing predictions, means."""

from __future__ import annotations

import numpy as np
import pytest

from svac.metrics.mevis import aggregate_mevis, mevis_scores, score_expression, video_j_f
from svac.metrics.validation import MetricInputError

SIZE = 8  # 1 px boundary tolerance


def frame(*pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_video_j_f_uses_every_frame() -> None:
    gt = np.stack([frame((2, 2)), frame(), frame((2, 2))])
    pred = np.stack([frame((2, 2)), frame(), frame((2, 4))])
    # frame J: 1, 1 (both empty), 0; frame F: 1, 1, 0.5 (boundaries 1 px apart on half their pixels)
    j, f = video_j_f(pred, gt)
    assert j == pytest.approx(2 / 3, abs=1e-15)
    assert f == pytest.approx(2.5 / 3, abs=1e-15)


def test_dataset_means_and_missing_prediction() -> None:
    gt_a = np.stack([frame((2, 2)), frame((3, 3))])
    gt_b = np.stack([frame((2, 2))])
    gt_c = np.stack([frame((2, 2))])
    result = mevis_scores(
        {
            "v1_0": (gt_a.copy(), gt_a),  # J = F = 1
            "v1_1": (None, gt_b),  # missing: 0, 0
            "v2_0": (np.stack([frame((2, 4))]), gt_c),  # J = 0, F = 0.5
        }
    )
    assert [s.expression_id for s in result.per_expression] == ["v1_0", "v1_1", "v2_0"]
    assert result.per_expression[1].missing and result.n_missing == 1
    assert result.j == pytest.approx(1 / 3, abs=1e-15)
    assert result.f == pytest.approx(1.5 / 3, abs=1e-15)
    assert result.jf == (result.j + result.f) / 2
    assert result.per_expression[2].jf == 0.25


def test_full_frame_and_empty_expressions() -> None:
    full = np.ones((2, SIZE, SIZE), dtype=bool)
    empty = np.zeros((2, SIZE, SIZE), dtype=bool)
    assert video_j_f(full, full) == (1.0, 1.0)
    assert video_j_f(empty, empty) == (1.0, 1.0)
    # no boundary on either side: J = 0 but F = 1 by the DAVIS convention
    assert video_j_f(empty, full) == (0.0, 1.0)


def test_bad_inputs_raise() -> None:
    gt = np.zeros((2, SIZE, SIZE), dtype=bool)
    with pytest.raises(MetricInputError, match="expression e1.*sizes differ"):
        score_expression("e1", np.zeros((2, SIZE, SIZE + 1), dtype=bool), gt)
    with pytest.raises(MetricInputError, match="sizes differ"):
        score_expression("e2", np.zeros((3, SIZE, SIZE), dtype=bool), gt)
    with pytest.raises(MetricInputError, match="dtype bool"):
        score_expression("e3", gt.astype(np.uint8), gt)
    with pytest.raises(MetricInputError, match="at least one expression"):
        mevis_scores({})
    with pytest.raises(MetricInputError, match="repeat"):
        aggregate_mevis([score_expression("x", None, gt), score_expression("x", None, gt)])
