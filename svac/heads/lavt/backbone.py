"""Swin backbones of LAVT, split into the four stages between which PWAMs sit.

Source: LAVT (CVPR 2022) Sec. 3.1 / Fig. 2 uses a four-stage Swin Transformer;
video LAVT (TPAMI 2024) uses Video Swin. Both are built from torchvision
(``torchvision.models.SwinTransformer`` and
``torchvision.models.video.swin_transformer.SwinTransformer3d``); only the
patch embedding and the ``features`` stages are kept (the classification
norm/head are dropped), and module names stay torchvision's so that a
``swin_b`` / ``swin3d_t`` state dict loads directly.

Stage ``i`` (1-based) = [patch embedding if ``i == 1`` else patch merging]
followed by the stage's Swin blocks. Features are channels-last, as in
torchvision: image ``(N, H_i, W_i, C_i)``, video ``(B, T, H_i, W_i, C_i)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from svac.errors import CheckpointError
from svac.baseline_config import LAVTConfig

_FEATURES_PREFIX = "features."
_PATCH_EMBED_PREFIX = "patch_embed."
_VIDEO_PATCH_WEIGHT = "patch_embed.proj.weight"
_TEMPORAL_KERNEL_AXIS = 2
"""Axis of the temporal kernel size in a Conv3d weight ``(out, in, t, h, w)``."""


class ImageSwinStages(nn.Module):
    """The four stages of a torchvision 2D Swin Transformer (image LAVT).

    Args:
        cfg: an ``"image"`` :class:`LAVTConfig`.

    Attributes:
        features: torchvision's ``features`` ``nn.Sequential``: ``[patch embed,
            stage 1, merge, stage 2, merge, stage 3, merge, stage 4]``.
        stage_dims: channels ``C_1..C_4``.
    """

    def __init__(self, cfg: LAVTConfig):
        super().__init__()
        from torchvision.models import SwinTransformer

        swin = SwinTransformer(
            patch_size=list(cfg.patch_size),
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.window_size),
            mlp_ratio=cfg.mlp_ratio,
            stochastic_depth_prob=cfg.drop_path_rate,
        )
        self.features = swin.features
        self.stage_dims = cfg.stage_dims

    def run_stage(self, index: int, x: Tensor) -> Tensor:
        """Run stage ``index`` (0-based).

        Args:
            index: 0..3.
            x: stage 0: float ``(N, 3, H, W)`` images; later stages: the
                previous stage's channels-last output ``(N, H', W', C')``
                (in LAVT, the language-gated ``E_{i-1}``).

        Returns:
            float ``(N, H_i, W_i, C_i)`` channels-last visual features ``V_i``.
        """
        if index == 0:
            x = self.features[0](x)
        else:
            x = self.features[2 * index](x)  # patch merging
        return self.features[2 * index + 1](x)

    def load_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a torchvision ``swin_*`` state dict (``features.*`` keys; ``norm``/``head`` ignored).

        Raises:
            svac.errors.CheckpointError: missing keys or shape mismatches.
        """
        _load_prefixed(self, state_dict, (_FEATURES_PREFIX,), convert=None)


class VideoSwinStages(nn.Module):
    """The four stages of a torchvision Video Swin Transformer (video LAVT).

    The temporal patch size is 1 (enforced by :class:`LAVTConfig`), so the
    number of frames is kept at every stage; patch merging is spatial only.

    Args:
        cfg: a ``"video"`` :class:`LAVTConfig`.
    """

    def __init__(self, cfg: LAVTConfig):
        super().__init__()
        from torchvision.models.video.swin_transformer import SwinTransformer3d

        swin = SwinTransformer3d(
            patch_size=list(cfg.patch_size),
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.window_size),
            mlp_ratio=cfg.mlp_ratio,
            stochastic_depth_prob=cfg.drop_path_rate,
        )
        self.patch_embed = swin.patch_embed
        self.features = swin.features
        self.stage_dims = cfg.stage_dims

    def run_stage(self, index: int, x: Tensor) -> Tensor:
        """Run stage ``index`` (0-based).

        Args:
            index: 0..3.
            x: stage 0: float ``(B, 3, T, H, W)`` clip; later stages: the
                previous stage's output ``(B, T, H', W', C')``.

        Returns:
            float ``(B, T, H_i, W_i, C_i)`` channels-last visual features ``V_i``.
        """
        if index == 0:
            x = self.patch_embed(x)
        else:
            x = self.features[2 * index - 1](x)  # patch merging
        return self.features[2 * index](x)

    def load_weights(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a torchvision ``swin3d_*`` state dict (``patch_embed.*`` and ``features.*`` keys).

        A Kinetics checkpoint has a temporal patch of 2; its patch-embedding
        kernel is summed over the temporal axis, which gives the same response
        as the original on a clip whose frames are identical.

        Raises:
            svac.errors.CheckpointError: missing keys or shape mismatches.
        """
        _load_prefixed(self, state_dict, (_PATCH_EMBED_PREFIX, _FEATURES_PREFIX), convert=_fold_temporal_patch)


def _fold_temporal_patch(key: str, tensor: Tensor, target: Tensor) -> Tensor:
    if key == _VIDEO_PATCH_WEIGHT and tensor.dim() == target.dim() and tensor.shape != target.shape:
        if target.shape[_TEMPORAL_KERNEL_AXIS] == 1:
            return tensor.sum(dim=_TEMPORAL_KERNEL_AXIS, keepdim=True)
    return tensor


def _load_prefixed(module: nn.Module, state_dict: Mapping[str, Tensor], prefixes: tuple[str, ...], convert) -> None:
    own = module.state_dict()
    selected = {}
    for key, tensor in state_dict.items():
        if not key.startswith(prefixes):
            continue
        if key not in own:
            raise CheckpointError(f"backbone checkpoint key {key!r} does not exist in the LAVT backbone")
        if convert is not None:
            tensor = convert(key, tensor, own[key])
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"backbone checkpoint key {key!r} has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(own[key].shape)} (check embed_dim / depths / heads / window_size)"
            )
        selected[key] = tensor
    missing = sorted(set(own) - set(selected))
    if missing:
        raise CheckpointError(f"backbone checkpoint lacks {len(missing)} keys, e.g. {missing[:3]}")
    module.load_state_dict(selected, strict=True)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a local ``.pth`` state dict (``weights_only``); a ``{"model": ...}`` wrapper is unwrapped.

    Raises:
        svac.errors.CheckpointError: the file is missing or does not hold a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"backbone weights file not found: {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise CheckpointError(f"cannot read backbone weights {path}: {exc}") from exc
    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        loaded = loaded["model"]
    if not isinstance(loaded, dict) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return loaded


def build_stages(cfg: LAVTConfig) -> ImageSwinStages | VideoSwinStages:
    """Build the backbone for ``cfg.variant`` and load ``cfg.backbone_weights`` if set.

    Raises:
        svac.errors.CheckpointError: unreadable or mismatching weights.
    """
    stages: ImageSwinStages | VideoSwinStages
    stages = ImageSwinStages(cfg) if cfg.variant == "image" else VideoSwinStages(cfg)
    if cfg.backbone_weights is not None:
        stages.load_weights(read_state_dict(cfg.backbone_weights))
    return stages

