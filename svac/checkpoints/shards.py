"""Sharded safetensors checkpoints: reading the index and shard headers, writing shards.

A checkpoint's weights are one ``model.safetensors`` file, or several
``model-0000X-of-0000N.safetensors`` shards listed by ``model.safetensors.index.json``
(``{"metadata": {...}, "weight_map": {tensor name: shard file}}``, the Hugging Face
layout, written by ``huggingface_hub.save_torch_state_dict``: :func:`write_weights`).
:func:`read_weights` checks the whole layout -- every shard present, every header
readable and covering its file, the index agreeing with the headers -- before any
tensor data is read, and reports each problem as a
:class:`~svac.errors.CheckpointError` naming the file. Tensor data is then read one
shard at a time (:func:`open_shard`), so loading never holds more than one shard's
worth of extra memory.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from svac.errors import CheckpointError

if TYPE_CHECKING:
    import torch

#: Name of the weight index of a sharded checkpoint (Hugging Face convention).
INDEX_NAME = "model.safetensors.index.json"
#: Name of the weight file of an unsharded checkpoint.
SINGLE_NAME = "model.safetensors"
#: Default largest shard written by :func:`write_weights` (bytes): 2 GiB.
DEFAULT_MAX_SHARD_BYTES = 2 * 1024 ** 3
#: How many offending names an error message lists before summarising the rest.
MAX_LISTED = 25


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint, as its shard header describes it (no data is read).

    Attributes:
        name: the tensor's key in the checkpoint.
        file: shard file name, relative to the checkpoint folder.
        shape: the tensor's shape.
        dtype: safetensors dtype code (``F32``, ``BF16``, ``F16``, ``I64`` ...).
    """

    name: str
    file: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class CheckpointWeights:
    """The tensors of a checkpoint folder, validated from the index and shard headers.

    Attributes:
        folder: the checkpoint folder.
        files: shard file names in load order.
        tensors: every tensor, by name.
    """

    folder: Path
    files: tuple[str, ...]
    tensors: Mapping[str, TensorInfo]


def list_names(names, limit: int = MAX_LISTED) -> str:
    """``"a, b, c"`` for an error message; past ``limit`` names, ``"... and N more"``."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


def read_weights(folder: str | Path) -> CheckpointWeights:
    """Validate and describe the safetensors weights of a checkpoint folder, reading headers only.

    Args:
        folder: a folder holding ``model.safetensors.index.json`` and its shards, or one
            ``model.safetensors``.

    Returns:
        A :class:`CheckpointWeights` listing every tensor with its shard, shape and dtype.

    Raises:
        CheckpointError: when the folder holds no safetensors weights; the index is not
            valid JSON or has no ``weight_map``; a shard named by the index is missing; a
            shard is truncated or its header is unreadable; or the index and a shard's
            header disagree about which tensors the shard holds. Each message names the file.
    """
    folder = Path(folder)
    index_path = folder / INDEX_NAME
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read the weight index {index_path}: {exc}") from exc
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index_path} has no 'weight_map' naming the shards")
        files = tuple(sorted(set(weight_map.values())))
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            counts = {f: sum(1 for v in weight_map.values() if v == f) for f in missing}
            detail = ", ".join(f"{f} ({n} tensors)" for f, n in counts.items())
            raise CheckpointError(f"checkpoint {folder} is incomplete: the index names shard(s) that are missing: "
                                  f"{detail}")
    elif (folder / SINGLE_NAME).is_file():
        weight_map = None
        files = (SINGLE_NAME,)
    else:
        raise CheckpointError(f"{folder} holds no safetensors weights (neither {INDEX_NAME} nor {SINGLE_NAME})")

    tensors: dict[str, TensorInfo] = {}
    for file in files:
        for info in _read_header(folder / file):
            if info.name in tensors:
                raise CheckpointError(f"tensor {info.name} is stored twice: in {tensors[info.name].file} and {file}")
            tensors[info.name] = info
    if weight_map is not None:
        listed = set(weight_map)
        stored = set(tensors)
        misplaced = sorted(n for n in listed & stored if weight_map[n] != tensors[n].file)
        if listed - stored or stored - listed or misplaced:
            raise CheckpointError(
                f"the index {index_path} does not match the shards: listed but not stored "
                f"[{list_names(listed - stored)}]; stored but not listed [{list_names(stored - listed)}]; "
                f"stored in another shard than listed [{list_names(misplaced)}]")
    return CheckpointWeights(folder=folder, files=files, tensors=tensors)


def _read_header(path: Path) -> list[TensorInfo]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            out = []
            for name in handle.keys():
                piece = handle.get_slice(name)
                out.append(TensorInfo(name=name, file=path.name, shape=tuple(piece.get_shape()),
                                      dtype=str(piece.get_dtype())))
            return out
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"shard {path} is unreadable or truncated (re-download it): {exc}") from exc


@contextmanager
def open_shard(folder: Path, file: str):
    """Open one shard for reading tensors (``handle.get_tensor(name)``, ``handle.get_slice(name)``).

    Tensors are read on the CPU in their stored dtype.

    Raises:
        CheckpointError: when the shard cannot be opened.
    """
    from safetensors import SafetensorError, safe_open

    path = folder / file
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"shard {path} is unreadable or truncated: {exc}") from exc
    with handle:
        yield handle


def write_weights(tensors: Mapping[str, "torch.Tensor"], folder: Path, *,
                  max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                  metadata: Mapping[str, str] | None = None) -> list[str]:
    """Write ``tensors`` as safetensors into ``folder`` with ``huggingface_hub.save_torch_state_dict``.

    The Hugging Face layout: one ``model.safetensors``, or -- above ``max_shard_bytes`` --
    ``model-0000X-of-0000N.safetensors`` shards and ``model.safetensors.index.json``. Tensors may
    live on any device; safetensors copies each to the CPU as it writes it.

    Args:
        tensors: name -> tensor; distinct names must not share storage (save tied weights once).
        folder: an existing, empty folder (the caller makes the write atomic).
        max_shard_bytes: the largest shard, bytes (a larger tensor gets a shard alone).
        metadata: string metadata stored in the index (or in the single file's header).

    Returns:
        The weight file names written, in order.

    Raises:
        ValueError: when ``max_shard_bytes`` is not positive.
    """
    from huggingface_hub import save_torch_state_dict

    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    save_torch_state_dict(dict(tensors), folder, max_shard_size=max_shard_bytes, metadata=dict(metadata or {}))
    return sorted(p.name for p in Path(folder).glob("model*.safetensors"))
