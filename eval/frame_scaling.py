"""The frame-scaling study: cost and accuracy of ASTC against ``uncompressed`` and ``first_k`` as T grows.

For every T in ``frames`` (default 5, 10, 20, 40, 80, 160) it runs the same model on the same
videos in each input mode -- ASTC with several clip lengths m (SVAC §3.3), ``uncompressed``
(every sampled frame an MLLM image) and ``first_k`` (Sa2VA: the first 5 frames) -- and
measures, per run:

* visual tokens read by the LLM;
* LLM prefill, SAM-2 image-encoder and end-to-end seconds (:class:`svac.outputs.Timings`);
* peak memory: process RSS sampled during the run, and CUDA peak allocation on GPUs
  (``eval/peak_memory.py``);
* J, F, J&F (MeViS protocol, every frame) where the videos have ground truth;
* the **overhead ratio** end-to-end ÷ (SAM-2 encoder + LLM prefill): the pipeline cannot run
  faster than its encoder and prefill, so the ratio says how much the rest adds.

Videos: ``num_videos`` synthetic videos drawn in memory (:func:`svac.data.synthetic.generate_video`,
with ground truth) by default; or the first expressions of an ``rvos``-layout dataset
(``data_root``, with ground truth); or user videos (``videos``, without ground truth). Every
video is looped to at least max(T) frames (:class:`svac.evaluation.video_sources.LoopedVideo`),
so SAM-2 processes the same frames at every T and only the MLLM input changes.

Also measured: the SAM-2 encoder time with K = 1, 2, 4 objects (random ``[SEG]`` prompts
through :func:`svac.inference.ground`; the encoder runs once per frame whatever K), and a
per-stage split of one run per T (``eval/pipeline_profile.py``).

Timings are wall-clock medians over ``repeats`` runs after one warm-up run per mode; on a
shared machine they carry the noise of other processes (the per-run values are kept in
``frame_scaling_runs.csv``).

Run it as ``svac bench frames [ARGS]`` or ``python eval/frame_scaling.py [ARGS]`` (the same
arguments; ``--help`` lists them). Example (the tiny random model, a few minutes on a CPU)::

    python eval/frame_scaling.py --model tiny.yaml --out runs/frame_scaling

Its report is written by ``eval/scaling_report.py``; the default settings are in
``eval/frame_scaling_settings.py``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from svac import cli_types
from svac.errors import ConfigError
from svac.evaluation.video_sources import LoopedVideo
from svac.video.reader import ArrayVideo, VideoSource, open_video

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the study's sibling modules in eval/
from frame_scaling_settings import (  # noqa: E402
    DEFAULT_CLIP_LENS,
    DEFAULT_EXPRESSION,
    DEFAULT_FRAMES,
    DEFAULT_K_OBJECTS,
    DEFAULT_SEED,
    DEFAULT_THREADS,
    MODES,
    OVERHEAD_TARGET,
)
from peak_memory import PeakMemory  # noqa: E402
from pipeline_profile import PipelineProfile, profile_segment  # noqa: E402
from scaling_report import check_outputs, markdown_table, write_report  # noqa: E402

if TYPE_CHECKING:
    from svac.model import SVAC

#: Frame size (W, H) of the synthetic study videos (pixels).
SYNTHETIC_SIZE = (160, 120)


@dataclass(frozen=True)
class StudyVideo:
    """One video of the study.

    Attributes:
        name: a short name.
        source: the video (looped to at least max(T) frames).
        expression: the query asked on it.
        gt: ``bool (N, H, W)`` ground truth of the query over every frame, or ``None``.
    """

    name: str
    source: VideoSource
    expression: str
    gt: np.ndarray | None


@dataclass(frozen=True)
class Variant:
    """One input mode: ``astc`` with clip length m, ``uncompressed`` or ``first_k``."""

    mode: str
    clip_len: int | None = None

    @property
    def label(self) -> str:
        """``astc m=5``, ``uncompressed``, ``first_k (Sa2VA)``."""
        if self.mode == "astc":
            return f"astc m={self.clip_len}"
        return "first_k (Sa2VA)" if self.mode == "first_k" else self.mode


@dataclass(frozen=True)
class ScalingRun:
    """One measured ``segment`` call (seconds, MiB; J/F/J&F ``None`` without ground truth or on repeats)."""

    video: str
    variant: str
    mode: str
    clip_len: int | None
    num_frames: int
    repeat: int
    video_frames: int
    visual_tokens: int
    video_decode_s: float
    mllm_vision_s: float
    llm_prefill_s: float
    sam2_encoder_s: float
    sam2_tracking_s: float
    total_s: float
    overhead_ratio: float
    peak_rss_mib: float
    rss_increase_mib: float
    cuda_peak_mib: float | None
    j: float | None
    f: float | None
    jf: float | None


@dataclass(frozen=True)
class ScalingRow:
    """One (variant, T) of the table: medians over videos and repeats.

    Attributes:
        variant, mode, clip_len, num_frames: what was run (T frames sampled).
        visual_tokens: visual tokens into the LLM (the same on every run).
        token_ratio: ``visual_tokens`` ÷ the ``uncompressed`` tokens at the same T.
        expected_ratio: ASTC: 2⌈T/m⌉ / T (= 2/m when m divides T); 1 for ``uncompressed``;
            ``first_k`` / T for ``first_k``.
        llm_prefill_s, sam2_encoder_s, total_s: median seconds.
        overhead_ratio: median of the runs' end-to-end ÷ (encoder + prefill); ``overhead_ratio_max``: their max.
        peak_rss_mib: median peak RSS (MiB); ``rss_increase_mib``: median peak RSS above the RSS at the
            start of the run (MiB); ``cuda_peak_mib``: median CUDA peak (MiB) or ``None``.
        jf, j, f: means over the videos with ground truth, or ``None``.
        runs: number of runs aggregated.
    """

    variant: str
    mode: str
    clip_len: int | None
    num_frames: int
    visual_tokens: int
    token_ratio: float
    expected_ratio: float
    llm_prefill_s: float
    sam2_encoder_s: float
    total_s: float
    overhead_ratio: float
    overhead_ratio_max: float
    peak_rss_mib: float
    rss_increase_mib: float
    cuda_peak_mib: float | None
    jf: float | None
    j: float | None
    f: float | None
    runs: int

    @property
    def tokens_exact(self) -> bool:
        """Whether the token count equals the analytic one exactly (``token_ratio == expected_ratio``)."""
        return math.isclose(self.token_ratio, self.expected_ratio, rel_tol=0.0, abs_tol=1e-12)


@dataclass(frozen=True)
class KObjectsRow:
    """SAM-2 stage with K random ``[SEG]`` prompts per clip (median seconds over repeats)."""

    num_objects: int
    encoder_s: float
    tracking_s: float
    video_frames: int


@dataclass(frozen=True)
class FrameScalingResult:
    """Everything the study measured and the files it wrote.

    Attributes:
        rows: the table, one row per (variant, T).
        runs: every measured run.
        k_objects: SAM-2 encoder / tracking seconds per K.
        profiles: the stage split of one ASTC run per T.
        files: written files by role (``csv``, ``runs_csv``, ``markdown``, ``tokens_plot`` ...).
        model_name: the model's config name; ``trained``: whether it has trained weights.
        device: the device it ran on; threads: torch CPU threads.
        wall_seconds: duration of the whole study.
    """

    rows: tuple[ScalingRow, ...]
    runs: tuple[ScalingRun, ...]
    k_objects: tuple[KObjectsRow, ...]
    profiles: tuple[PipelineProfile, ...]
    files: dict[str, Path]
    model_name: str
    trained: bool
    device: str
    threads: int
    video_names: tuple[str, ...]
    video_frames: int
    repeats: int
    wall_seconds: float

    @property
    def max_overhead_ratio(self) -> float:
        """Largest median overhead ratio over the rows."""
        return max(r.overhead_ratio for r in self.rows)

    @property
    def overhead_target_met(self) -> bool:
        """Whether every row's median overhead ratio is at most :data:`OVERHEAD_TARGET`."""
        return self.max_overhead_ratio <= OVERHEAD_TARGET

    @property
    def token_mismatches(self) -> tuple[ScalingRow, ...]:
        """Rows whose token count differs from the analytic count (empty when ASTC is exactly 2⌈T/m⌉/T)."""
        return tuple(r for r in self.rows if not r.tokens_exact)


