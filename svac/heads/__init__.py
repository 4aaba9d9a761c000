"""Segmentation heads: the SVAC head and the classic R-VOS baselines (ReferFormer, LAVT).

A config's ``head`` selects the model class through :data:`HEADS`; every class
is a :class:`svac.segmentation_model.SegmentationModel` (``from_config(config, tokenizer=None)``,
``from_pretrained(source, torch_dtype=, device_map=, ...)``, ``save_pretrained(directory)``,
``segment(video, expression, ...)``). How each head trains is the training layer's:
:data:`svac.training.hooks.TRAINING_HOOKS` has one entry per head. The classes are
imported only when asked for (:func:`head_class`), so importing this package
costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from svac.errors import ConfigError

if TYPE_CHECKING:
    from svac.segmentation_model import SegmentationModel


def _svac() -> "type[SegmentationModel]":
    from svac.model import SVAC

    return SVAC


def _referformer() -> "type[SegmentationModel]":
    from svac.heads.referformer_rvos import ReferFormerRVOS

    return ReferFormerRVOS


def _lavt() -> "type[SegmentationModel]":
    from svac.heads.lavt_rvos import LAVTRVOS

    return LAVTRVOS


#: Head name -> a function importing and returning its model class (imported on demand by :func:`head_class`).
HEADS: dict[str, Callable[[], "type[SegmentationModel]"]] = {
    "svac": _svac,
    "referformer": _referformer,
    "lavt": _lavt,
}


def head_class(name: str) -> "type[SegmentationModel]":
    """The model class of head ``name`` (a key of :data:`HEADS`).

    Raises:
        ConfigError: for an unknown head name.
    """
    if name not in HEADS:
        raise ConfigError(f"unknown head {name!r}; known heads: {', '.join(HEADS)}")
    return HEADS[name]()
