"""LAVT baseline head: Language-Aware Vision Transformer, image (CVPR 2022) and video (TPAMI 2024).

Public API::

    from svac.heads.lavt import LAVT, LAVTConfig, LAVTLoss
    cfg = LAVTConfig.tiny("video")          # or LAVTConfig.paper("image"); svac.baseline_config
    model = LAVT(cfg)
    out = model(frames, input_ids, attention_mask)      # LAVTOutput, logits (B, T, 2, H/4, W/4)
    losses = LAVTLoss(cfg)(out, masks)                  # {"loss": ..., "loss_dice": ...}
    pred = model.predict(frames, input_ids, attention_mask)  # LAVTPrediction

Building blocks (separately importable): :class:`PWAM` (Eqs. 1-7),
:class:`LanguageGate` (Eqs. 8-9), :class:`PWAM3D` and
:class:`MultiScaleConv3d` (video), :class:`MaskDecoder` (Eq. 10),
:class:`TextEncoder` (BERT), :func:`two_class_dice_loss`.
"""

from __future__ import annotations

from svac.heads.lavt.attention import pixel_word_attention
from svac.baseline_config import LAVTConfig
from svac.heads.lavt.decoder import MaskDecoder
from svac.heads.lavt.errors import LAVTInputError
from svac.heads.lavt.loss import LAVTLoss, two_class_dice_loss
from svac.heads.lavt.model import LAVT
from svac.heads.lavt.outputs import LAVTOutput, LAVTPrediction
from svac.heads.lavt.pwam import PWAM, LanguageGate
from svac.heads.lavt.pwam3d import PWAM3D, MultiScaleConv3d
from svac.heads.lavt.text import TextEncoder

__all__ = [
    "LAVT",
    "LAVTConfig",
    "LAVTInputError",
    "LAVTLoss",
    "LAVTOutput",
    "LAVTPrediction",
    "LanguageGate",
    "MaskDecoder",
    "MultiScaleConv3d",
    "PWAM",
    "PWAM3D",
    "TextEncoder",
    "pixel_word_attention",
    "two_class_dice_loss",
]
