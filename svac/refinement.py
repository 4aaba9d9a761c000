"""Refine a segmentation with a click or a box: a SAM-2 correction prompt, re-propagated through memory (issue 16 §3).

A mask that is wrong on some frame is corrected where it is wrong::

    result = model.segment("video.mp4", "the dog")
    better = result.refine(frame=12, points=[(320, 240)], labels=[1])   # a click on the dog
    better = better.refine(frame=40, points=[(90, 200)], labels=[0])    # not this part
    better = better.refine(frame=60, box=(100, 80, 260, 200))           # the dog is in this box

Coordinates are pixels of the original video frame (x to the right, y down). Each call adds
a SAM-2 correction prompt on one frame of one object and tracks that object again forwards
and backwards from the frame through SAM-2's memory, the ``[SEG]`` prompts of the original
run staying in memory as conditioning frames (:mod:`svac.grounding.replay` gives the exact
semantics, those of SAM 2's interactive video predictor). It returns a new
:class:`~svac.outputs.SegmentationResult`; the result it is called on is left as it was.

What a refinement needs -- the model, the video, the ``[SEG]`` prompts and the corrections
already made -- a result keeps when the model made it in this process (``result.model``,
``result.source``, ``result.tracking``, ``result.corrections``): ``result.refine(...)`` is
``model.refine(result, ...)``. A result read back from a folder keeps none of it:
:func:`rerun_saved_result` runs the recorded queries again on the recorded video, replays the
recorded corrections and checks that the masks match the folder's (``svac refine`` does this).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from svac.grounding.replay import AfterCorrection, FramePrompt
    from svac.model import SVAC
    from svac.progress import Progress
    from svac.outputs import SegmentationResult
    from svac.video.reader import VideoSource

#: Largest fraction of a saved result's mask pixels a re-run may disagree on (floating-point noise).
RERUN_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Correction:
    """One correction prompt of a refined result: clicks and/or a box on one frame of one object.

    Attributes:
        frame: the frame index (0-based, frames).
        object: the object id (1-based, as in ``result.objects`` and the mask files).
        points: ``(x, y)`` clicks in original video pixels.
        labels: one per point: 1 (the object is here) or 0 (it is not).
        box: ``(x0, y0, x1, y1)`` in original video pixels (top-left, bottom-right), or ``None``.
    """

    frame: int
    object: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict:
        """JSON-ready fields (as recorded in ``result.json``)."""
        return {"frame": self.frame, "object": self.object, "points": [list(p) for p in self.points],
                "labels": list(self.labels), "box": list(self.box) if self.box is not None else None}


def check_correction(*, frame: Any, points: Any = None, labels: Any = None, box: Any = None, object: Any = None,
                     num_frames: int, num_objects: int, frame_size: tuple[int, int]) -> Correction:
    """Validate a correction against a result's video and objects.

    Args:
        frame: frame index, an integer in ``[0, num_frames)``.
        points: ``(x, y)`` pairs in pixels, ``0 <= x <= W`` and ``0 <= y <= H``, or ``None``.
        labels: one 0 or 1 per point (required with ``points``).
        box: ``(x0, y0, x1, y1)`` in pixels inside the frame, ``x0 < x1`` and ``y0 < y1``, or ``None``.
        object: object id in ``1..num_objects``; ``None`` when the result has exactly one object.
        num_frames, num_objects: N and K of the result.
        frame_size: ``(H, W)`` of the video (pixels).

    Returns:
        The :class:`Correction`, with plain Python numbers.

    Raises:
        ValueError: naming the problem (frame or object out of range, no point and no box,
            points and labels of different lengths, a label other than 0/1, a coordinate
            outside the frame or not a finite number, an empty box).
    """
    h, w = frame_size
    if not _is_int(frame):
        raise ValueError(f"frame must be an integer frame index, got {frame!r}")
    if not 0 <= int(frame) < num_frames:
        raise ValueError(f"frame {frame} is outside the video: its frames are 0..{num_frames - 1}")
    if num_objects == 0:
        raise ValueError("the result has no object to refine")
    if object is None:
        if num_objects != 1:
            raise ValueError(f"the result has {num_objects} objects: say which one to refine (object=1..{num_objects})")
        object = 1
    if not _is_int(object) or not 1 <= int(object) <= num_objects:
        raise ValueError(f"object {object!r} does not exist: the result's objects are numbered 1..{num_objects}")
    if points is None and labels is not None:
        raise ValueError("labels were given without points: give points=[(x, y), ...] with one label each")
    if points is None and box is None:
        raise ValueError("nothing to refine with: give points=[(x, y)] with labels=[1 or 0], or box=(x0, y0, x1, y1)")
    clicks: list[tuple[float, float]] = []
    if points is not None:
        pts = _as_list(points, "points")
        if labels is None:
            raise ValueError("points need labels: one per point, 1 (the object is here) or 0 (it is not)")
        labs = _as_list(labels, "labels")
        if len(pts) != len(labs):
            raise ValueError(f"{len(pts)} points but {len(labs)} labels: give one label per point")
        if not pts:
            if box is None:
                raise ValueError("points is empty: give at least one (x, y) click, or a box")
        for n, (p, lab) in enumerate(zip(pts, labs), start=1):
            pair = _as_list(p, f"point {n}")
            if len(pair) != 2:
                raise ValueError(f"point {n} must be an (x, y) pair, got {p!r}")
            x, y = _coordinate(pair[0], f"point {n} x"), _coordinate(pair[1], f"point {n} y")
            if not (0 <= x <= w and 0 <= y <= h):
                raise ValueError(f"point {n} ({x:g}, {y:g}) is outside the {w}x{h} frame (x in 0..{w}, y in 0..{h})")
            if isinstance(lab, (bool, np.bool_)) or not _is_int(lab) or int(lab) not in (0, 1):
                raise ValueError(f"label {n} must be 1 (the object is here) or 0 (it is not), got {lab!r}")
            clicks.append((x, y))
        labels_out = tuple(int(lab) for lab in labs)
    else:
        labels_out = ()
    box_out = None
    if box is not None:
        values = _as_list(box, "box")
        if len(values) != 4:
            raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}")
        x0, y0, x1, y1 = (_coordinate(v, "box") for v in values)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must lie inside the {w}x{h} frame with "
                             "x0 < x1 and y0 < y1 (top-left, then bottom-right corner)")
        box_out = (x0, y0, x1, y1)
    return Correction(frame=int(frame), object=int(object), points=tuple(clicks), labels=labels_out, box=box_out)


def correction_from_dict(data: Any, *, num_frames: int, num_objects: int, frame_size: tuple[int, int]) -> Correction:
    """A :class:`Correction` from ``result.json`` (:meth:`Correction.to_dict`), checked by :func:`check_correction`.

    Raises:
        ValueError: when ``data`` is not such a record or its values are invalid.
    """
    if not isinstance(data, dict) or set(data) != {"frame", "object", "points", "labels", "box"}:
        raise ValueError(f"a correction record must have frame, object, points, labels and box, got {data!r}")
    points = data["points"]
    return check_correction(frame=data["frame"], points=points if points else None,
                            labels=data["labels"] if points else None, box=data["box"], object=data["object"],
                            num_frames=num_frames, num_objects=num_objects, frame_size=frame_size)


def frame_prompts(corrections: Sequence[Correction], object_id: int, frame_size: tuple[int, int],
                  image_size: int) -> "list[FramePrompt]":
    """The corrections of one object as SAM-2 prompts, in order, each the whole prompt of its frame at that point.

    Clicks on a frame add up over corrections (SAM-2's ``clear_old_points=False``); a box
    starts the frame's prompt again, box first (SAM-2 takes a box only before any click).
    Coordinates are scaled from the frame's ``(H, W)`` to SAM-2's square input of side ``image_size``.
    """
    from svac.grounding.replay import BOX_LABELS, FramePrompt

    h, w = frame_size
    scale = np.array([image_size / w, image_size / h], dtype=np.float32)
    so_far: dict[int, tuple[list, list]] = {}
    prompts = []
    for c in corrections:
        if c.object != object_id:
            continue
        if c.box is not None or c.frame not in so_far:
            so_far[c.frame] = ([], [])
        coords, labels = so_far[c.frame]
        if c.box is not None:
            coords += [c.box[:2], c.box[2:]]
            labels += list(BOX_LABELS)
        coords += list(c.points)
        labels += list(c.labels)
        prompts.append(FramePrompt(frame=c.frame, coords=np.asarray(coords, dtype=np.float32).reshape(-1, 2) * scale,
                                   labels=np.asarray(labels, dtype=np.int32)))
    return prompts


def refine(model: "SVAC", result: "SegmentationResult", *, frame: int, points: Any = None, labels: Any = None,
           box: Any = None, object: int | None = None, progress: "Progress" = False,
           after_correction: "AfterCorrection | None" = None) -> "SegmentationResult":
    """Correct ``result`` with clicks and/or a box on one frame of one object; return the refined result.

    Args:
        model: the model that made ``result`` (its SAM-2 tracks the object again).
        result: a result made in this process, keeping its video and ``[SEG]`` prompts
            (``result.source``, ``result.tracking``); it is not changed.
        frame: the frame the prompt is on (0-based).
        points: ``(x, y)`` clicks in original video pixels, e.g. ``[(320, 240)]``.
        labels: one per point: 1 (the object is here), 0 (it is not).
        box: ``(x0, y0, x1, y1)`` around the object, in original video pixels.
        object: the object id (1..K); may be left out when the result has one object.
        progress: a progress bar over the frames SAM-2 steps through (stage ``refine``): bool or
            callback (:mod:`svac.progress`).
        after_correction: what the frames after the object's first correction read:
            ``"seg"`` their ``[SEG]`` prompts and the ``[SEG]`` anchors' memories beside the
            correction, ``"memory"`` SAM-2's memory alone, read from the correction onwards
            (:mod:`svac.grounding.replay`; for a model trained to track from memory, one with a memory
            tracker). ``None`` (default): the result's own (``result.after_correction``: for a result
            straight from ``segment``, ``"memory"`` when the model has a memory tracker, else ``"seg"``,
            :func:`svac.grounding.replay.default_after_correction`). A refined result replays all its corrections with it, so it is
            recorded in the result (and its ``result.json``) and cannot change once there are corrections.

    Returns:
        A new :class:`~svac.outputs.SegmentationResult` with ``masks bool (K, N, H, W)`` in memory:
        the corrected object tracked again over every frame (the others unchanged), its score
        the mean presence over frames, ``corrections`` = the result's plus this one, ``timings``
        those of the refinement.

    Raises:
        ValueError: an invalid correction (:func:`check_correction`), an unknown ``after_correction`` or
            one other than the corrections already in ``result`` were replayed with, or a result that cannot
            be refined in this process (no video or ``[SEG]`` prompts kept: read from a folder,
            or made by a baseline head).
    """
    if result.tracking is None or result.source is None:
        raise ValueError("this result keeps no SAM-2 prompts or video to refine with (it was read from a folder or "
                         "made by a baseline head): re-run it with svac.refinement.rerun_saved_result, or use "
                         "'svac refine RESULT_DIR ...'")
    correction = check_correction(frame=frame, points=points, labels=labels, box=box, object=object,
                                  num_frames=result.num_frames, num_objects=result.num_objects,
                                  frame_size=result.frame_size)
    return apply_corrections(model, result, [correction], progress=progress,
                             after_correction=result.after_correction if after_correction is None else after_correction)


def apply_corrections(model: "SVAC", result: "SegmentationResult", corrections: Sequence[Correction], *,
                      progress: "Progress" = False, after_correction: "AfterCorrection" = "seg") -> "SegmentationResult":
    """``result`` refined by ``corrections`` (already validated), one replay per corrected object
    (``after_correction``: :func:`refine`).

    Raises:
        ValueError: when ``result`` keeps no video or ``[SEG]`` prompts, or already has corrections
            replayed with another ``after_correction`` (all of them are replayed again with this one).
    """
    from svac.grounding.replay import replay_object
    from svac.outputs import Timings

    if result.tracking is None or result.source is None:
        raise ValueError("this result keeps no SAM-2 prompts or video to refine with")
    if result.corrections and after_correction != result.after_correction:
        raise ValueError(f"this result's corrections were replayed with after_correction={result.after_correction!r}; "
                         f"a new correction replays them all, so it must use the same (got {after_correction!r}): "
                         "leave after_correction out, or refine the uncorrected result")
    history = (*result.corrections, *corrections)
    masks = np.array(result.read_masks(), copy=True)
    scores = np.array(result.scores, dtype=np.float32, copy=True)
    objects = list(result.objects)
    timings = Timings()
    for object_id in sorted({c.object for c in corrections}):
        row = object_id - 1
        prompts = frame_prompts(history, object_id, result.frame_size, model.sam2_image_size)
        out = replay_object(model, result.source, result.tracking, row, prompts, progress=progress,
                            after_correction=after_correction)
        masks[row] = out.masks
        scores[row] = float(out.presence.mean())
        objects[row] = replace(objects[row], score=float(scores[row]))
        for key, value in out.timings.to_dict().items():
            setattr(timings, key, getattr(timings, key) + value)
    return replace(result, masks=masks, scores=scores, objects=objects, areas=None, store=None, timings=timings,
                   corrections=history, after_correction=after_correction, model=model)


def saved_summary(result_dir: str | Path) -> dict:
    """The ``result.json`` of a saved result folder.

    Raises:
        FileNotFoundError: when the folder or its ``result.json`` is missing.
        ValueError: when ``result.json`` is not a JSON object.
    """
    path = Path(result_dir) / "result.json"
    if not path.is_file():
        raise FileNotFoundError(f"{result_dir} is not a result folder: it has no result.json (write one with "
                                "svac segment --out DIR)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(summary, dict):
        raise ValueError(f"{path} is not a result summary (expected a JSON object)")
    return summary


def rerun_saved_result(model: "SVAC", result_dir: str | Path, *, video: "str | Path | VideoSource | None" = None,
                       num_frames: int | None = None, clip_len: int | None = None,
                       progress: "Progress" = False) -> "SegmentationResult":
    """Make a saved result refinable again: re-run its queries on its video, replay its corrections, check the masks.

    Args:
        model: the model that made the saved result (another model fails the check below).
        result_dir: a folder written by ``svac segment`` / ``svac refine`` / ``result.save``.
        video: the video (default: the path recorded in ``result.json``).
        num_frames, clip_len: T and m of the run (default: read from the recorded frames and clips).
        progress: progress bars of the re-run (stages ``SAM-2`` and ``refine``): bool or callback.

    Returns:
        The result as the model gives it now, bound to ``model`` (``result.refine`` works), with
        the recorded corrections applied.

    Raises:
        FileNotFoundError: no ``result.json``, or the recorded video is gone.
        ValueError: a summary without queries (a chat turn) or video, or masks that the re-run
            does not reproduce (another model, video or settings: the message says which to pass).
    """
    from svac.video.formats import MaskFiles
    from svac.video.reader import open_video

    if not hasattr(model, "refine"):
        raise ValueError(f"refinement needs an SVAC model (SAM-2 tracking with memory); {model.config.name} is a "
                         f"{model.config.head} baseline head")
    summary = saved_summary(result_dir)
    objects = summary.get("objects")
    if not isinstance(objects, list) or not objects:
        raise ValueError(f"{result_dir}/result.json lists no objects: nothing to refine")
    names = [o.get("name") if isinstance(o, dict) else None for o in objects]
    query_of = [o.get("query_index") if isinstance(o, dict) else None for o in objects]
    if any(not isinstance(n, str) for n in names) or any(not _is_int(q) for q in query_of):
        raise ValueError(f"{result_dir}/result.json does not record the query of every object (a chat turn?): "
                         "refine it from Python with the ChatResponse's result")
    queries = [names[query_of.index(q)] for q in sorted(set(query_of))]
    if video is None:
        video = summary.get("video_path")
        if not isinstance(video, str):
            raise ValueError(f"{result_dir}/result.json does not say where its video is: pass the video (--video)")
        if not Path(video).exists():
            raise FileNotFoundError(f"the video of {result_dir}, {video}, is not there any more: pass it (--video)")
    indices = summary.get("frame_indices")
    spans = summary.get("clip_spans")
    if num_frames is None and isinstance(indices, list) and indices:
        num_frames = len(indices)
    if clip_len is None and isinstance(indices, list) and isinstance(spans, list) and spans:
        clip_len = max(1, sum(1 for i in indices if _is_int(i) and i < spans[0][1]))
    source = open_video(video)
    result = model.segment(source, queries, num_frames=num_frames, clip_len=clip_len, progress=progress)
    if result.num_objects != len(objects):
        raise ValueError(f"re-running the queries of {result_dir} gives {result.num_objects} objects, not "
                         f"{len(objects)}: pass the model (--model) and settings (--frames, --clip-len) it was made "
                         "with")
    size = (result.frame_size[0], result.frame_size[1])
    records = summary.get("corrections") or []
    if not isinstance(records, list):
        raise ValueError(f"{result_dir}/result.json: corrections must be a list")
    corrections = [correction_from_dict(r, num_frames=result.num_frames, num_objects=result.num_objects,
                                        frame_size=size) for r in records]
    from svac.grounding.replay import check_after_correction

    after_correction = summary.get("after_correction", "seg")  # summaries written before it existed: "seg"
    check_after_correction(after_correction, where=f"{result_dir}/result.json")
    if corrections:
        result = apply_corrections(model, result, corrections, progress=progress, after_correction=after_correction)
    files = summary.get("files") if isinstance(summary.get("files"), dict) else {}
    stored = MaskFiles(Path(result_dir), files.get("format", "svac"), result.video_name, result.frame_names, size,
                       [o.id for o in result.objects])
    differ = 0
    for start in range(0, result.num_frames, 16):
        stop = min(start + 16, result.num_frames)
        differ += int((stored.read(start, stop) != result.read_masks(start, stop)).sum())
    if differ > RERUN_TOLERANCE * result.masks.size:
        raise ValueError(f"re-running {result_dir} does not give its masks ({differ} of {result.masks.size} pixels "
                         "differ): pass the model (--model), video (--video) and settings (--frames, --clip-len) it "
                         "was made with")
    return result


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _as_list(value: Any, what: str) -> list:
    if isinstance(value, np.ndarray):
        return list(value)
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} must be a list or tuple, got {value!r}")
    return list(value)


def _coordinate(value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number of pixels, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of pixels, got {value!r}")
    return value
