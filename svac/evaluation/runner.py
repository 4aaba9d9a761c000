"""The benchmark loop: shard, resume, predict, write, score, merge.

``run_benchmark("rvos", data_root=..., out_dir=OUT)`` evaluates one split of a benchmark and
leaves in ``OUT``::

    OUT/run.json                  the run's settings (a resumed run must use the same ones)
    OUT/items/<key>.json          one record per finished item: its scores, timings, answer
    OUT/predictions/...           prediction files (PNGs per frame, per benchmark)
    OUT/metrics.json              every number of the benchmark (+ settings, timing summary)
    OUT/per_item.csv              one row per item
    OUT/submission.zip            server submission (benchmarks without local ground truth)
    OUT/predictions.json          RLE predictions (frame-level benchmarks)

**One pass per video**: with a model that answers several queries per call (SVAC's
``segment_stream``), the unfinished expressions of a video are segmented together
(:func:`predict_video`): the video is decoded once, SAM-2's image encoder runs once per frame
whatever the number of expressions E, and the E objects are tracked in one SAM-2 batch; per
expression remain the MLLM's answer, the mask decoder and the memory. Other models (the
baselines) are called once per expression (:func:`predict_item`).

**Resuming**: an item is finished when its record exists; records and prediction folders
are written atomically (prediction files first, the record last), so a run killed at any
point and started again skips exactly the finished items and redoes the rest.

**Sharding**: under ``torchrun`` / ``accelerate launch`` each process takes the items of its
rank (:mod:`svac.evaluation.sharding`); rank 0 then waits until every record exists and
merges. Items are scored where they are predicted and merged in sorted key order, so a run
split over any number of processes gives the same numbers as a single process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence
from urllib.parse import quote

import numpy as np
from tqdm.auto import tqdm

from svac.atomic_folder import reserve_folder
from svac.errors import AnnotationError, ConfigError, OutputExistsError, SVACError
from svac.evaluation.benchmarks import BENCHMARKS, build_task
from svac.evaluation.predictions import write_json_atomic
from svac.evaluation.sharding import Shard, detect_shard, shard_keys
from svac.evaluation.task import BenchmarkTask, EvalItem, Prediction
from svac.metrics.output import write_text_atomic

if TYPE_CHECKING:
    from svac.model import SVAC
    from svac.segmentation_model import SegmentationModel

RUN_FILE = "run.json"
ITEMS_DIR = "items"
PREDICTIONS_DIR = "predictions"
METRICS_FILE = "metrics.json"
PER_ITEM_CSV = "per_item.csv"
#: Seconds between checks while rank 0 waits for the other ranks' records.
MERGE_POLL_SECONDS = 2.0
#: Environment variable torchrun / accelerate set to the process's GPU index on its node.
LOCAL_RANK_ENV = "LOCAL_RANK"


class IncompleteRunError(SVACError, RuntimeError):
    """The merge found items without a record (other ranks unfinished or failed); the message lists some."""


@dataclass(frozen=True)
class BenchmarkResult:
    """What :func:`run_benchmark` did.

    Attributes:
        benchmark: benchmark name.
        split: the split evaluated.
        out_dir: the run folder.
        shard: this process's shard.
        num_items: items in the split (all ranks).
        num_predicted: items this call predicted.
        num_resumed: items of this shard already finished before this call (skipped).
        metrics_path: ``OUT/metrics.json`` when this process merged, else ``None``.
        scores: the headline numbers when this process merged (``None`` on other ranks, or when the
            split has no ground truth).
        files: files the merge wrote, by role (``metrics``, ``per_item``, ``submission`` ...).
    """

    benchmark: str
    split: str
    out_dir: Path
    shard: Shard
    num_items: int
    num_predicted: int
    num_resumed: int
    metrics_path: Path | None
    scores: dict | None
    files: dict[str, str]


def record_path(out_dir: Path, key: str) -> Path:
    """Where an item's record lives: ``OUT/items/<key with '/' escaped>.json``."""
    return out_dir / ITEMS_DIR / f"{quote(key, safe='')}.json"


