"""Loading and saving live in the base class: :class:`PretrainedMixin` gives :class:`svac.SVAC` its
``from_pretrained`` and ``save_pretrained`` (as transformers' ``PreTrainedModel`` does for its models).

The model module holds the model only; this mixin hands the class it is called on (``cls``) to
the loaders in :mod:`svac.checkpoints`, which therefore never import :mod:`svac.model` (no import
cycle between the model and its loading, not even inside functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import torch

    from svac.checkpoints.svac_format import SavedCheckpoint


class PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` in svac's checkpoint format, for a class built like :class:`svac.SVAC`.

    The class must take ``(config, *, mllm, tokenizer, grounding, text_hidden_fcs)`` (what
    :func:`svac.checkpoints.building.build_skeleton` builds) and be an ``nn.Module``.
    """

    @classmethod
    def from_pretrained(cls, source, *, torch_dtype: "torch.dtype | str | None" = None, device_map: Any = None,
                        overrides: Sequence[str] = (), revision: str | None = None, cache_dir=None,
                        local_files_only: bool = False, load_in_8bit: bool = False, load_in_4bit: bool = False,
                        quantization_config=None, load_adapter: bool = True, tokenizer=None, sam2_checkpoint=None):
        """Load a model saved by :meth:`save_pretrained`, or a Sa2VA release, from a folder or Hub id.

        Loading never runs code from the checkpoint and never unpickles: weights are read from
        safetensors shard by shard into an empty model, strictly (any missing, unexpected or
        mis-shaped tensor raises an error listing them). A Sa2VA checkpoint
        (``ByteDance/Sa2VA-1B`` ...) is mapped onto transformers' InternVL and the ``sam2``
        package and loads in Sa2VA's pipeline (``pipeline="sa2va"``, :mod:`svac.sa2va_pipeline`).

        Args:
            source: a checkpoint folder or a Hugging Face Hub id.
            torch_dtype: ``bfloat16``/``float16``/``float32`` (or a ``torch.dtype``); ``None``:
                the config's ``inference.dtype``.
            device_map: ``None`` (CPU), a device, ``{module prefix: device}`` or ``"auto"``.
            overrides: ``key.sub=value`` config overrides (``csa.mode=per_clip`` ...).
            revision, cache_dir, local_files_only: Hugging Face Hub options.
            load_in_8bit, load_in_4bit, quantization_config: bitsandbytes LLM quantization (CUDA).
            load_adapter: load the LoRA adapter saved in ``adapter/``.
            tokenizer: a tokenizer folder replacing the checkpoint's.
            sam2_checkpoint: a Meta SAM 2 ``.pt`` replacing the checkpoint's SAM 2.

        Returns:
            The model (an instance of ``cls``) in eval mode.

        Raises:
            svac.errors.CheckpointError: see :func:`svac.checkpoints.loader.load_checkpoint`.
        """
        from svac.checkpoints.loader import load_checkpoint

        return load_checkpoint(source, model_class=cls, torch_dtype=torch_dtype, device_map=device_map,
                               overrides=overrides, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, load_in_8bit=load_in_8bit,
                               load_in_4bit=load_in_4bit, quantization_config=quantization_config,
                               load_adapter=load_adapter, tokenizer=tokenizer, sam2_checkpoint=sam2_checkpoint).model

    def save_pretrained(self, directory, *, max_shard_size: int | None = None,
                        overwrite: bool = False, weights_dtype: "torch.dtype | None" = None) -> "SavedCheckpoint":
        """Save the model in svac's format: ``config.json``, sharded safetensors, tokenizer, ``adapter/``.

        Args:
            directory: the folder to create (written atomically).
            max_shard_size: largest weight shard in bytes (default 2 GiB).
            overwrite: replace an existing non-empty folder.
            weights_dtype: store the floating-point weights in this dtype (e.g. ``torch.float16``);
                ``None``: as they are (:func:`svac.checkpoints.svac_format.save_svac`).

        Returns:
            A :class:`svac.checkpoints.svac_format.SavedCheckpoint`.

        Raises:
            svac.errors.OutputExistsError: when the folder holds files and ``overwrite`` is false.
            svac.errors.CheckpointError: see :func:`svac.checkpoints.svac_format.save_svac`.
        """
        from svac.checkpoints.shards import DEFAULT_MAX_SHARD_BYTES
        from svac.checkpoints.svac_format import save_svac

        size = DEFAULT_MAX_SHARD_BYTES if max_shard_size is None else max_shard_size
        return save_svac(self, directory, max_shard_bytes=size, overwrite=overwrite, weights_dtype=weights_dtype)
