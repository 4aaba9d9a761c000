"""Ground-truth mask decoding: object-id PNGs, binary PNGs, COCO RLE and COCO polygons.

The loader classes here implement :class:`svac.data.sample.MaskLoader`: called
with frame positions they decode only those frames and return the union of
the referred objects' masks as bool ``(n, H, W)`` at the frame's resolution
(pixels). Every decode checks the mask's size against the frame's header and
raises :class:`~svac.errors.AnnotationError` naming both files on mismatch.

Conventions (benchmark sources):

* Object-id PNGs — Ref-YouTube-VOS and DAVIS-2017 ``Annotations``: palette
  (mode ``P``) images whose pixel *index* is the object id, 0 = background.
  A non-palette 8-bit image whose only values are 0 and 255 is the DAVIS-2016
  binary convention and is read as one object with id 1.
* COCO RLE — MeViS / ReVOS ``mask_dict.json``: ``{"size": [H, W], "counts": str}``
  (compressed) or ``counts`` as a list of ints (uncompressed), column-major,
  decoded with ``pycocotools.mask``.
* COCO polygons — RefCOCO/+/g via COCO ``instances.json``: a list of
  ``[x1, y1, x2, y2, ...]`` polygons, rasterised with ``pycocotools`` exactly
  like the COCO API's ``annToMask``.

pycocotools is imported inside the functions that need it.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from svac.data.readers.base import (
    REASON_MALFORMED,
    REASON_MISSING_FRAME,
    REASON_MISSING_MASK,
    REASON_SIZE_MISMATCH,
    InvalidAnnotation,
)

#: PIL modes whose pixel values are read as object ids.
ID_MASK_MODES = frozenset({"P", "L", "1", "I", "I;16"})
#: Foreground value of DAVIS-2016-style binary masks (mode ``L``, values {0, 255}).
BINARY_FOREGROUND_VALUE = 255
#: Object id given to the foreground of such a binary mask.
BINARY_FOREGROUND_ID = 1
#: Number of numbers in a COCO RLE ``size``: (height, width).
RLE_SIZE_LEN = 2

HW = tuple[int, int]


def read_image_hw(path: Path, *, reason: str = REASON_MISSING_FRAME) -> HW:
    """(height, width) in pixels of an image, from its header only (no pixel decoding).

    Args:
        path: an image file (JPEG, PNG ...).
        reason: the skip reason given when the file is missing.

    Raises:
        InvalidAnnotation: the file is missing (``reason``) or not a readable
            image (``malformed entry``); the message names the file.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError as exc:
        raise InvalidAnnotation(f"{path}: file not found", reason=reason) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidAnnotation(f"{path}: not a readable image ({exc})", reason=REASON_MALFORMED) from exc
    return height, width


