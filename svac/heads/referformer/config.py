"""Configuration of the ReferFormer baseline head and its SgMg / MGRVOS switches.

Defaults follow ReferFormer (Wu et al., "Language as Queries for Referring
Video Object Segmentation", CVPR 2022, §3 and §4.1 "Implementation details"):
C = 256 channels, 4 deformable encoder and 4 decoder layers, N = 5 conditional
queries, 8 attention heads, 4 sampling points, mask features of 8 channels and
a 3-layer dynamic mask head; matching/loss weights 2 (class), 5 (L1), 2 (GIoU),
5 (Dice), 2 (mask focal).

The switches ``fusion="spectral"``, ``kernel="conditional_patch"`` and
``loss="multi_granularity"`` select the SgMg options (Miao et al.,
"Spectrum-guided Multi-granularity Referring Video Object Segmentation",
ICCV 2023): spectrum-guided cross-modal fusion, conditional patch kernels and
multi-granularity mask supervision. See the modules that implement each for
the exact definitions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from svac.errors import ConfigError

BackboneName = Literal[
    "swin_t",
    "swin_s",
    "swin_b",
    "resnet50",
    "resnet101",
    "video_swin_t",
    "video_swin_s",
    "video_swin_b",
    "tiny_swin",
    "tiny_resnet",
    "tiny_video_swin",
]
FusionName = Literal["multiply", "spectral"]
KernelName = Literal["dynamic_conv", "conditional_patch"]
LossName = Literal["standard", "multi_granularity"]
TextFamily = Literal["roberta", "bert"]

BACKBONES: tuple[str, ...] = (
    "swin_t",
    "swin_s",
    "swin_b",
    "resnet50",
    "resnet101",
    "video_swin_t",
    "video_swin_s",
    "video_swin_b",
    "tiny_swin",
    "tiny_resnet",
    "tiny_video_swin",
)
FUSIONS: tuple[str, ...] = ("multiply", "spectral")
KERNELS: tuple[str, ...] = ("dynamic_conv", "conditional_patch")
LOSSES: tuple[str, ...] = ("standard", "multi_granularity")
TEXT_FAMILIES: tuple[str, ...] = ("roberta", "bert")

#: GroupNorm group count of the input projections (Deformable DETR convention);
#: ``hidden_dim`` must be a multiple of it.
GROUP_NORM_GROUPS = 32
#: Largest backbone stride; frame height and width must be multiples of it.
MAX_BACKBONE_STRIDE = 32
#: Stride (pixels) of the encoder level that conditional patch kernels segment.
CPK_FEATURE_STRIDE = 8
#: Stride (pixels) of the CM-FPN mask features the dynamic convolution segments.
MASK_FEATURE_STRIDE = 4

#: Tiny text encoder used by :meth:`ReferFormerConfig.tiny` (random weights, no download).
TINY_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
}


@dataclass(frozen=True)
class ReferFormerConfig:
    """Every size and switch of :class:`svac.heads.referformer.ReferFormer`.

    Attributes:
        backbone: visual backbone. ``swin_*`` / ``resnet*`` run per frame;
            ``video_swin_*`` (torchvision ``swin3d_*``) run on the clip;
            ``tiny_*`` are randomly initialised miniatures for tests.
        backbone_weights: ``None`` (random init), a torchvision weight enum
            name such as ``"Swin_T_Weights.IMAGENET1K_V1"`` (torchvision
            downloads it into ``$TORCH_HOME`` unless already cached there —
            no network is assumed at run time, so pre-fill the cache), or a
            path to a local ``state_dict`` file of the matching torchvision
            classifier (loaded strictly). Must be ``None`` for ``tiny_*``.
        freeze_backbone: stop gradients into the backbone.
        text_encoder: Hugging Face id or local folder of the frozen text
            encoder (``FacebookAI/roberta-base`` in the paper), loaded with
            ``from_pretrained``; ignored when ``text_encoder_init_config`` is set.
        text_encoder_family: ``"roberta"`` or ``"bert"``; chooses the
            transformers model class. The caller tokenizes with the matching
            tokenizer (``RobertaTokenizerFast`` / ``BertTokenizerFast`` from
            the same checkpoint).
        text_encoder_init_config: keyword arguments of ``RobertaConfig`` /
            ``BertConfig`` to build a randomly initialised encoder instead of
            loading one (tests, no download).
        local_files_only: passed to ``from_pretrained`` (no network when True).
        hidden_dim: transformer width C (channels).
        num_queries: conditional queries N per frame.
        nheads: attention heads of every attention layer.
        enc_layers / dec_layers: deformable encoder / decoder layers.
        dim_feedforward: FFN width of the transformer layers.
        dropout: dropout of the transformer layers.
        n_points: sampling points per head and level of deformable attention.
        mask_dim: channels of the mask features segmented by the kernels.
        dynamic_conv_channels: width of the dynamic 1x1 convs (8 in the paper).
        dynamic_conv_layers: number of dynamic 1x1 convs (3 in the paper).
        controller_layers: linear layers generating the dynamic parameters.
        fpn_reduction: spatial-reduction factors of the CM-FPN self-attention
            for the strides 4, 8, 16, 32 (``[8, 4, 2, 1]`` in the paper).
        fusion: ``"multiply"`` (ReferFormer) or ``"spectral"`` (SgMg SCF).
        spectral_bands: radial frequency bands of the spectral filter.
        kernel: ``"dynamic_conv"`` (ReferFormer) or ``"conditional_patch"`` (SgMg CPK).
        cpk_patch_size: patch size p of the conditional patch kernel; masks
            come out at stride ``8 / p`` (p must divide 8).
        loss: ``"standard"`` or ``"multi_granularity"`` mask supervision.
        granularity_scales: downsampling factors (of the target resolution)
            at which ``multi_granularity`` supervises masks; must contain 1.
        aux_loss: also supervise every intermediate decoder layer.
        focal_alpha / focal_gamma: sigmoid focal loss parameters.
        class_weight / bbox_weight / giou_weight / dice_weight / mask_weight:
            weights of the matching cost and of the loss terms.
    """

    backbone: BackboneName = "swin_t"
    backbone_weights: str | None = None
    freeze_backbone: bool = False
    text_encoder: str = "FacebookAI/roberta-base"
    text_encoder_family: TextFamily = "roberta"
    text_encoder_init_config: dict[str, Any] | None = None
    local_files_only: bool = True
    hidden_dim: int = 256
    num_queries: int = 5
    nheads: int = 8
    enc_layers: int = 4
    dec_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1
    n_points: int = 4
    mask_dim: int = 8
    dynamic_conv_channels: int = 8
    dynamic_conv_layers: int = 3
    controller_layers: int = 3
    fpn_reduction: tuple[int, int, int, int] = (8, 4, 2, 1)
    fusion: FusionName = "multiply"
    spectral_bands: int = 8
    kernel: KernelName = "dynamic_conv"
    cpk_patch_size: int = 2
    loss: LossName = "standard"
    granularity_scales: tuple[int, ...] = (1, 2, 4)
    aux_loss: bool = True
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    class_weight: float = 2.0
    bbox_weight: float = 5.0
    giou_weight: float = 2.0
    dice_weight: float = 5.0
    mask_weight: float = 2.0

    def __post_init__(self) -> None:
        """Validate every field; raises :class:`svac.errors.ConfigError` naming the bad one."""
        _check_choice("backbone", self.backbone, BACKBONES)
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("kernel", self.kernel, KERNELS)
        _check_choice("loss", self.loss, LOSSES)
        _check_choice("text_encoder_family", self.text_encoder_family, TEXT_FAMILIES)
        for name in (
            "hidden_dim",
            "num_queries",
            "nheads",
            "dec_layers",
            "dim_feedforward",
            "n_points",
            "mask_dim",
            "dynamic_conv_channels",
            "dynamic_conv_layers",
            "controller_layers",
            "spectral_bands",
            "cpk_patch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ReferFormerConfig.{name} must be a positive int, got {value!r}")
        if isinstance(self.enc_layers, bool) or not isinstance(self.enc_layers, int) or self.enc_layers < 0:
            raise ConfigError(f"ReferFormerConfig.enc_layers must be an int >= 0, got {self.enc_layers!r}")
        if self.hidden_dim % GROUP_NORM_GROUPS:
            raise ConfigError(
                f"ReferFormerConfig.hidden_dim must be a multiple of {GROUP_NORM_GROUPS} "
                f"(GroupNorm groups), got {self.hidden_dim}"
            )
        if self.hidden_dim % self.nheads or (self.hidden_dim // 2) % 2:
            raise ConfigError(
                f"ReferFormerConfig.hidden_dim ({self.hidden_dim}) must be divisible by nheads "
                f"({self.nheads}) and by 4 (sine position encoding)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ReferFormerConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        if len(self.fpn_reduction) != 4 or any(
            isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in self.fpn_reduction
        ):
            raise ConfigError(
                f"ReferFormerConfig.fpn_reduction must be 4 positive ints (strides 4..32), got {self.fpn_reduction!r}"
            )
        if CPK_FEATURE_STRIDE % self.cpk_patch_size:
            raise ConfigError(
                f"ReferFormerConfig.cpk_patch_size must divide {CPK_FEATURE_STRIDE}, got {self.cpk_patch_size}"
            )
        scales = self.granularity_scales
        if (
            not scales
            or 1 not in scales
            or len(set(scales)) != len(scales)
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in scales)
        ):
            raise ConfigError(
                "ReferFormerConfig.granularity_scales must be distinct positive ints containing 1, "
                f"got {scales!r}"
            )
        from svac.config import check_path

        check_path("ReferFormerConfig.backbone_weights", self.backbone_weights)
        check_path("ReferFormerConfig.text_encoder", self.text_encoder)
        if self.backbone.startswith("tiny_") and self.backbone_weights is not None:
            raise ConfigError(f"backbone {self.backbone!r} has no pretrained weights; set backbone_weights=None")
        for name in (
            "focal_alpha",
            "focal_gamma",
            "class_weight",
            "bbox_weight",
            "giou_weight",
            "dice_weight",
            "mask_weight",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"ReferFormerConfig.{name} must be a number >= 0, got {value!r}")

    @property
    def mask_stride(self) -> int:
        """Input pixels per predicted-mask pixel: 4 (dynamic conv) or ``8 // cpk_patch_size`` (CPK)."""
        if self.kernel == "conditional_patch":
            return CPK_FEATURE_STRIDE // self.cpk_patch_size
        return MASK_FEATURE_STRIDE

    @property
    def is_video_backbone(self) -> bool:
        """True for the spatio-temporal (Video Swin) backbones, which see the whole clip."""
        return "video_swin" in self.backbone

    @classmethod
    def tiny(cls, **overrides: Any) -> ReferFormerConfig:
        """A miniature configuration for CPU tests (random weights, no download).

        Tiny Swin backbone, C = 32, 2 heads, 1 encoder and 2 decoder layers,
        a one-layer RoBERTa text encoder of width 32; keyword arguments
        override any field. Raises :class:`ConfigError` for unknown fields.
        """
        base: dict[str, Any] = {
            "backbone": "tiny_swin",
            "text_encoder_init_config": dict(TINY_TEXT_CONFIG),
            "hidden_dim": 32,
            "nheads": 2,
            "enc_layers": 1,
            "dec_layers": 2,
            "dim_feedforward": 64,
            "dropout": 0.0,
            "n_points": 2,
            "spectral_bands": 4,
        }
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"ReferFormerConfig.tiny got unknown fields {sorted(unknown)}")
        base.update(overrides)
        return cls(**base)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"ReferFormerConfig.{name} must be one of {list(choices)}, got {value!r}")
