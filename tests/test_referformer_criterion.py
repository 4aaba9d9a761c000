"""ReferFormerCriterion: hand-computed multi-granularity losses, absent frames, target checks, mask boxes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_convert, generalized_box_iou, sigmoid_focal_loss

from svac.errors import AnnotationError, ConfigError
from svac.heads.referformer import (
    ReferFormerConfig,
    ReferFormerCriterion,
    ReferFormerLayerOutput,
    ReferFormerOutput,
    ReferFormerTarget,
    masks_to_boxes_normalized,
)
from svac.heads.referformer.losses import multi_granularity_mask_losses

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
ALPHA, GAMMA = 0.25, 2.0


@pytest.fixture
def davis_root() -> Path:
    if not (DAVIS / "Annotations" / "480p").is_dir():
        pytest.fail(f"DAVIS-2016 test data missing: expected {DAVIS}/Annotations/480p (see the project README)")
    return DAVIS


# ---------------------------------------------------------------- hand-computed multi-granularity


def _scalar_focal(x: float, t: float) -> float:
    p = 1 / (1 + math.exp(-x))
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    a_t = ALPHA * t + (1 - ALPHA) * (1 - t)
    return a_t * ce * (1 - p_t) ** GAMMA


def _scalar_pool(grid: list[list[float]], s: int) -> list[list[float]]:
    n = len(grid) // s
    return [
        [sum(grid[i * s + a][j * s + b] for a in range(s) for b in range(s)) / (s * s) for j in range(n)]
        for i in range(n)
    ]


def _scalar_losses(logits: list[list[float]], target: list[list[float]], scales) -> tuple[float, float]:
    focal_terms, dice_terms = [], []
    for s in scales:
        lg, tg = _scalar_pool(logits, s), _scalar_pool(target, s)
        cells = [(lg[i][j], tg[i][j]) for i in range(len(lg)) for j in range(len(lg))]
        focal_terms.append(sum(_scalar_focal(x, t) for x, t in cells) / len(cells))
        probs = [(1 / (1 + math.exp(-x)), t) for x, t in cells]
        inter = sum(p * t for p, t in probs)
        dice_terms.append(1 - (2 * inter + 1) / (sum(p for p, _ in probs) + sum(t for _, t in probs) + 1))
    return sum(focal_terms) / len(scales), sum(dice_terms) / len(scales)


def test_multi_granularity_zero_logits_literal_values() -> None:
    # logits 0 (p = 1/2) on 4x4, target = top-left 2x2 block; scales 1, 2, 4
    logits = torch.zeros(1, 4, 4, dtype=torch.float64)
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, :2, :2] = True
    focal, dice = multi_granularity_mask_losses(logits, target, (1, 2, 4), ALPHA, GAMMA)
    # focal: every scale gives 0.15625 ln 2 (worked out by hand: e.g. scale 1 = (4*0.0625 + 12*0.1875) ln2 / 16)
    assert math.isclose(float(focal[0]), 0.15625 * math.log(2), rel_tol=1e-12)
    # dice: scale 1 -> 8/13, scale 2 -> 1/2, scale 4 -> 2/7
    assert math.isclose(float(dice[0]), (8 / 13 + 1 / 2 + 2 / 7) / 3, rel_tol=1e-12)


def test_multi_granularity_matches_scalar_hand_computation() -> None:
    logits_grid = [
        [2.0, 1.5, -1.0, -2.0],
        [0.5, 3.0, -0.5, -1.5],
        [-1.0, 0.0, 1.0, -3.0],
        [-2.5, -1.0, 0.5, 0.2],
    ]
    target_grid = [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    logits = torch.tensor([logits_grid], dtype=torch.float64)
    target = torch.tensor([target_grid], dtype=torch.bool)
    for scales in [(1,), (1, 2), (1, 2, 4)]:
        focal, dice = multi_granularity_mask_losses(logits, target, scales, ALPHA, GAMMA)
        exp_focal, exp_dice = _scalar_losses(logits_grid, [[float(v) for v in r] for r in target_grid], scales)
        assert math.isclose(float(focal[0]), exp_focal, rel_tol=1e-10)
        assert math.isclose(float(dice[0]), exp_dice, rel_tol=1e-10)


def test_multi_granularity_rejects_indivisible_scale() -> None:
    with pytest.raises(ConfigError, match="does not divide"):
        multi_granularity_mask_losses(torch.zeros(1, 6, 6), torch.zeros(1, 6, 6), (1, 4), ALPHA, GAMMA)


# ---------------------------------------------------------------- criterion on a hand-made output


def _output(t: int = 3, n: int = 2, size: int = 8, seed: int = 0, aux: int = 0) -> ReferFormerOutput:
    g = torch.Generator().manual_seed(seed)

    def layer():
        logits = torch.randn(1, t, n, 1, generator=g)
        centers = torch.rand(1, t, n, 2, generator=g) * 0.5 + 0.25
        boxes = torch.cat([centers, torch.rand(1, t, n, 2, generator=g) * 0.3 + 0.1], -1)
        masks = torch.randn(1, t, n, size // 4, size // 4, generator=g)
        return logits, boxes, masks

    logits, boxes, masks = layer()
    aux_layers = tuple(ReferFormerLayerOutput(*layer()) for _ in range(aux))
    return ReferFormerOutput(
        pred_logits=logits.requires_grad_(),
        pred_boxes=boxes.requires_grad_(),
        pred_masks=masks.requires_grad_(),
        aux_outputs=aux_layers,
        mask_stride=4,
        input_size=(size, size),
    )


def _target(t: int = 3, size: int = 8) -> torch.Tensor:
    masks = torch.zeros(t, size, size, dtype=torch.bool)
    masks[0, 1:5, 2:6] = True
    masks[2, 3:8, 0:3] = True  # frame 1: object absent
    return masks


def test_absent_frames_get_class_target_zero_and_no_box_or_mask_loss() -> None:
    cfg = ReferFormerConfig.tiny(aux_loss=False)
    criterion = ReferFormerCriterion(cfg)
    output = _output()
    masks = _target()
    losses = criterion(output, [ReferFormerTarget(masks, valid=torch.tensor([True, False, True]))])
    assert set(losses) == {"loss_class", "loss_bbox", "loss_giou", "loss_mask", "loss_dice", "loss"}
    cost = criterion.matcher.cost_matrix(
        output.pred_logits[0, ..., 0],
        output.pred_boxes[0],
        torch.nn.functional.interpolate(output.pred_masks[0], size=(8, 8), mode="bilinear", align_corners=False),
        masks_to_boxes_normalized(masks)[0][None],
        masks[None],
        torch.tensor([[True, False, True]]),
    )
    q = int(cost[:, 0].argmin())
    class_target = torch.zeros(1, 3, 2)
    class_target[0, [0, 2], q] = 1.0
    expected_class = sigmoid_focal_loss(output.pred_logits[..., 0], class_target, ALPHA, GAMMA, reduction="sum") / 2
    torch.testing.assert_close(losses["loss_class"], expected_class)
    gt_boxes, _ = masks_to_boxes_normalized(masks)
    expected_l1 = (output.pred_boxes[0, [0, 2], q] - gt_boxes[[0, 2]]).abs().sum() / 2
    torch.testing.assert_close(losses["loss_bbox"], expected_l1)
    giou = generalized_box_iou(
        box_convert(output.pred_boxes[0, [0, 2], q], "cxcywh", "xyxy"), box_convert(gt_boxes[[0, 2]], "cxcywh", "xyxy")
    ).diagonal()
    torch.testing.assert_close(losses["loss_giou"], (1 - giou).sum() / 2)
    weighted = 2 * losses["loss_class"] + 5 * losses["loss_bbox"] + 2 * losses["loss_giou"]
    weighted = weighted + 5 * losses["loss_dice"] + 2 * losses["loss_mask"]
    torch.testing.assert_close(losses["loss"], weighted)
    losses["loss"].backward()
    # the absent frame contributes only through the class logits
    assert torch.count_nonzero(output.pred_boxes.grad[0, 1]) == 0
    assert torch.count_nonzero(output.pred_masks.grad[0, 1]) == 0
    assert torch.count_nonzero(output.pred_logits.grad[0, 1]) > 0
    assert torch.count_nonzero(output.pred_boxes.grad[0, 0, q]) > 0


def test_video_without_visible_object_has_only_class_loss() -> None:
    criterion = ReferFormerCriterion(ReferFormerConfig.tiny(aux_loss=False))
    output = _output()
    losses = criterion(output, [ReferFormerTarget(torch.zeros(3, 8, 8, dtype=torch.bool))])
    for name in ("loss_bbox", "loss_giou", "loss_mask", "loss_dice"):
        assert float(losses[name].detach()) == 0.0
    expected = sigmoid_focal_loss(output.pred_logits, torch.zeros(1, 3, 2, 1), ALPHA, GAMMA, reduction="sum")
    torch.testing.assert_close(losses["loss_class"], expected)
    losses["loss"].backward()
    assert torch.isfinite(output.pred_logits.grad).all()


def test_multi_granularity_criterion_reduces_to_standard_with_scale_one() -> None:
    output = _output(seed=3, aux=1)
    target = [ReferFormerTarget(_target())]
    standard = ReferFormerCriterion(ReferFormerConfig.tiny())(output, target)
    single = ReferFormerCriterion(ReferFormerConfig.tiny(loss="multi_granularity", granularity_scales=(1,)))(
        output, target
    )
    multi = ReferFormerCriterion(ReferFormerConfig.tiny(loss="multi_granularity"))(output, target)
    assert "loss_mask_aux0" in standard and len(standard) == 11
    for name in standard:
        torch.testing.assert_close(single[name], standard[name])
    assert not torch.isclose(multi["loss_mask"], standard["loss_mask"])
    torch.testing.assert_close(multi["loss_bbox"], standard["loss_bbox"])


def test_target_validation_errors() -> None:
    criterion = ReferFormerCriterion(ReferFormerConfig.tiny(aux_loss=False))
    output = _output()
    masks = _target()
    with pytest.raises(AnnotationError, match="visible but its mask is empty"):
        criterion(output, [ReferFormerTarget(masks, valid=torch.tensor([True, True, True]))])
    with pytest.raises(AnnotationError, match="absent but its mask is non-empty"):
        criterion(output, [ReferFormerTarget(masks, valid=torch.tensor([False, False, True]))])
    with pytest.raises(AnnotationError, match="expected"):
        criterion(output, [ReferFormerTarget(masks[:, :4])])
    with pytest.raises(AnnotationError, match="bool"):
        criterion(output, [ReferFormerTarget(masks.float())])
    with pytest.raises(AnnotationError, match="2 targets"):
        criterion(output, [ReferFormerTarget(masks), ReferFormerTarget(masks)])
    with pytest.raises(ConfigError, match="aux outputs"):
        ReferFormerCriterion(ReferFormerConfig.tiny())(output, [ReferFormerTarget(masks)])


# ---------------------------------------------------------------- boxes from masks


def test_masks_to_boxes_normalized_covers_whole_pixels() -> None:
    masks = torch.zeros(3, 4, 8, dtype=torch.bool)
    masks[0, 1, 2] = True  # single pixel
    masks[1, 0:4, 0:8] = True  # whole frame
    boxes, present = masks_to_boxes_normalized(masks)
    assert present.tolist() == [True, True, False]
    torch.testing.assert_close(boxes[0], torch.tensor([2.5 / 8, 1.5 / 4, 1 / 8, 1 / 4]))
    torch.testing.assert_close(boxes[1], torch.tensor([0.5, 0.5, 1.0, 1.0]))
    assert torch.equal(boxes[2], torch.zeros(4))


def test_masks_to_boxes_normalized_on_real_davis_masks(davis_root: Path) -> None:
    folder = davis_root / "Annotations" / "480p" / "blackswan"
    frames = sorted(folder.glob("*.png"))[:3]
    arrays = [np.asarray(Image.open(p)) > 0 for p in frames]
    boxes, present = masks_to_boxes_normalized(torch.from_numpy(np.stack(arrays)))
    assert present.all()
    for array, box in zip(arrays, boxes):
        ys, xs = np.nonzero(array)
        h, w = array.shape
        expected = [
            (xs.min() + xs.max() + 1) / 2 / w,
            (ys.min() + ys.max() + 1) / 2 / h,
            (xs.max() + 1 - xs.min()) / w,
            (ys.max() + 1 - ys.min()) / h,
        ]
        np.testing.assert_allclose(box.numpy(), expected, rtol=1e-6)
