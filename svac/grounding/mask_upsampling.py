"""Low-resolution mask logits to full-size binary masks: bilinear upsampling computed only where a mask can be on.

SAM-2 predicts mask logits at a quarter of its input side (32 x 32 cells at 128 px); svac's masks
are at the video's frame size. Upsampling every frame in full (``F.interpolate``, then a
threshold) cost about 1.2 ms per 854x480 frame on this project's CPU, most of it on pixels far from
any object. :func:`upsample_masks` gives the same bilinear masks (``align_corners=False``, the
convention of ``F.interpolate`` and SAM-2's video predictor) but computes the interpolation only
inside the window of output rows and columns that can be above the threshold:

* a bilinear value is a convex combination of its four neighbouring cells, so a pixel whose
  neighbouring cells are all at or below the threshold is at or below it too (with the threshold
  subtracted first, the combination of values <= 0 with weights >= 0 stays <= 0 in floating point);
* the window is the bounding box, over every object and frame of a chunk, of the output rows and
  columns with a neighbouring cell above the threshold; everything outside it is ``False``;
* inside the window, the columns are interpolated first on the low-resolution rows (cheap), then
  the rows: the output rows between two source rows are one fused multiply-add of those rows.

The values differ from ``F.interpolate``'s only by float rounding (the order of the operations), so
a pixel changes side only when its value is within rounding of the threshold
(``tests/test_mask_upsampling.py``).

Source: svac's implementation (issue 14); bilinear sampling as PyTorch's ``upsample_bilinear2d``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def source_indices(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two source cells and the weight of the second for each output position of a bilinear resize.

    ``align_corners=False``: output position ``o`` samples source coordinate ``(o + 0.5) * in/out - 0.5``,
    clamped at 0; the cells are its floor and the next one (the last cell twice at the border).

    Args:
        in_size: source length (cells), >= 1.
        out_size: output length (pixels), >= 1.

    Returns:
        ``(first, second, weight)``: ``int64 (out_size,)`` cell indices and ``float32 (out_size,)`` the weight
        of ``second`` in [0, 1].

    Raises:
        ValueError: when a size is below 1.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got {in_size} -> {out_size}")
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = ((torch.arange(out_size, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min(0.0)
    first = src.floor().long().clamp_max(in_size - 1)
    second = (first + 1).clamp_max(in_size - 1)
    weight = (src - first.float()).clamp(0.0, 1.0)
    return first, second, weight


def upsample_masks(logits: torch.Tensor, frame_size: tuple[int, int], threshold: float) -> np.ndarray:
    """Thresholded bilinear upsampling of ``(K, n, h, w)`` logits to ``bool (K, n, H, W)`` masks (module docstring).

    The window is used when the frame is larger than 4x the logits on each side (more than SAM-2's own input,
    whose logits are a quarter of its side) and the window covers at most half of it; otherwise the whole
    frame is upsampled with ``F.interpolate`` (the window's per-source-row operations would cost more than
    the pixels they skip). Both give the same bilinear values up to float rounding.

    Args:
        logits: ``float (K, n, h, w)`` mask logits (any float dtype and device; computed in float32).
        frame_size: ``(H, W)`` of the masks (pixels).
        threshold: a pixel is on when its interpolated logit is above it.

    Returns:
        ``bool (K, n, H, W)`` numpy masks.

    Raises:
        ValueError: when ``logits`` is not 4-D or a size is below 1.
    """
    if logits.ndim != 4:
        raise ValueError(f"expected logits (K, n, h, w), got {tuple(logits.shape)}")
    k, n, h, w = logits.shape
    height, width = int(frame_size[0]), int(frame_size[1])
    shifted = logits.float() - float(threshold)  # on <=> > 0
    if height <= 4 * h and width <= 4 * w:
        return _whole(shifted, height, width)
    row_sampling, col_sampling = source_indices(h, height), source_indices(w, width)
    above = shifted > 0
    rows = _window(above.any(dim=-1).flatten(0, -2).any(dim=0), row_sampling)
    cols = _window(above.any(dim=-2).flatten(0, -2).any(dim=0), col_sampling)
    masks = np.zeros((k, n, height, width), dtype=bool)
    if rows is None or cols is None:
        return masks
    (y0, y1), (x0, x1) = rows, cols
    if 2 * (y1 - y0) * (x1 - x0) > height * width:
        return _whole(shifted, height, width)
    first, second, weight = (t[x0:x1].to(shifted.device) for t in col_sampling)
    # columns on the low-resolution rows; index_select copies whole rows (advanced indexing was 2-4x slower here)
    across = torch.lerp(shifted.index_select(-1, first), shifted.index_select(-1, second), weight)  # (K, n, h, Ww)
    # rows: the output rows whose first source row is j are A_j + w * (A_j+1 - A_j), one fused op per source row
    # (gathering two full-size copies of the rows and blending them cost 3x more here)
    step = torch.zeros_like(across)
    step[..., :-1, :] = across[..., 1:, :] - across[..., :-1, :]  # the last row has no next one (its weight is 0)
    first, weight = row_sampling[0][y0:y1], row_sampling[2][y0:y1].to(shifted.device)[:, None]
    values = torch.empty((k, n, y1 - y0, x1 - x0), dtype=torch.float32, device=shifted.device)
    cells, counts = torch.unique_consecutive(first, return_counts=True)
    start = 0
    for j, count in zip(cells.tolist(), counts.tolist()):
        torch.addcmul(across[..., j:j + 1, :], weight[start:start + count], step[..., j:j + 1, :],
                      out=values[..., start:start + count, :])
        start += count
    masks[..., y0:y1, x0:x1] = (values > 0).cpu().numpy()
    return masks


def _whole(shifted: torch.Tensor, height: int, width: int) -> np.ndarray:
    """The whole frame with ``F.interpolate`` (bilinear, ``align_corners=False``), thresholded at 0."""
    up = F.interpolate(shifted, size=(height, width), mode="bilinear", align_corners=False)
    return (up > 0).cpu().numpy()


def _window(cells_on: torch.Tensor, sampling: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
            ) -> tuple[int, int] | None:
    """``[start, stop)`` of the output positions with a source cell in ``cells_on`` (``bool (in,)``), or ``None``."""
    first, second, _ = sampling
    on = cells_on.cpu()
    reach = on[first] | on[second]
    hits = reach.nonzero()
    if hits.numel() == 0:
        return None
    return int(hits[0]), int(hits[-1]) + 1
