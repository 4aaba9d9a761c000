"""A2D-Sentences and JHMDB-Sentences scores: P@K, overall IoU, mean IoU and COCO mask mAP.

Both benchmarks score one annotated frame per (video, frame, expression)
sample; the protocol is the same for the two.

Sources: Gavrilyuk et al., "Actor and Action Video Segmentation from a
Sentence", CVPR 2018, experiments section "Evaluation metrics" (overall IoU,
mean IoU, precision@K); Botach et al., "End-to-End Referring Video Object
Segmentation with Multimodal Transformers" (MTTR), CVPR 2022, experiments
section (mAP over IoU 0.50:0.05:0.95 with the COCO API, category-agnostic),
the protocol ReferFormer and later methods report.

* **IoU** of a sample, as the reference computes it (MTTR ``metrics.py``,
  copied into ReferFormer ``datasets/a2d_eval.py``, ``compute_mask_iou``):
  float32 ``(I + 1e-6) / (U + 1e-6)`` with I, U the pixel counts of
  intersection and union. The epsilon and the float32 rounding decide exact
  ties at the thresholds: 60 / 100 gives 0.6000000238 and 4000 / 5000 gives
  0.8000000119 (counted at 0.6 and 0.8), 70 / 100 gives 0.6999999881 (not
  counted at 0.7), 50 / 100 gives 0.5 (not counted); on small unions the
  epsilon lifts every exact tie above its threshold (1 / 2 gives
  0.5000002384, 3 / 5 gives 0.6000000834, 9 / 10 gives 0.9000000358). An
  empty mask on an empty ground truth scores 1.
* **P@K**, K in 0.5, 0.6, 0.7, 0.8, 0.9: fraction of samples whose IoU (as
  above) is strictly greater than K. The sample's mask is its highest-scoring
  prediction (on equal scores the last one given, as the reference's stable
  sort by score followed by taking the last element does); a sample without
  predictions counts as an empty mask (the reference needs one per sample).
* **overall IoU**: total intersection over total union of those masks
  (pixels, exact; 1 when every mask is empty, where the reference divides by 0).
* **mean IoU**: mean of the per-sample IoU (as above).
* **mAP** 0.50:0.95 (and AP50, AP75, AP small / medium / large): COCO
  ``COCOeval`` with ``iouType="segm"`` and ``useCats=0`` over *all* scored
  predictions, ground truths and detections encoded as COCO RLE, each image
  under its ``sample_id``. COCOeval orders images by id, and with equal
  scores across images that order decides the precision-recall curve; the
  A2D-Sentences reader gives MTTR's ids (``v_<video>_f_<frame>_i_<instance>``),
  so ties break as in the reference (ReferFormer ``engine.evaluate_a2d``).

Checked against ReferFormer ``datasets/a2d_eval.py`` and its COCOeval call
(wjn922/ReferFormer 06fc218f) on hand-made edge cases (exact ties at every K,
empty masks, full frames, 1x1 images, equal scores): every number equal.
The float32 counts are exact up to 2**24 pixels per frame.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from svac.metrics.iou import intersection_and_union, ratio_or_empty
from svac.metrics.validation import MetricInputError, check_bool_masks, check_same_shape

PRECISION_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
"""IoU thresholds of P@K (0.5:0.1:0.9); a sample counts when its IoU is strictly greater."""

IOU_EPSILON = 1e-6
"""Added, in float32, to intersection and union of every sample's IoU (MTTR / ReferFormer ``compute_mask_iou``)."""

COCO_CATEGORY_ID = 1
"""The single category every mask gets (the evaluation is category-agnostic)."""

COCO_SUMMARY_STATS = 6
"""COCOeval.stats entries kept: mAP, AP50, AP75, AP small, AP medium, AP large."""


@dataclass(frozen=True)
class ScoredMask:
    """One predicted mask and its confidence.

    Attributes:
        mask: bool ``(H, W)``.
        score: confidence (higher is more confident), a finite float.
    """

    mask: np.ndarray
    score: float


@dataclass(frozen=True)
class A2DSample:
    """One evaluated sample: a ground-truth mask and the predictions for it.

    Attributes:
        sample_id: unique id, also the sample's COCO image id (COCOeval orders images by
            it, which breaks score ties for mAP); svac's A2D / JHMDB tasks use MTTR's ids.
        gt: bool ``(H, W)`` ground-truth mask of the referred actor.
        predictions: scored predicted masks of the same size (may be empty).
    """

    sample_id: str
    gt: np.ndarray
    predictions: tuple[ScoredMask, ...]


