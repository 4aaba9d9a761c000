"""LAVT (Yang et al., CVPR 2022; video variant TPAMI 2024) as an svac model: ``head: lavt``.

Inference per window: the two-class logits of every frame (stride 4) become
object log-odds ``logit_object - logit_background`` (a softmax over the two
classes exceeds 0.5 exactly where this exceeds 0); LAVT has no score head, so
the result's score is the mean object probability inside the predicted masks
(:class:`~svac.heads.lavt.LAVTPrediction`'s convention). Training: the
configured LAVT loss (two-class Dice, cross-entropy or both; §3.4 and the
TPAMI version); BERT is fine-tuned with the rest as in the paper unless
``freeze_text_encoder`` is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from svac.errors import CheckpointError
from svac.heads.rvos import RVOSBaseline, WindowPrediction

if TYPE_CHECKING:
    from svac.heads.lavt import LAVTConfig
    from svac.heads.rvos_training import BaselineBatch, HeadLosses

#: Index of the object class in LAVT's two-class logits (0 is the background).
OBJECT_CLASS = 1
BACKGROUND_CLASS = 0
#: ``BertConfig`` settings a saved LAVT cannot change: LAVT rebuilds BERT from its sizes alone.
FIXED_BERT_SETTINGS = ("hidden_act", "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
                       "attention_probs_dropout_prob", "position_embedding_type")


class LAVTRVOS(RVOSBaseline):
    """LAVT with svac's ``segment``, checkpoints and training interface (see :class:`RVOSBaseline`)."""

    head_name = "lavt"

    @classmethod
    def build_head(cls, head_config: "LAVTConfig") -> nn.Module:
        """A :class:`svac.heads.lavt.LAVT` for ``head_config``."""
        from svac.heads.lavt import LAVT

        return LAVT(head_config)

    def text_encoder_module(self) -> nn.Module:
        """The BERT inside the head."""
        return self.head.text_encoder.bert

    def text_encoder_config(self) -> dict[str, Any]:
        """BERT's config as plain data; LAVT rebuilds BERT from its sizes, so the rest must be BERT's defaults.

        Raises:
            CheckpointError: when the loaded BERT differs from ``BertConfig``'s defaults in a setting
                LAVT cannot rebuild (:data:`FIXED_BERT_SETTINGS`).
        """
        from transformers import BertConfig

        config = super().text_encoder_config()
        default = BertConfig().to_dict()
        differs = [k for k in FIXED_BERT_SETTINGS if config.get(k, default.get(k)) != default.get(k)]
        if differs:
            raise CheckpointError(f"this LAVT's BERT sets {', '.join(differs)} differently from BertConfig's "
                                  "defaults; LAVT rebuilds BERT from its sizes only, so it cannot be saved")
        return config

    def predict_window(self, frames: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor) -> WindowPrediction:
        """Object log-odds ``(T, H/4, W/4)`` of every frame of the window; no score head."""
        logits = self.head(frames, input_ids, attention_mask).logits[0]  # (T, 2, h, w)
        return WindowPrediction(logits=logits[:, OBJECT_CLASS] - logits[:, BACKGROUND_CLASS])

    def frozen_modules(self) -> dict[str, nn.Module]:
        """BERT when ``freeze_text_encoder`` (the paper fine-tunes it: nothing is frozen by default)."""
        return {"text_encoder": self.head.text_encoder.bert} if self.head_config.freeze_text_encoder else {}

    def objective(self) -> nn.Module:
        """A :class:`LAVTObjective` of this model."""
        return LAVTObjective(self)


class LAVTObjective(nn.Module):
    """LAVT's training loss on a :class:`~svac.heads.rvos_training.BaselineBatch` (``baseline.lavt.loss``).

    Args:
        model: the model being trained (kept as ``self.model``; the recipe saves it from there).
    """

    def __init__(self, model: LAVTRVOS) -> None:
        super().__init__()
        from svac.heads.lavt import LAVTLoss

        self.model = model
        self.criterion = LAVTLoss(model.head_config)

    def forward(self, batch: "BaselineBatch") -> "HeadLosses":
        """Loss of ``batch`` over every frame (logits upsampled to the mask size).

        Raises:
            svac.heads.lavt.LAVTInputError: when the masks do not match the frames.
        """
        from svac.heads.rvos_training import HeadLosses

        out = self.model.head(batch.frames, batch.input_ids, batch.attention_mask)
        losses = self.criterion(out, batch.masks)
        return HeadLosses(loss=losses["loss"], terms={k: v for k, v in losses.items() if k != "loss"})
