"""Training criterion of ReferFormer (Wu et al., CVPR 2022, §3.4) with SgMg's multi-granularity option.

For every decoder layer that is supervised (the last one, plus the earlier
ones when ``cfg.aux_loss``), each video's query sequences are matched to its
target sequence (:class:`HungarianSequenceMatcher`), then:

* ``loss_class``: sigmoid focal loss over all B x T x N class logits; the
  target is 1 for the matched query in frames where the object is visible,
  0 elsewhere (unmatched queries predict ∅, and so does the matched query in
  frames where the object is absent);
* ``loss_bbox`` (L1), ``loss_giou`` (1 - GIoU), ``loss_mask`` (pixel-mean
  focal) and ``loss_dice``: matched query, visible frames only — frames where
  the object is absent get no box or mask loss.

Every term is a sum over its elements divided by the number of visible
target frames in the batch (at least 1), DETR's normalisation. Mask logits
are bilinearly upsampled to the target size first. ``loss =
2·class + 5·bbox + 2·giou + 5·dice + 2·mask`` summed over supervised layers;
the terms of earlier layers are reported as ``<name>_aux<i>``. With
``cfg.loss == "multi_granularity"`` the mask and Dice terms are those of
:func:`svac.heads.referformer.losses.multi_granularity_mask_losses`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

from svac.errors import AnnotationError, ConfigError

from svac.baseline_config import ReferFormerConfig
from .losses import dice_loss, mask_focal_loss, masks_to_boxes_normalized, multi_granularity_mask_losses
from .matcher import HungarianSequenceMatcher
from .outputs import ReferFormerLayerOutput, ReferFormerOutput

#: Names of the loss terms, in reporting order.
LOSS_TERMS = ("loss_class", "loss_bbox", "loss_giou", "loss_mask", "loss_dice")


@dataclass(frozen=True)
class ReferFormerTarget:
    """Ground truth of one video for one expression.

    Attributes:
        masks: bool ``(T, H, W)``, the referred object(s) in every frame, at
            the input size of the model.
        valid: bool ``(T,)``, True where the object is visible; ``None`` means
            "visible where the mask is non-empty".
    """

    masks: torch.Tensor
    valid: torch.Tensor | None = None

    def resolved(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(masks, valid, boxes)``: bool ``(T, H, W)``, bool ``(T,)``, float ``(T, 4)`` normalized cxcywh.

        Raises:
            AnnotationError: wrong dtype/shape, or ``valid`` disagreeing with
                the masks (visible but empty, or absent but non-empty).
        """
        masks = self.masks
        if masks.dtype != torch.bool or masks.ndim != 3:
            raise AnnotationError(f"target masks must be bool (T, H, W), got {masks.dtype} {tuple(masks.shape)}")
        boxes, present = masks_to_boxes_normalized(masks)
        if self.valid is None:
            return masks, present, boxes
        valid = self.valid
        if valid.dtype != torch.bool or valid.shape != (masks.shape[0],):
            raise AnnotationError(
                f"target valid must be bool ({masks.shape[0]},), got {valid.dtype} {tuple(valid.shape)}"
            )
        valid = valid.to(masks.device)
        if bool((valid & ~present).any()):
            frames = torch.nonzero(valid & ~present).flatten().tolist()
            raise AnnotationError(f"target marked visible but its mask is empty in frames {frames}")
        if bool((~valid & present).any()):
            frames = torch.nonzero(~valid & present).flatten().tolist()
            raise AnnotationError(f"target marked absent but its mask is non-empty in frames {frames}")
        return masks, valid, boxes


