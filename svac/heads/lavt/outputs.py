"""Typed results of the LAVT head: raw logits and post-processed predictions."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class LAVTOutput:
    """Raw output of :meth:`svac.heads.lavt.model.LAVT.forward`.

    Attributes:
        logits: float ``(B, T, 2, H/4, W/4)`` class scores per frame, channel 0
            background and channel 1 the referred object, at the stride of the
            first Swin stage (4 pixels).
    """

    logits: Tensor


@dataclass(frozen=True)
class LAVTPrediction:
    """Post-processed output of :meth:`svac.heads.lavt.model.LAVT.predict`.

    Attributes:
        masks: bool ``(B, T, H, W)`` object masks at the input frame size (pixels).
        scores: float ``(B,)`` confidence per expression in ``[0, 1]``: the mean
            object probability inside the predicted masks over the clip, 0 when
            every mask is empty. LAVT has no score head; this is a convention of
            this library for ranking, not a paper quantity.
    """

    masks: Tensor
    scores: Tensor
