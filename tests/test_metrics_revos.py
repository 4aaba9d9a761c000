"""Hand-computed ReVOS scores: A, R, groups, overall = mean of the two groups, rounding."""

from __future__ import annotations

import numpy as np
import pytest

from svac.metrics.revos import (
    REVOS_ROBUSTNESS_EPS,
    REVOS_TYPE_BY_ID,
    RevosExpression,
    RevosExpressionScore,
    aggregate_revos,
    pixel_accuracy,
    revos_scores,
    robustness,
)
from svac.metrics.validation import MetricInputError

SIZE = 4


def stack(*frames: list[tuple[int, int]]) -> np.ndarray:
    out = np.zeros((len(frames), SIZE, SIZE), dtype=bool)
    for t, pixels in enumerate(frames):
        for y, x in pixels:
            out[t, y, x] = True
    return out


def test_pixel_accuracy_and_robustness_hand_computed() -> None:
    gt = stack([(0, 0), (0, 1)])
    pred = stack([(0, 0), (0, 1), (3, 2), (3, 3)])  # 2 false positives
    foreground = stack([(0, 0), (0, 1), (1, 0), (1, 1)])  # 4 annotated pixels in the frame
    assert pixel_accuracy(pred, gt).tolist() == [14 / 16]
    assert robustness(pred, gt, foreground).tolist() == [1 - 2 / (4 + REVOS_ROBUSTNESS_EPS)]
    assert robustness(pred, gt, foreground)[0] == pytest.approx(0.5, abs=1e-6)


def test_robustness_edge_cases() -> None:
    empty = stack([])
    one = stack([(2, 2)])
    full = np.ones((1, SIZE, SIZE), dtype=bool)
    assert robustness(empty, empty, empty).tolist() == [1.0]  # nothing predicted, nothing annotated
    assert robustness(one, empty, empty).tolist() == [0.0]  # a hallucinated pixel on an empty frame
    assert robustness(full, empty, one).tolist() == [0.0]  # clamped at 0 (16 false positives vs 1 px)
    assert robustness(full, full, full).tolist() == [1.0]
    assert pixel_accuracy(full, empty).tolist() == [0.0]
    assert pixel_accuracy(empty, empty).tolist() == [1.0]


def expression(kind: str, pred: np.ndarray | None, gt: np.ndarray) -> RevosExpression:
    return RevosExpression(kind, pred, gt, foreground=gt.copy())  # type: ignore[arg-type]


def test_groups_and_overall_is_mean_of_groups() -> None:
    hit = stack([(1, 1)])
    miss = stack([(3, 3)])
    result = revos_scores(
        {
            "a": expression("referring", hit.copy(), hit),  # J = F = A = R = 1
            "b": expression("referring", miss.copy(), hit),  # J = 0
            "c": expression("reasoning", hit.copy(), hit),  # J = 1
            "d": expression("no_target", stack([]), stack([])),
            "e": expression("reasoning", None, hit),  # missing: all 0
        }
    )
    assert result.referring is not None and result.reasoning is not None and result.no_target is not None
    assert result.referring.j == 0.5 and result.referring.n_expressions == 2
    assert result.reasoning.j == 0.5 and result.reasoning.a == 0.5
    assert result.no_target.j == 1.0 and result.no_target.n_expressions == 1
    assert result.overall.j == 0.5 and result.overall.n_expressions == 4
    by_id = {s.expression_id: s for s in result.per_expression}
    # b: 2 differing pixels of 16; 1 false-positive px against a 1 px foreground
    # (the official epsilon leaves R at about 1e-6 instead of 0)
    assert by_id["b"].a == 14 / 16 and by_id["b"].r == 1 - 1 / (1 + REVOS_ROBUSTNESS_EPS)
    assert by_id["e"].missing and (by_id["e"].j, by_id["e"].f, by_id["e"].a, by_id["e"].r) == (0, 0, 0, 0)
    assert result.referring.jf == (result.referring.j + result.referring.f) / 2


def test_overall_differs_from_the_mean_over_expressions() -> None:
    scores = [
        RevosExpressionScore("r1", "referring", 1.0, 1.0, 1.0, 1.0),
        RevosExpressionScore("r2", "referring", 0.0, 0.0, 1.0, 1.0),
        RevosExpressionScore("s1", "reasoning", 1.0, 1.0, 1.0, 1.0),
    ]
    result = aggregate_revos(scores)
    assert result.overall.j == 0.75  # (0.5 + 1.0) / 2, not 2 / 3
    only_reasoning = aggregate_revos(scores[2:])
    assert only_reasoning.referring is None and only_reasoning.overall.j == 1.0


def test_official_rounding() -> None:
    scores = [RevosExpressionScore("r", "referring", 0.123456, 0.5, 0.99999, 0.0)]
    exact = aggregate_revos(scores)
    rounded = aggregate_revos(scores, official_rounding=True)
    assert exact.overall.j == 0.123456
    assert rounded.overall.j == pytest.approx(0.1235, abs=1e-15)
    assert rounded.overall.a == pytest.approx(1.0, abs=1e-15)


def test_type_ids_and_bad_inputs() -> None:
    assert [REVOS_TYPE_BY_ID[i] for i in (0, 1, 2)] == ["referring", "reasoning", "no_target"]
    hit = stack([(1, 1)])
    with pytest.raises(MetricInputError, match="unknown ReVOS type"):
        revos_scores({"x": expression("other", hit, hit)})
    with pytest.raises(MetricInputError, match="expression y.*sizes differ"):
        revos_scores({"y": expression("referring", np.zeros((1, SIZE, SIZE + 1), dtype=bool), hit)})
    with pytest.raises(MetricInputError, match="referring or reasoning"):
        revos_scores({"z": expression("no_target", hit, hit)})