def _open_mask(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError as exc:
        raise InvalidAnnotation(f"{path}: mask file not found", reason=REASON_MISSING_MASK) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidAnnotation(f"{path}: not a readable PNG mask ({exc})", reason=REASON_MALFORMED) from exc


def _decode(image: Image.Image, path: Path) -> np.ndarray:
    try:
        return np.asarray(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidAnnotation(f"{path}: corrupt mask image ({exc})", reason=REASON_MALFORMED) from exc


def read_id_mask(path: Path, *, binary_255_is_object_1: bool = False) -> np.ndarray:
    """Decode an object-id PNG: integer ``(H, W)`` array, pixel value = object id, 0 = background.

    Args:
        path: a PNG in mode ``P`` (palette index = id), ``L``/``I``/``I;16``
            (grey value = id) or ``1`` (True = id 1).
        binary_255_is_object_1: read a non-palette image whose values are all in
            {0, 255} as a DAVIS-2016 binary mask (255 → object id 1).

    Returns:
        The id array (dtype uint8, int32 or uint16 as stored; ``1``-mode masks as uint8).

    Raises:
        InvalidAnnotation: missing file (``missing mask``), unreadable or
            colour (RGB/RGBA) PNG (``malformed entry``); the message names the file.
    """
    with _open_mask(path) as image:
        mode = image.mode
        if mode not in ID_MASK_MODES:
            raise InvalidAnnotation(
                f"{path}: mask has colour mode {mode!r}; expected a palette (mode P) or greyscale PNG "
                "whose pixel values are object ids",
                reason=REASON_MALFORMED,
            )
        ids = _decode(image, path)
    if mode == "1":
        return ids.astype(np.uint8)
    if binary_255_is_object_1 and mode != "P" and ids.dtype == np.uint8:
        foreground = ids == BINARY_FOREGROUND_VALUE
        if foreground.any() and not ((ids != 0) & ~foreground).any():
            return foreground.astype(np.uint8) * BINARY_FOREGROUND_ID
    return ids


def read_binary_mask(path: Path) -> np.ndarray:
    """Decode a one-object PNG mask: bool ``(H, W)``, True where the pixel is non-zero.

    Raises:
        InvalidAnnotation: missing file (``missing mask``), unreadable or colour PNG
            (``malformed entry``); the message names the file.
    """
    with _open_mask(path) as image:
        if image.mode not in ID_MASK_MODES:
            raise InvalidAnnotation(
                f"{path}: mask has colour mode {image.mode!r}; expected a greyscale, 1-bit or palette PNG "
                "(non-zero = object)",
                reason=REASON_MALFORMED,
            )
        return _decode(image, path) != 0


def rle_size(rle: Any, *, source: Path | str, label: str) -> HW:
    """Check the structure of a COCO RLE dict (no decoding) and return its (height, width).

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list[int]}``.
        source: the file the RLE comes from, named in messages.
        label: where in the file, e.g. ``"anno_id '12' frame 3"``.

    Raises:
        InvalidAnnotation: (``malformed entry``) wrong keys or types.
    """
    size = rle.get("size") if isinstance(rle, dict) else None
    counts = rle.get("counts") if isinstance(rle, dict) else None
    size_ok = (
        isinstance(size, (list, tuple))
        and len(size) == RLE_SIZE_LEN
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    )
    counts_ok = isinstance(counts, (str, bytes)) or (
        isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts)
    )
    if not (size_ok and counts_ok):
        raise InvalidAnnotation(
            f"{source}: {label}: not a COCO RLE (expected {{'size': [height, width], 'counts': str or list}})",
            reason=REASON_MALFORMED,
        )
    return int(size[0]), int(size[1])


def decode_rle(rle: Any, *, source: Path | str = "RLE", label: str = "mask") -> np.ndarray:
    """Decode one COCO RLE (compressed or uncompressed) to bool ``(H, W)``.

    A list of RLE dicts (several parts of one object) is decoded to their union. Reads what
    ``pycocotools.mask.encode`` writes (and :func:`svac.evaluation.predictions.encode_rle`).

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list[int]}``, or a list of them.
        source, label: the file and the place in it, named in error messages.

    Raises:
        InvalidAnnotation: (``malformed entry``) not an RLE, or pycocotools rejects it.
    """
    from pycocotools import mask as mask_utils

    if isinstance(rle, list):
        if not rle:
            raise InvalidAnnotation(f"{source}: {label}: empty list of RLEs", reason=REASON_MALFORMED)
        parts = [decode_rle(part, source=source, label=label) for part in rle]
        if len({part.shape for part in parts}) != 1:
            raise InvalidAnnotation(f"{source}: {label}: RLE parts of different sizes", reason=REASON_MALFORMED)
        return np.logical_or.reduce(parts)
    height, width = rle_size(rle, source=source, label=label)
    counts = rle["counts"]
    try:
        if isinstance(counts, list):
            compressed = mask_utils.frPyObjects(rle, height, width)
        else:
            compressed = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        decoded = mask_utils.decode(compressed)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise InvalidAnnotation(f"{source}: {label}: cannot decode RLE ({exc})", reason=REASON_MALFORMED) from exc
    if decoded.shape != (height, width):
        raise InvalidAnnotation(f"{source}: {label}: RLE decodes to the wrong size", reason=REASON_MALFORMED)
    return decoded.astype(bool)


def coco_segmentation_to_mask(segmentation: Any, height: int, width: int, *, source: Path, label: str) -> np.ndarray:
    """Rasterise a COCO ``segmentation`` to bool ``(height, width)`` (the COCO API's ``annToMask``).

    Args:
        segmentation: polygons ``[[x1, y1, x2, y2, ...], ...]`` (pixel coordinates),
            an uncompressed RLE (``counts`` list, used for ``iscrowd`` objects) or
            a compressed RLE.
        height: image height in pixels, from the COCO ``images`` entry.
        width: image width in pixels.
        source: the instances file, named in messages.
        label: e.g. ``"annotation 1719310"``.

    Raises:
        InvalidAnnotation: (``malformed entry``) unsupported or corrupt segmentation.
    """
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        if isinstance(segmentation.get("counts"), list):
            rle_size(segmentation, source=source, label=label)
            try:
                segmentation = mask_utils.frPyObjects(segmentation, height, width)
            except (ValueError, TypeError) as exc:
                raise InvalidAnnotation(f"{source}: {label}: bad RLE ({exc})", reason=REASON_MALFORMED) from exc
        mask = decode_rle(
            {"size": list(segmentation.get("size", ())), "counts": segmentation.get("counts")}, source=source, label=label
        )
    elif isinstance(segmentation, list) and segmentation and all(_is_polygon(poly) for poly in segmentation):
        try:
            mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))).astype(bool)
        except (ValueError, TypeError) as exc:
            raise InvalidAnnotation(f"{source}: {label}: bad polygon ({exc})", reason=REASON_MALFORMED) from exc
    else:
        raise InvalidAnnotation(
            f"{source}: {label}: segmentation must be a list of polygons or an RLE dict", reason=REASON_MALFORMED
        )
    if mask.shape != (height, width):
        raise InvalidAnnotation(
            f"{source}: {label}: segmentation is {mask.shape} but the image is {(height, width)} (height, width)",
            reason=REASON_SIZE_MISMATCH,
        )
    return mask


