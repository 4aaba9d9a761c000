"""What a config value may be: plain data that names no code.

Every section of the config tree (:mod:`svac.config`, :mod:`svac.baseline_config`) checks its
values with these functions, so that nothing read from a file chooses code (issue 12 §1):

* :func:`check_path` -- a path field never names a Python pickle (unpickling runs code);
* :func:`check_device` -- a device is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``;
* :func:`check_library_kwargs` -- keyword arguments handed to a transformers config class
  (``mllm.vision``, ``mllm.text``, a text encoder's config) take only that class's own fields
  (:func:`library_config_fields`), with numbers, booleans, strings without ``${`` and lists of
  them as values.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any

from svac.errors import ConfigError

#: The only ``mllm.vision`` / ``mllm.text`` keys whose value may be a mapping (of numbers, strings and lists).
MAPPING_KEYS = ("rope_parameters", "rope_scaling")
#: ``mllm.vision`` / ``mllm.text`` sizes that must be integers >= 1 (or lists of them) when given.
POSITIVE_KEYS = ("image_size", "patch_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                 "original_max_position_embeddings", "head_dim", "num_channels")
#: Device names svac accepts: ``auto``, ``cpu``, ``cuda`` and ``cuda:N``.
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")
#: File suffixes of Python pickles, which svac never reads (unpickling runs code).
PICKLE_SUFFIXES = (".pkl", ".pickle", ".p")


def check_device(name: str, *, where: str = "device") -> str:
    """Return ``name`` if it is a device svac runs on (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Raises:
        ConfigError: naming ``where`` and the accepted names.
    """
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        raise ConfigError(f"{where} must be auto, cpu, cuda or cuda:N, got {name!r}")
    return name


def check_path(where: str, path: str | None) -> None:
    """Refuse a path-valued config field that names a Python pickle (``.pkl``, ``.pickle``, ``.p``).

    svac reads weights from safetensors or with ``torch.load(weights_only=True)`` and never
    unpickles; a pickle path in a config is refused when the config loads, not when it is used.

    Raises:
        ConfigError: naming ``where`` and the path.
    """
    if path is not None and Path(str(path)).suffix.lower() in PICKLE_SUFFIXES:
        raise ConfigError(f"{where}: {path!r} is a Python pickle; svac never loads pickles (unpickling runs code). "
                          "Convert it to safetensors (or a weights-only torch file) in a Python you trust")


def library_config_fields(config_class: type) -> set[str]:
    """The fields a transformers config class defines itself (not the generic ``PreTrainedConfig`` ones)."""
    from transformers import PreTrainedConfig

    generic = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return {f.name for f in dataclasses.fields(config_class)} - generic


def check_library_kwargs(where: str, kwargs: dict[str, Any], allowed: set[str]) -> None:
    """Refuse keys outside ``allowed`` and values that are not plain data, naming the key.

    Values may be numbers, booleans, ``None``, strings without ``${``, lists of those, and -- for
    :data:`MAPPING_KEYS` only -- a mapping of those. Sizes in :data:`POSITIVE_KEYS` must be ints >= 1.
    """
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(f'{where}.{k}' for k in unknown)}; valid keys of "
                          f"{where}: {', '.join(sorted(allowed))}")
    for key, value in kwargs.items():
        if isinstance(value, dict) and key in MAPPING_KEYS:
            _check_rope_keys(f"{where}.{key}", value)
            for sub, leaf in value.items():
                _check_plain(f"{where}.{key}.{sub}", leaf)
        else:
            _check_plain(f"{where}.{key}", value)
        if key in POSITIVE_KEYS and value is not None:
            values = value if isinstance(value, (list, tuple)) else [value]
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise ConfigError(f"{where}.{key} must be an integer >= 1 (or a list of them), got {value!r}")


def _check_rope_keys(where: str, value: dict[str, Any]) -> None:
    """Refuse keys of a rotary-embedding mapping that transformers' ``RopeParameters`` does not define
    (``type`` is the legacy name of ``rope_type``)."""
    from transformers.modeling_rope_utils import RopeParameters

    allowed = set(typing.get_type_hints(RopeParameters)) | {"type"}
    unknown = sorted(set(value) - allowed, key=str)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(f'{where}.{k}' for k in unknown)}; valid keys of "
                          f"{where}: {', '.join(sorted(allowed))}")


def _check_plain(where: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a scalar or a list of scalars (strings without ``${``)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, str):
            if "${" in item:
                raise ConfigError(f"{where}: {item!r} holds an interpolation '${{'; config values are plain data")
        elif item is not None and not isinstance(item, (bool, int, float)):
            raise ConfigError(f"{where}: expected a number, a boolean, a string or a list of them, got "
                              f"{type(item).__name__} {item!r}")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{where}: expected a finite number, got {item!r}")