def load_record(out_dir: Path, key: str) -> dict | None:
    """An item's record, or ``None`` when it is absent or unreadable (then the item is redone)."""
    path = record_path(out_dir, key)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def predict_item(model: "SegmentationModel", item: EvalItem, *, num_frames: int | None,
                 clip_len: int | None) -> Prediction:
    """Segment one item with ``model`` and reduce the result to a :class:`Prediction`.

    The prediction mask is the union of the K objects the answer segmented (empty when K = 0),
    its score the highest object-presence probability. Models that answer several queries per
    call go through :func:`predict_video` instead.

    Raises:
        svac.errors.VideoReadError: when the item's video cannot be read.
    """
    source = item.open_video()
    result = model.segment(source, item.expression, num_frames=num_frames, clip_len=clip_len, progress=False)
    k = result.num_objects
    masks = result.masks.any(axis=0) if k else np.zeros((source.num_frames, source.height, source.width), dtype=bool)
    return Prediction(masks=masks, score=float(result.scores.max()) if k else 0.0, num_objects=k,
                      frame_names=tuple(source.frame_names), text=result.text,
                      num_visual_tokens=int(result.num_visual_tokens), timings=result.timings.to_dict())


#: Largest mask memory (bytes, 1 byte per pixel) the expressions of one video may hold while it is
#: segmented in one pass; a video with more expressions x frames x pixels is split into passes.
VIDEO_GROUP_BYTES = 2 * 1024 ** 3


def video_groups(items: Sequence[EvalItem]) -> list[tuple[object, list[EvalItem]]]:
    """Consecutive items on the same video, with that video opened once: ``[(source, items), ...]``.

    Items share a video when they have the same ``video_id`` and their videos have the same frame
    names and size. A group is cut where its masks (expressions x frames x H x W bytes) would pass
    :data:`VIDEO_GROUP_BYTES`.
    """
    groups: list[tuple[object, list[EvalItem]]] = []
    key = None
    for item in items:
        source = item.open_video()
        this = (item.video_id, tuple(source.frame_names), source.height, source.width)
        per_item = source.num_frames * source.height * source.width
        if groups and this == key and (len(groups[-1][1]) + 1) * per_item <= VIDEO_GROUP_BYTES:
            groups[-1][1].append(item)
        else:
            groups.append((source, [item]))
            key = this
    return groups


def predict_video(model: "SVAC", source, items: Sequence[EvalItem], *, num_frames: int | None,
                  clip_len: int | None) -> list[Prediction]:
    """Segment every item of one video in one pass: each frame decoded once and encoded once by SAM-2.

    The MLLM answers each expression (``model.segment_stream`` with the E expressions as queries);
    SAM-2's image encoder runs once per frame and the objects of all E expressions are tracked in
    one batch. Each item's prediction is the union of its own objects (empty when its answer held
    no ``[SEG]``). Each record's timings hold its own MLLM stages plus 1/E of the shared stages
    (decoding, SAM-2), so summing records gives the run's time.

    Raises:
        svac.errors.VideoReadError: when the video cannot be read.
    """
    stream = model.segment_stream(source, [item.expression for item in items], num_frames=num_frames,
                                  clip_len=clip_len, progress=False)
    e, n, (h, w) = len(items), stream.num_frames, stream.frame_size
    rows = [[i for i, o in enumerate(stream.objects) if o.query_index == q and o.found] for q in range(e)]
    masks = np.zeros((e, n, h, w), dtype=bool)
    for chunk in stream:
        for q, r in enumerate(rows):
            if r:
                masks[q, chunk.start:chunk.stop] = chunk.masks[r].any(axis=0)
    shared = stream.timings.to_dict()
    predictions = []
    for q, item in enumerate(items):
        own = stream.query_timings[q].to_dict()
        timings = {stage: own[stage] if own[stage] else shared[stage] / e for stage in shared}
        predictions.append(Prediction(
            masks=masks[q], score=max((float(stream.scores[i]) for i in rows[q]), default=0.0),
            num_objects=len(rows[q]), frame_names=tuple(stream.frame_names), text=stream.answers[q],
            num_visual_tokens=int(stream.num_visual_tokens), timings=timings))
    return predictions


