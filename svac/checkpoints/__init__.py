"""Checkpoints: svac's own format, Sa2VA releases, Meta SAM 2 files, InternVL + SAM 2 composition, LoRA.

Public entry points (imported lazily, so ``import svac.checkpoints`` costs nothing):

* :func:`load_checkpoint` -- what :meth:`svac.SVAC.from_pretrained` runs (svac or Sa2VA folder / Hub id);
* :func:`save_svac` -- what :meth:`svac.SVAC.save_pretrained` runs;
* :func:`compose_from_pretrained` -- an untrained SVAC from InternVL + Meta SAM 2 checkpoints;
* :func:`replace_grounding` -- swap in a Meta SAM 2 / 2.1 checkpoint;
* :func:`add_lora`, :func:`llm_lora_config`, :func:`merge_lora` -- LoRA adapters of the LLM;
* :func:`resolve_checkpoint`, :func:`read_checkpoint_config` -- folders, Hub ids and their configs.

What is svac's here and what is the libraries': folders and Hub downloads are
``huggingface_hub``'s (``snapshot_download``; weights written by ``save_torch_state_dict``), empty
skeletons, tensor placement, tied weights and device maps are accelerate's
(``init_empty_weights``, ``set_module_tensor_to_device``, ``find_tied_parameters`` /
``retie_parameters``, ``infer_auto_device_map``, ``dispatch_model``), adapters are peft's and
tokenizers transformers'. svac keeps what they do not give: every key and shape checked against
the model before any data is read, the Sa2VA / InternVL-chat / InternLM2 key conversions, Meta
SAM 2 ``.pt`` files read with ``weights_only=True``, SAM-2's weights kept float32, and loaded
tensors in fresh aligned storage.

:class:`svac.SVAC` is not a transformers ``PreTrainedModel``: measured by
``eval/pretrained_model_probe.py``, ``from_pretrained`` builds the model under
``torch.device("meta")``, which leaves SAM-2's RoPE tables (plain tensors its ``__init__``
computes) without data, loads a checkpoint with missing or unexpected tensors without an error,
and its configs keep keys their class does not define (``_target_`` ...), which svac's typed
config refuses. accelerate's ``load_checkpoint_in_model`` (``load_checkpoint_and_dispatch``)
maps no keys, leaves loaded tensors as views at the file's byte offsets (not aligned) and a
missing tensor on the meta device without an error, so svac reads the shards itself.
"""

from __future__ import annotations

from svac.lazy_exports import lazy_getattr

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


#: Import the public names on first use (no work at ``import svac.checkpoints``).
__getattr__ = lazy_getattr(__name__, _EXPORTS)
