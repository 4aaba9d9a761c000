"""Mask intersection, union and IoU, shared by the image and frame-level benchmarks.

Convention: the IoU of two empty masks is 1 (nothing to find, nothing found),
as in DAVIS J; LISA's gIoU code reaches the same value by adding 1 when the
union is 0.
"""

from __future__ import annotations

import numpy as np

from svac.metrics.validation import check_bool_masks, check_same_shape

EMPTY_IOU = 1.0
"""IoU of two empty masks."""


def intersection_and_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Pixel counts of ``pred & gt`` and ``pred | gt``, summed over all frames.

    Args:
        pred: predicted mask(s), bool ``(H, W)`` or ``(T, H, W)``.
        gt: ground-truth mask(s), same shape.

    Returns:
        ``(intersection, union)`` in pixels.

    Raises:
        svac.metrics.validation.MetricInputError: on non-bool input or when the shapes differ.
    """
    check_bool_masks("pred", pred)
    check_bool_masks("gt", gt)
    check_same_shape(pred=pred, gt=gt)
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


def ratio_or_empty(intersection: int, union: int) -> float:
    """``intersection / union``, or :data:`EMPTY_IOU` when ``union`` is 0."""
    return EMPTY_IOU if union == 0 else intersection / union


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two masks (``(H, W)`` or ``(T, H, W)`` bool, counts summed over frames); 1 when both are empty.

    Raises:
        svac.metrics.validation.MetricInputError: on non-bool input or when the shapes differ.
    """
    return ratio_or_empty(*intersection_and_union(pred, gt))
