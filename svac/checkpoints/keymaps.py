"""Key maps from InternVL-chat / Sa2VA checkpoints to svac's modules (transformers' own key names).

An InternVL-chat checkpoint (OpenGVLab's remote-code ``InternVLChatModel``, which
Sa2VA's ``Sa2VAChatModel`` extends) stores

* ``vision_model.*`` -- InternViT: ``embeddings.{class_embedding, position_embedding,
  patch_embedding}``, and per layer ``attn.qkv`` (fused, rows ``[q; k; v]``), ``attn.proj``,
  optional ``attn.{q,k}_norm``, ``mlp.fc{1,2}``, ``norm{1,2}`` and the layer scales ``ls{1,2}``;
* ``mlp1.{0,1,3}.*`` -- LayerNorm(4C) -> Linear(4C, D) -> GELU -> Linear(D, D) applied after
  a 0.5 pixel shuffle;
* ``language_model.*`` -- a causal LM (``model.*`` + ``lm_head``);

and Sa2VA adds ``grounding_encoder.sam2_model.*`` (Meta SAM 2 module names, except that the
memory fuser's layer scale ``memory_encoder.fuser.layers.{i}.gamma`` is stored as ``.g_weight``:
Sa2VA's ``CXBlock`` names it so and its ``tools/convert_to_hf.py`` renames ``.gamma`` ->
``.g_weight``) and ``text_hidden_fcs.{0,2}.*``. This module maps them onto transformers'
``InternVLForConditionalGeneration`` (``model.vision_tower``, ``model.multi_modal_projector``,
``model.language_model``, ``lm_head``), the ``sam2`` package's ``SAM2Base`` and svac's
projector. The correspondence follows the module definitions of both sides (InternViT's
``InternVisionModel`` and transformers' ``InternVLVisionModel``); the code is svac's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from svac.checkpoints.materialize import Conversion, LoadPlan, rename, split_rows, verify_copy
from svac.errors import CheckpointError

#: Prefixes of svac's model tensors.
VISION = "mllm.model.vision_tower"
PROJECTOR = "mllm.model.multi_modal_projector"
DECODER = "mllm.model.language_model"
LM_HEAD = "mllm.lm_head.weight"
GROUNDING = "grounding"
FCS = "text_hidden_fcs"

#: Checkpoint prefixes of an InternVL-chat / Sa2VA folder.
SRC_VISION = "vision_model."
SRC_PROJECTOR = "mlp1."
SRC_LLM = "language_model."
SRC_GROUNDING = "grounding_encoder.sam2_model."
SRC_FCS = "text_hidden_fcs."

#: eps of transformers' InternVLVision q/k RMSNorm (fixed, not configurable).
TRANSFORMERS_QK_NORM_EPS = 1e-6
#: The only pixel-shuffle layout transformers' InternVL implements (InternVL's ``ps_version='v2'``).
SUPPORTED_PS_VERSION = "v2"

#: Defaults of InternVL's ``InternVisionConfig`` (``configuration_intern_vit.py``) for fields a config omits.
INTERNVIT_DEFAULTS = {
    "num_channels": 3, "patch_size": 14, "image_size": 224, "qkv_bias": False, "hidden_size": 3200,
    "num_attention_heads": 25, "intermediate_size": 12800, "qk_normalization": True, "num_hidden_layers": 48,
    "hidden_act": "gelu", "norm_type": "rms_norm", "layer_norm_eps": 1e-6, "dropout": 0.0, "attention_dropout": 0.0,
    "initializer_range": 0.02, "initializer_factor": 0.1,
}

#: ``mlp1`` Sequential index -> transformers projector module.
_PROJECTOR_LAYERS = {"0": "layer_norm", "1": "linear_1", "3": "linear_2"}
#: InternViT per-layer module -> transformers InternVLVisionLayer module.
_VIT_LAYER_MODULES = {
    "attn.proj": "attention.projection_layer",
    "attn.q_norm": "attention.q_norm",
    "attn.k_norm": "attention.k_norm",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
}
_VIT_LAYER_SCALES = {"ls1": "lambda_1", "ls2": "lambda_2"}
_VIT_EMBEDDINGS = {
    "embeddings.class_embedding": "embeddings.cls_token",
    "embeddings.position_embedding": "embeddings.position_embeddings",
    "embeddings.patch_embedding.weight": "embeddings.patch_embeddings.projection.weight",
    "embeddings.patch_embedding.bias": "embeddings.patch_embeddings.projection.bias",
}
_VIT_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)")
#: Sa2VA's name of the memory fuser's layer scale (``CXBlock.g_weight``; SAM 2's ``CXBlock.gamma``).
_SA2VA_FUSER_SCALE = re.compile(r"memory_encoder\.fuser\.layers\.(\d+)\.g_weight")


def internvit_vision_kwargs(vision: Mapping[str, Any], *, force_image_size: int | None = None) -> dict[str, Any]:
    """``transformers.InternVLVisionConfig`` keyword arguments equivalent to an InternViT config.

    Args:
        vision: the ``vision_config`` of an InternVL-chat / Sa2VA ``config.json``
            (``InternVisionConfig`` fields: ``hidden_size``, ``num_attention_heads``,
            ``qkv_bias``, ``norm_type``, ``layer_norm_eps``, ``qk_normalization``, ...); omitted
            fields take ``InternVisionConfig``'s defaults (:data:`INTERNVIT_DEFAULTS`).
        force_image_size: the top-level ``force_image_size`` (pixels), when set.

    Returns:
        Keyword arguments with the same forward computation at inference. Not carried
        over: ``drop_path_rate`` (stochastic depth, training only; transformers' vision
        tower has none) and ``use_flash_attn`` (svac picks the attention backend).

    Raises:
        CheckpointError: when the tower cannot be expressed exactly: a norm type other than
            ``layer_norm``/``rms_norm``, q/k normalisation with an eps other than 1e-6
            (transformers' fixed value), or a ``force_image_size`` that differs from the
            tower's ``image_size`` (position embeddings stored for another size).
    """
    v = {**INTERNVIT_DEFAULTS, **vision}
    image_size = int(v["image_size"])
    if force_image_size is not None and int(force_image_size) != image_size:
        raise CheckpointError(f"force_image_size={force_image_size} differs from the vision tower's image_size="
                              f"{image_size}: not supported yet")
    norm_type = v["norm_type"]
    if norm_type not in ("layer_norm", "rms_norm"):
        raise CheckpointError(f"InternViT norm_type {norm_type!r} is not supported (layer_norm or rms_norm)")
    eps = float(v["layer_norm_eps"])
    qk_norm = bool(v["qk_normalization"])
    if qk_norm and eps != TRANSFORMERS_QK_NORM_EPS:
        raise CheckpointError(f"InternViT q/k normalisation with eps={eps} cannot be reproduced exactly: "
                              f"transformers' InternVLVision uses eps={TRANSFORMERS_QK_NORM_EPS}")
    return {
        "hidden_size": int(v["hidden_size"]),
        "num_hidden_layers": int(v["num_hidden_layers"]),
        "num_attention_heads": int(v["num_attention_heads"]),
        "intermediate_size": int(v["intermediate_size"]),
        "hidden_act": v["hidden_act"],
        "image_size": image_size,
        "patch_size": int(v["patch_size"]),
        "num_channels": int(v["num_channels"]),
        "attention_bias": bool(v["qkv_bias"]),
        "use_qk_norm": qk_norm,
        "norm_type": norm_type,
        "layer_norm_eps": eps,
        "attention_dropout": float(v["attention_dropout"]),
        "projection_dropout": float(v["dropout"]),
        "hidden_dropout_prob": 0.0,
        "initializer_range": float(v["initializer_range"]),
        "layer_scale_init_value": float(v["initializer_factor"]),
        "use_mean_pooling": True,  # InternViT has no final LayerNorm; transformers drops it with this flag
        "use_absolute_position_embeddings": True,
        "use_mask_token": False,
    }


def vision_conversion(name: str) -> Conversion | None:
    """The conversion of one InternViT tensor ``name`` (without ``vision_model.``), or ``None`` if unknown.

    The fused ``attn.qkv`` weight ``(3C, C)`` (and bias ``(3C,)``) is cut into three ``C``-row
    blocks in the order q, k, v, as InternViT reshapes its output to ``(3, heads, head_dim)``.
    """
    source = SRC_VISION + name
    if name in _VIT_EMBEDDINGS:
        return rename(source, f"{VISION}.{_VIT_EMBEDDINGS[name]}")
    match = _VIT_LAYER.fullmatch(name)
    if match is None:
        return None
    index, rest = match.groups()
    layer = f"{VISION}.encoder.layer.{index}"
    if rest in _VIT_LAYER_SCALES:
        return rename(source, f"{layer}.{_VIT_LAYER_SCALES[rest]}")
    module, _, param = rest.rpartition(".")
    if module == "attn.qkv" and param in ("weight", "bias"):
        return split_rows(source, [f"{layer}.attention.{p}_proj.{param}" for p in "qkv"], _thirds)
    if module in _VIT_LAYER_MODULES and param in ("weight", "bias"):
        return rename(source, f"{layer}.{_VIT_LAYER_MODULES[module]}.{param}")
    return None


def projector_conversion(name: str) -> Conversion | None:
    """The conversion of one ``mlp1`` tensor ``name`` (without ``mlp1.``), or ``None`` if unknown."""
    index, _, param = name.partition(".")
    if index in _PROJECTOR_LAYERS and param in ("weight", "bias"):
        return rename(SRC_PROJECTOR + name, f"{PROJECTOR}.{_PROJECTOR_LAYERS[index]}.{param}")
    return None


def native_llm_conversion(name: str, *, tied: bool) -> Conversion | None:
    """The conversion of one tensor of a transformers-native causal LM (``model.*``, ``lm_head.weight``).

    Args:
        name: the key without ``language_model.``.
        tied: whether the LLM ties ``lm_head`` to the input embeddings; a stored ``lm_head``
            is then only verified to equal them.
    """
    source = SRC_LLM + name
    if name.startswith("model."):
        return rename(source, f"{DECODER}.{name[len('model.'):]}")
    if name == "lm_head.weight":
        return verify_copy(source, f"{DECODER}.embed_tokens.weight") if tied else rename(source, LM_HEAD)
    return None


def grounding_name(name: str) -> str:
    """The ``sam2`` package's name of a Sa2VA SAM 2 tensor ``name`` (without ``grounding_encoder.sam2_model.``).

    ``memory_encoder.fuser.layers.{i}.g_weight`` -> ``...gamma``; every other name is SAM 2's own
    (a checkpoint already using ``gamma`` passes unchanged).
    """
    match = _SA2VA_FUSER_SCALE.fullmatch(name)
    return f"memory_encoder.fuser.layers.{match.group(1)}.gamma" if match else name


def _thirds(rows: int) -> list[int]:
    if rows % 3:
        raise ValueError(f"a fused qkv tensor needs a multiple of 3 rows, got {rows}")
    return [rows // 3] * 3


@dataclass(frozen=True)
class CheckpointLayout:
    """How each top-level part of an InternVL-chat / Sa2VA checkpoint is mapped.

    Attributes:
        llm: conversion of one LLM tensor name (without ``language_model.``), ``None`` if unknown.
        with_grounding: whether ``grounding_encoder.sam2_model.*`` and ``text_hidden_fcs.*``
            belong to the model (Sa2VA) or are unexpected (bare InternVL).
        grounding_ignored_reason: when set, the checkpoint's SAM 2 weights are deliberately
            skipped for this reason (another SAM 2 checkpoint replaces them).
    """

    llm: Callable[[str], Conversion | None]
    with_grounding: bool = True
    grounding_ignored_reason: str | None = None


def internvl_plan(names, layout: CheckpointLayout) -> LoadPlan:
    """The :class:`LoadPlan` of an InternVL-chat / Sa2VA checkpoint holding tensors ``names``.

    Names no rule maps end up in ``plan.unexpected`` (the strict load reports them).
    """
    plan = LoadPlan()
    for name in sorted(names):
        conv: Conversion | None = None
        if name.startswith(SRC_VISION):
            conv = vision_conversion(name[len(SRC_VISION):])
        elif name.startswith(SRC_PROJECTOR):
            conv = projector_conversion(name[len(SRC_PROJECTOR):])
        elif name.startswith(SRC_LLM):
            conv = layout.llm(name[len(SRC_LLM):])
        elif layout.with_grounding and name.startswith(SRC_GROUNDING):
            if layout.grounding_ignored_reason is not None:
                plan.ignored[name] = layout.grounding_ignored_reason
                continue
            conv = rename(name, f"{GROUNDING}.{grounding_name(name[len(SRC_GROUNDING):])}")
        elif layout.with_grounding and name.startswith(SRC_FCS):
            conv = rename(name, f"{FCS}.{name[len(SRC_FCS):]}")
        if conv is None:
            plan.unexpected.append(name)
        else:
            plan.conversions.append(conv)
    return plan