def expected_token_ratio(variant: Variant, num_frames: int, first_k: int) -> float:
    """Analytic visual tokens ÷ ``uncompressed`` tokens at T = ``num_frames`` (SVAC §3.3).

    ASTC gives 2 images per clip of m frames: 2⌈T/m⌉ / T, which is 2/m when m divides T.
    ``first_k`` reads the video's first k frames whatever T: k / T. ``uncompressed``: 1.
    (Assumes the video has at least max(T, k) frames, as the study's videos do.)
    """
    if variant.mode == "astc":
        return 2 * math.ceil(num_frames / variant.clip_len) / num_frames
    if variant.mode == "first_k":
        return first_k / num_frames
    return 1.0


def variant_model(model: "SVAC", mode: str) -> "SVAC":
    """A shallow copy of ``model`` (shared weights) whose ``config.astc.mode`` is ``mode``."""
    config = dataclasses.replace(model.config, astc=dataclasses.replace(model.config.astc, mode=mode))
    clone = copy.copy(model)
    clone.config = config
    return clone


def _check_args(frames, clip_lens, modes, num_videos, repeats, k_objects) -> None:
    if not frames or any(not isinstance(t, int) or t < 1 for t in frames) or len(set(frames)) != len(frames):
        raise ConfigError(f"frames must be distinct integers >= 1, got {list(frames)}")
    unknown = [m for m in modes if m not in MODES]
    if not modes or unknown:
        raise ConfigError(f"modes must be a non-empty subset of {MODES}, got {list(modes)}")
    if "astc" in modes and (not clip_lens or any(not isinstance(m, int) or m < 1 for m in clip_lens)):
        raise ConfigError(f"astc needs clip lengths >= 1, got {list(clip_lens)}")
    if num_videos < 1 or repeats < 1:
        raise ConfigError(f"num_videos and repeats must be >= 1, got {num_videos} and {repeats}")
    if any(k < 1 for k in k_objects):
        raise ConfigError(f"k_objects must be >= 1, got {list(k_objects)}")


