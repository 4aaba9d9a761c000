"""MeViS referring video segmentation scores: J, F and J&F per expression and over the dataset.

Protocol (Ding et al., "MeViS: A Large-scale Benchmark for Video Segmentation
with Motion Expressions", ICCV 2023, experiments section, "Evaluation
metrics"; and the official MeViS evaluation script):

* The ground truth of an expression is the union of the masks of all the
  objects (``anno_id``) it refers to; the dataset reader builds that union.
* Every frame of the video is evaluated (no frame is dropped).
* Per expression: J = mean over frames of the DAVIS region similarity, F =
  mean over frames of the DAVIS contour accuracy (same boundary definition
  and tolerance as DAVIS, see :mod:`svac.metrics.davis`). A frame where both
  masks are empty scores J = 1 and F = 1.
* A missing prediction (the official script: the video's folder is absent)
  scores J = F = 0.
* Dataset: J = mean of the per-expression J, F = mean of the per-expression F,
  and J&F = (J + F) / 2, computed from those two means as the official script
  does (equal to the mean of per-expression (J + F) / 2 up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from svac.metrics.davis import DAVIS_BOUNDARY_TOLERANCE, contour_accuracy, region_similarity
from svac.metrics.validation import MetricInputError, check_bool_masks, check_same_shape

MISSING_SCORE = 0.0
"""J and F of an expression without a prediction (official MeViS / ReVOS scripts)."""


@dataclass(frozen=True)
class ExpressionScore:
    """J and F of one expression, each averaged over all frames of the video.

    Attributes:
        expression_id: the expression's id (any unique string, e.g. ``"<video>_<exp_id>"``).
        j: mean region similarity, in [0, 1].
        f: mean contour accuracy, in [0, 1].
        missing: True when there was no prediction (then j = f = 0).
    """

    expression_id: str
    j: float
    f: float
    missing: bool = False

    @property
    def jf(self) -> float:
        """``(j + f) / 2``."""
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class MevisResult:
    """Dataset-level MeViS scores (unitless, in [0, 1]).

    Attributes:
        j: mean over expressions of J.
        f: mean over expressions of F.
        jf: ``(j + f) / 2``.
        n_expressions: number of expressions.
        n_missing: how many of them had no prediction.
        per_expression: the scores of each expression, in input order.
    """

    j: float
    f: float
    jf: float
    n_expressions: int
    n_missing: int
    per_expression: tuple[ExpressionScore, ...]


def video_j_f(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = DAVIS_BOUNDARY_TOLERANCE
) -> tuple[float, float]:
    """Mean over frames of DAVIS J and F for one expression.

    Args:
        pred: predicted masks, bool ``(T, H, W)``.
        gt: ground-truth masks (union of the referred objects), bool ``(T, H, W)``.
        tolerance: boundary tolerance as a fraction of the image diagonal.

    Returns:
        ``(J, F)``, each in [0, 1].

    Raises:
        MetricInputError: on non-bool input, when the shapes differ, or when T = 0.
    """
    check_bool_masks("pred", pred, ndims=(3,))
    check_bool_masks("gt", gt, ndims=(3,))
    check_same_shape(pred=pred, gt=gt)
    if gt.shape[0] == 0:
        raise MetricInputError("an expression needs at least one frame")
    return float(np.mean(region_similarity(pred, gt))), float(np.mean(contour_accuracy(pred, gt, None, tolerance)))


def score_expression(
    expression_id: str,
    pred: np.ndarray | None,
    gt: np.ndarray,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> ExpressionScore:
    """Score one expression; ``pred=None`` (no prediction) scores 0.

    Args:
        expression_id: the expression's id.
        pred: bool ``(T, H, W)`` or ``None``.
        gt: bool ``(T, H, W)``.
        tolerance: boundary tolerance as a fraction of the image diagonal.

    Raises:
        MetricInputError: as :func:`video_j_f`, with the expression id in the message.
    """
    if pred is None:
        check_bool_masks("gt", gt, ndims=(3,))
        return ExpressionScore(expression_id, MISSING_SCORE, MISSING_SCORE, missing=True)
    try:
        j, f = video_j_f(pred, gt, tolerance)
    except MetricInputError as error:
        raise MetricInputError(f"expression {expression_id}: {error}") from error
    return ExpressionScore(expression_id, j, f)


def aggregate_mevis(scores: Iterable[ExpressionScore]) -> MevisResult:
    """Dataset scores from per-expression scores (J, F means; J&F = (J + F) / 2).

    Raises:
        MetricInputError: when there is no expression or an id repeats.
    """
    per_expression = tuple(scores)
    if not per_expression:
        raise MetricInputError("MeViS scores need at least one expression")
    ids = [s.expression_id for s in per_expression]
    if len(set(ids)) != len(ids):
        raise MetricInputError("expression ids repeat; each expression must be scored once")
    j = float(np.mean([s.j for s in per_expression]))
    f = float(np.mean([s.f for s in per_expression]))
    return MevisResult(
        j=j,
        f=f,
        jf=(j + f) / 2,
        n_expressions=len(per_expression),
        n_missing=sum(s.missing for s in per_expression),
        per_expression=per_expression,
    )


def mevis_scores(
    expressions: Mapping[str, tuple[np.ndarray | None, np.ndarray]],
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> MevisResult:
    """MeViS scores of a set of expressions.

    Args:
        expressions: expression id -> ``(prediction or None, ground truth)``,
            each a bool ``(T, H, W)`` array over all frames of the video.
            Values are read one at a time, so a lazy mapping keeps memory low.
        tolerance: boundary tolerance as a fraction of the image diagonal.

    Returns:
        The :class:`MevisResult`.

    Raises:
        MetricInputError: when there is no expression, or on bad masks (the message names the expression).
    """
    return aggregate_mevis(
        score_expression(exp_id, pred, gt, tolerance) for exp_id, (pred, gt) in expressions.items()
    )
