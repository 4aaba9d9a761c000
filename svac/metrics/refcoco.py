"""RefCOCO / RefCOCO+ / RefCOCOg referring image segmentation scores: cIoU and gIoU.

Definitions (as reported by LISA, Lai et al., CVPR 2024, experiments section,
"Evaluation metrics", and the referring-segmentation literature since Yu et al. 2016):

* **cIoU** (cumulative / overall IoU): total intersection over total union,
  summed over all samples (pixels).
* **gIoU** (generalized IoU): mean over samples of the per-sample IoU.

Edge cases follow LISA's evaluation code (``train_ds.py`` ``validate`` with
``utils.intersectionAndUnionGPU``; dvlab-research/LISA 3cb2d430):

* the IoU of an empty prediction on an empty ground truth is 1 (LISA adds 1
  when the union is 0), so such a sample counts 1 in gIoU;
* the cIoU of a set whose total union is 0 (every mask empty) is **0**: LISA
  divides the summed intersection by the summed union plus 1e-10, which is
  0 / 1e-10 = 0 (:data:`EMPTY_SET_CIOU`).

What differs, on purpose: LISA adds 1e-5 to each sample's union for gIoU and
sums in float32; this module uses exact ratios in float64. Measured on an
edge-case set (1x1 images, empty and full masks, exact ties) the largest
difference is 1e-5 on a single sample's IoU (a 1-pixel hit: LISA 1 / (1 +
1e-5)), so at most 1e-5 on gIoU, and float32 rounding on cIoU (at most 3e-8
there; LISA's float32 sums over a whole split round further).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from svac.metrics.iou import intersection_and_union, ratio_or_empty
from svac.metrics.validation import MetricInputError, check_bool_masks

EMPTY_SET_CIOU = 0.0
"""cIoU of a set whose total union is 0 (LISA: summed intersection / (summed union + 1e-10) = 0)."""


@dataclass(frozen=True)
class RefCocoResult:
    """cIoU and gIoU of a set of samples.

    Attributes:
        ciou: total intersection / total union, in [0, 1]; 0 when every mask is empty
            (:data:`EMPTY_SET_CIOU`, as LISA).
        giou: mean per-sample IoU, in [0, 1].
        n_samples: number of samples.
        total_intersection: summed intersections (pixels).
        total_union: summed unions (pixels).
    """

    ciou: float
    giou: float
    n_samples: int
    total_intersection: int
    total_union: int


def refcoco_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> RefCocoResult:
    """cIoU and gIoU over ``(prediction, ground truth)`` pairs (may be a generator, read once).

    Args:
        pairs: each a predicted and a ground-truth mask, bool ``(H, W)`` of the
            same size (sizes may differ between samples).

    Returns:
        The :class:`RefCocoResult`.

    Raises:
        MetricInputError: when there is no pair, a mask is not a 2-D bool
            array, or a prediction's size differs from its ground truth.
    """
    total_intersection = total_union = 0
    sample_ious: list[float] = []
    for index, (pred, gt) in enumerate(pairs):
        check_bool_masks(f"pred[{index}]", pred, ndims=(2,))
        check_bool_masks(f"gt[{index}]", gt, ndims=(2,))
        try:
            intersection, union = intersection_and_union(pred, gt)
        except MetricInputError as error:
            raise MetricInputError(f"sample {index}: {error}") from error
        total_intersection += intersection
        total_union += union
        sample_ious.append(ratio_or_empty(intersection, union))
    if not sample_ious:
        raise MetricInputError("refcoco_scores needs at least one (prediction, ground truth) pair")
    return RefCocoResult(
        ciou=total_intersection / total_union if total_union else EMPTY_SET_CIOU,
        giou=float(np.mean(sample_ious)),
        n_samples=len(sample_ious),
        total_intersection=total_intersection,
        total_union=total_union,
    )
