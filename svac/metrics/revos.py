"""ReVOS reasoning video segmentation scores: J, F, J&F, A and R per expression type.

Sources: VISA (Yan et al., "VISA: Reasoning Video Object Segmentation via
Large Language Models", ECCV 2024; the ReVOS benchmark is introduced in the
paper's benchmark section and scored in its experiments section) and its
official ReVOS evaluation script; the robustness score R comes from R²-VOS
(Li et al., "Robust Referring Video Object Segmentation with Cyclic
Structural Consensus", ICCV 2023).

What is computed, per expression, over all frames of its video (bool masks):

* **J**, **F**: mean over frames of DAVIS region similarity and contour
  accuracy (:mod:`svac.metrics.davis`), as for MeViS.
* **A** (accuracy): mean over frames of the pixel accuracy, the fraction of
  pixels where prediction and ground truth agree (``mean(pred == gt)``).
* **R** (robustness, R²-VOS): per frame ``max(1 - |pred ∧ ¬gt| / (|fg| + ε), 0)``
  with ``fg`` the union of the masks of *all* annotated objects of the video
  in that frame (ReVOS's ``mask_dict_foreground``) and ``ε = 1e-6`` (the
  official value; with it an empty foreground gives 1 without false
  positives and 0 with any), then the mean over frames. It measures how much
  the prediction spills outside the target, relative to the annotated
  foreground (hallucinated masks lower it).
* An expression without a prediction scores 0 on all four (official script).

Groups (ReVOS ``type_id``): 0 = referring, 1 = reasoning, 2 = no-target
("nan" in the script; expressions that refer to nothing). Per group,
J, F, A, R are means over the group's expressions and J&F = (J + F) / 2 of
those means. **Overall** is the mean of the referring and the reasoning group
scores (the official script's definition, not a mean over all expressions);
no-target expressions are reported as their own group and, as in the
official script, are not part of overall. When only one of the two groups
has expressions, overall equals that group (the official script would give
NaN).

No-target expressions (empty ``anno_id``) are scored against an all-empty
ground truth, as the official script does (it sums no mask for them):
predicting nothing gives J = F = A = R = 1.

The official script compares the uint8 sum of the referred objects' masks
with the prediction PNG's raw grey level for A and R; here both are bool
masks. The two agree when the PNGs hold 0 / 1, which is what svac's ReVOS
task writes (:data:`svac.evaluation.predictions.REVOS_FOREGROUND_VALUE`;
0 / 255 PNGs would score A and R far lower there). They still differ where
two *referred* objects of one expression overlap: the script's ground truth
is 2 on those pixels, so its A counts them wrong whatever the prediction and
its R's uint8 ``(1 - 2) * 1`` wraps to 255 false positives per predicted
pixel; here such pixels are simply foreground (measured on an edge-case set
with overlapping objects: A up to 0.035 and R up to 0.75 apart on those
expressions, identical everywhere else). Per-expression values are kept at
full precision unless ``official_rounding=True``, which rounds them to two
decimals in percent before averaging as the script does. All returned
scores are fractions in [0, 1] (the script reports percent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

import numpy as np

from svac.metrics.davis import DAVIS_BOUNDARY_TOLERANCE
from svac.metrics.mevis import MISSING_SCORE, video_j_f
from svac.metrics.validation import MetricInputError, check_bool_masks, check_same_shape

RevosType = Literal["referring", "reasoning", "no_target"]

REVOS_TYPE_BY_ID: Mapping[int, RevosType] = {0: "referring", 1: "reasoning", 2: "no_target"}
"""ReVOS ``type_id`` in ``meta_expressions`` -> expression type."""

REVOS_TYPES: tuple[RevosType, ...] = ("referring", "reasoning", "no_target")
OVERALL_TYPES: tuple[RevosType, ...] = ("referring", "reasoning")
"""The groups averaged into the overall score."""

REVOS_ROBUSTNESS_EPS = 1e-6
"""Added to the foreground area in R (official ReVOS script)."""

PERCENT = 100.0
OFFICIAL_DECIMALS = 2
"""Decimals (in percent) of the per-expression values in the official script."""


@dataclass(frozen=True)
class RevosExpression:
    """Inputs of one ReVOS expression (all bool ``(T, H, W)``, every frame of the video).

    Attributes:
        expression_type: ``"referring"``, ``"reasoning"`` or ``"no_target"``.
        pred: the predicted masks, or ``None`` when there is no prediction.
        gt: union of the masks of the referred objects (empty for no-target).
        foreground: union of the masks of every annotated object of the video.
    """

    expression_type: RevosType
    pred: np.ndarray | None
    gt: np.ndarray
    foreground: np.ndarray


@dataclass(frozen=True)
class RevosExpressionScore:
    """Scores of one expression (fractions in [0, 1]).

    Attributes:
        expression_id: the expression's id.
        expression_type: its group.
        j, f, a, r: mean J, F, pixel accuracy and robustness over frames.
        missing: True when there was no prediction (then all four are 0).
    """

    expression_id: str
    expression_type: RevosType
    j: float
    f: float
    a: float
    r: float
    missing: bool = False

    @property
    def jf(self) -> float:
        """``(j + f) / 2``."""
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class RevosGroupScores:
    """Scores of a group of expressions (fractions in [0, 1]).

    Attributes:
        j, f, a, r: means over the group (overall: mean of the two groups).
        jf: ``(j + f) / 2`` (overall: mean of the two groups' jf).
        n_expressions: number of expressions in the group(s).
    """

    j: float
    f: float
    jf: float
    a: float
    r: float
    n_expressions: int


@dataclass(frozen=True)
class RevosResult:
    """ReVOS scores: per group, overall, and per expression.

    Attributes:
        referring: group of ``type_id`` 0, or ``None`` when it has no expression.
        reasoning: group of ``type_id`` 1, or ``None``.
        overall: mean of the referring and reasoning groups (see the module docstring).
        no_target: group of ``type_id`` 2, or ``None``; not part of ``overall``.
        per_expression: every expression's scores, in input order.
    """

    referring: RevosGroupScores | None
    reasoning: RevosGroupScores | None
    overall: RevosGroupScores
    no_target: RevosGroupScores | None
    per_expression: tuple[RevosExpressionScore, ...]


def pixel_accuracy(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame fraction of pixels where ``pred`` equals ``gt`` (ReVOS "A").

    Args:
        pred: bool ``(T, H, W)``.
        gt: bool ``(T, H, W)``.

    Returns:
        float64 ``(T,)`` in [0, 1].

    Raises:
        MetricInputError: on non-bool input or differing shapes.
    """
    check_bool_masks("pred", pred, ndims=(3,))
    check_bool_masks("gt", gt, ndims=(3,))
    check_same_shape(pred=pred, gt=gt)
    return np.mean(pred == gt, axis=(1, 2))


def robustness(pred: np.ndarray, gt: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Per-frame R²-VOS robustness ``max(1 - |pred ∧ ¬gt| / (|foreground| + 1e-6), 0)`` (ReVOS "R").

    Args:
        pred: bool ``(T, H, W)``.
        gt: bool ``(T, H, W)``.
        foreground: bool ``(T, H, W)``, union of every annotated object of the video.

    Returns:
        float64 ``(T,)`` in [0, 1].

    Raises:
        MetricInputError: on non-bool input or differing shapes.
    """
    check_bool_masks("pred", pred, ndims=(3,))
    check_bool_masks("gt", gt, ndims=(3,))
    check_bool_masks("foreground", foreground, ndims=(3,))
    check_same_shape(pred=pred, gt=gt, foreground=foreground)
    false_positive = np.count_nonzero(pred & ~gt, axis=(1, 2))
    foreground_area = np.count_nonzero(foreground, axis=(1, 2))
    return np.maximum(1.0 - false_positive / (foreground_area + REVOS_ROBUSTNESS_EPS), 0.0)


def score_revos_expression(
    expression_id: str,
    expression: RevosExpression,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> RevosExpressionScore:
    """Score one ReVOS expression (see the module docstring).

    Raises:
        MetricInputError: for an unknown type, bad masks or a frame count of 0;
            the message names the expression.
    """
    kind = expression.expression_type
    if kind not in REVOS_TYPES:
        raise MetricInputError(f"expression {expression_id}: unknown ReVOS type {kind!r}; expected {REVOS_TYPES}")
    try:
        check_bool_masks("gt", expression.gt, ndims=(3,))
        check_bool_masks("foreground", expression.foreground, ndims=(3,))
        check_same_shape(gt=expression.gt, foreground=expression.foreground)
        if expression.pred is None:
            return RevosExpressionScore(
                expression_id, kind, MISSING_SCORE, MISSING_SCORE, MISSING_SCORE, MISSING_SCORE, missing=True
            )
        j, f = video_j_f(expression.pred, expression.gt, tolerance)
        a = float(np.mean(pixel_accuracy(expression.pred, expression.gt)))
        r = float(np.mean(robustness(expression.pred, expression.gt, expression.foreground)))
    except MetricInputError as error:
        raise MetricInputError(f"expression {expression_id}: {error}") from error
    return RevosExpressionScore(expression_id, kind, j, f, a, r)


def aggregate_revos(scores: Iterable[RevosExpressionScore], *, official_rounding: bool = False) -> RevosResult:
    """Group and overall ReVOS scores from per-expression scores.

    Args:
        scores: per-expression scores.
        official_rounding: round each expression's J, F, A, R to two decimals
            in percent before averaging, as the official script does.

    Raises:
        MetricInputError: when no expression is referring or reasoning, or an id repeats.
    """
    per_expression = tuple(scores)
    ids = [s.expression_id for s in per_expression]
    if len(set(ids)) != len(ids):
        raise MetricInputError("expression ids repeat; each expression must be scored once")
    groups = {kind: _group([s for s in per_expression if s.expression_type == kind], official_rounding)
              for kind in REVOS_TYPES}
    counted = [groups[kind] for kind in OVERALL_TYPES if groups[kind] is not None]
    if not counted:
        raise MetricInputError("ReVOS scores need at least one referring or reasoning expression")
    overall = RevosGroupScores(
        j=float(np.mean([g.j for g in counted])),
        f=float(np.mean([g.f for g in counted])),
        jf=float(np.mean([g.jf for g in counted])),
        a=float(np.mean([g.a for g in counted])),
        r=float(np.mean([g.r for g in counted])),
        n_expressions=sum(g.n_expressions for g in counted),
    )
    return RevosResult(
        referring=groups["referring"],
        reasoning=groups["reasoning"],
        overall=overall,
        no_target=groups["no_target"],
        per_expression=per_expression,
    )


def revos_scores(
    expressions: Mapping[str, RevosExpression],
    *,
    official_rounding: bool = False,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> RevosResult:
    """ReVOS scores of a set of expressions (expression id -> :class:`RevosExpression`).

    Values are read one at a time, so a lazy mapping keeps memory low.

    Raises:
        MetricInputError: as :func:`score_revos_expression` and :func:`aggregate_revos`.
    """
    return aggregate_revos(
        (score_revos_expression(exp_id, expression, tolerance) for exp_id, expression in expressions.items()),
        official_rounding=official_rounding,
    )


def _group(members: list[RevosExpressionScore], official_rounding: bool) -> RevosGroupScores | None:
    if not members:
        return None

    def average(values: list[float]) -> float:
        if official_rounding:
            return float(np.mean([round(PERCENT * v, OFFICIAL_DECIMALS) for v in values])) / PERCENT
        return float(np.mean(values))

    j = average([m.j for m in members])
    f = average([m.f for m in members])
    return RevosGroupScores(
        j=j,
        f=f,
        jf=(j + f) / 2,
        a=average([m.a for m in members]),
        r=average([m.r for m in members]),
        n_expressions=len(members),
    )
