"""Saving and loading baseline models (ReferFormer, LAVT) in svac's checkpoint format.

A baseline checkpoint is an svac checkpoint folder (:mod:`svac.checkpoints.svac_format`)
whose stored config names a baseline ``head``:

* ``config.json`` -- ``{"format": "svac", "format_version": 1, "svac_version": ..., "config": SVACConfig.to_dict()}``,
  so :func:`svac.loading.load_model` reads ``head`` first and dispatches to the head's class;
* ``model-00001-of-0000N.safetensors`` + ``model.safetensors.index.json`` -- every tensor of the
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

from svac.atomic_folder import staged_folder
from svac.errors import CheckpointError, OutputExistsError

if TYPE_CHECKING:
    from svac.checkpoints.svac_format import SavedCheckpoint
    from svac.config import SVACConfig
    from svac.heads.rvos import RVOSBaseline

#: File holding the text encoder's transformers config inside a baseline checkpoint.
TEXT_ENCODER_CONFIG = "text_encoder.json"


def save_baseline(model: "RVOSBaseline", directory: str | Path, *, overwrite: bool = False,
                  max_shard_bytes: int | None = None) -> "SavedCheckpoint":
    """Save a baseline model (see the module docstring).

    Args:
        model: the model (weights on any device).
        directory: the folder to create.
        overwrite: replace an existing non-empty folder.
        max_shard_bytes: largest weight shard (bytes); default 2 GiB.

    Returns:
        A :class:`svac.checkpoints.svac_format.SavedCheckpoint` (``adapter`` is always ``False``).

    Raises:
        OutputExistsError: when ``directory`` holds files and ``overwrite`` is false.
        CheckpointError: when ``directory`` is a file, or a tensor is on the ``meta`` device.
    """
    from svac.checkpoints.shards import DEFAULT_MAX_SHARD_BYTES, write_shards
    from svac.checkpoints.svac_format import CONFIG_NAME, FORMAT_NAME, FORMAT_VERSION, SavedCheckpoint, svac_version

    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{target} is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputExistsError(f"{target} already holds files; pass overwrite=True to replace it")
    state = model.state_dict()
    on_meta = [k for k, v in state.items() if v.is_meta]
    if on_meta:
        raise CheckpointError(f"cannot save: {len(on_meta)} tensor(s) are on the meta device (not loaded)")
    text_config = model.text_encoder_config()
    with staged_folder(target, overwrite=overwrite, what="a checkpoint") as staging:
        document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "svac_version": svac_version(),
                    "config": model.config.to_dict()}
        (staging / CONFIG_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        (staging / TEXT_ENCODER_CONFIG).write_text(json.dumps(text_config, indent=2, sort_keys=True) + "\n",
                                                   encoding="utf-8")
        shards = write_shards(state, staging, max_shard_bytes=max_shard_bytes or DEFAULT_MAX_SHARD_BYTES,
                              metadata={"format": "pt", "svac_format": str(FORMAT_VERSION), "head": model.config.head})
        model.tokenizer.save_pretrained(str(staging))
    return SavedCheckpoint(path=target, shards=tuple(shards), num_tensors=len(state),
                           total_bytes=sum(v.numel() * v.element_size() for v in state.values()), adapter=False)


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
    from svac.checkpoints.svac_format import FORMAT_NAME, read_config_document, svac_config

    folder = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    document = read_config_document(folder)
    if document.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{folder} is not an svac-format checkpoint (config.json has no \"format\": \"svac\")")
    config = svac_config(document, where=str(folder), overrides=overrides)
    path = folder / TEXT_ENCODER_CONFIG
    try:
        text_config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder} is not a complete baseline checkpoint: cannot read {path.name}: {exc}") from exc
    if not isinstance(text_config, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return folder, config, text_config


def load_state(model: torch.nn.Module, folder: Path, *, dtype: torch.dtype, device: torch.device) -> None:
    """Load every tensor of ``folder``'s safetensors shards into ``model``, strictly, in ``dtype`` on ``device``.

    Floating tensors are cast to ``dtype``; others keep their stored dtype.

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped tensors, or for unreadable shards.
    """
    from svac.checkpoints.shards import list_names, open_shard, read_weights

    weights = read_weights(folder)
    expected = model.state_dict()
    stored = weights.tensors
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    mismatched = sorted(f"{n} (checkpoint {tuple(stored[n].shape)}, model {tuple(expected[n].shape)})"
                        for n in set(expected) & set(stored) if tuple(stored[n].shape) != tuple(expected[n].shape))
    if missing or unexpected or mismatched:
        parts = [f"{label}: {list_names(names)}" for label, names in
                 (("missing", missing), ("unexpected", unexpected), ("mismatched shapes", mismatched)) if names]
        raise CheckpointError(f"{folder} does not match the {model.config.head} model built from its config; "
                              + "; ".join(parts))
    state: dict[str, torch.Tensor] = {}
    for file in weights.files:
        with open_shard(folder, file) as handle:
            for name in handle.keys():
                tensor = handle.get_tensor(name)
                state[name] = tensor.to(dtype) if tensor.is_floating_point() else tensor
    model.load_state_dict(state, strict=True)
    model.to(device=device)
