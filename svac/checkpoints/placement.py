"""Where and in which dtype loaded weights go: ``torch_dtype`` and ``device_map`` (Hugging Face conventions)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from svac.errors import CheckpointError, ConfigError

#: Accepted spellings of the supported floating dtypes.
DTYPE_NAMES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}
#: Canonical name of each supported dtype (the values of :attr:`svac.config.InferenceConfig.dtype`).
CANONICAL = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
#: ``device_map`` values that ask accelerate to spread the model over the visible devices.
AUTO_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
#: Modules never cut across devices besides the transformers decoder/vision layers: SAM-2
#: reads its own parameters directly (not only through submodule calls).
NO_SPLIT_EXTRA = ("LanguagePromptedSAM2",)


def float32_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Name prefixes (``"grounding."``) of the parts of ``model`` whose weights stay float32.

    A model lists them in its ``float32_modules`` attribute (:attr:`svac.model.SVAC.float32_modules`:
    SAM-2); every other floating tensor takes the requested dtype.
    """
    return tuple(f"{name}." for name in getattr(model, "float32_modules", ()))


def cast_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast ``model``'s floating parameters and buffers to ``dtype`` in place, except its float32 parts.

    Args:
        model: any module; parts named by its ``float32_modules`` are cast to float32 instead.
        dtype: ``torch.float32``, ``torch.bfloat16`` or ``torch.float16``.

    Returns:
        ``model``.
    """
    keep = getattr(model, "float32_modules", ())
    for name, child in model.named_children():
        child.to(dtype=torch.float32 if name in keep else dtype)
    for name, param in list(model.named_parameters(recurse=False)):
        param.data = param.data.to(dtype) if param.is_floating_point() else param.data
    return model


def resolve_dtype(value: torch.dtype | str | None, default: str) -> torch.dtype:
    """The floating dtype to load weights in.

    Args:
        value: a ``torch.dtype``, a name (``bfloat16``/``bf16``, ``float16``/``fp16``,
            ``float32``/``fp32``), ``"auto"`` or ``None`` (both: ``default``).
        default: the dtype name to use for ``None``/``"auto"`` (the config's ``inference.dtype``,
            which for a Sa2VA checkpoint is its stored ``torch_dtype``).

    Raises:
        ConfigError: for any other dtype.
    """
    if value is None or value == "auto":
        value = default
    if isinstance(value, str):
        if value not in DTYPE_NAMES:
            raise ConfigError(f"torch_dtype {value!r} is not supported; use one of bfloat16, float16, float32")
        return DTYPE_NAMES[value]
    if value not in CANONICAL:
        raise ConfigError(f"torch_dtype {value} is not supported; use torch.bfloat16, torch.float16 or torch.float32")
    return value


def single_device(device_map, *, what: str) -> torch.device:
    """The one device a model that is not split across devices goes to, from a ``device_map``.

    Args:
        device_map: ``None`` (the CPU), a device (``"cuda:1"``, ``torch.device``), a dict whose
            values all name one device (``{"": "cuda:0"}``), or ``"auto"`` / ``"balanced"`` ...
            (CUDA when available, else the CPU).
        what: the model, for the error message.

    Raises:
        ConfigError: for a map that spreads the model over several devices, or another type.
    """
    if device_map is None:
        return torch.device("cpu")
    if isinstance(device_map, torch.device):
        return device_map
    if isinstance(device_map, str):
        if device_map in AUTO_MAPS:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(device_map)
    if isinstance(device_map, Mapping):
        devices = {str(v) if not isinstance(v, int) else f"cuda:{v}" for v in device_map.values()}
        if len(devices) == 1:
            return torch.device(devices.pop())
    raise ConfigError(f"{what} is loaded on one device; pass device_map=None or a device, got {device_map!r}")


def resolve_device_map(model: nn.Module, device_map, dtype: torch.dtype) -> dict[str, str]:
    """A ``{module prefix: device}`` map for ``model`` (a skeleton on ``meta``).

    Args:
        device_map: ``None`` (everything on the CPU); a device (``"cuda:1"``, ``torch.device``);
            a dict ``{module prefix: device}`` with ``""`` for "everything else"; or
            ``"auto"``/``"balanced"``/``"balanced_low_0"``/``"sequential"``, which lets
            accelerate place whole transformer layers on the visible GPUs by free memory (SAM-2
            is kept whole on one device).

    Raises:
        CheckpointError: when an automatic map would put weights on ``disk`` (not supported).
        ConfigError: for a device_map of another type.
    """
    if device_map is None:
        return {"": "cpu"}
    if isinstance(device_map, torch.device):
        return {"": str(device_map)}
    if isinstance(device_map, str) and device_map not in AUTO_MAPS:
        return {"": str(torch.device(device_map))}
    if isinstance(device_map, Mapping):
        return {str(k): str(v) if not isinstance(v, int) else f"cuda:{v}" for k, v in device_map.items()}
    if isinstance(device_map, str):
        from accelerate import infer_auto_device_map
        from accelerate.utils import get_balanced_memory

        no_split = set(NO_SPLIT_EXTRA)
        for module in model.modules():
            no_split.update(getattr(module, "_no_split_modules", None) or ())
        max_memory = None
        if device_map != "sequential":
            max_memory = get_balanced_memory(model, dtype=dtype, no_split_module_classes=sorted(no_split),
                                             low_zero=device_map == "balanced_low_0")
        placed = infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=sorted(no_split),
                                       dtype=dtype)
        if any(str(v) == "disk" for v in placed.values()):
            raise CheckpointError("the model does not fit in GPU + CPU memory and disk offload is not supported; "
                                  "use a smaller torch_dtype or quantization")
        return {k: str(v) if not isinstance(v, int) else f"cuda:{v}" for k, v in placed.items()}
    raise ConfigError(f"device_map must be None, a device, a dict or one of {AUTO_MAPS}, got {device_map!r}")


def dispatch(model: nn.Module, device_map: Mapping[str, str]) -> None:
    """Attach accelerate's device hooks when ``device_map`` spans several devices (inputs follow the weights).

    A one-device map needs nothing: the weights were loaded onto it directly.
    """
    if len(set(device_map.values())) <= 1:
        return
    from accelerate import dispatch_model

    dispatch_model(model, device_map=dict(device_map))
