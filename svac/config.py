"""Typed configuration of an SVAC model and its inference, loadable from YAML.

One dataclass per concern:

* :class:`MLLMConfig`      -- the InternVL-style MLLM (vision tower, projector, LLM, tokenizer, chat template);
* :class:`ASTCConfig`      -- frame sampling and Anchor-based Spatio-Temporal Compression (SVAC §3.3);
* :class:`CSAConfig`       -- Clip-Specific Allocation of ``[SEG]`` tokens (SVAC §3.4);
* :class:`SAM2Config`      -- the SAM-2 grounding model: one of the ``sam2`` package's own configs,
  resized by typed fields (never Hydra strings from a file);
* :class:`SegPromptConfig` -- how ``[SEG]`` hidden states become SAM-2 prompts (svac's span skip path);
* :class:`InferenceConfig` -- decoding, device and dtype choices at inference;
* :class:`BaselineConfig`  -- the classic R-VOS heads selected by ``head``, with their typed
  sections :class:`~svac.baseline_config.ReferFormerConfig` and :class:`~svac.baseline_config.LAVTConfig`;
* :class:`SVACConfig`      -- the whole model, made of the above, and the inference ``pipeline``
  (``svac``, or ``sa2va``: Sa2VA's own ``predict_forward`` reproduced step for step).

YAML files in ``configs/`` mirror these classes one to one. :func:`load_config`
reads one (a path, or the name of a file shipped in ``configs/``), applies
``key.sub=value`` overrides, and :func:`from_dict` -- the one loader of the whole
tree -- rejects unknown keys, wrongly typed or out-of-range values and missing model
sections with a :class:`~svac.errors.ConfigError` that names the key.

Nothing in a config chooses code (:mod:`svac.config_values`): names are looked up in
fixed tables (``Literal`` fields), the dicts handed to transformers' config classes take
only those classes' fields with plain values, SAM-2 is described by typed numbers, and
paths to Python pickles are refused.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from svac.baseline_config import LAVTConfig, ReferFormerConfig
from svac.config_values import check_device, check_library_kwargs, check_path, library_config_fields
from svac.errors import ConfigError

#: ImageNet statistics used by InternViT and SAM-2 preprocessing (RGB, in [0, 1] units).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


#: LLM families svac builds, by transformers ``model_type`` (InternLM2 checkpoints are converted to ``llama``).
TextModelType = Literal["qwen2", "qwen3", "llama", "phi3"]
TEXT_MODEL_TYPES: tuple[str, ...] = typing.get_args(TextModelType)
#: Keys accepted in ``mllm.text`` besides the LLM config class's own fields: the legacy rotary settings
#: its constructor converts into ``rope_parameters``.
TEXT_EXTRA_KEYS = ("rope_theta", "rope_scaling")
#: Keys of ``mllm.text`` set by svac from the tokenizer.
TOKENIZER_TEXT_KEYS = ("vocab_size", "pad_token_id")
#: Sizes a config of head ``svac`` must give: svac never falls back to transformers' full-size defaults.
REQUIRED_VISION_KEYS = ("image_size", "patch_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                        "intermediate_size")
REQUIRED_TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
#: Attention backends of transformers svac lets a config choose.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
#: Activations of the MLP projector (names in transformers' ``ACT2FN`` table).
PROJECTOR_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu")


@dataclass
class MLLMConfig:
    """The InternVL-style MLLM: InternViT vision tower, MLP projector and a causal LLM.

    The sub-model sizes are handed to transformers' own typed configs (``InternVLVisionConfig``
    and the LLM's config class). Only keys those classes define are accepted (plus
    :data:`TEXT_EXTRA_KEYS`), with numbers, booleans, strings or lists of them as values (a
    mapping only for :data:`svac.config_values.MAPPING_KEYS`); sizes must be positive.

    Attributes:
        vision: keyword arguments of ``transformers.InternVLVisionConfig``
            (``image_size`` and ``patch_size`` in pixels, widths, depths ...).
        text_model_type: transformers ``model_type`` of the LLM, one of :data:`TEXT_MODEL_TYPES`.
        text: keyword arguments of that LLM's config class (``vocab_size`` and ``pad_token_id``
            are set by svac from the tokenizer and must not be given).
        downsample_ratio: pixel-shuffle ratio applied to ViT patch features (InternVL: 0.5).
        projector_hidden_act: activation of the 2-layer MLP projector (``mlp1`` in InternVL).
        chat_template: chat template family, a name in ``prompts/chat_templates.yaml``
            (``qwen``, ``internlm2`` or ``phi3``; Sa2VA family).
        tokenizer: path of a tokenizer folder; ``None`` builds svac's byte-level tokenizer
            (tiny test and demo models only).
        image_mean, image_std: per-channel normalisation of MLLM images (RGB, [0, 1] units).
        attn_implementation: transformers attention backend (``sdpa``, ``eager``,
            ``flash_attention_2``; the last needs the ``gpu`` extra).

    Raises:
        ConfigError: naming the key, for a key the transformers class does not define, a value
            that is not plain data (or a string holding ``${``), a size below 1, or a
            tokenizer-derived key.
    """

    vision: dict[str, Any] = field(default_factory=dict)
    text_model_type: TextModelType = "qwen2"
    text: dict[str, Any] = field(default_factory=dict)
    downsample_ratio: float = 0.5
    projector_hidden_act: str = "gelu"
    chat_template: str = "qwen"
    tokenizer: str | None = None
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        for key in TOKENIZER_TEXT_KEYS:
            if key in self.text:
                raise ConfigError(f"mllm.text.{key} is set from the tokenizer; remove it from the config")
        if self.text_model_type not in TEXT_MODEL_TYPES:
            raise ConfigError(f"mllm.text_model_type {self.text_model_type!r} is not supported; supported LLM "
                              f"families: {', '.join(TEXT_MODEL_TYPES)}")
        if not 0.0 < self.downsample_ratio <= 1.0:
            raise ConfigError(f"mllm.downsample_ratio must be in (0, 1], got {self.downsample_ratio}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(f"mllm.attn_implementation {self.attn_implementation!r} is not one of "
                              f"{', '.join(ATTN_IMPLEMENTATIONS)}")
        if self.projector_hidden_act not in PROJECTOR_ACTIVATIONS:
            raise ConfigError(f"mllm.projector_hidden_act {self.projector_hidden_act!r} is not one of "
                              f"{', '.join(PROJECTOR_ACTIVATIONS)}")
        check_path("mllm.tokenizer", self.tokenizer)
        if self.vision:
            from transformers import InternVLVisionConfig

            check_library_kwargs("mllm.vision", self.vision, library_config_fields(InternVLVisionConfig))
        if self.text:
            from transformers.models.auto.configuration_auto import CONFIG_MAPPING

            allowed = library_config_fields(CONFIG_MAPPING[self.text_model_type]) | set(TEXT_EXTRA_KEYS)
            check_library_kwargs("mllm.text", self.text, allowed - set(TOKENIZER_TEXT_KEYS))

    def check_complete(self) -> None:
        """Check that the vision tower's and the LLM's sizes are all given (svac never builds
        transformers' full-size defaults).

        Raises:
            ConfigError: naming the missing keys.
        """
        for where, section, required in (("mllm.vision", self.vision, REQUIRED_VISION_KEYS),
                                         ("mllm.text", self.text, REQUIRED_TEXT_KEYS)):
            missing = [k for k in required if section.get(k) is None]
            if missing:
                raise ConfigError(f"{where} is missing {', '.join(missing)}: a model config must give every size "
                                  f"(svac does not fall back to transformers' full-size defaults); see "
                                  f"configs/tiny.yaml")


@dataclass
class ASTCConfig:
    """Frame sampling and Anchor-based Spatio-Temporal Compression (SVAC §3.3).

    Attributes:
        mode: ``astc`` -- T frames sampled uniformly over the whole video, cut into clips of
            ``clip_len`` frames; each clip gives the MLLM its anchor (first frame) and one
            composite of its other frames. ``uncompressed`` -- the same T frames, each one an
            MLLM image. ``first_k`` -- Sa2VA's input: the first ``first_k`` frames of the
            video, each one an MLLM image.
        num_frames: T, the number of frames sampled for the MLLM (frames).
        clip_len: m, the number of sampled frames per clip (frames); the last clip may be shorter.
        first_k: frames given to the MLLM in ``first_k`` mode (Sa2VA uses 5).
    """

    mode: Literal["astc", "uncompressed", "first_k"] = "astc"
    num_frames: int = 20
    clip_len: int = 5
    first_k: int = 5

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"astc.num_frames must be >= 1, got {self.num_frames}")
        if self.clip_len < 1:
            raise ConfigError(f"astc.clip_len must be >= 1, got {self.clip_len}")
        if self.first_k < 1:
            raise ConfigError(f"astc.first_k must be >= 1, got {self.first_k}")


@dataclass
class CSAConfig:
    """Clip-Specific Allocation of ``[SEG]`` tokens (SVAC §3.4).

    Attributes:
        mode: ``per_clip`` -- one ``[SEG]`` per clip; clip k's token prompts SAM-2 on the
            frames of clip k. ``single`` -- Sa2VA behaviour: one ``[SEG]`` prompts every clip
            (kept for ablations and for Sa2VA checkpoints).
        count_policy: what to do when a generated answer holds a number of ``[SEG]`` tokens
            that is not a multiple of the number of clips (see :mod:`svac.csa`): ``raise``
            (:class:`~svac.errors.SegCountError`) or ``single_fallback`` (warn, record it in the
            result, and use the first ``[SEG]`` of the answer for every clip, as Sa2VA does).
        generation: how the LLM writes ``[SEG]`` tokens when it writes its own answer (a chat,
            ``inference.answer_mode: generate``) under ``per_clip``: ``runs`` -- once it writes a
            ``[SEG]``, the next tokens are ``[SEG]`` until the run holds one per clip of this video,
            and the run then ends (:class:`svac.csa.SegRunConstraint`; an answer then always holds
            whole runs, one per object); ``free`` -- its tokens as they come, checked by
            ``count_policy``. Ignored in ``single`` mode and for fed (template) answers.
    """

    mode: Literal["per_clip", "single"] = "per_clip"
    count_policy: Literal["raise", "single_fallback"] = "raise"
    generation: Literal["runs", "free"] = "runs"


#: The ``sam2`` package's shipped model configs svac builds SAM-2 from: SAM 2 and SAM 2.1, hiera
#: tiny / small / base+ / large. ``SAM2Config.config_name`` must be one of these.
SAM2ConfigName = Literal[
    "configs/sam2/sam2_hiera_t.yaml", "configs/sam2/sam2_hiera_s.yaml",
    "configs/sam2/sam2_hiera_b+.yaml", "configs/sam2/sam2_hiera_l.yaml",
    "configs/sam2.1/sam2.1_hiera_t.yaml", "configs/sam2.1/sam2.1_hiera_s.yaml",
    "configs/sam2.1/sam2.1_hiera_b+.yaml", "configs/sam2.1/sam2.1_hiera_l.yaml",
]
SAM2_CONFIG_NAMES: tuple[str, ...] = typing.get_args(SAM2ConfigName)
#: SAM-2's input side must be a multiple of the Hiera trunk's coarsest stride (pixels; SAM 2 §4).
SAM2_IMAGE_SIZE_MULTIPLE = 32
#: Hiera doubles its channels at each of its four stages (``dim_mul`` of ``sam2``'s ``Hiera``).
HIERA_STAGES = 4


@dataclass
class SAM2TrunkConfig:
    """The Hiera trunk of SAM-2's image encoder (``model.image_encoder.trunk``; SAM 2 §4, Hiera).

    ``None`` keeps the value of the ``sam2`` config named by ``SAM2Config.config_name``.

    Attributes:
        embed_dim: channels of the first stage (doubled at each later stage).
        num_heads: attention heads of the first stage (doubled at each later stage).
        stages: blocks in each of the 4 stages.
        global_att_blocks: indices (0-based, over all blocks) of the blocks with global attention.
        window_spec: attention window side of each stage (feature cells).
        window_pos_embed_bkg_spatial_size: ``(h, w)`` of the background position embedding (cells).
    """

    embed_dim: int | None = None
    num_heads: int | None = None
    stages: tuple[int, int, int, int] | None = None
    global_att_blocks: tuple[int, ...] | None = None
    window_spec: tuple[int, int, int, int] | None = None
    window_pos_embed_bkg_spatial_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        _positive("sam2.trunk", self, ("embed_dim", "num_heads", "stages", "window_spec",
                                       "window_pos_embed_bkg_spatial_size"))
        if self.global_att_blocks is not None:
            blocks = self.global_att_blocks
            if any(b < 0 for b in blocks) or len(set(blocks)) != len(blocks):
                raise ConfigError(f"sam2.trunk.global_att_blocks must be distinct block indices >= 0, got {list(blocks)}")
            if self.stages is not None and blocks and max(blocks) >= sum(self.stages):
                raise ConfigError(f"sam2.trunk.global_att_blocks {list(blocks)} names a block beyond the "
                                  f"{sum(self.stages)} blocks of sam2.trunk.stages {list(self.stages)}")


@dataclass
class SAM2NeckConfig:
    """The FPN neck of SAM-2's image encoder (``model.image_encoder.neck``).

    Attributes:
        d_model: C, channels of the neck's outputs: SAM-2's ``hidden_dim``, the width of the mask
            decoder and of the ``[SEG]`` prompts.
        backbone_channel_list: trunk channels per stage, deepest first (``8e, 4e, 2e, e`` for
            ``trunk.embed_dim`` e).
        num_pos_feats: channels of the sine position encoding (= ``d_model``).
    """

    d_model: int | None = None
    backbone_channel_list: tuple[int, int, int, int] | None = None
    num_pos_feats: int | None = None

    def __post_init__(self) -> None:
        _positive("sam2.neck", self, ("d_model", "backbone_channel_list", "num_pos_feats"))


@dataclass
class SAM2MemoryAttentionConfig:
    """SAM-2's memory attention (``model.memory_attention``): current-frame features attend to memories.

    Attributes:
        d_model: width of the layers and of their self- and cross-attention (= ``neck.d_model``);
            sets ``d_model``, ``layer.d_model`` and both attentions' ``embedding_dim``.
        num_layers: memory-attention layers.
        dim_feedforward: width of each layer's MLP.
        feat_sizes: ``(h, w)`` of the RoPE tables of both attentions (cells; ``image_size / 16``).
        kv_in_dim: channels of the memories attended to (= ``memory_encoder.out_dim``).
        dropout: dropout of the layers and both attentions (in [0, 1)).
    """

    d_model: int | None = None
    num_layers: int | None = None
    dim_feedforward: int | None = None
    feat_sizes: tuple[int, int] | None = None
    kv_in_dim: int | None = None
    dropout: float | None = None

    def __post_init__(self) -> None:
        _positive("sam2.memory_attention", self, ("d_model", "num_layers", "dim_feedforward", "feat_sizes",
                                                  "kv_in_dim"))
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"sam2.memory_attention.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class SAM2MemoryEncoderConfig:
    """SAM-2's memory encoder (``model.memory_encoder``): a frame's features and mask become a memory.

    Attributes:
        out_dim: channels of a memory (SAM-2's ``mem_dim``).
        in_dim: channels of the image features it reads (= ``neck.d_model``).
        num_pos_feats: channels of the memories' sine position encoding (= ``out_dim``).
        mask_downsampler_embed_dim: channels of the downsampled mask (= ``in_dim``).
        fuser_dim: channels of the fuser's ConvNeXt blocks (= ``in_dim``).
        fuser_num_layers: ConvNeXt blocks of the fuser.
    """

    out_dim: int | None = None
    in_dim: int | None = None
    num_pos_feats: int | None = None
    mask_downsampler_embed_dim: int | None = None
    fuser_dim: int | None = None
    fuser_num_layers: int | None = None

    def __post_init__(self) -> None:
        _positive("sam2.memory_encoder", self, ("out_dim", "in_dim", "num_pos_feats", "mask_downsampler_embed_dim",
                                                "fuser_dim", "fuser_num_layers"))


@dataclass
class SAM2MaskDecoderConfig:
    """Options of SAM-2's mask decoder (``model.sam_mask_decoder_extra_args``) that Sa2VA sets.

    Attributes:
        dynamic_multimask_via_stability: with one prompt, fall back to the best of the 3 masks
            when the single-mask output is unstable (as ``sam2``'s video predictor; Sa2VA: true).
        dynamic_multimask_stability_delta: logit offset of that stability score (Sa2VA: 0.05).
        dynamic_multimask_stability_thresh: stability below which it falls back (Sa2VA: 0.98).
    """

    dynamic_multimask_via_stability: bool | None = None
    dynamic_multimask_stability_delta: float | None = None
    dynamic_multimask_stability_thresh: float | None = None

    def __post_init__(self) -> None:
        delta = self.dynamic_multimask_stability_delta
        if delta is not None and not delta > 0:
            raise ConfigError(f"sam2.mask_decoder.dynamic_multimask_stability_delta must be > 0, got {delta}")
        thresh = self.dynamic_multimask_stability_thresh
        if thresh is not None and not 0.0 <= thresh <= 1.0:
            raise ConfigError(f"sam2.mask_decoder.dynamic_multimask_stability_thresh must be in [0, 1], got {thresh}")


@dataclass
class SAM2Config:
    """The SAM-2 grounding model: a config shipped in the ``sam2`` package, resized by typed fields.

    Every architecture field is a number, a list of numbers or a boolean; ``None`` keeps the
    shipped config's value. svac writes them into the shipped config itself
    (:mod:`svac.grounding.sam2_hydra`): nothing read from a file reaches Hydra as a string.
    Configs of the old format (``overrides:``, a list of ``++model.a.b=v`` Hydra overrides) are
    converted on load when every line sets one of these fields, and refused otherwise (:func:`from_dict`).

    Attributes:
        config_name: the ``sam2`` package config built (one of :data:`SAM2_CONFIG_NAMES`),
            e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml`` or ``configs/sam2/sam2_hiera_l.yaml``.
        image_size: S, SAM-2's square input side (pixels, a multiple of 32; released models: 1024).
        trunk, neck, memory_attention, memory_encoder, mask_decoder: see their classes.
        checkpoint: optional Meta SAM 2 ``.pt`` checkpoint (loaded with ``weights_only=True``).
        multimask_output: whether the mask decoder predicts 3 masks and keeps the one with the
            best predicted IoU when prompted by ``[SEG]``. Sa2VA: ``True`` (its SAM-2 asks for
            multimask output whenever a frame has at most one point, and a ``[SEG]`` prompt has none).
        keep_absent_object_logits: ``False`` (SAM 2): when the object-score logit is <= 0 the
            object's mask logits are replaced by -1024 ("no object"). ``True`` (Sa2VA, whose copy of
            SAM 2 disables that replacement): the decoder's logits are kept, on every frame. The
            object pointer is gated by the score either way.
        max_cond_frames_in_attn: clip anchors kept as conditioning memories that a frame
            attends to (the temporally closest ones; -1 = all).
        encoder_batch_size: frames per SAM-2 image-encoder call (frames); bounds memory.
        memory_tracker: the model holds a second memory attention, prompt encoder and mask decoder
            that decode the frames tracked from memory alone (after a correction with
            ``after_correction="memory"``; :mod:`svac.grounding.memory_tracker`); ``False`` (Sa2VA,
            SAM 2 and models trained before it) decodes them with SAM-2's own modules.

    Raises:
        ConfigError: naming the key, for a size that is not positive, a list of the wrong length,
            a checkpoint path with a pickle suffix, or sizes that contradict each other.
    """

    config_name: SAM2ConfigName = "configs/sam2.1/sam2.1_hiera_t.yaml"
    image_size: int | None = None
    trunk: SAM2TrunkConfig = field(default_factory=SAM2TrunkConfig)
    neck: SAM2NeckConfig = field(default_factory=SAM2NeckConfig)
    memory_attention: SAM2MemoryAttentionConfig = field(default_factory=SAM2MemoryAttentionConfig)
    memory_encoder: SAM2MemoryEncoderConfig = field(default_factory=SAM2MemoryEncoderConfig)
    mask_decoder: SAM2MaskDecoderConfig = field(default_factory=SAM2MaskDecoderConfig)
    checkpoint: str | None = None
    multimask_output: bool = False
    keep_absent_object_logits: bool = False
    max_cond_frames_in_attn: int = 4
    encoder_batch_size: int = 8
    memory_tracker: bool = False

    def __post_init__(self) -> None:
        if self.config_name not in SAM2_CONFIG_NAMES:
            raise ConfigError(f"sam2.config_name {self.config_name!r} is not one of the sam2 package's configs: "
                              f"{', '.join(SAM2_CONFIG_NAMES)}")
        if self.image_size is not None and (self.image_size < SAM2_IMAGE_SIZE_MULTIPLE
                                            or self.image_size % SAM2_IMAGE_SIZE_MULTIPLE):
            raise ConfigError(f"sam2.image_size must be a positive multiple of {SAM2_IMAGE_SIZE_MULTIPLE} pixels, "
                              f"got {self.image_size}")
        if self.encoder_batch_size < 1:
            raise ConfigError(f"sam2.encoder_batch_size must be >= 1, got {self.encoder_batch_size}")
        if self.max_cond_frames_in_attn < 1 and self.max_cond_frames_in_attn != -1:
            raise ConfigError(f"sam2.max_cond_frames_in_attn must be >= 1 or -1 (all), got "
                              f"{self.max_cond_frames_in_attn}")
        check_path("sam2.checkpoint", self.checkpoint)
        check_sam2_sizes(self.architecture())

    def architecture(self) -> dict[str, Any]:
        """The architecture fields that are set, by dotted svac key (``trunk.embed_dim`` ...), as plain values."""
        out: dict[str, Any] = {}
        if self.image_size is not None:
            out["image_size"] = self.image_size
        for section in SAM2_SECTIONS:
            for f in dataclasses.fields(getattr(self, section)):
                value = getattr(getattr(self, section), f.name)
                if value is not None:
                    out[f"{section}.{f.name}"] = list(value) if isinstance(value, tuple) else value
        return out


#: The architecture sections of :class:`SAM2Config`.
SAM2_SECTIONS = ("trunk", "neck", "memory_attention", "memory_encoder", "mask_decoder")
#: Pairs of SAM-2 sizes that ``sam2``'s modules need equal (svac keys under ``sam2.``).
SAM2_EQUAL_SIZES = (
    ("neck.num_pos_feats", "neck.d_model"),
    ("memory_attention.d_model", "neck.d_model"),
    ("memory_encoder.in_dim", "neck.d_model"),
    ("memory_encoder.mask_downsampler_embed_dim", "memory_encoder.in_dim"),
    ("memory_encoder.fuser_dim", "memory_encoder.in_dim"),
    ("memory_encoder.num_pos_feats", "memory_encoder.out_dim"),
    ("memory_attention.kv_in_dim", "memory_encoder.out_dim"),
)


def check_sam2_sizes(sizes: typing.Mapping[str, Any]) -> None:
    """Check that the SAM-2 sizes given (svac keys, see :meth:`SAM2Config.architecture`) fit together.

    Only pairs where both sizes are known are compared: the neck and memories must agree on
    their widths (:data:`SAM2_EQUAL_SIZES`), and the trunk's stage channels must be
    ``8e, 4e, 2e, e`` for ``trunk.embed_dim`` e.

    Raises:
        ConfigError: naming both keys and their values.
    """
    for key, other in SAM2_EQUAL_SIZES:
        if sizes.get(key) is not None and sizes.get(other) is not None and sizes[key] != sizes[other]:
            raise ConfigError(f"sam2.{key} ({sizes[key]}) must equal sam2.{other} ({sizes[other]})")
    embed, channels = sizes.get("trunk.embed_dim"), sizes.get("neck.backbone_channel_list")
    if embed is not None and channels is not None:
        expected = [embed * 2 ** i for i in reversed(range(HIERA_STAGES))]
        if list(channels) != expected:
            raise ConfigError(f"sam2.neck.backbone_channel_list must be {expected} (the Hiera stages' channels for "
                              f"sam2.trunk.embed_dim {embed}), got {list(channels)}")


def _positive(where: str, section: Any, names: tuple[str, ...]) -> None:
    """Raise ConfigError unless every set field in ``names`` (an int or a tuple of ints) is >= 1."""
    for name in names:
        value = getattr(section, name)
        values = value if isinstance(value, (tuple, list)) else () if value is None else (value,)
        if any(v < 1 for v in values):
            raise ConfigError(f"{where}.{name} must be >= 1, got {list(value) if isinstance(value, tuple) else value}")


@dataclass
class SegPromptConfig:
    """How the ``[SEG]`` hidden states become SAM-2 prompts (:mod:`svac.span_prompt`).

    Sa2VA (and every released checkpoint) projects the last-layer ``[SEG]`` state with
    ``text_hidden_fcs`` alone: both switches are off by default and for Sa2VA checkpoints.

    Attributes:
        span_skip: add to each ``[SEG]`` prompt a projection (LayerNorm -> Linear -> GELU ->
            Linear) of the LLM's hidden states averaged over the answer's ``<p>...</p>`` span that
            precedes the ``[SEG]``, so the prompt depends on the expression from the first update
            (svac's addition for models trained from scratch). A ``[SEG]`` with no span before it
            gets no skip term.
        span_layer: which hidden states the span skip averages: ``input`` -- the input embeddings
            (layer 0: a bag of the expression's words); ``last`` -- the last layer's (after the final
            norm, the states ``[SEG]`` itself is read from), which start close to the embeddings and
            can also carry what the video shows about the phrase.
        zero_init_llm_branch: when the model is built with random weights, start the last layer
            of ``text_hidden_fcs`` at zero, so the span skip alone prompts SAM-2 at first and the
            last-layer ``[SEG]`` branch grows from zero as it learns (no effect on loaded weights).
        ablate: an ablation of a model with the span skip path: ``none`` (the default) sums both
            terms; ``llm_branch`` drops the ``text_hidden_fcs`` projection of the last-layer ``[SEG]``
            state, so the span skip alone prompts SAM-2 (what the expression's words give without
            what the LLM read in the video); ``span_skip`` drops the span term, so the ``[SEG]``
            state alone prompts it. Applies wherever prompts are made (inference and training), e.g.
            ``svac eval rvos --set seg_prompt.ablate=llm_branch``. Raises ``ConfigError`` (from
            :class:`SVACConfig`) on a model without the span skip path.
    """

    span_skip: bool = False
    span_layer: Literal["input", "last"] = "input"
    zero_init_llm_branch: bool = False
    ablate: Literal["none", "llm_branch", "span_skip"] = "none"


@dataclass
class InferenceConfig:
    """Choices made at inference time.

    Attributes:
        answer_mode: how :meth:`svac.SVAC.segment` obtains the answer: ``template`` feeds the
            CSA answer template of ``prompts/segmentation.yaml`` (exactly one ``[SEG]`` per clip)
            and reads the ``[SEG]`` hidden states in one forward pass; ``generate`` decodes the
            answer greedily and applies ``csa.count_policy``. :meth:`svac.SVAC.chat` always generates.
        max_new_tokens: decoding budget of a generated answer (tokens).
        mask_threshold: logit threshold of SAM-2 mask logits (0.0 = probability 0.5).
        mask_components: ``all`` keeps every region of a mask (Sa2VA and SVAC, the default);
            ``strongest`` keeps, per object and frame, only the connected region of SAM-2's
            low-resolution logits with the largest probability mass -- for expressions naming one
            object (:mod:`svac.grounding.mask_components`; svac's default model sets it).
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: compute dtype of the model (``float32``, ``bfloat16``, ``float16``).
    """

    answer_mode: Literal["template", "generate"] = "template"
    max_new_tokens: int = 64
    mask_threshold: float = 0.0
    mask_components: Literal["all", "strongest"] = "all"
    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"inference.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not math.isfinite(self.mask_threshold):
            raise ConfigError(f"inference.mask_threshold must be a finite logit, got {self.mask_threshold}")
        check_device(self.device, where="inference.device")


#: Frame height and width of the baseline heads must be multiples of this (pixels): the coarsest
#: stride of their Swin / ResNet backbones (ReferFormer §4.1, LAVT §3).
BASELINE_SIZE_MULTIPLE = 32
#: Baseline heads, by the ``head`` name that selects them.
BASELINE_HEADS = ("referformer", "lavt")
#: Settings of a ReferFormer text encoder built from scratch that svac takes from the tokenizer.
TOKENIZER_DERIVED_KEYS = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id")


@dataclass
class BaselineConfig:
    """The classic R-VOS heads ``referformer`` and ``lavt`` (used when ``SVACConfig.head`` names one).

    A baseline reads the video in consecutive, non-overlapping windows of ``window`` frames,
    each resized to ``input_size`` and ImageNet-normalised, and segments every frame of it
    (ReferFormer §3.5 "Inference"; LAVT segments frame by frame, its video variant clip by clip).
    Training examples are ``window`` frames of one video at ``input_size`` too.

    Attributes:
        input_size: ``(height, width)`` the frames are resized to (pixels, multiples of 32; the
            aspect ratio is not kept). ReferFormer resizes the shorter side to 360 and LAVT uses
            480 x 480; ``(384, 640)`` is the closest multiple of 32 for 16:9 video.
        window: T, frames per forward pass at inference and per training example (frames).
            ReferFormer trains on clips of 5 frames (§4.1).
        train_frames: how a training example's ``window`` frames are chosen: ``window`` --
            consecutive frames from a random start, as the inference windows are; ``uniform`` --
            spread over the whole video (:func:`svac.video.reader.sample_frame_indices`, the
            sampling ASTC uses). A video shorter than ``window`` repeats frames in temporal order.
        text_tokenizer: a local tokenizer folder (BERT / RoBERTa ...). ``None``: the text
            encoder's own tokenizer when it is a pretrained checkpoint, else svac's offline
            byte-level tokenizer (:mod:`svac.heads.text`).
        referformer: the ReferFormer head (:class:`svac.baseline_config.ReferFormerConfig`), or
            ``None`` (no section; an empty mapping in a file means the same). When the text
            encoder is built from scratch (``text_encoder_init_config`` set), that mapping holds
            keyword arguments of transformers' ``RobertaConfig`` / ``BertConfig`` (checked like
            ``mllm.text``); its ``vocab_size`` and special-token ids come from the tokenizer and
            must not be given.
        lavt: the LAVT head (:class:`svac.baseline_config.LAVTConfig`), or ``None``. When BERT is
            built from scratch (``text_encoder_path`` unset), ``text_vocab_size`` comes from the
            tokenizer and must not be given.

    Raises:
        ConfigError: naming the key, for a size that is not a positive multiple of 32, a window
            below 1, a text-encoder setting that is not a field of its transformers config class or
            not plain data, or a tokenizer-derived text-encoder setting given explicitly.
    """

    input_size: tuple[int, int] = (384, 640)
    window: int = 5
    train_frames: Literal["window", "uniform"] = "window"
    text_tokenizer: str | None = None
    referformer: ReferFormerConfig | None = None
    lavt: LAVTConfig | None = None

    def __post_init__(self) -> None:
        for axis, value in zip(("height", "width"), self.input_size):
            if value < BASELINE_SIZE_MULTIPLE or value % BASELINE_SIZE_MULTIPLE:
                raise ConfigError(f"baseline.input_size {axis} must be a positive multiple of "
                                  f"{BASELINE_SIZE_MULTIPLE} pixels, got {value}")
        if self.window < 1:
            raise ConfigError(f"baseline.window must be >= 1, got {self.window}")
        init = None if self.referformer is None else self.referformer.text_encoder_init_config
        if init is not None:
            where = "baseline.referformer.text_encoder_init_config"
            given = sorted(k for k in TOKENIZER_DERIVED_KEYS if k in init)
            if given:
                raise ConfigError(f"{where}.{given[0]} is set from the tokenizer; remove it from the config")
            check_library_kwargs(where, init, library_config_fields(self.referformer.text_config_class()))
        lavt = self.lavt
        if lavt is not None and lavt.text_encoder_path is None and lavt.text_vocab_size is not None:
            raise ConfigError("baseline.lavt.text_vocab_size is set from the tokenizer; remove it from the config")


@dataclass
class SVACConfig:
    """A whole SVAC model: MLLM + ASTC + CSA + SAM-2 + inference (SVAC §3), or a baseline head.

    Attributes:
        name: a short name, written into saved checkpoints and results.
        head: the segmentation head: ``svac`` is the MLLM + SAM-2 model (sections ``mllm``,
            ``astc``, ``csa``, ``sam2``, ``seg_prompt``); ``referformer`` and ``lavt`` are the classic R-VOS
            baselines configured by ``baseline`` (:mod:`svac.heads`). ``inference`` applies to all.
        trained: ``False`` for randomly initialised models; the CLI warns on those.
        pipeline: how :meth:`svac.SVAC.segment` and :meth:`svac.SVAC.chat` run the model.
            ``svac`` -- SVAC's inference (SVAC §3): the ``astc`` / ``csa`` modes configured, every
            frame prompted by its clip's ``[SEG]`` with SAM-2 memory from the first frame on, images
            resized by torch (bicubic, antialiased), low-resolution masks upsampled straight to the
            frame size. ``sa2va`` -- Sa2VA's ``predict_forward`` reproduced step for step (chosen
            automatically for Sa2VA checkpoints; :mod:`svac.sa2va_pipeline` lists each step): the
            first ``astc.first_k`` frames, one per image, in Sa2VA's prompt text; those frames
            each decoded on their own with the ``[SEG]`` prompt as SAM-2 conditioning frames, the
            others tracked by memory without a prompt; PIL bicubic resizing; masks upsampled
            256 -> 1024 -> frame size. Requires ``astc.mode=first_k`` and ``csa.mode=single``.

    Raises:
        ConfigError: naming the key, when ``head`` is ``svac`` and the MLLM sizes are
            incomplete, when ``head`` is a baseline whose ``baseline.<head>`` section is missing,
            or when ``pipeline=sa2va`` is combined with ASTC or per-clip ``[SEG]`` modes.
    """

    name: str = "svac"
    head: Literal["svac", "referformer", "lavt"] = "svac"
    trained: bool = False
    mllm: MLLMConfig = field(default_factory=MLLMConfig)
    astc: ASTCConfig = field(default_factory=ASTCConfig)
    csa: CSAConfig = field(default_factory=CSAConfig)
    sam2: SAM2Config = field(default_factory=SAM2Config)
    seg_prompt: SegPromptConfig = field(default_factory=SegPromptConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    pipeline: Literal["svac", "sa2va"] = "svac"

    def __post_init__(self) -> None:
        if self.pipeline == "sa2va" and (self.astc.mode != "first_k" or self.csa.mode != "single"):
            raise ConfigError(f"pipeline=sa2va reproduces Sa2VA, which reads the first astc.first_k frames with one "
                              f"[SEG] (astc.mode=first_k, csa.mode=single); got astc.mode={self.astc.mode}, "
                              f"csa.mode={self.csa.mode}. Set pipeline=svac to run ASTC / CSA")
        if self.pipeline == "sa2va" and self.seg_prompt.span_skip:
            raise ConfigError("pipeline=sa2va reproduces Sa2VA, whose [SEG] prompt has no span skip path; set "
                              "seg_prompt.span_skip=false or pipeline=svac")
        if self.seg_prompt.ablate != "none" and not self.seg_prompt.span_skip:
            raise ConfigError(f"seg_prompt.ablate={self.seg_prompt.ablate} removes one of the two terms of a [SEG] "
                              "prompt with the span skip path; this model has no span skip "
                              "(seg_prompt.span_skip=false): its prompt is the [SEG] state's projection alone")
        if self.head == "svac":
            self.mllm.check_complete()
        elif getattr(self.baseline, self.head) is None:
            raise ConfigError(f"the model config has no baseline.{self.head} section: head {self.head!r} is built "
                              f"from it (svac never falls back to a library's full-size defaults); see "
                              f"configs/{_TINY_CONFIGS[self.head]}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML/JSON-compatible data (tuples become lists)."""
        return _to_plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------- loading


def from_dict(cls: type, data: dict[str, Any], *, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key and value type.

    This is the one loader of the config tree: every section, the baseline heads' included, is
    built here from its field annotations (nested dataclasses recursively), then checks its own
    values (``__post_init__``). An error a section raises without naming where it sits in the
    tree is prefixed with ``where`` (``baseline.lavt: LAVTConfig.variant must be ...``).

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        data: mapping of field names to values, as read from YAML or JSON.
        where: dotted prefix used in error messages.

    Raises:
        ConfigError: on an unknown key, a value whose type does not match the field, a value
            the section refuses, a section the model's ``head`` needs but the data lacks, or an
            old-format ``sam2.overrides`` line that cannot be converted.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    check = _DOCUMENT_CHECKS.get(cls)
    if check is not None:
        data = check(data, where)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(_join(where, str(k)) for k in unknown)}; "
                          f"valid keys of {where or cls.__name__}: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if not where or where in str(exc):
            raise
        raise ConfigError(f"{where}: {exc}") from exc


def _model_sections(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Refuse a model config without the sections its ``head`` is built from.

    Head ``svac`` needs ``mllm`` and ``sam2``; a baseline head ``referformer`` / ``lavt`` needs
    ``baseline.<head>``. Without them the model would be built from library defaults (a
    full-size InternVL / SAM-2 / ReferFormer), never what a config means.
    """
    head = data.get("head", "svac")
    if head == "svac":
        needed = [s for s in ("mllm", "sam2") if not isinstance(data.get(s), dict)]
    elif head in BASELINE_HEADS:
        baseline = data.get("baseline")
        needed = [] if isinstance(baseline, dict) and isinstance(baseline.get(head), dict) else [f"baseline.{head}"]
    else:
        needed = []  # the Literal check of ``head`` names the problem
    if needed:
        raise ConfigError(f"{where or 'the model config'} has no {' and no '.join(_join(where, n) for n in needed)} "
                          f"section: head {head!r} is built from it (svac never falls back to a library's "
                          f"full-size defaults); see configs/{_TINY_CONFIGS.get(head, 'tiny.yaml')}")
    return data


#: The shipped tiny config of each head (an example of a complete config).
_TINY_CONFIGS = {"svac": "tiny.yaml", "referformer": "referformer_tiny.yaml", "lavt": "lavt_tiny.yaml"}


def _legacy_sam2(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Convert the old ``sam2.overrides`` list of Hydra overrides into the typed fields, or refuse it.

    Each line must be ``++model.<path>=<value>`` (``+model.`` or ``model.`` also accepted) where
    ``<path>`` is one of the Hydra paths svac writes itself (:data:`SAM2_HYDRA_PATHS`) and
    ``<value>`` a number, ``true``/``false`` or a list of numbers. Lines that set the same typed
    field must agree, and agree with a typed field given beside them.

    Raises:
        ConfigError: naming the line (``sam2.overrides[i]``) and saying how to convert it.
    """
    if "overrides" not in data:
        return data
    where = where or "sam2"
    lines = data["overrides"]
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items() if k != "overrides"}
    if lines is None:
        return out
    if not isinstance(lines, list):
        raise ConfigError(f"{where}.overrides must be a list of '++model.a.b=value' lines, got {lines!r}. "
                          f"{_LEGACY_HOW}")
    inverse = {path: key for key, paths in SAM2_HYDRA_PATHS.items() for path in paths}
    given: dict[str, tuple[Any, str]] = {}
    for i, line in enumerate(lines):
        at = f"{where}.overrides[{i}]"
        if not isinstance(line, str):
            raise ConfigError(f"{at}: expected a '++model.a.b=value' line, got {line!r}. {_LEGACY_HOW}")
        target, sep, raw = line.partition("=")
        path = next((target[len(p):] for p in ("++model.", "+model.", "model.") if target.startswith(p)), None)
        key = inverse.get(path) if sep else None
        if key is None:
            raise ConfigError(f"{at}: {line!r} does not set a SAM-2 size svac describes (the typed fields are "
                              f"sam2.{', sam2.'.join(SAM2_HYDRA_PATHS)}); svac no longer passes Hydra overrides "
                              f"to the sam2 package. {_LEGACY_HOW}")
        value = _legacy_value(raw, f"{at} ({line!r})")
        if key in given and given[key][0] != value:
            raise ConfigError(f"{at}: {line!r} contradicts {given[key][1]!r}: both set sam2.{key}")
        given[key] = (value, line)
    for key, (value, line) in given.items():
        section, _, name = key.rpartition(".")
        node = out
        if section:
            node = out.setdefault(section, {})
            if node is None:
                node = out[section] = {}
            if not isinstance(node, dict):
                raise ConfigError(f"{where}.{section}: expected a mapping, got {node!r}")
        if node.get(name) is not None and node[name] != value:
            raise ConfigError(f"{where}.{key} is {node[name]!r} but the old-format line {line!r} sets "
                              f"{value!r}. {_LEGACY_HOW}")
        node[name] = value
    return out


_LEGACY_HOW = ("To convert an old config, replace each '++model.<path>=<value>' line of sam2.overrides by the typed "
               "field that sets <path> (svac.config.SAM2_HYDRA_PATHS), e.g. "
               "'++model.image_encoder.trunk.embed_dim=16' becomes 'sam2: {trunk: {embed_dim: 16}}' "
               "(configs/tiny.yaml shows every field); for a checkpoint folder, edit its config.json the same way.")


def _legacy_value(raw: str, where: str) -> Any:
    """An old-format override value: an int, a finite float, ``true``/``false`` or ``[n, n, ...]`` of numbers.

    Raises:
        ConfigError: for anything else (strings, mappings, interpolations ``${...}``).
    """
    text = raw.strip()
    if text in ("true", "false", "True", "False"):
        return text.lower() == "true"
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_legacy_number(v.strip(), where) for v in inner.split(",")] if inner else []
    return _legacy_number(text, where)


def _legacy_number(text: str, where: str) -> int | float:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    raise ConfigError(f"{where}: {text!r} is not a number, a boolean or a list of numbers; old-format SAM-2 "
                      f"overrides may only set sizes and switches. {_LEGACY_HOW}")


def load_config(source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SVACConfig:
    """Load an :class:`SVACConfig` from YAML, then apply ``key.sub=value`` overrides.

    Args:
        source: a YAML file path, or the file name of a config shipped in ``configs/``
            (e.g. ``"tiny.yaml"``).
        overrides: strings like ``"astc.clip_len=4"``; values are parsed as YAML scalars.

    Raises:
        FileNotFoundError: when ``source`` is neither an existing file nor a shipped config.
        ConfigError: on malformed YAML, unknown keys or wrongly typed values.
    """
    data = read_yaml(source)
    data = apply_overrides(data, overrides)
    return from_dict(SVACConfig, data)


#: The repository folder whose YAML files ship inside the package (as ``svac.configs``).
CONFIGS_DIR = "configs"


def shipped_config(source: str | Path, folder: str | None = None):
    """The config shipped in ``configs/`` that ``source`` names, or ``None``.

    ``source`` is a path inside ``configs/`` with or without the leading ``configs/``
    (``configs/train/x.yaml``, ``train/x.yaml``), or, with ``folder``, a bare file name looked up
    in ``configs/<folder>/`` first (``x.yaml`` -> ``configs/train/x.yaml``), then in ``configs/``.

    Returns:
        An ``importlib.resources`` traversable of the file, or ``None`` when no shipped file matches.
    """
    name = Path(source).as_posix()
    prefix = CONFIGS_DIR + "/"
    if name.startswith(prefix):
        name = name[len(prefix):]
    names = [f"{folder}/{name}", name] if folder is not None and "/" not in name else [name]
    root = resources.files("svac.configs")
    for candidate in names:
        shipped = root.joinpath(candidate)
        if shipped.is_file():
            return shipped
    return None


def read_yaml(source: str | Path, *, folder: str | None = None) -> dict[str, Any]:
    """Read a YAML mapping from a path or from a config shipped in ``configs/`` (see :func:`shipped_config`).

    Args:
        source: a YAML file; when no such file exists, a config shipped in ``configs/``.
        folder: the sub-folder of ``configs/`` where a bare file name is looked up first (``train``).

    Raises:
        FileNotFoundError: when the file does not exist in either place.
        ConfigError: when the file is not valid YAML or not a mapping.
    """
    path = Path(source)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        shipped = shipped_config(source, folder)
        if shipped is None:
            where = f"{CONFIGS_DIR}/{folder}/ or {CONFIGS_DIR}/" if folder is not None else f"{CONFIGS_DIR}/"
            raise FileNotFoundError(f"config {source!s} not found (neither a file nor a config shipped in {where})")
        text = shipped.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``"a.b.c=value"`` overrides applied (values parsed as YAML).

    Raises:
        ConfigError: when an override is not of the form ``key=value``.
    """
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part} is not a mapping")
            node = child
        node[parts[-1]] = value
    return out


#: What each typed SAM-2 field sets in the ``model`` node of the ``sam2`` package's Hydra config
#: (svac keys under ``sam2.``; several paths where ``sam2``'s modules need one value).
SAM2_HYDRA_PATHS: dict[str, tuple[str, ...]] = {
    "image_size": ("image_size",),
    "trunk.embed_dim": ("image_encoder.trunk.embed_dim",),
    "trunk.num_heads": ("image_encoder.trunk.num_heads",),
    "trunk.stages": ("image_encoder.trunk.stages",),
    "trunk.global_att_blocks": ("image_encoder.trunk.global_att_blocks",),
    "trunk.window_spec": ("image_encoder.trunk.window_spec",),
    "trunk.window_pos_embed_bkg_spatial_size": ("image_encoder.trunk.window_pos_embed_bkg_spatial_size",),
    "neck.d_model": ("image_encoder.neck.d_model",),
    "neck.backbone_channel_list": ("image_encoder.neck.backbone_channel_list",),
    "neck.num_pos_feats": ("image_encoder.neck.position_encoding.num_pos_feats",),
    "memory_attention.d_model": ("memory_attention.d_model", "memory_attention.layer.d_model",
                                 "memory_attention.layer.self_attention.embedding_dim",
                                 "memory_attention.layer.cross_attention.embedding_dim"),
    "memory_attention.num_layers": ("memory_attention.num_layers",),
    "memory_attention.dim_feedforward": ("memory_attention.layer.dim_feedforward",),
    "memory_attention.feat_sizes": ("memory_attention.layer.self_attention.feat_sizes",
                                    "memory_attention.layer.cross_attention.feat_sizes"),
    "memory_attention.kv_in_dim": ("memory_attention.layer.cross_attention.kv_in_dim",),
    "memory_attention.dropout": ("memory_attention.layer.dropout", "memory_attention.layer.self_attention.dropout",
                                 "memory_attention.layer.cross_attention.dropout"),
    "memory_encoder.out_dim": ("memory_encoder.out_dim",),
    "memory_encoder.in_dim": ("memory_encoder.in_dim",),
    "memory_encoder.num_pos_feats": ("memory_encoder.position_encoding.num_pos_feats",),
    "memory_encoder.mask_downsampler_embed_dim": ("memory_encoder.mask_downsampler.embed_dim",),
    "memory_encoder.fuser_dim": ("memory_encoder.fuser.layer.dim",),
    "memory_encoder.fuser_num_layers": ("memory_encoder.fuser.num_layers",),
    "mask_decoder.dynamic_multimask_via_stability": ("sam_mask_decoder_extra_args.dynamic_multimask_via_stability",),
    "mask_decoder.dynamic_multimask_stability_delta": (
        "sam_mask_decoder_extra_args.dynamic_multimask_stability_delta",),
    "mask_decoder.dynamic_multimask_stability_thresh": (
        "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh",),
}


def _empty_sections(data: dict[str, Any], where: str) -> dict[str, Any]:
    """An empty ``baseline.referformer`` / ``baseline.lavt`` mapping is no section (``None``), as
    configs and checkpoints written before the sections were typed store an unused one."""
    return {k: (None if k in BASELINE_HEADS and v == {} else v) for k, v in data.items()}


#: Checks (and conversions) of a raw mapping before :func:`from_dict` builds these classes from it.
_DOCUMENT_CHECKS: dict[type, typing.Callable[[dict[str, Any], str], dict[str, Any]]] = {
    SVACConfig: _model_sections,
    SAM2Config: _legacy_sam2,
    BaselineConfig: _empty_sections,
}


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # an optional field: the option's own error names the problem
            return _coerce(options[0], value, where)
        errors = []
        for option in options:
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {tp} ({'; '.join(errors)})")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_coerce(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp in (int, str, bool):
        # bool is an int in Python: refuse True for int fields and 1 for bool fields.
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _to_plain(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _to_plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_to_plain(v) for v in data]
    return data
