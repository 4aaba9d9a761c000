"""Light mask predictor of LAVT (top-down over the multi-modal features F_4..F_1).

Source: LAVT (CVPR 2022) Sec. 3.4, Eq. 10:
``Y_4 = F_4``; ``Y_i = rho_i([up(Y_{i+1}); F_i])`` for ``i = 3, 2, 1``, where
``up`` is bilinear upsampling to ``F_i``'s size, ``[;]`` is channel
concatenation and ``rho_i`` is two 3x3 convolutions, each followed by batch
norm and ReLU. A final 1x1 convolution maps ``Y_1`` to two class scores
(background, object) at the resolution of ``F_1`` (1/4 of the input).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svac.errors import ConfigError
from svac.baseline_config import NUM_CLASSES, NUM_STAGES
from svac.heads.lavt.errors import LAVTInputError

_KERNEL = 3


def _conv_bn_relu(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_dim, out_dim, kernel_size=_KERNEL, padding=_KERNEL // 2, bias=False),
        nn.BatchNorm2d(out_dim),
        nn.ReLU(),
    )


class MaskDecoder(nn.Module):
    """Top-down decoder of LAVT Eq. 10 producing two-class logits.

    Args:
        in_dims: channels ``(C_1, C_2, C_3, C_4)`` of ``F_1..F_4``.
        hidden_dim: channels of every ``rho_i`` output.
        num_classes: output classes (2: background, object).

    Attributes:
        blocks: ``rho_3, rho_2, rho_1`` in that order.
        classifier: the final 1x1 convolution.
    """

    def __init__(self, in_dims: Sequence[int], hidden_dim: int, num_classes: int = NUM_CLASSES):
        super().__init__()
        if len(in_dims) != NUM_STAGES:
            raise ConfigError(f"MaskDecoder needs {NUM_STAGES} input widths; got {tuple(in_dims)}")
        self.in_dims = tuple(int(d) for d in in_dims)
        blocks = []
        above = self.in_dims[-1]
        for skip in reversed(self.in_dims[:-1]):  # C_3, C_2, C_1
            blocks.append(nn.Sequential(_conv_bn_relu(above + skip, hidden_dim), _conv_bn_relu(hidden_dim, hidden_dim)))
            above = hidden_dim
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Conv2d(hidden_dim, num_classes, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Decode ``(F_1, F_2, F_3, F_4)``.

        Args:
            features: four float ``(N, C_i, H_i, W_i)`` maps, finest first.

        Returns:
            float ``(N, num_classes, H_1, W_1)`` logits.

        Raises:
            LAVTInputError: wrong count, rank, batch size or channels.
        """
        if len(features) != NUM_STAGES:
            raise LAVTInputError(f"MaskDecoder needs {NUM_STAGES} feature maps; got {len(features)}")
        for index, (feature, dim) in enumerate(zip(features, self.in_dims)):
            if feature.dim() != 4 or feature.shape[1] != dim or feature.shape[0] != features[0].shape[0]:
                raise LAVTInputError(
                    f"F_{index + 1} must be (N={features[0].shape[0]}, {dim}, H, W); got {tuple(feature.shape)}"
                )
        y = features[-1]  # Y_4 = F_4
        for block, skip in zip(self.blocks, reversed(features[:-1])):  # i = 3, 2, 1
            up = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([up, skip], dim=1))  # Eq. 10
        return self.classifier(y)
