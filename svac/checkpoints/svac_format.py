"""svac's own checkpoint format, written by :meth:`svac.SVAC.save_pretrained`.

A folder holding

* ``config.json`` -- ``{"format": "svac", "format_version": 1, "svac_version": ..., "config": SVACConfig.to_dict()}``;
* ``model.safetensors``, or ``model-0000X-of-0000N.safetensors`` + ``model.safetensors.index.json``
  (``huggingface_hub.save_torch_state_dict``) -- every tensor under its name in :class:`svac.SVAC`
  (``mllm.*``, ``grounding.*``, ``text_hidden_fcs.*``); tensors shared by several names (tied
  word embeddings) are stored once and tied again on load;
* the tokenizer (``tokenizer.save_pretrained``: ``tokenizer.json``, ``tokenizer_config.json`` ...);
* optionally ``adapter/`` -- a peft LoRA adapter of the LLM (:mod:`svac.checkpoints.lora`).

The folder is written into a temporary sibling and renamed into place, so a crash never
leaves a half-written checkpoint, and an existing non-empty folder is only replaced with
``overwrite=True``. The baseline heads are saved in the same format (:func:`write_checkpoint`,
with their text encoder's config in ``text_encoder.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from svac.atomic_folder import staged_folder, unexpected_entries
from svac.checkpoints.materialize import LoadPlan, rename, tied_aliases
from svac.checkpoints.shards import DEFAULT_MAX_SHARD_BYTES, write_weights
from svac.config import SVACConfig, apply_overrides, from_dict
from svac.errors import CheckpointError, ConfigError, OutputExistsError

if TYPE_CHECKING:
    import torch

    from svac.model import SVAC

CONFIG_NAME = "config.json"
FORMAT_NAME = "svac"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SavedCheckpoint:
    """What :func:`save_svac` wrote.

    Attributes:
        path: the checkpoint folder.
        shards: weight shard file names.
        num_tensors: tensors stored (tied tensors once).
        total_bytes: bytes of tensor data.
        adapter: whether a LoRA adapter was saved in ``adapter/``.
    """

    path: Path
    shards: tuple[str, ...]
    num_tensors: int
    total_bytes: int
    adapter: bool


def svac_version() -> str:
    """The installed svac version (``unknown`` when the package metadata is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("svac")
    except PackageNotFoundError:
        return "unknown"


def save_svac(model: "SVAC", directory: str | Path, *, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
              overwrite: bool = False, weights_dtype: "torch.dtype | None" = None) -> SavedCheckpoint:
    """Save ``model`` in svac's format (see the module docstring).

    Args:
        model: the model; its weights may be on any devices (each tensor is copied to the CPU as
            it is written).
        directory: the checkpoint folder to create.
        max_shard_bytes: the largest weight shard, bytes (default 2 GiB).
        overwrite: replace an existing non-empty folder.
        weights_dtype: store the floating-point weights in this dtype (``torch.float16`` halves a
            float32 model; loading casts them to the dtype the model is loaded in, as for any
            checkpoint); ``None`` stores them as they are. Integer tensors are never cast.

    Returns:
        A :class:`SavedCheckpoint`.

    Raises:
        OutputExistsError: when ``directory`` exists, is not empty and ``overwrite`` is false.
        CheckpointError: when ``directory`` is a file, or the model is quantized (bitsandbytes
            weights cannot be stored in full precision) or has weights still on ``meta``.
        ValueError: when ``weights_dtype`` is not a floating-point dtype.
    """
    from svac.checkpoints.lora import ADAPTER_DIR, base_state_dict, save_adapter
    from svac.checkpoints.quantization import is_quantized

    if is_quantized(model):
        raise CheckpointError("a quantized (8-bit/4-bit) model cannot be saved by svac; load it in full precision")
    state = base_state_dict(model)
    for alias in tied_aliases(model):
        state.pop(alias, None)
    return write_checkpoint(directory, config=model.config, state=state, tokenizer=model.tokenizer,
                            max_shard_bytes=max_shard_bytes, overwrite=overwrite, weights_dtype=weights_dtype,
                            extra=lambda staging: save_adapter(model, staging / ADAPTER_DIR))


def write_checkpoint(directory: str | Path, *, config: SVACConfig, state: Mapping[str, "torch.Tensor"], tokenizer,
                     max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES, overwrite: bool = False,
                     weights_dtype: "torch.dtype | None" = None,
                     extra: "Callable[[Path], bool | None] | None" = None) -> SavedCheckpoint:
    """Write an svac-format folder for any head (SVAC or a baseline), atomically.

    ``config.json`` (the format document), the weights (:func:`svac.checkpoints.shards.write_weights`,
    metadata ``svac_format`` and ``head``) and the tokenizer are written into a staging folder
    that replaces ``directory`` only when everything is written; ``extra(staging)`` adds what
    the head stores besides (SVAC: the LoRA adapter; baselines: the text encoder's config) and
    returns whether an adapter was written. ``weights_dtype`` (a floating-point ``torch.dtype``) stores the
    floating-point tensors in that dtype, integer tensors as they are; ``None`` stores every tensor as it is.

    Raises:
        OutputExistsError: when ``directory`` exists, is not empty and ``overwrite`` is false.
        CheckpointError: when ``directory`` is a file, or a tensor is still on ``meta``.
        ValueError: when ``weights_dtype`` is not a floating-point dtype.
    """
    if weights_dtype is not None and not weights_dtype.is_floating_point:
        raise ValueError(f"weights_dtype must be a floating-point dtype, got {weights_dtype}")
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise CheckpointError(f"{target} is a file, not a folder")
    # svac's own lock and staging entries (a command holding this folder) are not files of a checkpoint
    if target.is_dir() and unexpected_entries(target, lambda name: False) and not overwrite:
        raise OutputExistsError(f"{target} already holds files; pass overwrite=True to replace it")
    on_meta = [k for k, v in state.items() if v.is_meta]
    if on_meta:
        raise CheckpointError(f"cannot save: {len(on_meta)} tensor(s) are on the meta device (not loaded)")
    if weights_dtype is not None:
        state = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in state.items()}
    with staged_folder(target, overwrite=overwrite, what="a checkpoint") as staging:
        document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "svac_version": svac_version(),
                    "config": config.to_dict()}
        (staging / CONFIG_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        shards = write_weights(state, staging, max_shard_bytes=max_shard_bytes,
                               metadata={"svac_format": str(FORMAT_VERSION), "head": config.head})
        tokenizer.save_pretrained(str(staging))
        adapter = bool(extra(staging)) if extra is not None else False
    return SavedCheckpoint(path=target, shards=tuple(shards), num_tensors=len(state),
                           total_bytes=sum(v.numel() * v.element_size() for v in state.values()), adapter=adapter)


def read_config_document(folder: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder.

    Raises:
        CheckpointError: when the folder has no ``config.json`` or it is not a JSON object.
    """
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a checkpoint: it has no {CONFIG_NAME}")
    return read_json_object(path)


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object stored in ``path`` (a checkpoint's ``config.json``, ``text_encoder.json`` ...).

    Raises:
        CheckpointError: naming the file, when it cannot be read, is not JSON or holds no object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return data


def svac_config(document: Mapping[str, Any], *, where: str, overrides=()) -> SVACConfig:
    """The :class:`SVACConfig` stored in an svac ``config.json`` document, with ``overrides`` applied.

    Raises:
        CheckpointError: for an unknown format version or no ``config`` mapping.
        svac.errors.ConfigError: for an invalid stored config (the message names the folder and the
            key) or an invalid override.
    """
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{where}: svac checkpoint format version {version!r} is not supported by this svac "
                              f"({svac_version()} reads version {FORMAT_VERSION})")
    stored = document.get("config")
    if not isinstance(stored, dict):
        raise CheckpointError(f"{where}: config.json has no 'config' mapping")
    try:
        from_dict(SVACConfig, stored)
    except ConfigError as exc:
        raise ConfigError(f"{where}/{CONFIG_NAME}: the stored config is invalid: {exc}") from exc
    return from_dict(SVACConfig, apply_overrides(stored, overrides))


def svac_plan(names) -> LoadPlan:
    """The load plan of an svac checkpoint: every stored tensor goes to the model tensor of the same name."""
    return LoadPlan(conversions=[rename(name, name) for name in sorted(names)])
