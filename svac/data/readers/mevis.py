"""Readers for datasets with RLE ``mask_dict.json`` ground truth: MeViS and ReVOS.

MeViS (Ding et al., ICCV 2023, "MeViS: A Large-scale Benchmark for Video
Segmentation with Motion Expressions"), as released::

    root/<split>/JPEGImages/<video>/<frame>.jpg        # split: train, valid_u, valid
    root/<split>/meta_expressions.json
    root/<split>/mask_dict.json                        # train and valid_u only

``meta_expressions.json``: ``{"videos": {video: {"expressions": {exp_id:
{"exp": text, "obj_id": [int], "anno_id": [int or str]}}, "frames": [stems]}}}``.
``mask_dict.json`` maps ``str(anno_id)`` to a list with one COCO RLE (or
``null`` when the object is absent) per listed frame. The ground truth of an
expression is the union of its ``anno_id`` masks. An expression whose
``anno_id`` and ``obj_id`` are both empty lists refers to nothing (ReVOS
no-target expressions; the official MeViS and ReVOS scripts sum no mask for
it): it is read as a sample with ``object_ids == ()`` whose ground truth is
empty on every frame, and is scored like any other expression.

ReVOS (Yan et al., ECCV 2024, "VISA: Reasoning Video Object Segmentation via
Large Language Models") uses the same expression and mask schema in one
folder::

    root/JPEGImages/<video>/<frame>.jpg               # video ids may contain "/"
    root/meta_expressions_train_.json, root/meta_expressions_valid_.json
    root/mask_dict.json, root/mask_dict_foreground.json

Its expressions carry ``type_id`` (0 = referring, 1 = reasoning, 2 = no-target,
as in the official evaluation script ``tools/eval_revos.py``), exposed as ``meta["type"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svac.data.readers.base import (
    REASON_MALFORMED,
    REASON_MISSING_ANNO_ID,
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
from svac.data.readers.masks import RleMaskLoader, read_image_hw, rle_size
from svac.data.sample import MaskLoader, ReferringSample
from svac.errors import AnnotationError

META_FILE = "meta_expressions.json"
MASK_DICT_FILE = "mask_dict.json"
FRAMES_DIR = "JPEGImages"
REVOS_META_PATTERNS = ("meta_expressions_{split}_.json", "meta_expressions_{split}.json")
REVOS_FOREGROUND_FILE = "mask_dict_foreground.json"
REVOS_FOREGROUND_KEY = "masks_rle"
#: ReVOS ``type_id`` → ``meta["type"]`` (official ``tools/eval_revos.py``; the names of
#: :data:`svac.metrics.revos.REVOS_TYPE_BY_ID`). Other ids map to ``"other"``.
REVOS_TYPES = {0: "referring", 1: "reasoning", 2: "no_target"}
REVOS_OTHER_TYPE = "other"
EXPRESSION_KEYS = frozenset({"exp", "obj_id", "anno_id"})

MEVIS_EXPECTED = (
    "a MeViS root holding <split>/meta_expressions.json and <split>/JPEGImages/<video>/<frame>.jpg "
    "(plus <split>/mask_dict.json for splits with masks)"
)
REVOS_EXPECTED = (
    "a ReVOS root holding JPEGImages/<video>/<frame>.jpg, meta_expressions_<split>_.json and mask_dict.json"
)

HW = tuple[int, int]


def _parse_anno_ids(value: Any, *, source: Path, video_id: str, exp_id: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    ids = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or (isinstance(item, str) and not item):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'anno_id' must be a list of ints or strings, "
                f"got {value!r}",
                reason=REASON_MALFORMED,
            )
        ids.append(str(item))
    return tuple(ids)


class MaskDictReader(ReferringDataset):
    """Base reader of a MeViS-schema split (``meta_expressions`` + RLE ``mask_dict``).

    Args:
        name: registry name put in every sample.
        root: dataset root.
        split: split name.
        meta_file: the split's expressions file.
        frames_dir: folder holding one frame folder per video.
        mask_dict_file: the RLE mask file, or ``None`` for splits without ground truth.
        skip_invalid: drop invalid expressions (counted in ``skip_report``) instead of raising.
        check_sizes: read every frame header and compare every RLE ``size`` with its frame.

    Raises:
        AnnotationError: malformed JSON / top-level structure (always), or an
            invalid expression when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        split: str,
        meta_file: Path,
        frames_dir: Path,
        mask_dict_file: Path | None,
        *,
        skip_invalid: bool,
        check_sizes: bool,
    ) -> None:
        super().__init__(name, root, split, skip_invalid=skip_invalid)
        self.meta_file = meta_file
        self.frames_dir = frames_dir
        self.mask_dict_file = mask_dict_file
        self.has_masks = mask_dict_file is not None
        self._check_sizes = check_sizes
        self._index = FolderIndex()
        videos = require_mapping(read_json(meta_file, "meta_expressions"), "videos", meta_file)
        self._mask_dict: dict[str, Any] | None = None
        if mask_dict_file is not None:
            mask_dict = read_json(mask_dict_file, "mask_dict")
            if not isinstance(mask_dict, dict):
                raise AnnotationError(f"{mask_dict_file}: expected a JSON object mapping anno_id to per-frame RLEs")
            self._mask_dict = mask_dict
        self._anno_checked: dict[str, InvalidAnnotation | None] = {}
        collector = self._collector()
        for video_id, entry in videos.items():
            self._read_video(collector, video_id, entry)
        self._seal(collector)

    def _read_video(self, collector: SampleCollector, video_id: str, entry: Any) -> None:
        source = self.meta_file
        expressions = entry.get("expressions") if isinstance(entry, dict) else None
        if not isinstance(expressions, dict):
            error = InvalidAnnotation(
                f"{source}: video {video_id!r}: expected an object with 'expressions' and 'frames'",
                reason=REASON_MALFORMED,
            )
            collector.reject(error, video_id, [None])
            return
        try:
            frames = parse_frame_list(entry.get("frames"), source=source, video_id=video_id)
            frame_paths = resolve_frames(self._index, self.frames_dir / video_id, frames, source=source, video_id=video_id)
            sizes = self._frame_sizes(video_id, frame_paths) if self._check_sizes else None
        except InvalidAnnotation as error:
            collector.reject(error, video_id, list(expressions))
            return
        for exp_id, exp_entry in expressions.items():
            try:
                collector.add(self._sample(video_id, exp_id, exp_entry, frame_paths, sizes))
            except InvalidAnnotation as error:
                collector.reject(error, video_id, [exp_id])

    @staticmethod
    def _frame_sizes(video_id: str, frame_paths: tuple[Path, ...]) -> list[HW]:
        sizes = [read_image_hw(p) for p in frame_paths]
        for path, size in zip(frame_paths, sizes):
            if size != sizes[0]:
                raise InvalidAnnotation(
                    f"{path}: frame is {size[0]}x{size[1]} but {frame_paths[0]} is {sizes[0][0]}x{sizes[0][1]} "
                    f"(height x width; video {video_id!r})",
                    reason=REASON_SIZE_MISMATCH,
                )
        return sizes

    def _check_anno(self, anno_id: str, video_id: str, frame_paths: tuple[Path, ...], sizes: list[HW] | None) -> None:
        if anno_id not in self._anno_checked:
            self._anno_checked[anno_id] = self._find_anno_problem(anno_id, video_id, frame_paths, sizes)
        problem = self._anno_checked[anno_id]
        if problem is not None:
            raise problem

    def _find_anno_problem(
        self, anno_id: str, video_id: str, frame_paths: tuple[Path, ...], sizes: list[HW] | None
    ) -> InvalidAnnotation | None:
        source = self.mask_dict_file
        assert self._mask_dict is not None and source is not None
        if anno_id not in self._mask_dict:
            return InvalidAnnotation(
                f"{source}: anno_id {anno_id!r} (video {video_id!r}, listed in {self.meta_file}) is missing",
                reason=REASON_MISSING_ANNO_ID,
            )
        per_frame = self._mask_dict[anno_id]
        if not isinstance(per_frame, list) or len(per_frame) != len(frame_paths):
            count = len(per_frame) if isinstance(per_frame, list) else type(per_frame).__name__
            return InvalidAnnotation(
                f"{source}: anno_id {anno_id!r} (video {video_id!r}): expected a list of {len(frame_paths)} "
                f"per-frame RLEs (one per listed frame), got {count}",
                reason=REASON_MALFORMED,
            )
        try:
            for position, entry in enumerate(per_frame):
                if entry is None:
                    continue
                label = f"anno_id {anno_id!r} (video {video_id!r}) frame {position}"
                parts = entry if isinstance(entry, list) and entry else [entry]
                for part in parts:
                    size = rle_size(part, source=source, label=label)
                    if sizes is not None and size != sizes[position]:
                        return InvalidAnnotation(
                            f"{source}: {label}: mask is {size[0]}x{size[1]} but frame {frame_paths[position]} is "
                            f"{sizes[position][0]}x{sizes[position][1]} (height x width)",
                            reason=REASON_SIZE_MISMATCH,
                        )
        except InvalidAnnotation as error:
            return error
        return None

    def _sample(
        self, video_id: str, exp_id: str, entry: Any, frame_paths: tuple[Path, ...], sizes: list[HW] | None
    ) -> ReferringSample:
        source = self.meta_file
        if not isinstance(entry, dict):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: expected an object with 'exp'",
                reason=REASON_MALFORMED,
            )
        text = parse_text(entry.get("exp"), source=source, video_id=video_id, exp_id=exp_id, key="exp")
        raw_objects = entry.get("obj_id")
        object_ids = (
            ()
            if raw_objects is None
            else parse_int_ids(raw_objects, source=source, video_id=video_id, exp_id=exp_id, key="obj_id")
        )
        raw_annos = entry.get("anno_id")
        anno_ids = () if raw_annos is None else _parse_anno_ids(raw_annos, source=source, video_id=video_id, exp_id=exp_id)
        loader = None
        if self._mask_dict is not None:
            self._check_targets(raw_objects, raw_annos, object_ids, anno_ids, video_id, exp_id)
            for anno_id in anno_ids:
                self._check_anno(anno_id, video_id, frame_paths, sizes)
            assert self.mask_dict_file is not None
            loader = RleMaskLoader(
                frame_paths=frame_paths,
                rles=tuple(self._mask_dict[a] for a in anno_ids),
                labels=tuple(f"anno_id {a!r}" for a in anno_ids),
                source=self.mask_dict_file,
            )
        meta: dict[str, Any] = {k: v for k, v in entry.items() if k not in EXPRESSION_KEYS}
        if anno_ids:
            meta["anno_ids"] = anno_ids
        meta.update(self._extra_meta(entry))
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

    def _check_targets(
        self,
        raw_objects: Any,
        raw_annos: Any,
        object_ids: tuple[int, ...],
        anno_ids: tuple[str, ...],
        video_id: str,
        exp_id: str,
    ) -> None:
        """Targets of an expression in a split with masks: both lists given, both empty (no target) or both not."""
        label = f"{self.meta_file}: video {video_id!r} expression {exp_id!r}"
        if raw_objects is None or raw_annos is None:
            raise InvalidAnnotation(
                f"{label}: 'obj_id' / 'anno_id' missing (an expression that refers to nothing lists both as [])",
                reason=REASON_NO_OBJECT,
            )
        if bool(object_ids) != bool(anno_ids):
            raise InvalidAnnotation(
                f"{label}: 'obj_id' {raw_objects!r} and 'anno_id' {raw_annos!r} disagree; both must be empty "
                "(an expression that refers to nothing) or both list the referred objects",
                reason=REASON_NO_OBJECT,
            )

    def _extra_meta(self, entry: dict) -> dict[str, Any]:
        """Dataset-specific meta derived from an expression entry (none by default)."""
        return {}


