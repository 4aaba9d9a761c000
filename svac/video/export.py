"""Writing a segmentation result: DAVIS-style palette PNG masks, an mp4 overlay and a JSON summary.

Layout of an output folder::

    OUT/masks/<object>/<frame>.png   one palette PNG per object and frame (object id k on the object,
                                      0 elsewhere; DAVIS palette), named like the source frames
    OUT/overlay.mp4                  the video with the masks blended in (H.264, every frame)
    OUT/result.json                  the answer, clip layout, scores, mask areas and timings

The three are svac's results in ``OUT``; anything else in ``OUT`` is the user's and is kept.
They are written as a whole through :class:`svac.atomic_folder.OutputFolder`: into a staging
folder beside ``OUT`` (incrementally, chunk by chunk, by :class:`ResultWriter`), which then
replaces ``OUT`` atomically. After a failure at any point ``OUT`` holds its previous results or
nothing -- never new masks beside an old ``overlay.mp4`` or ``result.json``. A folder that
already holds results is refused unless ``overwrite=True``, and with it the old results are
replaced as a set (``--no-overlay`` leaves no old ``overlay.mp4`` behind).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from svac.atomic_folder import OutputFolder
from svac.outputs import SegmentationResult
from svac.progress import Progress, progress_bar, progress_iter
from svac.video.reader import VideoSource

#: Names svac writes inside an output folder (and refuses to overwrite without ``overwrite=True``).
RESULT_ITEMS = ("masks", "overlay.mp4", "result.json")
#: Frame rate of the overlay when the source does not tell it (frames per second).
DEFAULT_FPS = 24.0
#: Opacity of the mask colour in the overlay (0 = invisible, 1 = opaque).
OVERLAY_ALPHA = 0.5
#: Constant rate factor of the H.264 overlay (lower = better quality, larger file).
OVERLAY_CRF = 23
#: Frames decoded per batch while writing the overlay.
OVERLAY_CHUNK = 16


def is_result_item(name: str) -> bool:
    """Whether ``name`` (an entry of an output folder) is one of svac's result items."""
    return name in RESULT_ITEMS


def result_folder(out_dir: str | Path, *, overwrite: bool = False) -> OutputFolder:
    """The :class:`~svac.atomic_folder.OutputFolder` of a segmentation output folder (results: :data:`RESULT_ITEMS`).

    Open it (``with``) before any compute: it checks, locks and stages ``out_dir`` at once.
    """
    return OutputFolder(out_dir, overwrite=overwrite, results=is_result_item)


def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour palette, ``uint8 (256, 3)`` (index 0 black, 1 red, 2 green, ...)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


@dataclass(frozen=True)
class ExportedFiles:
    """Paths written by :func:`export_result`."""

    out_dir: Path
    masks_dir: Path
    overlay: Path | None
    summary: Path
    num_mask_files: int


