"""Configuration of the LAVT baseline head (image and video variants).

Source: Yang et al., "LAVT: Language-Aware Vision Transformer for Referring
Image Segmentation", CVPR 2022 (image LAVT, Sec. 3) and its TPAMI 2024
extension "Language-Aware Vision Transformer for Referring Segmentation"
(video LAVT with a 3D pixel-word attention module).

Backbone shapes follow torchvision: the image default is ``swin_b``
(patch 4, embed 128, depths 2-2-18-2, heads 4-8-16-32, window 7), the video
default is ``swin3d_t`` (embed 96, depths 2-2-6-2, heads 3-6-12-24, window
8x7x7) with a temporal patch size of 1 so that every input frame keeps its own
feature map and logits. Values the paper does not state are marked as such in
:class:`LAVTConfig`'s docstring.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from svac.errors import ConfigError

VARIANTS = ("image", "video")
LOSSES = ("dice", "ce", "ce+dice")
NUM_STAGES = 4
NUM_CLASSES = 2
"""Two-class logits: index 0 is background, index 1 is the referred object."""
STAGE_DOWNSAMPLE = 2
"""Each Swin patch-merging layer halves height and width."""

_IMAGE_PAPER = dict(
    variant="image",
    patch_size=(4, 4),
    embed_dim=128,
    depths=(2, 2, 18, 2),
    num_heads=(4, 8, 16, 32),
    window_size=(7, 7),
    drop_path_rate=0.3,
)
_VIDEO_PAPER = dict(
    variant="video",
    patch_size=(1, 4, 4),
    embed_dim=96,
    depths=(2, 2, 6, 2),
    num_heads=(3, 6, 12, 24),
    window_size=(8, 7, 7),
    drop_path_rate=0.1,
)
_TINY_COMMON = dict(
    embed_dim=16,
    depths=(1, 1, 1, 1),
    num_heads=(1, 1, 1, 1),
    drop_path_rate=0.0,
    text_hidden_size=32,
    text_num_layers=1,
    text_num_heads=2,
    text_intermediate_size=64,
    text_vocab_size=128,
    text_max_positions=64,
    decoder_dim=16,
)
_TINY_IMAGE = dict(variant="image", patch_size=(4, 4), window_size=(4, 4))
_TINY_VIDEO = dict(variant="video", patch_size=(1, 4, 4), window_size=(2, 4, 4))


@dataclass(frozen=True)
class LAVTConfig:
    """Every setting of the LAVT head; ``LAVTConfig()`` is the paper's image model.

    Attributes:
        variant: ``"image"`` (2D Swin, frames processed independently, CVPR
            2022) or ``"video"`` (Video Swin + 3D PWAM over the clip, TPAMI).
        patch_size: Swin patch size in pixels, ``(h, w)`` for image and
            ``(t, h, w)`` for video; the video temporal patch must be 1.
        embed_dim: channels of stage 1; stage ``i`` has ``embed_dim * 2**i``.
        depths: Swin blocks per stage (four stages).
        num_heads: attention heads per stage.
        window_size: attention window, ``(h, w)`` or ``(t, h, w)`` tokens.
        mlp_ratio: Swin MLP hidden ratio.
        drop_path_rate: stochastic depth of the backbone. Not stated by the
            paper; 0.3 (image) is the common Swin dense-prediction
            fine-tuning value, 0.1 (video) is torchvision's ``swin3d_t``.
        backbone_weights: path of a local state dict of the torchvision
            backbone (``swin_b`` / ``swin3d_t`` layout); ``None`` = random init.
        text_encoder_path: local folder of a Hugging Face BERT checkpoint;
            ``None`` builds a randomly initialised BERT from the ``text_*``
            sizes below (BERT-base by default). Never downloads.
        text_hidden_size, text_num_layers, text_num_heads,
        text_intermediate_size, text_vocab_size, text_max_positions: BERT
            shape used when ``text_encoder_path`` is ``None``.
        freeze_text_encoder: keep BERT fixed (no gradients, eval mode). The
            paper fine-tunes BERT, so the default is ``False``.
        pwam3d_kernels: kernel sizes ``(t, h, w)`` of the 3D convolutions
            placed side by side in each projection of the video PWAM; every
            entry must be odd (same padding). Default: a 3x3x3
            spatio-temporal conv beside a 1x1x1 point-wise conv.
        gate_zero_init: initialise the last 1x1 conv of each language gate
            to zero so that ``E_i = V_i`` at the start of training (keeps a
            pretrained backbone intact; not stated by the paper).
        decoder_dim: channels of the mask predictor's 3x3 conv blocks.
        loss: ``"dice"`` (two-class Dice, TPAMI version, default), ``"ce"``
            (pixel-wise cross-entropy, CVPR 2022 version) or ``"ce+dice"``.
        dice_smooth: smoothing added to numerator and denominator of Dice.
        ce_weight, dice_weight: weights of the two terms in ``"ce+dice"``.
        ce_class_weights: (background, object) weights of the cross-entropy.

    Raises:
        svac.errors.ConfigError: on any inconsistent or out-of-range value.
    """

    variant: str = "image"
    patch_size: tuple[int, ...] = (4, 4)
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: tuple[int, ...] = (7, 7)
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.3
    backbone_weights: str | None = None
    text_encoder_path: str | None = None
    text_hidden_size: int = 768
    text_num_layers: int = 12
    text_num_heads: int = 12
    text_intermediate_size: int = 3072
    text_vocab_size: int = 30522
    text_max_positions: int = 512
    freeze_text_encoder: bool = False
    pwam3d_kernels: tuple[tuple[int, int, int], ...] = ((3, 3, 3), (1, 1, 1))
    gate_zero_init: bool = True
    decoder_dim: int = 256
    loss: str = "dice"
    dice_smooth: float = 1.0
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    ce_class_weights: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        from svac.config import check_path

        check_path("LAVTConfig.backbone_weights", self.backbone_weights)
        check_path("LAVTConfig.text_encoder_path", self.text_encoder_path)
        if self.variant not in VARIANTS:
            raise ConfigError(f"LAVTConfig.variant must be one of {VARIANTS}; got {self.variant!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"LAVTConfig.loss must be one of {LOSSES}; got {self.loss!r}")
        spatial_rank = 2 if self.variant == "image" else 3
        for name in ("patch_size", "window_size"):
            value = getattr(self, name)
            if len(value) != spatial_rank or any(int(v) < 1 for v in value):
                raise ConfigError(
                    f"LAVTConfig.{name} must hold {spatial_rank} positive ints for variant "
                    f"{self.variant!r}; got {value!r}"
                )
        if self.variant == "video" and self.patch_size[0] != 1:
            raise ConfigError(
                "LAVTConfig.patch_size[0] (temporal patch) must be 1 for the video variant so that "
                f"every frame keeps its own logits; got {self.patch_size!r}"
            )
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if len(value) != NUM_STAGES or any(int(v) < 1 for v in value):
                raise ConfigError(f"LAVTConfig.{name} must hold {NUM_STAGES} positive ints; got {value!r}")
        for stage, heads in enumerate(self.num_heads):
            dim = self.embed_dim * STAGE_DOWNSAMPLE**stage
            if dim % heads != 0:
                raise ConfigError(
                    f"LAVTConfig: stage {stage + 1} has {dim} channels, not divisible by num_heads={heads}"
                )
        if self.text_hidden_size % self.text_num_heads != 0:
            raise ConfigError(
                f"LAVTConfig.text_hidden_size={self.text_hidden_size} is not divisible by "
                f"text_num_heads={self.text_num_heads}"
            )
        positive_ints = (
            "embed_dim", "decoder_dim", "text_hidden_size", "text_num_layers", "text_num_heads",
            "text_intermediate_size", "text_vocab_size", "text_max_positions",
        )
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"LAVTConfig.{name} must be a positive int; got {getattr(self, name)!r}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ConfigError(f"LAVTConfig.drop_path_rate must lie in [0, 1); got {self.drop_path_rate}")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"LAVTConfig.mlp_ratio must be positive; got {self.mlp_ratio}")
        if not self.pwam3d_kernels:
            raise ConfigError("LAVTConfig.pwam3d_kernels must list at least one 3D kernel size")
        for kernel in self.pwam3d_kernels:
            if len(kernel) != 3 or any(int(k) < 1 or int(k) % 2 == 0 for k in kernel):
                raise ConfigError(
                    f"LAVTConfig.pwam3d_kernels entries must be 3 odd positive ints (t, h, w); got {kernel!r}"
                )
        if self.dice_smooth < 0:
            raise ConfigError(f"LAVTConfig.dice_smooth must be >= 0; got {self.dice_smooth}")
        if self.ce_weight < 0 or self.dice_weight < 0:
            raise ConfigError("LAVTConfig.ce_weight and dice_weight must be >= 0")
        if len(self.ce_class_weights) != NUM_CLASSES or any(w <= 0 for w in self.ce_class_weights):
            raise ConfigError(
                f"LAVTConfig.ce_class_weights must be {NUM_CLASSES} positive floats; got {self.ce_class_weights!r}"
            )

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Channels of the four backbone stages, ``C_i = embed_dim * 2**(i-1)``."""
        return tuple(self.embed_dim * STAGE_DOWNSAMPLE**i for i in range(NUM_STAGES))

    @property
    def output_stride(self) -> int:
        """Stride (pixels) of the logits: the spatial patch size (4 in the paper)."""
        return int(self.patch_size[-1])

    @property
    def total_stride(self) -> int:
        """Stride (pixels) of the coarsest stage: patch size times 2**3."""
        return self.output_stride * STAGE_DOWNSAMPLE ** (NUM_STAGES - 1)

    @classmethod
    def paper(cls, variant: str = "image", **overrides: Any) -> "LAVTConfig":
        """The published model's shape for ``variant`` (``swin_b`` image / ``swin3d_t`` video).

        Raises:
            svac.errors.ConfigError: unknown variant or bad override.
        """
        if variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}; got {variant!r}")
        base = dict(_IMAGE_PAPER if variant == "image" else _VIDEO_PAPER)
        base.update(overrides)
        return cls.from_dict(base)

    @classmethod
    def tiny(cls, variant: str = "image", **overrides: Any) -> "LAVTConfig":
        """A small configuration for CPU tests (~0.5M image / ~2.8M video parameters, BERT width 32).

        Raises:
            svac.errors.ConfigError: unknown variant or bad override.
        """
        if variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}; got {variant!r}")
        base = dict(_TINY_COMMON)
        base.update(_TINY_IMAGE if variant == "image" else _TINY_VIDEO)
        base.update(overrides)
        return cls.from_dict(base)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "LAVTConfig":
        """Build from a mapping (e.g. a YAML ``model.lavt`` section); lists become tuples.

        Raises:
            svac.errors.ConfigError: unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown LAVTConfig keys: {unknown}; known keys: {sorted(known)}")
        converted: dict[str, Any] = {}
        for key, value in values.items():
            if key == "pwam3d_kernels":
                value = tuple(tuple(int(k) for k in kernel) for kernel in value)
            elif isinstance(value, list):
                value = tuple(value)
            converted[key] = value
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of every field (tuples kept), the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)