def synthetic_videos(count: int, num_frames: int, *, seed: int = DEFAULT_SEED,
                     size: tuple[int, int] = SYNTHETIC_SIZE) -> list[StudyVideo]:
    """``count`` synthetic videos of at least ``num_frames`` frames, with their first expression and its ground truth.

    Videos are drawn with the generator's length limits (12 to 512 frames) and looped when
    ``num_frames`` is above the limit.
    """
    from svac.data.synthetic import VideoSpec, generate_video
    from svac.data.synthetic.generator import MAX_VIDEO_FRAMES, MIN_VIDEO_FRAMES

    length = min(max(num_frames, MIN_VIDEO_FRAMES), MAX_VIDEO_FRAMES)
    spec = VideoSpec(num_frames=(length, length), size=size)
    out = []
    for i in range(count):
        video = generate_video(np.random.default_rng([seed, i]), spec)
        expr = video.expressions[0]
        n = max(length, num_frames)
        source = LoopedVideo(ArrayVideo(video.frames, name=f"synthetic-{seed}-{i}"), n)
        out.append(StudyVideo(name=f"synthetic-{seed}-{i}", source=source, expression=expr.text,
                              gt=video.object_mask(expr.obj_id)[np.arange(n) % length]))
    return out


def dataset_videos(data_root: str | os.PathLike[str], split: str, count: int, min_frames: int) -> list[StudyVideo]:
    """The first ``count`` expressions (sorted by video, expression id) of an ``rvos``-layout split, looped
    to at least ``min_frames`` frames (ground truth looped alike).

    Raises:
        svac.errors.AnnotationError: when the root is not an ``rvos`` dataset with masks.
    """
    from svac.data.readers import load_dataset
    from svac.evaluation.video_sources import FrameListVideo

    samples = sorted(load_dataset(f"rvos:{data_root}", split), key=lambda s: (s.video_id, s.exp_id))[:count]
    out = []
    for s in samples:
        source = FrameListVideo(s.frame_paths, name=s.video_id)
        gt = s.load_masks()
        n = max(source.num_frames, min_frames)
        out.append(StudyVideo(name=f"{s.video_id}/{s.exp_id}", source=LoopedVideo(source, n), expression=s.expression,
                              gt=gt[np.arange(n) % gt.shape[0]]))
    return out


