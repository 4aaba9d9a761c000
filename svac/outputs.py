"""Typed results of svac's inference: timings, segmentation results and chat responses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:
    from svac.grounding.replay import AfterCorrection


@dataclass
class Timings:
    """Wall-clock time of each stage of one call, in seconds.

    Attributes:
        video_decode: taking the frames the MLLM sees (one forward decoding pass) and building
            the ASTC composites.
        mllm_vision: the MLLM's vision tower and projector (summed over queries).
        llm_prefill: the LLM's pass over the prompt (the whole forward in template mode).
        llm_decode: the LLM's generation steps after the prefill.
        frame_decode: decoding every frame once, in order, for SAM-2 (and the writers).
        sam2_preprocess: resizing and normalising the frames for SAM-2.
        sam2_encoder: SAM-2's image encoder over every frame (one pass per frame, whatever the
            number of objects).
        sam2_tracking: SAM-2 memory attention, mask decoder and memory encoder (all objects in one batch).
        mask_upsample: upsampling the masks to the frame size and thresholding them.
        write_masks: writing the mask files (PNG or RLE), when the call wrote them.
        write_overlay: blending and encoding ``overlay.mp4``, when the call wrote it.
        total: the whole call, end to end.
    """

    video_decode: float = 0.0
    mllm_vision: float = 0.0
    llm_prefill: float = 0.0
    llm_decode: float = 0.0
    frame_decode: float = 0.0
    sam2_preprocess: float = 0.0
    sam2_encoder: float = 0.0
    sam2_tracking: float = 0.0
    mask_upsample: float = 0.0
    write_masks: float = 0.0
    write_overlay: float = 0.0
    total: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Seconds by stage."""
        return asdict(self)


@dataclass(frozen=True)
class SegmentedObject:
    """One object of a segmentation result (issue 16 §2: one object per query, named and numbered).

    Attributes:
        id: the object number, 1-based; its pixel value (DAVIS palette index) in mask PNGs and the
            row ``id - 1`` of ``masks``.
        name: the query (referring expression) that asked for it; ``None`` when unknown.
        query_index: which query of the call it answers (0-based).
        found: ``False`` when the query's answer held no ``[SEG]`` token: the object is then empty
            on every frame (not an error).
        score: SAM-2's object-presence probability averaged over frames, in [0, 1] (0 when not found).
    """

    id: int
    name: str | None = None
    query_index: int = 0
    found: bool = True
    score: float = 0.0

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {"id": self.id, "name": self.name, "query_index": self.query_index, "found": self.found,
                "score": float(self.score)}


@dataclass
class MaskChunk:
    """The masks of consecutive frames, as the streaming engine hands them out (:mod:`svac.grounding.engine`).

    Attributes:
        start: index of the chunk's first frame (frames).
        masks: ``bool (K, n, H, W)``: the K objects on frames ``start .. start + n - 1`` at the
            video's original size (pixels).
        presence: ``float32 (K, n)`` SAM-2's object-presence probability per frame, or ``None``.
        frames: ``uint8 (n, H, W, 3)`` the decoded RGB frames (the writers draw the overlay on
            them without decoding again), or ``None``.
    """

    start: int
    masks: np.ndarray
    presence: np.ndarray | None = None
    frames: np.ndarray | None = None

    @property
    def stop(self) -> int:
        """One past the chunk's last frame."""
        return self.start + int(self.masks.shape[1])


