"""Loading a model from a checkpoint folder or Hub id: svac's own format or a Sa2VA release.

:func:`load_checkpoint` is what :meth:`svac.SVAC.from_pretrained` runs:

1. resolve the folder (:func:`svac.checkpoints.hub.resolve_checkpoint`);
2. read ``config.json`` and tell the format (:func:`svac.checkpoints.sa2va.classify`);
3. derive the :class:`~svac.config.SVACConfig` (stored, or mapped from Sa2VA's config) and
   apply ``overrides``;
4. load the tokenizer without remote code, validate every shard header;
5. build the model with empty (``meta``) parameters and fill it shard by shard, strictly,
   in ``torch_dtype`` on the devices of ``device_map``;
6. optionally: replace SAM 2 by a Meta checkpoint, load the LoRA adapter, quantize the LLM.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from svac.checkpoints.materialize import LoadPlan, LoadReport
from svac.errors import CheckpointError

if TYPE_CHECKING:
    from svac.checkpoints.shards import CheckpointWeights
    from svac.config import SAM2Config, SVACConfig
    from svac.model import SVAC

#: Name of the LLM input embeddings in svac's format (gives the vocabulary rows).
SVAC_EMBEDDING = "mllm.model.language_model.embed_tokens.weight"


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and what the load did.

    Attributes:
        model: the model, in eval mode.
        report: the strict load's :class:`~svac.checkpoints.materialize.LoadReport`.
        folder: the local checkpoint folder (the Hub cache snapshot for a Hub id).
    """

    model: "SVAC"
    report: LoadReport
    folder: Path


def read_checkpoint_config(source: str | Path, *, overrides: Sequence[str] = (), revision: str | None = None,
                           cache_dir: str | Path | None = None, local_files_only: bool = False) -> "SVACConfig":
    """The :class:`~svac.config.SVACConfig` a checkpoint would load with, without loading weights.

    Raises:
        CheckpointError: as :func:`load_checkpoint` for a missing or unreadable checkpoint.
    """
    from svac.checkpoints.hub import resolve_checkpoint

    folder = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    config, _ = _config_of(folder, overrides)
    return config


