"""Typed configuration of an SVAC model and its inference, loadable from YAML.

One dataclass per concern:

* :class:`MLLMConfig`      -- the InternVL-style MLLM (vision tower, projector, LLM, tokenizer, chat template);
* :class:`ASTCConfig`      -- frame sampling and Anchor-based Spatio-Temporal Compression (SVAC §3.3);
* :class:`CSAConfig`       -- Clip-Specific Allocation of ``[SEG]`` tokens (SVAC §3.4);
* :class:`SAM2Config`      -- the SAM-2 grounding model (built from the ``sam2`` package's own configs);
* :class:`InferenceConfig` -- decoding, device and dtype choices at inference;
* :class:`BaselineConfig`  -- the classic R-VOS heads (ReferFormer, LAVT) selected by ``head``;
* :class:`SVACConfig`      -- the whole model, made of the above.

YAML files in ``configs/`` mirror these classes one to one. :func:`load_config`
reads one (a path, or the name of a file shipped in ``configs/``), applies
``key.sub=value`` overrides and rejects unknown keys and wrongly typed values
with a :class:`~svac.errors.ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from svac.errors import ConfigError

#: ImageNet statistics used by InternViT and SAM-2 preprocessing (RGB, in [0, 1] units).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class MLLMConfig:
    """The InternVL-style MLLM: InternViT vision tower, MLP projector and a causal LLM.

    The sub-model sizes are handed unchanged to transformers' own typed configs
    (``InternVLVisionConfig`` and the LLM's config class), so every field those
    classes accept is accepted here and validated by them.

    Attributes:
        vision: keyword arguments of ``transformers.InternVLVisionConfig``
            (``image_size`` and ``patch_size`` in pixels, widths, depths ...).
        text_model_type: transformers ``model_type`` of the LLM (``qwen2``, ``phi3``, ``llama`` ...).
        text: keyword arguments of that LLM's config class (``vocab_size`` is set by svac
            from the tokenizer and must not be given).
        downsample_ratio: pixel-shuffle ratio applied to ViT patch features (InternVL: 0.5).
        projector_hidden_act: activation of the 2-layer MLP projector (``mlp1`` in InternVL).
        chat_template: chat template family, a name in ``prompts/chat_templates.yaml``
            (``qwen``, ``internlm2`` or ``phi3``; Sa2VA family).
        tokenizer: path of a tokenizer folder; ``None`` builds svac's byte-level tokenizer
            (tiny test and demo models only).
        image_mean, image_std: per-channel normalisation of MLLM images (RGB, [0, 1] units).
        attn_implementation: transformers attention backend (``sdpa``, ``eager``,
            ``flash_attention_2``; the last needs the ``gpu`` extra).
    """

    vision: dict[str, Any] = field(default_factory=dict)
    text_model_type: str = "qwen2"
    text: dict[str, Any] = field(default_factory=dict)
    downsample_ratio: float = 0.5
    projector_hidden_act: str = "gelu"
    chat_template: str = "qwen"
    tokenizer: str | None = None
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        if "vocab_size" in self.text:
            raise ConfigError("mllm.text.vocab_size is set from the tokenizer; remove it from the config")
        if not 0.0 < self.downsample_ratio <= 1.0:
            raise ConfigError(f"mllm.downsample_ratio must be in (0, 1], got {self.downsample_ratio}")


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
    """

    mode: Literal["per_clip", "single"] = "per_clip"
    count_policy: Literal["raise", "single_fallback"] = "raise"


