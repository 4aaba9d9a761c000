"""ReferFormer (Wu et al., CVPR 2022) as an svac model: ``head: referformer``.

Inference per window (ReferFormer §3.5 "Inference"): the query whose class
probability averaged over the window's frames is highest is the referred
object; its mask logits in every frame are the prediction and its per-frame
probabilities the frame scores. Training (§3.4): Hungarian-matched class, box
and mask losses (:class:`~svac.heads.referformer.ReferFormerCriterion`) with
the weights of ``baseline.referformer``; the text encoder (RoBERTa) stays
frozen as in §3.1 -- only its projection trains -- and the backbone too when
``freeze_backbone`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from svac.heads.rvos import RVOSBaseline, WindowPrediction

if TYPE_CHECKING:
    from svac.heads.referformer import ReferFormerConfig
    from svac.heads.rvos_training import BaselineBatch, HeadLosses


class ReferFormerRVOS(RVOSBaseline):
    """ReferFormer with svac's ``segment``, checkpoints and training interface (see :class:`RVOSBaseline`)."""

    head_name = "referformer"

    @classmethod
    def build_head(cls, head_config: "ReferFormerConfig") -> nn.Module:
        """A :class:`svac.heads.referformer.ReferFormer` for ``head_config``."""
        from svac.heads.referformer import ReferFormer

        return ReferFormer(head_config)

    def text_encoder_module(self) -> nn.Module:
        """The frozen RoBERTa / BERT inside the head."""
        return self.head.text_encoder.encoder

    def predict_window(self, frames: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor) -> WindowPrediction:
        """Mask logits ``(T, H/s, W/s)`` and per-frame probabilities ``(T,)`` of the best query of the window."""
        from svac.heads.referformer import select_referred_query

        out = self.head(frames, input_ids, attention_mask, return_aux=False)
        _, index = select_referred_query(out.pred_logits)
        query = int(index[0])
        return WindowPrediction(logits=out.pred_masks[0, :, query],
                                frame_scores=out.pred_logits[0, :, query, 0].sigmoid())

    def frozen_modules(self) -> dict[str, nn.Module]:
        """The text encoder (always, §3.1) and the backbone when ``freeze_backbone``."""
        frozen = {"text_encoder": self.head.text_encoder.encoder}
        if self.head_config.freeze_backbone:
            frozen["backbone"] = self.head.backbone
        return frozen

    def objective(self) -> nn.Module:
        """A :class:`ReferFormerObjective` of this model."""
        return ReferFormerObjective(self)


class ReferFormerObjective(nn.Module):
    """ReferFormer's training loss on a :class:`~svac.heads.rvos_training.BaselineBatch` (§3.4).

    Args:
        model: the model being trained (kept as ``self.model``; the recipe saves it from there).
    """

    def __init__(self, model: ReferFormerRVOS) -> None:
        super().__init__()
        from svac.heads.referformer import ReferFormerCriterion

        self.model = model
        self.criterion = ReferFormerCriterion(model.head_config)

    def forward(self, batch: "BaselineBatch") -> "HeadLosses":
        """Weighted loss of ``batch``; every item's object is visible where its mask is non-empty.

        Raises:
            svac.errors.AnnotationError: when the masks do not match the frames.
        """
        from svac.heads.referformer import ReferFormerTarget
        from svac.heads.referformer.criterion import LOSS_TERMS
        from svac.heads.rvos_training import HeadLosses

        out = self.model.head(batch.frames, batch.input_ids, batch.attention_mask)
        losses = self.criterion(out, [ReferFormerTarget(masks=m) for m in batch.masks])
        return HeadLosses(loss=losses["loss"], terms={k: losses[k] for k in LOSS_TERMS})
