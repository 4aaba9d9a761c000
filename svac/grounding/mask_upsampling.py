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
* the windows are, for each object on each frame and each block of cells above the threshold (a run
  of rows holding such cells, split into its runs of columns: :func:`cell_blocks`), the output rows
  and columns with a neighbouring cell in the block; everything outside them is ``False``;
* inside the window, the columns are interpolated first on the low-resolution rows (cheap), then
  the rows, each output row a blend of two rows (``torch.lerp``).

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

    Each object's mask on each frame is computed in its windows; when the windows add up to more than half
    of the chunk's pixels (large objects, scattered cells above the threshold), or the frame has fewer than
    :data:`MIN_PIXELS_PER_CELL` pixels per logit cell, the whole chunk is upsampled with ``F.interpolate``
    instead: there the windows' bookkeeping (about 0.1 ms per window) costs more than the pixels they skip
    (160x120 frames: 0.07 ms per frame in full). Both give the same bilinear values up to float rounding.

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
    if height * width < MIN_PIXELS_PER_CELL * h * w:
        return _whole(shifted, height, width)
    rows, cols = _Axis(h, height), _Axis(w, width)
    above = (shifted > 0).cpu().numpy()
    # one window per block of cells above the threshold, per object and frame: a stray cell in a corner
    # would otherwise stretch one bounding box over most of the frame
    windows = {(o, i): [(rows.reach(r), cols.reach(c)) for r, c in cell_blocks(above[o, i])]
               for o in range(k) for i in range(n)}
    area = sum((y1 - y0) * (x1 - x0) for frame in windows.values() for (y0, y1), (x0, x1) in frame)
    if 2 * area > k * n * height * width:  # most of the chunk (large objects, scattered cells): whole frames cost less
        return _whole(shifted, height, width)
    masks = np.zeros((k, n, height, width), dtype=bool)
    for (o, i), frame in windows.items():
        for (y0, y1), (x0, x1) in frame:
            masks[o, i, y0:y1, x0:x1] |= _bilinear(shifted[o, i], rows, cols, (y0, y1), (x0, x1))
    return masks


def cell_blocks(on: np.ndarray) -> list[tuple[slice, slice]]:
    """Blocks covering the ``True`` cells of ``on`` ``bool (h, w)``: each run of rows holding one, split into the runs
    of columns holding one within those rows.

    Every ``True`` cell lies in exactly one block; cells far apart in rows or in columns land in different
    blocks (a cheaper partition than connected components, and enough to keep windows small).

    Returns:
        ``(rows, columns)`` slices (step 1), rows ascending.
    """
    blocks = []
    for r0, r1 in _runs(on.any(axis=1)):
        for c0, c1 in _runs(on[r0:r1].any(axis=0)):
            blocks.append((slice(r0, r1), slice(c0, c1)))
    return blocks


def _runs(on: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of ``True`` in ``on`` ``bool (n,)``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], on.astype(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


class _Axis:
    """Bilinear sampling along one axis (:func:`source_indices`) and the output range a range of cells reaches."""

    def __init__(self, in_size: int, out_size: int) -> None:
        self.first, self.second, self.weight = source_indices(in_size, out_size)
        self._first, self._second = self.first.numpy(), self.second.numpy()

    def reach(self, cells: slice) -> tuple[int, int]:
        """``[start, stop)`` of the output positions sampling a cell of ``cells`` (a slice with a step of 1)."""
        # first and second do not decrease along the output: one binary search each
        return (int(np.searchsorted(self._second, cells.start, side="left")),
                int(np.searchsorted(self._first, cells.stop - 1, side="right")))


#: Fewest frame pixels per logit cell (upsampling area factor) for which :func:`upsample_masks` computes windows;
#: 64 = 8x along each side (SAM-2's logits are a quarter of its input side: frames above twice that input).
MIN_PIXELS_PER_CELL = 64


def _bilinear(cells: torch.Tensor, rows: _Axis, cols: _Axis, window_rows: tuple[int, int],
              window_cols: tuple[int, int]) -> np.ndarray:
    """``bool (y1 - y0, x1 - x0)``: the bilinear values of ``cells`` ``(h, w)`` on the window, above 0.

    Columns first on the low-resolution rows, then rows; ``index_select`` copies whole rows (advanced
    indexing was 2-4x slower here).
    """
    (y0, y1), (x0, x1) = window_rows, window_cols
    device = cells.device
    first, second, weight = (t[x0:x1].to(device) for t in (cols.first, cols.second, cols.weight))
    across = torch.lerp(cells.index_select(-1, first), cells.index_select(-1, second), weight)  # (h, x1 - x0)
    first, second, weight = (t[y0:y1].to(device) for t in (rows.first, rows.second, rows.weight))
    values = torch.lerp(across.index_select(0, first), across.index_select(0, second), weight[:, None])
    return (values > 0).cpu().numpy()


def _whole(shifted: torch.Tensor, height: int, width: int) -> np.ndarray:
    """The whole frame with ``F.interpolate`` (bilinear, ``align_corners=False``), thresholded at 0."""
    up = F.interpolate(shifted, size=(height, width), mode="bilinear", align_corners=False)
    return (up > 0).cpu().numpy()
