"""Reading videos: mp4/avi/webm files (decord), folders of JPEG/PNG frames, or in-memory frames.

Every source is wrapped in a :class:`VideoSource` that knows its frame count and
frame size without decoding, and decodes any set of frame indices as one batch
of RGB ``uint8`` arrays at the video's original resolution. Frame sampling for
the MLLM lives in :func:`sample_frame_indices`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from svac.errors import VideoReadError

#: File extensions read as video files (decoded with decord).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
#: File extensions read as frames inside a frame folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: PIL modes of 16-bit grayscale frames (16-bit PNGs), scaled to 8 bits (v * 255 / 65535).
GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
#: PIL modes that PIL converts to RGB without guessing a value range.
RGB_CONVERTIBLE_MODES = ("1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LA", "PA", "LAB", "HSV")


def chunk_spans(num_frames: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` frame ranges of at most ``chunk_size`` frames covering ``0..num_frames`` in order.

    Raises:
        ValueError: when ``chunk_size`` is below 1 (raised before the first span).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return ((start, min(start + chunk_size, num_frames)) for start in range(0, num_frames, chunk_size))


class VideoSource(ABC):
    """A video whose frames can be decoded by index.

    Attributes:
        name: a short name for messages and result files (file stem or folder name).
        num_frames: number of frames (frames).
        height, width: frame size (pixels).
        fps: frames per second when known (seconds⁻¹), else ``None``.
        frame_names: one name per frame used to name output files (``"00000"`` ...).
    """

    name: str
    num_frames: int
    height: int
    width: int
    fps: float | None
    frame_names: tuple[str, ...]

    @property
    def location(self) -> Path | None:
        """The file or frame folder :func:`open_video` opens this video from again, or ``None`` (frames in memory,
        a list of frame files)."""
        return None

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames ``indices`` as one batch.

        Args:
            indices: frame indices in ``[0, num_frames)``.

        Returns:
            ``uint8`` array of shape ``(len(indices), height, width, 3)``, RGB.

        Raises:
            IndexError: when an index is out of range.
            VideoReadError: when a frame cannot be decoded (the message names the file).
        """
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.name}: frame index {bad[0]} out of range [0, {self.num_frames})")
        if not idx:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        return self._read(idx)

    def iter_chunks(self, chunk_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_index, frames)`` for consecutive chunks of at most ``chunk_size`` frames.

        ``frames`` is ``uint8 (n, height, width, 3)``; the chunks cover every frame once, in order
        (a video file is decoded sequentially, never seeking).

        Raises:
            ValueError: when ``chunk_size`` is below 1.
        """
        for start, stop in chunk_spans(self.num_frames, chunk_size):
            yield start, self.read(range(start, stop))

    def read_sorted(self, indices: Sequence[int]) -> np.ndarray:
        """Decode the frames ``indices`` (strictly increasing) in one forward pass over the video.

        The same frames as :meth:`read`; a video file is decoded once from its start up to the
        last index, converting to RGB only the frames asked for, instead of seeking to each one
        (seeking re-decodes from the previous key frame every time). Frame folders and
        in-memory frames read the asked frames directly.

        Returns:
            ``uint8 (len(indices), height, width, 3)``, RGB.

        Raises:
            ValueError: when ``indices`` do not strictly increase.
            IndexError, VideoReadError: as :meth:`read`.
        """
        idx = [int(i) for i in indices]
        if any(b <= a for a, b in zip(idx, idx[1:])):
            raise ValueError(f"read_sorted needs strictly increasing frame indices, got {idx[:8]}...")
        return self.read(idx)

    @abstractmethod
    def _read(self, indices: list[int]) -> np.ndarray: ...


class DecordVideo(VideoSource):
    """A video file (mp4, avi, webm, mkv, mov) decoded with decord.

    decord reads a batch of increasing frame indices in one forward pass: it seeks only to the key
    frame before a GOP that holds an asked frame, decodes forward, and converts to RGB only the
    asked frames, so it never decodes a frame twice and skips whole GOPs without an asked frame.
    Measured here on 1000-frame 854x480 H.264 videos with 10 uniformly sampled indices (CPU per
    video frame): 1.7 ms (real content) and 0.35 ms (generated), against 3.4 / 0.7 ms for
    decoding every frame up to the last index (decord ``skip_frames``) and 3.6 / 0.7-1.1 ms with
    PyAV's decoder on one thread. Reads do not depend on decord's global array bridge
    (``decord.bridge.set_bridge``, which ``sam2``'s video loader sets to ``torch``).

    The sequential pass over every frame (:meth:`iter_chunks`, what SAM-2 and the writers read) is
    PyAV's decoder on one thread, pulled one frame at a time: decord's reader decodes ahead in its
    own thread, and behind a slow consumer (SAM-2) it buffered the rest of the video -- +1.16 GB
    for a 1000-frame 854x480 video read in chunks of 8 with 0.3 s between chunks (the cause of
    svac's peak RSS growing about 1 MB per frame), against a constant ~100 MB with PyAV. PyAV's RGB frames are bit-identical to decord's (checked
    on blackswan, car-shadow and generated videos) and cost the same or less CPU (4.5-4.6 ms per
    blackswan frame for both; 1.2 against 1.4-1.6 ms per generated 854x480 frame).
    """

    @property
    def location(self) -> Path:
        """The video file (absolute)."""
        return self.path.resolve()

    def __init__(self, path: Path) -> None:
        import decord  # lazy: decord loads FFmpeg libraries

        self.path = path
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        except Exception as exc:  # decord raises its own DECORDError / RuntimeError
            raise VideoReadError(f"cannot decode video {path}: {exc}") from exc
        self.num_frames = len(self._reader)
        if self.num_frames == 0:
            raise VideoReadError(f"video {path} has zero frames")
        try:
            first = _decord_array(self._reader[0])
            self._reader.seek(0)  # stop decord's read-ahead (see _read)
        except Exception as exc:
            raise VideoReadError(f"cannot decode the first frame of {path}: {exc}") from exc
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        fps = float(self._reader.get_avg_fps())
        self.fps = fps if fps > 0 else None
        self.name = path.stem
        self.frame_names = tuple(f"{i:05d}" for i in range(self.num_frames))

    def _read(self, indices: list[int]) -> np.ndarray:
        try:
            frames = _decord_array(self._reader.get_batch(indices))
            # After a read, decord's decoder thread keeps decoding the frames that follow into its
            # queue, unbounded: reading frame 0 of a 1000-frame 854x480 video left 1.2 GB resident a
            # few seconds later. Seeking back to the start empties that queue (45 MB).
            self._reader.seek(0)
        except Exception as exc:
            raise VideoReadError(f"cannot decode frames {indices[0]}..{indices[-1]} of {self.path}: {exc}") from exc
        return _to_rgb_batch(frames, self.name)

    def iter_chunks(self, chunk_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame once, in order, in chunks: PyAV's single-threaded decoder, pulled frame by frame.

        Nothing is decoded ahead of the chunk being read, so memory does not grow with the video's
        length whatever the consumer's speed (see the class docstring).

        Raises:
            ValueError: when ``chunk_size`` is below 1.
            VideoReadError: when decoding fails, or the file holds fewer frames than its index
                (``num_frames``) says.
        """
        import av  # lazy: PyAV loads FFmpeg libraries
        from av.video.reformatter import VideoReformatter

        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        try:
            container = av.open(str(self.path))
        except Exception as exc:
            raise VideoReadError(f"cannot decode video {self.path}: {exc}") from exc
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"  # no decoder threads: frames are decoded when asked for
            stream.codec_context.thread_count = 1
            frames = container.decode(stream)
            # one colour converter for the whole pass: frame.to_ndarray(format=...) makes a new one per
            # frame (0.23 against 0.07 ms per 128x128 frame here; same pixels)
            to_rgb = VideoReformatter()
            for start in range(0, self.num_frames, chunk_size):
                stop = min(start + chunk_size, self.num_frames)
                chunk = np.empty((stop - start, self.height, self.width, 3), dtype=np.uint8)
                for i in range(stop - start):
                    try:
                        frame = next(frames)
                    except StopIteration:
                        raise VideoReadError(f"{self.path} ended after {start + i} frames; its index lists "
                                             f"{self.num_frames}") from None
                    except Exception as exc:
                        raise VideoReadError(f"cannot decode frame {start + i} of {self.path}: {exc}") from exc
                    rgb = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                    if rgb.shape != chunk.shape[1:]:
                        raise VideoReadError(f"frame {start + i} of {self.path} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                             f"the video {self.width}x{self.height}")
                    chunk[i] = rgb
                yield start, chunk


class FrameFolderVideo(VideoSource):
    """A folder of JPEG/PNG frames, ordered by file name (natural order: ``2.png`` < ``10.png``)."""

    @property
    def location(self) -> Path | None:
        """The frame folder (absolute)."""
        return self.path.resolve()

    def __init__(self, folder: Path) -> None:
        self.path = folder
        files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
                       key=_natural_key)
        if not files:
            raise VideoReadError(f"frame folder {folder} has zero frames (no {', '.join(IMAGE_EXTENSIONS)} files)")
        _check_unique_stems(files)
        sizes = []
        for f in files:
            try:
                with Image.open(f) as im:
                    sizes.append(im.size)
                    mode = im.mode
            except (UnidentifiedImageError, OSError) as exc:
                raise VideoReadError(f"cannot read frame {f}: {exc}") from exc
            if mode not in RGB_CONVERTIBLE_MODES + GRAY16_MODES + ("I",):  # refused now, before any model loads
                raise _unsupported_mode(str(f), mode)
        if len(set(sizes)) > 1:
            first = sizes[0]
            odd = next(f for f, s in zip(files, sizes) if s != first)
            raise VideoReadError(
                f"frames of mixed sizes in {folder}: {files[0].name} is {first[0]}x{first[1]} but "
                f"{odd.name} is {sizes[files.index(odd)][0]}x{sizes[files.index(odd)][1]} (width x height)")
        self.files = tuple(files)
        self.width, self.height = sizes[0]
        self.num_frames = len(files)
        self.fps = None
        self.name = folder.name
        self.frame_names = tuple(f.stem for f in files)

    def _read(self, indices: list[int]) -> np.ndarray:
        out = np.empty((len(indices), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(indices):
            try:
                with Image.open(self.files[i]) as im:
                    out[k] = image_to_rgb(im, str(self.files[i]))
            except (UnidentifiedImageError, OSError) as exc:
                raise VideoReadError(f"cannot decode frame {self.files[i]}: {exc}") from exc
        return out


class FramePathsVideo(FrameFolderVideo):
    """A video given as an ordered list of frame image paths (dataset samples list their frames this way).

    Raises:
        VideoReadError: when the list is empty, a file is missing or unreadable, or sizes differ.
    """

    @property
    def location(self) -> None:
        """``None``: the frames were listed one by one, not a folder to open again."""
        return None

    def __init__(self, paths: Sequence[str | Path], *, name: str | None = None, check_sizes: bool = True) -> None:
        files = [Path(p) for p in paths]
        if not files:
            raise VideoReadError(f"{name or 'frame list'}: zero frames")
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise VideoReadError(f"frame not found: {missing[0]}")
        _check_unique_stems(files)
        first = files[0]
        try:
            with Image.open(first) as im:
                size = im.size
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoReadError(f"cannot read frame {first}: {exc}") from exc
        if check_sizes:
            for f in files[1:]:
                with Image.open(f) as im:
                    if im.size != size:
                        raise VideoReadError(f"frames of mixed sizes: {first.name} is {size[0]}x{size[1]} but "
                                             f"{f} is {im.size[0]}x{im.size[1]} (width x height)")
        self.path = first.parent
        self.files = tuple(files)
        self.width, self.height = size
        self.num_frames = len(files)
        self.fps = None
        self.name = name or first.parent.name
        self.frame_names = tuple(f.stem for f in files)


class ArrayVideo(VideoSource):
    """Frames given in memory: a list of ``uint8`` arrays / PIL images, or one ``(T, H, W[, C])`` array.

    Grayscale ``(H, W)`` / ``(H, W, 1)`` frames and RGBA frames are converted to RGB
    (alpha is dropped). Frames must share one size.
    """

    def __init__(self, frames: Sequence, *, name: str = "frames", fps: float | None = None) -> None:
        if len(frames) == 0:
            raise VideoReadError(f"{name}: the frame list has zero frames")
        rgb = [_frame_to_rgb(f, f"{name}[{i}]") for i, f in enumerate(frames)]
        shapes = {f.shape for f in rgb}
        if len(shapes) > 1:
            first = rgb[0].shape
            k = next(i for i, f in enumerate(rgb) if f.shape != first)
            raise VideoReadError(f"frames of mixed sizes in {name}: frame 0 is {first[1]}x{first[0]} but "
                                 f"frame {k} is {rgb[k].shape[1]}x{rgb[k].shape[0]} (width x height)")
        self._frames = np.stack(rgb)
        self.num_frames, self.height, self.width = self._frames.shape[:3]
        self.fps = fps
        self.name = name
        self.frame_names = tuple(f"{i:05d}" for i in range(self.num_frames))

    def _read(self, indices: list[int]) -> np.ndarray:
        return self._frames[indices]


def source_name(path: str | Path) -> str:
    """The name :func:`open_video` gives the video at ``path``, without opening it: a frame folder's
    name, a video file's stem (used to name the ``davis`` format's sequence folder before decoding)."""
    path = Path(path)
    return path.name if path.is_dir() else path.stem


def open_video(source: "str | Path | Sequence | np.ndarray | VideoSource") -> VideoSource:
    """Open a video given as a file path, a frame folder, a list of frames or a frame array.

    Args:
        source: an mp4/avi/webm/mkv/mov path; a folder of JPEG/PNG frames; a list of
            ``uint8`` arrays ``(H, W[, C])`` or PIL images; a ``uint8`` array ``(T, H, W[, C])``;
            or an existing :class:`VideoSource` (returned as is).

    Returns:
        The opened :class:`VideoSource` (nothing is decoded beyond the first frame).

    Raises:
        VideoReadError: missing path, unsupported extension, unreadable or corrupt file,
            zero frames, frames of mixed sizes, or frames that are not ``uint8``.
    """
    if isinstance(source, VideoSource):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise VideoReadError(f"video not found: {path}")
        if path.is_dir():
            return FrameFolderVideo(path)
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise VideoReadError(f"unsupported video file {path}: expected one of {', '.join(VIDEO_EXTENSIONS)} "
                                 f"or a folder of {', '.join(IMAGE_EXTENSIONS)} frames")
        if path.stat().st_size == 0:
            raise VideoReadError(f"video {path} is empty (0 bytes)")
        return DecordVideo(path)
    if isinstance(source, np.ndarray):
        if source.ndim not in (3, 4):
            raise VideoReadError(f"a frame array must be (T, H, W) or (T, H, W, C), got shape {source.shape}")
        return ArrayVideo(list(source))
    if isinstance(source, (list, tuple)):
        return ArrayVideo(source)
    raise VideoReadError(f"cannot read a video from {type(source).__name__}: expected a path, a folder, "
                         "a list of frames or a frame array")


def sample_frame_indices(num_frames: int, count: int, policy: Literal["uniform", "first"] = "uniform") -> np.ndarray:
    """Choose the frames the MLLM sees (SVAC §3.3: many frames spread over the whole video).

    Args:
        num_frames: frames in the video (frames, >= 1).
        count: frames wanted, T (>= 1). When ``count >= num_frames`` every frame is taken.
        policy: ``uniform`` -- T indices spread evenly from the first to the last frame
            (``floor(linspace(0, N-1, T) + 0.5)``, strictly increasing); ``first`` -- the first
            T frames (Sa2VA's input).

    Returns:
        Sorted, unique ``int64`` indices of shape ``(min(count, num_frames),)``.

    Raises:
        ValueError: when ``num_frames`` or ``count`` is below 1, or ``policy`` is unknown.
    """
    if num_frames < 1 or count < 1:
        raise ValueError(f"need num_frames >= 1 and count >= 1, got {num_frames} and {count}")
    if count >= num_frames:
        return np.arange(num_frames, dtype=np.int64)
    if policy == "first":
        return np.arange(count, dtype=np.int64)
    if policy == "uniform":
        if count == 1:
            return np.zeros(1, dtype=np.int64)
        return np.floor(np.linspace(0, num_frames - 1, count) + 0.5).astype(np.int64)
    raise ValueError(f"unknown sampling policy {policy!r}: expected 'uniform' or 'first'")


def image_to_rgb(image: Image.Image, where: str) -> np.ndarray:
    """A PIL image as ``uint8 (H, W, 3)`` RGB.

    16-bit grayscale images (16-bit PNGs, modes ``I;16*``; mode ``I`` with values in
    [0, 65535]) are scaled to 8 bits (``round(v * 255 / 65535)``), not clipped. 16-bit RGB(A)
    PNGs arrive from PIL already reduced to 8 bits.

    Raises:
        VideoReadError: for a mode svac cannot convert without guessing (e.g. ``F`` floats,
            ``I`` outside [0, 65535]); the message names ``where`` and the mode.
    """
    mode = image.mode
    if mode in GRAY16_MODES or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise VideoReadError(f"{where}: 32-bit integer image (mode I) with values outside [0, 65535]; "
                                 "svac reads 8-bit or 16-bit frames only")
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode not in RGB_CONVERTIBLE_MODES:
        raise _unsupported_mode(where, mode)
    return np.asarray(image.convert("RGB"))


def _unsupported_mode(where: str, mode: str) -> VideoReadError:
    return VideoReadError(f"{where}: image mode {mode} cannot be converted to RGB by svac (it reads 8-bit "
                          "gray/palette/RGB(A)/CMYK/YCbCr and 16-bit gray frames)")


def _check_unique_stems(files: Sequence[Path]) -> None:
    """Refuse two frames whose names differ only by extension: their masks would be written to one file."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise VideoReadError(f"two frames have the same name {f.stem!r}: {seen[f.stem]} and {f}; their masks "
                                 "would overwrite each other, so keep one of them")
        seen[f.stem] = f


def _frame_to_rgb(frame, where: str) -> np.ndarray:
    if isinstance(frame, Image.Image):
        return image_to_rgb(frame, where)
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise VideoReadError(f"{where}: frames must be uint8 RGB in [0, 255], got dtype {arr.dtype}")
    return _to_rgb(arr, where)


def _to_rgb(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.ascontiguousarray(arr[:, :, :3])
    raise VideoReadError(f"{where}: a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")


def _decord_array(value) -> np.ndarray:
    """A decord result as a numpy array, whatever decord's global bridge is (native NDArray, torch, ...)."""
    return value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)


def _to_rgb_batch(frames: np.ndarray, where: str) -> np.ndarray:
    if frames.ndim == 4 and frames.shape[3] == 3:
        return frames
    return np.stack([_to_rgb(f, where) for f in frames])


def _natural_key(path: Path) -> list:
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", path.name)]
