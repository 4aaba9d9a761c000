"""Reader for svac's custom format: your own videos, expressions and masks.

Layout (full guide and example: ``docs/custom_data.md``)::

    root/
      expressions.json
      JPEGImages/<video>/<frame>.jpg|.jpeg|.png
      Annotations/<video>/<frame stem>.png              # masks = "ids"
      Annotations/<video>/<object id>/<frame stem>.png  # masks = "binary"
      masks_rle.json                                    # masks = "rle"

``expressions.json``::

    {
      "version": 1,
      "masks": "ids" | "binary" | "rle" | "none",
      "splits": {"train": [video, ...], "val": [video, ...]},      # optional
      "videos": {
        video: {
          "frames": ["00000.jpg", ...],                            # optional
          "expressions": {
            exp_id: {"text": str, "objects": [int >= 1, ...],
                     "no_target": bool, "meta": {...}}             # last two optional
          }
        }
      }
    }

``masks_rle.json``: ``{video: {object id: [COCO RLE or null, one per frame]}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svac.data.readers.base import (
    FRAME_SUFFIXES,
    REASON_MALFORMED,
    REASON_MISSING_FRAME,
    REASON_MISSING_MASK,
    REASON_NO_OBJECT,
    REASON_SIZE_MISMATCH,
    FolderIndex,
    InvalidAnnotation,
    ReferringDataset,
    SampleCollector,
    natural_key,
    parse_text,
    read_json,
    require_dir,
)
from svac.data.readers.masks import (
    IdPngMaskLoader,
    PerObjectPngMaskLoader,
    RleMaskLoader,
    read_image_hw,
    rle_size,
)
from svac.data.sample import ReferringSample
from svac.errors import AnnotationError

EXPRESSIONS_FILE = "expressions.json"
FRAMES_DIR = "JPEGImages"
MASKS_DIR = "Annotations"
RLE_FILE = "masks_rle.json"
MASK_SUFFIX = ".png"
FORMAT_VERSION = 1
MASKS_IDS = "ids"
MASKS_BINARY = "binary"
MASKS_RLE = "rle"
MASKS_NONE = "none"
MASK_KINDS = (MASKS_IDS, MASKS_BINARY, MASKS_RLE, MASKS_NONE)
TOP_KEYS = frozenset({"version", "masks", "splits", "videos"})
VIDEO_KEYS = frozenset({"frames", "expressions"})
EXPRESSION_KEYS = frozenset({"text", "objects", "no_target", "meta"})

EXPECTED = (
    "a custom-format root holding expressions.json and JPEGImages/<video>/<frames> "
    "(see docs/custom_data.md)"
)

HW = tuple[int, int]


class CustomReader(ReferringDataset):
    """The svac custom format (see the module docstring and ``docs/custom_data.md``).

    Args:
        root: dataset root holding ``expressions.json``.
        split: a key of ``"splits"``; when the file has no ``"splits"``, every
            split name reads all videos.
        skip_invalid: drop invalid expressions (see ``skip_report``) instead of raising.
        check_sizes: read every frame and mask header (RLE ``size`` for ``rle``)
            to check sizes agree.
        name: registry name put in the samples.

    Samples: one per expression; ``frame_paths`` = ``"frames"`` in listed order
    (default: every image in the video folder, digit runs sorted as numbers);
    ``object_ids`` = ``"objects"``; ``meta`` = the expression's ``"meta"``;
    ``mask_loader=None`` when ``"masks"`` is ``"none"``.

    Raises:
        AnnotationError: wrong root, malformed JSON, schema errors in the top
            level (unknown keys, version, masks kind, splits), unknown split, or an
            invalid expression when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        skip_invalid: bool = False,
        check_sizes: bool = True,
        name: str = "custom",
    ) -> None:
        root = Path(root)
        super().__init__(name, root, split, skip_invalid=skip_invalid)
        require_dir(root, EXPECTED)
        self.expressions_file = root / EXPRESSIONS_FILE
        if not self.expressions_file.is_file():
            raise AnnotationError(f"{self.expressions_file} not found; expected {EXPECTED}")
        self.frames_dir = require_dir(root / FRAMES_DIR, EXPECTED)
        data = read_json(self.expressions_file, "custom expressions")
        videos, self.mask_kind, selected = self._parse_top(data, split)
        self.has_masks = self.mask_kind != MASKS_NONE
        self._check_sizes = check_sizes
        self._index = FolderIndex()
        self._rle: dict[str, Any] | None = None
        if self.mask_kind == MASKS_RLE:
            rle = read_json(root / RLE_FILE, "custom RLE masks")
            if not isinstance(rle, dict):
                raise AnnotationError(f"{root / RLE_FILE}: expected a JSON object mapping video to objects to RLEs")
            self._rle = rle
        elif self.mask_kind != MASKS_NONE:
            require_dir(root / MASKS_DIR, f"{MASKS_DIR}/ with the PNG masks (masks = {self.mask_kind!r})")
        collector = self._collector()
        for video_id in selected:
            self._read_video(collector, video_id, videos[video_id])
        self._seal(collector)

    def _parse_top(self, data: Any, split: str) -> tuple[dict, str, list[str]]:
        source = self.expressions_file
        if not isinstance(data, dict):
            raise AnnotationError(f"{source}: expected a JSON object with 'version', 'masks' and 'videos'")
        unknown = sorted(set(data) - TOP_KEYS)
        if unknown:
            raise AnnotationError(f"{source}: unknown top-level keys {unknown}; allowed: {sorted(TOP_KEYS)}")
        if data.get("version") != FORMAT_VERSION:
            raise AnnotationError(f"{source}: 'version' must be {FORMAT_VERSION}, got {data.get('version')!r}")
        mask_kind = data.get("masks")
        if mask_kind not in MASK_KINDS:
            raise AnnotationError(f"{source}: 'masks' must be one of {list(MASK_KINDS)}, got {mask_kind!r}")
        videos = data.get("videos")
        if not isinstance(videos, dict):
            raise AnnotationError(f"{source}: 'videos' must be an object mapping video id to its entry")
        splits = data.get("splits")
        if splits is None:
            return videos, mask_kind, list(videos)
        if not isinstance(splits, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in splits.values()
        ):
            raise AnnotationError(f"{source}: 'splits' must map split names to lists of video ids")
        if split not in splits:
            raise AnnotationError(f"{source}: split {split!r} not in 'splits' (present: {sorted(splits)})")
        missing = [v for v in splits[split] if v not in videos]
        if missing:
            raise AnnotationError(f"{source}: split {split!r} lists videos not in 'videos': {missing}")
        return videos, mask_kind, list(dict.fromkeys(splits[split]))

    def _read_video(self, collector: SampleCollector, video_id: str, entry: Any) -> None:
        source = self.expressions_file
        expressions = entry.get("expressions") if isinstance(entry, dict) else None
        if not isinstance(expressions, dict) or set(entry) - VIDEO_KEYS:
            error = InvalidAnnotation(
                f"{source}: video {video_id!r}: expected an object with 'expressions' (and optional 'frames'); "
                f"allowed keys {sorted(VIDEO_KEYS)}",
                reason=REASON_MALFORMED,
            )
            collector.reject(error, video_id, [None])
            return
        try:
            frame_paths = self._frame_paths(video_id, entry.get("frames"))
            sizes = self._frame_sizes(video_id, frame_paths) if self._check_sizes else None
        except InvalidAnnotation as error:
            collector.reject(error, video_id, list(expressions))
            return
        checked: dict[int, InvalidAnnotation | None] = {}
        for exp_id, exp_entry in expressions.items():
            try:
                collector.add(self._sample(video_id, exp_id, exp_entry, frame_paths, sizes, checked))
            except InvalidAnnotation as error:
                collector.reject(error, video_id, [exp_id])

    def _frame_paths(self, video_id: str, frames: Any) -> tuple[Path, ...]:
        source = self.expressions_file
        folder = self.frames_dir / video_id
        names = self._index.names(folder)
        if names is None:
            raise InvalidAnnotation(
                f"{source}: video {video_id!r}: frame folder {folder} does not exist", reason=REASON_MISSING_FRAME
            )
        if frames is None:
            listed = sorted((n for n in names if Path(n).suffix.lower() in FRAME_SUFFIXES), key=natural_key)
            if not listed:
                raise InvalidAnnotation(
                    f"{source}: video {video_id!r}: no {'/'.join(FRAME_SUFFIXES)} frames in {folder}",
                    reason=REASON_MISSING_FRAME,
                )
        else:
            if not isinstance(frames, list) or not frames or not all(isinstance(f, str) and f for f in frames):
                raise InvalidAnnotation(
                    f"{source}: video {video_id!r}: 'frames' must be a non-empty list of file names",
                    reason=REASON_MALFORMED,
                )
            listed = frames
        stems = [Path(n).stem for n in listed]
        if len(set(stems)) != len(stems):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r}: two frames share a name stem (masks are named after the stem)",
                reason=REASON_MALFORMED,
            )
        for name in listed:
            if Path(name).suffix.lower() not in FRAME_SUFFIXES or name not in names:
                raise InvalidAnnotation(
                    f"{source}: video {video_id!r}: frame file {folder / name} not found "
                    f"(frames are file names with a {'/'.join(FRAME_SUFFIXES)} suffix)",
                    reason=REASON_MISSING_FRAME,
                )
        return tuple(folder / name for name in listed)

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

    def _parse_objects(self, video_id: str, exp_id: str, entry: dict) -> tuple[int, ...]:
        source = self.expressions_file
        objects = entry.get("objects", [])
        no_target = entry.get("no_target", False)
        if not isinstance(no_target, bool):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'no_target' must be true or false",
                reason=REASON_MALFORMED,
            )
        if not isinstance(objects, list) or not all(
            isinstance(o, int) and not isinstance(o, bool) and o >= 1 for o in objects
        ):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'objects' must be a list of integer ids >= 1, "
                f"got {objects!r}",
                reason=REASON_MALFORMED,
            )
        if len(set(objects)) != len(objects):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'objects' lists an id twice",
                reason=REASON_MALFORMED,
            )
        if no_target and objects:
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'no_target' is true but 'objects' is not empty",
                reason=REASON_MALFORMED,
            )
        if not objects and not no_target and self.has_masks:
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: no object ('objects' missing or empty; set "
                "\"no_target\": true for an expression that refers to nothing)",
                reason=REASON_NO_OBJECT,
            )
        return tuple(objects)

    def _sample(
        self,
        video_id: str,
        exp_id: str,
        entry: Any,
        frame_paths: tuple[Path, ...],
        sizes: list[HW] | None,
        checked: dict[int, InvalidAnnotation | None],
    ) -> ReferringSample:
        source = self.expressions_file
        if not isinstance(entry, dict) or set(entry) - EXPRESSION_KEYS:
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: expected an object with 'text' and 'objects' "
                f"(allowed keys {sorted(EXPRESSION_KEYS)})",
                reason=REASON_MALFORMED,
            )
        text = parse_text(entry.get("text"), source=source, video_id=video_id, exp_id=exp_id, key="text")
        object_ids = self._parse_objects(video_id, exp_id, entry)
        meta = entry.get("meta", {})
        if not isinstance(meta, dict):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} expression {exp_id!r}: 'meta' must be an object", reason=REASON_MALFORMED
            )
        if entry.get("no_target", False):
            meta = {**meta, "no_target": True}
        loader = self._loader(video_id, object_ids, frame_paths, sizes, checked)
        return ReferringSample(
            dataset=self.name,
            video_id=video_id,
            exp_id=exp_id,
            expression=text,
            frame_paths=frame_paths,
            object_ids=object_ids,
            mask_loader=loader,
            meta=dict(meta),
        )

    def _loader(
        self,
        video_id: str,
        object_ids: tuple[int, ...],
        frame_paths: tuple[Path, ...],
        sizes: list[HW] | None,
        checked: dict[int, InvalidAnnotation | None],
    ) -> IdPngMaskLoader | PerObjectPngMaskLoader | RleMaskLoader | None:
        if self.mask_kind == MASKS_NONE:
            return None
        stems = [p.stem for p in frame_paths]
        if self.mask_kind == MASKS_IDS:
            folder = self.root / MASKS_DIR / video_id
            paths = tuple(folder / (stem + MASK_SUFFIX) for stem in stems)
            self._check_once(checked, 0, lambda: self._check_pngs(video_id, paths, frame_paths, sizes))
            return IdPngMaskLoader(frame_paths, paths, object_ids)
        if self.mask_kind == MASKS_BINARY:
            per_object = []
            for obj in object_ids:
                folder = self.root / MASKS_DIR / video_id / str(obj)
                paths = tuple(folder / (stem + MASK_SUFFIX) for stem in stems)
                self._check_once(checked, obj, lambda p=paths: self._check_pngs(video_id, p, frame_paths, sizes))
                per_object.append(paths)
            return PerObjectPngMaskLoader(frame_paths, tuple(per_object))
        rles = []
        for obj in object_ids:
            self._check_once(checked, obj, lambda o=obj: self._check_rle(video_id, o, frame_paths, sizes))
            rles.append(self._rle[video_id][str(obj)])  # type: ignore[index]
        return RleMaskLoader(frame_paths, tuple(rles), tuple(f"object {o}" for o in object_ids), self.root / RLE_FILE)

    @staticmethod
    def _check_once(checked: dict[int, InvalidAnnotation | None], key: int, check: Any) -> None:
        if key not in checked:
            try:
                check()
                checked[key] = None
            except InvalidAnnotation as error:
                checked[key] = error
        if checked[key] is not None:
            raise checked[key]

    def _check_pngs(
        self, video_id: str, paths: tuple[Path, ...], frame_paths: tuple[Path, ...], sizes: list[HW] | None
    ) -> None:
        for position, path in enumerate(paths):
            if not self._index.has_file(path):
                raise InvalidAnnotation(
                    f"{self.expressions_file}: video {video_id!r}: mask file {path} not found", reason=REASON_MISSING_MASK
                )
            if sizes is not None:
                size = read_image_hw(path, reason=REASON_MISSING_MASK)
                if size != sizes[position]:
                    raise InvalidAnnotation(
                        f"{path}: mask is {size[0]}x{size[1]} but frame {frame_paths[position]} is "
                        f"{sizes[position][0]}x{sizes[position][1]} (height x width; video {video_id!r})",
                        reason=REASON_SIZE_MISMATCH,
                    )

    def _check_rle(self, video_id: str, obj: int, frame_paths: tuple[Path, ...], sizes: list[HW] | None) -> None:
        source = self.root / RLE_FILE
        assert self._rle is not None
        per_video = self._rle.get(video_id)
        per_frame = per_video.get(str(obj)) if isinstance(per_video, dict) else None
        if per_frame is None:
            raise InvalidAnnotation(
                f"{source}: no masks for object {obj} of video {video_id!r}", reason=REASON_MISSING_MASK
            )
        if not isinstance(per_frame, list) or len(per_frame) != len(frame_paths):
            raise InvalidAnnotation(
                f"{source}: video {video_id!r} object {obj}: expected a list of {len(frame_paths)} RLEs or nulls "
                "(one per frame)",
                reason=REASON_MALFORMED,
            )
        for position, rle in enumerate(per_frame):
            if rle is None:
                continue
            size = rle_size(rle, source=source, label=f"video {video_id!r} object {obj} frame {position}")
            if sizes is not None and size != sizes[position]:
                raise InvalidAnnotation(
                    f"{source}: video {video_id!r} object {obj} frame {position}: mask is {size[0]}x{size[1]} but frame "
                    f"{frame_paths[position]} is {sizes[position][0]}x{sizes[position][1]} (height x width)",
                    reason=REASON_SIZE_MISMATCH,
                )
