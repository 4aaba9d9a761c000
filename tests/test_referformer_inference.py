"""ReferFormer inference: the query with the best frame-averaged score wins; masks upsampled to the input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from svac.errors import ConfigError
from svac.heads.referformer import ReferFormerOutput, postprocess, select_referred_query


def _logit(p: float) -> float:
    return float(torch.logit(torch.tensor(p)))


def _output(probs: list[list[list[float]]], h: int = 16, w: int = 24, seed: int = 0) -> ReferFormerOutput:
    g = torch.Generator().manual_seed(seed)
    logits = torch.tensor([[[[_logit(p)] for p in frame] for frame in video] for video in probs])
    b, t, n, _ = logits.shape
    centers = torch.rand(b, t, n, 2, generator=g) * 0.5 + 0.25
    boxes = torch.cat([centers, torch.rand(b, t, n, 2, generator=g) * 0.4 + 0.1], -1)
    return ReferFormerOutput(
        pred_logits=logits,
        pred_boxes=boxes,
        pred_masks=torch.randn(b, t, n, h // 4, w // 4, generator=g) * 3,
        input_size=(h, w),
    )


def test_frame_averaged_score_beats_single_frame_peak() -> None:
    # video 0: query 0 peaks (0.99) in one frame but averages 0.40; query 1 averages 0.60 -> query 1
    # video 1: query 2 is best on average
    probs = [
        [[0.99, 0.60, 0.05], [0.10, 0.60, 0.05], [0.11, 0.60, 0.05]],
        [[0.30, 0.20, 0.50], [0.30, 0.20, 0.45], [0.30, 0.90, 0.40]],
    ]
    scores, index = select_referred_query(_output(probs).pred_logits)
    assert index.tolist() == [1, 2]
    torch.testing.assert_close(scores, torch.tensor([0.60, 0.45]), rtol=1e-5, atol=1e-5)
    # a max-over-frames rule would have picked query 0 and query 1 instead
    peak = torch.tensor(probs).max(dim=1).values.argmax(dim=1)
    assert peak.tolist() == [0, 1]


def test_postprocess_returns_chosen_query_masks_and_boxes_at_input_size() -> None:
    probs = [[[0.2, 0.7], [0.3, 0.8]]]  # B=1, T=2, N=2 -> query 1
    output = _output(probs, h=16, w=24)
    prediction = postprocess(output, threshold=0.5)
    assert prediction.query_index.tolist() == [1]
    assert prediction.masks.shape == (1, 2, 16, 24) and prediction.masks.dtype == torch.bool
    upsampled = F.interpolate(output.pred_masks[0, :, 1][:, None], size=(16, 24), mode="bilinear", align_corners=False)
    assert torch.equal(prediction.masks[0], upsampled[:, 0].sigmoid() > 0.5)
    torch.testing.assert_close(prediction.boxes[0], output.pred_boxes[0, :, 1])
    cx, cy, bw, bh = output.pred_boxes[0, 0, 1].tolist()
    torch.testing.assert_close(
        prediction.boxes_xyxy[0, 0],
        torch.tensor([(cx - bw / 2) * 24, (cy - bh / 2) * 16, (cx + bw / 2) * 24, (cy + bh / 2) * 16]),
    )
    torch.testing.assert_close(prediction.frame_scores[0], torch.tensor([0.7, 0.8]))
    stricter = postprocess(output, threshold=0.9)
    assert stricter.masks.sum() <= prediction.masks.sum()


def test_postprocess_rejects_bad_threshold_and_logits() -> None:
    output = _output([[[0.2, 0.7]]])
    with pytest.raises(ConfigError, match="threshold"):
        postprocess(output, threshold=1.0)
    with pytest.raises(ConfigError, match="size-1 class axis"):
        select_referred_query(torch.zeros(1, 2, 3, 2))
