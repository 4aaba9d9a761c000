"""Region similarity J and contour accuracy F of the DAVIS benchmark.

Definitions (Perazzi et al., "A Benchmark Dataset and Evaluation Methodology
for Video Object Segmentation", CVPR 2016, evaluation metrics "Region
Similarity J" and "Contour Accuracy F"; conventions of the official DAVIS
evaluation code, which DAVIS-2017, MeViS, ReVOS and Ref-DAVIS17 reuse):

* **J** is the intersection over union of the predicted and ground-truth
  masks, and 1 when both are empty. Void pixels are left out of both counts.
* **F** is the F-measure of boundary precision and recall. A mask's boundary
  holds every pixel whose value differs from its east, south or south-east
  neighbour (a pixel outside the image counts as 0), except that the last row
  is compared with its east neighbour only, the last column with its south
  neighbour only, and the bottom-right pixel is never a boundary pixel; a
  full-frame mask therefore has no boundary. A boundary pixel is matched when
  the other mask's boundary has a pixel within a disk of radius
  ``ceil(0.008 * image diagonal)`` pixels (8 px at 854x480). Precision is 1
  when the prediction has no boundary, recall is 1 when the ground truth has
  none; F = 2PR / (P + R), and 0 when P + R = 0. Void pixels are removed from
  both masks before their boundaries are taken.

All functions take numpy ``bool`` arrays of shape ``(H, W)`` (one frame) or
``(T, H, W)`` (T frames) and return float64 arrays of the leading shape
(``()`` or ``(T,)``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from svac.metrics.validation import MetricInputError, check_bool_masks, check_same_shape

DAVIS_BOUNDARY_TOLERANCE = 0.008
"""Boundary match tolerance of DAVIS F, as a fraction of the image diagonal (Perazzi et al., CVPR 2016)."""


def boundary_radius(height: int, width: int, tolerance: float = DAVIS_BOUNDARY_TOLERANCE) -> int:
    """Radius in pixels of the disk used to match boundaries: ``ceil(tolerance * diagonal)``.

    Args:
        height: image height (pixels), > 0.
        width: image width (pixels), > 0.
        tolerance: fraction of the image diagonal, in (0, 1).

    Returns:
        The radius (pixels); 8 for 854x480 with the DAVIS tolerance 0.008.

    Raises:
        MetricInputError: when the size is not positive or ``tolerance`` is outside (0, 1).
    """
    if height <= 0 or width <= 0:
        raise MetricInputError(f"image size must be positive, got {height}x{width}")
    if not 0.0 < tolerance < 1.0:
        raise MetricInputError(f"boundary tolerance is a fraction of the diagonal in (0, 1), got {tolerance}")
    return int(math.ceil(tolerance * math.sqrt(height * height + width * width)))


def disk_structure(radius: int) -> np.ndarray:
    """Disk structuring element: every offset (dy, dx) with dx² + dy² <= radius².

    This is the definition of ``skimage.morphology.disk``.

    Args:
        radius: disk radius (pixels), >= 0.

    Returns:
        bool array of shape ``(2 * radius + 1, 2 * radius + 1)``.

    Raises:
        MetricInputError: when ``radius`` is negative.
    """
    if radius < 0:
        raise MetricInputError(f"disk radius must be >= 0, got {radius}")
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius


def boundary_map(masks: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundary of each mask, by the DAVIS convention (see the module docstring).

    Args:
        masks: bool ``(H, W)`` or ``(T, H, W)``.

    Returns:
        bool array of the same shape; True on boundary pixels.

    Raises:
        MetricInputError: when ``masks`` is not a bool array of 2 or 3 dimensions.
    """
    check_bool_masks("masks", masks)
    east = np.zeros_like(masks)
    south = np.zeros_like(masks)
    south_east = np.zeros_like(masks)
    east[..., :, :-1] = masks[..., :, 1:]
    south[..., :-1, :] = masks[..., 1:, :]
    south_east[..., :-1, :-1] = masks[..., 1:, 1:]
    boundary = (masks ^ east) | (masks ^ south) | (masks ^ south_east)
    boundary[..., -1, :] = masks[..., -1, :] ^ east[..., -1, :]
    boundary[..., :, -1] = masks[..., :, -1] ^ south[..., :, -1]
    boundary[..., -1, -1] = False
    return boundary


