"""Cross-modal Feature Pyramid Network (CM-FPN) of ReferFormer.

ReferFormer (Wu et al., CVPR 2022, §3.3 "Cross-modal feature pyramid
network"): a 4-level top-down FPN over the stride-4 backbone map and the
encoder outputs at strides 8, 16, 32. At every level the map is fused with
the text by (1) self-attention whose keys/values are spatially reduced by
the factors ``[8, 4, 2, 1]`` (strides 4, 8, 16, 32; PVT's spatial-reduction
attention, Wang et al., ICCV 2021, §3.3) and (2) cross-attention from the
pixels to the words. A final 3x3 convolution at stride 4 gives the mask
features segmented by the dynamic kernels.

Per level (coarse to fine): ``x = lateral(f_l) + upsample(y_{l+1})``;
``x = x + SRA(x)``, LayerNorm; ``x = x + CrossAttn(x, words)``, LayerNorm;
``y_l = ReLU(GN(conv3x3(x)))``. Output: ``conv3x3(y_4)`` → ``mask_dim`` channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from svac.errors import ConfigError

from svac.baseline_config import GROUP_NORM_GROUPS, ReferFormerConfig
from .fusion import PixelWordAttention
from .position import sine_position_encoding

#: Number of pyramid levels (strides 4, 8, 16, 32).
NUM_FPN_LEVELS = 4


class SpatialReductionAttention(nn.Module):
    """Self-attention whose keys/values come from the map downsampled by ``reduction`` (PVT §3.3).

    The reduction is a ``reduction x reduction`` convolution with the same
    stride followed by LayerNorm; the map is zero-padded to a multiple of the
    factor first. ``reduction = 1`` is plain self-attention.
    """

    def __init__(self, dim: int, nheads: int, reduction: int, dropout: float) -> None:
        super().__init__()
        self.reduction = reduction
        self.attn = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)
        if reduction > 1:
            self.reduce = nn.Conv2d(dim, dim, kernel_size=reduction, stride=reduction)
            self.reduce_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x`` float ``(N, C, h, w)``, ``pos`` ``(C, h, w)`` → attention output float ``(N, C, h, w)``."""
        n, c, h, w = x.shape
        query = (x + pos).flatten(2).transpose(1, 2)
        if self.reduction > 1:
            pad_h, pad_w = (-h) % self.reduction, (-w) % self.reduction
            padded = F.pad(x, (0, pad_w, 0, pad_h))
            kv = self.reduce_norm(self.reduce(padded).flatten(2).transpose(1, 2))
            kv_pos = F.avg_pool2d(F.pad(pos, (0, pad_w, 0, pad_h))[None], self.reduction)[0]
        else:
            kv = x.flatten(2).transpose(1, 2)
            kv_pos = pos
        key = kv + kv_pos.flatten(1).transpose(0, 1)
        out, _ = self.attn(query, key, kv, need_weights=False)
        return out.transpose(1, 2).reshape(n, c, h, w)


class VisionLanguageBlock(nn.Module):
    """One CM-FPN fusion step: spatial-reduction self-attention then pixel-to-word cross-attention."""

    def __init__(self, dim: int, nheads: int, reduction: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SpatialReductionAttention(dim, nheads, reduction, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn = PixelWordAttention(dim, nheads, dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, words: torch.Tensor, word_padding: torch.Tensor
    ) -> torch.Tensor:
        """``x`` float ``(N, C, h, w)`` → fused float ``(N, C, h, w)``; words ``(N, L, C)``."""
        x = _channel_norm(self.norm1, x + self.self_attn(x, pos))
        return _channel_norm(self.norm2, x + self.cross_attn(x, pos, words, word_padding))


class CrossModalFPN(nn.Module):
    """CM-FPN: stride-4 backbone map + encoder maps at strides 8/16/32 → mask features at stride 4."""

    def __init__(self, cfg: ReferFormerConfig, stride4_channels: int) -> None:
        super().__init__()
        dim = cfg.hidden_dim
        in_channels = [stride4_channels, dim, dim, dim]
        self.laterals = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dim, kernel_size=1), nn.GroupNorm(GROUP_NORM_GROUPS, dim)) for c in in_channels
        )
        self.blocks = nn.ModuleList(
            VisionLanguageBlock(dim, cfg.nheads, reduction, cfg.dropout) for reduction in cfg.fpn_reduction
        )
        self.outputs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=3, padding=1, bias=False),
                nn.GroupNorm(GROUP_NORM_GROUPS, dim),
                nn.ReLU(),
            )
            for _ in range(NUM_FPN_LEVELS)
        )
        self.mask_conv = nn.Conv2d(dim, cfg.mask_dim, kernel_size=3, padding=1)

    def forward(
        self, maps: list[torch.Tensor], words: torch.Tensor, word_padding: torch.Tensor
    ) -> torch.Tensor:
        """Build the mask features.

        Args:
            maps: four maps, strides 4, 8, 16, 32: the backbone's stride-4 map
                ``(N, C_0, H/4, W/4)`` then encoder outputs ``(N, C, H/s, W/s)``.
            words: float ``(N, L, C)``; word_padding: bool ``(N, L)``.

        Returns:
            Float ``(N, mask_dim, H/4, W/4)``.
        """
        if len(maps) != NUM_FPN_LEVELS:
            raise ConfigError(f"CM-FPN needs {NUM_FPN_LEVELS} maps (strides 4..32), got {len(maps)}")
        y = self._level(NUM_FPN_LEVELS - 1, self.laterals[-1](maps[-1]), words, word_padding)
        for level in reversed(range(NUM_FPN_LEVELS - 1)):
            x = self.laterals[level](maps[level])
            x = x + F.interpolate(y, size=x.shape[-2:], mode="nearest")
            y = self._level(level, x, words, word_padding)
        return self.mask_conv(y)

    def _level(self, level: int, x: torch.Tensor, words: torch.Tensor, word_padding: torch.Tensor) -> torch.Tensor:
        """Fuse one level with the text and apply its output convolution."""
        pos = sine_position_encoding(x.shape[-2], x.shape[-1], x.shape[1], device=x.device, dtype=x.dtype)
        return self.outputs[level](self.blocks[level](x, pos, words, word_padding))


def _channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """Apply a LayerNorm over the channels of a ``(N, C, h, w)`` map."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
