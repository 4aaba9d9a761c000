"""Resolving the ``--model`` argument: a config YAML, a checkpoint folder or Hub id, or the default model.

The config's ``head`` (``svac``, ``referformer``, ``lavt``) selects the model class through
:data:`svac.heads.HEADS`; for a checkpoint, the stored config's ``head`` is read first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from svac.config import SVACConfig, load_config

if TYPE_CHECKING:
    from svac.segmentation_model import SegmentationModel

#: Folder inside the installed package holding the trained default model (svac's checkpoint format).
DEFAULT_MODEL_DIR = "default_model"
#: The config used when no model is given and no trained default is installed.
FALLBACK_CONFIG = "tiny.yaml"
#: Seed of the random initialisation of untrained models built from a config (reproducible demos).
INIT_SEED = 0


class UntrainedModelWarning(UserWarning):
    """The model has random weights: its answers and masks are meaningless."""


def build_from_config(config: SVACConfig, *, seed: int = INIT_SEED, tokenizer=None) -> "SegmentationModel":
    """Build the model of ``config.head`` with random weights drawn reproducibly from ``seed``.

    The global RNG is left untouched. ``tokenizer`` (optional) replaces the one the config
    names (see :meth:`svac.SVAC.from_config` and :meth:`svac.heads.rvos.RVOSBaseline.from_config`).
    Returns an :class:`svac.SVAC` for ``head: svac``, else the baseline model of :data:`svac.heads.HEADS`.

    Raises:
        svac.errors.ConfigError: for an unknown head or an invalid config.
    """
    from svac.heads import head_class

    cls = head_class(config.head)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls.from_config(config, tokenizer=tokenizer)


def default_model_path() -> Path | None:
    """The trained default model shipped inside the package (``svac/default_model``), or ``None`` if absent.

    It is the small SVAC trained on the synthetic benchmark by the nine stages
    ``configs/train/svac_default_0_objects.yaml`` ... ``svac_default_8_refresh.yaml`` (``docs/training.md``,
    "What the default model shows"), its weights stored in float16 (``svac export --weights-dtype float16``).
    """
    from importlib import resources

    folder = Path(str(resources.files("svac").joinpath(DEFAULT_MODEL_DIR)))
    return folder if (folder / "config.json").is_file() else None


def is_checkpoint_spec(spec: str) -> bool:
    """Whether ``spec`` names a checkpoint (an existing folder, or a Hub id ``owner/name``) rather than a config."""
    from svac.checkpoints.hub import looks_like_hub_id

    path = Path(spec)
    if path.is_dir():
        return True
    return not path.suffix.lower() in (".yaml", ".yml") and looks_like_hub_id(spec)


def load_model(spec: str | None = None, *, device: str | None = None,
               overrides: list[str] | tuple[str, ...] = ()) -> "SegmentationModel":
    """Load the model a user names.

    Args:
        spec: ``None`` for the default model (the trained model shipped in ``svac/default_model``;
            the random-weight ``configs/tiny.yaml`` if it is missing); a YAML config (path, or a name shipped in
            ``configs/``) for a randomly initialised model of that architecture; a checkpoint
            folder (svac's format or a Sa2VA release) or a Hugging Face Hub id such as
            ``ByteDance/Sa2VA-1B`` for trained weights (``from_pretrained`` of the class of the
            stored ``head``: :meth:`svac.SVAC.from_pretrained` or a baseline's).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``None`` uses ``config.inference.device``.
        overrides: ``key=value`` config overrides.

    Returns:
        The model (a :class:`~svac.segmentation_model.SegmentationModel`) in eval mode on ``device``.
        Untrained models emit :class:`UntrainedModelWarning`.

    Raises:
        FileNotFoundError: when ``spec`` names nothing that exists.
        svac.errors.ConfigError: on an invalid config.
        svac.errors.CheckpointError: when a checkpoint folder or Hub id cannot be loaded.
    """
    from svac.inference import resolve_device

    if spec is None:
        default = default_model_path()
        source = str(default) if default is not None else FALLBACK_CONFIG
    else:
        source = spec
    if is_checkpoint_spec(source):
        from svac.checkpoints.loader import read_checkpoint_config

        config = read_checkpoint_config(source, overrides=overrides)
        target = resolve_device(device or config.inference.device)
        from svac.heads import head_class

        model = head_class(config.head).from_pretrained(source, device_map=str(target), overrides=overrides)
        if not config.trained:
            warnings.warn(f"model {config.name!r} ({source}) is UNTRAINED (config.trained is false): its answers "
                          "and masks are meaningless until it is fine-tuned", UntrainedModelWarning, stacklevel=2)
        return model
    config = load_config(source, overrides)
    model = build_from_config(config)
    if not config.trained:
        warnings.warn(f"model {config.name!r} ({source}) has random weights: it is UNTRAINED and its answers and "
                      "masks are meaningless", UntrainedModelWarning, stacklevel=2)
    from svac.checkpoints.placement import cast_weights

    dtype = getattr(torch, config.inference.dtype)
    return cast_weights(model.to(device=resolve_device(device or config.inference.device)), dtype).eval()
