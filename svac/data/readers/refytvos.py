"""Readers for the Ref-YouTube-VOS ``meta_expressions.json`` layout: Ref-YouTube-VOS, Ref-DAVIS17, ``rvos``.

Ref-YouTube-VOS (Seo et al., ECCV 2020, "URVOS"), as released for the
CodaLab challenge::

    root/
      meta_expressions/<split>/meta_expressions.json
      <split>/JPEGImages/<video>/<frame>.jpg
      <split>/Annotations/<video>/<frame>.png     # train only in the release
      <split>/meta.json                           # optional: YouTube-VOS object categories

``meta_expressions.json`` is ``{"videos": {video: {"expressions": {exp_id:
{"exp": text, "obj_id": "1"}}, "frames": [frame stems]}}}``. The listed frames
are the annotated ones (every 5th frame of the original video) and are the
sample's frames. Annotations are palette PNGs whose pixel index is the object
id. Splits without ``Annotations`` (the official ``valid``/``test``) give
``mask_loader=None``; their expressions carry no ``obj_id``. When the split has
YouTube-VOS's ``meta.json`` (``{"videos": {video: {"objects": {id: {"category",
"frames"}}}}}``; the synthetic benchmark writes one too, its categories are the
shapes), an expression naming one object carries its category as
``meta["object_category"]``.

Ref-DAVIS17 (Khoreva et al., ACCV 2018) is read in the same layout after the
usual conversion (two annotators x {first-frame, full-video} expressions per
object, ordered obj-major in groups of four), or straight from DAVIS-style
folders ``JPEGImages/480p`` / ``Annotations/480p`` next to a root-level
``meta_expressions.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svac.data.readers.base import (
    REASON_MALFORMED,
    REASON_MISSING_MASK,
    REASON_NO_OBJECT,
    REASON_SIZE_MISMATCH,
    FolderIndex,
    InvalidAnnotation,
    ReferringDataset,
    SampleCollector,
    parse_frame_list,
    parse_int_ids,
    parse_text,
    read_json,
    require_dir,
    require_mapping,
    resolve_frames,
)
from svac.data.readers.masks import IdPngMaskLoader, read_image_hw
from svac.data.sample import CATEGORY_KEY, ReferringSample
from svac.errors import AnnotationError

META_FILE = "meta_expressions.json"
META_DIR = "meta_expressions"
FRAMES_DIR = "JPEGImages"
MASKS_DIR = "Annotations"
MASK_SUFFIX = ".png"
#: YouTube-VOS's per-split object file (``{"videos": {video: {"objects": {id: {"category", ...}}}}}``).
CATEGORIES_FILE = "meta.json"
#: DAVIS keeps frames and masks one level deeper, under the resolution name.
DAVIS_RESOLUTION = "480p"
#: Ref-YouTube-VOS: the CodaLab ``valid`` meta file also lists the ``test`` videos.
YTVOS_VALID_SPLIT = "valid"
YTVOS_TEST_SPLIT = "test"
#: Keys of an expression entry that the reader turns into sample fields (others go to ``meta``).
EXPRESSION_KEYS = frozenset({"exp", "obj_id"})
#: Ref-DAVIS17 conversion order inside each object's group of expressions.
DAVIS_GROUP = (
    (1, "first_frame"),
    (1, "full_video"),
    (2, "first_frame"),
    (2, "full_video"),
)

YTVOS_EXPECTED = (
    "a Ref-YouTube-VOS root holding meta_expressions/<split>/meta_expressions.json and "
    "<split>/JPEGImages/<video>/<frame>.jpg (plus <split>/Annotations/<video>/<frame>.png for splits with masks)"
)
DAVIS_EXPECTED = (
    "a Ref-DAVIS17 root in the Ref-YouTube-VOS layout (meta_expressions/<split>/meta_expressions.json, "
    "<split>/JPEGImages, <split>/Annotations) or DAVIS folders (meta_expressions.json, JPEGImages/480p, "
    "Annotations/480p)"
)


@dataclass(frozen=True)
class MetaExpressionsLayout:
    """Where one split of a ``meta_expressions.json`` dataset lives.

    Attributes:
        meta_file: the split's ``meta_expressions.json``.
        frames_dir: folder holding one frame folder per video.
        masks_dir: folder holding one mask folder per video, or ``None`` (no ground truth).
        categories_file: YouTube-VOS's ``meta.json`` with the objects' categories, or ``None``.
    """

    meta_file: Path
    frames_dir: Path
    masks_dir: Path | None
    categories_file: Path | None = None


def _available_splits(root: Path) -> list[str]:
    meta_root = root / META_DIR
    if not meta_root.is_dir():
        return []
    return sorted(p.name for p in meta_root.iterdir() if (p / META_FILE).is_file())


def ytvos_layout(root: Path, split: str) -> MetaExpressionsLayout:
    """Resolve the Ref-YouTube-VOS layout of ``split`` under ``root``.

    Raises:
        AnnotationError: the root, the split's meta file or frame folder is
            missing; the message lists the splits that exist.
    """
    require_dir(root, YTVOS_EXPECTED)
    meta_file = root / META_DIR / split / META_FILE
    if not meta_file.is_file():
        raise AnnotationError(
            f"{meta_file} not found (splits present: {_available_splits(root) or 'none'}); expected {YTVOS_EXPECTED}"
        )
    frames_dir = require_dir(root / split / FRAMES_DIR, YTVOS_EXPECTED)
    masks_dir = root / split / MASKS_DIR
    categories = root / split / CATEGORIES_FILE
    return MetaExpressionsLayout(meta_file, frames_dir, masks_dir if masks_dir.is_dir() else None,
                                 categories if categories.is_file() else None)


def davis_layout(root: Path, split: str) -> MetaExpressionsLayout:
    """Resolve a Ref-DAVIS17 split: the converted Ref-YouTube-VOS layout first, then DAVIS folders.

    Meta file: ``meta_expressions/<split>/meta_expressions.json``, else a
    root-level ``meta_expressions.json`` (one file for the whole dataset, read
    for any split). Frames: ``<split>/JPEGImages``, else ``JPEGImages/480p``,
    else ``JPEGImages``; masks likewise with ``Annotations``.

    Raises:
        AnnotationError: no meta file or no frame folder found; the message
            lists what was looked for.
    """
    require_dir(root, DAVIS_EXPECTED)
    meta_candidates = [root / META_DIR / split / META_FILE, root / META_FILE]
    meta_file = next((p for p in meta_candidates if p.is_file()), None)
    if meta_file is None:
        raise AnnotationError(
            f"{root}: no expressions file (looked for {', '.join(map(str, meta_candidates))}); expected {DAVIS_EXPECTED}"
        )

    def first_dir(name: str) -> Path | None:
        candidates = [root / split / name, root / name / DAVIS_RESOLUTION, root / name]
        return next((p for p in candidates if p.is_dir()), None)

    frames_dir = first_dir(FRAMES_DIR)
    if frames_dir is None:
        raise AnnotationError(f"{root}: no frame folder for split {split!r}; expected {DAVIS_EXPECTED}")
    return MetaExpressionsLayout(meta_file, frames_dir, first_dir(MASKS_DIR))


def _object_categories(path: Path | None) -> dict[tuple[str, int], str]:
    """``(video, object id) -> category`` from YouTube-VOS's ``meta.json`` (empty for ``None``).

    Raises:
        AnnotationError: malformed JSON or structure (the message names the file and video).
    """
    if path is None:
        return {}
    videos = require_mapping(read_json(path, "YouTube-VOS meta"), "videos", path)
    out: dict[tuple[str, int], str] = {}
    for video_id, entry in videos.items():
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict):
            raise AnnotationError(f"{path}: video {video_id!r}: expected an object with 'objects'")
        for obj_id, obj in objects.items():
            category = obj.get("category") if isinstance(obj, dict) else None
            if not isinstance(category, str) or not str(obj_id).isdigit():
                raise AnnotationError(f"{path}: video {video_id!r} object {obj_id!r}: expected an integer id and "
                                      "a 'category' string")
            out[(video_id, int(obj_id))] = category
    return out


class MetaExpressionsReader(ReferringDataset):
    """Base reader of a ``meta_expressions.json`` split with optional palette-PNG masks.

    Args:
        name: registry name put in every sample.
        root: dataset root.
        split: split name.
        layout: resolved file locations.
        skip_invalid: drop invalid expressions (counted in ``skip_report``) instead of raising.
        check_sizes: read every frame and mask header to check sizes agree.
        exclude_videos: videos to leave out (not counted as skipped).
        annotator_order: label expressions with the Ref-DAVIS17 conversion order
            (``meta["annotator"]``, ``meta["annotation_type"]``).

    Raises:
        AnnotationError: malformed JSON / top-level structure (always), or an
            invalid expression when ``skip_invalid`` is False (an
            :class:`~svac.data.readers.base.InvalidAnnotation` naming the file,
            video and expression).
    """

    def __init__(
        self,
        name: str,
        root: Path,
        split: str,
        layout: MetaExpressionsLayout,
        *,
        skip_invalid: bool,
        check_sizes: bool,
        exclude_videos: Iterable[str] = (),
        annotator_order: bool = False,
    ) -> None:
        super().__init__(name, root, split, skip_invalid=skip_invalid)
        self.layout = layout
        self.has_masks = layout.masks_dir is not None
        self._check_sizes = check_sizes
        self._annotator_order = annotator_order
        self._index = FolderIndex()
        videos = require_mapping(read_json(layout.meta_file, "meta_expressions"), "videos", layout.meta_file)
        self._categories = _object_categories(layout.categories_file)
        excluded = set(exclude_videos)
        self.excluded_videos = tuple(v for v in videos if v in excluded)
        collector = self._collector()
        for video_id, entry in videos.items():
            if video_id not in excluded:
                self._read_video(collector, video_id, entry)
        self._seal(collector)

    def _read_video(self, collector: SampleCollector, video_id: str, entry: Any) -> None:
        source = self.layout.meta_file
        expressions = entry.get("expressions") if isinstance(entry, dict) else None
        if not isinstance(expressions, dict):
            error = InvalidAnnotation(
                f"{source}: video {video_id!r}: expected an object with 'expressions' and 'frames'",
                reason=REASON_MALFORMED,
            )
            collector.reject(error, video_id, [None])
            return
        exp_ids = list(expressions)
        try:
            frames = parse_frame_list(entry.get("frames"), source=source, video_id=video_id)
            frame_paths = resolve_frames(
                self._index, self.layout.frames_dir / video_id, frames, source=source, video_id=video_id
            )
            mask_paths = self._mask_paths(video_id, frames)
            if self._check_sizes:
                self._check_video_sizes(video_id, frame_paths, mask_paths)
            group_meta = self._annotator_meta(video_id, expressions) if self._annotator_order else {}
        except InvalidAnnotation as error:
            collector.reject(error, video_id, exp_ids)
            return
        for exp_id in exp_ids:
            try:
                sample = self._sample(
                    video_id, exp_id, expressions[exp_id], frame_paths, mask_paths, group_meta.get(exp_id, {})
                )
            except InvalidAnnotation as error:
                collector.reject(error, video_id, [exp_id])
                continue
            collector.add(sample)

    def _mask_paths(self, video_id: str, frames: list[str]) -> tuple[Path, ...] | None:
        if self.layout.masks_dir is None:
            return None
        folder = self.layout.masks_dir / video_id
        paths = tuple(folder / (name + MASK_SUFFIX) for name in frames)
        for path in paths:
            if not self._index.has_file(path):
                raise InvalidAnnotation(
                    f"{self.layout.meta_file}: video {video_id!r}: mask file {path} not found", reason=REASON_MISSING_MASK
                )
        return paths

    def _check_video_sizes(
        self, video_id: str, frame_paths: tuple[Path, ...], mask_paths: tuple[Path, ...] | None
    ) -> None:
        sizes = [read_image_hw(p) for p in frame_paths]
        for path, size in zip(frame_paths, sizes):
            if size != sizes[0]:
                raise InvalidAnnotation(
                    f"{path}: frame is {size[0]}x{size[1]} but {frame_paths[0]} is {sizes[0][0]}x{sizes[0][1]} "
                    f"(height x width; video {video_id!r})",
                    reason=REASON_SIZE_MISMATCH,
                )
        for path, frame, size in zip(mask_paths or (), frame_paths, sizes):
            mask_size = read_image_hw(path, reason=REASON_MISSING_MASK)
            if mask_size != size:
                raise InvalidAnnotation(
                    f"{path}: mask is {mask_size[0]}x{mask_size[1]} but frame {frame} is {size[0]}x{size[1]} "
                    f"(height x width; video {video_id!r})",
                    reason=REASON_SIZE_MISMATCH,
                )

    def _annotator_meta(self, video_id: str, expressions: dict) -> dict[str, dict]:
        ids = list(expressions)
        expected = [str(i) for i in range(len(ids))]
        if ids != expected or len(ids) % len(DAVIS_GROUP):
            raise InvalidAnnotation(
                f"{self.layout.meta_file}: video {video_id!r}: annotator_order needs expression ids '0'..'n-1' in "
                f"order with n a multiple of {len(DAVIS_GROUP)} (got {ids})",
                reason=REASON_MALFORMED,
            )
        meta = {}
        for i, exp_id in enumerate(ids):
            annotator, kind = DAVIS_GROUP[i % len(DAVIS_GROUP)]
            meta[exp_id] = {"annotator": annotator, "annotation_type": kind}
        return meta

    def _sample(
        self,
        video_id: str,
        exp_id: str,
        entry: Any,
        frame_paths: tuple[Path, ...],
        mask_paths: tuple[Path, ...] | None,
        extra_meta: dict,
    ) -> ReferringSample:
        source = self.layout.meta_file
        if not isinstance(entry, dict):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: expected an object with 'exp'",
                reason=REASON_MALFORMED,
            )
        text = parse_text(entry.get("exp"), source=source, video_id=video_id, exp_id=exp_id, key="exp")
        raw_ids = entry.get("obj_id")
        object_ids = (
            () if raw_ids is None else parse_int_ids(raw_ids, source=source, video_id=video_id, exp_id=exp_id, key="obj_id")
        )
        if any(i <= 0 for i in object_ids):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: object ids must be >= 1 "
                f"(0 is the background of the PNG masks), got {list(object_ids)}",
                reason=REASON_MALFORMED,
            )
        loader = None
        if mask_paths is not None:
            if not object_ids:
                raise InvalidAnnotation(
                    f"{source}: video {video_id!r} expression {exp_id!r}: no object ('obj_id' missing or empty)",
                    reason=REASON_NO_OBJECT,
                )
            loader = IdPngMaskLoader(frame_paths, mask_paths, object_ids, binary_255_is_object_1=True)
        meta = {k: v for k, v in entry.items() if k not in EXPRESSION_KEYS}
        meta.update(extra_meta)
        category = self._categories.get((video_id, object_ids[0])) if len(object_ids) == 1 else None
        if category is not None:
            meta[CATEGORY_KEY] = category
        return ReferringSample(
            dataset=self.name,
            video_id=video_id,
            exp_id=exp_id,
            expression=text,
            frame_paths=frame_paths,
            object_ids=object_ids,
            mask_loader=loader,
            meta=meta,
        )


class RefYouTubeVOSReader(MetaExpressionsReader):
    """Ref-YouTube-VOS (and any dataset written in its layout, e.g. the synthetic benchmark).

    Args:
        root: dataset root (holds ``meta_expressions/`` and one folder per split).
        split: any split present under ``meta_expressions/`` (``train``, ``valid``, ``test`` ...).
        skip_invalid: drop invalid expressions (see ``skip_report``) instead of raising.
        check_sizes: read every frame and mask header (no decoding) to check sizes agree.
        require_masks: raise if the split has no ``Annotations`` folder.
        exclude_test_videos: for ``split="valid"``, leave out the videos listed
            in ``meta_expressions/test/meta_expressions.json`` — the CodaLab
            ``valid`` meta file also lists the test videos, whose frames are not
            in ``valid/JPEGImages`` (202 valid videos remain).
        name: registry name put in the samples.

    Samples: one per expression; ``frame_paths`` are the listed frames
    (``<split>/JPEGImages/<video>/<frame>.jpg``) in listed order;
    ``object_ids`` from ``obj_id``; masks from the palette PNGs; ``meta`` holds
    any other keys of the expression entry.

    Raises:
        AnnotationError: wrong root or split (the message says what was
            expected), malformed JSON, ``require_masks`` without masks, or an
            invalid expression when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        skip_invalid: bool = False,
        check_sizes: bool = True,
        require_masks: bool = False,
        exclude_test_videos: bool = True,
        name: str = "refytvos",
    ) -> None:
        root = Path(root)
        layout = ytvos_layout(root, split)
        if require_masks and layout.masks_dir is None:
            raise AnnotationError(
                f"{root / split / MASKS_DIR} does not exist; dataset {name!r} needs ground-truth masks for split {split!r}"
            )
        excluded: frozenset[str] = frozenset()
        test_meta = root / META_DIR / YTVOS_TEST_SPLIT / META_FILE
        if exclude_test_videos and split == YTVOS_VALID_SPLIT and test_meta.is_file():
            excluded = frozenset(require_mapping(read_json(test_meta, "meta_expressions"), "videos", test_meta))
        super().__init__(
            name, root, split, layout, skip_invalid=skip_invalid, check_sizes=check_sizes, exclude_videos=excluded
        )


