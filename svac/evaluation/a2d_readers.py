"""Readers of A2D-Sentences and JHMDB-Sentences for evaluation (one annotated frame = one sample).

A2D-Sentences (Gavrilyuk et al., CVPR 2018), as released::

    root/Release/videoset.csv                      vid,label,start,end,height,width,frames,annotated,subset
    root/Release/clips320H/<video>.mp4
    root/text_annotations/a2d_annotation.txt       CSV with header: video_id,instance_id,query
    root/text_annotations/a2d_missed_videos.txt    videos without sentences (left out)
    root/text_annotations/a2d_annotation_with_instances/<video>/<frame>.h5

``subset`` is 0 for train and 1 for test. Each ``.h5`` (HDF5, read with the optional
``h5py`` package) is one annotated frame, named by its 1-based frame number, holding
``instance`` (the instance ids present) and ``reMask`` (their masks, stored transposed:
``(W, H)`` for one instance, ``(n, W, H)`` for several). An expression (a ``video_id,
instance_id`` row) is evaluated on every annotated frame where its instance appears, as in
the protocol of the methods reporting on it (frames where it is absent are not scored).
Rows whose instance id is not an integer (the release has one, ``"1 (copy)"``) are left out
and listed.

JHMDB-Sentences (same paper), as released::

    root/jhmdb_annotation.txt                      CSV with header: video_id,query
    root/Rename_Images/<class>/<video>/<frame>.png frames, 1-based names 00001.png ...
    root/puppet_mask/<class>/<video>/puppet_mask.mat   'part_mask': (H, W, T) puppet masks

Every frame that has a puppet mask is evaluated (frames past the last mask are not). Methods
reporting on JHMDB-Sentences since MTTR score three randomly drawn frames per video; scoring
all masked frames is the deterministic version of the same per-frame protocol.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from svac.errors import AnnotationError

A2D_VIDEOSET = Path("Release/videoset.csv")
A2D_CLIPS = Path("Release/clips320H")
A2D_SENTENCES = Path("text_annotations/a2d_annotation.txt")
A2D_MISSED = Path("text_annotations/a2d_missed_videos.txt")
A2D_MASKS = Path("text_annotations/a2d_annotation_with_instances")
#: ``subset`` column of ``videoset.csv`` per split name.
A2D_SUBSETS = {"train": "0", "test": "1"}
A2D_VIDEOSET_COLUMNS = 9
A2D_SUBSET_COLUMN = 8
JHMDB_SENTENCES = Path("jhmdb_annotation.txt")
JHMDB_FRAMES = Path("Rename_Images")
JHMDB_MASKS = Path("puppet_mask")
JHMDB_MASK_FILE = "puppet_mask.mat"
JHMDB_MASK_KEY = "part_mask"
#: JHMDB-Sentences has one split (it is used for evaluation only).
JHMDB_SPLITS = ("test",)
#: The expected A2D-Sentences layout, quoted in errors about a wrong data root.
A2D_LAYOUT = (f"an A2D-Sentences root: {A2D_VIDEOSET.as_posix()}, {A2D_CLIPS.as_posix()}/<video>.mp4, "
              f"{A2D_SENTENCES.as_posix()}, {A2D_MISSED.as_posix()}, {A2D_MASKS.as_posix()}/<video>/<frame>.h5")
#: The expected JHMDB-Sentences layout, quoted in errors about a wrong data root.
JHMDB_LAYOUT = (f"a JHMDB-Sentences root: {JHMDB_SENTENCES.as_posix()}, {JHMDB_FRAMES.as_posix()}/<class>/<video>/"
                f"<frame>.png, {JHMDB_MASKS.as_posix()}/<class>/<video>/{JHMDB_MASK_FILE}")

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class FrameLevelSample:
    """One expression on a video, scored on some annotated frames.

    Attributes:
        dataset: ``"a2d"`` or ``"jhmdb"``.
        video_id: the video's id.
        exp_id: the expression's id inside the video (A2D: the instance id; JHMDB: ``"0"``).
        expression: the sentence.
        video: the mp4 file (A2D) or the frame folder (JHMDB).
        frame_paths: the frame files in order (JHMDB), or ``None`` for a video file.
        annotated_frames: 0-based indices of the scored frames, increasing.
        image_ids: one COCO image id per scored frame, ``v_<video>_f_<1-based frame>_i_<exp_id>``
            (the ids MTTR's COCO ground-truth files use).
        load_masks: ``load_masks(frame_indices) -> bool (n, H, W)``: ground truth of scored frames.
    """

    dataset: str
    video_id: str
    exp_id: str
    expression: str
    video: Path
    frame_paths: tuple[Path, ...] | None
    annotated_frames: tuple[int, ...]
    image_ids: tuple[str, ...]
    load_masks: Callable[[Sequence[int]], np.ndarray] = field(repr=False, compare=False)


@dataclass(frozen=True)
class FrameLevelDataset:
    """A parsed A2D / JHMDB split: its samples and the annotation rows left out (with reasons)."""

    samples: tuple[FrameLevelSample, ...]
    skipped: tuple[str, ...]


def _require(path: Path, expected: str) -> Path:
    if not path.exists():
        raise AnnotationError(f"{path} not found; expected {expected}")
    return path


def _read_csv_rows(path: Path, columns: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise AnnotationError(f"{path}: expected a CSV header with {', '.join(columns)}; "
                                      f"missing {', '.join(missing)} (got {reader.fieldnames})")
            return [row for row in reader]
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"cannot read {path}: {exc}") from exc


def read_a2d_h5(path: Path) -> tuple[list[int], np.ndarray]:
    """The instance ids and masks of one A2D annotation file.

    Returns:
        ``(ids, masks)`` with ``masks`` bool ``(len(ids), H, W)`` (transposed back from the file).

    Raises:
        AnnotationError: when ``h5py`` is missing (``pip install h5py``), or the file is
            unreadable or lacks ``instance`` / ``reMask``.
    """
    try:
        import h5py
    except ImportError as exc:
        raise AnnotationError("reading A2D-Sentences annotations (.h5) needs the h5py package: pip install h5py") \
            from exc
    try:
        with h5py.File(path, "r") as f:
            ids = [int(v) for v in np.asarray(f["instance"]).reshape(-1)]
            masks = np.asarray(f["reMask"])
    except (OSError, KeyError) as exc:
        raise AnnotationError(f"{path}: not an A2D annotation file with 'instance' and 'reMask' ({exc})") from exc
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[0] != len(ids):
        raise AnnotationError(f"{path}: reMask has shape {masks.shape} for {len(ids)} instances")
    return ids, np.transpose(masks, (0, 2, 1)) != 0


def read_a2d(root: Path, split: str, *, h5_reader: Callable[[Path], tuple[list[int], np.ndarray]] | None = None
             ) -> FrameLevelDataset:
    """Parse one A2D-Sentences split (see the module docstring).

    Args:
        root: the A2D-Sentences root.
        split: ``"train"`` or ``"test"``.
        h5_reader: reads one annotation file (default :func:`read_a2d_h5`, which needs ``h5py``).

    Raises:
        AnnotationError: unknown split, a missing file or folder (named, with the expected layout),
            a malformed ``videoset.csv`` row, or a missing video.
    """
    layout = A2D_LAYOUT
    h5_reader = read_a2d_h5 if h5_reader is None else h5_reader
    if split not in A2D_SUBSETS:
        raise AnnotationError(f"A2D-Sentences split must be one of {sorted(A2D_SUBSETS)}, got {split!r}")
    videoset = _require(root / A2D_VIDEOSET, layout)
    subset_of = {}
    with open(videoset, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if len(row) != A2D_VIDEOSET_COLUMNS:
                raise AnnotationError(f"{videoset} line {line}: expected {A2D_VIDEOSET_COLUMNS} columns, "
                                      f"got {len(row)}")
            subset_of[row[0]] = row[A2D_SUBSET_COLUMN].strip()
    missed_file = _require(root / A2D_MISSED, layout)
    missed = {v.strip() for v in missed_file.read_text(encoding="utf-8").splitlines() if v.strip()}
    rows = _read_csv_rows(_require(root / A2D_SENTENCES, layout), ("video_id", "instance_id", "query"))
    mask_root = _require(root / A2D_MASKS, layout)
    samples, skipped = [], []
    seen: dict[tuple[str, str], int] = {}
    frames_of: dict[str, list[tuple[int, Path]]] = {}
    ids_of: dict[Path, list[int]] = {}

    def instances(path: Path) -> list[int]:
        if path not in ids_of:
            ids_of[path] = h5_reader(path)[0]
        return ids_of[path]
    for row in rows:
        video_id, raw_instance, query = row["video_id"], row["instance_id"], row["query"]
        if video_id in missed or subset_of.get(video_id) != A2D_SUBSETS[split]:
            continue
        if not raw_instance.strip().isdigit():
            skipped.append(f"{root / A2D_SENTENCES}: video {video_id!r}: instance id {raw_instance!r} "
                           "is not an integer")
            continue
        instance = int(raw_instance)
        if video_id not in frames_of:
            folder = mask_root / video_id
            files = sorted(folder.glob("*.h5")) if folder.is_dir() else []
            frames_of[video_id] = [(int(f.stem), f) for f in files if f.stem.isdigit()]
        annotated = [(number, path) for number, path in frames_of[video_id] if instance in instances(path)]
        if not annotated:
            skipped.append(f"{mask_root / video_id}: instance {instance} of video {video_id!r} "
                           "is in no annotated frame")
            continue
        video = _require(root / A2D_CLIPS / f"{video_id}.mp4", layout)
        exp_id = str(instance)
        seen[(video_id, exp_id)] = seen.get((video_id, exp_id), 0) + 1
        if seen[(video_id, exp_id)] > 1:
            exp_id = f"{instance}-{seen[(video_id, exp_id)]}"
        paths = {number - 1: path for number, path in annotated}

        def load(frames: Sequence[int], paths=paths, instance=instance) -> np.ndarray:
            out = []
            for frame in frames:
                ids, masks = h5_reader(paths[frame])
                out.append(masks[ids.index(instance)])
            return np.stack(out)

        samples.append(FrameLevelSample(
            dataset="a2d", video_id=video_id, exp_id=exp_id, expression=" ".join(query.lower().split()), video=video,
            frame_paths=None, annotated_frames=tuple(sorted(paths)),
            image_ids=tuple(f"v_{video_id}_f_{number}_i_{instance}" for number, _ in sorted(annotated)),
            load_masks=load))
    if not samples:
        raise AnnotationError(f"{root}: no A2D-Sentences expression found for split {split!r}")
    return FrameLevelDataset(tuple(samples), tuple(skipped))


def _natural(path: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in _DIGITS.split(path.name))


def read_jhmdb_masks(path: Path) -> np.ndarray:
    """The puppet masks of one JHMDB video, bool ``(T, H, W)``.

    Raises:
        AnnotationError: when the file is unreadable or has no ``(H, W, T)`` ``part_mask``.
    """
    import scipy.io

    try:
        masks = scipy.io.loadmat(str(path))[JHMDB_MASK_KEY]
    except (OSError, ValueError, KeyError) as exc:
        raise AnnotationError(f"{path}: not a JHMDB puppet mask file with {JHMDB_MASK_KEY!r} ({exc})") from exc
    if masks.ndim != 3:
        raise AnnotationError(f"{path}: {JHMDB_MASK_KEY} has shape {masks.shape}, expected (H, W, T)")
    return np.transpose(masks, (2, 0, 1)) != 0


def read_jhmdb(root: Path, split: str) -> FrameLevelDataset:
    """Parse JHMDB-Sentences (see the module docstring); ``split`` must be ``"test"``.

    Raises:
        AnnotationError: another split, missing files (named, with the expected layout), or a video
            whose frames or masks are missing.
    """
    layout = JHMDB_LAYOUT
    if split not in JHMDB_SPLITS:
        raise AnnotationError(f"JHMDB-Sentences has one split, {JHMDB_SPLITS[0]!r}; got {split!r}")
    rows = _read_csv_rows(_require(root / JHMDB_SENTENCES, layout), ("video_id", "query"))
    frame_dirs = {p.name: p for p in _require(root / JHMDB_FRAMES, layout).glob("*/*") if p.is_dir()}
    mask_files = {p.parent.name: p for p in _require(root / JHMDB_MASKS, layout).glob(f"*/*/{JHMDB_MASK_FILE}")}
    samples = []
    seen: dict[str, int] = {}
    for row in rows:
        video_id, query = row["video_id"], row["query"]
        if video_id not in frame_dirs or video_id not in mask_files:
            raise AnnotationError(f"JHMDB-Sentences video {video_id!r}: frames under {root / JHMDB_FRAMES}/<class>/ "
                                  f"or {JHMDB_MASK_FILE} under {root / JHMDB_MASKS}/<class>/ not found")
        frames = tuple(sorted(frame_dirs[video_id].glob("*.png"), key=_natural))
        if not frames:
            raise AnnotationError(f"{frame_dirs[video_id]}: no PNG frames")
        num_masks = read_jhmdb_masks(mask_files[video_id]).shape[0]
        count = min(num_masks, len(frames))
        seen[video_id] = seen.get(video_id, 0) + 1
        exp_id = str(seen[video_id] - 1)

        def load(frames: Sequence[int], path=mask_files[video_id]) -> np.ndarray:
            return read_jhmdb_masks(path)[list(frames)]

        samples.append(FrameLevelSample(
            dataset="jhmdb", video_id=video_id, exp_id=exp_id, expression=" ".join(query.lower().split()),
            video=frame_dirs[video_id], frame_paths=frames, annotated_frames=tuple(range(count)),
            image_ids=tuple(f"v_{video_id}_f_{t + 1}_i_{exp_id}" for t in range(count)), load_masks=load))
    if not samples:
        raise AnnotationError(f"{root / JHMDB_SENTENCES}: no expression")
    return FrameLevelDataset(tuple(samples), ())
