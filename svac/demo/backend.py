"""What the demo page does, without the page: run a query or a chat turn, write its files, draw mask previews.

Nothing here imports Gradio, so the logic is tested directly and the page
(:mod:`svac.demo.app`) stays a thin layout over it. Every result is written with the
library's own writer (:func:`svac.video.export.export_result`: palette PNG masks,
``overlay.mp4``, ``result.json``) into a run folder of the backend's work folder; the
masks are also zipped for download.

Extension points, for the parts of issue 16 that build on a streaming inference:

- several objects per query (§2): results already carry K objects (``masks (K, N, H, W)``);
  :meth:`DemoBackend.previews` draws one preview per object (plus all objects together when K > 1).
- click refinement (§3): :meth:`DemoBackend.refine` adds a click on one object at one frame
  (pixels of the original video: the previews are drawn at the original size) through
  :meth:`svac.outputs.SegmentationResult.refine` and writes the refined run's files.
- export formats (§4): downloads are made by :meth:`DemoBackend._save` through ``export_result``;
  a format choice goes there.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from svac.errors import VideoReadError
from svac.progress import Progress
from svac.video.export import ExportedFiles, blend_masks, export_result, object_colors
from svac.video.reader import VideoSource, open_video

if TYPE_CHECKING:
    from svac.chat import ChatSession
    from svac.segmentation_model import SegmentationModel
    from svac.outputs import ChatResponse, SegmentationResult

#: Shown when Segment or Send is pressed before a video is chosen.
NO_VIDEO_MESSAGE = "no video: upload a video file or pick one of the examples"
#: Run folders kept in the work folder; older ones are deleted (the page has its own copies of the files).
MAX_KEPT_RUNS = 16


@dataclass(frozen=True)
class MaskPreview:
    """One image of the mask preview.

    Attributes:
        image: ``uint8 (H, W, 3)`` RGB: the frame at the video's original size with the mask(s) blended in.
        caption: what the image shows (object id, score, mask area in pixels, frame).
    """

    image: np.ndarray
    caption: str


@dataclass(frozen=True)
class DemoRun:
    """One segmentation shown on the page.

    Attributes:
        result: the library's result (``masks bool (K, N, H, W)``).
        source: the video it belongs to (decoded again for previews).
        files: what :func:`svac.video.export.export_result` wrote (masks, ``overlay.mp4``, ``result.json``).
        masks_zip: a zip of ``masks/<object>/<frame>.png`` (the palette PNGs), for download.
    """

    result: "SegmentationResult"
    source: VideoSource
    files: ExportedFiles
    masks_zip: Path

    @property
    def num_frames(self) -> int:
        """N, frames of the video (frames)."""
        return self.source.num_frames


def example_videos(folder: str | Path | None = None) -> list[Path]:
    """The example videos offered on the page, sorted by name.

    Args:
        folder: a folder of videos; ``None`` for the repository's ``examples/`` beside the
            ``svac`` package (present in a source checkout, absent from an installed wheel).

    Returns:
        The files in ``folder`` with a video extension; empty when the folder does not exist.
    """
    from svac.video.reader import VIDEO_EXTENSIONS

    if folder is None:
        folder = Path(__file__).resolve().parents[2] / "examples"
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


class DemoBackend:
    """Runs the page's requests on one model, one at a time.

    Args:
        model: a loaded model (:func:`svac.loading.load_model`): SVAC (segment and chat) or a
            baseline (segment only; chat raises its :class:`~svac.errors.ConfigError`).
        work_dir: folder for run folders (created if missing); the caller removes it when done.
        num_frames: T frames the MLLM sees (``None``: from the model's config).
        clip_len: frames per clip (``None``: from the model's config).
        keep_runs: run folders kept on disk (the oldest beyond this are deleted).
    """

    def __init__(self, model: "SegmentationModel", work_dir: str | Path, *, num_frames: int | None = None,
                 clip_len: int | None = None, keep_runs: int = MAX_KEPT_RUNS) -> None:
        if keep_runs < 1:
            raise ValueError(f"keep_runs must be at least 1, got {keep_runs}")
        self.model = model
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.num_frames = num_frames
        self.clip_len = clip_len
        self.keep_runs = keep_runs
        self._lock = threading.Lock()  # one model, one request at a time (hooks record the LLM's states)
        self._run_ids = itertools.count(1)  # thread-safe ticket for run folder names

    @property
    def model_description(self) -> str:
        """The model's name, and a warning when it has random weights."""
        config = self.model.config
        if config.trained:
            return f"model: {config.name}"
        return f"model: {config.name} (UNTRAINED: random weights, its answers and masks are meaningless)"

    def open(self, video: str | Path | None) -> VideoSource:
        """Open the page's video (a file path, or ``None`` when none was chosen).

        Raises:
            svac.errors.VideoReadError: :data:`NO_VIDEO_MESSAGE` when ``video`` is ``None`` or empty;
                the library's message when the file cannot be read.
        """
        if video is None or (isinstance(video, str) and not video.strip()):
            raise VideoReadError(NO_VIDEO_MESSAGE)
        return open_video(video)

    def segment(self, video: str | Path | None, query: str, *, progress: Progress = False) -> DemoRun:
        """Segment what ``query`` refers to in ``video`` and write the run's files.

        Args:
            video: path of the video file.
            query: the referring expression.
            progress: bool or callback (:mod:`svac.progress`): stages ``SAM-2`` and ``write`` (frames).

        Raises:
            svac.errors.VideoReadError: no video, or an unreadable one.
            ValueError: when ``query`` is empty (the library's message, as on the command line).
        """
        source = self.open(video)
        with self._lock:
            result = self.model.segment(source, query, num_frames=self.num_frames, clip_len=self.clip_len,
                                        progress=progress)
        return self._save(result, source, progress)

    def start_chat(self, video: str | Path | None) -> "ChatSession":
        """Open a chat about ``video`` (its frames are read once, for every turn).

        Raises:
            svac.errors.VideoReadError: no video, or an unreadable one.
            svac.errors.ConfigError: when the model cannot chat (a baseline).
        """
        source = self.open(video)
        with self._lock:
            return self.model.start_chat(source, num_frames=self.num_frames, clip_len=self.clip_len)

    def ask(self, session: "ChatSession", message: str, *,
            progress: Progress = False) -> tuple["ChatResponse", DemoRun | None]:
        """One chat turn: the answer, and its run when the answer segments something (holds ``[SEG]``).

        Raises:
            ValueError: when ``message`` is empty.
            svac.errors.SegCountError: on a ``[SEG]`` count the model's policy refuses.
        """
        with self._lock:
            response = session.ask(message, progress=progress)
        run = self._save(response.result, session.source, progress) if response.result is not None else None
        return response, run

    def previews(self, run: DemoRun, frame: int) -> list[MaskPreview]:
        """The mask preview at ``frame``: one image per object, plus all objects together first when K > 1.

        Images are at the video's original size, each object in its DAVIS palette colour (as in
        ``overlay.mp4`` and the palette PNGs); an answer without objects gives an empty list.

        Raises:
            IndexError: when ``frame`` is outside ``[0, N)``.
        """
        result = run.result
        if not 0 <= frame < run.num_frames:
            raise IndexError(f"frame {frame} is outside the video's {run.num_frames} frames")
        k = result.num_objects
        if k == 0:
            return []
        image = run.source.read([frame])[0]
        masks = result.masks[:, frame]
        colors = object_colors(k)
        name = result.frame_names[frame]
        previews = [MaskPreview(blend_masks(image, masks[i:i + 1], colors[i:i + 1]),
                                f"object {i + 1}: score {result.scores[i]:.2f}, {int(masks[i].sum())} px, "
                                f"frame {name}")
                    for i in range(k)]
        if k > 1:
            previews.insert(0, MaskPreview(blend_masks(image, masks, colors), f"all {k} objects, frame {name}"))
        return previews

    def refine(self, run: DemoRun, *, frame: int, point: tuple[float, float], positive: bool = True,
               object: int = 1, progress: Progress = False) -> DemoRun:
        """Correct ``run``'s object ``object`` with one click on ``frame`` and write the refined run's files.

        Args:
            run: the run shown on the page (it is not changed: a new run is returned).
            frame: the frame the click is on (0-based).
            point: ``(x, y)`` in pixels of the original video frame.
            positive: ``True``: the object is at the click; ``False``: it is not.
            object: the object id (1..K).
            progress: bool or callback (:mod:`svac.progress`): stages ``refine`` and ``write`` (frames).

        Raises:
            ValueError: an invalid click (:func:`svac.refinement.check_correction`), or a run whose
                result cannot be refined (a baseline head's).
        """
        with self._lock:
            result = run.result.refine(frame=frame, points=[point], labels=[1 if positive else 0], object=object,
                                       progress=progress)
        return self._save(result, run.source, progress)

    def object_preview(self, run: DemoRun, frame: int, object: int) -> MaskPreview:
        """Object ``object``'s preview at ``frame`` (the image a click refines), at the video's original size.

        Raises:
            IndexError: when ``frame`` is outside ``[0, N)`` or ``object`` outside ``1..K``.
        """
        if not 1 <= object <= run.result.num_objects:
            raise IndexError(f"object {object} is not one of the result's objects 1..{run.result.num_objects}")
        previews = self.previews(run, frame)
        return previews[object if run.result.num_objects > 1 else 0]

    def _save(self, result: "SegmentationResult", source: VideoSource, progress: Progress) -> DemoRun:
        run_dir = self.work_dir / f"run-{next(self._run_ids):06d}"
        files = export_result(result, source, run_dir, overlay=True, progress=progress)
        masks_zip = Path(shutil.make_archive(str(run_dir / f"{source.name}-masks"), "zip", root_dir=run_dir,
                                             base_dir=files.masks_dir.name))
        self._forget_old_runs()
        return DemoRun(result=result, source=source, files=files, masks_zip=masks_zip)

    def _forget_old_runs(self) -> None:
        runs = sorted(p for p in self.work_dir.glob("run-*") if p.is_dir())
        for old in runs[:-self.keep_runs]:
            shutil.rmtree(old, ignore_errors=True)
