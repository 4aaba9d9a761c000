"""Saving and loading baseline models (ReferFormer, LAVT) in svac's checkpoint format.

A baseline checkpoint is an svac checkpoint folder (:mod:`svac.checkpoints.svac_format`)
whose stored config names a baseline ``head``:

* ``config.json`` -- ``{"format": "svac", "format_version": 1, "svac_version": ..., "config": SVACConfig.to_dict()}``,
  so :func:`svac.loading.load_model` reads ``head`` first and dispatches to the head's class;
* ``model.safetensors`` (or shards and ``model.safetensors.index.json``) -- every tensor of the
  model under its ``state_dict`` name (``head.*``);
* ``text_encoder.json`` -- the transformers config of the text encoder, so the model is rebuilt
  without the pretrained text-encoder or backbone files it was first built from;
* the tokenizer files (``tokenizer.json``, ``tokenizer_config.json`` ...).

Writing is atomic (a staging folder renamed into place); loading is strict (every missing,
unexpected or mis-shaped tensor is listed in the error) and never unpickles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from svac.errors import CheckpointError

if TYPE_CHECKING:
    from svac.checkpoints.svac_format import SavedCheckpoint
    from svac.config import SVACConfig
    from svac.heads.rvos import RVOSBaseline

#: File holding the text encoder's transformers config inside a baseline checkpoint.
TEXT_ENCODER_CONFIG = "text_encoder.json"


def save_baseline(model: "RVOSBaseline", directory: str | Path, *, overwrite: bool = False,
                  max_shard_bytes: int | None = None, weights_dtype: "torch.dtype | None" = None) -> "SavedCheckpoint":
    """Save a baseline model (see the module docstring) with svac's checkpoint writer
    (:func:`svac.checkpoints.svac_format.write_checkpoint`).

    Args:
        model: the model (weights on any device).
        directory: the folder to create.
        overwrite: replace an existing non-empty folder.
        max_shard_bytes: largest weight shard (bytes); default 2 GiB.
        weights_dtype: store the floating-point weights in this dtype (e.g. ``torch.float16``); ``None``: as they are.

    Returns:
        A :class:`svac.checkpoints.svac_format.SavedCheckpoint` (``adapter`` is always ``False``).

    Raises:
        OutputExistsError: when ``directory`` holds files and ``overwrite`` is false.
        CheckpointError: when ``directory`` is a file, or a tensor is on the ``meta`` device.
        ValueError: when ``weights_dtype`` is not a floating-point dtype.
    """
    from svac.checkpoints.shards import DEFAULT_MAX_SHARD_BYTES
    from svac.checkpoints.svac_format import write_checkpoint

    text_config = json.dumps(model.text_encoder_config(), indent=2, sort_keys=True) + "\n"

    def write_text_encoder_config(staging: Path) -> bool:
        (staging / TEXT_ENCODER_CONFIG).write_text(text_config, encoding="utf-8")
        return False  # a baseline has no LoRA adapter

    return write_checkpoint(directory, config=model.config, state=model.state_dict(), tokenizer=model.tokenizer,
                            max_shard_bytes=max_shard_bytes or DEFAULT_MAX_SHARD_BYTES, overwrite=overwrite,
                            weights_dtype=weights_dtype, extra=write_text_encoder_config)


def read_baseline_checkpoint(source: str | Path, *, overrides: Sequence[str] = (), revision: str | None = None,
                             cache_dir: str | Path | None = None, local_files_only: bool = False
                             ) -> tuple[Path, "SVACConfig", dict[str, Any]]:
    """``(folder, config, text-encoder config)`` of a baseline checkpoint (folder or Hub id), no weights read.

    Raises:
        CheckpointError: when the source is missing, not an svac-format checkpoint, or lacks
            ``text_encoder.json``.
        svac.errors.ConfigError: for an invalid override.
    """
    from svac.checkpoints.hub import resolve_checkpoint
    from svac.checkpoints.svac_format import FORMAT_NAME, read_config_document, read_json_object, svac_config

    folder = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    document = read_config_document(folder)
    if document.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{folder} is not an svac-format checkpoint (config.json has no \"format\": \"svac\")")
    config = svac_config(document, where=str(folder), overrides=overrides)
    path = folder / TEXT_ENCODER_CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a complete baseline checkpoint: it has no {path.name}")
    return folder, config, read_json_object(path)


def load_state(model: torch.nn.Module, folder: Path, *, dtype: torch.dtype, device: torch.device) -> None:
    """Load every tensor of ``folder``'s safetensors into ``model``, strictly, in ``dtype`` on ``device``.

    svac's one strict loader (:func:`svac.checkpoints.materialize.load_weights`): every tensor is
    checked against the model before any data is read; floating tensors take ``dtype``, others
    keep their stored dtype.

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped tensors, or for unreadable shards.
    """
    from svac.checkpoints.materialize import load_weights
    from svac.checkpoints.shards import read_weights
    from svac.checkpoints.svac_format import svac_plan

    weights = read_weights(folder)
    load_weights(model, weights, svac_plan(weights.tensors), kind=model.config.head, dtype=dtype,
                 device_for=lambda name: device)


def load_baseline(model_class: "type[RVOSBaseline]", source: str | Path, *,
                  torch_dtype: torch.dtype | str | None = None, device_map: Any = None,
                  overrides: Sequence[str] = (), revision: str | None = None, cache_dir: str | Path | None = None,
                  local_files_only: bool = False) -> "RVOSBaseline":
    """What :meth:`svac.heads.rvos.RVOSBaseline.from_pretrained` runs: rebuild, then load every tensor strictly.

    Args:
        model_class: the baseline class (its ``head_name`` must be the checkpoint's ``head``).
        source, torch_dtype, device_map, overrides, revision, cache_dir, local_files_only: see
            :meth:`~svac.heads.rvos.RVOSBaseline.from_pretrained`.

    Raises:
        CheckpointError: a missing or incomplete checkpoint, another head's checkpoint, or weights
            that do not match (listed).
        svac.errors.ConfigError: a ``device_map`` that spreads the model over several devices.
    """
    import dataclasses

    from svac.checkpoints.materialize import empty_model
    from svac.checkpoints.placement import CANONICAL, resolve_dtype, single_device
    from svac.errors import ConfigError
    from svac.heads.head_configs import head_config
    from svac.heads.text import load_expression_tokenizer

    cls = model_class
    device = single_device(device_map, what=f"a {cls.head_name} model")
    folder, config, text_config = read_baseline_checkpoint(source, overrides=overrides, revision=revision,
                                                           cache_dir=cache_dir, local_files_only=local_files_only)
    if config.head != cls.head_name:
        raise CheckpointError(f"{folder} holds a {config.head!r} model, not {cls.head_name!r}; load it with "
                              "svac.loading.load_model")
    try:
        tokenizer = load_expression_tokenizer(str(folder))
    except ConfigError as exc:
        raise CheckpointError(f"{folder}: {exc}") from exc
    typed = head_config(config, tokenizer=tokenizer, text_encoder=text_config)
    model = empty_model(lambda: cls(config, head=cls.build_head(typed), head_config=typed, tokenizer=tokenizer))
    dtype = resolve_dtype(torch_dtype, config.inference.dtype)
    load_state(model, folder, dtype=dtype, device=device)
    inference = dataclasses.replace(config.inference, dtype=CANONICAL[dtype])
    model.config = dataclasses.replace(config, inference=inference)
    return model.eval()
