"""Where the time of one ``segment`` call goes, beyond the SAM-2 encoder + LLM prefill floor.

:func:`profile_segment` runs :func:`svac.inference.segment` once with forward hooks on the
SAM-2 sub-modules (memory attention, prompt encoder + mask decoder, memory encoder) and a
timing wrapper around the video, and splits the end-to-end time into:

* the **floor** -- SAM-2 image encoder and LLM prefill (``Timings.sam2_encoder`` / ``llm_prefill``);
* MLLM-side frame decoding + ASTC composites, and the MLLM vision tower + projector;
* SAM-2-side frame decoding (every frame is read once for the encoder);
* SAM-2 memory attention, prompt encoder + mask decoder, memory encoder (once per frame and object);
* the rest of the SAM-2 stage: SAM-2 preprocessing, mask upsampling to the frame size,
  thresholding, memory bookkeeping and Python overhead;
* everything else (prompt building, CSA, assembling the result).

Hooks synchronise CUDA on GPUs, so the split is exact there too (at the price of a few
synchronisations per frame).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from svac.video.reader import VideoSource, open_video

if TYPE_CHECKING:
    from svac.model import SVAC

#: (stage name, attribute of the SAM-2 model) of the hooked sub-modules.
SAM2_HOOKED = (
    ("SAM-2 memory attention", ("memory_attention",)),
    ("SAM-2 prompt encoder + mask decoder", ("sam_prompt_encoder", "sam_mask_decoder")),
    ("SAM-2 memory encoder", ("memory_encoder",)),
)


@dataclass(frozen=True)
class StageTime:
    """Seconds spent in one stage and its share of the end-to-end time.

    Attributes:
        name: the stage.
        seconds: wall time (seconds).
        share: ``seconds / total`` (unitless).
        in_floor: whether the stage is part of the floor (SAM-2 encoder + LLM prefill).
    """

    name: str
    seconds: float
    share: float
    in_floor: bool = False


@dataclass(frozen=True)
class PipelineProfile:
    """The split of one ``segment`` call.

    Attributes:
        total_seconds: end-to-end time (seconds).
        floor_seconds: SAM-2 encoder + LLM prefill (seconds).
        overhead_ratio: ``total_seconds / floor_seconds``.
        stages: the stages, floor first, then by decreasing time; they sum to ``total_seconds``.
        num_frames: T of the call; clip_len: m; video_frames: frames SAM-2 processed.
    """

    total_seconds: float
    floor_seconds: float
    overhead_ratio: float
    stages: tuple[StageTime, ...]
    num_frames: int
    clip_len: int
    video_frames: int


class _TimedVideo(VideoSource):
    """Wraps a source and sums the seconds spent decoding, split by phase (``mllm`` then ``sam2``)."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        self.name, self.num_frames = source.name, source.num_frames
        self.height, self.width = source.height, source.width
        self.fps, self.frame_names = source.fps, source.frame_names
        self.phase = "mllm"
        self.seconds = {"mllm": 0.0, "sam2": 0.0}

    def _read(self, indices: list[int]) -> np.ndarray:
        start = time.perf_counter()
        frames = self.source.read(indices)
        self.seconds[self.phase] += time.perf_counter() - start
        return frames


class _ModuleTimer:
    """Sums the wall time of a set of modules' forward calls (CUDA-synchronised on GPUs)."""

    def __init__(self, modules: list[torch.nn.Module], device: torch.device) -> None:
        self.seconds = 0.0
        self._device = device
        self._start = 0.0
        self._handles = []
        for m in modules:
            self._handles.append(m.register_forward_pre_hook(self._pre))
            self._handles.append(m.register_forward_hook(self._post))

    def _sync(self) -> None:
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)

    def _pre(self, module, args) -> None:
        self._sync()
        self._start = time.perf_counter()

    def _post(self, module, args, output) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def profile_segment(model: "SVAC", video, expression: str, *, num_frames: int | None = None,
                    clip_len: int | None = None) -> PipelineProfile:
    """Run ``model.segment`` once and split its time into stages (see the module docstring).

    Args:
        model: the SVAC model.
        video: anything :func:`svac.video.reader.open_video` accepts.
        expression: the query.
        num_frames: T (default: the config's).
        clip_len: m (default: the config's).

    Raises:
        svac.errors.VideoReadError: when the video cannot be read.
    """
    source = _TimedVideo(open_video(video))
    sam = model.grounding
    timers = {name: _ModuleTimer([getattr(sam, a) for a in attrs], model.device) for name, attrs in SAM2_HOOKED}

    def to_sam_phase(module, args, output) -> None:
        source.phase = "sam2"

    phase_hook = model.mllm.register_forward_hook(to_sam_phase)
    try:
        result = model.segment(source, expression, num_frames=num_frames, clip_len=clip_len)
    finally:
        phase_hook.remove()
        for t in timers.values():
            t.remove()
    t = result.timings
    hooked = {name: timer.seconds for name, timer in timers.items()}
    # sam2_tracking holds the hooked modules plus the tracking bookkeeping; preprocessing and upsampling are apart
    sam_rest = t.sam2_tracking - sum(hooked.values()) + t.sam2_preprocess + t.mask_upsample
    parts = {
        "SAM-2 image encoder": t.sam2_encoder,
        "LLM prefill": t.llm_prefill,
        "MLLM frame decoding + ASTC composites": t.video_decode,
        "MLLM vision tower + projector": t.mllm_vision,
        "LLM decoding steps": t.llm_decode,
        "SAM-2 frame decoding": source.seconds["sam2"],
        **hooked,
        "SAM-2 preprocessing, mask upsampling, thresholding, bookkeeping": sam_rest,
    }
    parts["other (prompt, CSA, result assembly)"] = t.total - sum(parts.values())
    floor = t.sam2_encoder + t.llm_prefill
    floor_names = ("SAM-2 image encoder", "LLM prefill")
    ordered = [*floor_names, *sorted((n for n in parts if n not in floor_names), key=lambda n: -parts[n])]
    stages = tuple(StageTime(name=n, seconds=float(parts[n]), share=float(parts[n] / t.total) if t.total else 0.0,
                             in_floor=n in floor_names) for n in ordered)
    return PipelineProfile(total_seconds=float(t.total), floor_seconds=float(floor),
                           overhead_ratio=float(t.total / floor) if floor > 0 else float("inf"), stages=stages,
                           num_frames=len(result.frame_indices),
                           clip_len=int(clip_len if clip_len is not None else model.config.astc.clip_len),
                           video_frames=source.num_frames)
