"""Visual backbones of ReferFormer: multi-scale features at strides 4, 8, 16, 32.

ReferFormer (Wu et al., CVPR 2022, §3.1 "Visual encoder") takes the outputs of
the last four stages of a ResNet or Swin backbone run on every frame, or of a
Video Swin Transformer run on the clip. Every backbone here returns a list of
four frame-major feature maps ``(B*T, C_l, H/s, W/s)`` for ``s = 4, 8, 16, 32``
and exposes their channel counts as ``channels``.

Weights: ``weights=None`` builds a randomly initialised network; otherwise a
torchvision weight enum name (downloaded by torchvision into ``$TORCH_HOME``
unless already cached — pre-fill the cache on machines without network) or a
local ``state_dict`` path of the full torchvision classifier.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models as tv_models
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.video.swin_transformer import SwinTransformer3d
from torchvision.ops import FrozenBatchNorm2d

from svac.errors import CheckpointError, ConfigError

from svac.baseline_config import MAX_BACKBONE_STRIDE, ReferFormerConfig

#: Indices of the four stage outputs inside torchvision Swin ``features``.
SWIN_STAGE_INDICES = (1, 3, 5, 7)
#: Indices of the four stage outputs inside torchvision Swin3d ``features``.
SWIN3D_STAGE_INDICES = (0, 2, 4, 6)
#: Temporal patch size of torchvision's Video Swin patch embedding (frames).
VIDEO_SWIN_TEMPORAL_PATCH = 2

#: Miniature Swin for tests (torchvision ``SwinTransformer`` keyword arguments).
TINY_SWIN_KWARGS = {
    "patch_size": [4, 4],
    "embed_dim": 16,
    "depths": [1, 1, 1, 1],
    "num_heads": [1, 1, 1, 1],
    "window_size": [4, 4],
}
#: Miniature Video Swin for tests (torchvision ``SwinTransformer3d`` keyword arguments).
TINY_VIDEO_SWIN_KWARGS = {
    "patch_size": [2, 4, 4],
    "embed_dim": 16,
    "depths": [1, 1, 1, 1],
    "num_heads": [1, 1, 1, 1],
    "window_size": [2, 4, 4],
}
#: Blocks per stage of the miniature ResNet (BasicBlock).
TINY_RESNET_LAYERS = [1, 1, 1, 1]

_SWIN_BUILDERS = {"swin_t": "swin_t", "swin_s": "swin_s", "swin_b": "swin_b"}
_VIDEO_SWIN_BUILDERS = {"video_swin_t": "swin3d_t", "video_swin_s": "swin3d_s", "video_swin_b": "swin3d_b"}
_RESNET_BUILDERS = {"resnet50": "resnet50", "resnet101": "resnet101"}


class FrameBackbone(nn.Module):
    """Base class: frames ``(B, T, 3, H, W)`` → four maps ``(B*T, C_l, H/s, W/s)``, s = 4, 8, 16, 32.

    Attributes:
        channels: channel count of each of the four levels.
    """

    channels: tuple[int, int, int, int]

    def check_input(self, frames: torch.Tensor) -> None:
        """Raise :class:`ConfigError` unless ``frames`` is float ``(B, T, 3, H, W)`` with H, W multiples of 32."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ConfigError(f"frames must have shape (B, T, 3, H, W), got {tuple(frames.shape)}")
        if not frames.is_floating_point():
            raise ConfigError(f"frames must be a float tensor (normalized), got {frames.dtype}")
        height, width = frames.shape[-2:]
        if height % MAX_BACKBONE_STRIDE or width % MAX_BACKBONE_STRIDE:
            raise ConfigError(
                f"frame height and width must be multiples of {MAX_BACKBONE_STRIDE} pixels, got {height}x{width}; "
                "resize or pad the frames first"
            )


class SwinBackbone(FrameBackbone):
    """Per-frame torchvision Swin Transformer; returns the four stage outputs (Liu et al., ICCV 2021)."""

    def __init__(self, swin: SwinTransformer) -> None:
        super().__init__()
        self.stages = swin.features
        dims = [self.stages[0][0].out_channels * 2**i for i in range(4)]
        self.channels = (dims[0], dims[1], dims[2], dims[3])

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Frames float ``(B, T, 3, H, W)`` → list of four ``(B*T, C_l, H/s, W/s)``."""
        self.check_input(frames)
        x = frames.flatten(0, 1)
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in SWIN_STAGE_INDICES:
                outputs.append(x.permute(0, 3, 1, 2).contiguous())
        return outputs


class ResNetBackbone(FrameBackbone):
    """Per-frame torchvision ResNet with frozen BatchNorm; returns ``layer1..layer4`` (He et al., CVPR 2016)."""

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layers = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        dims = []
        for layer in self.layers:
            last_block = layer[-1]
            last_bn = last_block.bn3 if hasattr(last_block, "bn3") else last_block.bn2
            dims.append(last_bn.weight.shape[0])
        self.channels = (dims[0], dims[1], dims[2], dims[3])

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Frames float ``(B, T, 3, H, W)`` → list of four ``(B*T, C_l, H/s, W/s)``."""
        self.check_input(frames)
        x = self.stem(frames.flatten(0, 1))
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


