"""Writing a segmentation result: mask files (three formats), an mp4 overlay and a JSON summary.

Layout of an output folder (``--format svac``, the default)::

    OUT/masks/<object>/<frame>.png   one palette PNG per object and frame (object id k on the object,
                                      0 elsewhere; DAVIS palette), named like the source frames
    OUT/overlay.mp4                  the video with the masks tinted and outlined (H.264, every frame)
    OUT/result.json                  the answers, objects (id, query, found, score), clip layout,
                                      mask areas and timings

``--format davis`` writes ``OUT/<video>/<frame>.png`` (one indexed PNG per frame, the DAVIS
results layout) and ``--format coco-rle`` writes ``OUT/masks.json`` instead of ``OUT/masks/``
(:mod:`svac.video.formats`). These are svac's results in ``OUT``; anything else in ``OUT`` is the
user's and is kept. They are written as a whole through :class:`svac.atomic_folder.OutputFolder`:
into a staging folder beside ``OUT`` (incrementally, chunk by chunk, by :class:`ResultWriter`,
while the masks are computed), which then replaces ``OUT`` atomically. After a failure at any
point ``OUT`` holds its previous results or nothing -- never new masks beside an old
``overlay.mp4`` or ``result.json``. A folder that already holds results is refused unless
``overwrite=True``, and with it the old results are replaced as a set (``--no-overlay`` leaves
no old ``overlay.mp4`` behind).
"""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from svac.atomic_folder import OutputFolder
from svac.progress import Progress, progress_bar, progress_iter
from svac.video.formats import FORMATS, RLE_FILE, SVAC_MASKS_DIR, MaskFiles, check_format, mask_writer
from svac.video.overlay import (  # noqa: F401  -- re-exported: the overlay's public names live here too
    OVERLAY_ALPHA,
    OVERLAY_CRF,
    OverlayWriter,
    blend_masks,
    davis_palette,
    object_colors,
)
from svac.video.reader import VideoSource

if TYPE_CHECKING:
    from svac.outputs import MaskChunk, SegmentationResult, SegmentedObject, Timings

#: Fixed names svac writes inside an output folder (and refuses to overwrite without ``overwrite=True``);
#: the ``davis`` format adds the video's folder (see :func:`result_folder`).
RESULT_ITEMS = (SVAC_MASKS_DIR, RLE_FILE, "overlay.mp4", "result.json")
#: Frame rate of the overlay when the source does not tell it (frames per second).
DEFAULT_FPS = 24.0
#: Frames per chunk when an in-memory result is written.
OVERLAY_CHUNK = 16


def is_result_item(name: str) -> bool:
    """Whether ``name`` (an entry of an output folder) is one of svac's fixed result items."""
    return name in RESULT_ITEMS


def result_folder(out_dir: str | Path, *, overwrite: bool = False, sequence: str | None = None) -> OutputFolder:
    """The :class:`~svac.atomic_folder.OutputFolder` of a segmentation output folder.

    Open it (``with``) before any compute: it checks, locks and stages ``out_dir`` at once.

    Args:
        out_dir: the folder.
        overwrite: replace the results it already holds.
        sequence: the ``davis`` format's sequence folder (the video's name), also one of the results.
    """
    items = set(RESULT_ITEMS) | ({sequence} if sequence else set())
    return OutputFolder(out_dir, overwrite=overwrite, results=items.__contains__)


def open_result_folder(out_dir: "str | Path | OutputFolder", *, overwrite: bool, format: str,
                       video_name: str) -> tuple[OutputFolder, "AbstractContextManager[OutputFolder]"]:
    """The folder a result is written to, and the context to write it in.

    A path gets a new :func:`result_folder` (the ``davis`` format's sequence folder counted as a
    result), opened, staged and swapped in by the context; an :class:`OutputFolder` the caller
    already opened is written into as it is (the context does nothing: the caller commits it).

    Raises:
        nothing itself; opening the context raises as :class:`OutputFolder`.
    """
    if isinstance(out_dir, OutputFolder):
        return out_dir, nullcontext(out_dir)
    folder = result_folder(out_dir, overwrite=overwrite, sequence=video_name if format == "davis" else None)
    return folder, folder


