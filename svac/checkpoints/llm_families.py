"""The LLM families of InternVL / Sa2VA checkpoints and how each becomes a transformers-native LLM.

* ``Qwen2ForCausalLM`` (Sa2VA-1B, Sa2VA-4B, InternVL3-based Sa2VA), ``Qwen3ForCausalLM``,
  ``LlamaForCausalLM`` and ``Phi3ForCausalLM`` are transformers' own classes: their
  tensors keep their names (``model.*``, ``lm_head.weight``) and their config is read by
  transformers' config class.
* ``InternLM2ForCausalLM`` (Sa2VA-8B, Sa2VA-26B) is remote code. Its decoder is a Llama
  decoder with renamed modules and a fused, grouped ``wqkv`` projection; it is converted
  exactly to ``LlamaForCausalLM`` (:func:`internlm2_llama_kwargs`, :func:`internlm2_conversion`).
  The rotary embedding is InternLM2's ``rope_theta`` with optional ``linear`` or ``dynamic``
  NTK scaling, which transformers' Llama computes with the same formulas; for ``dynamic``
  scaling InternLM2 keeps an enlarged rotary base after it has once seen a sequence longer
  than ``max_position_embeddings`` (32k tokens for InternLM2.5), transformers does not, so the
  two agree for every input up to that length.

Any other architecture raises a :class:`~svac.errors.CheckpointError` that names it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from svac.checkpoints.keymaps import DECODER, LM_HEAD, SRC_LLM, native_llm_conversion
from svac.checkpoints.materialize import Conversion, rename, verify_copy
from svac.errors import CheckpointError

#: transformers-native causal LMs: architecture -> ``model_type``.
NATIVE_ARCHITECTURES = {
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "LlamaForCausalLM": "llama",
    "Phi3ForCausalLM": "phi3",
}
#: Architectures converted exactly to a native one.
INTERNLM2 = "InternLM2ForCausalLM"
#: Config keys that are bookkeeping of the checkpoint, not of the architecture.
_NOT_ARCHITECTURE = ("model_type", "vocab_size", "architectures", "auto_map", "_name_or_path", "torch_dtype", "dtype",
                     "transformers_version", "attn_implementation", "_attn_implementation")
#: Defaults of InternLM2's ``InternLM2Config`` (``configuration_internlm2.py``) for fields a config omits.
INTERNLM2_DEFAULTS = {"rope_theta": 10000.0, "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
                      "initializer_range": 0.02, "hidden_act": "silu", "bias": True, "tie_word_embeddings": False}
#: InternLM2 rotary scalings that transformers' Llama reproduces.
_INTERNLM2_ROPE_TYPES = ("linear", "dynamic")


@dataclass(frozen=True)
class LLMFamily:
    """How a checkpoint's LLM becomes svac's ``mllm`` language model.

    Attributes:
        architecture: the checkpoint's class name (``Qwen2ForCausalLM``, ``InternLM2ForCausalLM``...).
        model_type: the transformers ``model_type`` svac builds (``qwen2``, ``llama``...).
        text: keyword arguments of that config class (:attr:`svac.config.MLLMConfig.text`).
        tied: whether ``lm_head`` shares the input embedding matrix.
        conversion: conversion of one LLM tensor name (without ``language_model.``).
    """

    architecture: str
    model_type: str
    text: dict[str, Any]
    tied: bool
    conversion: Callable[[str], Conversion | None]


def native_text_kwargs(model_type: str, llm_config: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture fields of ``llm_config`` as transformers' ``model_type`` config class reads them.

    The dict is parsed by the config class itself (so legacy fields such as ``rope_theta`` /
    ``rope_scaling`` become ``rope_parameters``), then only that class's own fields are kept,
    without ``vocab_size`` and ``pad_token_id`` (svac sets those from the tokenizer).

    Raises:
        CheckpointError: when transformers rejects the config.
    """
    from transformers import AutoConfig, PreTrainedConfig

    data = {k: v for k, v in llm_config.items() if k not in _NOT_ARCHITECTURE}
    try:
        cfg = AutoConfig.for_model(model_type, **data)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"transformers cannot read the {model_type} LLM config: {exc}") from exc
    generic = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    own = {f.name for f in dataclasses.fields(type(cfg))} - generic - {"vocab_size", "pad_token_id"}
    return {k: v for k, v in cfg.to_dict().items() if k in own}


def llm_family(llm_config: Mapping[str, Any], *, model_name: str) -> LLMFamily:
    """The :class:`LLMFamily` of an InternVL-chat / Sa2VA ``llm_config``.

    Args:
        llm_config: the checkpoint's ``llm_config`` dict.
        model_name: the checkpoint's name, for error messages.

    Raises:
        CheckpointError: for an architecture svac does not support yet (the message names the
            model and the architecture), or an InternLM2 config that cannot be converted exactly.
    """
    archs = llm_config.get("architectures") or []
    arch = archs[0] if archs else None
    if arch in NATIVE_ARCHITECTURES:
        model_type = NATIVE_ARCHITECTURES[arch]
        text = native_text_kwargs(model_type, llm_config)
        tied = bool(text.get("tie_word_embeddings", False))
        return LLMFamily(arch, model_type, text, tied, lambda name: native_llm_conversion(name, tied=tied))
    if arch == INTERNLM2:
        text = native_text_kwargs("llama", internlm2_llama_kwargs(llm_config))
        tied = bool(text.get("tie_word_embeddings", False))
        heads = int(llm_config["num_attention_heads"])
        kv_heads = int(llm_config.get("num_key_value_heads") or heads)
        head_dim = int(llm_config["hidden_size"]) // heads
        return LLMFamily(arch, "llama", text, tied,
                         lambda name: internlm2_conversion(name, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
                                                           tied=tied))
    raise CheckpointError(f"{model_name}: the LLM architecture {arch!r} is not supported yet (supported: "
                          f"{', '.join([*NATIVE_ARCHITECTURES, INTERNLM2])})")


