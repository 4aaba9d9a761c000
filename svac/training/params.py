"""What trains: LoRA (peft) on the LLM only, and named parts of the model unfrozen in full.

Sa2VA's recipe (the defaults): LoRA on the LLM's attention and MLP projections; the projector,
``text_hidden_fcs``, SAM-2's mask decoder and the embedding rows of the new special tokens train;
the vision encoder and SAM-2's image encoder stay frozen.

LoRA wraps the language model *inside* the MLLM (``mllm.model.language_model``) with
``peft.get_peft_model``, so the vision tower cannot receive adapters whatever the target names.
Special-token rows train through a gradient mask on the embedding (and on an untied ``lm_head``):
only their rows receive gradient, and that parameter group has no weight decay, so every other
row stays exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from svac.mllm.tokenizer import token_id
from svac.mllm.tokens import SVAC_SPECIAL_TOKENS
from svac.training.config import LoRAConfig

if TYPE_CHECKING:
    from svac.model import SVAC


@dataclass
class TrainableSummary:
    """Counts of parameters by state after :func:`configure_trainable`.

    Attributes:
        trainable: parameters that receive updates (special-token rows counted by row).
        frozen: the rest.
        parts: trainable parameter count by part name.
    """

    trainable: int
    frozen: int
    parts: dict[str, int]


def apply_lora(model: "SVAC", cfg: LoRAConfig) -> None:
    """Wrap the LLM of ``model`` with LoRA adapters (in place).

    Raises:
        ValueError: when no LLM module matches ``cfg.target_modules``.
    """
    from peft import LoraConfig, get_peft_model

    lm = model.mllm.model.language_model
    names = {n.rsplit(".", 1)[-1] for n, m in lm.named_modules() if isinstance(m, nn.Linear)}
    missing = sorted(set(cfg.target_modules) - names)
    if len(missing) == len(cfg.target_modules):
        raise ValueError(f"no LLM linear layer is named like {cfg.target_modules}; the LLM has {sorted(names)}")
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=[t for t in cfg.target_modules if t in names], bias="none")
    model.mllm.model.language_model = get_peft_model(lm, lora)


def part_modules(model: "SVAC") -> dict[str, list[nn.Module | nn.Parameter]]:
    """The modules (or parameters) behind each trainable part name of :data:`svac.training.config.TRAINABLE_PARTS`."""
    inner = model.mllm.model
    sam = model.grounding
    memory = [sam.memory_attention, sam.memory_encoder, sam.obj_ptr_proj, sam.obj_ptr_tpos_proj,
              sam.maskmem_tpos_enc, sam.no_mem_embed, sam.no_mem_pos_enc]
    memory += [getattr(sam, n) for n in ("no_obj_ptr", "no_obj_embed_spatial", "mask_downsample")
               if getattr(sam, n, None) is not None]
    return {
        "projector": [inner.multi_modal_projector],
        "text_hidden_fcs": [model.text_hidden_fcs],
        "span_prompt": [model.span_prompt] if model.span_prompt is not None else [],
        "sam2_mask_decoder": [sam.sam_mask_decoder],
        "sam2_prompt_encoder": [sam.sam_prompt_encoder],
        "sam2_image_encoder": [sam.image_encoder],
        # the mask decoder's convolutions on the two high-resolution levels, applied in SAM2Base.forward_image
        "sam2_high_res_convs": ([sam.sam_mask_decoder.conv_s0, sam.sam_mask_decoder.conv_s1]
                                if sam.use_high_res_features_in_sam else []),
        "sam2_memory": memory,
        "sam2_tracker": [model.memory_tracker] if model.memory_tracker is not None else [],
        "vision_encoder": [inner.vision_tower],
        "llm": [inner.language_model, model.mllm.lm_head],
        "llm_blocks": _llm_blocks(model),
    }


def _llm_blocks(model: "SVAC") -> list[nn.Module]:
    """The LLM's decoder layers and final norm, and its output head when untied -- not the input embeddings.

    What an answer-only stage trains on a model with the span skip path: the path reads the input embeddings,
    and the mask decoder was trained on them, so they stay as they are (a tied ``lm_head`` is those
    embeddings and stays too).
    """
    lm = model.mllm.model.language_model
    parts: list[nn.Module] = [lm.layers, lm.norm]
    if model.mllm.lm_head.weight is not model.mllm.get_input_embeddings().weight:
        parts.append(model.mllm.lm_head)
    return parts


def configure_trainable(model: "SVAC", parts: list[str]) -> TrainableSummary:
    """Freeze everything, then unfreeze ``parts`` and any LoRA adapter; special tokens get row masks.

    Returns:
        A :class:`TrainableSummary`.

    Raises:
        svac.errors.ConfigError: when ``parts`` names ``span_prompt`` for a model without the span skip path, or
            ``sam2_tracker`` for a model without a memory tracker.
    """
    if "span_prompt" in parts and model.span_prompt is None:
        from svac.errors import ConfigError

        raise ConfigError("trainable part span_prompt: this model has no span skip path (seg_prompt.span_skip is false)")
    if "sam2_tracker" in parts and model.memory_tracker is None:
        from svac.errors import ConfigError

        raise ConfigError("trainable part sam2_tracker: this model has no memory tracker (sam2.memory_tracker is false; "
                          "add_memory_tracker: true adds one)")
    for p in model.parameters():
        p.requires_grad_(False)
    counts: dict[str, int] = {}
    modules = part_modules(model)
    seen: set[int] = set()  # tied weights (embedding = lm_head) count once
    for part in parts:
        if part == "special_tokens":
            continue
        total = 0
        for item in modules[part]:
            params = [item] if isinstance(item, nn.Parameter) else list(item.parameters())
            for p in params:
                p.requires_grad_(True)
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        counts[part] = total
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    for p in lora:
        p.requires_grad_(True)
    if lora:
        counts["lora"] = sum(p.numel() for p in lora)
    if "special_tokens" in parts:
        counts["special_tokens"] = _train_special_token_rows(model)
    trainable = sum(counts.values())
    total = sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once
    return TrainableSummary(trainable=trainable, frozen=total - trainable, parts=counts)


def special_token_ids(model: "SVAC") -> list[int]:
    """Ids of ``[SEG]``, ``<p>``, ``</p>``, ``<vp>``, ``</vp>`` in the model's tokenizer."""
    return [token_id(model.tokenizer, t) for t in SVAC_SPECIAL_TOKENS]


def row_masked_parameters(model: "SVAC") -> list[nn.Parameter]:
    """Embedding (and untied ``lm_head``) weights whose gradient is masked to the special-token rows."""
    return [p for p in _token_tables(model) if getattr(p, "_svac_row_mask", None) is not None]


def _token_tables(model: "SVAC") -> list[nn.Parameter]:
    emb = model.mllm.get_input_embeddings().weight
    head = model.mllm.lm_head.weight
    return [emb] if head is emb else [emb, head]


def _train_special_token_rows(model: "SVAC") -> int:
    ids = torch.tensor(special_token_ids(model))
    rows = 0
    for weight in _token_tables(model):
        if weight.requires_grad:  # the whole table trains already ("llm" part)
            continue
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        mask[ids] = 1
        weight.requires_grad_(True)
        weight._svac_row_mask = mask
        weight.register_hook(lambda grad, m=mask: grad * m.to(grad.dtype))
        rows += len(ids) * weight.shape[1]
    return rows
