"""Training losses of LAVT: two-class Dice (TPAMI) and cross-entropy (CVPR 2022).

Sources:

* CVPR 2022 LAVT is trained with a pixel-wise cross-entropy over the two
  classes (background, object); the authors' release notes state that the
  paper's numbers come from cross-entropy training.
* The TPAMI 2024 extension trains with a two-class ("multi-class") Dice loss:
  Dice is computed separately for the object class and for the background
  class on softmax probabilities and the two losses are averaged. Following
  the V-Net form the authors' release uses, the denominator sums squared
  probabilities: ``dice_c = (2 sum p_c g_c + s) / (sum p_c^2 + sum g_c + s)``.
  Our ``s`` (``LAVTConfig.dice_smooth``, default 1) is added to the
  numerator as well, so a frame whose object is absent and predicted absent
  costs 0 instead of 1 (relevant for video, where the object may leave).

The loss is computed per frame at the ground-truth resolution: logits at 1/4
resolution are bilinearly upsampled to the mask size first (as LAVT does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svac.baseline_config import NUM_CLASSES, LAVTConfig
from svac.heads.lavt.errors import LAVTInputError
from svac.heads.lavt.outputs import LAVTOutput

LOSS_KEY = "loss"
DICE_KEY = "loss_dice"
CE_KEY = "loss_ce"
_SPATIAL_DIMS = (2, 3)


def two_class_dice_loss(logits: Tensor, target: Tensor, smooth: float) -> Tensor:
    """Mean over frames and both classes of ``1 - dice_c`` (module docstring formula).

    Args:
        logits: float ``(N, 2, H, W)`` class scores.
        target: bool ``(N, H, W)`` object masks.
        smooth: ``s >= 0`` added to numerator and denominator.

    Returns:
        float scalar in ``[0, 1]``; 0 for a perfect prediction.

    Raises:
        LAVTInputError: shapes disagree.
    """
    if logits.dim() != 4 or logits.shape[1] != NUM_CLASSES or logits.shape[-2:] != target.shape[-2:]:
        raise LAVTInputError(f"logits (N, 2, H, W) {tuple(logits.shape)} and target {tuple(target.shape)} disagree")
    probs = torch.softmax(logits, dim=1)
    one_hot = torch.stack([~target, target], dim=1).to(probs.dtype)
    intersection = (probs * one_hot).sum(dim=_SPATIAL_DIMS)  # (N, 2)
    denominator = (probs * probs).sum(dim=_SPATIAL_DIMS) + one_hot.sum(dim=_SPATIAL_DIMS)  # (N, 2)
    dice = (2.0 * intersection + smooth) / (denominator + smooth)
    return (1.0 - dice).mean()


class LAVTLoss(nn.Module):
    """The configured LAVT loss (``cfg.loss``: ``"dice"``, ``"ce"`` or ``"ce+dice"``).

    Args:
        cfg: uses ``loss``, ``dice_smooth``, ``ce_weight``, ``dice_weight``,
            ``ce_class_weights``.
    """

    def __init__(self, cfg: LAVTConfig):
        super().__init__()
        self.mode = cfg.loss
        self.dice_smooth = float(cfg.dice_smooth)
        self.ce_weight = float(cfg.ce_weight)
        self.dice_weight = float(cfg.dice_weight)
        class_weights = torch.tensor(cfg.ce_class_weights, dtype=torch.float32)
        self.register_buffer("ce_class_weights", class_weights, persistent=False)

    def forward(self, output: LAVTOutput, masks: Tensor, valid: Tensor | None = None) -> dict[str, Tensor]:
        """Compute the named losses.

        Args:
            output: model output with logits float ``(B, T, 2, h, w)``.
            masks: bool ``(B, T, H, W)`` ground-truth object masks (pixels of
                the input frames); logits are upsampled to ``(H, W)``.
            valid: optional bool ``(B, T)``; frames marked ``False`` (e.g. not
                annotated) are left out. With no valid frame every loss is a
                zero that keeps the graph.

        Returns:
            ``{"loss": total}`` plus ``"loss_dice"`` and/or ``"loss_ce"``
            (float scalars), according to ``cfg.loss``. For ``"ce+dice"``,
            ``loss = ce_weight * loss_ce + dice_weight * loss_dice``.

        Raises:
            LAVTInputError: dtype or shape mismatches.
        """
        logits = output.logits
        if logits.dim() != 5 or logits.shape[2] != NUM_CLASSES:
            raise LAVTInputError(f"logits must be (B, T, 2, h, w); got {tuple(logits.shape)}")
        if masks.dtype != torch.bool:
            raise LAVTInputError(f"masks must be torch.bool; got {masks.dtype}")
        if masks.dim() != 4 or masks.shape[:2] != logits.shape[:2]:
            raise LAVTInputError(
                f"masks must be (B, T, H, W) with (B, T) = {tuple(logits.shape[:2])}; got {tuple(masks.shape)}"
            )
        batch, frames = logits.shape[:2]
        flat_logits = logits.reshape(batch * frames, NUM_CLASSES, *logits.shape[-2:])
        flat_masks = masks.reshape(batch * frames, *masks.shape[-2:])
        if valid is not None:
            if valid.dtype != torch.bool or valid.shape != (batch, frames):
                raise LAVTInputError(f"valid must be bool {(batch, frames)}; got {valid.dtype} {tuple(valid.shape)}")
            keep = valid.reshape(-1)
            flat_logits = flat_logits[keep]
            flat_masks = flat_masks[keep]
        if flat_logits.shape[0] == 0:
            zero = logits.sum() * 0.0
            return {LOSS_KEY: zero, **{key: zero for key in self._term_keys()}}
        if flat_logits.shape[-2:] != flat_masks.shape[-2:]:
            flat_logits = F.interpolate(flat_logits, size=flat_masks.shape[-2:], mode="bilinear", align_corners=False)
        losses: dict[str, Tensor] = {}
        total = flat_logits.new_zeros(())
        if self.mode in ("ce", "ce+dice"):
            weight = self.ce_class_weights.to(device=flat_logits.device, dtype=flat_logits.dtype)
            losses[CE_KEY] = F.cross_entropy(flat_logits, flat_masks.long(), weight=weight)
            total = total + (self.ce_weight if self.mode == "ce+dice" else 1.0) * losses[CE_KEY]
        if self.mode in ("dice", "ce+dice"):
            losses[DICE_KEY] = two_class_dice_loss(flat_logits, flat_masks, self.dice_smooth)
            total = total + (self.dice_weight if self.mode == "ce+dice" else 1.0) * losses[DICE_KEY]
        losses[LOSS_KEY] = total
        return losses

    def _term_keys(self) -> tuple[str, ...]:
        keys = []
        if self.mode in ("ce", "ce+dice"):
            keys.append(CE_KEY)
        if self.mode in ("dice", "ce+dice"):
            keys.append(DICE_KEY)
        return tuple(keys)