def _is_polygon(poly: Any) -> bool:
    """A COCO polygon: an even-length list of at least three (x, y) points."""
    min_coords = 6
    return (
        isinstance(poly, list)
        and len(poly) >= min_coords
        and len(poly) % 2 == 0
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in poly)
    )


def check_positions(positions: Sequence[int], num_frames: int) -> list[int]:
    """Validate frame positions (indices into ``frame_paths``).

    Raises:
        IndexError: a position outside ``[0, num_frames)``.
        TypeError: a position that is not an integer.
    """
    checked = [operator.index(p) for p in positions]
    for p in checked:
        if not 0 <= p < num_frames:
            raise IndexError(f"frame position {p} out of range for a video of {num_frames} frames")
    return checked


def _check_same_size(mask_hw: HW, frame: Path, mask_source: str) -> None:
    frame_hw = read_image_hw(frame)
    if mask_hw != frame_hw:
        raise InvalidAnnotation(
            f"{mask_source}: mask is {mask_hw[0]}x{mask_hw[1]} but frame {frame} is "
            f"{frame_hw[0]}x{frame_hw[1]} (height x width)",
            reason=REASON_SIZE_MISMATCH,
        )


def _stack(masks: list[np.ndarray], frame_paths: Sequence[Path], positions: list[int]) -> np.ndarray:
    if not masks:
        height, width = read_image_hw(frame_paths[0])
        return np.zeros((0, height, width), dtype=bool)
    if len({m.shape for m in masks}) != 1:
        raise InvalidAnnotation(
            f"frames {[str(frame_paths[p]) for p in positions]} have different sizes; one call must ask for frames "
            "of one size",
            reason=REASON_SIZE_MISMATCH,
        )
    return np.stack(masks)


@dataclass(frozen=True)
class IdPngMaskLoader:
    """Union of objects from object-id PNGs (Ref-YouTube-VOS, Ref-DAVIS17, custom ``ids``).

    Attributes:
        frame_paths: the video's frames; position ``i`` pairs with ``mask_paths[i]``.
        mask_paths: one id PNG per frame.
        object_ids: ids whose pixels form the mask (empty → all-False masks).
        binary_255_is_object_1: read {0, 255} greyscale masks as object 1 (DAVIS-2016).

    Calling it with positions returns bool ``(len(positions), H, W)``; see the module docstring.
    """

    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]
    object_ids: tuple[int, ...]
    binary_255_is_object_1: bool = False

    def __call__(self, positions: Sequence[int]) -> np.ndarray:
        checked = check_positions(positions, len(self.frame_paths))
        masks = []
        for p in checked:
            ids = read_id_mask(self.mask_paths[p], binary_255_is_object_1=self.binary_255_is_object_1)
            _check_same_size(ids.shape, self.frame_paths[p], str(self.mask_paths[p]))
            masks.append(np.isin(ids, self.object_ids))
        return _stack(masks, self.frame_paths, checked)