@dataclass(frozen=True)
class ExportedFiles:
    """Paths written by :func:`export_result` / :meth:`svac.streaming.SegmentationStream.save`.

    Attributes:
        out_dir: the output folder.
        masks_dir: where the masks are (``masks/``, ``<video>/`` or ``masks.json``).
        overlay: ``overlay.mp4`` or ``None``.
        summary: ``result.json``.
        num_mask_files: mask files written.
        format: the mask format.
    """

    out_dir: Path
    masks_dir: Path
    overlay: Path | None
    summary: Path
    num_mask_files: int
    format: str = "svac"


class ResultWriter:
    """Writes one result into a folder chunk by chunk: mask files, the overlay, then ``result.json``.

    Each :class:`~svac.outputs.MaskChunk` (all K objects over n consecutive frames) is written
    when it arrives, so a caller that produces masks chunk by chunk never holds the whole video's
    masks. The overlay is drawn on the chunk's decoded frames (``chunk.frames``); a chunk without
    frames has them decoded from ``source``. ``result.json`` is written last, by :meth:`finish`.
    Seconds spent writing go to ``timings.write_masks`` / ``timings.write_overlay``.

    Args:
        folder: the folder to fill (a staging folder: see :class:`~svac.atomic_folder.OutputFolder`).
        format: one of :data:`svac.video.formats.FORMATS`.
        video_name: the video's name.
        frame_names: one name per frame.
        frame_size: ``(H, W)`` (pixels).
        objects: the K objects.
        overlay: also write ``overlay.mp4``.
        fps: the overlay's frame rate (frames per second).
        source: the video, to decode frames of chunks that carry none (overlay only).
        progress: a progress bar over frames (stage ``write``): bool or callback (:mod:`svac.progress`).
        timings: the call's :class:`~svac.outputs.Timings`, to which the writing seconds are added and which
            ``result.json`` then reports (a streamed call); ``None``: ``result.json`` keeps the summary's
            timings (writing a finished result is not part of its call).

    Raises:
        ValueError: unknown format; later, a chunk that does not fit the video (frame count, size, order).
    """

    def __init__(self, folder: Path, *, format: str, video_name: str, frame_names: Sequence[str],
                 frame_size: tuple[int, int], objects: Sequence["SegmentedObject"], overlay: bool = True,
                 fps: float = DEFAULT_FPS, source: VideoSource | None = None, progress: Progress = False,
                 timings: Timings | None = None) -> None:
        self.folder = Path(folder)
        self.format = check_format(format)
        self.frame_names = tuple(frame_names)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.objects = list(objects)
        self.source = source
        self.next_frame = 0
        self.timings = timings
        self.masks = mask_writer(self.format, self.folder, video_name, self.frame_names, self.frame_size, self.objects)
        h, w = self.frame_size
        self._overlay = OverlayWriter(self.folder / "overlay.mp4", w, h, fps, len(self.objects)) if overlay else None
        self._bar = progress_bar(progress, total=len(self.frame_names), desc="write", unit="frame")

    @property
    def num_mask_files(self) -> int:
        """Mask files written so far."""
        return self.masks.num_files

    def _spent(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``timings.<stage>`` when the call's timings are reported."""
        if self.timings is not None:
            setattr(self.timings, stage, getattr(self.timings, stage) + seconds)

    def write(self, chunk: "MaskChunk") -> None:
        """Write the masks (and overlay frames) of ``chunk``, the next frames in order."""
        k, n, h, w = chunk.masks.shape
        num_frames = len(self.frame_names)
        if chunk.start != self.next_frame or chunk.start + n > num_frames:
            raise ValueError(f"mask chunk for frames {chunk.start}..{chunk.start + n - 1} does not follow frame "
                             f"{self.next_frame} of a {num_frames}-frame video")
        if (k, h, w) != (len(self.objects), *self.frame_size):
            raise ValueError(f"mask chunk of {k} object(s) at {w}x{h}, expected {len(self.objects)} at "
                             f"{self.frame_size[1]}x{self.frame_size[0]}")
        t0 = time.perf_counter()
        self.masks.write(chunk.start, chunk.masks)
        t1 = time.perf_counter()
        self._spent("write_masks", t1 - t0)
        if self._overlay is not None:
            frames = chunk.frames
            if frames is None:
                if self.source is None:
                    raise ValueError("the overlay needs the frames: give the chunk's frames or the source")
                frames = self.source.read(range(chunk.start, chunk.start + n))
            self._overlay.write(frames, chunk.masks)
            self._spent("write_overlay", time.perf_counter() - t1)
        self.next_frame = chunk.start + n
        self._bar.update(n)

    def finish(self, summary: dict, scores: Sequence[float]) -> None:
        """Complete the mask files, close the overlay and write ``result.json`` (``summary`` + the file layout).

        Args:
            summary: the result's summary (:meth:`svac.outputs.SegmentationResult.summary`).
            scores: the final per-object scores (the ``coco-rle`` file holds them).

        Raises:
            ValueError: when masks were not written for every frame.
        """
        if self.next_frame != len(self.frame_names):
            raise ValueError(f"masks were written for {self.next_frame} of {len(self.frame_names)} frames")
        t0 = time.perf_counter()
        self.masks.finish(scores)
        t1 = time.perf_counter()
        self._spent("write_masks", t1 - t0)
        if self._overlay is not None:
            self._overlay.close()
            self._spent("write_overlay", time.perf_counter() - t1)
        self._bar.close()
        summary = dict(summary)
        if self.timings is not None:
            summary["timings_seconds"] = self.timings.to_dict()
        summary["files"] = {"format": self.format, "masks": self.masks.layout,
                            "overlay": "overlay.mp4" if self._overlay is not None else None}
        (self.folder / "result.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")

    def abort(self) -> None:
        """Release the overlay encoder after a failure (the folder itself is the caller's to delete)."""
        if self._overlay is not None:
            self._overlay.abort()
        self._bar.close()

    def files(self, out: Path) -> ExportedFiles:
        """The :class:`ExportedFiles` of this writer once its folder is at ``out``."""
        where = {"svac": out / SVAC_MASKS_DIR, "davis": out / self.masks.video_name, "coco-rle": out / RLE_FILE}
        return ExportedFiles(out_dir=out, masks_dir=where[self.format],
                             overlay=out / "overlay.mp4" if self._overlay is not None else None,
                             summary=out / "result.json", num_mask_files=self.num_mask_files, format=self.format)

    def store(self, out: Path) -> MaskFiles:
        """A reader of the masks once the folder is at ``out`` (the store of a result backed by files)."""
        return MaskFiles(out, self.format, self.masks.video_name, self.frame_names, self.frame_size,
                         [o.id for o in self.objects])


def write_chunks(chunks: Iterable[MaskChunk], folder: "OutputFolder", *, format: str, video_name: str,
                 frame_names: Sequence[str], frame_size: tuple[int, int], objects: Sequence["SegmentedObject"],
                 summary, overlay: bool, fps: float | None, source: VideoSource | None = None,
                 progress: Progress = False, timings: Timings | None = None) -> ResultWriter:
    """Write every chunk of ``chunks`` into the open ``folder``'s staging folder, then ``result.json``.

    Args:
        chunks: the masks in frame order (a stream's chunks are computed as they are written).
        folder: an open :class:`~svac.atomic_folder.OutputFolder`.
        summary: called after the last chunk, returns ``(summary dict, per-object scores)``.
        Others: as :class:`ResultWriter`.

    Returns:
        The finished :class:`ResultWriter` (its files appear when ``folder`` is committed).
    """
    writer = ResultWriter(folder.path, format=format, video_name=video_name, frame_names=frame_names,
                          frame_size=frame_size, objects=objects, overlay=overlay, fps=fps or DEFAULT_FPS,
                          source=source, progress=progress, timings=timings)
    try:
        for chunk in chunks:
            writer.write(chunk)
        data, scores = summary()
        writer.finish(data, scores)
    except BaseException:
        writer.abort()
        raise
    return writer


def export_result(result: SegmentationResult, source: VideoSource | None, out_dir: "str | Path | OutputFolder", *,
                  format: str = "svac", overwrite: bool = False, overlay: bool | None = True,
                  progress: Progress = False) -> ExportedFiles:
    """Write ``result`` (masks over every frame of ``source``) to ``out_dir`` as a whole.

    Args:
        result: a result whose masks cover every frame of the video (``(K, N, H, W)``, in memory or in files).
        source: the video the result belongs to (decoded again for the overlay), or ``None``
            (then no overlay).
        out_dir: output folder (created if missing; other files in it are kept), or an open
            :func:`result_folder` (then the results are written into its staging folder and
            appear when its ``with`` block ends; ``overwrite`` is the folder's).
        format: one of :data:`svac.video.formats.FORMATS`.
        overwrite: replace results already in ``out_dir``.
        overlay: also write ``overlay.mp4`` (``None``: when ``source`` is given).
        progress: a progress bar over frames (stage ``write``): bool or callback (:mod:`svac.progress`).

    Raises:
        OutputExistsError: when ``out_dir`` already holds results and ``overwrite`` is false,
            or is a file.
        OutputLockedError: when another run is writing ``out_dir``.
        OutputWriteError: when ``out_dir`` cannot be written (no permission, read-only, disk
            full); it then holds its previous results, or nothing.
        ValueError: when the masks do not match the video's frame count and size, the format
            is unknown, or ``overlay`` is asked without a source.
    """
    check_format(format)
    if overlay is None:
        overlay = source is not None
    if overlay and source is None:
        raise ValueError("the overlay needs the video: pass its source (or overlay=False)")
    h, w = result.frame_size
    if source is not None and (result.num_frames, h, w) != (source.num_frames, source.height, source.width):
        raise ValueError(f"masks cover {result.num_frames} frames of {w}x{h} but the video has {source.num_frames} "
                         f"frames of {source.width}x{source.height}")
    folder, scope = open_result_folder(out_dir, overwrite=overwrite, format=format, video_name=result.video_name)
    with scope:
        writer = write_chunks(result.iter_mask_chunks(OVERLAY_CHUNK), folder, format=format,
                              video_name=result.video_name, frame_names=result.frame_names,
                              frame_size=result.frame_size, objects=result.objects,
                              summary=lambda: (result.summary(), [float(s) for s in result.scores]),
                              overlay=overlay, fps=result.fps, source=source, progress=progress)
    return writer.files(folder.target)


def write_overlay(masks: np.ndarray, source: VideoSource, path: Path, *, fps: float,
                  progress: Progress = False) -> None:
    """Write the video with coloured masks blended in as an H.264 mp4 (every frame).

    Args:
        masks: ``bool (K, N, H, W)``.
        source: the video (decoded again in chunks).
        path: output file.
        fps: frame rate (frames per second).
        progress: a progress bar over frame chunks (stage ``overlay``): bool or callback (:mod:`svac.progress`).

    Odd frame sizes are padded by one black pixel column/row, as H.264 4:2:0 needs even sizes.
    """
    writer = OverlayWriter(Path(path), source.width, source.height, fps, masks.shape[0])
    try:
        chunks = range(0, source.num_frames, OVERLAY_CHUNK)
        for start in progress_iter(chunks, progress, total=len(chunks), desc="overlay", unit="chunk"):
            stop = min(start + OVERLAY_CHUNK, source.num_frames)
            writer.write(source.read(range(start, stop)), masks[:, start:stop])
    except BaseException:
        writer.abort()
        raise
    writer.close()


__all__ = ["DEFAULT_FPS", "FORMATS", "RESULT_ITEMS", "ExportedFiles", "ResultWriter", "blend_masks", "davis_palette",
           "export_result", "is_result_item", "object_colors", "result_folder", "write_chunks", "write_overlay"]
