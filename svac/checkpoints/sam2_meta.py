"""Meta's SAM 2 / SAM 2.1 checkpoints (``sam2_hiera_*.pt``, ``sam2.1_hiera_*.pt``) as svac's grounding model.

Meta ships each SAM 2 model as a ``.pt`` file holding ``{"model": state_dict}`` with the
``sam2`` package's own module names, next to a Hydra config in the package
(``configs/sam2/sam2_hiera_l.yaml`` ...); the ``sam2`` package's own table
(``sam2.build_sam.HF_MODEL_ID_TO_FILENAMES``) pairs each file name with its config.
:func:`sam2_config_for` looks the file name up there; :func:`meta_grounding` builds svac's
``LanguagePromptedSAM2`` from it and loads the file strictly with ``torch.load(weights_only=True)``
(no code is unpickled), which is how an SVAC model starts from InternVL and SAM 2 weights that
were never trained together, and :func:`replace_grounding` swaps it into a model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from svac.config import SAM2_SECTIONS, SAM2Config
from svac.errors import CheckpointError

if TYPE_CHECKING:
    from svac.config import SVACConfig
    from svac.grounding.sam2_model import LanguagePromptedSAM2
    from svac.model import SVAC

#: :class:`~svac.config.SAM2Config` fields that describe the weights (the architecture and the file);
#: every other field is one of svac's options (multimask output, kept logits, memory, batch size),
#: which a Meta checkpoint does not decide.
WEIGHT_FIELDS = ("config_name", "image_size", "checkpoint", *SAM2_SECTIONS)


def meta_file_configs() -> dict[str, str]:
    """``{Meta file name: sam2 package config}``, from the ``sam2`` package's own model table."""
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    return {file: config for config, file in HF_MODEL_ID_TO_FILENAMES.values()}


def sam2_config_for(checkpoint: str | Path) -> SAM2Config:
    """The :class:`~svac.config.SAM2Config` of a Meta SAM 2 checkpoint, from its file name.

    ``sam2_hiera_large.pt`` -> ``configs/sam2/sam2_hiera_l.yaml``,
    ``sam2.1_hiera_base_plus.pt`` -> ``configs/sam2.1/sam2.1_hiera_b+.yaml``, and so on
    (:func:`meta_file_configs`).

    Raises:
        CheckpointError: when the file name is not one of Meta's (pass an explicit
            :class:`SAM2Config` to :func:`replace_grounding` then).
    """
    table = meta_file_configs()
    name = Path(checkpoint).name
    if name not in table:
        raise CheckpointError(f"{name} is not a Meta SAM 2 file name (one of {', '.join(sorted(table))}); pass its "
                              "SAM2Config")
    return SAM2Config(config_name=table[name], checkpoint=str(checkpoint))


def meta_sam2_config(sam2_checkpoint: "str | Path | SAM2Config", *, options_of: SAM2Config) -> SAM2Config:
    """The SAM 2 config of a Meta checkpoint, with svac's options kept from ``options_of``.

    Args:
        sam2_checkpoint: a Meta ``.pt`` path (architecture from its file name, :func:`sam2_config_for`;
            every field outside :data:`WEIGHT_FIELDS` taken from ``options_of``), or a
            :class:`~svac.config.SAM2Config` whose ``checkpoint`` is set (used as it is).
        options_of: the config whose SAM 2 options a path keeps (the model's current ``sam2``).

    Raises:
        CheckpointError: for a missing file, a file name that is not Meta's, or a ``SAM2Config``
            without ``checkpoint``.
    """
    if isinstance(sam2_checkpoint, SAM2Config):
        if sam2_checkpoint.checkpoint is None:
            raise CheckpointError("the SAM2Config given as sam2_checkpoint has no checkpoint file")
        return sam2_checkpoint
    path = Path(sam2_checkpoint)
    if not path.is_file():
        raise CheckpointError(f"SAM 2 checkpoint not found: {path}")
    options = {f.name: getattr(options_of, f.name) for f in dataclasses.fields(SAM2Config)
               if f.name not in WEIGHT_FIELDS}
    return dataclasses.replace(sam2_config_for(path), **options)


def meta_grounding(config: "SVACConfig", sam2_checkpoint: "str | Path | SAM2Config"
                   ) -> "tuple[SVACConfig, LanguagePromptedSAM2]":
    """A SAM 2 grounding model loaded from a Meta checkpoint, and ``config`` with its ``sam2`` section.

    Args:
        config: the model config; its SAM 2 options are kept for a path (:func:`meta_sam2_config`).
        sam2_checkpoint: a Meta ``.pt`` path or a :class:`~svac.config.SAM2Config` with ``checkpoint`` set.

    Returns:
        ``(new config, LanguagePromptedSAM2)`` with the weights loaded strictly (``weights_only``).

    Raises:
        CheckpointError: for a missing file, a non-Meta file name, or keys/shapes that do not match.
    """
    from svac.grounding.sam2_model import build_sam2_model

    sam2 = meta_sam2_config(sam2_checkpoint, options_of=config.sam2)
    return dataclasses.replace(config, sam2=sam2), build_sam2_model(sam2)


def replace_grounding(model: "SVAC", checkpoint: str | Path, *, config: SAM2Config | None = None) -> "SVAC":
    """Replace ``model.grounding`` by SAM 2 built from a Meta checkpoint, in place.

    The new SAM 2 keeps the options of ``model.config.sam2`` (every field outside
    :data:`WEIGHT_FIELDS`) unless ``config`` is given; it is put on the device of the old
    grounding model (in float32, as SAM-2 always is), and ``model.config.sam2`` is updated.

    Args:
        checkpoint: a Meta ``.pt`` file (``{"model": state_dict}``).
        config: the SAM 2 config to build; default :func:`sam2_config_for` of the file name.

    Returns:
        ``model``.

    Raises:
        CheckpointError: when the file is missing or unreadable, its keys or shapes do not
            match the config (listed), or its prompt width differs from ``text_hidden_fcs``'s output.
    """
    path = Path(checkpoint)
    source = path if config is None else dataclasses.replace(config, checkpoint=str(path))
    new_config, grounding = meta_grounding(model.config, source)
    width = model.text_hidden_fcs[2].out_features
    if grounding.hidden_dim != width:
        raise CheckpointError(f"{path.name}: SAM 2 prompts have {grounding.hidden_dim} channels but text_hidden_fcs "
                              f"outputs {width}")
    reference = next(model.grounding.parameters())
    model.grounding = grounding.to(device=reference.device).train(model.grounding.training)  # SAM-2 stays float32
    model.config = new_config
    return model


def save_meta_checkpoint(grounding: "LanguagePromptedSAM2", path: str | Path) -> Path:
    """Write a SAM 2 grounding model's weights as a Meta checkpoint: ``{"model": state_dict}`` in a ``.pt``.

    The inverse of :func:`svac.grounding.sam2_model.load_sam2_checkpoint`: the keys are the ``sam2``
    package's own module names, so ``sam2``'s builders and ``SAM2VideoPredictor`` load the file
    into a model built from the same config (``eval/peer.py`` compares svac with that predictor on
    identical weights). Tensors only (``torch.load(weights_only=True)`` reads it), written to a
    staged file and renamed into place.

    Returns:
        ``path``.
    """
    import torch

    from svac.atomic_folder import staged_file

    path = Path(path)
    state = {name: tensor.detach().cpu().clone() for name, tensor in grounding.state_dict().items()}
    with staged_file(path) as tmp:
        torch.save({"model": state}, tmp)
    return path
