"""Video sources the evaluation needs beyond :mod:`svac.video.reader`: explicit frame lists and looped videos.

* :class:`FrameListVideo` -- the frames a dataset lists for a video, in the listed order
  (Ref-YouTube-VOS, MeViS and ReVOS list a subset of a folder's files, e.g. every 5th frame).
* :class:`LoopedVideo` -- a video played again from its start until it has N frames, so a
  short clip can feed the frame-scaling study at T = 160.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from svac.errors import VideoReadError
from svac.video.reader import VideoSource


class FrameListVideo(VideoSource):
    """A video made of the given frame files, in the given order (nothing decoded until read).

    Args:
        paths: JPEG/PNG frame files, in temporal order (at least one).
        name: the video's name (default: the first frame's folder name).

    Frame size comes from the first file's header; every decoded frame is checked against it.
    ``frame_names`` are the file stems, so predictions are named like the source frames.

    Raises:
        VideoReadError: when ``paths`` is empty, a stem repeats, or the first frame cannot be read;
            on read, when a frame is missing, corrupt, or of another size (the message names the file).
    """

    def __init__(self, paths: Sequence[str | Path], *, name: str | None = None) -> None:
        self.files = tuple(Path(p) for p in paths)
        if not self.files:
            raise VideoReadError(f"video {name or '?'}: the frame list is empty")
        stems = [p.stem for p in self.files]
        if len(set(stems)) != len(stems):
            raise VideoReadError(f"video {name or self.files[0].parent.name}: a frame name repeats in the frame list")
        try:
            with Image.open(self.files[0]) as im:
                self.width, self.height = im.size
        except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
            raise VideoReadError(f"cannot read frame {self.files[0]}: {exc}") from exc
        self.num_frames = len(self.files)
        self.fps = None
        self.name = name if name is not None else self.files[0].parent.name
        self.frame_names = tuple(stems)

    def _read(self, indices: list[int]) -> np.ndarray:
        out = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(indices):
            path = self.files[i]
            try:
                with Image.open(path) as im:
                    frame = np.asarray(im.convert("RGB"))
            except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
                raise VideoReadError(f"cannot decode frame {path}: {exc}") from exc
            if frame.shape[:2] != (self.height, self.width):
                raise VideoReadError(f"frame {path} is {frame.shape[1]}x{frame.shape[0]} but {self.files[0]} is "
                                     f"{self.width}x{self.height} (width x height)")
            out[k] = frame
        return out


class LoopedVideo(VideoSource):
    """``source`` played again from its first frame until ``num_frames`` frames (frame i is ``i mod N``).

    Args:
        source: the video to loop.
        num_frames: frames of the looped video (>= 1); may be below ``source.num_frames``
            (then it is the first ``num_frames`` frames).

    Frame names are ``00000, 00001, ...`` over the looped length.

    Raises:
        ValueError: when ``num_frames < 1``.
    """

    def __init__(self, source: VideoSource, num_frames: int) -> None:
        if num_frames < 1:
            raise ValueError(f"a looped video needs at least one frame, got {num_frames}")
        self.source = source
        self.num_frames = int(num_frames)
        self.height, self.width, self.fps = source.height, source.width, source.fps
        self.name = source.name if num_frames == source.num_frames else f"{source.name}-x{num_frames}"
        self.frame_names = tuple(f"{i:05d}" for i in range(self.num_frames))

    def _read(self, indices: list[int]) -> np.ndarray:
        wrapped = [i % self.source.num_frames for i in indices]
        unique = sorted(set(wrapped))
        frames = self.source.read(unique)
        position = {f: k for k, f in enumerate(unique)}
        return frames[[position[i] for i in wrapped]]
