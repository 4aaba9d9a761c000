"""The Hydra model config svac builds SAM-2 from: a config shipped in the ``sam2`` package plus typed sizes.

Nothing read from a file reaches Hydra as a string. :func:`sam2_model_node` composes the
shipped config named by :attr:`svac.config.SAM2Config.config_name` -- a name from the fixed
table :data:`svac.config.SAM2_CONFIG_NAMES`, composed without any override -- and then writes
svac's typed values (ints, finite floats, booleans and lists of ints, checked again here) at
the fixed paths of :data:`svac.config.SAM2_HYDRA_PATHS`, plus svac's own model class as
``_target_``. Every other string in the tree comes from the ``sam2`` package's own YAML, so
``instantiate`` can only build the ``sam2`` modules that package names, and interpolation
(``${...}``) can only resolve what that package wrote.
"""

from __future__ import annotations

import math
from typing import Any

from svac.config import SAM2_HYDRA_PATHS, SAM2Config, check_sam2_sizes
from svac.errors import ConfigError


def sam2_model_node(cfg: SAM2Config, model_class: type):
    """The ``model`` node (an OmegaConf ``DictConfig``) that ``hydra.utils.instantiate`` turns into SAM-2.

    Args:
        cfg: the typed SAM-2 config.
        model_class: svac's subclass of ``SAM2Base`` the node builds (its import path becomes ``_target_``).

    Returns:
        The shipped config's ``model`` node with ``_target_`` naming ``model_class``, the typed
        sizes of ``cfg`` written at :data:`~svac.config.SAM2_HYDRA_PATHS`, and svac's options
        ``text_multimask_output``, ``keep_absent_object_logits`` and ``max_cond_frames_in_attn``;
        interpolations resolved.

    Raises:
        ConfigError: when a typed value is not plain numeric data, or the sizes (given or kept
            from the shipped config) do not fit together (naming the ``sam2.`` keys).
    """
    import sam2  # noqa: F401  -- initialises the sam2 package's Hydra config search path
    from hydra import compose
    from omegaconf import OmegaConf, open_dict

    values = cfg.architecture()
    for key, value in values.items():
        _check_plain_number(f"sam2.{key}", value)
    hydra_cfg = compose(config_name=cfg.config_name)
    model = hydra_cfg.model
    with open_dict(model):
        for key, value in values.items():
            for path in SAM2_HYDRA_PATHS[key]:
                OmegaConf.update(model, path, value, merge=False, force_add=True)
        model["_target_"] = f"{model_class.__module__}.{model_class.__qualname__}"
        model["text_multimask_output"] = bool(cfg.multimask_output)
        model["keep_absent_object_logits"] = bool(cfg.keep_absent_object_logits)
        model["max_cond_frames_in_attn"] = int(cfg.max_cond_frames_in_attn)
    OmegaConf.resolve(hydra_cfg)
    check_sam2_sizes({key: OmegaConf.select(model, paths[0]) for key, paths in SAM2_HYDRA_PATHS.items()})
    return model


def _check_plain_number(where: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is a bool, an int, a finite float, or a list of ints.

    :class:`~svac.config.SAM2Config` already guarantees it for configs read from files; this
    check keeps the guarantee for configs built in Python (``dataclasses.replace`` ...).
    """
    items = value if isinstance(value, list) else [value]
    for item in items:
        ok = isinstance(item, (bool, int)) or (isinstance(item, float) and math.isfinite(item))
        if not ok or (isinstance(value, list) and isinstance(item, (bool, float))):
            raise ConfigError(f"{where}: expected a number, a boolean or a list of integers, got {value!r}")