# --------------------------------------------------------------------------- InternLM2


def internlm2_llama_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``LlamaConfig`` keyword arguments computing exactly what an ``InternLM2Config`` computes.

    Field correspondence: ``bias`` -> ``attention_bias`` (InternLM2's bias is on ``wqkv`` and
    ``wo``, Llama's on q/k/v/o; the MLP has none in both); ``rope_theta`` and ``rope_scaling``
    (``{"type": "linear"|"dynamic", "factor": f}``) -> ``rope_parameters``; head size =
    ``hidden_size / num_attention_heads``.

    Raises:
        CheckpointError: for a rotary scaling other than ``linear``/``dynamic``, or sizes that
            do not divide.
    """
    cfg = {**INTERNLM2_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None or k == "rope_scaling"}}
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    if hidden % heads or heads % kv_heads:
        raise CheckpointError(f"InternLM2 config with hidden_size={hidden}, heads={heads}, kv heads={kv_heads} "
                              "does not divide into heads")
    theta = float(cfg["rope_theta"])
    scaling = cfg.get("rope_scaling")
    if scaling is None:
        rope = {"rope_type": "default", "rope_theta": theta}
    else:
        kind = scaling.get("type") or scaling.get("rope_type")
        if kind not in _INTERNLM2_ROPE_TYPES:
            raise CheckpointError(f"InternLM2 rope_scaling type {kind!r} is not supported yet "
                                  f"({', '.join(_INTERNLM2_ROPE_TYPES)} are)")
        rope = {"rope_type": kind, "factor": float(scaling["factor"]), "rope_theta": theta}
    out = {
        "hidden_size": hidden,
        "intermediate_size": int(cfg["intermediate_size"]),
        "num_hidden_layers": int(cfg["num_hidden_layers"]),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hidden // heads,
        "hidden_act": cfg["hidden_act"],
        "max_position_embeddings": int(cfg["max_position_embeddings"]),
        "rms_norm_eps": float(cfg["rms_norm_eps"]),
        "initializer_range": float(cfg["initializer_range"]),
        "rope_parameters": rope,
        "attention_bias": bool(cfg["bias"]),
        "mlp_bias": False,
        "tie_word_embeddings": bool(cfg["tie_word_embeddings"]),
    }
    for key in ("bos_token_id", "eos_token_id"):
        if cfg.get(key) is not None:
            out[key] = cfg[key]
    return out


_INTERNLM2_LAYER = re.compile(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)")
_INTERNLM2_MODULES = {
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def split_grouped_qkv(t: torch.Tensor, *, heads: int, kv_heads: int, head_dim: int) -> tuple[torch.Tensor, ...]:
    """Cut InternLM2's fused ``wqkv`` weight/bias into Llama's q, k, v.

    InternLM2 lays the ``(heads + 2 * kv_heads) * head_dim`` output rows out group by group:
    for each of the ``kv_heads`` groups, its ``heads / kv_heads`` query heads, then its key
    head, then its value head (``head_dim`` rows each). Query head ``g * n + j`` of group
    ``g`` is Llama's query head ``g * n + j``, which attends with key/value head ``g``.

    Args:
        t: ``(rows, hidden)`` weight or ``(rows,)`` bias.

    Returns:
        ``(q, k, v)`` with ``heads * head_dim``, ``kv_heads * head_dim`` and
        ``kv_heads * head_dim`` rows.
    """
    groups = heads // kv_heads
    tail = t.shape[1:]
    blocks = t.reshape(kv_heads, groups + 2, head_dim, *tail)
    q = blocks[:, :groups].reshape(heads * head_dim, *tail)
    k = blocks[:, groups].reshape(kv_heads * head_dim, *tail)
    v = blocks[:, groups + 1].reshape(kv_heads * head_dim, *tail)
    return q.contiguous(), k.contiguous(), v.contiguous()


def internlm2_conversion(name: str, *, heads: int, kv_heads: int, head_dim: int, tied: bool) -> Conversion | None:
    """The conversion of one InternLM2 tensor (name without ``language_model.``) to Llama, or ``None``."""
    source = SRC_LLM + name
    if name == "model.tok_embeddings.weight":
        return rename(source, f"{DECODER}.embed_tokens.weight")
    if name == "model.norm.weight":
        return rename(source, f"{DECODER}.norm.weight")
    if name == "output.weight":
        return verify_copy(source, f"{DECODER}.embed_tokens.weight") if tied else rename(source, LM_HEAD)
    match = _INTERNLM2_LAYER.fullmatch(name)
    if match is None:
        return None
    index, module, param = match.groups()
    layer = f"{DECODER}.layers.{index}"
    if module == "attention.wqkv":
        rows = (heads + 2 * kv_heads) * head_dim

        def shapes(s):
            if s[0] != rows:
                raise ValueError(f"wqkv has {s[0]} rows, expected (heads + 2 kv heads) x head_dim = {rows}")
            return ((heads * head_dim, *s[1:]), (kv_heads * head_dim, *s[1:]), (kv_heads * head_dim, *s[1:]))

        return Conversion(source, tuple(f"{layer}.self_attn.{p}_proj.{param}" for p in "qkv"),
                          lambda t: split_grouped_qkv(t, heads=heads, kv_heads=kv_heads, head_dim=head_dim), shapes)
    if module in _INTERNLM2_MODULES:
        return rename(source, f"{layer}.{_INTERNLM2_MODULES[module]}.{param}")
    return None