def _available_mevis_splits(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if (p / META_FILE).is_file()) if root.is_dir() else []


class MeViSReader(MaskDictReader):
    """MeViS: ``root/<split>/{JPEGImages, meta_expressions.json, mask_dict.json}``.

    Args:
        root: dataset root (holds ``train``, ``valid_u``, ``valid``).
        split: any split folder holding a ``meta_expressions.json``.
        skip_invalid: drop invalid expressions (see ``skip_report``) instead of raising.
        check_sizes: read every frame header and compare each RLE ``size`` with its frame.
        name: registry name put in the samples.

    Samples: one per expression; ``frame_paths`` = listed frames in listed
    order; ``object_ids`` from ``obj_id``; ``meta["anno_ids"]`` the mask keys;
    the mask is the union of the ``anno_id`` RLEs (``mask_loader=None`` when
    the split has no ``mask_dict.json``, e.g. the CodaLab ``valid``). An
    expression with ``"obj_id": []`` and ``"anno_id": []`` refers to nothing:
    ``object_ids == ()`` and its masks are empty on every frame.

    Raises:
        AnnotationError: wrong root or split (lists the splits present),
            malformed JSON, or an invalid expression when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        skip_invalid: bool = False,
        check_sizes: bool = True,
        name: str = "mevis",
    ) -> None:
        root = Path(root)
        require_dir(root, MEVIS_EXPECTED)
        meta_file = root / split / META_FILE
        if not meta_file.is_file():
            raise AnnotationError(
                f"{meta_file} not found (splits present: {_available_mevis_splits(root) or 'none'}); "
                f"expected {MEVIS_EXPECTED}"
            )
        frames_dir = require_dir(root / split / FRAMES_DIR, MEVIS_EXPECTED)
        mask_dict = root / split / MASK_DICT_FILE
        super().__init__(
            name,
            root,
            split,
            meta_file,
            frames_dir,
            mask_dict if mask_dict.is_file() else None,
            skip_invalid=skip_invalid,
            check_sizes=check_sizes,
        )


class ReVOSReader(MaskDictReader):
    """ReVOS: ``root/{JPEGImages, meta_expressions_<split>_.json, mask_dict.json, mask_dict_foreground.json}``.

    Args:
        root: dataset root.
        split: ``train``, ``valid``, ``train_sub`` ... (any ``meta_expressions_<split>_.json``;
            ``meta_expressions_<split>.json`` is accepted too).
        skip_invalid: drop invalid expressions instead of raising.
        check_sizes: read every frame header and compare each RLE ``size`` with its frame.
        name: registry name put in the samples.

    Samples as :class:`MeViSReader`, plus ``meta["type"]``: ``"referring"``
    (``type_id`` 0), ``"reasoning"`` (``type_id`` 1) or ``"no_target"``
    (``type_id`` 2: empty ``obj_id`` / ``anno_id``, empty ground truth); any
    other ``type_id`` gives ``"other"``; entries without ``type_id`` have no
    ``"type"``. The raw ``type_id`` stays in ``meta`` too.

    Raises:
        AnnotationError: wrong root or split, malformed JSON, or an invalid
            expression when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        skip_invalid: bool = False,
        check_sizes: bool = True,
        name: str = "revos",
    ) -> None:
        root = Path(root)
        require_dir(root, REVOS_EXPECTED)
        candidates = [root / pattern.format(split=split) for pattern in REVOS_META_PATTERNS]
        meta_file = next((p for p in candidates if p.is_file()), None)
        if meta_file is None:
            present = sorted(p.name for p in root.glob("meta_expressions_*.json"))
            raise AnnotationError(
                f"{candidates[0]} not found (expression files present: {present or 'none'}); expected {REVOS_EXPECTED}"
            )
        frames_dir = require_dir(root / FRAMES_DIR, REVOS_EXPECTED)
        mask_dict = root / MASK_DICT_FILE
        self.foreground_file = root / REVOS_FOREGROUND_FILE
        self._foreground: dict[str, Any] | None = None
        super().__init__(
            name,
            root,
            split,
            meta_file,
            frames_dir,
            mask_dict if mask_dict.is_file() else None,
            skip_invalid=skip_invalid,
            check_sizes=check_sizes,
        )

    def _extra_meta(self, entry: dict) -> dict[str, Any]:
        type_id = entry.get("type_id")
        if type_id is None:
            return {}
        if isinstance(type_id, str) and type_id.isdigit():
            type_id = int(type_id)
        return {"type": REVOS_TYPES.get(type_id, REVOS_OTHER_TYPE)}

    def foreground_loader(self, sample: ReferringSample) -> MaskLoader:
        """Loader of the video's foreground mask (union of all annotated objects) from ``mask_dict_foreground.json``.

        Used by the ReVOS robustness score R. The file is read on the first call.

        Returns:
            A :class:`~svac.data.readers.masks.RleMaskLoader` over ``sample.frame_paths``.

        Raises:
            AnnotationError: the file is missing or malformed, or has no entry
                of ``sample.frames`` length for the video.
        """
        if self._foreground is None:
            data = read_json(self.foreground_file, "mask_dict_foreground")
            if not isinstance(data, dict):
                raise AnnotationError(f"{self.foreground_file}: expected a JSON object mapping video to masks")
            self._foreground = data
        entry = self._foreground.get(sample.video_id)
        rles = entry.get(REVOS_FOREGROUND_KEY) if isinstance(entry, dict) else None
        if not isinstance(rles, list) or len(rles) != sample.num_frames:
            raise AnnotationError(
                f"{self.foreground_file}: video {sample.video_id!r}: expected {{'{REVOS_FOREGROUND_KEY}': "
                f"[one RLE per frame ({sample.num_frames})]}}"
            )
        return RleMaskLoader(sample.frame_paths, (rles,), ("foreground",), self.foreground_file)
