"""Meta's SAM 2 / SAM 2.1 checkpoints (``sam2_hiera_*.pt``, ``sam2.1_hiera_*.pt``) as svac's grounding model.

Meta ships each SAM 2 model as a ``.pt`` file holding ``{"model": state_dict}`` with the
``sam2`` package's own module names, next to a Hydra config in the package
(``configs/sam2/sam2_hiera_l.yaml`` ...). :func:`sam2_config_for` picks that config from
the file name; :func:`replace_grounding` builds svac's ``LanguagePromptedSAM2`` from it and
loads the file strictly with ``torch.load(weights_only=True)`` (no code is unpickled), which
is how an SVAC model starts from InternVL and SAM 2 weights that were never trained together.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from svac.config import SAM2Config
from svac.errors import CheckpointError

if TYPE_CHECKING:
    from svac.model import SVAC

#: Meta's file-name size tag -> the ``sam2`` package config suffix.
SIZE_TAGS = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
_META_NAME = re.compile(r"(sam2|sam2\.1)_hiera_(tiny|small|base_plus|large)\.pt")


def sam2_config_for(checkpoint: str | Path) -> SAM2Config:
    """The :class:`~svac.config.SAM2Config` of a Meta SAM 2 checkpoint, from its file name.

    ``sam2_hiera_large.pt`` -> ``configs/sam2/sam2_hiera_l.yaml``,
    ``sam2.1_hiera_base_plus.pt`` -> ``configs/sam2.1/sam2.1_hiera_b+.yaml``, and so on.

    Raises:
        CheckpointError: when the file name is not one of Meta's (pass an explicit
            :class:`SAM2Config` to :func:`replace_grounding` then).
    """
    match = _META_NAME.fullmatch(Path(checkpoint).name)
    if match is None:
        raise CheckpointError(f"{Path(checkpoint).name} is not a Meta SAM 2 file name (sam2_hiera_<size>.pt or "
                              f"sam2.1_hiera_<size>.pt, size one of {', '.join(SIZE_TAGS)}); pass its SAM2Config")
    version, size = match.groups()
    return SAM2Config(config_name=f"configs/{version}/{version}_hiera_{SIZE_TAGS[size]}.yaml",
                      checkpoint=str(checkpoint))


def replace_grounding(model: "SVAC", checkpoint: str | Path, *, config: SAM2Config | None = None) -> "SVAC":
    """Replace ``model.grounding`` by SAM 2 built from a Meta checkpoint, in place.

    The new SAM 2 keeps the options of ``model.config.sam2`` that are not architecture
    (``multimask_output``, ``max_cond_frames_in_attn``, ``encoder_batch_size``) unless
    ``config`` is given; it is put on the device and dtype of the old grounding model, and
    ``model.config.sam2`` is updated.

    Args:
        checkpoint: a Meta ``.pt`` file (``{"model": state_dict}``).
        config: the SAM 2 config to build; default :func:`sam2_config_for` of the file name.

    Returns:
        ``model``.

    Raises:
        CheckpointError: when the file is missing or unreadable, its keys or shapes do not
            match the config (listed), or its prompt width differs from ``text_hidden_fcs``'s output.
    """
    from svac.grounding.sam2_model import build_sam2_model

    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"SAM 2 checkpoint not found: {path}")
    if config is None:
        base = sam2_config_for(path)
        old = model.config.sam2
        config = dataclasses.replace(base, multimask_output=old.multimask_output,
                                     max_cond_frames_in_attn=old.max_cond_frames_in_attn,
                                     encoder_batch_size=old.encoder_batch_size)
    config = dataclasses.replace(config, checkpoint=str(path))
    grounding = build_sam2_model(config)
    width = model.text_hidden_fcs[2].out_features
    if grounding.hidden_dim != width:
        raise CheckpointError(f"{path.name}: SAM 2 prompts have {grounding.hidden_dim} channels but text_hidden_fcs "
                              f"outputs {width}")
    reference = next(model.grounding.parameters())
    model.grounding = grounding.to(device=reference.device).train(model.grounding.training)  # SAM-2 stays float32
    model.config = dataclasses.replace(model.config, sam2=config)
    return model
