"""Mask file formats of a segmentation result: writers fed chunk by chunk, and readers of the written files.

``svac segment --format F`` and ``result.save(dir, format=F)`` write one of:

* ``svac`` (default) -- ``masks/<object>/<frame>.png``: one palette PNG per object and frame,
  pixel value = the object id (1..K) on the object, 0 elsewhere, DAVIS palette; objects may
  overlap.
* ``davis`` -- ``<video>/<frame>.png``: the DAVIS results layout, one palette PNG per frame
  whose pixel value is the id of the object there (0 = background; where objects overlap the
  higher id is kept), DAVIS palette. ``svac metrics davis --pred DIR`` and the official DAVIS
  evaluation (davisvideochallenge/davis2017-evaluation) read ``DIR/<sequence>/<frame>.png``
  directly; the sequence folder is named after the video (file stem or frame-folder name).
* ``coco-rle`` -- ``masks.json``: per object, one COCO run-length encoding per frame
  (:func:`svac.evaluation.predictions.encode_rle`, i.e. ``pycocotools.mask.encode``: column-major,
  ``{"size": [H, W], "counts": "<ascii>"}``; read back by :func:`svac.data.readers.masks.decode_rle`), the
  encoding YouTube-VOS / MeViS style submissions and ``mask_dict.json`` files use::

      {"format": "coco-rle", "video": "blackswan", "height": 480, "width": 854,
       "frame_names": ["00000", ...],
       "objects": [{"id": 1, "name": "the swan", "query_index": 0, "found": true, "score": 0.93,
                    "segmentations": [{"size": [480, 854], "counts": "..."}, ...]}]}

Every writer writes the masks of a chunk before the next chunk is computed (the RLE writer
keeps only the short RLE strings until it writes ``masks.json`` at the end); every reader
returns ``bool (K, n, H, W)`` for a range of frames, so a result backed by files streams too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from svac.video.overlay import davis_palette

#: The formats, as ``--format`` spells them.
FORMATS = ("svac", "davis", "coco-rle")
#: Folder of the ``svac`` format's PNGs inside an output folder.
SVAC_MASKS_DIR = "masks"
#: File of the ``coco-rle`` format inside an output folder.
RLE_FILE = "masks.json"
#: zlib level of mask PNGs (1 = fastest; binary masks compress well at any level).
PNG_COMPRESS_LEVEL = 1


def check_format(name: str) -> str:
    """``name`` if it is one of :data:`FORMATS`.

    Raises:
        ValueError: naming the formats.
    """
    if name not in FORMATS:
        raise ValueError(f"unknown mask format {name!r}: expected one of {', '.join(FORMATS)}")
    return name


def format_items(name: str, video_name: str) -> tuple[str, ...]:
    """The entries a format writes at the top of an output folder (``masks``, ``<video>``, ``masks.json``)."""
    return {"svac": (SVAC_MASKS_DIR,), "davis": (video_name,), "coco-rle": (RLE_FILE,)}[check_format(name)]


def _palette_png(labels: np.ndarray, path: Path, palette: list[int]) -> None:
    img = Image.fromarray(labels, mode="P")
    img.putpalette(palette)
    img.save(path, compress_level=PNG_COMPRESS_LEVEL)


class MaskWriter:
    """Writes the masks of one result into ``folder`` chunk by chunk (base class of the formats).

    Args:
        folder: the output (staging) folder.
        video_name: the video's name (the ``davis`` sequence folder).
        frame_names: one name per frame (file stems).
        frame_size: ``(H, W)`` (pixels).
        objects: the K objects (:class:`svac.outputs.SegmentedObject`).
    """

    def __init__(self, folder: Path, video_name: str, frame_names: Sequence[str], frame_size: tuple[int, int],
                 objects: Sequence) -> None:
        self.folder = Path(folder)
        self.video_name = video_name
        self.frame_names = tuple(frame_names)
        self.frame_size = frame_size
        self.objects = list(objects)
        self.num_files = 0
        self._palette = davis_palette().reshape(-1).tolist()

    def write(self, start: int, masks: np.ndarray) -> None:
        """Write ``bool (K, n, H, W)`` masks of frames ``start .. start + n - 1``."""
        raise NotImplementedError

    def finish(self, scores: Sequence[float]) -> None:
        """Complete the files (``scores``: final per-object scores)."""

    @property
    def layout(self) -> str:
        """Where the masks are, for ``result.json``."""
        raise NotImplementedError


class SvacPngWriter(MaskWriter):
    """``masks/<object id>/<frame>.png``, one palette PNG per object and frame."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        (self.folder / SVAC_MASKS_DIR).mkdir()
        for obj in self.objects:
            (self.folder / SVAC_MASKS_DIR / str(obj.id)).mkdir()

    def write(self, start: int, masks: np.ndarray) -> None:
        for k, obj in enumerate(self.objects):
            folder = self.folder / SVAC_MASKS_DIR / str(obj.id)
            for i in range(masks.shape[1]):
                _palette_png(masks[k, i].view(np.uint8) * np.uint8(obj.id), folder / f"{self.frame_names[start + i]}.png",
                             self._palette)
                self.num_files += 1

    @property
    def layout(self) -> str:
        return f"{SVAC_MASKS_DIR}/<object>/<frame>.png"