class VideoSwinBackbone(FrameBackbone):
    """Spatio-temporal torchvision Video Swin (Liu et al., CVPR 2022) run on the whole clip.

    torchvision's patch embedding merges 2 frames into one token; the clip is
    padded to an even length by repeating its last frame and every output
    time step is repeated twice (then cropped to T), so each frame gets the
    features of the temporal patch that contains it.
    """

    def __init__(self, swin3d: SwinTransformer3d) -> None:
        super().__init__()
        self.patch_embed = swin3d.patch_embed
        self.pos_drop = swin3d.pos_drop
        self.stages = swin3d.features
        embed = self.patch_embed.proj.out_channels
        if self.patch_embed.proj.stride[0] != VIDEO_SWIN_TEMPORAL_PATCH:
            raise ConfigError(
                f"video swin temporal patch must be {VIDEO_SWIN_TEMPORAL_PATCH}, got {self.patch_embed.proj.stride[0]}"
            )
        self.channels = (embed, embed * 2, embed * 4, embed * 8)

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Frames float ``(B, T, 3, H, W)`` → list of four ``(B*T, C_l, H/s, W/s)``."""
        self.check_input(frames)
        num_frames = frames.shape[1]
        pad = (-num_frames) % VIDEO_SWIN_TEMPORAL_PATCH
        if pad:
            frames = torch.cat([frames, frames[:, -1:].expand(-1, pad, -1, -1, -1)], dim=1)
        x = self.pos_drop(self.patch_embed(frames.transpose(1, 2)))  # (B, T', h, w, C)
        outputs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in SWIN3D_STAGE_INDICES:
                level = x.repeat_interleave(VIDEO_SWIN_TEMPORAL_PATCH, dim=1)[:, :num_frames]
                outputs.append(level.permute(0, 1, 4, 2, 3).flatten(0, 1).contiguous())
        return outputs


def build_backbone(cfg: ReferFormerConfig) -> FrameBackbone:
    """Build the backbone named by ``cfg.backbone`` with ``cfg.backbone_weights``.

    Raises:
        ConfigError: unknown backbone or weight name.
        CheckpointError: the weight file is missing or does not fit the network.
    """
    name = cfg.backbone
    if name == "tiny_swin":
        backbone: FrameBackbone = SwinBackbone(SwinTransformer(**TINY_SWIN_KWARGS))
    elif name == "tiny_video_swin":
        backbone = VideoSwinBackbone(SwinTransformer3d(**TINY_VIDEO_SWIN_KWARGS))
    elif name == "tiny_resnet":
        backbone = ResNetBackbone(ResNet(BasicBlock, TINY_RESNET_LAYERS, norm_layer=FrozenBatchNorm2d))
    elif name in _SWIN_BUILDERS:
        backbone = SwinBackbone(_build_torchvision(_SWIN_BUILDERS[name], cfg.backbone_weights))
    elif name in _VIDEO_SWIN_BUILDERS:
        backbone = VideoSwinBackbone(_build_torchvision(_VIDEO_SWIN_BUILDERS[name], cfg.backbone_weights))
    elif name in _RESNET_BUILDERS:
        backbone = ResNetBackbone(
            _build_torchvision(_RESNET_BUILDERS[name], cfg.backbone_weights, norm_layer=FrozenBatchNorm2d)
        )
    else:  # pragma: no cover - ReferFormerConfig validates the name
        raise ConfigError(f"unknown backbone {name!r}")
    if cfg.freeze_backbone:
        backbone.requires_grad_(False)
    return backbone


def _build_torchvision(builder: str, weights: str | None, **kwargs: object) -> nn.Module:
    """Build torchvision model ``builder`` with enum weights, a local state dict, or none."""
    if weights is None:
        return tv_models.get_model(builder, weights=None, **kwargs)
    path = Path(weights)
    if path.suffix in {".pth", ".pt", ".bin", ".safetensors"} or path.exists():
        if not path.is_file():
            raise CheckpointError(f"backbone weight file {str(path)!r} does not exist")
        model = tv_models.get_model(builder, weights=None, **kwargs)
        state = _load_state_dict(path)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise CheckpointError(f"backbone weights {str(path)!r} do not fit {builder}: {error}") from error
        return model
    # a weight name is looked up among the builder's own weights enum only (never by a free name)
    enum_class = tv_models.get_model_weights(builder)
    enum_name, _, member = weights.partition(".")
    if enum_name != enum_class.__name__ or member not in enum_class.__members__:
        raise ConfigError(
            f"backbone_weights {weights!r} is neither a torchvision weight name of {builder} "
            f"({', '.join(f'{enum_class.__name__}.{m}' for m in enum_class.__members__)}) nor an existing file"
        )
    return tv_models.get_model(builder, weights=enum_class[member], **kwargs)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch pickle (``weights_only``)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any read failure is a bad checkpoint
        raise CheckpointError(f"cannot read backbone weights {str(path)!r}: {error}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"backbone weights {str(path)!r} hold a {type(state).__name__}, not a state dict")
    return state
