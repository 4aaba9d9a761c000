"""Segmentation heads: the SVAC head and the classic R-VOS baselines (ReferFormer, LAVT).

A config's ``head`` selects the model class through :data:`HEADS`; every class
has ``from_config(config, tokenizer=None)``, ``from_pretrained(source, ...)``,
``save_pretrained(directory)``, ``segment(video, expression, ...)`` and the
training interface of ``train/finetune.py`` (``configure_training``,
``example_builder``, ``collate_fn``, ``training_objective``). The classes are
imported only when asked for (:func:`head_class`), so importing this package
costs nothing.
"""

from __future__ import annotations

import importlib

from svac.errors import ConfigError

#: Model class of each head, as ``"module:Class"`` (imported on demand by :func:`head_class`).
HEADS: dict[str, str] = {
    "svac": "svac.model:SVAC",
    "referformer": "svac.heads.referformer_rvos:ReferFormerRVOS",
    "lavt": "svac.heads.lavt_rvos:LAVTRVOS",
}


def head_class(name: str) -> type:
    """The model class of head ``name`` (a key of :data:`HEADS`).

    Raises:
        ConfigError: for an unknown head name.
    """
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; known heads: {', '.join(HEADS)}")
    module, _, attribute = HEADS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
