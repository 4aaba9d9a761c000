"""The streaming grounding engine: each frame decoded once, encoded once, the K objects tracked in one SAM-2 batch.

:func:`stream_masks` reads a video in order, in chunks of ``config.sam2.encoder_batch_size``
frames, and for each chunk:

1. decodes the frames (once: the writers draw the overlay on the same frames);
2. resizes them to SAM-2's input in ``uint8`` and normalises them
   (:func:`~svac.grounding.sam2_model.preprocess_frames`), into float storage reused from chunk to
   chunk (:class:`~svac.grounding.sam2_model.InputWorkspace`);
3. runs SAM-2's image encoder once on the chunk, whatever the number of objects K -- the K
   objects (several queries of one ``segment`` call, or the E expressions of a video in
   ``svac eval``) share each frame's features;
4. tracks the K objects frame by frame in one SAM-2 batch (memory attention, mask decoder
   prompted by each object's ``[SEG]``, memory encoder; :mod:`svac.grounding.tracking`), SAM-2's
   memory keeping only the conditioning frames and the most recent ones;
5. upsamples the chunk's low-resolution logits to the frame size in one call (only where a mask can be
   on, :mod:`svac.grounding.mask_upsampling`), thresholds them,
   and hands the ``bool (K, n, H, W)`` masks out as a :class:`~svac.outputs.MaskChunk` before
   the next chunk is decoded.

Nothing grows with the number of frames but the per-frame areas a caller may keep, so peak
memory does not depend on the video's length. The tracking inputs are a
:class:`TrackingPrompts`, which results keep (``SegmentationResult.tracking``) so that a later
correction can track again from any frame with the ``[SEG]`` prompts as conditioning.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Literal

import numpy as np
import torch

from svac.outputs import MaskChunk, Timings
from svac.progress import Progress, progress_bar
from svac.video.reader import VideoSource

if TYPE_CHECKING:
    from svac.grounding.sam2_model import InputWorkspace
    from svac.model import SVAC


@dataclass
class TrackingPrompts:
    """What SAM-2 needs to track the objects of a result through its video (SVAC §3.4; Sa2VA §3.2).

    Attributes:
        prompts: ``float (num_clips, K_t, C)`` projected ``[SEG]`` prompts: row c prompts the frames of
            clip c for each of the K_t tracked objects (Sa2VA: one clip).
        clip_of_frame: ``int64 (N,)`` the clip of each frame.
        conditioning_frames: frames whose memories stay conditioning memories: the clips' anchor
            frames (SVAC; frame 0 always is one), or the MLLM's frames, each prompted on its own (Sa2VA).
        pipeline: ``"svac"`` (every frame prompted by its clip's ``[SEG]``, memory from frame 0) or
            ``"sa2va"`` (the conditioning frames prompted, the others tracked by memory alone).
        num_objects: K, the objects of the result (tracked or not).
        tracked: the rows of the result (0-based object indices) that ``prompts`` tracks, in order;
            the other objects (queries whose answer held no ``[SEG]``) stay empty.
    """

    prompts: torch.Tensor
    clip_of_frame: np.ndarray
    conditioning_frames: tuple[int, ...]
    pipeline: Literal["svac", "sa2va"]
    num_objects: int
    tracked: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.prompts.ndim != 3 or self.prompts.shape[1] != len(self.tracked):
            raise ValueError(f"prompts must be (num_clips, {len(self.tracked)}, C), got {tuple(self.prompts.shape)}")
        if any(not 0 <= r < self.num_objects for r in self.tracked):
            raise ValueError(f"tracked rows {self.tracked} outside 0..{self.num_objects - 1}")


def stream_masks(model: "SVAC", source: VideoSource, tracking: TrackingPrompts, *, chunk_size: int | None = None,
                 progress: Progress = False, timings: Timings | None = None) -> Iterator[MaskChunk]:
    """Segment the objects of ``tracking`` on every frame of ``source``, chunk by chunk (see the module docstring).

    Args:
        model: the SVAC model (its SAM-2, config and device).
        source: the video; read once, in order.
        tracking: the ``[SEG]`` prompts and schedule.
        chunk_size: frames per chunk (default ``config.sam2.encoder_batch_size``).
        progress: a progress bar over frames (stage ``SAM-2``): bool or callback (:mod:`svac.progress`).
        timings: stage seconds are added to it (``frame_decode``, ``sam2_preprocess``,
            ``sam2_encoder``, ``sam2_tracking``, ``mask_upsample``); the time the caller spends
            between chunks is not counted.

    Yields:
        :class:`~svac.outputs.MaskChunk`: ``masks bool (K, n, H, W)``, ``presence float32 (K, n)``
        and the decoded ``frames uint8 (n, H, W, 3)``, covering every frame once, in order.

    Raises:
        ValueError: when ``tracking.clip_of_frame`` does not have one entry per frame.
        svac.errors.VideoReadError: when a frame cannot be decoded.
    """
    from svac.grounding.sam2_model import InputWorkspace
    from svac.grounding.tracking import Sa2VATracker, SVACTracker
    from svac.sa2va_pipeline import MEMORY_DTYPE

    n, h, w = source.num_frames, source.height, source.width
    if len(tracking.clip_of_frame) != n:
        raise ValueError(f"clip_of_frame has {len(tracking.clip_of_frame)} entries for a {n}-frame video")
    timings = timings if timings is not None else Timings()
    size = chunk_size or model.config.sam2.encoder_batch_size
    sam = model.grounding
    device, dtype = model.device, next(sam.parameters()).dtype
    sa2va = tracking.pipeline == "sa2va"
    rows = list(tracking.tracked)
    num_obj = tracking.num_objects
    tracker = None
    if rows:
        prompts = tracking.prompts.to(device=device, dtype=dtype)
        if sa2va:  # the MLLM's frames prompted on their own, the others tracked by memory
            tracker = Sa2VATracker(sam, prompts[0], prompted_frames=tracking.conditioning_frames, num_frames=n,
                                   memory_dtype=MEMORY_DTYPE)
        else:
            # one tensor per clip, the same object for every frame of the clip: the tracker builds SAM-2's
            # prompt inputs once per clip (SVACTracker.step)
            clip_prompts, clip_of_frame = list(prompts.unbind(0)), tracking.clip_of_frame
            tracker = SVACTracker(sam, lambda t: clip_prompts[clip_of_frame[t]],
                                  conditioning_frames=tracking.conditioning_frames, num_frames=n)
    bar = progress_bar(progress, total=n, desc="SAM-2", unit="frame")
    workspace = InputWorkspace()  # every chunk's float frames in the same storage
    chunks = source.iter_chunks(size)
    try:
        while True:
            t0 = time.perf_counter()
            item = next(chunks, None)
            timings.frame_decode += time.perf_counter() - t0
            if item is None:
                break
            start, frames = item
            m = len(frames)
            masks = np.zeros((num_obj, m, h, w), dtype=bool)
            presence = np.zeros((num_obj, m), dtype=np.float32)
            if tracker is not None:
                with torch.inference_mode(), sam2_precision(model):
                    feats = encode_frames(model, frames, pipeline=tracking.pipeline, timings=timings,
                                          workspace=workspace)
                    with timer(device) as elapsed:
                        outs = [tracker.step(start + i, f) for i, f in enumerate(feats)]
                    timings.sam2_tracking += elapsed()
                    with timer(device) as elapsed:
                        logits = torch.cat([o.mask_logits for o in outs], dim=1)  # (K_t, m, h', w')
                        tracked = logits_to_masks(model, logits, pipeline=tracking.pipeline, frame_size=(h, w))
                        scores = torch.cat([o.object_score_logits for o in outs], dim=1).float().sigmoid().cpu().numpy()
                        del logits, outs, feats
                    timings.mask_upsample += elapsed()
                if len(rows) == num_obj:
                    masks, presence = tracked, scores
                else:
                    masks[rows], presence[rows] = tracked, scores
            yield MaskChunk(start=start, masks=masks, presence=presence, frames=frames)
            bar.update(m)
    finally:
        bar.close()


def encode_frames(model: "SVAC", frames: np.ndarray, *, pipeline: Literal["svac", "sa2va"],
                  timings: Timings, workspace: "InputWorkspace | None" = None) -> list:
    """SAM-2's image encoder on a batch of decoded frames, preprocessed as the pipeline does.

    Args:
        model: the SVAC model (its SAM-2 and device).
        frames: ``uint8 (n, H, W, 3)`` RGB frames at the video's size.
        pipeline: ``svac`` (torch's bicubic resize) or ``sa2va`` (PIL's, Sa2VA's rounding of the statistics).
        timings: ``sam2_preprocess`` and ``sam2_encoder`` seconds are added to it.
        workspace: storage the float frames are preprocessed into, reused from chunk to chunk
            (:class:`~svac.grounding.sam2_model.InputWorkspace`); ``None``: new storage.

    Returns:
        One :class:`~svac.grounding.sam2_model.FrameFeatures` per frame, in order.
    """
    from svac.grounding.sam2_model import preprocess_frames
    from svac.sa2va_pipeline import SAM2_STATS_DTYPE

    sam = model.grounding
    device, dtype = model.device, next(sam.parameters()).dtype
    options = {"resample": "pil", "stats_dtype": SAM2_STATS_DTYPE} if pipeline == "sa2va" else {}
    with timer(device) as elapsed:
        images = preprocess_frames(frames, sam.image_size, device=device, dtype=dtype, workspace=workspace, **options)
    timings.sam2_preprocess += elapsed()
    with timer(device) as elapsed:
        feats = sam.encode_frames(images)
    timings.sam2_encoder += elapsed()
    return feats


def logits_to_masks(model: "SVAC", logits: torch.Tensor, *, pipeline: Literal["svac", "sa2va"],
                    frame_size: tuple[int, int]) -> np.ndarray:
    """SAM-2's low-resolution mask logits ``(K, n, h', w')`` as ``bool (K, n, H, W)`` masks at the frame size.

    ``svac``: one bilinear resize to the frame size, computed only in the windows of rows and columns
    where a mask can be on (:func:`svac.grounding.mask_upsampling.upsample_masks`); ``sa2va``: Sa2VA's
    two steps (to SAM-2's input side, then to the frame size). Thresholded at
    ``config.inference.mask_threshold``; with ``config.inference.mask_components == "strongest"`` each
    mask first keeps only its strongest region of low-resolution cells
    (:func:`svac.grounding.mask_components.keep_strongest_component`).
    """
    from svac.grounding.mask_upsampling import upsample_masks
    from svac.sa2va_pipeline import upsample_logits

    threshold = model.config.inference.mask_threshold
    if model.config.inference.mask_components == "strongest":
        from svac.grounding.mask_components import keep_strongest_component

        logits = keep_strongest_component(logits, threshold)
    if pipeline == "sa2va":  # 256 -> 1024 -> frame size
        logits = upsample_logits(logits.float(), model.grounding.image_size, frame_size)
        return (logits > threshold).cpu().numpy()
    return upsample_masks(logits, frame_size, threshold)


def sam2_precision(model: "SVAC"):
    """The context SAM-2 runs in: autocast to the model's ``dtype`` when it is not float32.

    SAM-2's weights stay float32 (:attr:`svac.model.SVAC.float32_modules`) and lower precision
    comes from autocast, as in the ``sam2`` package's own video predictor. It is entered around
    each chunk's compute only, never across a ``yield``: the caller's code between chunks runs
    outside it.
    """
    if model.dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=model.device.type, dtype=model.dtype)


@contextmanager
def timer(device: torch.device):
    """Measure a block's wall time in seconds (synchronising CUDA so GPU work is counted)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sync()
    start = time.perf_counter()
    box = {}
    yield lambda: box["elapsed"]
    sync()
    box["elapsed"] = time.perf_counter() - start
