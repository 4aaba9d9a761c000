"""Checkpoints: svac's own format, Sa2VA releases, Meta SAM 2 files, InternVL + SAM 2 composition, LoRA.

Public entry points (imported lazily, so ``import svac.checkpoints`` costs nothing):

* :func:`load_checkpoint` -- what :meth:`svac.SVAC.from_pretrained` runs (svac or Sa2VA folder / Hub id);
* :func:`save_svac` -- what :meth:`svac.SVAC.save_pretrained` runs;
* :func:`compose_from_pretrained` -- an untrained SVAC from InternVL + Meta SAM 2 checkpoints;
* :func:`replace_grounding` -- swap in a Meta SAM 2 / 2.1 checkpoint;
* :func:`add_lora`, :func:`llm_lora_config`, :func:`merge_lora` -- LoRA adapters of the LLM;
* :func:`resolve_checkpoint`, :func:`read_checkpoint_config` -- folders, Hub ids and their configs.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_checkpoint": "svac.checkpoints.loader",
    "read_checkpoint_config": "svac.checkpoints.loader",
    "LoadedModel": "svac.checkpoints.loader",
    "LoadReport": "svac.checkpoints.materialize",
    "save_svac": "svac.checkpoints.svac_format",
    "SavedCheckpoint": "svac.checkpoints.svac_format",
    "compose_from_pretrained": "svac.checkpoints.compose",
    "replace_grounding": "svac.checkpoints.sam2_meta",
    "sam2_config_for": "svac.checkpoints.sam2_meta",
    "add_lora": "svac.checkpoints.lora",
    "llm_lora_config": "svac.checkpoints.lora",
    "merge_lora": "svac.checkpoints.lora",
    "load_adapter": "svac.checkpoints.lora",
    "resolve_checkpoint": "svac.checkpoints.hub",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import the public names on first use (no work at ``import svac.checkpoints``)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'svac.checkpoints' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