class DavisPngWriter(MaskWriter):
    """``<video>/<frame>.png``, one indexed palette PNG per frame (pixel = object id; the higher id where they overlap)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if len(self.objects) > 255:
            raise ValueError(f"the davis format holds at most 255 objects per video, got {len(self.objects)}")
        (self.folder / self.video_name).mkdir()

    def write(self, start: int, masks: np.ndarray) -> None:
        h, w = masks.shape[2:]
        for i in range(masks.shape[1]):
            labels = np.zeros((h, w), dtype=np.uint8)
            for k, obj in enumerate(self.objects):
                labels[masks[k, i]] = obj.id
            _palette_png(labels, self.folder / self.video_name / f"{self.frame_names[start + i]}.png", self._palette)
            self.num_files += 1

    @property
    def layout(self) -> str:
        return f"{self.video_name}/<frame>.png"


class CocoRleWriter(MaskWriter):
    """``masks.json``: per object, one COCO RLE per frame (written at :meth:`finish`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rles: list[list[dict]] = [[] for _ in self.objects]

    def write(self, start: int, masks: np.ndarray) -> None:
        from svac.evaluation.predictions import encode_rle

        for k in range(len(self.objects)):
            self._rles[k].extend(encode_rle(mask) for mask in masks[k])

    def finish(self, scores: Sequence[float]) -> None:
        h, w = self.frame_size
        doc = {"format": "coco-rle", "video": self.video_name, "height": int(h), "width": int(w),
               "frame_names": list(self.frame_names),
               "objects": [{**obj.to_dict(), "score": float(scores[k]), "segmentations": self._rles[k]}
                           for k, obj in enumerate(self.objects)]}
        (self.folder / RLE_FILE).write_text(json.dumps(doc), encoding="utf-8")
        self.num_files = 1

    @property
    def layout(self) -> str:
        return RLE_FILE


WRITERS = {"svac": SvacPngWriter, "davis": DavisPngWriter, "coco-rle": CocoRleWriter}


def mask_writer(name: str, folder: Path, video_name: str, frame_names: Sequence[str], frame_size: tuple[int, int],
                objects: Sequence) -> MaskWriter:
    """The :class:`MaskWriter` of format ``name`` (one of :data:`FORMATS`).

    Raises:
        ValueError: for an unknown format (or more than 255 objects in the ``davis`` format).
    """
    return WRITERS[check_format(name)](folder, video_name, frame_names, frame_size, objects)


# ----------------------------------------------------------------------------- readers


class MaskFiles:
    """Reads the masks of a result back from the files a :class:`MaskWriter` wrote (the store of a saved result).

    Args:
        folder: the output folder.
        format: the format the files were written in.
        video_name, frame_names, frame_size, object_ids: what the writer was given.
    """

    def __init__(self, folder: Path, format: str, video_name: str, frame_names: Sequence[str],
                 frame_size: tuple[int, int], object_ids: Sequence[int]) -> None:
        self.folder = Path(folder)
        self.format = check_format(format)
        self.video_name = video_name
        self.frame_names = tuple(frame_names)
        self.frame_size = frame_size
        self.object_ids = [int(i) for i in object_ids]
        self._rle: list[list[dict]] | None = None

    def read(self, start: int, stop: int) -> np.ndarray:
        """``bool (K, stop - start, H, W)`` masks of frames ``start .. stop - 1``.

        Raises:
            FileNotFoundError: when a file is missing (the folder was moved or deleted).
        """
        k, (h, w) = len(self.object_ids), self.frame_size
        out = np.zeros((k, stop - start, h, w), dtype=bool)
        names = self.frame_names[start:stop]
        if self.format == "svac":
            for j, obj in enumerate(self.object_ids):
                for i, name in enumerate(names):
                    out[j, i] = np.asarray(Image.open(self.folder / SVAC_MASKS_DIR / str(obj) / f"{name}.png")) != 0
        elif self.format == "davis":
            ids = np.asarray(self.object_ids, dtype=np.uint8)[:, None, None]
            for i, name in enumerate(names):
                labels = np.asarray(Image.open(self.folder / self.video_name / f"{name}.png"))
                out[:, i] = labels[None] == ids
        else:
            from svac.data.readers.masks import decode_rle

            if self._rle is None:
                doc = json.loads((self.folder / RLE_FILE).read_text(encoding="utf-8"))
                self._rle = [obj["segmentations"] for obj in doc["objects"]]
            source = self.folder / RLE_FILE
            for j in range(k):
                for i, rle in enumerate(self._rle[j][start:stop]):
                    out[j, i] = decode_rle(rle, source=source, label=f"object {self.object_ids[j]} frame {start + i}")
        return out
