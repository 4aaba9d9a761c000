"""HungarianSequenceMatcher against brute-force search and against per-pair loss formulas."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torchvision.ops import box_convert, generalized_box_iou, sigmoid_focal_loss

from svac.errors import ConfigError
from svac.heads.referformer import HungarianSequenceMatcher


def _brute_force(cost: torch.Tensor) -> tuple[tuple[int, ...], float]:
    """Best injective assignment target m -> query perm[m] over all permutations."""
    n, m = cost.shape
    best, best_total = None, math.inf
    for perm in itertools.permutations(range(n), m):
        total = sum(float(cost[perm[j], j]) for j in range(m))
        if total < best_total:
            best, best_total = perm, total
    assert best is not None
    return best, best_total


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_assignment_equals_brute_force_on_random_costs(n: int) -> None:
    generator = torch.Generator().manual_seed(100 + n)
    for m in range(1, n + 1):
        for _ in range(10):
            cost = torch.randn(n, m, generator=generator, dtype=torch.float64)
            queries, targets = HungarianSequenceMatcher.assign(cost)
            perm, total = _brute_force(cost)
            assert targets.tolist() == list(range(m))
            assert tuple(queries.tolist()) == perm
            assert math.isclose(float(cost[queries, targets].sum()), total, rel_tol=1e-12)


def test_assign_rejects_more_targets_than_queries_and_nan() -> None:
    with pytest.raises(ConfigError, match="cannot match"):
        HungarianSequenceMatcher.assign(torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="NaN"):
        HungarianSequenceMatcher.assign(torch.tensor([[float("nan")], [0.0]]))


def _random_case(generator: torch.Generator, t: int, n: int, m: int, size: int = 6):
    logits = torch.randn(t, n, generator=generator)
    centers = torch.rand(t, n, 2, generator=generator) * 0.6 + 0.2
    sizes = torch.rand(t, n, 2, generator=generator) * 0.3 + 0.05
    boxes = torch.cat([centers, sizes], dim=-1)
    mask_logits = torch.randn(t, n, size, size, generator=generator) * 2
    target_masks = torch.rand(m, t, size, size, generator=generator) > 0.6
    target_valid = torch.rand(m, t, generator=generator) > 0.3
    target_masks &= target_valid[:, :, None, None]
    target_valid &= target_masks.flatten(2).any(-1)
    t_centers = torch.rand(m, t, 2, generator=generator) * 0.6 + 0.2
    t_sizes = torch.rand(m, t, 2, generator=generator) * 0.3 + 0.05
    target_boxes = torch.cat([t_centers, t_sizes], dim=-1)
    return logits, boxes, mask_logits, target_boxes, target_masks, target_valid


def _pair_cost(logits, boxes, mask_logits, target_boxes, target_masks, target_valid, q, j) -> float:
    """Sequence cost of query q vs target j from the loss formulas, frame by frame."""
    terms = []
    for frame in range(logits.shape[0]):
        if not bool(target_valid[j, frame]):
            continue
        x = logits[frame, q : q + 1]
        focal_pos = sigmoid_focal_loss(x, torch.ones(1), alpha=0.25, gamma=2.0).item()
        focal_neg = sigmoid_focal_loss(x, torch.zeros(1), alpha=0.25, gamma=2.0).item()
        l1 = (boxes[frame, q] - target_boxes[j, frame]).abs().sum().item()
        giou = generalized_box_iou(
            box_convert(boxes[frame, q : q + 1], "cxcywh", "xyxy"),
            box_convert(target_boxes[j, frame : frame + 1], "cxcywh", "xyxy"),
        ).item()
        mlog = mask_logits[frame, q]
        tgt = target_masks[j, frame].float()
        mask_focal = sigmoid_focal_loss(mlog, tgt, alpha=0.25, gamma=2.0, reduction="mean").item()
        prob = mlog.sigmoid()
        dice = 1 - (2 * (prob * tgt).sum() + 1) / (prob.sum() + tgt.sum() + 1)
        terms.append(2 * (focal_pos - focal_neg) + 5 * l1 + 2 * (-giou) + 5 * dice.item() + 2 * mask_focal)
    return sum(terms) / len(terms) if terms else 0.0


def test_cost_matrix_equals_frame_averaged_loss_formulas() -> None:
    generator = torch.Generator().manual_seed(7)
    matcher = HungarianSequenceMatcher()
    case = _random_case(generator, t=4, n=5, m=3)
    cost = matcher.cost_matrix(*case)
    assert cost.shape == (5, 3)
    for q in range(5):
        for j in range(3):
            expected = _pair_cost(*case, q, j)
            assert math.isclose(float(cost[q, j]), expected, rel_tol=1e-4, abs_tol=1e-5), (q, j)


def test_end_to_end_matching_equals_brute_force_over_sequences() -> None:
    generator = torch.Generator().manual_seed(11)
    matcher = HungarianSequenceMatcher()
    for n in range(1, 6):
        for m in range(1, n + 1):
            case = _random_case(generator, t=3, n=n, m=m)
            match = matcher(*case)
            brute_cost = torch.tensor(
                [[_pair_cost(*case, q, j) for j in range(m)] for q in range(n)], dtype=torch.float64
            )
            perm, _ = _brute_force(brute_cost)
            assert tuple(match.query_indices.tolist()) == perm


def test_absent_frames_add_no_cost() -> None:
    generator = torch.Generator().manual_seed(5)
    matcher = HungarianSequenceMatcher()
    logits, boxes, mask_logits, target_boxes, target_masks, _ = _random_case(generator, t=3, n=4, m=1)
    target_masks[:, 1] = False
    target_masks[:, 0, 0, 0] = True
    target_masks[:, 2, 0, 0] = True
    valid = torch.tensor([[True, False, True]])
    cost = matcher.cost_matrix(logits, boxes, mask_logits, target_boxes, target_masks, valid)
    # changing the predictions on the absent frame does not change the cost
    logits2, boxes2, masks2 = logits.clone(), boxes.clone(), mask_logits.clone()
    logits2[1] += 5.0
    boxes2[1] = torch.rand(4, 4, generator=generator) * 0.5 + 0.1
    masks2[1] *= -3.0
    cost2 = matcher.cost_matrix(logits2, boxes2, masks2, target_boxes, target_masks, valid)
    torch.testing.assert_close(cost, cost2)
    # a target absent in every frame costs nothing with any query
    none_visible = matcher.cost_matrix(
        logits, boxes, mask_logits, target_boxes, torch.zeros_like(target_masks), torch.zeros_like(valid)
    )
    assert torch.equal(none_visible, torch.zeros(4, 1))


def test_cost_matrix_rejects_mismatched_shapes() -> None:
    generator = torch.Generator().manual_seed(3)
    logits, boxes, mask_logits, target_boxes, target_masks, valid = _random_case(generator, t=3, n=2, m=1)
    with pytest.raises(ConfigError, match="target shapes"):
        HungarianSequenceMatcher().cost_matrix(logits, boxes, mask_logits, target_boxes[:, :2], target_masks, valid)
    with pytest.raises(ConfigError, match="mask sizes"):
        HungarianSequenceMatcher().cost_matrix(
            logits, boxes, mask_logits[..., :4], target_boxes, target_masks, valid
        )
