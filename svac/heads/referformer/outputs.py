"""Typed results of the ReferFormer head: raw per-query outputs and the final prediction."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ReferFormerLayerOutput:
    """Predictions of one decoder layer for every frame and query.

    Attributes:
        pred_logits: float ``(B, T, N, 1)`` logit that the query is the referred object, visible in the frame.
        pred_boxes: float ``(B, T, N, 4)`` boxes, normalized ``(cx, cy, w, h)`` in [0, 1].
        pred_masks: float ``(B, T, N, H / s, W / s)`` mask logits, ``s = mask_stride``.
    """

    pred_logits: torch.Tensor
    pred_boxes: torch.Tensor
    pred_masks: torch.Tensor


@dataclass
class ReferFormerOutput(ReferFormerLayerOutput):
    """Output of :meth:`ReferFormer.forward`: the last decoder layer plus the auxiliary ones.

    Query ``n`` means the same instance in every frame (conditional queries
    share weights across frames; ReferFormer §3.2).

    Attributes:
        aux_outputs: one :class:`ReferFormerLayerOutput` per earlier decoder
            layer (first to second-to-last); empty when not requested.
        mask_stride: input pixels per mask pixel (4 for the dynamic conv,
            ``8 / p`` for the conditional patch kernel).
        input_size: ``(H, W)`` of the input frames, pixels.
    """

    aux_outputs: tuple[ReferFormerLayerOutput, ...] = ()
    mask_stride: int = 4
    input_size: tuple[int, int] = (0, 0)


@dataclass
class ReferFormerPrediction:
    """Inference result: the one query chosen per video (ReferFormer §3.5 "Inference").

    Attributes:
        masks: bool ``(B, T, H, W)`` masks at the input size.
        boxes: float ``(B, T, 4)`` normalized ``(cx, cy, w, h)`` boxes of the chosen query.
        boxes_xyxy: float ``(B, T, 4)`` the same boxes as ``(x1, y1, x2, y2)`` in input pixels.
        scores: float ``(B,)`` frame-averaged probability of the chosen query.
        frame_scores: float ``(B, T)`` per-frame probability of the chosen query.
        query_index: long ``(B,)`` index of the chosen query.
    """

    masks: torch.Tensor
    boxes: torch.Tensor
    boxes_xyxy: torch.Tensor
    scores: torch.Tensor
    frame_scores: torch.Tensor
    query_index: torch.Tensor