def file_videos(paths: Sequence[str | os.PathLike[str]], min_frames: int, expression: str) -> list[StudyVideo]:
    """User videos (files or frame folders), looped to at least ``min_frames`` frames, without ground truth."""
    out = []
    for p in paths:
        source = open_video(p)
        out.append(StudyVideo(name=source.name, source=LoopedVideo(source, max(source.num_frames, min_frames)),
                              expression=expression, gt=None))
    return out


def _measure(model: "SVAC", video: StudyVideo, variant: Variant, num_frames: int, repeat: int,
             with_scores: bool) -> ScalingRun:
    from svac.evaluation.video_tasks import per_frame_j_f

    with PeakMemory(model.device) as mem:
        result = model.segment(video.source, video.expression, num_frames=num_frames, clip_len=variant.clip_len)
    t = result.timings
    j = f = jf = None
    if with_scores and video.gt is not None:
        pred = result.masks.any(axis=0) if result.num_objects else np.zeros_like(video.gt)
        j_frames, f_frames = per_frame_j_f(pred, video.gt)
        j, f = float(np.mean(j_frames)), float(np.mean(f_frames))
        jf = (j + f) / 2
    floor = t.sam2_encoder + t.llm_prefill
    peak = mem.result
    return ScalingRun(video=video.name, variant=variant.label, mode=variant.mode, clip_len=variant.clip_len,
                      num_frames=num_frames, repeat=repeat, video_frames=video.source.num_frames,
                      visual_tokens=int(result.num_visual_tokens), video_decode_s=t.video_decode,
                      mllm_vision_s=t.mllm_vision, llm_prefill_s=t.llm_prefill, sam2_encoder_s=t.sam2_encoder,
                      sam2_tracking_s=t.sam2_tracking, total_s=t.total,
                      overhead_ratio=t.total / floor if floor > 0 else float("inf"),
                      peak_rss_mib=peak.peak_rss_mib, rss_increase_mib=peak.rss_increase_mib,
                      cuda_peak_mib=peak.cuda_peak_mib, j=j, f=f, jf=jf)


def aggregate(runs: Sequence[ScalingRun], variants: Sequence[Variant], frames: Sequence[int], *,
              tokens_per_image: int, first_k: int) -> list[ScalingRow]:
    """Median rows per (variant, T) in the order of ``variants`` then ``frames`` (see :class:`ScalingRow`).

    The token ratio divides by the measured ``uncompressed`` tokens at the same T when that mode
    was run, else by T x ``tokens_per_image``.
    """
    def median(values):
        return float(np.median(values))

    rows = []
    for variant in variants:
        for T in frames:
            group = [r for r in runs if r.variant == variant.label and r.num_frames == T]
            if not group:
                continue
            uncompressed = [r.visual_tokens for r in runs if r.mode == "uncompressed" and r.num_frames == T]
            base = uncompressed[0] if uncompressed else T * tokens_per_image
            scored = [r for r in group if r.jf is not None]
            cuda = [r.cuda_peak_mib for r in group if r.cuda_peak_mib is not None]
            rows.append(ScalingRow(
                variant=variant.label, mode=variant.mode, clip_len=variant.clip_len, num_frames=T,
                visual_tokens=group[0].visual_tokens, token_ratio=group[0].visual_tokens / base,
                expected_ratio=expected_token_ratio(variant, T, first_k),
                llm_prefill_s=median([r.llm_prefill_s for r in group]),
                sam2_encoder_s=median([r.sam2_encoder_s for r in group]), total_s=median([r.total_s for r in group]),
                overhead_ratio=median([r.overhead_ratio for r in group]),
                overhead_ratio_max=float(max(r.overhead_ratio for r in group)),
                peak_rss_mib=median([r.peak_rss_mib for r in group]),
                rss_increase_mib=median([r.rss_increase_mib for r in group]),
                cuda_peak_mib=median(cuda) if cuda else None,
                jf=float(np.mean([r.jf for r in scored])) if scored else None,
                j=float(np.mean([r.j for r in scored])) if scored else None,
                f=float(np.mean([r.f for r in scored])) if scored else None, runs=len(group)))
    return rows


