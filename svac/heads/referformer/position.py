"""2-D sine position encoding (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020, §A.4).

Normalized variant used by Deformable DETR and ReferFormer: row and column
indices 1..h and 1..w are scaled to (0, 2π], each encoded with ``C/2``
sine/cosine channels of geometrically spaced frequencies, and concatenated
as ``[y-channels, x-channels]``.
"""

from __future__ import annotations

import math

import torch

from svac.errors import ConfigError

#: Frequency base of the sine encoding (DETR).
SINE_TEMPERATURE = 10000.0
#: Coordinates are scaled to (0, SINE_SCALE].
SINE_SCALE = 2.0 * math.pi
#: Guards the normalisation against division by zero.
SINE_EPS = 1e-6


def sine_position_encoding(
    height: int, width: int, channels: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Return the position encoding float ``(channels, height, width)`` of an unpadded map.

    Raises:
        ConfigError: ``channels`` is not a positive multiple of 4.
    """
    if channels <= 0 or channels % 4:
        raise ConfigError(f"sine position encoding needs channels divisible by 4, got {channels}")
    half = channels // 2
    ys = torch.arange(1, height + 1, device=device, dtype=dtype) / (height + SINE_EPS) * SINE_SCALE
    xs = torch.arange(1, width + 1, device=device, dtype=dtype) / (width + SINE_EPS) * SINE_SCALE
    exponent = 2 * (torch.arange(half, device=device, dtype=dtype) // 2) / half
    freqs = SINE_TEMPERATURE**exponent  # (half,)
    pos_y = ys[:, None] / freqs  # (h, half)
    pos_x = xs[:, None] / freqs  # (w, half)
    pos_y = torch.stack([pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()], dim=2).flatten(1)
    pos_x = torch.stack([pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()], dim=2).flatten(1)
    grid_y = pos_y.t()[:, :, None].expand(half, height, width)
    grid_x = pos_x.t()[:, None, :].expand(half, height, width)
    return torch.cat([grid_y, grid_x], dim=0)
