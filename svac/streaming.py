"""The streaming form of a segmentation: masks computed chunk by chunk as they are read (constant memory).

:meth:`svac.model.SVAC.segment_stream` (and ``svac segment``) answer every query first, then
return a :class:`SegmentationStream` whose SAM-2 stage runs while it is read. Read it once, in
one of three ways::

    stream = model.segment_stream("long.mp4", ["the red car", "the dog"])
    stream.objects                      # known at once: ids 1..K, query names, found flags
    for chunk in stream:                # 1. iterate: MaskChunk, masks bool (K, n, H, W) of n frames
        use(chunk.start, chunk.masks)   #    (chunk.frames: the decoded RGB frames)

    result = stream.save("out", format="davis")   # 2. write the files as the masks come
    result.read_masks(100, 110)                   #    a result backed by those files

    result = stream.collect()           # 3. everything in memory: result.masks (K, N, H, W)

``model.segment(...)`` is ``model.segment_stream(...).collect()``. Peak memory of the first two
does not grow with the number of frames: only the per-frame mask areas and object-presence sums
are kept (a few bytes per frame and object).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from svac.outputs import MaskChunk, SegmentationResult, SegmentedObject, Timings

if TYPE_CHECKING:
    from svac.atomic_folder import OutputFolder
    from svac.grounding.engine import TrackingPrompts
    from svac.model import SVAC
    from svac.progress import Progress
    from svac.video.export import ExportedFiles
    from svac.video.reader import VideoSource


class StreamedMasks:
    """The store of a result whose masks were streamed and not kept: reading them raises.

    Raises (on :meth:`read`):
        RuntimeError: always, saying how to keep the masks.
    """

    def read(self, start: int, stop: int) -> np.ndarray:
        raise RuntimeError("the masks of this result were streamed and not kept: use stream.save(...) to write "
                           "them, or stream.collect() / model.segment(...) to hold them in memory")


class SegmentationStream:
    """The masks of a ``segment`` call, computed frame chunk by frame chunk as the stream is read.

    Made by :func:`svac.inference.segment_stream` once the MLLM has answered every query. Known
    at once: :attr:`answers`, :attr:`text`, :attr:`objects` (ids 1..K, names, ``found`` flags),
    the video's :attr:`frame_names`, :attr:`frame_size`, :attr:`fps`, the clip layout and the
    MLLM stages' :attr:`timings`. A stream is read once (iterate it, :meth:`save` or
    :meth:`collect`); afterwards :attr:`scores`, :meth:`result` and :meth:`summary` are final.

    Attributes:
        model: the model whose SAM-2 runs.
        source: the video (:class:`~svac.video.reader.VideoSource`).
        tracking: the ``[SEG]`` prompts and schedule (:class:`~svac.grounding.engine.TrackingPrompts`).
        objects: the K objects (:class:`~svac.outputs.SegmentedObject`); scores final after reading.
        answers: each query's answer text.
        timings: seconds per stage, filled as the stream is read (MLLM stages summed over queries).
        query_timings: each query's own MLLM stages (vision tower, LLM prefill and decoding).
        scores: ``float32 (K,)`` mean object-presence probability, or ``None`` before the stream was read.
        files: what :meth:`save` wrote (:class:`~svac.video.export.ExportedFiles`), else ``None``.
    """

    def __init__(self, *, model: "SVAC", source: "VideoSource", tracking: "TrackingPrompts",
                 objects: Sequence[SegmentedObject], answers: Sequence[str], frame_indices: np.ndarray,
                 clip_spans: list[tuple[int, int]], mode: str, csa_mode: str, num_visual_tokens: int,
                 seg_policy_applied: str | None, model_name: str, timings: Timings, started: float,
                 query_timings: Sequence[Timings] = (), progress: "Progress" = False,
                 chunk_size: int | None = None) -> None:
        self.model = model
        self.source = source
        self.tracking = tracking
        self.objects = list(objects)
        self.answers = list(answers)
        self.frame_indices = frame_indices
        self.clip_spans = clip_spans
        self.mode = mode
        self.csa_mode = csa_mode
        self.num_visual_tokens = num_visual_tokens
        self.seg_policy_applied = seg_policy_applied
        self.model_name = model_name
        self.timings = timings
        self.query_timings = list(query_timings)
        self.progress = progress
        self.chunk_size = chunk_size
        self.scores: np.ndarray | None = None
        self.areas: np.ndarray | None = None
        self.files: "ExportedFiles | None" = None
        self._started = started
        self._state = "new"

    # ------------------------------------------------------------------ what is known at once

    @property
    def text(self) -> str:
        """The answers, joined by newlines (one query: its answer)."""
        return "\n".join(self.answers)

    @property
    def num_objects(self) -> int:
        """K."""
        return len(self.objects)

    @property
    def num_frames(self) -> int:
        """N, the video's frames."""
        return self.source.num_frames

    @property
    def frame_names(self) -> tuple[str, ...]:
        """One name per frame (mask files are named after them)."""
        return tuple(self.source.frame_names)

    @property
    def frame_size(self) -> tuple[int, int]:
        """``(H, W)`` of the frames and masks (pixels)."""
        return self.source.height, self.source.width

    @property
    def fps(self) -> float | None:
        """The video's frame rate when known (frames per second)."""
        return self.source.fps

    @property
    def video_name(self) -> str:
        """The video's name (file stem or folder name)."""
        return self.source.name

    # ------------------------------------------------------------------ reading

    def __iter__(self) -> Iterator[MaskChunk]:
        """The masks, :class:`~svac.outputs.MaskChunk` by chunk, in frame order (computed as they are read).

        Raises:
            RuntimeError: when the stream was already read.
        """
        from svac.grounding.engine import stream_masks

        if self._state != "new":
            raise RuntimeError("a SegmentationStream can be read once (it keeps no masks); call segment_stream again")
        self._state = "reading"
        k, n = self.num_objects, self.num_frames
        presence = np.zeros(k, dtype=np.float64)
        areas = np.zeros((k, n), dtype=np.int64)
        for chunk in stream_masks(self.model, self.source, self.tracking, chunk_size=self.chunk_size,
                                  progress=self.progress, timings=self.timings):
            presence += chunk.presence.sum(axis=1, dtype=np.float64)
            areas[:, chunk.start:chunk.stop] = chunk.masks.reshape(k, chunk.masks.shape[1], -1).sum(axis=2)
            yield chunk
        self.scores = (presence / max(n, 1)).astype(np.float32)
        self.areas = areas
        self.objects = [SegmentedObject(id=o.id, name=o.name, query_index=o.query_index, found=o.found,
                                        score=float(self.scores[i])) for i, o in enumerate(self.objects)]
        self.timings.total = time.perf_counter() - self._started
        self._state = "done"

    def collect(self) -> SegmentationResult:
        """Read the whole stream into a :class:`~svac.outputs.SegmentationResult` with ``masks bool (K, N, H, W)``."""
        h, w = self.frame_size
        masks = np.zeros((self.num_objects, self.num_frames, h, w), dtype=bool)
        for chunk in self:
            masks[:, chunk.start:chunk.stop] = chunk.masks
        return self._result(masks=masks)

    def save(self, out_dir: "str | Path | OutputFolder", *, format: str = "svac", overwrite: bool = False,
             overlay: bool = True) -> SegmentationResult:
        """Read the stream, writing each chunk's masks (and overlay frames) before the next is computed.

        The folder is written as a whole (staged beside ``out_dir`` and swapped in at the end;
        after a failure it holds its previous results or nothing), as :func:`svac.video.export.export_result`.

        Args:
            out_dir: the output folder, or an open :func:`svac.video.export.result_folder`.
            format: ``svac``, ``davis`` or ``coco-rle`` (:mod:`svac.video.formats`).
            overwrite: replace svac results already in ``out_dir``.
            overlay: also write ``overlay.mp4`` (drawn on the frames decoded for SAM-2).

        Returns:
            A :class:`~svac.outputs.SegmentationResult` backed by the written files (``masks`` is
            ``None``; :meth:`~svac.outputs.SegmentationResult.read_masks` reads them back).
            :attr:`files` lists what was written.

        Raises:
            RuntimeError: when the stream was already read.
            ValueError: for an unknown format.
            svac.errors.OutputExistsError / OutputLockedError / OutputWriteError: as ``export_result``.
        """
        from svac.video.export import open_result_folder, write_chunks
        from svac.video.formats import check_format

        check_format(format)
        if self._state != "new":
            raise RuntimeError("a SegmentationStream can be read once (it keeps no masks); call segment_stream again")
        folder, scope = open_result_folder(out_dir, overwrite=overwrite, format=format, video_name=self.video_name)
        with scope:
            writer = write_chunks(iter(self), folder, format=format, video_name=self.video_name,
                                  frame_names=self.frame_names, frame_size=self.frame_size, objects=self.objects,
                                  summary=lambda: (self.summary(), [float(s) for s in self.scores]),
                                  overlay=overlay, fps=self.fps, timings=self.timings)
        self.files = writer.files(folder.target)
        result = self._result(store=writer.store(folder.target))
        result.objects = self.objects
        return result

    # ------------------------------------------------------------------ after reading

    def result(self) -> SegmentationResult:
        """The result of a stream that was read without keeping its masks (scores, areas, objects; no masks).

        Raises:
            RuntimeError: when the stream was not read to its end.
        """
        return self._result(store=StreamedMasks())

    def summary(self) -> dict:
        """The JSON summary written as ``result.json`` (see :meth:`svac.outputs.SegmentationResult.summary`)."""
        return self.result().summary()

    def _result(self, *, masks: np.ndarray | None = None, store=None) -> SegmentationResult:
        from svac.grounding.replay import default_after_correction

        if self._state != "done":
            raise RuntimeError("the stream has not been read to its end yet: iterate it, save() or collect() it")
        return SegmentationResult(
            text=self.text, masks=masks, scores=self.scores, frame_indices=self.frame_indices,
            clip_spans=self.clip_spans, frame_names=self.frame_names, video_name=self.video_name, fps=self.fps,
            mode=self.mode, csa_mode=self.csa_mode, num_visual_tokens=self.num_visual_tokens,
            seg_policy_applied=self.seg_policy_applied, model_name=self.model_name, timings=self.timings,
            objects=list(self.objects), answers=list(self.answers), areas=self.areas, frame_size=self.frame_size,
            tracking=self.tracking, source=self.source, store=store, model=self.model,
            after_correction=default_after_correction(self.model))
