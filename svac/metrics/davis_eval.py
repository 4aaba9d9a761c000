"""Evaluate DAVIS-style result folders: per-frame J and F, per-object statistics, global scores.

Folder layout (the DAVIS benchmark's): ``<gt_dir>/<sequence>/<frame>.png`` and
``<pred_dir>/<sequence>/<frame>.png``, the same frame names in both.

Mask formats:

* **binary** (DAVIS-2016): one object per sequence; any non-zero pixel is
  foreground, in the ground truth and in the prediction (PNG modes ``1``,
  ``L``). There is no void label. Result rows are named ``<sequence>``.
* **indexed** (DAVIS-2017 palette PNGs): pixel values are object ids, 0 is
  background and, in the ground truth, 255 is void (excluded from J and F).
  The objects of a sequence are the ids ``1 .. max`` of its first ground-truth
  frame (the official DAVIS-2017 rule). Prediction values are object ids too.
  Result rows are named ``<sequence>_<id>``.
* **auto** (default): indexed when the first ground-truth PNG of a sequence
  has palette mode ``P``, binary when it has mode ``1`` or ``L``.

Protocols:

* **semi** (semi-supervised, DAVIS-2016 and DAVIS-2017): the first and the
  last frame of every sequence are not evaluated (the first is given as
  input; the official code drops both). Prediction object ``k`` is scored
  against ground-truth object ``k``; a prediction with an id above the
  number of ground-truth objects is an error.
* **unsupervised** (DAVIS-2017 unsupervised, also used for Ref-DAVIS17): all
  frames are evaluated, as in the official code. Prediction ids are
  proposals (at most ``max_proposals``, 20 in the official code); missing
  proposals are padded with empty masks; each ground-truth object is matched
  to one proposal by the Hungarian assignment
  (``scipy.optimize.linear_sum_assignment``) maximising the mean over frames
  of ``(J + F) / 2``. Rows are reported per ground-truth object with the
  scores of its matched proposal.

Global scores (DAVIS-2017 convention): J-Mean, J-Recall, J-Decay, F-Mean,
F-Recall and F-Decay are means over all objects of all sequences of the
per-object statistics; ``J&F-Mean = (J-Mean + F-Mean) / 2``.

Sources: Perazzi et al., CVPR 2016 (DAVIS-2016 measures and protocol);
Pont-Tuset et al., "The 2017 DAVIS Challenge on Video Object Segmentation",
arXiv:1704.00675 (multi-object, void label); Caelles et al., "The 2019 DAVIS
Challenge on VOS: Unsupervised Multi-Object Segmentation", arXiv:1905.00737
(unsupervised matching).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.optimize import linear_sum_assignment

from svac.errors import AnnotationError, ConfigError
from svac.metrics.davis import (
    DAVIS_BOUNDARY_TOLERANCE,
    boundary_f_measure,
    boundary_map,
    boundary_radius,
    region_similarity,
)
from svac.metrics.output import refuse_existing, write_texts_atomic
from svac.metrics.stats import SequenceStatistics, mean_recall_decay
from svac.metrics.validation import MetricInputError, check_bool_masks, check_same_shape

Protocol = Literal["semi", "unsupervised"]
MaskFormat = Literal["auto", "binary", "indexed"]

PROTOCOLS: tuple[str, ...] = ("semi", "unsupervised")
MASK_FORMATS: tuple[str, ...] = ("auto", "binary", "indexed")

VOID_LABEL = 255
"""Ground-truth value of void pixels in indexed (DAVIS-2017) masks."""

MAX_PROPOSALS = 20
"""Most object proposals per sequence the official DAVIS-2017 unsupervised evaluation accepts."""

MASK_SUFFIX = ".png"
PER_FRAME_CSV = "per_frame.csv"
PER_SEQUENCE_CSV = "per_sequence.csv"
GLOBAL_JSON = "global.json"
PER_FRAME_COLUMNS: tuple[str, ...] = ("method", "sequence", "frame", "J", "F")
PER_SEQUENCE_COLUMNS: tuple[str, ...] = (
    "method",
    "sequence",
    "n_frames",
    "J_mean",
    "J_recall",
    "J_decay",
    "F_mean",
    "F_recall",
    "F_decay",
)

_BINARY_MODES = ("1", "L")
_INDEXED_MODES = ("P",)
_LABEL_MODES = ("1", "L", "P")
_SEMI_DROPPED_FRAMES = 2  # the first and the last frame


@dataclass(frozen=True)
class FrameScore:
    """J and F of one object on one frame.

    Attributes:
        method: name of the evaluated method.
        sequence: row name: the sequence, or ``<sequence>_<object id>`` for indexed masks.
        frame: frame file stem, e.g. ``"00001"``.
        j: region similarity in [0, 1].
        f: contour accuracy in [0, 1].
    """

    method: str
    sequence: str
    frame: str
    j: float
    f: float


@dataclass(frozen=True)
class ObjectScore:
    """Statistics of one ground-truth object over the evaluated frames of its sequence.

    Attributes:
        method: name of the evaluated method.
        sequence: row name (as in :class:`FrameScore`).
        video: the sequence folder name.
        object_id: ground-truth object id (``None`` for binary masks).
        n_frames: number of evaluated frames.
        j: mean / recall / decay of J.
        f: mean / recall / decay of F.
        proposal_id: unsupervised protocol only: the matched prediction id,
            or ``None`` when the object was matched to an empty padding proposal.
    """

    method: str
    sequence: str
    video: str
    object_id: int | None
    n_frames: int
    j: SequenceStatistics
    f: SequenceStatistics
    proposal_id: int | None = None


@dataclass(frozen=True)
class DavisGlobalScores:
    """Dataset-level DAVIS scores: means over all objects (unitless, in [0, 1]; decays in [-1, 1]).

    Attributes:
        jf_mean: ``(j_mean + f_mean) / 2`` ("J&F-Mean").
        j_mean, j_recall, j_decay: means over objects of the per-object J statistics.
        f_mean, f_recall, f_decay: the same for F.
        n_objects: number of objects averaged.
    """

    jf_mean: float
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float
    n_objects: int


@dataclass(frozen=True)
class DavisOutputFiles:
    """Paths of the files :func:`evaluate_davis_folders` wrote."""

    per_frame: Path
    per_sequence: Path
    global_json: Path


@dataclass(frozen=True)
class DavisEvaluation:
    """Result of :func:`evaluate_davis_folders`.

    Attributes:
        method: name of the evaluated method.
        protocol: ``"semi"`` or ``"unsupervised"``.
        per_frame: one entry per object and evaluated frame, in sequence, object, frame order.
        per_object: one entry per ground-truth object.
        global_scores: the dataset-level scores.
        files: the written files, or ``None`` when no output folder was given.
    """

    method: str
    protocol: str
    per_frame: tuple[FrameScore, ...]
    per_object: tuple[ObjectScore, ...]
    global_scores: DavisGlobalScores
    files: DavisOutputFiles | None


@dataclass(frozen=True)
class SequenceScores:
    """Per-frame scores of the K ground-truth objects of one sequence.

    Attributes:
        j: float64 ``(K, T)``, region similarity per object and evaluated frame.
        f: float64 ``(K, T)``, contour accuracy.
        proposal_index: unsupervised protocol: for each object, the 0-based
            index of the matched proposal, or ``None`` for an empty padding
            proposal; semi-supervised: ``k`` for object ``k``.
    """

    j: np.ndarray
    f: np.ndarray
    proposal_index: tuple[int | None, ...]


def score_semi_supervised(
    gt: np.ndarray,
    pred: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> SequenceScores:
    """J and F of prediction object k against ground-truth object k, on every given frame.

    The caller chooses the frames (the semi-supervised protocol drops the first
    and the last frame of the sequence before calling).

    Args:
        gt: bool ``(K, T, H, W)``, one mask stack per ground-truth object.
        pred: bool ``(K, T, H, W)``, the predicted stack of each object (empty where absent).
        void: optional bool ``(T, H, W)``; void pixels are excluded.
        tolerance: boundary tolerance as a fraction of the image diagonal.

    Returns:
        :class:`SequenceScores` with ``j`` and ``f`` of shape ``(K, T)``.

    Raises:
        MetricInputError: on non-bool input or shapes that differ.
    """
    check_bool_masks("gt", gt, ndims=(4,))
    check_bool_masks("pred", pred, ndims=(4,))
    check_same_shape(gt=gt, pred=pred)
    _check_void(void, gt)
    num_objects, num_frames = gt.shape[:2]
    j = np.empty((num_objects, num_frames))
    f = np.empty((num_objects, num_frames))
    radius = boundary_radius(*gt.shape[-2:], tolerance)
    for k in range(num_objects):
        j[k] = region_similarity(pred[k], gt[k], void)
        f[k] = boundary_f_measure(_void_boundary(pred[k], void), _void_boundary(gt[k], void), radius)
    return SequenceScores(j=j, f=f, proposal_index=tuple(range(num_objects)))


def score_unsupervised(
    gt: np.ndarray,
    proposals: np.ndarray,
    void: np.ndarray | None = None,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
    max_proposals: int = MAX_PROPOSALS,
) -> SequenceScores:
    """Match proposals to ground-truth objects (Hungarian on mean (J+F)/2) and score the matches.

    Args:
        gt: bool ``(K, T, H, W)``, one mask stack per ground-truth object.
        proposals: bool ``(P, T, H, W)``, one stack per predicted object; when
            P < K, empty proposals are added so that every object is matched.
        void: optional bool ``(T, H, W)``; void pixels are excluded.
        tolerance: boundary tolerance as a fraction of the image diagonal.
        max_proposals: largest accepted P (20 in the official code).

    Returns:
        :class:`SequenceScores`: ``j`` and ``f`` ``(K, T)`` of each object's
        matched proposal, and the matched proposal indices.

    Raises:
        MetricInputError: on non-bool input, shapes that differ (besides the
            first axis), or more than ``max_proposals`` proposals.
    """
    check_bool_masks("gt", gt, ndims=(4,))
    check_bool_masks("proposals", proposals, ndims=(4,))
    if proposals.shape[1:] != gt.shape[1:]:
        raise MetricInputError(
            f"mask sizes differ: gt {gt.shape}, proposals {proposals.shape}; frames and sizes must match"
        )
    _check_void(void, gt)
    num_proposals = proposals.shape[0]
    if num_proposals > max_proposals:
        raise MetricInputError(
            f"{num_proposals} proposals exceed the unsupervised limit of {max_proposals} per sequence"
        )
    num_objects, num_frames = gt.shape[:2]
    if num_proposals < num_objects:
        padding = np.zeros((num_objects - num_proposals, *gt.shape[1:]), dtype=bool)
        proposals = np.concatenate([proposals, padding], axis=0)
    radius = boundary_radius(*gt.shape[-2:], tolerance)
    gt_boundaries = [_void_boundary(gt[k], void) for k in range(num_objects)]
    # Rows are proposals and columns objects, the orientation of the official code,
    # so ties in the assignment resolve the same way.
    j_all = np.empty((proposals.shape[0], num_objects, num_frames))
    f_all = np.empty_like(j_all)
    for p in range(proposals.shape[0]):
        proposal_boundary = _void_boundary(proposals[p], void)
        for k in range(num_objects):
            j_all[p, k] = region_similarity(proposals[p], gt[k], void)
            f_all[p, k] = boundary_f_measure(proposal_boundary, gt_boundaries[k], radius)
    match_score = (j_all.mean(axis=2) + f_all.mean(axis=2)) / 2
    rows, cols = linear_sum_assignment(-match_score)
    proposal_of_object = dict(zip(cols.tolist(), rows.tolist()))
    chosen = [proposal_of_object[k] for k in range(num_objects)]
    return SequenceScores(
        j=np.stack([j_all[p, k] for k, p in enumerate(chosen)]) if num_objects else np.empty((0, num_frames)),
        f=np.stack([f_all[p, k] for k, p in enumerate(chosen)]) if num_objects else np.empty((0, num_frames)),
        proposal_index=tuple(p if p < num_proposals else None for p in chosen),
    )


def global_scores(per_object: Sequence[ObjectScore]) -> DavisGlobalScores:
    """Dataset-level DAVIS scores: means over objects, and J&F-Mean = (J-Mean + F-Mean) / 2.

    Raises:
        MetricInputError: when ``per_object`` is empty.
    """
    if not per_object:
        raise MetricInputError("no objects were evaluated; global scores need at least one")

    def average(values: list[float]) -> float:
        return float(np.mean(values))

    j_mean = average([o.j.mean for o in per_object])
    f_mean = average([o.f.mean for o in per_object])
    return DavisGlobalScores(
        jf_mean=(j_mean + f_mean) / 2,
        j_mean=j_mean,
        j_recall=average([o.j.recall for o in per_object]),
        j_decay=average([o.j.decay for o in per_object]),
        f_mean=f_mean,
        f_recall=average([o.f.recall for o in per_object]),
        f_decay=average([o.f.decay for o in per_object]),
        n_objects=len(per_object),
    )


def evaluate_davis_folders(
    gt_dir: str | os.PathLike[str],
    pred_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None,
    *,
    protocol: Protocol = "semi",
    method: str | None = None,
    mask_format: MaskFormat = "auto",
    sequences: Sequence[str] | None = None,
    overwrite: bool = False,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
    max_proposals: int = MAX_PROPOSALS,
) -> DavisEvaluation:
    """Evaluate a folder of predicted masks against DAVIS ground truth and write the result tables.

    Writes (atomically) into ``out_dir``:

    * ``per_frame.csv``: columns ``method,sequence,frame,J,F``;
    * ``per_sequence.csv``: columns ``method,sequence,n_frames,J_mean,J_recall,
      J_decay,F_mean,F_recall,F_decay`` (one row per object);
    * ``global.json``: ``J&F-Mean``, ``J-Mean``, ``J-Recall``, ``J-Decay``,
      ``F-Mean``, ``F-Recall``, ``F-Decay`` plus ``method``, ``protocol``,
      ``frames`` and ``n_objects``.

    Floats are written with Python's shortest round-trip repr. See the module
    docstring for the mask formats, the protocols and the global scores.

    Args:
        gt_dir: folder of ground-truth sequence folders (e.g. ``Annotations/480p``).
        pred_dir: folder of predicted sequence folders, same sequence and frame names.
        out_dir: folder for the three files (created if missing), or ``None``
            to only return the result.
        protocol: ``"semi"`` (first and last frame not evaluated) or
            ``"unsupervised"`` (all frames, Hungarian matching).
        method: name written in the ``method`` column; the name of ``pred_dir`` by default.
        mask_format: ``"auto"``, ``"binary"`` or ``"indexed"``.
        sequences: sequence names to evaluate; every folder of ``gt_dir`` by default.
        overwrite: replace existing result files in ``out_dir``.
        tolerance: boundary tolerance as a fraction of the image diagonal (0.008).
        max_proposals: unsupervised protocol: most prediction ids per sequence.

    Returns:
        The :class:`DavisEvaluation`.

    Raises:
        ConfigError: for an unknown ``protocol`` or ``mask_format``.
        svac.errors.OutputExistsError: when a result file exists and ``overwrite`` is False
            (checked before any work).
        AnnotationError: when a ground-truth folder or PNG is missing, unreadable,
            of an unsupported mode, of mixed sizes within a sequence, or
            (indexed) has no object in its first frame; or a semi-supervised
            sequence has fewer than 3 frames.
        MetricInputError: when a prediction folder or PNG is missing or
            unreadable, a prediction's size differs from its ground truth,
            or a prediction has more objects than allowed.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if mask_format not in MASK_FORMATS:
        raise ConfigError(f"mask_format must be one of {MASK_FORMATS}, got {mask_format!r}")
    gt_root, pred_root = Path(gt_dir), Path(pred_dir)
    if not gt_root.is_dir():
        raise AnnotationError(f"ground-truth folder {gt_root} does not exist")
    if not pred_root.is_dir():
        raise MetricInputError(f"prediction folder {pred_root} does not exist")
    method_name = method if method is not None else pred_root.resolve().name
    out_paths = None
    if out_dir is not None:
        out_root = Path(out_dir)
        out_paths = DavisOutputFiles(
            per_frame=out_root / PER_FRAME_CSV,
            per_sequence=out_root / PER_SEQUENCE_CSV,
            global_json=out_root / GLOBAL_JSON,
        )
        refuse_existing([out_paths.per_frame, out_paths.per_sequence, out_paths.global_json], overwrite=overwrite)

    names = sorted(p.name for p in gt_root.iterdir() if p.is_dir()) if sequences is None else list(sequences)
    if not names:
        raise AnnotationError(f"ground-truth folder {gt_root} holds no sequence folders")
    missing = [n for n in names if not (pred_root / n).is_dir()]
    if missing:
        raise MetricInputError(f"prediction folder {pred_root} lacks sequences: {', '.join(missing)}")

    per_frame: list[FrameScore] = []
    per_object: list[ObjectScore] = []
    for name in names:
        frames, row_names, object_ids, scores = _evaluate_sequence(
            gt_root / name, pred_root / name, protocol, mask_format, tolerance, max_proposals
        )
        for k, row in enumerate(row_names):
            per_frame.extend(
                FrameScore(method_name, row, frame, float(scores.j[k, t]), float(scores.f[k, t]))
                for t, frame in enumerate(frames)
            )
            index = scores.proposal_index[k]
            per_object.append(
                ObjectScore(
                    method=method_name,
                    sequence=row,
                    video=name,
                    object_id=object_ids[k],
                    n_frames=len(frames),
                    j=mean_recall_decay(scores.j[k]),
                    f=mean_recall_decay(scores.f[k]),
                    proposal_id=(None if index is None else index + 1) if protocol == "unsupervised" else None,
                )
            )
    summary = global_scores(per_object)
    if out_paths is not None:
        _write_outputs(out_paths, method_name, protocol, per_frame, per_object, summary, overwrite)
    return DavisEvaluation(
        method=method_name,
        protocol=protocol,
        per_frame=tuple(per_frame),
        per_object=tuple(per_object),
        global_scores=summary,
        files=out_paths,
    )