def load_checkpoint(source: str | Path, *, model_class: "type[SVAC]", torch_dtype: torch.dtype | str | None = None,
                    device_map: Any = None,
                    overrides: Sequence[str] = (), revision: str | None = None, cache_dir: str | Path | None = None,
                    local_files_only: bool = False, load_in_8bit: bool = False, load_in_4bit: bool = False,
                    quantization_config: Any = None, load_adapter: bool = True, tokenizer: str | Path | None = None,
                    sam2_checkpoint: "str | Path | SAM2Config | None" = None) -> LoadedModel:
    """Load an SVAC model from svac's format or a Sa2VA checkpoint (see :meth:`svac.SVAC.from_pretrained`).

    Args:
        source: a checkpoint folder or a Hugging Face Hub id (``ByteDance/Sa2VA-1B``).
        model_class: the model class to build, :class:`svac.SVAC` (its ``from_pretrained`` hands
            itself in: loading never imports the model module).
        torch_dtype: dtype of the floating weights (``bfloat16``/``float16``/``float32`` or a
            ``torch.dtype``); ``None``/``"auto"``: the config's ``inference.dtype`` (for Sa2VA,
            the checkpoint's ``torch_dtype``).
        device_map: ``None`` (CPU), a device, ``{module prefix: device}``, or ``"auto"`` /
            ``"balanced"`` / ``"sequential"`` to spread the model over the visible GPUs
            (:func:`svac.checkpoints.placement.resolve_device_map`).
        overrides: ``key.sub=value`` config overrides (e.g. ``csa.mode=per_clip``).
        revision, cache_dir, local_files_only: Hub options (:func:`svac.checkpoints.hub.resolve_checkpoint`).
        load_in_8bit, load_in_4bit, quantization_config: bitsandbytes LLM quantization
            (:mod:`svac.checkpoints.quantization`; CUDA and the ``quant`` extra).
        load_adapter: load the LoRA adapter of an svac checkpoint's ``adapter/`` folder.
        tokenizer: a tokenizer folder to use instead of the checkpoint's.
        sam2_checkpoint: a Meta SAM 2 ``.pt`` (config from its file name) or a
            :class:`~svac.config.SAM2Config` with ``checkpoint`` set, replacing the checkpoint's
            SAM 2 (whose weights are then reported as ignored in the load report).

    Returns:
        A :class:`LoadedModel`.

    Raises:
        CheckpointError: when the source is not a checkpoint svac reads, cannot be found or
            downloaded, a shard is missing or truncated, the tokenizer needs remote code, or the
            weights do not match the model strictly (the message lists missing, unexpected and
            mismatched tensors).
        svac.errors.ConfigError: for invalid overrides, dtype or device map.
        svac.checkpoints.quantization.QuantizationUnavailableError: when quantization is asked
            for without bitsandbytes or CUDA.
    """
    from svac.checkpoints.building import build_skeleton, load_tokenizer
    from svac.checkpoints.hub import resolve_checkpoint
    from svac.checkpoints.keymaps import GROUNDING, CheckpointLayout, internvl_plan
    from svac.checkpoints.quantization import quantization_config as make_quantization
    from svac.checkpoints.sa2va import embedding_rows
    from svac.checkpoints.sam2_meta import meta_grounding
    from svac.checkpoints.shards import read_weights
    from svac.checkpoints.svac_format import svac_plan

    quant = make_quantization(load_in_8bit=load_in_8bit, load_in_4bit=load_in_4bit, config=quantization_config)
    folder = resolve_checkpoint(source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    config, family = _config_of(folder, overrides)
    kind = "svac" if family is None else "sa2va"
    tok = load_tokenizer(tokenizer if tokenizer is not None else folder, model_name=folder.name)
    weights = read_weights(folder)
    grounding = None
    replaced = f"replaced by the SAM 2 checkpoint {sam2_checkpoint}"
    if sam2_checkpoint is not None:
        config, grounding = meta_grounding(config, sam2_checkpoint)
    if kind == "svac":
        if SVAC_EMBEDDING not in weights.tensors:
            raise CheckpointError(f"{folder} has no {SVAC_EMBEDDING}: not a complete svac checkpoint")
        rows = int(weights.tensors[SVAC_EMBEDDING].shape[0])
        plan = svac_plan(weights.tensors)
        if grounding is not None:
            keep = [c for c in plan.conversions if not c.source.startswith(GROUNDING + ".")]
            ignored = {c.source: replaced for c in plan.conversions if c.source.startswith(GROUNDING + ".")}
            plan = LoadPlan(conversions=keep, ignored=ignored)
    else:
        rows = embedding_rows(weights.tensors, where=str(folder))
        layout = CheckpointLayout(llm=family.conversion, with_grounding=True,
                                  grounding_ignored_reason=replaced if grounding is not None else None)
        plan = internvl_plan(weights.tensors, layout)
    model = build_skeleton(config, tok, model_class=model_class, vocab_size=rows, grounding=grounding)
    provided = (GROUNDING,) if grounding is not None else ()
    return finish_loading(model, weights, plan, kind=kind, torch_dtype=torch_dtype, device_map=device_map,
                          provided=provided, quantization=quant, load_adapter=load_adapter)


def finish_loading(model: "SVAC", weights: "CheckpointWeights", plan: LoadPlan, *, kind: str,
                   torch_dtype: torch.dtype | str | None, device_map: Any, provided: Sequence[str] = (),
                   quantization: Any = None, load_adapter: bool = True) -> LoadedModel:
    """Fill a skeleton (:func:`svac.checkpoints.building.build_skeleton`) and finish the model.

    Resolves dtype and device map, loads strictly (:func:`~svac.checkpoints.materialize.load_weights`),
    records the dtype in ``config.inference.dtype``, loads ``adapter/`` when present and
    asked for, quantizes the LLM when asked for, attaches device hooks for multi-device
    maps and puts the model in eval mode.

    Raises:
        CheckpointError, svac.errors.ConfigError: see :func:`load_checkpoint`.
    """
    from svac.checkpoints.lora import ADAPTER_DIR
    from svac.checkpoints.lora import load_adapter as attach_adapter
    from svac.checkpoints.materialize import device_resolver, load_weights
    from svac.checkpoints.placement import CANONICAL, dispatch, resolve_device_map, resolve_dtype
    from svac.checkpoints.quantization import quantize_llm

    dtype = resolve_dtype(torch_dtype, model.config.inference.dtype)
    placement = resolve_device_map(model, device_map, dtype)
    report = load_weights(model, weights, plan, kind=kind, dtype=dtype, device_for=device_resolver(placement),
                          provided=provided)
    model.config = dataclasses.replace(
        model.config, inference=dataclasses.replace(model.config.inference, dtype=CANONICAL[dtype]))
    adapter = weights.folder / ADAPTER_DIR
    if load_adapter and adapter.is_dir():
        attach_adapter(model, adapter)
    if quantization is not None:
        quantize_llm(model, quantization)
    dispatch(model, placement)
    model.eval()
    return LoadedModel(model=model, report=report, folder=weights.folder)


def _config_of(folder: Path, overrides: Sequence[str]):
    """``(config, llm_family)`` of a checkpoint folder; the family is ``None`` for svac's own format."""
    from svac.checkpoints.sa2va import classify, internvl_chat_config
    from svac.checkpoints.svac_format import read_config_document, svac_config
    from svac.config import SVACConfig, apply_overrides, from_dict

    document = read_config_document(folder)
    kind = classify(document, where=str(folder))
    if kind == "svac":
        return svac_config(document, where=str(folder), overrides=overrides), None
    if kind == "sa2va":
        config, family = internvl_chat_config(document, folder, kind=kind)
        if overrides:
            config = from_dict(SVACConfig, apply_overrides(config.to_dict(), overrides))
        return config, family
    raise CheckpointError(f"{folder} is an InternVL checkpoint without SAM 2 or a [SEG] projector; build an SVAC "
                          "from it with svac.checkpoints.compose_from_pretrained(internvl, sam2_checkpoint, "
                          "model_class=SVAC)")
