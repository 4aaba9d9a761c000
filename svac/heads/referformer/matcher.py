"""Instance sequence matching of ReferFormer (Wu et al., CVPR 2022, §3.4).

The N query sequences (query n in frames 1..T) are matched one-to-one to the
M target sequences by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``). The cost of pairing query n with
target m is, averaged over the frames where target m is visible::

    2 · focal_class + 5 · L1(box) + 2 · (-GIoU) + 5 · Dice + 2 · mask_focal

* ``focal_class`` is the focal loss of calling the query "referred" minus
  that of calling it "not referred" (Deformable DETR's focal cost):
  ``α(1-p)^γ(-log p) - (1-α)p^γ(-log(1-p))``;
* Dice and mask focal are the per-frame losses of
  :mod:`svac.heads.referformer.losses` (focal: mean over pixels).

Frames where the target is absent add no cost: matching or not matching a
query there changes no loss (its class target is 0 either way, and absent
frames get no box or mask loss). A target absent in every frame costs 0 with
every query. ``M <= N`` is required.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, generalized_box_iou

from svac.errors import ConfigError

from svac.baseline_config import ReferFormerConfig
from .losses import DICE_SMOOTH


@dataclass
class SequenceMatch:
    """Result of matching one video.

    Attributes:
        query_indices: long ``(M,)`` query matched to each target, in target order.
        target_indices: long ``(M,)`` = ``0..M-1``.
        cost: float ``(N, M)`` cost matrix that was solved.
    """

    query_indices: torch.Tensor
    target_indices: torch.Tensor
    cost: torch.Tensor


class HungarianSequenceMatcher:
    """Match whole query sequences to target sequences (one video at a time)."""

    def __init__(
        self,
        class_weight: float = 2.0,
        bbox_weight: float = 5.0,
        giou_weight: float = 2.0,
        dice_weight: float = 5.0,
        mask_weight: float = 2.0,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
    ) -> None:
        self.class_weight = class_weight
        self.bbox_weight = bbox_weight
        self.giou_weight = giou_weight
        self.dice_weight = dice_weight
        self.mask_weight = mask_weight
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    @classmethod
    def from_config(cls, cfg: ReferFormerConfig) -> HungarianSequenceMatcher:
        """Matcher with the weights and focal parameters of ``cfg``."""
        return cls(
            class_weight=cfg.class_weight,
            bbox_weight=cfg.bbox_weight,
            giou_weight=cfg.giou_weight,
            dice_weight=cfg.dice_weight,
            mask_weight=cfg.mask_weight,
            focal_alpha=cfg.focal_alpha,
            focal_gamma=cfg.focal_gamma,
        )

    @torch.no_grad()
    def cost_matrix(
        self,
        logits: torch.Tensor,
        boxes: torch.Tensor,
        mask_logits: torch.Tensor,
        target_boxes: torch.Tensor,
        target_masks: torch.Tensor,
        target_valid: torch.Tensor,
    ) -> torch.Tensor:
        """Sequence matching cost, float ``(N, M)``.

        Args:
            logits: float ``(T, N)`` class logits.
            boxes: float ``(T, N, 4)`` normalized cx, cy, w, h.
            mask_logits: float ``(T, N, H, W)`` mask logits at the target resolution.
            target_boxes: float ``(M, T, 4)`` normalized cx, cy, w, h.
            target_masks: bool ``(M, T, H, W)``.
            target_valid: bool ``(M, T)``, True where the target is visible.

        Raises:
            ConfigError: inconsistent shapes.
        """
        t, n = logits.shape
        m = target_valid.shape[0]
        if boxes.shape != (t, n, 4) or mask_logits.shape[:2] != (t, n):
            raise ConfigError(
                f"prediction shapes disagree: logits {tuple(logits.shape)}, boxes {tuple(boxes.shape)}, "
                f"masks {tuple(mask_logits.shape)}"
            )
        if target_valid.shape != (m, t) or target_boxes.shape != (m, t, 4) or target_masks.shape[:2] != (m, t):
            raise ConfigError(
                f"target shapes disagree: valid {tuple(target_valid.shape)}, boxes {tuple(target_boxes.shape)}, "
                f"masks {tuple(target_masks.shape)} (expected M x T = {m} x {t})"
            )
        if target_masks.shape[2:] != mask_logits.shape[2:]:
            raise ConfigError(
                f"mask sizes differ: predictions {tuple(mask_logits.shape[2:])}, "
                f"targets {tuple(target_masks.shape[2:])}"
            )
        alpha, gamma = self.focal_alpha, self.focal_gamma
        logits = logits.float()
        prob = logits.sigmoid()
        pos = alpha * (1 - prob) ** gamma * F.softplus(-logits)
        neg = (1 - alpha) * prob**gamma * F.softplus(logits)
        cost_class = (pos - neg)[:, :, None].expand(t, n, m)  # (T, N, M)

        tgt_boxes = target_boxes.float().transpose(0, 1)  # (T, M, 4)
        cost_l1 = torch.cdist(boxes.float(), tgt_boxes, p=1)  # (T, N, M)
        pred_xyxy = box_convert(boxes.float(), in_fmt="cxcywh", out_fmt="xyxy")
        tgt_xyxy = box_convert(tgt_boxes, in_fmt="cxcywh", out_fmt="xyxy")
        cost_giou = torch.stack([-generalized_box_iou(pred_xyxy[i], tgt_xyxy[i]) for i in range(t)])

        x = mask_logits.float().flatten(2)  # (T, N, P)
        y = target_masks.float().flatten(2).transpose(0, 1)  # (T, M, P)
        pixels = x.shape[-1]
        p = x.sigmoid()
        pixel_pos = alpha * (1 - p) ** gamma * F.softplus(-x)
        pixel_neg = (1 - alpha) * p**gamma * F.softplus(x)
        cost_mask = (
            torch.einsum("tnp,tmp->tnm", pixel_pos, y) + torch.einsum("tnp,tmp->tnm", pixel_neg, 1 - y)
        ) / pixels
        numerator = 2 * torch.einsum("tnp,tmp->tnm", p, y) + DICE_SMOOTH
        denominator = p.sum(-1)[:, :, None] + y.sum(-1)[:, None, :] + DICE_SMOOTH
        cost_dice = 1 - numerator / denominator

        per_frame = (
            self.class_weight * cost_class
            + self.bbox_weight * cost_l1
            + self.giou_weight * cost_giou
            + self.dice_weight * cost_dice
            + self.mask_weight * cost_mask
        )  # (T, N, M)
        weights = target_valid.float().transpose(0, 1)[:, None, :]  # (T, 1, M)
        frames = weights.sum(dim=0).clamp(min=1.0)  # (1, M)
        return (per_frame * weights).sum(dim=0) / frames

    @staticmethod
    def assign(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Minimum-cost one-to-one assignment of the columns (targets) of ``cost`` ``(N, M)`` to rows (queries).

        Returns ``(query_indices, target_indices)``, long ``(M,)``, sorted by target.

        Raises:
            ConfigError: more targets than queries or a non-finite cost.
        """
        n, m = cost.shape
        if m > n:
            raise ConfigError(f"cannot match {m} target sequences to {n} queries")
        if not bool(torch.isfinite(cost).all()):
            raise ConfigError("matching cost contains NaN or infinity")
        rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
        order = np.argsort(cols)
        return (
            torch.as_tensor(rows[order], dtype=torch.long, device=cost.device),
            torch.as_tensor(cols[order], dtype=torch.long, device=cost.device),
        )

    def __call__(
        self,
        logits: torch.Tensor,
        boxes: torch.Tensor,
        mask_logits: torch.Tensor,
        target_boxes: torch.Tensor,
        target_masks: torch.Tensor,
        target_valid: torch.Tensor,
    ) -> SequenceMatch:
        """Match one video; arguments as :meth:`cost_matrix`."""
        cost = self.cost_matrix(logits, boxes, mask_logits, target_boxes, target_masks, target_valid)
        queries, targets = self.assign(cost)
        return SequenceMatch(query_indices=queries, target_indices=targets, cost=cost)