def _evaluate_sequence(
    gt_seq: Path,
    pred_seq: Path,
    protocol: str,
    mask_format: str,
    tolerance: float,
    max_proposals: int,
) -> tuple[list[str], list[str], list[int | None], SequenceScores]:
    """Read one sequence and score it; returns (frames, row names, object ids, scores)."""
    if not gt_seq.is_dir():
        raise AnnotationError(f"ground-truth sequence folder {gt_seq} does not exist")
    all_frames = sorted(p.stem for p in gt_seq.glob(f"*{MASK_SUFFIX}"))
    if not all_frames:
        raise AnnotationError(f"ground-truth sequence folder {gt_seq} holds no {MASK_SUFFIX} masks")
    if protocol == "semi":
        if len(all_frames) <= _SEMI_DROPPED_FRAMES:
            raise AnnotationError(
                f"{gt_seq} has {len(all_frames)} frames; the semi-supervised protocol drops the first "
                "and the last frame and needs at least 3"
            )
        frames = all_frames[1:-1]
    else:
        frames = all_frames
    first_label, first_mode = _read_label_png(gt_seq / f"{all_frames[0]}{MASK_SUFFIX}", is_gt=True)
    indexed = _resolve_indexed(mask_format, first_mode, gt_seq)
    gt_labels = _read_stack(gt_seq, frames, is_gt=True, expected=first_label.shape)
    pred_labels = _read_stack(pred_seq, frames, is_gt=False, expected=first_label.shape, gt_seq=gt_seq)
    name = gt_seq.name
    if not indexed:
        gt = (gt_labels != 0)[None]
        pred = (pred_labels != 0)[None]
        void = None
        object_ids: list[int | None] = [None]
        row_names = [name]
    else:
        void = gt_labels == VOID_LABEL
        first_objects = first_label[first_label != VOID_LABEL]
        num_objects = int(first_objects.max()) if first_objects.size else 0
        if num_objects == 0:
            raise AnnotationError(
                f"first ground-truth frame {gt_seq / (all_frames[0] + MASK_SUFFIX)} holds no object "
                "(indexed masks: the objects are ids 1..max of the first frame)"
            )
        ids = np.arange(1, num_objects + 1, dtype=np.int64)
        gt = gt_labels[None] == ids[:, None, None, None]
        object_ids = [int(i) for i in ids]
        row_names = [f"{name}_{i}" for i in object_ids]
        num_pred = int(pred_labels.max())
        if protocol == "semi":
            if num_pred > num_objects:
                raise MetricInputError(
                    f"predictions in {pred_seq} hold object id {num_pred}, but the ground truth "
                    f"has {num_objects} objects"
                )
            pred = pred_labels[None] == ids[:, None, None, None]
        else:
            pred = pred_labels[None] == np.arange(1, num_pred + 1, dtype=np.int64)[:, None, None, None]
    if protocol == "semi":
        scores = score_semi_supervised(gt, pred, void, tolerance)
    else:
        try:
            scores = score_unsupervised(gt, pred, void, tolerance, max_proposals)
        except MetricInputError as error:
            raise MetricInputError(f"{pred_seq}: {error}") from error
    return frames, row_names, object_ids, scores