class ResultWriter:
    """Writes one result into a folder frame chunk by frame chunk: mask PNGs, the overlay, then ``result.json``.

    Masks arrive in frame order as ``bool (K, n, H, W)`` chunks (all K objects, n consecutive
    frames), so a caller that produces masks chunk by chunk never holds the whole video's masks.
    ``result.json`` is written last, by :meth:`finish`.

    Args:
        folder: the folder to fill (a staging folder: see :class:`~svac.atomic_folder.OutputFolder`).
        source: the video (its frames are decoded again for the overlay, chunk by chunk).
        num_objects: K.
        overlay: also write ``overlay.mp4``.
        fps: the overlay's frame rate (frames per second).
        progress: a progress bar over mask PNGs (stage ``masks``): bool or callback (:mod:`svac.progress`).

    Raises:
        ValueError: when a chunk does not fit the video (frame count, size, order).
    """

    def __init__(self, folder: Path, source: VideoSource, num_objects: int, *, overlay: bool = True,
                 fps: float = DEFAULT_FPS, progress: Progress = False) -> None:
        self.folder = Path(folder)
        self.source = source
        self.num_objects = num_objects
        self.next_frame = 0
        self.num_mask_files = 0
        self._palette = davis_palette().reshape(-1).tolist()
        (self.folder / "masks").mkdir()
        for k in range(num_objects):
            (self.folder / "masks" / str(k + 1)).mkdir()
        self._overlay = _OverlayEncoder(self.folder / "overlay.mp4", source, num_objects, fps) if overlay else None
        self._bar = progress_bar(progress, total=num_objects * source.num_frames, desc="masks", unit="png")

    def write(self, start: int, masks: np.ndarray) -> None:
        """Write the masks of frames ``start .. start + n - 1``: ``bool (K, n, H, W)``, the next frames in order."""
        k, n, h, w = masks.shape
        if start != self.next_frame or start + n > self.source.num_frames:
            raise ValueError(f"mask chunk for frames {start}..{start + n - 1} does not follow frame {self.next_frame} "
                             f"of a {self.source.num_frames}-frame video")
        if (k, h, w) != (self.num_objects, self.source.height, self.source.width):
            raise ValueError(f"mask chunk of {k} object(s) at {w}x{h}, expected {self.num_objects} at "
                             f"{self.source.width}x{self.source.height}")
        names = self.source.frame_names
        for obj in range(k):
            obj_dir = self.folder / "masks" / str(obj + 1)
            for i in range(n):
                img = Image.fromarray(masks[obj, i].astype(np.uint8) * (obj + 1), mode="P")
                img.putpalette(self._palette)
                img.save(obj_dir / f"{names[start + i]}.png")
                self.num_mask_files += 1
                self._bar.update(1)
        if self._overlay is not None:
            self._overlay.write(start, masks)
        self.next_frame = start + n

    def finish(self, summary: dict) -> None:
        """Close the overlay and write ``result.json`` (``summary`` plus the layout of the files).

        Raises:
            ValueError: when masks were not written for every frame.
        """
        if self.next_frame != self.source.num_frames:
            raise ValueError(f"masks were written for {self.next_frame} of {self.source.num_frames} frames")
        if self._overlay is not None:
            self._overlay.close()
        self._bar.close()
        summary = dict(summary)
        summary["files"] = {"masks": "masks/<object>/<frame>.png",
                            "overlay": "overlay.mp4" if self._overlay is not None else None}
        (self.folder / "result.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")

    def abort(self) -> None:
        """Release the overlay encoder after a failure (the folder itself is the caller's to delete)."""
        if self._overlay is not None:
            self._overlay.abort()
        self._bar.close()


def export_result(result: SegmentationResult, source: VideoSource, out_dir: "str | Path | OutputFolder", *,
                  overwrite: bool = False, overlay: bool = True, progress: Progress = False) -> ExportedFiles:
    """Write ``result`` (masks over every frame of ``source``) to ``out_dir`` as a whole.

    Args:
        result: a result whose masks cover every frame of ``source`` (``(K, N, H, W)``).
        source: the video the result belongs to (re-read for the overlay).
        out_dir: output folder (created if missing; other files in it are kept), or an open
            :func:`result_folder` (then the results are written into its staging folder and
            appear when its ``with`` block ends; ``overwrite`` is the folder's).
        overwrite: replace results already in ``out_dir`` (``masks/``, ``overlay.mp4``, ``result.json``).
        overlay: also write ``overlay.mp4``.
        progress: a progress bar over mask PNGs (stage ``masks``; the overlay is written alongside):
            bool or callback (:mod:`svac.progress`).

    Raises:
        OutputExistsError: when ``out_dir`` already holds results and ``overwrite`` is false,
            or is a file.
        OutputLockedError: when another run is writing ``out_dir``.
        OutputWriteError: when ``out_dir`` cannot be written (no permission, read-only, disk
            full); it then holds its previous results, or nothing.
        ValueError: when the masks do not match the video's frame count and size.
    """
    k, n, h, w = result.masks.shape
    if (n, h, w) != (source.num_frames, source.height, source.width):
        raise ValueError(f"masks cover {n} frames of {w}x{h} but the video has {source.num_frames} frames of "
                         f"{source.width}x{source.height}")
    if isinstance(out_dir, OutputFolder):
        folder, scope = out_dir, nullcontext(out_dir)
    else:
        folder = result_folder(out_dir, overwrite=overwrite)
        scope = folder
    with scope:
        writer = ResultWriter(folder.path, source, k, overlay=overlay, fps=result.fps or DEFAULT_FPS,
                              progress=progress)
        try:
            for start in range(0, n, OVERLAY_CHUNK):
                writer.write(start, result.masks[:, start:start + OVERLAY_CHUNK])
            writer.finish(result.summary())
        except BaseException:
            writer.abort()
            raise
    out = folder.target
    return ExportedFiles(out_dir=out, masks_dir=out / "masks", overlay=out / "overlay.mp4" if overlay else None,
                         summary=out / "result.json", num_mask_files=writer.num_mask_files)