@dataclass(frozen=True)
class A2DResult:
    """A2D / JHMDB-Sentences scores (fractions in [0, 1]).

    Attributes:
        precision_at: ``((0.5, P@0.5), (0.6, P@0.6), ...)``.
        overall_iou: total intersection / total union.
        mean_iou: mean per-sample IoU.
        map_50_95: COCO mAP over IoU 0.50:0.05:0.95 (0 when there is no prediction).
        ap_50, ap_75: COCO AP at IoU 0.5 and 0.75.
        ap_small, ap_medium, ap_large: COCO mAP by ground-truth area
            (-1 where no ground truth falls in the range, as COCO reports).
        n_samples: number of samples.
    """

    precision_at: tuple[tuple[float, float], ...]
    overall_iou: float
    mean_iou: float
    map_50_95: float
    ap_50: float
    ap_75: float
    ap_small: float
    ap_medium: float
    ap_large: float
    n_samples: int

    def precision(self, threshold: float) -> float:
        """P@``threshold`` for one of :data:`PRECISION_THRESHOLDS`.

        Raises:
            KeyError: for another threshold.
        """
        for k, value in self.precision_at:
            if k == threshold:
                return value
        raise KeyError(f"no precision at {threshold}; available: {[k for k, _ in self.precision_at]}")


def a2d_sentences_scores(samples: Sequence[A2DSample]) -> A2DResult:
    """Score A2D-Sentences or JHMDB-Sentences samples (see the module docstring).

    Args:
        samples: the evaluated samples; ids must be unique.

    Returns:
        The :class:`A2DResult`.

    Raises:
        MetricInputError: when there is no sample, an id repeats, a mask is not
            a 2-D bool array, a prediction's size differs from its ground truth,
            or a score is not finite.
    """
    if not samples:
        raise MetricInputError("A2D / JHMDB-Sentences scores need at least one sample")
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        raise MetricInputError("sample ids repeat; each sample must be given once")
    total_intersection = total_union = 0
    ious: list[float] = []
    for sample in samples:
        _check_sample(sample)
        best = _best_prediction(sample)
        pred = best.mask if best is not None else np.zeros_like(sample.gt)
        intersection, union = intersection_and_union(pred, sample.gt)
        total_intersection += intersection
        total_union += union
        ious.append(reference_iou(intersection, union))
    iou_array = np.array(ious, dtype=np.float64)
    precision_at = tuple((k, float(np.mean(iou_array > k))) for k in PRECISION_THRESHOLDS)
    stats = _coco_mask_ap(samples)
    return A2DResult(
        precision_at=precision_at,
        overall_iou=ratio_or_empty(total_intersection, total_union),
        mean_iou=float(np.mean(iou_array)),
        map_50_95=stats[0],
        ap_50=stats[1],
        ap_75=stats[2],
        ap_small=stats[3],
        ap_medium=stats[4],
        ap_large=stats[5],
        n_samples=len(samples),
    )


def reference_iou(intersection: int, union: int) -> float:
    """A sample's IoU as A2D / JHMDB-Sentences evaluation computes it: float32 ``(I + 1e-6) / (U + 1e-6)``.

    Source: MTTR ``metrics.py`` / ReferFormer ``datasets/a2d_eval.py``, ``compute_mask_iou``
    (float32 tensors, ``EPS = 1e-6``). Exact for counts up to 2**24 pixels.

    Args:
        intersection: pixels in both masks (>= 0).
        union: pixels in either mask (>= intersection).

    Returns:
        The float32 ratio as a Python float; 1.0 when both counts are 0.
    """
    epsilon = np.float32(IOU_EPSILON)
    return float((np.float32(intersection) + epsilon) / (np.float32(union) + epsilon))


def _check_sample(sample: A2DSample) -> None:
    check_bool_masks(f"gt of sample {sample.sample_id}", sample.gt, ndims=(2,))
    for index, prediction in enumerate(sample.predictions):
        name = f"prediction {index} of sample {sample.sample_id}"
        check_bool_masks(name, prediction.mask, ndims=(2,))
        try:
            check_same_shape(prediction=prediction.mask, gt=sample.gt)
        except MetricInputError as error:
            raise MetricInputError(f"{name}: {error}") from error
        if not np.isfinite(prediction.score):
            raise MetricInputError(f"{name} has a non-finite score {prediction.score}")


def _best_prediction(sample: A2DSample) -> ScoredMask | None:
    if not sample.predictions:
        return None
    return sorted(sample.predictions, key=lambda p: p.score)[-1]


def _coco_mask_ap(samples: Sequence[A2DSample]) -> tuple[float, ...]:
    """COCOeval (segm, useCats=0) summary stats [0:6] over all samples' scored predictions."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def encode(mask: np.ndarray) -> dict:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        return rle

    images, annotations, detections = [], [], []
    for annotation_id, sample in enumerate(samples, start=1):
        image_id = sample.sample_id
        height, width = sample.gt.shape
        images.append({"id": image_id, "height": height, "width": width})
        rle = encode(sample.gt)
        annotations.append(
            {
                "id": annotation_id,
                "image_id": image_id,
                "category_id": COCO_CATEGORY_ID,
                "segmentation": rle,
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": 0,
            }
        )
        detections.extend(
            {
                "image_id": image_id,
                "category_id": COCO_CATEGORY_ID,
                "segmentation": encode(p.mask),
                "score": float(p.score),
            }
            for p in sample.predictions
        )
    if not detections:
        return (0.0,) * COCO_SUMMARY_STATS
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": COCO_CATEGORY_ID, "name": "referred"}],
        }
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        evaluator = COCOeval(coco_gt, coco_dt, iouType="segm")
        evaluator.params.useCats = 0
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return tuple(float(v) for v in evaluator.stats[:COCO_SUMMARY_STATS])
