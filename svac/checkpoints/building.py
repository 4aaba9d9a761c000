"""Building an SVAC skeleton for a checkpoint: its tokenizer, and its parts with empty weights.

The skeleton is what :meth:`svac.SVAC.from_config` builds, except that the tokenizer
comes from the checkpoint, the embedding table has the checkpoint's number of rows,
and every parameter is on the ``meta`` device until the weights are loaded into it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from svac.config import SVACConfig
from svac.errors import CheckpointError

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedTokenizerBase

    from svac.model import SVAC


def load_tokenizer(source: str | Path, *, model_name: str) -> "PreTrainedTokenizerBase":
    """Load a checkpoint's tokenizer without running remote code, and make sure it holds svac's tokens.

    Args:
        source: a folder with tokenizer files (``tokenizer.json``, ``tokenizer_config.json``,
            ``added_tokens.json`` ...).
        model_name: the checkpoint's name, for error messages.

    Returns:
        The tokenizer, with ``[SEG]``, ``<p>`` ... and InternVL's image tokens added when missing
        (:func:`svac.mllm.tokenizer.add_svac_tokens`; the caller checks the embedding rows).

    Raises:
        CheckpointError: when transformers cannot load the tokenizer without remote code
            (e.g. InternLM2's ``InternLM2Tokenizer`` when the folder has no ``tokenizer.json``);
            pass a tokenizer folder that transformers reads natively instead.
    """
    from transformers import AutoTokenizer, PreTrainedConfig

    from svac.mllm.tokenizer import add_svac_tokens

    try:
        # A blank model config: the folder's config.json is a Sa2VA / svac config (not a transformers one,
        # and Sa2VA's names remote code), so the tokenizer class comes from tokenizer_config.json only.
        tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=False, config=PreTrainedConfig())
    except (ValueError, OSError, KeyError, TypeError, ImportError, AttributeError) as exc:
        raise CheckpointError(
            f"{model_name}: cannot load the tokenizer in {source} without running remote code ({exc}). "
            "svac never runs a checkpoint's code: pass tokenizer=<folder of a tokenizer transformers reads "
            "natively (tokenizer.json)>") from exc
    add_svac_tokens(tokenizer)
    return tokenizer


def build_skeleton(config: SVACConfig, tokenizer: "PreTrainedTokenizerBase", *, model_class: "type[SVAC]",
                   vocab_size: int, grounding: "nn.Module | None" = None,
                   text_hidden_fcs: "nn.Module | None" = None) -> "SVAC":
    """A ``model_class`` model (:class:`~svac.SVAC`) for ``config``, parameters on ``meta`` (see :func:`empty_model`).

    Args:
        config: the model's configuration (``config.sam2.checkpoint`` is not loaded here).
        model_class: the class to build (:class:`svac.SVAC` or a subclass), handed in by its
            ``from_pretrained`` so that loading never imports the model module.
        tokenizer: the checkpoint's tokenizer (with svac's tokens).
        vocab_size: rows of the LLM's embedding table, as stored in the checkpoint.
        grounding, text_hidden_fcs: parts built beforehand with real weights (a Meta SAM 2
            checkpoint, a freshly initialised projector); the others are empty.

    Raises:
        CheckpointError: when the tokenizer has more tokens than the embedding table has rows.
        svac.errors.ConfigError: when the parts disagree (see :class:`svac.SVAC`).
    """
    from svac.checkpoints.materialize import empty_model
    from svac.grounding.memory_tracker import build_memory_tracker
    from svac.grounding.sam2_model import build_sam2_model
    from svac.mllm.internvl import build_internvl
    from svac.mllm.tokenizer import token_id
    from svac.mllm.tokens import IMG_CONTEXT
    from svac.seg_projector import build_text_hidden_fcs
    from svac.span_prompt import build_span_prompt

    if len(tokenizer) > vocab_size:
        raise CheckpointError(f"the tokenizer has {len(tokenizer)} tokens but the checkpoint's embedding table only "
                              f"{vocab_size} rows (tokens missing from the checkpoint's tokenizer had to be added)")

    def build() -> "SVAC":
        mllm = build_internvl(config.mllm, vocab_size=vocab_size, image_token_id=token_id(tokenizer, IMG_CONTEXT),
                              pad_token_id=tokenizer.pad_token_id)
        sam2 = grounding if grounding is not None else build_sam2_model(dataclasses.replace(config.sam2, checkpoint=None))
        fcs = text_hidden_fcs if text_hidden_fcs is not None else build_text_hidden_fcs(
            mllm.config.text_config.hidden_size, sam2.hidden_dim)
        span = build_span_prompt(config.seg_prompt, mllm.config.text_config.hidden_size, sam2.hidden_dim)
        tracker = build_memory_tracker(config.sam2) if config.sam2.memory_tracker else None
        return model_class(config, mllm=mllm, tokenizer=tokenizer, grounding=sam2, text_hidden_fcs=fcs,
                           span_prompt=span, memory_tracker=tracker)

    return empty_model(build)