@dataclass(frozen=True)
class PerObjectPngMaskLoader:
    """Union of one-object binary PNGs (custom format ``binary``).

    Attributes:
        frame_paths: the video's frames.
        mask_paths: per referred object, one PNG per frame (``mask_paths[k][i]``
            is object ``k`` on frame ``i``); non-zero pixels are the object.

    Calling it with positions returns bool ``(len(positions), H, W)``.
    """

    frame_paths: tuple[Path, ...]
    mask_paths: tuple[tuple[Path, ...], ...]

    def __call__(self, positions: Sequence[int]) -> np.ndarray:
        checked = check_positions(positions, len(self.frame_paths))
        masks = []
        for p in checked:
            frame_hw = read_image_hw(self.frame_paths[p])
            union = np.zeros(frame_hw, dtype=bool)
            for per_frame in self.mask_paths:
                mask = read_binary_mask(per_frame[p])
                _check_same_size(mask.shape, self.frame_paths[p], str(per_frame[p]))
                union |= mask
            masks.append(union)
        return _stack(masks, self.frame_paths, checked)


@dataclass(frozen=True)
class RleMaskLoader:
    """Union of per-frame COCO RLEs (MeViS, ReVOS ``mask_dict.json``; custom ``rle``).

    Attributes:
        frame_paths: the video's frames.
        rles: per referred object (MeViS ``anno_id``), one entry per frame: an
            RLE dict, a list of RLE dicts, or ``None`` (object absent).
        labels: one name per object for messages (e.g. the anno_id).
        source: the mask file, named in messages.

    Calling it with positions returns bool ``(len(positions), H, W)``.
    """

    frame_paths: tuple[Path, ...]
    rles: tuple[Sequence[Any], ...]
    labels: tuple[str, ...]
    source: Path

    def __call__(self, positions: Sequence[int]) -> np.ndarray:
        checked = check_positions(positions, len(self.frame_paths))
        masks = []
        for p in checked:
            frame_hw = read_image_hw(self.frame_paths[p])
            union = np.zeros(frame_hw, dtype=bool)
            for label, per_frame in zip(self.labels, self.rles):
                entry = per_frame[p]
                if entry is None:
                    continue
                mask = decode_rle(entry, source=self.source, label=f"{label} frame {p}")
                _check_same_size(mask.shape, self.frame_paths[p], f"{self.source}: {label} frame {p}")
                union |= mask
            masks.append(union)
        return _stack(masks, self.frame_paths, checked)


@dataclass(frozen=True)
class CocoSegmentationMaskLoader:
    """The mask of one COCO annotation on its image (RefCOCO / RefCOCO+ / RefCOCOg).

    Attributes:
        frame_paths: the single image.
        segmentation: the annotation's COCO ``segmentation`` (polygons or RLE).
        height: image height from the COCO ``images`` entry (pixels).
        width: image width (pixels).
        source: the instances file, named in messages.
        label: e.g. ``"annotation 1719310"``.

    Calling it with positions (only ``0`` is valid) returns bool ``(len(positions), H, W)``.
    """

    frame_paths: tuple[Path, ...]
    segmentation: Any
    height: int
    width: int
    source: Path
    label: str

    def __call__(self, positions: Sequence[int]) -> np.ndarray:
        checked = check_positions(positions, len(self.frame_paths))
        masks = []
        for p in checked:
            mask = coco_segmentation_to_mask(
                self.segmentation, self.height, self.width, source=self.source, label=self.label
            )
            _check_same_size(mask.shape, self.frame_paths[p], f"{self.source}: {self.label}")
            masks.append(mask)
        return _stack(masks, self.frame_paths, checked)