@dataclass
class SAM2Config:
    """The SAM-2 grounding model, built from a config file of the ``sam2`` package.

    Attributes:
        config_name: a Hydra config shipped in the ``sam2`` package, e.g.
            ``configs/sam2.1/sam2.1_hiera_t.yaml`` or ``configs/sam2/sam2_hiera_l.yaml``.
        overrides: Hydra overrides applied to it (``++model.image_size=256`` ...); the tiny
            configs shrink a hiera-T this way.
        checkpoint: optional Meta SAM 2 ``.pt`` checkpoint (loaded with ``weights_only=True``).
        multimask_output: whether the mask decoder predicts 3 masks and keeps the best one
            when prompted by ``[SEG]`` (Sa2VA: ``False``).
        max_cond_frames_in_attn: clip anchors kept as conditioning memories that a frame
            attends to (the temporally closest ones; -1 = all).
        encoder_batch_size: frames per SAM-2 image-encoder call (frames); bounds memory.
    """

    config_name: str = "configs/sam2.1/sam2.1_hiera_t.yaml"
    overrides: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    multimask_output: bool = False
    max_cond_frames_in_attn: int = 4
    encoder_batch_size: int = 8

    def __post_init__(self) -> None:
        if self.encoder_batch_size < 1:
            raise ConfigError(f"sam2.encoder_batch_size must be >= 1, got {self.encoder_batch_size}")


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
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: compute dtype of the model (``float32``, ``bfloat16``, ``float16``).
    """

    answer_mode: Literal["template", "generate"] = "template"
    max_new_tokens: int = 64
    mask_threshold: float = 0.0
    device: str = "auto"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


#: Frame height and width of the baseline heads must be multiples of this (pixels): the coarsest
#: stride of their Swin / ResNet backbones (ReferFormer §4.1, LAVT §3).
BASELINE_SIZE_MULTIPLE = 32
#: Baseline heads, by the ``head`` name that selects them.
BASELINE_HEADS = ("referformer", "lavt")
#: Text-encoder settings svac derives from the tokenizer when it builds the encoder from scratch.
TOKENIZER_DERIVED_KEYS = {
    "referformer": ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id"),
    "lavt": ("text_vocab_size",),
}


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
        referformer: keyword arguments of :class:`svac.heads.referformer.ReferFormerConfig`.
            When the text encoder is built from scratch (``text_encoder_init_config`` set), its
            ``vocab_size`` and special-token ids come from the tokenizer and must not be given.
        lavt: keyword arguments of :class:`svac.heads.lavt.LAVTConfig`. When BERT is built from
            scratch (``text_encoder_path`` unset), ``text_vocab_size`` comes from the tokenizer
            and must not be given.

    Raises:
        ConfigError: naming the key, for a size that is not a positive multiple of 32, a window
            below 1, or a tokenizer-derived text-encoder setting given explicitly.
    """

    input_size: tuple[int, int] = (384, 640)
    window: int = 5
    train_frames: Literal["window", "uniform"] = "window"
    text_tokenizer: str | None = None
    referformer: dict[str, Any] = field(default_factory=dict)
    lavt: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for axis, value in zip(("height", "width"), self.input_size):
            if value < BASELINE_SIZE_MULTIPLE or value % BASELINE_SIZE_MULTIPLE:
                raise ConfigError(f"baseline.input_size {axis} must be a positive multiple of "
                                  f"{BASELINE_SIZE_MULTIPLE} pixels, got {value}")
        if self.window < 1:
            raise ConfigError(f"baseline.window must be >= 1, got {self.window}")
        init = self.referformer.get("text_encoder_init_config")
        if isinstance(init, dict):
            given = sorted(k for k in TOKENIZER_DERIVED_KEYS["referformer"] if k in init)
            if given:
                raise ConfigError(f"baseline.referformer.text_encoder_init_config.{given[0]} is set from the "
                                  "tokenizer; remove it from the config")
        given = sorted(k for k in TOKENIZER_DERIVED_KEYS["lavt"] if k in self.lavt)
        if self.lavt.get("text_encoder_path") is None and given:
            raise ConfigError(f"baseline.lavt.{given[0]} is set from the tokenizer; remove it from the config")


@dataclass
class SVACConfig:
    """A whole SVAC model: MLLM + ASTC + CSA + SAM-2 + inference (SVAC §3), or a baseline head.

    Attributes:
        name: a short name, written into saved checkpoints and results.
        head: the segmentation head: ``svac`` is the MLLM + SAM-2 model (sections ``mllm``,
            ``astc``, ``csa``, ``sam2``); ``referformer`` and ``lavt`` are the classic R-VOS
            baselines configured by ``baseline`` (:mod:`svac.heads`). ``inference`` applies to all.
        trained: ``False`` for randomly initialised models; the CLI warns on those.

    Raises:
        ConfigError: when ``head`` names a baseline whose ``baseline.<head>`` section is not a
            valid head config (the message names the key).
    """

    name: str = "svac"
    head: Literal["svac", "referformer", "lavt"] = "svac"
    trained: bool = False
    mllm: MLLMConfig = field(default_factory=MLLMConfig)
    astc: ASTCConfig = field(default_factory=ASTCConfig)
    csa: CSAConfig = field(default_factory=CSAConfig)
    sam2: SAM2Config = field(default_factory=SAM2Config)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        if self.head in BASELINE_HEADS:
            from svac.heads.head_configs import head_config

            head_config(self)  # validates baseline.<head>; raises ConfigError naming the key

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML/JSON-compatible data (tuples become lists)."""
        return _to_plain(dataclasses.asdict(self))


# --------------------------------------------------------------------------- loading


def from_dict(cls: type, data: dict[str, Any], *, where: str = "") -> Any:
    """Build dataclass ``cls`` from plain data, checking every key and value type.

    Args:
        cls: a dataclass type (nested dataclass fields are built recursively).
        data: mapping of field names to values, as read from YAML or JSON.
        where: dotted prefix used in error messages.

    Raises:
        ConfigError: on an unknown key, or a value whose type does not match the field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(_join(where, k) for k in unknown)}; "
                          f"valid keys of {where or cls.__name__}: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(hints[name], value, _join(where, name)) for name, value in data.items()}
    return cls(**kwargs)


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


def read_yaml(source: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from a path or from a config shipped in ``configs/``.

    Raises:
        FileNotFoundError: when the file does not exist in either place.
        ConfigError: when the file is not valid YAML or not a mapping.
    """
    path = Path(source)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        shipped = resources.files("svac.configs").joinpath(str(source))
        if not shipped.is_file():
            raise FileNotFoundError(f"config {source!s} not found (neither a file nor a config shipped in configs/)")
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
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
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
