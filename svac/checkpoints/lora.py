"""LoRA adapters on the LLM of an SVAC model (peft), saved next to the base weights in ``adapter/``.

svac's convention (shared with :func:`svac.training.params.apply_lora`): the language model
inside the MLLM, ``model.mllm.model.language_model``, is wrapped by peft's ``get_peft_model``,
so the vision tower can never receive adapters and every svac code path runs the adapted
layers. A saved svac checkpoint holds the base weights under their plain names (as if no
adapter were there) and the adapter in ``adapter/``, in peft's own layout
(``adapter_config.json`` + ``adapter_model.safetensors``, names relative to the language model).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from svac.errors import CheckpointError

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

    from svac.model import SVAC

#: Sub-folder of an svac checkpoint holding the peft adapter.
ADAPTER_DIR = "adapter"
#: peft's safetensors adapter weights file.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Where the wrapped language model lives in an SVAC model.
LLM_PATH = "mllm.model.language_model"
#: Sa2VA's LLM LoRA rank and dropout (``wrap_llm_lora`` in Sa2VA's model; alpha is twice the rank).
SA2VA_LORA_RANK = 128
SA2VA_LORA_DROPOUT = 0.05
#: The LLM projections LoRA adapts by default (Qwen2 / Llama / InternLM2-as-Llama names).
LLM_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: peft's prefix of the wrapped model's own modules inside a ``PeftModel`` (``base_model.model.``).
PEFT_INNER_PREFIX = "base_model.model."


def llm_lora_config(*, r: int = SA2VA_LORA_RANK, alpha: int | None = None, dropout: float = SA2VA_LORA_DROPOUT,
                    targets: Sequence[str] = LLM_TARGETS) -> "LoraConfig":
    """A peft ``LoraConfig`` adapting the LLM projections ``targets`` (``alpha`` defaults to ``2 * r``, as Sa2VA)."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=2 * r if alpha is None else alpha, lora_dropout=dropout,
                      target_modules=list(targets), bias="none")


def lora_wrapper(model: "SVAC") -> "PeftModel | None":
    """The peft wrapper of the model's language model, or ``None`` when it has no adapter."""
    llm = model.mllm.model.language_model
    return llm if _is_peft_model(llm) else None


def add_lora(model: "SVAC", config: "LoraConfig") -> "PeftModel":
    """Wrap ``model.mllm.model.language_model`` with a LoRA adapter, in place (see :func:`llm_lora_config`).

    Returns:
        The peft wrapper (``print_trainable_parameters()`` etc. work as usual).

    Raises:
        CheckpointError: when the language model already has an adapter.
    """
    from peft import get_peft_model

    if lora_wrapper(model) is not None:
        raise CheckpointError("the language model already has a LoRA adapter; merge it first (merge_lora)")
    model.mllm.model.language_model = get_peft_model(model.mllm.model.language_model, config)
    return model.mllm.model.language_model


def load_adapter(model: "SVAC", folder: str | Path, *, trainable: bool = False) -> "PeftModel":
    """Load a saved peft adapter folder onto the model's language model, in place.

    Raises:
        CheckpointError: when the folder is not a peft adapter with safetensors weights, or its
            modules/shapes do not fit the model.
    """
    from peft import PeftModel

    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise CheckpointError(f"{folder} is not a peft adapter folder (no adapter_config.json)")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise CheckpointError(f"{folder} has no {ADAPTER_WEIGHTS}; svac loads adapters from safetensors only "
                              "(never from pickled .bin files)")
    if lora_wrapper(model) is not None:
        raise CheckpointError("the language model already has a LoRA adapter; merge it first (merge_lora)")
    try:
        wrapper = PeftModel.from_pretrained(model.mllm.model.language_model, str(folder), is_trainable=trainable)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"cannot load the adapter {folder}: {exc}") from exc
    model.mllm.model.language_model = wrapper
    return wrapper


def merge_lora(model: "SVAC") -> None:
    """Merge the adapter into the LLM weights and remove the LoRA layers (peft ``merge_and_unload``).

    Raises:
        CheckpointError: when the model has no adapter.
    """
    wrapper = lora_wrapper(model)
    if wrapper is None:
        raise CheckpointError("the model has no LoRA adapter to merge")
    model.mllm.model.language_model = wrapper.merge_and_unload()


def save_adapter(model: "SVAC", folder: Path) -> bool:
    """Write the adapter (if any) into ``folder`` with peft's ``save_pretrained``; return whether one was written."""
    wrapper = lora_wrapper(model)
    if wrapper is None:
        return False
    wrapper.save_pretrained(str(folder), safe_serialization=True)
    return True


def base_state_dict(model: "SVAC") -> dict[str, torch.Tensor]:
    """The model's tensors under their plain names, without LoRA tensors.

    Inside the peft wrapper at :data:`LLM_PATH`, ``base_model.model.`` is dropped from the
    names, a LoRA layer's adapted layer (``<module>.base_layer``) is returned as ``<module>``,
    and the LoRA matrices are left out (they are saved as the adapter).

    Raises:
        CheckpointError: when a peft wrapper or LoRA layer sits anywhere else in the model
            (svac could not save and reload it); merge it first.
    """
    state = model.state_dict()
    wrappers = [n for n, m in model.named_modules() if _is_peft_model(m)]
    tuners = [n for n, m in model.named_modules() if _is_tuner_layer(m)]
    if not wrappers and not tuners:
        return state
    inner = f"{LLM_PATH}.{PEFT_INNER_PREFIX}"
    if wrappers != [LLM_PATH] or any(not t.startswith(inner) for t in tuners):
        raise CheckpointError(f"LoRA is only saved on the language model ({LLM_PATH} wrapped with peft); found "
                              f"wrappers at {wrappers or 'none'} and LoRA layers outside it; merge them before saving")
    owners = tuple(sorted((t + "." for t in tuners), key=len, reverse=True))
    out = {}
    for key, value in state.items():
        owner = next((p for p in owners if key.startswith(p)), None)
        if owner is not None:
            if not key.startswith(owner + "base_layer."):
                continue  # a LoRA matrix: saved with the adapter
            key = owner + key[len(owner + "base_layer."):]
        if key.startswith(inner):
            key = f"{LLM_PATH}." + key[len(inner):]
        out[key] = value
    return out


def _is_peft_model(module) -> bool:
    if not type(module).__module__.startswith("peft."):
        return False
    from peft import PeftModel

    return isinstance(module, PeftModel)


def _is_tuner_layer(module) -> bool:
    if not type(module).__module__.startswith("peft."):
        return False
    from peft.tuners.tuners_utils import BaseTunerLayer

    return isinstance(module, BaseTunerLayer)