@dataclass
class SegmentationResult:
    """The answer to one or several queries on a video: text plus one binary mask per object and frame.

    A result holds its masks in memory (``masks``), or -- after a streamed run saved to a folder
    (:meth:`svac.streaming.SegmentationStream.save`) -- reads them back from the written files
    (``masks`` is then ``None``: use :meth:`iter_mask_chunks` or :meth:`read_masks`).

    Attributes:
        text: the assistant's answer (``[SEG]`` tokens kept where the masks belong); with several
            queries, the answers joined by newlines (each one is in ``answers``).
        masks: ``bool (K, N, H, W)``: object k's mask on every video frame, at the video's
            original size (pixels); K = 0 for a text-only chat answer. ``None`` for a result backed
            by files.
        scores: ``float32 (K,)`` per-object confidence in [0, 1]: SAM-2's object-presence
            probability averaged over the frames.
        frame_indices: ``int64 (T,)`` video frames the MLLM saw.
        clip_spans: per clip, ``(start, stop)`` video frames its ``[SEG]`` prompted (stop excluded).
        frame_names: one name per video frame, used to name exported files.
        video_name: name of the video (file stem or folder name).
        fps: frames per second of the video when known.
        mode: ASTC mode (``astc``, ``uncompressed``, ``first_k``).
        csa_mode: ``per_clip`` or ``single``.
        num_visual_tokens: visual tokens the LLM read.
        seg_policy_applied: name of the ``[SEG]``-count fallback applied, or ``None``.
        model_name: name of the model that answered.
        timings: seconds per stage.
        objects: the K objects, numbered 1..K (names, query, found flag, score); by default one
            unnamed object per row of ``masks``.
        answers: the answer text of each query, in query order.
        areas: ``int64 (K, N)`` mask area of each object on each frame (pixels), for results without
            ``masks`` in memory (computed from ``masks`` otherwise).
        frame_size: ``(H, W)`` of the frames (pixels); from ``masks`` when not given.
        tracking: what SAM-2 needs to track these objects again (:class:`svac.grounding.engine.TrackingPrompts`:
            the projected ``[SEG]`` prompts, clip of each frame, conditioning frames), or ``None``.
            Kept so that a correction (a click at frame i) can re-propagate through SAM-2's memory
            with the ``[SEG]`` prompts as conditioning.
        source: the video the result belongs to (:class:`svac.video.reader.VideoSource`), or ``None``.
        store: the files the masks are read from when ``masks`` is ``None`` (:mod:`svac.video.formats`).
        corrections: the correction prompts this result was refined with, in order
            (:class:`svac.refinement.Correction`; empty for a result straight from ``segment``).
        after_correction: what the frames after a correction read when its corrections are
            replayed (:data:`svac.grounding.replay.AfterCorrection`, ``"seg"`` or ``"memory"``); fixed by
            its first refinement.
        model: the model that made the result, which :meth:`refine` uses, or ``None`` (a result
            read back from files, merged, or built by hand).
    """

    text: str
    masks: np.ndarray | None
    scores: np.ndarray
    frame_indices: np.ndarray
    clip_spans: list[tuple[int, int]]
    frame_names: tuple[str, ...]
    video_name: str
    fps: float | None
    mode: str
    csa_mode: str
    num_visual_tokens: int
    seg_policy_applied: str | None = None
    model_name: str = "svac"
    timings: Timings = field(default_factory=Timings)
    objects: list[SegmentedObject] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    areas: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None
    tracking: Any = field(default=None, repr=False)
    source: Any = field(default=None, repr=False)
    store: Any = field(default=None, repr=False)
    corrections: tuple = ()
    after_correction: str = "seg"
    model: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.masks is not None:
            if self.masks.ndim != 4:
                raise ValueError(f"masks must be (K, N, H, W), got shape {self.masks.shape}")
            if self.frame_size is None:
                self.frame_size = (int(self.masks.shape[2]), int(self.masks.shape[3]))
        elif self.store is None:
            raise ValueError("a result needs its masks or the files they were written to (store)")
        if not self.objects:
            self.objects = [SegmentedObject(id=k + 1, score=float(self.scores[k])) for k in range(len(self.scores))]
        if self.masks is not None and len(self.objects) != self.masks.shape[0]:
            raise ValueError(f"{len(self.objects)} objects for masks of {self.masks.shape[0]}: give one object per "
                             "mask row (objects=[] numbers them 1..K)")
        if not self.answers:
            self.answers = [self.text]

    @property
    def num_objects(self) -> int:
        """K, the number of segmented objects."""
        return int(self.masks.shape[0]) if self.masks is not None else len(self.objects)

    @property
    def num_frames(self) -> int:
        """N, the number of video frames."""
        return len(self.frame_names)

    def object_areas(self) -> np.ndarray:
        """``int64 (K, N)`` mask area of each object on each frame (pixels)."""
        k, n = self.num_objects, self.num_frames
        if self.masks is not None:
            return self.masks.reshape(k, n, -1).sum(axis=2, dtype=np.int64)
        if self.areas is None:
            self.areas = np.concatenate([c.masks.reshape(k, c.masks.shape[1], -1).sum(axis=2, dtype=np.int64)
                                         for c in self.iter_mask_chunks()], axis=1)
        return self.areas

    def iter_mask_chunks(self, chunk_size: int = 16) -> Iterator[MaskChunk]:
        """The masks as :class:`MaskChunk` of at most ``chunk_size`` frames, in order (from memory or the files).

        Raises:
            ValueError: when ``chunk_size`` is below 1.
        """
        from svac.video.reader import chunk_spans

        for start, stop in chunk_spans(self.num_frames, chunk_size):
            yield MaskChunk(start=start, masks=self.read_masks(start, stop))

    def read_masks(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``bool (K, stop - start, H, W)``: the masks of frames ``start .. stop - 1`` (from memory or the files).

        Raises:
            IndexError: when the range is outside ``0 .. N``.
        """
        stop = self.num_frames if stop is None else stop
        if not 0 <= start <= stop <= self.num_frames:
            raise IndexError(f"frames {start}..{stop} outside 0..{self.num_frames}")
        if self.masks is not None:
            return self.masks[:, start:stop]
        return self.store.read(start, stop)

    def save(self, out_dir, *, format: str = "svac", overwrite: bool = False, overlay: bool | None = None,
             progress=False):
        """Write the result to a folder as a whole (staged, then swapped in): masks, overlay, ``result.json``.

        Args:
            out_dir: the folder (created if missing; files of yours in it are kept).
            format: ``svac`` (``masks/<object>/<frame>.png``, one DAVIS-palette PNG per object and
                frame), ``davis`` (``<video>/<frame>.png``: one indexed PNG per frame whose pixel
                value is the object id -- the DAVIS results layout that ``svac metrics davis`` and the
                official DAVIS evaluation read) or ``coco-rle`` (``masks.json``: per object, one
                COCO RLE per frame, ``pycocotools`` encoding). See :mod:`svac.video.formats`.
            overwrite: replace svac results already in ``out_dir``.
            overlay: write ``overlay.mp4`` (needs :attr:`source`); default: when the source is known.
            progress: a progress bar (bool) or callback (:mod:`svac.progress`).

        Returns:
            :class:`svac.video.export.ExportedFiles`.

        Raises:
            ValueError: unknown ``format``, or ``overlay=True`` without a source.
            svac.errors.OutputExistsError / OutputLockedError / OutputWriteError: see
                :func:`svac.video.export.export_result`.
        """
        from svac.video.export import export_result

        return export_result(self, self.source, out_dir, format=format, overwrite=overwrite, overlay=overlay,
                             progress=progress)

    def refine(self, *, frame: int, points=None, labels=None, box=None, object: int | None = None,
               progress=False, after_correction: "AfterCorrection | None" = None) -> "SegmentationResult":
        """Correct the masks with clicks and/or a box on one frame; a new result (this one is left as it is).

        Adds a SAM-2 correction prompt on ``frame`` for object ``object`` and tracks that object
        again forwards and backwards from the frame through SAM-2's memory, the ``[SEG]`` prompts
        of the original run staying in memory as conditioning frames: ``model.refine(self, ...)`` with the
        model that made it (:meth:`svac.model.SVAC.refine`, :mod:`svac.refinement`).

        Args:
            frame: the frame index (0-based).
            points: ``(x, y)`` clicks in pixels of the original video frame, e.g. ``[(320, 240)]``.
            labels: one per point: 1 (the object is here), 0 (it is not).
            box: ``(x0, y0, x1, y1)`` around the object, in pixels of the original frame.
            object: the object id (1..K); may be left out when there is one object.
            progress: a progress bar (bool) or callback (:mod:`svac.progress`), stage ``refine``.
            after_correction: ``"seg"`` or ``"memory"``: what the frames after the object's first
                correction read; ``None`` (default) keeps :attr:`after_correction`, which cannot change
                once there are corrections (:func:`svac.refinement.refine`).

        Returns:
            A new result with ``masks bool (K, N, H, W)`` in memory and this correction appended
            to :attr:`corrections`.

        Raises:
            ValueError: an invalid correction (frame or object out of range, no point and no box,
                a label other than 0/1, a coordinate outside the frame), or a result that keeps no
                model, video or ``[SEG]`` prompts (read back from a folder: see
                :func:`svac.refinement.rerun_saved_result`).
        """
        if self.model is None or not hasattr(self.model, "refine"):
            raise ValueError("this result is not bound to an SVAC model that can refine it (read back from files, "
                             "merged, built by hand, or made by a baseline head): call model.refine(result, ...) with "
                             "the SVAC model that made it, or re-run a saved result with "
                             "svac.refinement.rerun_saved_result / 'svac refine'")
        return self.model.refine(self, frame=frame, points=points, labels=labels, box=box, object=object,
                                 progress=progress, after_correction=after_correction)

    def summary(self) -> dict:
        """A JSON-serialisable summary (everything but the masks; mask areas per frame instead).

        Besides the video, objects and timings it records what a later refinement re-runs: the
        video's location when it is a file or frame folder (``video_path``) and the corrections.
        """
        areas = self.object_areas()
        size = self.frame_size
        location = getattr(self.source, "location", None)
        return {
            "video": self.video_name,
            "video_path": str(location) if location is not None else None,
            "model": self.model_name,
            "text": self.text,
            "answers": list(self.answers),
            "num_objects": self.num_objects,
            "num_frames": self.num_frames,
            "frame_size": {"height": int(size[0]), "width": int(size[1])} if size is not None else None,
            "fps": self.fps,
            "mode": self.mode,
            "csa_mode": self.csa_mode,
            "frame_indices": [int(i) for i in self.frame_indices],
            "clip_spans": [[int(a), int(b)] for a, b in self.clip_spans],
            "num_visual_tokens": int(self.num_visual_tokens),
            "seg_policy_applied": self.seg_policy_applied,
            "objects": [
                {**obj.to_dict(), "score": float(self.scores[k]),
                 "area_pixels": [int(a) for a in areas[k]]}
                for k, obj in enumerate(self.objects)
            ],
            "corrections": [c.to_dict() for c in self.corrections],
            "after_correction": self.after_correction,
            "timings_seconds": self.timings.to_dict(),
        }


def merge_results(results: "list[SegmentationResult]", *, names: "list[str] | None" = None) -> SegmentationResult:
    """One result holding the objects of several results on the same video, renumbered 1..K in order.

    For models that answer one query per call (the baseline heads); SVAC answers several queries
    in one call (``model.segment(video, [q1, q2])``).

    Args:
        results: results with masks in memory, on the same video (same frames and size).
        names: the query of each result (object names); default: the objects' own names.

    Raises:
        ValueError: when ``results`` is empty or the results cover different frames or sizes.
    """
    if not results:
        raise ValueError("merge_results needs at least one result")
    first = results[0]
    for r in results[1:]:
        if r.masks is None or first.masks is None or r.masks.shape[1:] != first.masks.shape[1:]:
            raise ValueError("results to merge must hold masks of the same frames and size")
    objects = []
    for q, r in enumerate(results):
        for o in r.objects:
            objects.append(SegmentedObject(id=len(objects) + 1, name=names[q] if names is not None else o.name,
                                           query_index=q, found=o.found, score=o.score))
    timings = Timings(**{k: sum(getattr(r.timings, k) for r in results) for k in Timings().to_dict()})
    answers = [r.text for r in results]
    return SegmentationResult(
        text="\n".join(answers), masks=np.concatenate([r.masks for r in results]),
        scores=np.concatenate([r.scores for r in results]).astype(np.float32), frame_indices=first.frame_indices,
        clip_spans=first.clip_spans, frame_names=first.frame_names, video_name=first.video_name, fps=first.fps,
        mode=first.mode, csa_mode=first.csa_mode, num_visual_tokens=first.num_visual_tokens,
        seg_policy_applied=first.seg_policy_applied, model_name=first.model_name, timings=timings, objects=objects,
        answers=answers, source=first.source)


@dataclass
class ChatResponse:
    """One assistant turn of a chat about a video.

    Attributes:
        text: the answer.
        result: the segmentation of the objects the answer's ``[SEG]`` tokens name, or ``None``
            when the answer holds none (a text-only answer).
    """

    text: str
    result: SegmentationResult | None = None
