"""The one record every dataset reader yields: a referring expression on a video.

Readers for Ref-YouTube-VOS, Ref-DAVIS17, MeViS, ReVOS, RefCOCO and the custom
format all produce :class:`ReferringSample` objects, so training, evaluation
and the synthetic benchmark share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np


#: The ``meta`` key holding the category name of the object a single-object expression names, where the
#: dataset lists categories (Ref-YouTube-VOS's ``meta.json``, the synthetic benchmark's shapes).
CATEGORY_KEY = "object_category"

#: The ``meta`` key holding the phrase an answer restates inside ``<p>...</p>`` for this expression, where the
#: dataset gives one: a description of the named object by what one frame shows (the synthetic benchmark's
#: "the red square" for "the fastest shape"). Training with ``data.answer_phrase: dataset`` teaches the model
#: to name the object it found (:mod:`svac.training.data`); the expression itself is restated otherwise.
ANSWER_PHRASE_KEY = "answer_phrase"


class MaskLoader(Protocol):
    """Loads the ground-truth mask of one expression on chosen frames.

    Called with frame positions (indices into ``ReferringSample.frame_paths``),
    it returns a bool array of shape ``(len(positions), H, W)``: the union of
    the masks of every object the expression refers to, at the frame's
    original resolution (pixels). It raises
    :class:`svac.errors.AnnotationError` naming the file when an annotation
    is missing or its size differs from the frame.
    """

    def __call__(self, positions: Sequence[int]) -> np.ndarray: ...


@dataclass(frozen=True)
class ReferringSample:
    """One referring expression on one video (an image is a one-frame video).

    Attributes:
        dataset: name of the dataset the sample comes from (e.g. ``"mevis"``).
        video_id: the video's folder name in the dataset.
        exp_id: the expression's id inside the video (as in ``meta_expressions.json``).
        expression: the referring text.
        frame_paths: every frame of the video, in temporal order.
        object_ids: ids of the objects the expression refers to; empty when it
            refers to none (allowed only where a dataset has such expressions).
        mask_loader: loads the ground truth; ``None`` for splits without it.
        meta: dataset-specific extras (e.g. ``{"type": "reasoning"}`` for ReVOS; :data:`CATEGORY_KEY`
            for the named object's category).
    """

    dataset: str
    video_id: str
    exp_id: str
    expression: str
    frame_paths: tuple[Path, ...]
    object_ids: tuple[int, ...] = ()
    mask_loader: MaskLoader | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Number of frames of the video (frames)."""
        return len(self.frame_paths)

    @property
    def frame_names(self) -> tuple[str, ...]:
        """Frame file stems, e.g. ``("00000", "00005", ...)``; used to name prediction files."""
        return tuple(p.stem for p in self.frame_paths)

    def load_masks(self, positions: Sequence[int] | None = None) -> np.ndarray:
        """Ground-truth masks as bool ``(n, H, W)`` for ``positions`` (all frames when ``None``).

        Raises:
            ValueError: when the sample has no ground truth.
            svac.errors.AnnotationError: when an annotation file is missing or malformed.
        """
        if self.mask_loader is None:
            raise ValueError(f"{self.dataset}/{self.video_id}/{self.exp_id} has no ground-truth masks")
        if positions is None:
            positions = range(self.num_frames)
        return self.mask_loader(list(positions))
