"""From ``SVACConfig.baseline`` to the typed configs of the baseline heads.

``baseline.referformer`` holds keyword arguments of
:class:`svac.heads.referformer.ReferFormerConfig` and ``baseline.lavt`` those of
:class:`svac.heads.lavt.LAVTConfig`. :func:`head_config` builds the head's
config, validating every key (errors name ``baseline.<head>.<key>``), and fills
in what svac derives itself:

* the text encoder's vocabulary size and special-token ids, from the tokenizer,
  when the encoder is built from scratch (never given in the YAML);
* for a saved checkpoint (``text_encoder`` given): the text encoder is rebuilt
  from the transformers config stored with the weights, and no backbone or
  text-encoder weights are read from elsewhere -- the checkpoint holds them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from svac.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from svac.config import BaselineConfig, SVACConfig
    from svac.heads.lavt import LAVTConfig
    from svac.heads.referformer import ReferFormerConfig

#: ``LAVTConfig`` fields that give the shape of a BERT built from scratch, by ``BertConfig`` name.
LAVT_TEXT_FIELDS = {
    "hidden_size": "text_hidden_size",
    "num_hidden_layers": "text_num_layers",
    "num_attention_heads": "text_num_heads",
    "intermediate_size": "text_intermediate_size",
    "vocab_size": "text_vocab_size",
    "max_position_embeddings": "text_max_positions",
}


def text_encoder_from_scratch(config: "SVACConfig") -> bool:
    """Whether the head's text encoder is randomly initialised (not loaded from a pretrained checkpoint).

    ReferFormer: ``text_encoder_init_config`` is set; LAVT: ``text_encoder_path`` is unset.

    Raises:
        ConfigError: when ``config.head`` is not a baseline head.
    """
    if config.head == "referformer":
        return config.baseline.referformer.get("text_encoder_init_config") is not None
    if config.head == "lavt":
        return config.baseline.lavt.get("text_encoder_path") is None
    raise ConfigError(f"head {config.head!r} is not a baseline head (referformer, lavt)")


def pretrained_text_encoder(config: "SVACConfig") -> tuple[str, bool]:
    """``(name or folder, local_files_only)`` of the pretrained text encoder of a baseline config."""
    if config.head == "referformer":
        section = config.baseline.referformer
        return str(section.get("text_encoder", "FacebookAI/roberta-base")), bool(section.get("local_files_only", True))
    return str(config.baseline.lavt["text_encoder_path"]), True


def head_config(config: "SVACConfig", *, tokenizer: "PreTrainedTokenizerBase | None" = None,
                text_encoder: Mapping[str, Any] | None = None) -> "ReferFormerConfig | LAVTConfig":
    """The typed head config of ``config.baseline.<config.head>``.

    Args:
        config: a config whose ``head`` is ``referformer`` or ``lavt``.
        tokenizer: the model's text tokenizer; when the text encoder is built from scratch its
            vocabulary size (and, for RoBERTa, its pad / bos / eos ids) are taken from it.
        text_encoder: the stored transformers config (``to_dict()``) of a saved model's text
            encoder: the encoder is then built from it with random weights and backbone weights
            are not loaded (a checkpoint's own tensors are loaded afterwards).

    Raises:
        ConfigError: on an unknown key or an invalid value, the message naming ``baseline.<head>``.
    """
    if config.head == "referformer":
        return _referformer(config.baseline.referformer, tokenizer, text_encoder)
    if config.head == "lavt":
        return _lavt(config.baseline.lavt, tokenizer, text_encoder)
    raise ConfigError(f"head {config.head!r} is not a baseline head (referformer, lavt)")


def check_baseline_section(baseline: "BaselineConfig", head: str) -> None:
    """Validate ``baseline.<head>`` (keys, value types and ranges) without building anything.

    Raises:
        ConfigError: naming ``baseline.<head>.<key>``.
    """
    if head == "referformer":
        _referformer(baseline.referformer, None, None)
    elif head == "lavt":
        _lavt(baseline.lavt, None, None)
    else:
        raise ConfigError(f"head {head!r} is not a baseline head (referformer, lavt)")


def _referformer(section: Mapping[str, Any], tokenizer, text_encoder) -> "ReferFormerConfig":
    from svac.heads.referformer.config import ReferFormerConfig

    kwargs = _checked_kwargs(ReferFormerConfig, section, "baseline.referformer")
    family = kwargs.get("text_encoder_family", "roberta")
    if text_encoder is not None:
        kwargs["text_encoder_init_config"] = _text_config_kwargs(family, text_encoder, stored=True)
        kwargs["backbone_weights"] = None
    elif kwargs.get("text_encoder_init_config") is not None:
        init = _text_config_kwargs(family, kwargs["text_encoder_init_config"], stored=False)
        if tokenizer is not None:
            init.update(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
            for name in ("bos_token_id", "eos_token_id"):
                if getattr(tokenizer, name, None) is not None:
                    init[name] = getattr(tokenizer, name)
        kwargs["text_encoder_init_config"] = init
    try:
        return ReferFormerConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"baseline.referformer: {exc}") from exc


def _text_config_kwargs(family: str, data: Mapping[str, Any], *, stored: bool) -> dict[str, Any]:
    """Keyword arguments of the text encoder's transformers config (``RobertaConfig`` / ``BertConfig``).

    A config given in the YAML (``text_encoder_init_config``) may hold only that class's own fields; a
    config stored in a checkpoint (``text_encoder.json``, the class's ``to_dict()``) keeps only them
    (the rest is bookkeeping: ``architectures``, ``id2label`` ...). Values must be plain data.

    Raises:
        ConfigError: naming ``baseline.referformer.text_encoder_init_config.<key>``.
    """
    from transformers import BertConfig, RobertaConfig

    from svac.config import check_library_kwargs, library_config_fields

    allowed = library_config_fields({"roberta": RobertaConfig, "bert": BertConfig}[family])
    where = "baseline.referformer.text_encoder_init_config"
    if stored:
        where = "the checkpoint's text_encoder.json"
        data = {k: v for k, v in data.items() if k in allowed}
    init = dict(data)
    check_library_kwargs(where, init, allowed)
    return init


def _lavt(section: Mapping[str, Any], tokenizer, text_encoder) -> "LAVTConfig":
    from svac.heads.lavt.config import LAVTConfig

    kwargs = _checked_kwargs(LAVTConfig, section, "baseline.lavt")
    if text_encoder is not None:
        kwargs["text_encoder_path"] = None
        kwargs["backbone_weights"] = None
        stored = {field: text_encoder.get(key) for key, field in LAVT_TEXT_FIELDS.items()}
        bad = sorted(k for k, v in stored.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1)
        if bad:
            raise ConfigError(f"the checkpoint's text_encoder.json: {', '.join(bad)} must be integers >= 1, got "
                              f"{', '.join(repr(stored[k]) for k in bad)}")
        kwargs.update(stored)
    elif tokenizer is not None and kwargs.get("text_encoder_path") is None:
        kwargs["text_vocab_size"] = len(tokenizer)
    try:
        return LAVTConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"baseline.lavt: {exc}") from exc


def _checked_kwargs(cls: type, section: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``section`` as keyword arguments of dataclass ``cls``: unknown keys refused and every value checked
    against the field's type (lists become tuples), each error naming ``where.<key>``."""
    from svac.config import typed_kwargs

    return typed_kwargs(cls, dict(section), where=where)