class _OverlayEncoder:
    """H.264 encoder of the video with coloured masks blended in, fed frame chunk by frame chunk.

    Odd frame sizes are padded by one black pixel column/row, as H.264 4:2:0 needs even sizes.
    """

    def __init__(self, path: Path, source: VideoSource, num_objects: int, fps: float) -> None:
        import av
        from fractions import Fraction

        self.source = source
        self.colors = object_colors(num_objects)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        h, w = source.height, source.width
        self.stream.width, self.stream.height, self.stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        self.stream.options = {"crf": str(OVERLAY_CRF)}

    def write(self, start: int, masks: np.ndarray) -> None:
        import av

        h, w = self.source.height, self.source.width
        frames = self.source.read(range(start, start + masks.shape[1]))
        for i, frame in enumerate(frames):
            canvas = np.zeros((self.stream.height, self.stream.width, 3), dtype=np.uint8)
            canvas[:h, :w] = blend_masks(frame, masks[:, i], self.colors)
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:  # the file is being discarded; a half-written stream may not close cleanly
            pass


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
    encoder = _OverlayEncoder(Path(path), source, masks.shape[0], fps)
    chunks = range(0, source.num_frames, OVERLAY_CHUNK)
    for start in progress_iter(chunks, progress, total=len(chunks), desc="overlay", unit="chunk"):
        encoder.write(start, masks[:, start:start + OVERLAY_CHUNK])
    encoder.close()


def object_colors(num_objects: int) -> np.ndarray:
    """The DAVIS palette colours of objects 1..K, ``uint8 (K, 3)`` (object k is drawn with palette index k)."""
    return davis_palette()[1:num_objects + 1]


def blend_masks(frame: np.ndarray, masks: np.ndarray, colors: np.ndarray, *, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blend coloured masks into one frame, as in ``overlay.mp4``.

    Args:
        frame: ``uint8 (H, W, 3)`` RGB.
        masks: ``bool (K, H, W)``, drawn in order (a later object covers an earlier one where they overlap).
        colors: ``uint8 (K, 3)`` RGB colour of each mask (see :func:`object_colors`).
        alpha: opacity of the colour (0 = invisible, 1 = opaque).

    Returns:
        ``uint8 (H, W, 3)``: the blended frame (``frame`` itself is not changed).

    Raises:
        ValueError: when the shapes disagree.
    """
    if masks.shape[1:] != frame.shape[:2] or len(colors) != masks.shape[0]:
        raise ValueError(f"cannot blend masks {masks.shape} with colours {np.shape(colors)} into a frame {frame.shape}")
    blended = frame.astype(np.float32)
    for mask, color in zip(masks, np.asarray(colors, dtype=np.float32)):
        blended[mask] = (1 - alpha) * blended[mask] + alpha * color
    return blended.round().astype(np.uint8)