def _resolve_indexed(mask_format: str, first_mode: str, gt_seq: Path) -> bool:
    if mask_format == "binary":
        return False
    if mask_format == "indexed":
        return True
    if first_mode in _INDEXED_MODES:
        return True
    if first_mode in _BINARY_MODES:
        return False
    raise AnnotationError(f"cannot tell the mask format of {gt_seq} from PNG mode {first_mode!r}")


def _read_label_png(path: Path, *, is_gt: bool) -> tuple[np.ndarray, str]:
    """Read a mask PNG as a 2-D array (bool for mode ``1``, uint8 for ``L``/``P``) and its mode."""
    error = AnnotationError if is_gt else MetricInputError
    kind = "ground-truth" if is_gt else "prediction"
    if not path.is_file():
        raise error(f"{kind} mask {path} is missing")
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in _LABEL_MODES:
                raise error(f"{kind} mask {path} has PNG mode {mode!r}; expected one of {_LABEL_MODES}")
            array = np.array(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise error(f"{kind} mask {path} cannot be read: {exc}") from exc
    return array, mode


def _read_stack(
    folder: Path,
    frames: list[str],
    *,
    is_gt: bool,
    expected: tuple[int, ...],
    gt_seq: Path | None = None,
) -> np.ndarray:
    """Read the masks of ``frames`` as uint8 ``(T, H, W)``; every mask must have size ``expected``."""
    stack = np.empty((len(frames), *expected), dtype=np.uint8)
    for t, frame in enumerate(frames):
        path = folder / f"{frame}{MASK_SUFFIX}"
        array, _ = _read_label_png(path, is_gt=is_gt)
        if array.shape != expected:
            if is_gt:
                raise AnnotationError(
                    f"ground-truth mask {path} is {array.shape[1]}x{array.shape[0]} but the sequence's "
                    f"first mask is {expected[1]}x{expected[0]} (width x height)"
                )
            raise MetricInputError(
                f"prediction mask {path} is {array.shape[1]}x{array.shape[0]} but the ground truth in "
                f"{gt_seq} is {expected[1]}x{expected[0]} (width x height); masks must have the same size"
            )
        stack[t] = array
    return stack


def _void_boundary(masks: np.ndarray, void: np.ndarray | None) -> np.ndarray:
    return boundary_map(masks if void is None else masks & ~void)


def _check_void(void: np.ndarray | None, gt: np.ndarray) -> None:
    if void is not None:
        check_bool_masks("void", void, ndims=(3,))
        if void.shape != gt.shape[1:]:
            raise MetricInputError(f"mask sizes differ: void {void.shape}, gt {gt.shape}; void must be (T, H, W)")


def _write_outputs(
    paths: DavisOutputFiles,
    method: str,
    protocol: str,
    per_frame: list[FrameScore],
    per_object: list[ObjectScore],
    summary: DavisGlobalScores,
    overwrite: bool,
) -> None:
    frame_rows = [(r.method, r.sequence, r.frame, r.j, r.f) for r in per_frame]
    object_rows = [
        (o.method, o.sequence, o.n_frames, o.j.mean, o.j.recall, o.j.decay, o.f.mean, o.f.recall, o.f.decay)
        for o in per_object
    ]
    global_record = {
        "method": method,
        "protocol": protocol,
        "frames": "all but the first and the last" if protocol == "semi" else "all",
        "n_objects": summary.n_objects,
        "J&F-Mean": summary.jf_mean,
        "J-Mean": summary.j_mean,
        "J-Recall": summary.j_recall,
        "J-Decay": summary.j_decay,
        "F-Mean": summary.f_mean,
        "F-Recall": summary.f_recall,
        "F-Decay": summary.f_decay,
    }
    write_texts_atomic({paths.per_frame: _csv_text(PER_FRAME_COLUMNS, frame_rows),
                        paths.per_sequence: _csv_text(PER_SEQUENCE_COLUMNS, object_rows),
                        paths.global_json: json.dumps(global_record, indent=2) + "\n"}, overwrite=overwrite)


def _csv_text(columns: tuple[str, ...], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()
