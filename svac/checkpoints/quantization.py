"""Optional 8-bit / 4-bit loading of the LLM with bitsandbytes (the ``quant`` extra; CUDA only).

Options are given as transformers' ``BitsAndBytesConfig`` (``load_in_8bit`` /
``load_in_4bit``, ``llm_int8_threshold``, ``bnb_4bit_quant_type``,
``bnb_4bit_compute_dtype``, ``bnb_4bit_use_double_quant``). After the weights are loaded,
every ``nn.Linear`` of the language model (not the vision tower, projector, ``lm_head``,
SAM-2 or ``text_hidden_fcs``) is replaced by bitsandbytes' ``Linear8bitLt`` /
``Linear4bit`` holding the same weights; bitsandbytes quantizes them when they reach the GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from svac.errors import SVACError

if TYPE_CHECKING:
    from svac.model import SVAC


class QuantizationUnavailableError(SVACError, ImportError):
    """8-bit / 4-bit loading was asked for but bitsandbytes or a CUDA GPU is missing."""


def quantization_config(*, load_in_8bit: bool = False, load_in_4bit: bool = False,
                        config: Any = None) -> Any:
    """The ``BitsAndBytesConfig`` for the flags, or ``None`` when no quantization is asked for.

    Raises:
        QuantizationUnavailableError: when quantization is asked for and bitsandbytes cannot be
            imported (install the ``quant`` extra: ``pip install 'svac[quant]'``) or no CUDA GPU
            is visible (bitsandbytes' int8/nf4 kernels run on CUDA).
        svac.errors.ConfigError: when both 8-bit and 4-bit are asked for.
    """
    from svac.errors import ConfigError

    if load_in_8bit and load_in_4bit:
        raise ConfigError("choose one of load_in_8bit and load_in_4bit")
    if config is None and not (load_in_8bit or load_in_4bit):
        return None
    require_bitsandbytes()
    if config is None:
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_8bit=load_in_8bit, load_in_4bit=load_in_4bit)
    return config


def require_bitsandbytes():
    """Import bitsandbytes, or raise :class:`QuantizationUnavailableError` saying what is missing."""
    try:
        import bitsandbytes
    except ImportError as exc:
        raise QuantizationUnavailableError(
            "8-bit/4-bit loading needs bitsandbytes, which is not installed: pip install 'svac[quant]' "
            f"({exc})") from exc
    if not torch.cuda.is_available():
        raise QuantizationUnavailableError("8-bit/4-bit loading needs a CUDA GPU (bitsandbytes kernels); none is visible")
    return bitsandbytes


def quantize_llm(model: "SVAC", config: Any) -> int:
    """Replace the LLM's linear layers by bitsandbytes layers holding the loaded weights, in place.

    Args:
        model: a loaded model whose language model is on a CUDA device.
        config: a ``BitsAndBytesConfig`` with ``load_in_8bit`` or ``load_in_4bit`` set.

    Returns:
        The number of layers replaced.

    Raises:
        QuantizationUnavailableError: without bitsandbytes or CUDA, or when the language model
            was not placed on a CUDA device.
    """
    bnb = require_bitsandbytes()
    decoder = model.mllm.model.language_model
    count = 0
    for module in list(decoder.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is not nn.Linear:
                continue
            device = child.weight.device
            if device.type != "cuda":
                raise QuantizationUnavailableError("quantized layers must live on a CUDA device; pass a device_map "
                                                   "that puts the language model on a GPU")
            weight = child.weight.detach().to("cpu")
            if config.load_in_8bit:
                new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=child.bias is not None,
                                          has_fp16_weights=False, threshold=config.llm_int8_threshold)
                new.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
            else:
                new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                        compute_dtype=config.bnb_4bit_compute_dtype,
                                        compress_statistics=config.bnb_4bit_use_double_quant,
                                        quant_type=config.bnb_4bit_quant_type)
                new.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type=config.bnb_4bit_quant_type,
                                               compress_statistics=config.bnb_4bit_use_double_quant)
            if child.bias is not None:
                new.bias = nn.Parameter(child.bias.detach().to("cpu"), requires_grad=False)
            setattr(module, child_name, new.to(device))
            count += 1
    return count


def is_quantized(model: "SVAC") -> bool:
    """Whether any layer of the model is a bitsandbytes layer (such a model cannot be saved by svac)."""
    return any(type(m).__module__.startswith("bitsandbytes") for m in model.modules())