def measure_k_objects(model: "SVAC", source: VideoSource, k_values: Sequence[int], *, num_frames: int,
                      repeats: int, seed: int = DEFAULT_SEED) -> list[KObjectsRow]:
    """SAM-2 encoder and tracking seconds of :func:`svac.inference.ground` with K random prompts per clip.

    The image encoder runs once per frame whatever K is; only tracking (memory attention, mask
    decoder, memory encoder over K objects) should grow with K.
    """
    from svac.astc import plan_clips
    from svac.inference import ground

    plan = plan_clips(source.num_frames, model.config.astc, num_frames=num_frames)
    generator = torch.Generator().manual_seed(seed)
    channels = model.grounding.hidden_dim
    rows = []
    with torch.inference_mode():
        ground(model, source, plan, torch.randn(plan.num_clips, 1, channels, generator=generator).to(model.device))
        for k in k_values:
            prompts = torch.randn(plan.num_clips, k, channels, generator=generator).to(model.device)
            outs = [ground(model, source, plan, prompts) for _ in range(repeats)]
            rows.append(KObjectsRow(num_objects=k, encoder_s=float(np.median([o.encoder_seconds for o in outs])),
                                    tracking_s=float(np.median([o.tracking_seconds for o in outs])),
                                    video_frames=source.num_frames))
    return rows


