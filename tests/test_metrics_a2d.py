"""Hand-computed A2D / JHMDB-Sentences scores: strict P@K, overall / mean IoU, COCO mAP."""

from __future__ import annotations

import numpy as np
import pytest

from svac.metrics.a2d import PRECISION_THRESHOLDS, A2DSample, ScoredMask, a2d_sentences_scores
from svac.metrics.validation import MetricInputError

SIZE = 20
COCO_RECALL_POINTS = 101  # COCO interpolates precision at recall 0, 0.01, ..., 1


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_precision_is_strict_and_ious_hand_computed() -> None:
    gt = box(0, 2, 0, 2)  # 4 px
    half = box(0, 2, 0, 1)  # IoU exactly 2 / 4 = 0.5: not counted at 0.5
    gt2 = box(0, 2, 0, 4)  # 8 px
    three_quarters = box(0, 2, 0, 3)  # IoU 6 / 8 = 0.75
    samples = [
        A2DSample("s1", gt, (ScoredMask(half, 1.0),)),
        A2DSample("s2", gt2, (ScoredMask(three_quarters, 0.5),)),
    ]
    result = a2d_sentences_scores(samples)
    assert [k for k, _ in result.precision_at] == list(PRECISION_THRESHOLDS)
    assert [v for _, v in result.precision_at] == [0.5, 0.5, 0.5, 0.0, 0.0]
    assert result.precision(0.7) == 0.5
    assert result.mean_iou == (0.5 + 0.75) / 2
    assert result.overall_iou == (2 + 6) / (4 + 8)
    with pytest.raises(KeyError):
        result.precision(0.55)


def test_best_scoring_prediction_is_used_and_ties_take_the_last() -> None:
    gt = box(0, 4, 0, 4)
    wrong = box(10, 14, 10, 14)
    high = A2DSample("a", gt, (ScoredMask(wrong, 0.2), ScoredMask(gt, 0.9), ScoredMask(wrong, 0.1)))
    assert a2d_sentences_scores([high]).mean_iou == 1.0
    tie = A2DSample("b", gt, (ScoredMask(gt, 0.5), ScoredMask(wrong, 0.5)))
    assert a2d_sentences_scores([tie]).mean_iou == 0.0


def test_map_hand_computed() -> None:
    gt = box(2, 10, 2, 10)  # 64 px, a "small" COCO area
    pred = box(2, 10, 2, 9)  # IoU 56 / 64 = 0.875
    samples = [
        A2DSample("a", gt, (ScoredMask(pred, 0.9), ScoredMask(~gt, 0.1))),
        A2DSample("b", gt.copy(), ()),  # no prediction: an empty mask for P@K, a miss for mAP
    ]
    result = a2d_sentences_scores(samples)
    assert result.mean_iou == 0.875 / 2 and result.overall_iou == 56 / 128
    # 1 of 2 objects found first, with precision 1: recall points 0..0.5 -> 51 of 101
    ap_half = 51 / COCO_RECALL_POINTS
    assert result.ap_50 == pytest.approx(ap_half, abs=1e-12)
    assert result.ap_75 == pytest.approx(ap_half, abs=1e-12)
    # IoU thresholds 0.50..0.85 (8 of 10) match, 0.90 and 0.95 do not
    assert result.map_50_95 == pytest.approx(0.8 * ap_half, abs=1e-12)
    assert result.ap_small == pytest.approx(0.8 * ap_half, abs=1e-12)
    assert result.ap_medium == -1.0 and result.ap_large == -1.0


def test_perfect_and_empty_predictions() -> None:
    gt = box(0, 1, 0, 1)  # a 1-pixel object
    perfect = a2d_sentences_scores([A2DSample("p", gt, (ScoredMask(gt.copy(), 0.3),))])
    assert perfect.map_50_95 == pytest.approx(1.0, abs=1e-12)
    assert perfect.mean_iou == 1.0 and perfect.precision(0.9) == 1.0
    none = a2d_sentences_scores([A2DSample("n", gt, ())])
    assert none.map_50_95 == 0.0 and none.mean_iou == 0.0 and none.overall_iou == 0.0
    full = np.ones((SIZE, SIZE), dtype=bool)
    assert a2d_sentences_scores([A2DSample("f", full, (ScoredMask(gt, 1.0),))]).mean_iou == 1 / SIZE**2


def test_bad_inputs_raise() -> None:
    gt = box(0, 2, 0, 2)
    with pytest.raises(MetricInputError, match="prediction 0 of sample x.*sizes differ"):
        a2d_sentences_scores([A2DSample("x", gt, (ScoredMask(np.zeros((SIZE, SIZE + 1), dtype=bool), 1.0),))])
    with pytest.raises(MetricInputError, match="non-finite"):
        a2d_sentences_scores([A2DSample("x", gt, (ScoredMask(gt, float("nan")),))])
    with pytest.raises(MetricInputError, match="repeat"):
        a2d_sentences_scores([A2DSample("x", gt, ()), A2DSample("x", gt, ())])
    with pytest.raises(MetricInputError, match="at least one"):
        a2d_sentences_scores([])
