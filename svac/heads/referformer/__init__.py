"""ReferFormer baseline head with the SgMg / MGRVOS options.

ReferFormer: Wu et al., "Language as Queries for Referring Video Object
Segmentation", CVPR 2022. SgMg: Miao et al., "Spectrum-guided
Multi-granularity Referring Video Object Segmentation", ICCV 2023.

Public API:

* :class:`ReferFormerConfig` — sizes and switches (``fusion``, ``kernel``, ``loss``).
* :class:`ReferFormer` — ``forward(frames, input_ids, attention_mask) -> ReferFormerOutput``
  and ``predict(...) -> ReferFormerPrediction``.
* :class:`ReferFormerCriterion` with :class:`ReferFormerTarget` — training losses.
* :class:`HungarianSequenceMatcher` — instance sequence matching.
* :func:`masks_to_boxes_normalized`, :func:`postprocess`.

Written from the papers; no code of the authors' repositories is used.
"""

from __future__ import annotations

from svac.baseline_config import ReferFormerConfig
from .criterion import ReferFormerCriterion, ReferFormerTarget
from .losses import masks_to_boxes_normalized
from .matcher import HungarianSequenceMatcher, SequenceMatch
from .model import ReferFormer
from .outputs import ReferFormerLayerOutput, ReferFormerOutput, ReferFormerPrediction
from .postprocess import postprocess, select_referred_query

__all__ = [
    "HungarianSequenceMatcher",
    "ReferFormer",
    "ReferFormerConfig",
    "ReferFormerCriterion",
    "ReferFormerLayerOutput",
    "ReferFormerOutput",
    "ReferFormerPrediction",
    "ReferFormerTarget",
    "SequenceMatch",
    "masks_to_boxes_normalized",
    "postprocess",
    "select_referred_query",
]