def run_benchmark(name: str, *, data_root: str | os.PathLike[str], model_spec: str | None = None,
                  out_dir: str | os.PathLike[str], num_frames: int | None = None, clip_len: int | None = None,
                  split: str | None = None, resume: bool = True, progress: bool = True, device: str | None = None,
                  overrides: Sequence[str] = (), skip_invalid: bool = False, shard: Shard | None = None,
                  merge: bool = True, merge_timeout: float | None = None,
                  model: "SegmentationModel | None" = None
                  ) -> BenchmarkResult:
    """Evaluate a model on one split of a benchmark (resumable, shardable).

    Args:
        name: a benchmark of :data:`svac.evaluation.benchmarks.BENCHMARKS` (``rvos``, ``refytvos``,
            ``mevis``, ``revos``, ``davis17``, ``a2d``, ``jhmdb``, ``refcoco`` ...).
        data_root: the dataset root in the benchmark's released layout.
        model_spec: the model (see :func:`svac.loading.load_model`); ``None``: the default model.
        out_dir: the run folder (created if missing).
        num_frames: T, frames the MLLM sees (default: the model's config).
        clip_len: m, frames per clip (default: the model's config).
        split: the split (default: the benchmark's usual evaluation split).
        resume: reuse the finished items of a previous run in ``out_dir`` with the same settings;
            ``False`` refuses a folder where items of this shard are already finished.
        progress: show a progress bar over this process's items.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (default: the config's; under torchrun on GPUs
            each rank uses ``cuda:$LOCAL_RANK``).
        overrides: ``key=value`` config overrides.
        skip_invalid: let the dataset reader drop invalid expressions (listed in ``metrics.json``).
        shard: this process's shard (default: from ``RANK`` / ``WORLD_SIZE``, see :func:`detect_shard`).
        merge: let rank 0 merge the records into ``metrics.json`` once every item is finished.
        merge_timeout: seconds rank 0 waits for the other ranks' records (``None``: no limit).
        model: an already loaded model to use instead of loading ``model_spec`` (``model_spec`` is
            then only the name recorded in ``run.json``).

    Returns:
        A :class:`BenchmarkResult`; ``metrics_path`` and ``scores`` are set on the merging process.

    Raises:
        ConfigError: unknown benchmark, bad shard, or ``out_dir`` holding a run with other settings.
        svac.errors.AnnotationError: ``data_root`` missing or not in the benchmark's layout (the message
            says what was expected).
        svac.errors.OutputExistsError: ``resume=False`` and items of this shard are already finished in ``out_dir``.
        IncompleteRunError: the merge timed out waiting for other ranks.
        svac.errors.OutputLockedError: another run (of the same shard) is writing ``out_dir``.
        svac.errors.OutputWriteError: ``out_dir`` cannot be written.
    """
    shard = detect_shard() if shard is None else shard
    task = _open_task(name, data_root, split, skip_invalid=skip_invalid)
    out = Path(out_dir)
    # checked and locked before the model loads: a second run into the same folder (same shard) refuses at once
    tag = f".rank{shard.rank}of{shard.world_size}" if shard.world_size > 1 else ""
    with reserve_folder(out, tag=tag):
        settings = {"benchmark": name, "split": task.split, "data_root": str(Path(data_root).resolve()),
                    "model": model_spec if model_spec is not None else (model.config.name if model is not None else None),
                    "num_frames": num_frames, "clip_len": clip_len, "overrides": list(overrides), **task.settings()}
        _check_run_settings(out, settings)
        keys = [item.key for item in task.items]
        mine = shard_keys(keys, shard)
        by_key = {item.key: item for item in task.items}
        todo = [k for k in mine if load_record(out, k) is None]
        if not resume and len(todo) < len(mine):
            raise OutputExistsError(f"{out} already holds {len(mine) - len(todo)} finished items of this run; resume it "
                                    "or choose another output folder")
        if todo:
            if model is None:
                model = _load_model(model_spec, _device_for(shard, device), overrides)
            desc = f"{name} ({task.split})" + (f" rank {shard.rank}/{shard.world_size}" if shard.world_size > 1 else "")
            with tqdm(total=len(todo), desc=desc, unit="expr", disable=not progress) as bar:
                for item, prediction in _predictions(model, [by_key[k] for k in todo], num_frames=num_frames,
                                                     clip_len=clip_len):
                    task.write_predictions(item, prediction, out / PREDICTIONS_DIR)
                    record = {"key": item.key, "video_id": item.video_id, "exp_id": item.exp_id,
                              "num_frames": len(prediction.frame_names), "num_objects": prediction.num_objects,
                              "score": prediction.score, "text": prediction.text,
                              "num_visual_tokens": prediction.num_visual_tokens, "timings": prediction.timings,
                              "result": task.score(item, prediction)}
                    write_json_atomic(record_path(out, item.key), record)
                    bar.update(1)
        result = BenchmarkResult(benchmark=name, split=task.split, out_dir=out, shard=shard, num_items=len(keys),
                                 num_predicted=len(todo), num_resumed=len(mine) - len(todo), metrics_path=None,
                                 scores=None, files={})
        if not (merge and shard.is_main):
            return result
        files, scores = _merge(task, out, settings, wait_timeout=merge_timeout if shard.world_size > 1 else 0.0)
        return dataclasses.replace(result, metrics_path=Path(files["metrics"]), scores=scores, files=files)


