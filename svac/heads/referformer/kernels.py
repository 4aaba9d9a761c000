"""Instance-conditioned segmentation kernels: ReferFormer's dynamic convolution and SgMg's patch kernel.

Dynamic convolution — ReferFormer (Wu et al., CVPR 2022, §3.4 "Instance
segmentation"), after CondInst (Tian et al., ECCV 2020): a controller of
linear layers maps each decoder output to the weights and biases of a small
stack of 1x1 convolutions (3 layers, 8 channels). They run on the CM-FPN mask
features concatenated with the 2 relative coordinates of every pixel to the
centre of the query's box, giving one mask logit map per query at stride 4.

Conditional patch kernel (CPK) — SgMg (Miao et al., ICCV 2023, §3.3): the
kernels segment the encoded (stride-8) features directly; a linear layer
maps each instance embedding to two point-wise convolutions whose output has
``p²`` channels, and ``pixel_shuffle`` rearranges them into a ``p`` times
finer mask (each low-resolution pixel predicts a ``p x p`` patch).

Relative coordinates are in normalized image units: ``x/W - cx`` and
``y/H - cy`` at pixel centres, in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from svac.errors import ConfigError

from svac.baseline_config import ReferFormerConfig
from .deformable import MLP

#: Relative coordinate channels appended to the mask features (x, y).
COORD_CHANNELS = 2


def relative_coordinates(centers: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Offsets of every pixel centre from each box centre, float ``(N, Q, 2, height, width)``.

    Args:
        centers: float ``(N, Q, 2)`` box centres ``(cx, cy)`` normalized to [0, 1].
    """
    xs = (torch.arange(width, device=centers.device, dtype=centers.dtype) + 0.5) / width
    ys = (torch.arange(height, device=centers.device, dtype=centers.dtype) + 0.5) / height
    rel_x = xs.view(1, 1, 1, width) - centers[..., 0, None, None]
    rel_y = ys.view(1, 1, height, 1) - centers[..., 1, None, None]
    return torch.stack([rel_x.expand(-1, -1, height, -1), rel_y.expand(-1, -1, -1, width)], dim=2)


def conv_layer_shapes(
    in_channels: int, hidden_channels: int, out_channels: int, num_layers: int
) -> list[tuple[int, int]]:
    """``(out, in)`` channel pairs of a stack of ``num_layers`` 1x1 convolutions."""
    dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
    return list(zip(dims[1:], dims[:-1]))


def num_dynamic_params(shapes: list[tuple[int, int]]) -> int:
    """Weights plus biases of 1x1 convolutions with the given ``(out, in)`` shapes."""
    return sum(o * i + o for o, i in shapes)


def split_dynamic_params(
    params: torch.Tensor, shapes: list[tuple[int, int]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Cut flat parameters ``(K, P)`` into weights ``(K, out, in)`` and biases ``(K, out)`` per layer.

    Layout: all weights first (layer by layer, row-major ``out x in``), then all biases.

    Raises:
        ConfigError: ``P`` differs from :func:`num_dynamic_params`.
    """
    expected = num_dynamic_params(shapes)
    if params.shape[-1] != expected:
        raise ConfigError(f"dynamic parameters have {params.shape[-1]} entries, expected {expected}")
    sizes = [o * i for o, i in shapes] + [o for o, _ in shapes]
    chunks = params.split(sizes, dim=-1)
    k = params.shape[0]
    weights = [chunk.reshape(k, o, i) for chunk, (o, i) in zip(chunks[: len(shapes)], shapes)]
    biases = list(chunks[len(shapes) :])
    return weights, biases


def dynamic_pointwise_convs(
    inputs: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> torch.Tensor:
    """Run a different stack of 1x1 convolutions on each of K inputs (ReLU between layers, none after the last).

    Implemented as one grouped ``conv2d`` per layer with ``groups = K``.

    Args:
        inputs: float ``(K, C_in, h, w)``.
        weights: per layer, float ``(K, out, in)``.
        biases: per layer, float ``(K, out)``.

    Returns:
        Float ``(K, out_last, h, w)``.
    """
    k, _, h, w = inputs.shape
    x = inputs.reshape(1, -1, h, w)
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        x = F.conv2d(x, weight.reshape(-1, weight.shape[-1], 1, 1), bias.reshape(-1), groups=k)
        if index < len(weights) - 1:
            x = torch.relu(x)
    return x.reshape(k, -1, h, w)


class DynamicMaskHead(nn.Module):
    """ReferFormer's mask head: controller MLP → dynamic 1x1 conv stack on mask features + coordinates."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.shapes = conv_layer_shapes(
            cfg.mask_dim + COORD_CHANNELS, cfg.dynamic_conv_channels, 1, cfg.dynamic_conv_layers
        )
        self.controller = MLP(cfg.hidden_dim, cfg.hidden_dim, num_dynamic_params(self.shapes), cfg.controller_layers)

    def forward(self, queries: torch.Tensor, features: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """Mask logits.

        Args:
            queries: float ``(N, Q, C)`` decoder outputs (N frames, Q queries).
            features: float ``(N, mask_dim, h, w)`` CM-FPN mask features (stride 4).
            centers: float ``(N, Q, 2)`` normalized box centres.

        Returns:
            Float ``(N, Q, h, w)`` mask logits at the resolution of ``features``.
        """
        n, q = queries.shape[:2]
        h, w = features.shape[-2:]
        inputs = torch.cat(
            [features[:, None].expand(-1, q, -1, -1, -1), relative_coordinates(centers, h, w)], dim=2
        ).flatten(0, 1)
        weights, biases = split_dynamic_params(self.controller(queries).flatten(0, 1), self.shapes)
        return dynamic_pointwise_convs(inputs, weights, biases).reshape(n, q, h, w)


class ConditionalPatchKernel(nn.Module):
    """SgMg's CPK: linear → two dynamic 1x1 convs producing ``p²`` channels → ``pixel_shuffle(p)``."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.patch = cfg.cpk_patch_size
        self.shapes = conv_layer_shapes(
            cfg.mask_dim + COORD_CHANNELS, cfg.dynamic_conv_channels, self.patch**2, num_layers=2
        )
        self.controller = nn.Linear(cfg.hidden_dim, num_dynamic_params(self.shapes))

    def forward(self, queries: torch.Tensor, features: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
        """Patch mask logits.

        Args:
            queries: float ``(N, Q, C)`` instance embeddings.
            features: float ``(N, mask_dim, h, w)`` encoded features (stride 8).
            centers: float ``(N, Q, 2)`` normalized box centres.

        Returns:
            Float ``(N, Q, h * p, w * p)`` mask logits.
        """
        n, q = queries.shape[:2]
        h, w = features.shape[-2:]
        inputs = torch.cat(
            [features[:, None].expand(-1, q, -1, -1, -1), relative_coordinates(centers, h, w)], dim=2
        ).flatten(0, 1)
        weights, biases = split_dynamic_params(self.controller(queries).flatten(0, 1), self.shapes)
        patches = dynamic_pointwise_convs(inputs, weights, biases)  # (N*Q, p*p, h, w)
        return F.pixel_shuffle(patches, self.patch).reshape(n, q, h * self.patch, w * self.patch)
