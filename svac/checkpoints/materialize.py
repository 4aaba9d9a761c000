"""Filling an empty model skeleton from checkpoint shards, strictly, one shard at a time.

The model is first built with its parameters on the ``meta`` device (no memory, no
random initialisation; accelerate's ``init_empty_weights``, :func:`empty_model`). A
:class:`LoadPlan` says which checkpoint tensor fills which parameter, possibly through a
conversion (a fused ``qkv`` matrix split into ``q``/``k``/``v`` ...). :func:`load_weights`
first checks the plan against the shard headers -- every parameter filled exactly once, no
checkpoint tensor left over, every shape right -- and raises one
:class:`~svac.errors.CheckpointError` listing all problems before reading any data. It then
reads the shards one by one, converts, casts floating tensors to the requested dtype (SAM-2's
stay float32) and puts each tensor, in fresh storage, straight on its target device with
accelerate's ``set_module_tensor_to_device``, so at most one shard is held in host memory
besides the model; tied weights are tied again with accelerate's ``retie_parameters``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from svac.checkpoints.shards import CheckpointWeights, list_names, open_shard
from svac.errors import CheckpointError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Conversion:
    """How one checkpoint tensor fills one or more model tensors.

    Attributes:
        source: the tensor's name in the checkpoint.
        targets: model state-dict names it fills (empty: the tensor is only verified, see
            ``equal_to``).
        convert: maps the checkpoint tensor to one tensor per target (identity for renames).
        shapes: maps the checkpoint shape to the target shapes, without data (for the
            up-front shape check); raises ``ValueError`` when the shape cannot be converted.
        equal_to: for a redundant copy (a tied ``lm_head`` stored anyway), the model tensor
            it must equal after loading.
    """

    source: str
    targets: tuple[str, ...]
    convert: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
    shapes: Callable[[Shape], tuple[Shape, ...]]
    equal_to: str | None = None


def rename(source: str, target: str) -> Conversion:
    """A checkpoint tensor copied unchanged into ``target``."""
    return Conversion(source, (target,), lambda t: (t,), lambda s: (tuple(s),))


def verify_copy(source: str, target: str) -> Conversion:
    """A redundant checkpoint tensor that must equal model tensor ``target`` once loaded (tied weights)."""
    return Conversion(source, (), lambda t: (), lambda s: (), equal_to=target)


def split_rows(source: str, targets: Sequence[str], sizes: Callable[[int], Sequence[int]]) -> Conversion:
    """A checkpoint tensor cut along dim 0 into consecutive blocks, one per target.

    Args:
        sizes: given the number of rows, the rows of each block (must add up).
    """
    def parts(rows: int) -> list[int]:
        out = list(sizes(rows))
        if sum(out) != rows or any(n <= 0 for n in out):
            raise ValueError(f"cannot split {rows} rows into {out}")
        return out

    def convert(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(p.contiguous() for p in torch.split(t, parts(t.shape[0]), dim=0))

    def shapes(s: Shape) -> tuple[Shape, ...]:
        return tuple((n, *s[1:]) for n in parts(s[0]))

    return Conversion(source, tuple(targets), convert, shapes)


@dataclass
class LoadPlan:
    """Which checkpoint tensor fills which model tensor.

    Attributes:
        conversions: one entry per mapped checkpoint tensor.
        unexpected: checkpoint tensors no rule maps (always an error).
        ignored: checkpoint tensors deliberately not loaded, with the reason (reported,
            e.g. Sa2VA's SAM 2 weights when a Meta SAM 2 checkpoint replaces them).
    """

    conversions: list[Conversion] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadReport:
    """What a strict load did.

    Attributes:
        source: the checkpoint folder.
        kind: ``svac`` or ``sa2va`` (or ``internvl_chat`` for a bare InternVL).
        files: shard files read, in order.
        num_tensors: model tensors filled.
        ignored: checkpoint tensors deliberately not loaded, with the reason.
        dtype: floating dtype of the loaded weights.
        devices: the distinct devices the weights were put on.
    """

    source: str
    kind: str
    files: tuple[str, ...]
    num_tensors: int
    ignored: Mapping[str, str]
    dtype: str
    devices: tuple[str, ...]


def empty_model(build: Callable[[], nn.Module]) -> nn.Module:
    """Run ``build()`` with every new parameter created on the ``meta`` device (no memory, no init cost).

    Buffers are created for real on the CPU, so computed constants (rotary frequencies,
    SAM-2 position encodings) are correct without loading. Shared parameters (tied word
    embeddings) are tied again afterwards with transformers' ``tie_weights`` when the
    model has it.
    """
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        model = build()
    for module in model.modules():
        if getattr(module, "_tied_weights_keys", None) and hasattr(module, "tie_weights"):
            module.tie_weights()
    return model


def tied_aliases(model: nn.Module) -> dict[str, str]:
    """Parameter names that share one tensor with an earlier name: ``{alias: canonical}``.

    The groups are accelerate's ``find_tied_parameters``; the canonical name is the one
    ``model.named_parameters()`` keeps (the first). Only it is saved and loaded; the aliases are
    tied to it again after loading (accelerate's ``retie_parameters``).
    """
    from accelerate.utils import find_tied_parameters

    kept = dict(model.named_parameters())
    aliases: dict[str, str] = {}
    for group in find_tied_parameters(model):
        canonical = next(name for name in group if name in kept)
        aliases.update({name: canonical for name in group if name != canonical})
    return aliases


def device_resolver(device_map: Mapping[str, str | torch.device]) -> Callable[[str], torch.device]:
    """Map a tensor name to its device by the longest matching module prefix of ``device_map``.

    ``{"": "cpu"}`` puts everything on the CPU; ``{"mllm.model.language_model.layers.0": "cuda:0", ...}``
    places module by module (accelerate's device-map convention).

    Raises:
        CheckpointError: (when called) for a name no prefix covers.
    """
    entries = sorted(((k, torch.device(v) if not isinstance(v, torch.device) else v) for k, v in device_map.items()),
                     key=lambda kv: -len(kv[0]))

    def resolve(name: str) -> torch.device:
        for prefix, device in entries:
            if not prefix or name == prefix or name.startswith(prefix + "."):
                return device
        raise CheckpointError(f"the device map places no module containing {name}")

    return resolve


def load_weights(model: nn.Module, weights: CheckpointWeights, plan: LoadPlan, *, kind: str, dtype: torch.dtype,
                 device_for: Callable[[str], torch.device], provided: Sequence[str] = ()) -> LoadReport:
    """Fill ``model`` (a skeleton from :func:`empty_model`) from ``weights`` following ``plan``, strictly.

    Args:
        model: the model whose parameters are on ``meta``; filled in place.
        weights: the validated checkpoint (:func:`svac.checkpoints.shards.read_weights`).
        plan: the checkpoint -> model mapping.
        kind: the checkpoint format, for the report.
        dtype: dtype given to floating tensors (integer and boolean tensors keep theirs), except
            those of the model's float32 parts (:func:`svac.checkpoints.placement.float32_prefixes`).
        device_for: device of each model tensor (:func:`device_resolver`).
        provided: module prefixes (``"grounding"`` ...) whose tensors are already real (built
            from another source) and must not come from this checkpoint; they are cast to
            ``dtype`` and moved to their device like the loaded ones.

    Returns:
        A :class:`LoadReport`.

    Raises:
        CheckpointError: before any data is read, listing every model tensor no checkpoint
            tensor fills (missing), every checkpoint tensor that fills nothing (unexpected),
            every target filled twice and every shape that does not match; while reading,
            when a shard cannot be read or a redundant tied copy differs from its tensor.
    """
    from accelerate.utils import find_tied_parameters, retie_parameters

    from svac.checkpoints.placement import float32_prefixes

    tied = find_tied_parameters(model)
    aliases = tied_aliases(model)
    prefixes = tuple(p + "." for p in provided)
    keep_float32 = float32_prefixes(model)
    expected = {name: tuple(t.shape) for name, t in model.state_dict(keep_vars=True).items()
                if name not in aliases and not name.startswith(prefixes)}
    producers: dict[str, str] = {}
    twice, unexpected, mismatched = [], list(plan.unexpected), []
    for conv in plan.conversions:
        info = weights.tensors.get(conv.source)
        if info is None:
            raise CheckpointError(f"internal error: the load plan names {conv.source}, which the checkpoint lacks")
        if conv.equal_to is not None:
            if conv.equal_to not in expected:
                unexpected.append(conv.source)
            elif info.shape != expected[conv.equal_to]:
                mismatched.append(f"{conv.source}: checkpoint {list(info.shape)} vs {conv.equal_to} "
                                  f"{list(expected[conv.equal_to])}")
            continue
        if not conv.targets or any(t not in expected for t in conv.targets):
            unexpected.append(conv.source)
            continue
        try:
            shapes = conv.shapes(info.shape)
        except ValueError as exc:
            mismatched.append(f"{conv.source}: checkpoint {list(info.shape)} cannot be converted ({exc})")
            continue
        for target, shape in zip(conv.targets, shapes):
            if target in producers:
                twice.append(f"{target} (from {producers[target]} and {conv.source})")
            producers[target] = conv.source
            if tuple(shape) != expected[target]:
                mismatched.append(f"{conv.source}: checkpoint {list(info.shape)} gives {list(shape)} but "
                                  f"{target} is {list(expected[target])}")
    missing = sorted(set(expected) - set(producers))
    if missing or unexpected or twice or mismatched:
        parts = [f"checkpoint {weights.folder} does not match the model ({kind} format)"]
        if missing:
            parts.append(f"{len(missing)} missing model tensor(s) (no checkpoint tensor fills them): "
                         f"{list_names(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected checkpoint tensor(s) (no model tensor takes them): "
                         f"{list_names(unexpected)}")
        if twice:
            parts.append(f"{len(twice)} model tensor(s) filled twice: {list_names(twice)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {list_names(mismatched)}")
        raise CheckpointError("; ".join(parts))

    for name in expected:
        device_for(name)  # every tensor must have a device before any data is read
    by_file: dict[str, list[Conversion]] = defaultdict(list)
    for conv in plan.conversions:
        by_file[weights.tensors[conv.source].file].append(conv)
    devices: set[str] = set()
    loaded = 0
    for file in weights.files:
        if not by_file.get(file):
            continue
        with open_shard(weights.folder, file) as handle:
            for conv in by_file[file]:
                if conv.equal_to is not None:
                    continue
                values = conv.convert(handle.get_tensor(conv.source))
                for target, value in zip(conv.targets, values):
                    device = device_for(target)
                    target_dtype = torch.float32 if target.startswith(keep_float32) else dtype
                    _assign(model, target, value, dtype=target_dtype, device=device)
                    devices.add(str(device))
                    loaded += 1
                del values
    for name, tensor in model.state_dict(keep_vars=True).items():
        if name.startswith(prefixes) and name not in aliases:
            device = device_for(name)
            target_dtype = torch.float32 if name.startswith(keep_float32) else dtype
            _assign(model, name, tensor.detach(), dtype=target_dtype, device=device)
            devices.add(str(device))
    retie_parameters(model, tied)
    _place_leftovers(model, device_for)
    for conv in plan.conversions:
        if conv.equal_to is not None:
            _verify_copy(model, weights, conv)
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise CheckpointError(f"internal error: tensors left unloaded on the meta device: {list_names(leftover)}")
    return LoadReport(source=str(weights.folder), kind=kind, files=weights.files, num_tensors=loaded,
                      ignored=dict(plan.ignored), dtype=str(dtype).removeprefix("torch."), devices=tuple(sorted(devices)))


def _assign(model: nn.Module, name: str, value: torch.Tensor, *, dtype: torch.dtype, device: torch.device) -> None:
    """Put ``value`` into parameter or buffer ``name`` (accelerate's ``set_module_tensor_to_device``), in fresh storage.

    A fresh allocation, never a view into the shard's read buffer: tensors read from a file sit at
    whatever byte offset the file gives them, and CPU kernels take other code paths (another
    summation order, last-bit differences) on memory that is not aligned as the allocator aligns it.
    Floating tensors take ``dtype``; others keep theirs.
    """
    from accelerate.utils import set_module_tensor_to_device

    target_dtype = dtype if value.is_floating_point() else value.dtype
    fresh = torch.empty(value.shape, dtype=target_dtype, device=device).copy_(value)
    set_module_tensor_to_device(model, name, device, value=fresh, dtype=target_dtype, clear_cache=False)


def _place_leftovers(model: nn.Module, device_for: Callable[[str], torch.device]) -> None:
    """Move buffers that are not in the state dict (computed at build time) to their module's device."""
    from accelerate.utils import set_module_tensor_to_device

    saved = set(model.state_dict(keep_vars=True))
    for name, buf in list(model.named_buffers()):
        if name not in saved and not buf.is_meta and buf.device != device_for(name):
            set_module_tensor_to_device(model, name, device_for(name), clear_cache=False)


def _verify_copy(model: nn.Module, weights: CheckpointWeights, conv: Conversion) -> None:
    with open_shard(weights.folder, weights.tensors[conv.source].file) as handle:
        stored = handle.get_tensor(conv.source)
    current = model.get_parameter(conv.equal_to)
    if not torch.equal(stored.to(current.device, current.dtype), current.detach()):
        raise CheckpointError(f"{conv.source} is stored separately but the config ties it to {conv.equal_to}, and "
                              "the two differ: the checkpoint's config and weights disagree")