class RefDAVISReader(MetaExpressionsReader):
    """Ref-DAVIS17 in the Ref-YouTube-VOS ``meta_expressions`` layout (see :func:`davis_layout`).

    Args:
        root: dataset root.
        split: ``train`` / ``valid`` for the converted layout; any name when the
            root holds a single ``meta_expressions.json``.
        skip_invalid: drop invalid expressions instead of raising.
        check_sizes: read every frame and mask header to check sizes agree.
        annotator_order: the meta file follows the usual Ref-DAVIS17 conversion
            (per object, in order: annotator 1 first-frame, annotator 1
            full-video, annotator 2 first-frame, annotator 2 full-video, with
            ids ``"0".."n-1"``); sets ``meta["annotator"]`` (1 or 2) and
            ``meta["annotation_type"]`` (``"first_frame"`` / ``"full_video"``).
            Without it, such keys appear in ``meta`` only when the expression
            entries carry them.
        name: registry name put in the samples.

    Masks are DAVIS-2017 palette PNGs (pixel index = object id) or DAVIS-2016
    binary greyscale PNGs (values {0, 255}, read as object 1).

    Raises:
        AnnotationError: as :class:`RefYouTubeVOSReader`.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        skip_invalid: bool = False,
        check_sizes: bool = True,
        annotator_order: bool = False,
        name: str = "davis17",
    ) -> None:
        root = Path(root)
        super().__init__(
            name,
            root,
            split,
            davis_layout(root, split),
            skip_invalid=skip_invalid,
            check_sizes=check_sizes,
            annotator_order=annotator_order,
        )