class ReferFormerCriterion(nn.Module):
    """Hungarian-matched losses of ReferFormer; returns named scalar losses and their weighted sum ``"loss"``."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.matcher = HungarianSequenceMatcher.from_config(cfg)
        self.weights = {
            "loss_class": cfg.class_weight,
            "loss_bbox": cfg.bbox_weight,
            "loss_giou": cfg.giou_weight,
            "loss_mask": cfg.mask_weight,
            "loss_dice": cfg.dice_weight,
        }

    def forward(self, output: ReferFormerOutput, targets: Sequence[ReferFormerTarget]) -> dict[str, torch.Tensor]:
        """Compute the losses.

        Args:
            output: model output for B videos of T frames.
            targets: B targets, masks at ``output.input_size``.

        Returns:
            ``{"loss_class", "loss_bbox", "loss_giou", "loss_mask", "loss_dice",
            <same>_aux<i> for earlier layers when cfg.aux_loss, "loss"}``,
            each a float scalar tensor.

        Raises:
            AnnotationError: malformed targets or targets of the wrong size/length.
            ConfigError: aux losses requested but the output has no aux layers.
        """
        b, t = output.pred_logits.shape[:2]
        if len(targets) != b:
            raise AnnotationError(f"got {len(targets)} targets for a batch of {b} videos")
        resolved = [target.resolved() for target in targets]
        for index, (masks, _, _) in enumerate(resolved):
            if masks.shape[0] != t or tuple(masks.shape[1:]) != tuple(output.input_size):
                raise AnnotationError(
                    f"target {index} masks have shape {tuple(masks.shape)}, expected "
                    f"({t}, {output.input_size[0]}, {output.input_size[1]})"
                )
        layers: list[tuple[str, ReferFormerLayerOutput]] = [("", output)]
        if self.cfg.aux_loss:
            if len(output.aux_outputs) != self.cfg.dec_layers - 1:
                raise ConfigError(
                    f"aux_loss needs {self.cfg.dec_layers - 1} aux outputs, got {len(output.aux_outputs)} "
                    "(call the model with return_aux=True)"
                )
            layers += [(f"_aux{i}", aux) for i, aux in enumerate(output.aux_outputs)]
        losses: dict[str, torch.Tensor] = {}
        total = output.pred_logits.new_zeros(())
        for suffix, layer in layers:
            for name, value in self.layer_losses(layer, resolved).items():
                losses[name + suffix] = value
                total = total + self.weights[name] * value
        losses["loss"] = total
        return losses

    def layer_losses(
        self,
        layer: ReferFormerLayerOutput,
        targets: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    ) -> dict[str, torch.Tensor]:
        """The five loss terms of one decoder layer; ``targets`` as returned by :meth:`ReferFormerTarget.resolved`."""
        cfg = self.cfg
        logits = layer.pred_logits[..., 0]  # (B, T, N)
        b, t, n = logits.shape
        height, width = targets[0][0].shape[-2:]
        mask_logits = F.interpolate(
            layer.pred_masks.flatten(0, 1), size=(height, width), mode="bilinear", align_corners=False
        ).view(b, t, n, height, width)

        class_targets = torch.zeros_like(logits)
        matched_masks, target_masks, matched_boxes, target_boxes = [], [], [], []
        for video, (masks, valid, boxes) in enumerate(targets):
            match = self.matcher(
                logits[video],
                layer.pred_boxes[video],
                mask_logits[video],
                boxes[None].to(logits.device),
                masks[None].to(logits.device),
                valid[None].to(logits.device),
            )
            query = int(match.query_indices[0])
            frames = torch.nonzero(valid).flatten().to(logits.device)
            class_targets[video, frames, query] = 1.0
            matched_masks.append(mask_logits[video, frames, query])
            target_masks.append(masks.to(logits.device)[frames])
            matched_boxes.append(layer.pred_boxes[video, frames, query])
            target_boxes.append(boxes.to(logits.device)[frames])

        num_visible = max(float(class_targets.sum().item()), 1.0)
        loss_class = (
            sigmoid_focal_loss(logits, class_targets, alpha=cfg.focal_alpha, gamma=cfg.focal_gamma, reduction="sum")
            / num_visible
        )
        pred_boxes = torch.cat(matched_boxes)
        gt_boxes = torch.cat(target_boxes)
        pred_masks = torch.cat(matched_masks)
        gt_masks = torch.cat(target_masks)
        if pred_boxes.shape[0] == 0:
            zero = (layer.pred_boxes.sum() + layer.pred_masks.sum()) * 0.0
            return {"loss_class": loss_class, **{name: zero for name in LOSS_TERMS[1:]}}
        loss_bbox = F.l1_loss(pred_boxes, gt_boxes, reduction="sum") / num_visible
        loss_giou = (
            generalized_box_iou_loss(
                box_convert(pred_boxes, in_fmt="cxcywh", out_fmt="xyxy"),
                box_convert(gt_boxes, in_fmt="cxcywh", out_fmt="xyxy"),
                reduction="sum",
            )
            / num_visible
        )
        if cfg.loss == "multi_granularity":
            focal, dice = multi_granularity_mask_losses(
                pred_masks, gt_masks, cfg.granularity_scales, cfg.focal_alpha, cfg.focal_gamma
            )
        else:
            target_float = gt_masks.to(pred_masks.dtype)
            focal = mask_focal_loss(pred_masks, target_float, cfg.focal_alpha, cfg.focal_gamma)
            dice = dice_loss(pred_masks, target_float)
        return {
            "loss_class": loss_class,
            "loss_bbox": loss_bbox,
            "loss_giou": loss_giou,
            "loss_mask": focal.sum() / num_visible,
            "loss_dice": dice.sum() / num_visible,
        }
