"""What svac fills into a baseline head's config before it builds the head.

The config tree holds the heads' typed configs (``baseline.referformer``:
:class:`~svac.baseline_config.ReferFormerConfig`, ``baseline.lavt``:
:class:`~svac.baseline_config.LAVTConfig`), checked when the config loads
(:func:`svac.config.from_dict`). :func:`head_config` takes the head's section as it is and
fills in what svac derives itself:

* the text encoder's vocabulary size and special-token ids, from the tokenizer,
  when the encoder is built from scratch (never given in the YAML);
* for a saved checkpoint (``text_encoder`` given): the text encoder is rebuilt
  from the transformers config stored with the weights, and no backbone or
  text-encoder weights are read from elsewhere -- the checkpoint holds them all.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Mapping

from svac.baseline_config import LAVTConfig, ReferFormerConfig
from svac.config_values import check_library_kwargs, library_config_fields
from svac.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from svac.config import SVACConfig

#: ``LAVTConfig`` fields that give the shape of a BERT built from scratch, by ``BertConfig`` name.
LAVT_TEXT_FIELDS = {
    "hidden_size": "text_hidden_size",
    "num_hidden_layers": "text_num_layers",
    "num_attention_heads": "text_num_heads",
    "intermediate_size": "text_intermediate_size",
    "vocab_size": "text_vocab_size",
    "max_position_embeddings": "text_max_positions",
}
#: Where a stored text-encoder config comes from, named in error messages.
STORED_TEXT_CONFIG = "the checkpoint's text_encoder.json"


def text_encoder_from_scratch(config: "SVACConfig") -> bool:
    """Whether the head's text encoder is randomly initialised (not loaded from a pretrained checkpoint).

    ReferFormer: ``text_encoder_init_config`` is set; LAVT: ``text_encoder_path`` is unset.

    Raises:
        ConfigError: when ``config.head`` is not a baseline head.
    """
    section = _section(config)
    if isinstance(section, ReferFormerConfig):
        return section.text_encoder_init_config is not None
    return section.text_encoder_path is None


def pretrained_text_encoder(config: "SVACConfig") -> tuple[str, bool]:
    """``(name or folder, local_files_only)`` of the pretrained text encoder of a baseline config.

    Raises:
        ConfigError: when ``config.head`` is not a baseline head.
    """
    section = _section(config)
    if isinstance(section, ReferFormerConfig):
        return section.text_encoder, section.local_files_only
    return str(section.text_encoder_path), True


def head_config(config: "SVACConfig", *, tokenizer: "PreTrainedTokenizerBase | None" = None,
                text_encoder: Mapping[str, Any] | None = None) -> ReferFormerConfig | LAVTConfig:
    """The config the head of ``config.head`` is built from: ``config.baseline.<head>`` completed.

    Args:
        config: a config whose ``head`` is ``referformer`` or ``lavt``.
        tokenizer: the model's text tokenizer; when the text encoder is built from scratch its
            vocabulary size (and, for RoBERTa, its pad / bos / eos ids) are taken from it.
        text_encoder: the stored transformers config (``to_dict()``) of a saved model's text
            encoder: the encoder is then built from it with random weights and backbone weights
            are not loaded (a checkpoint's own tensors are loaded afterwards).

    Raises:
        ConfigError: when ``config.head`` is not a baseline head, or the stored text-encoder
            config holds values that are not plain data or not sizes >= 1 (naming the file).
    """
    section = _section(config)
    if isinstance(section, ReferFormerConfig):
        changes = _referformer_text(section, tokenizer, text_encoder)
    else:
        changes = _lavt_text(section, tokenizer, text_encoder)
    try:
        return dataclasses.replace(section, **changes)
    except ConfigError as exc:
        raise ConfigError(f"baseline.{config.head}: {exc}") from exc


def _section(config: "SVACConfig") -> ReferFormerConfig | LAVTConfig:
    if config.head == "referformer" and config.baseline.referformer is not None:
        return config.baseline.referformer
    if config.head == "lavt" and config.baseline.lavt is not None:
        return config.baseline.lavt
    raise ConfigError(f"head {config.head!r} is not a baseline head with a baseline.{config.head} section "
                      "(referformer, lavt)")


def _referformer_text(section: ReferFormerConfig, tokenizer, text_encoder) -> dict[str, Any]:
    """The fields of a ReferFormer config svac fills in (see :func:`head_config`)."""
    if text_encoder is not None:
        allowed = library_config_fields(section.text_config_class())
        stored = {k: v for k, v in text_encoder.items() if k in allowed}  # the rest is bookkeeping (id2label ...)
        check_library_kwargs(STORED_TEXT_CONFIG, stored, allowed)
        return {"text_encoder_init_config": stored, "backbone_weights": None}
    if section.text_encoder_init_config is None or tokenizer is None:
        return {}
    init = dict(section.text_encoder_init_config, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    for name in ("bos_token_id", "eos_token_id"):
        if getattr(tokenizer, name, None) is not None:
            init[name] = getattr(tokenizer, name)
    return {"text_encoder_init_config": init}


def _lavt_text(section: LAVTConfig, tokenizer, text_encoder) -> dict[str, Any]:
    """The fields of a LAVT config svac fills in (see :func:`head_config`)."""
    if text_encoder is not None:
        stored = {field: text_encoder.get(key) for key, field in LAVT_TEXT_FIELDS.items()}
        bad = sorted(k for k, v in stored.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1)
        if bad:
            raise ConfigError(f"{STORED_TEXT_CONFIG}: {', '.join(bad)} must be integers >= 1, got "
                              f"{', '.join(repr(stored[k]) for k in bad)}")
        return {"text_encoder_path": None, "backbone_weights": None, **stored}
    if tokenizer is not None and section.text_encoder_path is None:
        return {"text_vocab_size": len(tokenizer)}
    return {}
