"""Writing a segmentation result: DAVIS-style palette PNG masks, an mp4 overlay and a JSON summary.

Layout of an output folder::

    OUT/masks/<object>/<frame>.png   one palette PNG per object and frame (object id k on the object,
                                      0 elsewhere; DAVIS palette), named like the source frames
    OUT/overlay.mp4                  the video with the masks blended in (H.264, every frame)
    OUT/result.json                  the answer, clip layout, scores, mask areas and timings

Everything is written into a staging folder next to ``OUT`` and moved into place
only once complete, so a failure leaves no partial output; a folder that already
holds results is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from svac.errors import OutputExistsError
from svac.outputs import SegmentationResult
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


def export_result(result: SegmentationResult, source: VideoSource, out_dir: str | Path, *, overwrite: bool = False,
                  overlay: bool = True, progress: bool = False) -> ExportedFiles:
    """Write ``result`` (masks over every frame of ``source``) to ``out_dir``.

    Args:
        result: a result whose masks cover every frame of ``source`` (``(K, N, H, W)``).
        source: the video the result belongs to (re-read for the overlay).
        out_dir: output folder; created if missing; may hold unrelated files.
        overwrite: replace results already in ``out_dir`` (``masks/``, ``overlay.mp4``, ``result.json``).
        overlay: also write ``overlay.mp4``.
        progress: show a progress bar.

    Raises:
        OutputExistsError: when ``out_dir`` already holds results and ``overwrite`` is false.
        ValueError: when the masks do not match the video's frame count and size.
    """
    out = Path(out_dir)
    existing = [name for name in RESULT_ITEMS if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{out} already holds results ({', '.join(existing)}); "
                                "choose another folder or pass --overwrite")
    k, n, h, w = result.masks.shape
    if (n, h, w) != (source.num_frames, source.height, source.width):
        raise ValueError(f"masks cover {n} frames of {w}x{h} but the video has {source.num_frames} frames of "
                         f"{source.width}x{source.height}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.svac-", dir=out.parent))
    try:
        count = _write_masks(result, staging / "masks", progress)
        if overlay:
            write_overlay(result.masks, source, staging / "overlay.mp4", fps=result.fps or DEFAULT_FPS,
                          progress=progress)
        summary = result.summary()
        summary["files"] = {"masks": "masks/<object>/<frame>.png", "overlay": "overlay.mp4" if overlay else None}
        (staging / "result.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        _move_into_place(staging, out, overwrite=overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportedFiles(out_dir=out, masks_dir=out / "masks", overlay=out / "overlay.mp4" if overlay else None,
                         summary=out / "result.json", num_mask_files=count)


def _write_masks(result: SegmentationResult, folder: Path, progress: bool) -> int:
    palette = davis_palette().reshape(-1).tolist()
    count = 0
    total = result.masks.shape[0] * result.masks.shape[1]
    with tqdm(total=total, desc="masks", unit="png", disable=not progress) as bar:
        for k in range(result.masks.shape[0]):
            obj_dir = folder / str(k + 1)
            obj_dir.mkdir(parents=True)
            for t, name in enumerate(result.frame_names):
                img = Image.fromarray(result.masks[k, t].astype(np.uint8) * (k + 1), mode="P")
                img.putpalette(palette)
                img.save(obj_dir / f"{name}.png")
                count += 1
                bar.update(1)
    return count


def write_overlay(masks: np.ndarray, source: VideoSource, path: Path, *, fps: float, progress: bool = False) -> None:
    """Write the video with coloured masks blended in as an H.264 mp4 (every frame).

    Args:
        masks: ``bool (K, N, H, W)``.
        source: the video (decoded again in chunks).
        path: output file.
        fps: frame rate (frames per second).

    Odd frame sizes are padded by one black pixel column/row, as H.264 4:2:0 needs even sizes.
    """
    import av
    from fractions import Fraction

    colors = davis_palette()[1:masks.shape[0] + 1].astype(np.float32)
    h, w = source.height, source.width
    even_h, even_w = h + h % 2, w + w % 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
        stream.options = {"crf": str(OVERLAY_CRF)}
        bar = tqdm(total=source.num_frames, desc="overlay", unit="frame", disable=not progress)
        for start, chunk in source.iter_chunks(OVERLAY_CHUNK):
            for i, frame in enumerate(chunk):
                blended = frame.astype(np.float32)
                for k in range(masks.shape[0]):
                    m = masks[k, start + i]
                    blended[m] = (1 - OVERLAY_ALPHA) * blended[m] + OVERLAY_ALPHA * colors[k]
                canvas = np.zeros((even_h, even_w, 3), dtype=np.uint8)
                canvas[:h, :w] = blended.round().astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                    container.mux(packet)
                bar.update(1)
        for packet in stream.encode():
            container.mux(packet)
        bar.close()


def _move_into_place(staging: Path, out: Path, *, overwrite: bool) -> None:
    if not out.exists():
        os.replace(staging, out)
        staging.mkdir()  # recreated empty so the caller's cleanup has something to remove
        return
    for item in sorted(staging.iterdir()):
        target = out / item.name
        if target.exists():
            if not overwrite:
                raise OutputExistsError(f"{target} appeared while writing; not overwritten")
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        os.replace(item, target)