def _predictions(model, items: Sequence[EvalItem], *, num_frames, clip_len):
    """``(item, prediction)`` for every item: the expressions of a video in one pass when the model streams
    several queries (SVAC: SAM-2 encodes each frame once per video), else one item at a time."""
    if not hasattr(model, "segment_stream"):
        for item in items:
            yield item, predict_item(model, item, num_frames=num_frames, clip_len=clip_len)
        return
    for source, group in video_groups(items):
        yield from zip(group, predict_video(model, source, group, num_frames=num_frames, clip_len=clip_len))


def merge_benchmark(name: str, *, data_root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                    split: str | None = None, skip_invalid: bool = False, wait_timeout: float | None = 0.0
                    ) -> BenchmarkResult:
    """Merge the records of a (possibly sharded) run into ``metrics.json`` without predicting anything.

    Args:
        name, data_root, split, skip_invalid: as for :func:`run_benchmark` (they must match the run).
        out_dir: the run folder.
        wait_timeout: seconds to wait for missing records (0: fail at once; ``None``: no limit).

    Raises:
        ConfigError: ``out_dir`` holds no run, or a run of another benchmark / split / data root.
        IncompleteRunError: some items have no record.
    """
    task = _open_task(name, data_root, split, skip_invalid=skip_invalid)
    out = Path(out_dir)
    settings = _read_run_file(out)
    if settings is None:
        raise ConfigError(f"{out} holds no run ({RUN_FILE} is missing); run the benchmark first")
    expected = {"benchmark": name, "split": task.split, "data_root": str(Path(data_root).resolve())}
    wrong = {k: (settings.get(k), v) for k, v in expected.items() if settings.get(k) != v}
    if wrong:
        raise ConfigError(f"{out} holds a run with other settings: "
                          + ", ".join(f"{k} {a!r} (asked {b!r})" for k, (a, b) in wrong.items()))
    files, scores = _merge(task, out, settings, wait_timeout=wait_timeout)
    return BenchmarkResult(benchmark=name, split=task.split, out_dir=out, shard=Shard(), num_items=len(task.items),
                           num_predicted=0, num_resumed=len(task.items), metrics_path=Path(files["metrics"]),
                           scores=scores, files=files)