def run_frame_scaling(*, model_spec: str | None = None, out_dir: str | os.PathLike[str],
                      data_root: str | os.PathLike[str] | None = None, split: str = "valid",
                      videos: Sequence[str | os.PathLike[str]] = (), expression: str = DEFAULT_EXPRESSION,
                      frames: Sequence[int] = DEFAULT_FRAMES, clip_lens: Sequence[int] = DEFAULT_CLIP_LENS,
                      modes: Sequence[str] = MODES, num_videos: int = 1, repeats: int = 3,
                      k_objects: Sequence[int] = DEFAULT_K_OBJECTS, device: str | None = None,
                      overrides: Sequence[str] = (), seed: int = DEFAULT_SEED,
                      threads: int | None = DEFAULT_THREADS, overwrite: bool = False, progress: bool = True,
                      model: "SVAC | None" = None
                      ) -> FrameScalingResult:
    """Run the frame-scaling study and write its table, CSVs and plots into ``out_dir``.

    Args:
        model_spec: the model (see :func:`svac.loading.load_model`); ``None``: the default model.
        out_dir: output folder (see ``eval/scaling_report.py`` for the files).
        data_root: an ``rvos``-layout dataset whose first ``num_videos`` expressions are used.
        split: its split.
        videos: video files / frame folders to use instead (no ground truth: no J&F).
        expression: the query asked on ``videos``.
        frames: the values of T.
        clip_lens: the ASTC clip lengths m.
        modes: the input modes (``astc``, ``uncompressed``, ``first_k``).
        num_videos: synthetic videos drawn / dataset expressions used (ignored with ``videos``).
        repeats: measured runs per (video, mode, T), after one warm-up run per mode.
        k_objects: the K values of the encoder-vs-K check (empty: skip it).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``; default the config's.
        overrides: ``key=value`` config overrides.
        seed: seed of the synthetic videos and the random K-object prompts.
        threads: torch CPU threads during the study (restored afterwards); ``None`` keeps the current
            setting. Default 1: on a CPU shared with other jobs, several OpenMP threads wait for busy
            cores and runs slow down by up to 60x (measured here), which single-threaded runs avoid.
        overwrite: replace the study's files already in ``out_dir``.
        progress: show a progress bar.
        model: an already loaded model to use instead of ``model_spec``.

    Returns:
        The :class:`FrameScalingResult`.

    Raises:
        ConfigError: on bad arguments (the message names the argument).
        svac.errors.OutputExistsError: when the study's files exist in ``out_dir`` and ``overwrite`` is False.
        svac.errors.OutputLockedError: another run is writing ``out_dir``.
        svac.errors.OutputWriteError: ``out_dir`` cannot be written.
        svac.errors.AnnotationError / VideoReadError: when ``data_root`` / ``videos`` cannot be read.
    """
    from svac.atomic_folder import reserve_folder

    frames = tuple(int(t) for t in frames)
    _check_args(frames, tuple(clip_lens), tuple(modes), num_videos, repeats, tuple(k_objects))
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    out = Path(out_dir)
    previous_threads = torch.get_num_threads()
    with reserve_folder(out):  # writability probe and lock, before any model is loaded
        check_outputs(out, overwrite=overwrite)
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            return _study(model_spec=model_spec, out=out, data_root=data_root, split=split, videos=videos,
                          expression=expression, frames=frames, clip_lens=clip_lens, modes=modes,
                          num_videos=num_videos, repeats=repeats, k_objects=k_objects, device=device,
                          overrides=overrides, seed=seed, overwrite=overwrite, progress=progress, model=model)
        finally:
            torch.set_num_threads(previous_threads)


