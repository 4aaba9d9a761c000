"""Per-frame loss terms of ReferFormer and the SgMg/MGRVOS multi-granularity mask supervision.

Definitions (ReferFormer, Wu et al., CVPR 2022, §3.4 "Instance sequence
matching and loss"; DETR conventions for Dice and GIoU):

* mask focal: mean over pixels of torchvision's ``sigmoid_focal_loss``
  (alpha 0.25, gamma 2) between the mask logits and the target;
* Dice: ``1 - (2 Σ σ(x)·y + 1) / (Σ σ(x) + Σ y + 1)`` over the pixels;
* boxes: L1 over (cx, cy, w, h) and ``1 - GIoU``;
* target boxes come from the masks (:func:`masks_to_boxes_normalized`).

Multi-granularity supervision (``loss="multi_granularity"``; SgMg, Miao et
al., ICCV 2023, §3.4 multi-granularity segmentation optimisation): the mask
losses are computed at several granularities and averaged. At scale ``s``
both the mask logits and the binary target (both at the target resolution
H x W) are average-pooled with an ``s x s`` window and stride ``s``; the
pooled target is a soft target (the fraction of foreground pixels in each
cell). Focal and Dice at scale ``s`` use the formulas above on the pooled
maps (torchvision's focal loss accepts soft targets). The mask focal and
Dice terms are the unweighted means over the scales (default 1, 2, 4 →
H x W, H/2 x W/2, H/4 x W/4). With scales ``(1,)`` this is the standard loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert, masks_to_boxes, sigmoid_focal_loss

from svac.errors import AnnotationError, ConfigError

#: Smoothing constant of the Dice loss (DETR).
DICE_SMOOTH = 1.0


def masks_to_boxes_normalized(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight boxes of binary masks, normalized ``(cx, cy, w, h)``.

    A box covers whole pixels: from the left edge of the leftmost foreground
    pixel to the right edge of the rightmost one (``torchvision.ops.masks_to_boxes``
    gives the pixel indices; ``+1`` on x2/y2 turns them into edges), divided
    by the mask width/height.

    Args:
        masks: bool ``(K, H, W)``.

    Returns:
        ``(boxes, present)``: float ``(K, 4)`` boxes (zeros for empty masks)
        and bool ``(K,)``, False for empty masks.

    Raises:
        AnnotationError: not a bool ``(K, H, W)`` tensor.
    """
    if masks.dtype != torch.bool or masks.ndim != 3:
        raise AnnotationError(f"masks must be a bool tensor (K, H, W), got {masks.dtype} {tuple(masks.shape)}")
    k, height, width = masks.shape
    present = masks.flatten(1).any(dim=1)
    boxes = torch.zeros(k, 4, dtype=torch.float32, device=masks.device)
    if bool(present.any()):
        xyxy = masks_to_boxes(masks[present]).float()
        xyxy[:, 2:] += 1.0
        xyxy = xyxy / xyxy.new_tensor([width, height, width, height])
        boxes[present] = box_convert(xyxy, in_fmt="xyxy", out_fmt="cxcywh")
    return boxes, present


def mask_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float
) -> torch.Tensor:
    """Mean-over-pixels sigmoid focal loss, float ``(K,)``, of logits/targets float ``(K, ...)``."""
    loss = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
    return loss.flatten(1).mean(dim=1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss ``1 - (2 Σ p t + 1) / (Σ p + Σ t + 1)``, float ``(K,)``, of float ``(K, ...)`` inputs."""
    probs = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2.0 * (probs * targets).sum(dim=1) + DICE_SMOOTH
    denominator = probs.sum(dim=1) + targets.sum(dim=1) + DICE_SMOOTH
    return 1.0 - numerator / denominator


def multi_granularity_mask_losses(
    logits: torch.Tensor,
    targets: torch.Tensor,
    scales: Sequence[int],
    alpha: float,
    gamma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask focal and Dice losses averaged over granularities (see the module docstring).

    Args:
        logits: float ``(K, H, W)`` mask logits at the target resolution.
        targets: bool or float ``(K, H, W)`` targets in [0, 1].
        scales: pooling factors, each dividing H and W.

    Returns:
        ``(focal, dice)``, each float ``(K,)``.

    Raises:
        ConfigError: empty ``scales``, or a scale that does not divide H and W.
    """
    if not scales:
        raise ConfigError("multi-granularity supervision needs at least one scale")
    height, width = logits.shape[-2:]
    targets = targets.to(logits.dtype)
    focal_terms, dice_terms = [], []
    for scale in scales:
        if height % scale or width % scale:
            raise ConfigError(f"granularity scale {scale} does not divide the mask size {height}x{width}")
        if scale == 1:
            pooled_logits, pooled_targets = logits, targets
        else:
            pooled_logits = F.avg_pool2d(logits[:, None], scale)[:, 0]
            pooled_targets = F.avg_pool2d(targets[:, None], scale)[:, 0]
        focal_terms.append(mask_focal_loss(pooled_logits, pooled_targets, alpha, gamma))
        dice_terms.append(dice_loss(pooled_logits, pooled_targets))
    return torch.stack(focal_terms).mean(dim=0), torch.stack(dice_terms).mean(dim=0)
