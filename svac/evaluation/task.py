"""What the benchmark runner works on: evaluation items, predictions, and the task interface.

A benchmark is evaluated as a list of independent **items** -- one referring expression on
one video (or image) each, identified by a unique key ``"<video>/<exp_id>"``. The runner
(:mod:`svac.evaluation.runner`) predicts each item once, hands the prediction to the
benchmark's :class:`BenchmarkTask` to write its prediction files and to score it, stores
the item's JSON record, and finally asks the task to merge all records into the
benchmark's numbers. Scoring happens per item (on whichever process predicted it) and the
merge reads records in sorted key order, so a sharded run reproduces a single-process run
exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from svac.video.reader import VideoSource


@dataclass(frozen=True)
class EvalItem:
    """One expression to segment.

    Attributes:
        key: unique id of the item, ``"<video_id>/<exp_id>"``; fixes its place in the sorted order.
        video_id: the video's id in the dataset (may contain ``/``, as in ReVOS).
        exp_id: the expression's id inside the video.
        expression: the referring text.
        open_video: returns the video as a :class:`~svac.video.reader.VideoSource` (frames are
            decoded on demand); prediction files are named after its ``frame_names``.
        sample: the dataset's record of the item (ground truth, metadata), read by the task.
    """

    key: str
    video_id: str
    exp_id: str
    expression: str
    open_video: Callable[[], VideoSource] = field(repr=False, compare=False)
    sample: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one item, reduced to what benchmarks score.

    Attributes:
        masks: ``bool (N, H, W)`` over every frame of the item's video at its original size
            (pixels): the union of the K segmented objects (all False when K = 0).
        score: confidence in [0, 1]: the highest object-presence probability of the K
            objects (0 when K = 0).
        num_objects: K, the number of objects the answer segmented.
        frame_names: the N frame names (prediction files are named after them).
        text: the model's answer text.
        num_visual_tokens: visual tokens the LLM read.
        timings: seconds per stage (:class:`svac.outputs.Timings` as a dict).
    """

    masks: np.ndarray
    score: float
    num_objects: int
    frame_names: tuple[str, ...]
    text: str
    num_visual_tokens: int
    timings: dict[str, float]


@dataclass(frozen=True)
class MergedScores:
    """A benchmark's numbers, computed from every item's record.

    Attributes:
        scores: headline numbers (JSON-ready: floats, ints, nested dicts); ``None`` when the
            split has no ground truth (submit the predictions to the benchmark's server).
        per_item: one row per item (key order) for ``per_item.csv``; columns as the task defines.
        files: names of extra files the merge wrote (e.g. ``{"submission": ".../submission.zip"}``).
        notes: human-readable remarks written into ``metrics.json`` (protocol choices, server hints).
    """

    scores: dict | None
    per_item: list[dict]
    files: dict[str, str]
    notes: list[str]


class BenchmarkTask(ABC):
    """One benchmark split: its items, how predictions are written and scored, and how scores merge.

    Args:
        name: benchmark name (a key of :data:`svac.evaluation.benchmarks.BENCHMARKS`).
        data_root: the dataset root folder.
        split: the split evaluated.

    Attributes:
        items: every item of the split, sorted by key (built by the subclass).
        has_ground_truth: whether the split can be scored locally.
        skipped: descriptions of annotations the reader left out (reported in ``metrics.json``).
    """

    def __init__(self, name: str, data_root: Path, split: str) -> None:
        self.name = name
        self.data_root = data_root
        self.split = split
        self.items: list[EvalItem] = []
        self.has_ground_truth = True
        self.skipped: list[str] = []

    def settings(self) -> dict:
        """Task options that must agree between a run and its resumption (JSON-ready)."""
        return {}

    @abstractmethod
    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Write the item's prediction files under ``predictions_dir`` (replacing a partial earlier attempt)."""

    @abstractmethod
    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """The item's benchmark-specific record (JSON-ready), e.g. its J and F; computed on the predicting process."""

    @abstractmethod
    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """Combine the records of every item (sorted by key) into the benchmark's numbers and files."""
