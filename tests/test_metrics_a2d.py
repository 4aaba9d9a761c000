"""Hand-computed A2D / JHMDB-Sentences scores: strict P@K, overall / mean IoU, COCO mAP."""

from __future__ import annotations

import numpy as np
import pytest

from svac.metrics.a2d import PRECISION_THRESHOLDS, A2DSample, ScoredMask, a2d_sentences_scores, reference_iou
from svac.metrics.validation import MetricInputError

SIZE = 20
COCO_RECALL_POINTS = 101  # COCO interpolates precision at recall 0, 0.01, ..., 1


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_precision_is_strict_on_the_float32_iou_with_epsilon() -> None:
    gt = box(0, 2, 0, 2)  # 4 px
    half = box(0, 2, 0, 1)  # 2 / 4: float32 (2 + 1e-6) / (4 + 1e-6) = 0.50000012 > 0.5, counted at 0.5
    gt2 = box(0, 2, 0, 4)  # 8 px
    three_quarters = box(0, 2, 0, 3)  # 6 / 8 rounds to exactly 0.75 in float32
    samples = [
        A2DSample("s1", gt, (ScoredMask(half, 1.0),)),
        A2DSample("s2", gt2, (ScoredMask(three_quarters, 0.5),)),
    ]
    result = a2d_sentences_scores(samples)
    assert [k for k, _ in result.precision_at] == list(PRECISION_THRESHOLDS)
    # ReferFormer datasets/a2d_eval.py (calculate_precision_at_k_and_iou_metrics) on these masks:
    # P@K [1.0, 0.5, 0.5, 0.0, 0.0], mean IoU 0.6250000596046448, overall IoU 0.6666666666666666
    assert [v for _, v in result.precision_at] == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert result.precision(0.7) == 0.5
    assert result.mean_iou == 0.6250000596046448
    assert result.overall_iou == (2 + 6) / (4 + 8)
    with pytest.raises(KeyError):
        result.precision(0.55)


def strip(intersection: int, union: int) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred) on a 1 x union image whose IoU is exactly intersection / union."""
    gt = np.ones((1, union), dtype=bool)
    pred = np.zeros((1, union), dtype=bool)
    pred[0, :intersection] = True
    return gt, pred


def test_exact_ties_follow_the_reference_arithmetic() -> None:
    """Exact IoU ties at the P@K thresholds, scored as the reference does (float32, + 1e-6, then ``>``)."""
    ties = [(60, 100), (4000, 5000), (70, 100), (1, 2), (3, 5), (9, 10), (50, 100)]
    samples = [A2DSample(f"s{n}", *_with_prediction(*strip(i, u))) for n, (i, u) in enumerate(ties)]
    empty = np.zeros((2, 3), dtype=bool)
    samples.append(A2DSample("s7", empty, (ScoredMask(empty.copy(), 0.5),)))  # both empty: IoU 1
    result = a2d_sentences_scores(samples)
    # ReferFormer datasets/a2d_eval.py (wjn922/ReferFormer 06fc218f) on these 8 samples:
    # P@0.5..0.9 = [0.875, 0.75, 0.375, 0.375, 0.25], mean IoU 0.7000000476837158,
    # overall IoU 0.7886025954485613 (60/100 -> 0.6000000238 and 4000/5000 -> 0.8000000119 round up,
    # 70/100 -> 0.6999999881 rounds down, 50/100 stays 0.5; 1/2, 3/5, 9/10 move up by the epsilon).
    assert [v for _, v in result.precision_at] == [0.875, 0.75, 0.375, 0.375, 0.25]
    assert result.mean_iou == 0.7000000476837158
    assert result.overall_iou == 0.7886025954485613
    assert reference_iou(60, 100) == 0.6000000238418579 and reference_iou(70, 100) == 0.699999988079071
    assert reference_iou(0, 0) == 1.0


def _with_prediction(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, tuple[ScoredMask, ...]]:
    return gt, (ScoredMask(pred, 0.5),)


def test_map_breaks_equal_scores_in_the_reference_image_order() -> None:
    """COCOeval orders images by id; with equal scores that order shapes the precision-recall curve."""
    gt = box(0, 4, 0, 4)
    miss = box(10, 14, 10, 14)
    # Given in frame order 1, 2, 10; COCOeval (string ids) reads v_a_f_10 first, i.e. the miss first.
    samples = [
        A2DSample("v_a_f_1_i_0", gt, (ScoredMask(gt.copy(), 0.5),)),
        A2DSample("v_a_f_2_i_0", gt.copy(), (ScoredMask(gt.copy(), 0.5),)),
        A2DSample("v_a_f_10_i_0", gt.copy(), (ScoredMask(miss, 0.5),)),
    ]
    result = a2d_sentences_scores(samples)
    # ReferFormer engine.evaluate_a2d (COCOeval segm, useCats=0, MTTR's string image ids) on these:
    # mAP = AP50 = 0.44224422442244227 (precision 2/3 up to recall 2/3: 67 * (2/3) / 101);
    # in input order (miss last) it would be 67 / 101 = 0.663.
    assert result.map_50_95 == 0.44224422442244227
    assert result.ap_50 == pytest.approx(67 * (2 / 3) / COCO_RECALL_POINTS, abs=1e-12)


def test_best_scoring_prediction_is_used_and_ties_take_the_last() -> None:
    gt = box(0, 4, 0, 4)
    wrong = box(10, 14, 10, 14)
    high = A2DSample("a", gt, (ScoredMask(wrong, 0.2), ScoredMask(gt, 0.9), ScoredMask(wrong, 0.1)))
    assert a2d_sentences_scores([high]).mean_iou == 1.0
    tie = A2DSample("b", gt, (ScoredMask(gt, 0.5), ScoredMask(wrong, 0.5)))
    # a miss keeps the reference's epsilon: float32 1e-6 / (32 + 1e-6) (ReferFormer a2d_eval.py: 3.1249999921101335e-08)
    assert a2d_sentences_scores([tie]).mean_iou == 3.1249999921101335e-08


def test_map_hand_computed() -> None:
    gt = box(2, 10, 2, 10)  # 64 px, a "small" COCO area
    pred = box(2, 10, 2, 9)  # IoU 56 / 64 = 0.875
    samples = [
        A2DSample("a", gt, (ScoredMask(pred, 0.9), ScoredMask(~gt, 0.1))),
        A2DSample("b", gt.copy(), ()),  # no prediction: an empty mask for P@K, a miss for mAP
    ]
    result = a2d_sentences_scores(samples)
    # ReferFormer a2d_eval.py, the second sample given an empty mask: mean IoU 0.4375000078125
    assert result.mean_iou == 0.4375000078125 and result.overall_iou == 56 / 128
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
    # ReferFormer a2d_eval.py with an empty mask for it: mean IoU float32 1e-6 / (1 + 1e-6) = 9.99999087980541e-07
    assert none.map_50_95 == 0.0 and none.mean_iou == 9.99999087980541e-07 and none.overall_iou == 0.0
    full = np.ones((SIZE, SIZE), dtype=bool)
    # 1 px of a full 20x20 frame; ReferFormer a2d_eval.py: 0.002500002272427082 (float32 (1 + 1e-6) / (400 + 1e-6))
    assert a2d_sentences_scores([A2DSample("f", full, (ScoredMask(gt, 1.0),))]).mean_iou == 0.002500002272427082


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