def _study(*, model_spec, out: Path, data_root, split, videos, expression, frames, clip_lens, modes, num_videos,
           repeats, k_objects, device, overrides, seed, overwrite, progress, model) -> FrameScalingResult:
    started = time.perf_counter()
    if model is None:
        from svac.loading import load_model

        model = load_model(model_spec, device=device, overrides=tuple(overrides))
    longest = max(frames)
    if videos:
        study = file_videos(videos, longest, expression)
    elif data_root is not None:
        study = dataset_videos(data_root, split, num_videos, longest)
    else:
        study = synthetic_videos(num_videos, longest, seed=seed)
    variants = [Variant("astc", m) for m in clip_lens] if "astc" in modes else []
    variants += [Variant(mode) for mode in modes if mode != "astc"]
    models = {mode: variant_model(model, mode) for mode in {v.mode for v in variants}}
    total = len(variants) * (1 + repeats * len(study) * len(frames))
    runs: list[ScalingRun] = []
    with tqdm(total=total, desc="frame scaling", unit="run", disable=not progress) as bar:
        for v in variants:  # warm-up: first calls allocate buffers and pick kernels
            _measure(models[v.mode], study[0], v, longest, repeat=-1, with_scores=False)
            bar.update(1)
        for repeat in range(repeats):
            for video in study:
                for T in frames:
                    for v in variants:
                        runs.append(_measure(models[v.mode], video, v, T, repeat, with_scores=repeat == 0))
                        bar.update(1)
    rows = aggregate(runs, variants, frames, tokens_per_image=model.tokens_per_image,
                     first_k=model.config.astc.first_k)
    k_rows = measure_k_objects(models.get("astc", model), study[0].source, k_objects, num_frames=longest,
                               repeats=repeats, seed=seed) if k_objects else []
    astc_m = [v.clip_len for v in variants if v.mode == "astc"]
    profile_m = model.config.astc.clip_len if model.config.astc.clip_len in astc_m or not astc_m else astc_m[0]
    profiler_model = models.get("astc", model)
    profiles = [profile_segment(profiler_model, study[0].source, study[0].expression, num_frames=T, clip_len=profile_m)
                for T in frames]
    result = FrameScalingResult(
        rows=tuple(rows), runs=tuple(runs), k_objects=tuple(k_rows), profiles=tuple(profiles), files={},
        model_name=model.config.name, trained=bool(model.config.trained), device=str(model.device),
        threads=torch.get_num_threads(), video_names=tuple(v.name for v in study),
        video_frames=study[0].source.num_frames, repeats=repeats, wall_seconds=time.perf_counter() - started)
    files = write_report(result, out, overwrite=overwrite)
    return dataclasses.replace(result, files=files, wall_seconds=time.perf_counter() - started)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of the study (``svac bench frames`` / ``python eval/frame_scaling.py``)."""
    p.add_argument("--model", default=None, help="config YAML (path or name in configs/); default: the default model")
    p.add_argument("--out", default="frame_scaling", help="output folder (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="use the first --num-videos expressions of an rvos dataset")
    p.add_argument("--split", default="valid", help="split of --data-root (default: %(default)s)")
    p.add_argument("--videos", nargs="+", default=[], metavar="VIDEO",
                   help="video files / frame folders to use (no ground truth, no J&F)")
    p.add_argument("--expression", default=None, help="query asked on --videos")
    p.add_argument("--frames", type=cli_types.positive_int_list, default=list(DEFAULT_FRAMES), metavar="T,T,...",
                   help="values of T (default: %(default)s)")
    p.add_argument("--clip-lens", type=cli_types.positive_int_list, default=list(DEFAULT_CLIP_LENS),
                   metavar="M,M,...",
                   help="ASTC clip lengths m (default: %(default)s)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="input modes (default: all)")
    p.add_argument("--num-videos", type=cli_types.positive_int, default=1,
                   help="synthetic videos / dataset expressions (default: 1)")
    p.add_argument("--repeats", type=cli_types.positive_int, default=3, help="measured runs per setting (default: 3)")
    p.add_argument("--k-objects", type=cli_types.positive_int_list, default=list(DEFAULT_K_OBJECTS),
                   metavar="K,K,...",
                   help="object counts of the encoder-vs-K check (default: %(default)s)")
    p.add_argument("--device", type=cli_types.device, default=None, help="auto, cpu, cuda or cuda:N (default: config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--seed", type=cli_types.nonnegative_int, default=0,
                   help="seed of the synthetic videos and random prompts")
    p.add_argument("--threads", type=cli_types.positive_int, default=DEFAULT_THREADS,
                   help="torch CPU threads during the study (default: %(default)s, steady on a shared CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace the study's files in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_command(args: argparse.Namespace) -> int:
    """Run the study with parsed ``args``; prints the table and the files; returns the exit code."""
    result = run_frame_scaling(model_spec=args.model, out_dir=args.out, data_root=args.data_root, split=args.split,
                               videos=args.videos, expression=args.expression or DEFAULT_EXPRESSION,
                               frames=args.frames, clip_lens=args.clip_lens, modes=args.modes,
                               num_videos=args.num_videos, repeats=args.repeats, k_objects=args.k_objects,
                               device=args.device, overrides=tuple(args.overrides), seed=args.seed,
                               threads=args.threads, overwrite=args.overwrite, progress=not args.quiet)
    print(markdown_table(list(result.rows)))
    print(f"overhead ratio: max {result.max_overhead_ratio:.2f} (target <= {OVERHEAD_TARGET}: "
          f"{'met' if result.overhead_target_met else 'NOT met'}); token mismatches: {len(result.token_mismatches)}")
    for role, path in result.files.items():
        print(f"{role}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the study; returns the exit code (2 on bad input)."""
    from svac.errors import INPUT_ERRORS

    parser = argparse.ArgumentParser(prog="svac bench frames",
                                     description="SVAC frame-scaling study: tokens, seconds, memory, J&F vs T "
                                                 "(ASTC vs uncompressed vs first_k)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except INPUT_ERRORS as exc:
        print(f"svac: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