def region_similarity(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """DAVIS J: intersection over union per frame, 1 when both masks are empty.

    Args:
        pred: predicted masks, bool ``(H, W)`` or ``(T, H, W)``.
        gt: ground-truth masks, same shape and dtype.
        void: optional bool mask of the same shape; its pixels are excluded.

    Returns:
        float64 array of shape ``pred.shape[:-2]`` with values in [0, 1].

    Raises:
        MetricInputError: on non-bool input or when the shapes differ.
    """
    _check_inputs(pred, gt, void)
    both, either = pred & gt, pred | gt
    if void is not None:
        both &= ~void
        either &= ~void
    intersection = np.count_nonzero(both, axis=(-2, -1))
    union = np.count_nonzero(either, axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersection / union
    return np.where(union == 0, 1.0, iou)


def contour_accuracy(
    pred: np.ndarray,
    gt: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> np.ndarray:
    """DAVIS F: boundary F-measure per frame (see the module docstring for the conventions).

    Args:
        pred: predicted masks, bool ``(H, W)`` or ``(T, H, W)``.
        gt: ground-truth masks, same shape and dtype.
        void: optional bool mask of the same shape; void pixels are removed
            from both masks before their boundaries are taken.
        tolerance: match radius as a fraction of the image diagonal; the
            radius is ``ceil(tolerance * sqrt(H² + W²))`` pixels.

    Returns:
        float64 array of shape ``pred.shape[:-2]`` with values in [0, 1].

    Raises:
        MetricInputError: on non-bool input or when the shapes differ.
    """
    _check_inputs(pred, gt, void)
    if void is not None:
        pred = pred & ~void
        gt = gt & ~void
    height, width = gt.shape[-2:]
    radius = boundary_radius(height, width, tolerance)
    return boundary_f_measure(boundary_map(pred), boundary_map(gt), radius)


def boundary_f_measure(pred_boundary: np.ndarray, gt_boundary: np.ndarray, radius: int) -> np.ndarray:
    """F-measure of two boundary maps matched within a disk of ``radius`` pixels.

    The second half of :func:`contour_accuracy`, for callers that reuse
    boundary maps across many pairs (e.g. the unsupervised DAVIS matching).

    Args:
        pred_boundary: bool ``(H, W)`` or ``(T, H, W)``, from :func:`boundary_map`.
        gt_boundary: bool, same shape.
        radius: match radius (pixels), from :func:`boundary_radius`.

    Returns:
        float64 array of shape ``gt_boundary.shape[:-2]``.

    Raises:
        MetricInputError: on non-bool input, differing shapes or a negative radius.
    """
    check_bool_masks("pred_boundary", pred_boundary)
    check_bool_masks("gt_boundary", gt_boundary)
    check_same_shape(pred_boundary=pred_boundary, gt_boundary=gt_boundary)
    disk = disk_structure(radius)
    height, width = gt_boundary.shape[-2:]
    pred_frames = pred_boundary.reshape(-1, height, width)
    gt_frames = gt_boundary.reshape(-1, height, width)
    n_pred = np.count_nonzero(pred_frames, axis=(-2, -1))
    n_gt = np.count_nonzero(gt_frames, axis=(-2, -1))
    pred_matched = np.array(
        [_count_within(gt_b, pred_b, disk) for gt_b, pred_b in zip(gt_frames, pred_frames)], dtype=np.int64
    )
    gt_matched = np.array(
        [_count_within(pred_b, gt_b, disk) for gt_b, pred_b in zip(gt_frames, pred_frames)], dtype=np.int64
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        # An empty predicted boundary has precision 1 and an empty ground-truth
        # boundary recall 1; with those two rules the counts give the other cases
        # (empty prediction vs. non-empty GT: P=1, R=0; the reverse: P=0, R=1).
        precision = np.where(n_pred == 0, 1.0, pred_matched / n_pred)
        recall = np.where(n_gt == 0, 1.0, gt_matched / n_gt)
        denominator = precision + recall
        f_measure = np.where(denominator == 0, 0.0, 2 * precision * recall / denominator)
    return f_measure.reshape(gt_boundary.shape[:-2])


def _check_inputs(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None) -> None:
    check_bool_masks("pred", pred)
    check_bool_masks("gt", gt)
    if void is not None:
        check_bool_masks("void", void)
    check_same_shape(pred=pred, gt=gt, void=void)


def _count_within(source: np.ndarray, target: np.ndarray, disk: np.ndarray) -> int:
    """Number of True pixels of ``target`` (H, W) lying in ``source`` dilated by ``disk``.

    The dilation is evaluated only at ``target``'s pixels (``mask=target``:
    scipy leaves every other pixel unchanged, and those are dropped by the
    final AND), which gives the same count as a full-frame dilation at a
    fraction of the cost for one-pixel-wide boundaries.
    """
    if not target.any() or not source.any():
        return 0
    dilated = ndimage.binary_dilation(source, structure=disk, mask=target)
    return int(np.count_nonzero(dilated & target))
