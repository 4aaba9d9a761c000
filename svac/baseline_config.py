"""Configs of the baseline heads: sections ``baseline.referformer`` and ``baseline.lavt`` of the config tree.

:class:`ReferFormerConfig` sets every size and switch of ReferFormer and its SgMg / MGRVOS
options; :class:`LAVTConfig` those of LAVT (image and video variants). Both are typed sections
of :class:`svac.config.BaselineConfig`, read and checked by :func:`svac.config.from_dict` like
every other section; the heads (:mod:`svac.heads.referformer`, :mod:`svac.heads.lavt`) take
them as they are, after svac has filled in what it derives from the tokenizer
(:mod:`svac.heads.head_configs`).

ReferFormer's defaults follow Wu et al., "Language as Queries for Referring Video Object
Segmentation", CVPR 2022, §3 and §4.1 "Implementation details": C = 256 channels, 4 deformable
encoder and 4 decoder layers, N = 5 conditional queries, 8 attention heads, 4 sampling points,
mask features of 8 channels and a 3-layer dynamic mask head; matching/loss weights 2 (class),
5 (L1), 2 (GIoU), 5 (Dice), 2 (mask focal). The switches ``fusion="spectral"``,
``kernel="conditional_patch"`` and ``loss="multi_granularity"`` select the SgMg options (Miao et
al., "Spectrum-guided Multi-granularity Referring Video Object Segmentation", ICCV 2023):
spectrum-guided cross-modal fusion, conditional patch kernels and multi-granularity mask
supervision; the modules that implement each give the exact definitions.

LAVT follows Yang et al., "LAVT: Language-Aware Vision Transformer for Referring Image
Segmentation", CVPR 2022 (image LAVT, Sec. 3) and its TPAMI 2024 extension "Language-Aware
Vision Transformer for Referring Segmentation" (video LAVT with a 3D pixel-word attention
module). Backbone shapes follow torchvision: the image default is ``swin_b`` (patch 4, embed
128, depths 2-2-18-2, heads 4-8-16-32, window 7), the video default is ``swin3d_t`` (embed 96,
depths 2-2-6-2, heads 3-6-12-24, window 8x7x7) with a temporal patch size of 1 so that every
input frame keeps its own feature map and logits. Values the paper does not state are marked as
such in :class:`LAVTConfig`'s docstring.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from svac.config_values import check_path
from svac.errors import ConfigError

# --------------------------------------------------------------------------- ReferFormer

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

BACKBONES: tuple[str, ...] = typing.get_args(BackboneName)
FUSIONS: tuple[str, ...] = typing.get_args(FusionName)
KERNELS: tuple[str, ...] = typing.get_args(KernelName)
REFERFORMER_LOSSES: tuple[str, ...] = typing.get_args(LossName)
TEXT_FAMILIES: tuple[str, ...] = typing.get_args(TextFamily)

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
        _check_choice("loss", self.loss, REFERFORMER_LOSSES)
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

    def text_config_class(self) -> type:
        """transformers' config class of the text encoder: ``RobertaConfig`` or ``BertConfig`` (by
        ``text_encoder_family``); ``text_encoder_init_config`` holds its keyword arguments."""
        from transformers import BertConfig, RobertaConfig

        return {"roberta": RobertaConfig, "bert": BertConfig}[self.text_encoder_family]

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
        return _with_overrides(cls, base, overrides, "ReferFormerConfig.tiny")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"ReferFormerConfig.{name} must be one of {list(choices)}, got {value!r}")


# --------------------------------------------------------------------------- LAVT

LAVT_VARIANTS = ("image", "video")
LAVT_LOSSES = ("dice", "ce", "ce+dice")
NUM_STAGES = 4
NUM_CLASSES = 2
"""Two-class logits: index 0 is background, index 1 is the referred object."""
STAGE_DOWNSAMPLE = 2
"""Each Swin patch-merging layer halves height and width."""

_IMAGE_PAPER = dict(
    variant="image",
    text_vocab_size=30522,  # BERT-base (uncased), the paper's text encoder
    patch_size=(4, 4),
    embed_dim=128,
    depths=(2, 2, 18, 2),
    num_heads=(4, 8, 16, 32),
    window_size=(7, 7),
    drop_path_rate=0.3,
)
_VIDEO_PAPER = dict(
    variant="video",
    text_vocab_size=30522,
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
        text_intermediate_size, text_max_positions: BERT shape used when
            ``text_encoder_path`` is ``None`` (BERT-base by default).
        text_vocab_size: vocabulary of that BERT; ``None`` (the default, and
            what a config file gives) takes the tokenizer's size when svac
            builds the head (:mod:`svac.heads.head_configs`); set it to build
            :class:`~svac.heads.lavt.LAVT` directly.
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
    text_vocab_size: int | None = None
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
        check_path("LAVTConfig.backbone_weights", self.backbone_weights)
        check_path("LAVTConfig.text_encoder_path", self.text_encoder_path)
        if self.variant not in LAVT_VARIANTS:
            raise ConfigError(f"LAVTConfig.variant must be one of {LAVT_VARIANTS}; got {self.variant!r}")
        if self.loss not in LAVT_LOSSES:
            raise ConfigError(f"LAVTConfig.loss must be one of {LAVT_LOSSES}; got {self.loss!r}")
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
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
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
        return _lavt_preset(variant, {"image": _IMAGE_PAPER, "video": _VIDEO_PAPER}, overrides, "LAVTConfig.paper")

    @classmethod
    def tiny(cls, variant: str = "image", **overrides: Any) -> "LAVTConfig":
        """A small configuration for CPU tests (~0.5M image / ~2.8M video parameters, BERT width 32).

        Raises:
            svac.errors.ConfigError: unknown variant or bad override.
        """
        presets = {"image": {**_TINY_COMMON, **_TINY_IMAGE}, "video": {**_TINY_COMMON, **_TINY_VIDEO}}
        return _lavt_preset(variant, presets, overrides, "LAVTConfig.tiny")


def _lavt_preset(variant: str, presets: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any],
                 where: str) -> LAVTConfig:
    if variant not in LAVT_VARIANTS:
        raise ConfigError(f"variant must be one of {LAVT_VARIANTS}; got {variant!r}")
    return _with_overrides(LAVTConfig, presets[variant], overrides, where)


# --------------------------------------------------------------------------- shared


def _with_overrides(cls: type, base: Mapping[str, Any], overrides: Mapping[str, Any], where: str) -> Any:
    """``cls(**base)`` with ``overrides`` applied (a preset such as ``tiny`` or ``paper``, adjusted in Python).

    Raises:
        ConfigError: naming ``where``, for an override that is not a field of ``cls``, or an invalid value.
    """
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{where} got unknown fields {unknown}")
    return cls(**{**base, **overrides})
