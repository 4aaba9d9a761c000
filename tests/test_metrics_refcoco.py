"""Hand-computed RefCOCO cIoU / gIoU."""

from __future__ import annotations

import numpy as np
import pytest

from svac.metrics.refcoco import EMPTY_SET_CIOU, refcoco_scores
from svac.metrics.validation import MetricInputError


def mask(size: int, *pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((size, size), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_ciou_and_giou_hand_computed() -> None:
    # sample 1: I = 1, U = 4 (IoU 0.25); sample 2 (other size): I = 6, U = 8 (IoU 0.75)
    p1, g1 = mask(4, (0, 0), (0, 1)), mask(4, (0, 1), (1, 1), (2, 2))
    g2 = np.zeros((6, 5), dtype=bool)
    g2[0:2, 0:4] = True
    p2 = np.zeros_like(g2)
    p2[0:2, 0:3] = True
    result = refcoco_scores(iter([(p1, g1), (p2, g2)]))
    assert (result.total_intersection, result.total_union) == (7, 12)
    assert result.ciou == 7 / 12
    assert result.giou == 0.5
    assert result.n_samples == 2


def test_edge_cases() -> None:
    empty, one, full = mask(3), mask(3, (1, 1)), np.ones((3, 3), dtype=bool)
    assert refcoco_scores([(empty, empty)]).giou == 1.0  # empty-empty counts as IoU 1
    assert refcoco_scores([(empty, empty)]).ciou == 0.0  # LISA: 0 / (0 + 1e-10), see below
    assert refcoco_scores([(one, one), (empty, one)]).giou == 0.5
    assert refcoco_scores([(one, full)]).ciou == pytest.approx(1 / 9, abs=0)
    assert refcoco_scores([(full, full), (empty, empty)]).ciou == 1.0


def test_bad_inputs_raise() -> None:
    with pytest.raises(MetricInputError, match="sample 0.*sizes differ"):
        refcoco_scores([(mask(3), mask(4))])
    with pytest.raises(MetricInputError, match="at least one"):
        refcoco_scores([])
    with pytest.raises(MetricInputError, match="dimensions"):
        refcoco_scores([(np.zeros((1, 3, 3), dtype=bool), np.zeros((1, 3, 3), dtype=bool))])


def test_ciou_of_a_set_with_every_mask_empty_is_zero_as_in_lisa() -> None:
    """LISA train_ds.py validate(): cIoU = sum(I) / (sum(U) + 1e-10), gIoU adds 1 per empty union."""
    empty_3x3, empty_1x1 = mask(3), mask(1)
    result = refcoco_scores([(empty_3x3, empty_3x3.copy()), (empty_1x1, empty_1x1.copy())])
    # LISA (dvlab-research/LISA 3cb2d430, train_ds.py + utils.intersectionAndUnionGPU) on these two
    # pairs: cIoU 0.0, gIoU 1.0
    assert (result.total_intersection, result.total_union) == (0, 0)
    assert result.ciou == 0.0 and EMPTY_SET_CIOU == 0.0
    assert result.giou == 1.0
    # one non-empty pair makes the union positive again: LISA 9 / (9 + 1e-10) -> 1.0 in float32
    full = np.ones((3, 3), dtype=bool)
    assert refcoco_scores([(empty_3x3, empty_3x3.copy()), (full, full.copy())]).ciou == 1.0