def _open_task(name: str, data_root, split: str | None, *, skip_invalid: bool) -> BenchmarkTask:
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; available: {', '.join(sorted(BENCHMARKS))}")
    spec = BENCHMARKS[name]
    root = Path(data_root).expanduser()
    chosen = split if split is not None else spec.default_split
    if not root.is_dir():
        state = "is not a folder" if root.exists() else "does not exist"
        raise AnnotationError(f"benchmark {name!r}: data root {root} {state}; expected {spec.layout}")
    try:
        return build_task(name, root, chosen, skip_invalid=skip_invalid)
    except AnnotationError as exc:
        raise AnnotationError(f"benchmark {name!r}, split {chosen!r}: {exc}") from exc


def _read_run_file(out: Path) -> dict | None:
    path = out / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); it is not a run folder svac wrote") from exc


def _check_run_settings(out: Path, settings: dict) -> None:
    previous = _read_run_file(out)
    if previous is None:
        if (out / ITEMS_DIR).is_dir() and any((out / ITEMS_DIR).iterdir()):
            raise ConfigError(f"{out} holds item records but no {RUN_FILE}; choose an empty output folder")
        write_json_atomic(out / RUN_FILE, settings)
        return
    if previous != settings:
        diff = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        raise ConfigError(f"{out} holds a run with other settings ("
                          + ", ".join(f"{k}: {previous.get(k)!r} there, {settings.get(k)!r} now" for k in diff)
                          + "); use the same settings to resume, or another output folder")


def _device_for(shard: Shard, device: str | None) -> str | None:
    if shard.world_size > 1 and device in (None, "auto", "cuda") and LOCAL_RANK_ENV in os.environ:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{int(os.environ[LOCAL_RANK_ENV])}"
    return device


def _load_model(spec: str | None, device: str | None, overrides: Sequence[str]) -> "SegmentationModel":
    from svac.loading import UntrainedModelWarning, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("always", UntrainedModelWarning)
        return load_model(spec, device=device, overrides=tuple(overrides))


def _collect_records(task: BenchmarkTask, out: Path, wait_timeout: float | None) -> list[dict]:
    keys = sorted(item.key for item in task.items)
    start = time.monotonic()
    while True:
        records = {k: load_record(out, k) for k in keys}
        missing = [k for k, r in records.items() if r is None]
        if not missing:
            return [records[k] for k in keys]
        if wait_timeout is not None and time.monotonic() - start >= wait_timeout:
            raise IncompleteRunError(f"{len(missing)} of {len(keys)} items of {out} have no record (e.g. "
                                     f"{', '.join(missing[:3])}); finish the run (resume it) before merging")
        time.sleep(MERGE_POLL_SECONDS)


def _merge(task: BenchmarkTask, out: Path, settings: dict, *, wait_timeout: float | None
           ) -> tuple[dict[str, str], dict | None]:
    records = _collect_records(task, out, wait_timeout)
    merged = task.merge(records, out, out / PREDICTIONS_DIR)
    per_item = out / PER_ITEM_CSV
    _write_csv(per_item, merged.per_item)
    stages = sorted({s for r in records for s in r["timings"]})
    timing = {
        "n_items": len(records),
        "mean_seconds": {s: float(np.mean([r["timings"].get(s, 0.0) for r in records])) for s in stages},
        "sum_total_seconds": float(np.sum([r["timings"].get("total", 0.0) for r in records])),
        "mean_visual_tokens": float(np.mean([r["num_visual_tokens"] for r in records])),
    }
    files = {"metrics": str(out / METRICS_FILE), "per_item": str(per_item), **merged.files}
    metrics = {"benchmark": task.name, "split": task.split, "settings": settings, "n_items": len(records),
               "scores": merged.scores, "timing": timing, "notes": merged.notes,
               "skipped_annotations": task.skipped, "files": files}
    write_json_atomic(out / METRICS_FILE, metrics)
    return files, merged.scores


def _write_csv(path: Path, rows: list[dict]) -> None:
    import csv
    import io

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    write_text_atomic(path, buffer.getvalue(), overwrite=True)
