"""Inference post-processing of ReferFormer: choose one query per video and upsample its masks.

ReferFormer (Wu et al., CVPR 2022, §3.5 "Inference"): the probability of each
query is averaged over all frames; the query with the highest average is the
referred object, and its masks in every frame are the prediction. Masks are
bilinearly upsampled from the head's resolution to the input size and
thresholded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert

from svac.errors import ConfigError

from .outputs import ReferFormerOutput, ReferFormerPrediction

#: Default probability above which a pixel belongs to the mask.
DEFAULT_MASK_THRESHOLD = 0.5


def select_referred_query(pred_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick the query with the best frame-averaged probability.

    Args:
        pred_logits: float ``(B, T, N, 1)`` or ``(B, T, N)`` class logits.

    Returns:
        ``(scores, index)``: float ``(B,)`` mean probability of the chosen
        query over the T frames, and long ``(B,)`` its index.

    Raises:
        ConfigError: wrong number of dimensions.
    """
    if pred_logits.ndim == 4:
        if pred_logits.shape[-1] != 1:
            raise ConfigError(f"pred_logits must end with a size-1 class axis, got {tuple(pred_logits.shape)}")
        pred_logits = pred_logits[..., 0]
    if pred_logits.ndim != 3:
        raise ConfigError(f"pred_logits must be (B, T, N[, 1]), got {tuple(pred_logits.shape)}")
    mean_prob = pred_logits.sigmoid().mean(dim=1)  # (B, N)
    scores, index = mean_prob.max(dim=1)
    return scores, index


def postprocess(output: ReferFormerOutput, threshold: float = DEFAULT_MASK_THRESHOLD) -> ReferFormerPrediction:
    """Turn raw outputs into one mask track per video.

    Args:
        output: :class:`ReferFormerOutput` of ``B`` videos of ``T`` frames.
        threshold: probability threshold in (0, 1) for mask pixels.

    Raises:
        ConfigError: threshold outside (0, 1) or an output without ``input_size``.
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"mask threshold must lie in (0, 1), got {threshold}")
    height, width = output.input_size
    if height <= 0 or width <= 0:
        raise ConfigError(f"output.input_size must be positive, got {output.input_size}")
    scores, index = select_referred_query(output.pred_logits)
    b, t = output.pred_logits.shape[:2]
    batch = torch.arange(b, device=index.device)
    masks = output.pred_masks[batch, :, index]  # (B, T, h, w)
    boxes = output.pred_boxes[batch, :, index]  # (B, T, 4)
    frame_scores = output.pred_logits[batch, :, index, 0].sigmoid()  # (B, T)
    logits = F.interpolate(masks.flatten(0, 1)[:, None], size=(height, width), mode="bilinear", align_corners=False)
    binary = logits[:, 0].sigmoid().gt(threshold).reshape(b, t, height, width)
    scale = boxes.new_tensor([width, height, width, height])
    boxes_xyxy = box_convert(boxes, in_fmt="cxcywh", out_fmt="xyxy") * scale
    return ReferFormerPrediction(
        masks=binary,
        boxes=boxes,
        boxes_xyxy=boxes_xyxy,
        scores=scores,
        frame_scores=frame_scores,
        query_index=index,
    )
