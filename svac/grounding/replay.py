"""Re-tracking one object through SAM-2's memory after correction clicks or boxes (issue 16 §3).

SAM 2's interactive video segmentation (SAM 2 §3-4; the ``sam2`` package's
``SAM2VideoPredictor.add_new_points_or_box`` then ``propagate_in_video`` forwards and with
``reverse=True``) has these semantics, which :func:`replay_object` reproduces on svac's
schedules:

* a correction on frame i, once the frame has been tracked, is decoded with SAM-2's memory
  (read in the direction frame i was last tracked in), its clicks encoded by SAM-2's own prompt
  encoder, the frame's previous mask logits given as SAM-2's mask prompt (clamped to
  [-32, 32]), and -- svac's part -- the frame's own ``[SEG]`` prompt kept beside the clicks
  (a frame never tracked, the first click on an object without ``[SEG]``, is decoded from the
  clicks alone without memory: SAM-2's initial conditioning frame);
  several corrections on one frame add up (a box restarts the frame's clicks, SAM-2 taking a
  box only before points);
* frame i becomes a conditioning frame (SAM 2's ``add_all_frames_to_correct_as_cond``): its
  memory is never pruned and its mask is never recomputed;
* the object is then tracked again forwards from i to the last frame and backwards from i to
  the first, every frame that is not a conditioning frame decoded from memory (and, in svac's
  schedule, its clip's ``[SEG]``); conditioning frames -- the ``[SEG]``-prompted anchor frames
  of the original run (frame 0 and the clips' anchors; Sa2VA: the MLLM's frames) and earlier
  corrections -- keep their memories and masks.

What the frames *after* a correction read is a choice, :data:`AfterCorrection`, argument
``after_correction`` of :func:`replay_object`:

* ``"seg"`` (what ``SAM2VideoPredictor`` does with svac's prompts added; the default for a model without
  a memory tracker, :func:`default_after_correction`): as above, every
  frame keeps its clip's ``[SEG]`` prompt and the ``[SEG]``-prompted anchors stay conditioning frames.
  On a model whose memory does not carry the object (every frame prompted, no stage needing memory) a
  click fixes its frame and the frames after it keep following their ``[SEG]``;
* ``"memory"`` (SAM 2's own schedule after a user's prompt; the default for a model with a memory
  tracker): the frames after the object's first correction are decoded from memory alone -- no
  ``[SEG]`` prompt (a later correction's clicks alone), by the model's memory tracker when it has one
  (:mod:`svac.grounding.memory_tracker`) -- and the correction restarts the object's track: the
  ``[SEG]`` anchors after it stop being conditioning frames (decoded again from memory), and the
  forward sweep reads the corrected frames' memories and its own, not those of the ``[SEG]``-decoded
  frames before the correction (which follow the mask being corrected; as SAM 2's
  ``clear_non_cond_mem_around_input``, extended to the conditioning anchors). The frames before the
  first correction are as with ``"seg"``; an object without ``[SEG]`` has every frame but its corrected
  ones decoded from memory alone (by the tracker too). Meant for a model trained to track from memory: one with a
  memory tracker (``configs/train/svac_default_6_tracker.yaml``); on a model without one whose
  memory never had to carry the object, the frames after a click come out nearly empty.

SAM-2's state before a correction is the whole history of the object's tracking. svac does
not keep it (the engine forgets all but the conditioning frames and the most recent ones), so
:func:`replay_object` replays it: the original run (:class:`~svac.grounding.tracking.SVACTracker`
or :class:`~svac.grounding.tracking.Sa2VATracker`, as the engine ran it) up to the last
frame it needs, then each correction with its two sweeps, keeping only the conditioning
memories and the memories near the next correction. Memory stays bounded; a result with c
corrections costs about (c + 1) passes over the video's frames.

Objects are tracked independently (as ``SAM2VideoPredictor`` tracks each object on its own),
so a correction of one object leaves the others' masks unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Literal, Sequence, get_args

import numpy as np
import torch

from svac.grounding.engine import encode_frames, logits_to_masks, sam2_precision, timer
from svac.grounding.tracking import MemoryBank, Sa2VATracker, SVACTracker, _step, memory_horizon
from svac.outputs import Timings
from svac.progress import Progress, progress_bar

if TYPE_CHECKING:
    from svac.grounding.engine import TrackingPrompts
    from svac.model import SVAC
    from svac.video.reader import VideoSource

#: SAM-2's clamp of previous mask logits fed back as a mask prompt (``SAM2VideoPredictor.add_new_points_or_box``).
PREV_LOGITS_CLAMP = 32.0
#: SAM-2's labels of a box's two corners (its prompt encoder's convention).
BOX_LABELS = (2, 3)
#: What the frames after a correction read (module docstring): their ``[SEG]`` prompts and the
#: ``[SEG]`` anchors' conditioning memories (``"seg"``), or memory alone (``"memory"``).
AfterCorrection = Literal["seg", "memory"]
AFTER_CORRECTION_CHOICES: tuple[str, ...] = get_args(AfterCorrection)


def default_after_correction(model) -> AfterCorrection:
    """What a result of ``model`` replays its corrections with unless told otherwise: ``"memory"`` for a model
    with a memory tracker (``sam2.memory_tracker``, trained to track from memory alone:
    :mod:`svac.grounding.memory_tracker`), ``"seg"`` for any other (``None`` too)."""
    return "memory" if getattr(model, "memory_tracker", None) is not None else "seg"


@dataclass(frozen=True)
class FramePrompt:
    """The correction prompt of one frame of one object, in SAM-2 input pixels.

    Attributes:
        frame: the frame index (frames).
        coords: ``float32 (P, 2)`` (x, y) in SAM-2 input pixels (box corners first).
        labels: ``int32 (P,)`` 1 positive, 0 negative, 2/3 box corners.
    """

    frame: int
    coords: np.ndarray
    labels: np.ndarray


@dataclass
class ReplayOutput:
    """One object's masks after its corrections.

    Attributes:
        masks: ``bool (N, H, W)`` the object on every frame, at the frame size (pixels).
        presence: ``float32 (N,)`` SAM-2's object-presence probability per frame.
        timings: seconds of the replay (decoding, preprocessing, encoder, tracking, upsampling, total).
    """

    masks: np.ndarray
    presence: np.ndarray
    timings: Timings = field(default_factory=Timings)


class _Replay:
    """The state of one object's replay (see the module docstring)."""

    def __init__(self, model: "SVAC", source: "VideoSource", tracking: "TrackingPrompts", row: int,
                 chunk_size: int, timings: Timings, bar=None, after_correction: AfterCorrection = "seg") -> None:
        from svac.sa2va_pipeline import MEMORY_DTYPE

        self.model = model
        self.sam = model.grounding
        self.source = source
        self.tracking = tracking
        self.n = source.num_frames
        self.chunk_size = chunk_size
        self.timings = timings
        self.bar = bar  # progress over frames stepped (or skipped: conditioning frames of a sweep)
        self.pipeline = tracking.pipeline
        self.memory_dtype = MEMORY_DTYPE if self.pipeline == "sa2va" else None
        self.horizon = memory_horizon(self.sam)
        device, dtype = model.device, next(self.sam.parameters()).dtype
        self.prompts = None  # (num_clips, 1, C) [SEG] prompts of the object, None for an object without [SEG]
        if row in tracking.tracked:
            j = tracking.tracked.index(row)
            self.prompts = tracking.prompts[:, j:j + 1].to(device=device, dtype=dtype)
        self.clip_of_frame = tracking.clip_of_frame
        self.prompted = frozenset(int(t) for t in tracking.conditioning_frames)
        # SAM-2's state, kept only where later steps read it
        self.cond: dict[int, dict] = {}  # memories of conditioning frames
        self.cond_logits: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # their (mask logits, score logits)
        self.near: dict[int, dict] = {}  # latest non-conditioning memories near the next correction
        self.near_logits: dict[int, torch.Tensor] = {}  # their mask logits
        self.reverse_of: dict[int, bool] = {}  # direction each frame was last tracked in (frames tracked so far)
        self.memory_after_correction = after_correction == "memory"
        # the model's memory tracker decodes the frames without any prompt (memory mode only): those after the
        # first correction, and every frame but the corrected ones of an object without [SEG]
        self.tracker = getattr(model, "memory_tracker", None) if self.memory_after_correction else None
        self.first_correction: int | None = None  # the earliest corrected frame (frames)
        self.corrected: set[int] = set()  # the frames corrected so far

    # ------------------------------------------------------------------ schedule

    def seg_prompt(self, frame: int) -> torch.Tensor | None:
        """``(1, C)`` the ``[SEG]`` prompt the schedule gives ``frame``, or ``None`` (tracked by memory alone)."""
        if self.prompts is None or self.memory_after_correction and self.after_first_correction(frame):
            return None
        if self.pipeline == "sa2va":
            return self.prompts[0] if frame in self.prompted else None
        return self.prompts[int(self.clip_of_frame[frame])]

    def after_first_correction(self, frame: int) -> bool:
        """Whether ``frame`` comes after the object's earliest correction so far."""
        return self.first_correction is not None and frame > self.first_correction

    def tracking_inputs(self, frame: int) -> dict | None:
        prompt = self.seg_prompt(frame)
        return None if prompt is None else self.sam.text_point_inputs(prompt)

    def correction_inputs(self, prompt: FramePrompt) -> dict:
        device = self.model.device
        coords = torch.as_tensor(prompt.coords, dtype=torch.float32, device=device)[None]
        labels = torch.as_tensor(prompt.labels, dtype=torch.int32, device=device)[None]
        return self.sam.click_point_inputs(coords, labels, self.seg_prompt(prompt.frame))

    # ------------------------------------------------------------------ frames

    def features(self, frames: Sequence[int]) -> Iterator[tuple[list[int], list]]:
        """``(frame indices, features)`` chunk by chunk, in the order of ``frames`` (decoded and encoded once each)."""
        for a in range(0, len(frames), self.chunk_size):
            part = list(frames[a:a + self.chunk_size])
            order = sorted(part)
            with timer(self.model.device) as elapsed:
                decoded = self.source.read_sorted(order)
            self.timings.frame_decode += elapsed()
            feats = encode_frames(self.model, decoded, pipeline=self.pipeline, timings=self.timings)
            by_frame = dict(zip(order, feats))
            yield part, [by_frame[t] for t in part]

    def advance(self, frames: int) -> None:
        if self.bar is not None and frames:
            self.bar.update(frames)

    def keep_memory(self, out: dict) -> dict:
        if self.memory_dtype is not None:
            out["maskmem_features"] = out["maskmem_features"].to(self.memory_dtype)
        return out

    def window(self, frame: int | None) -> range:
        """The frames whose memories a correction at ``frame`` and its sweeps read from the state before it."""
        if frame is None:
            return range(0)
        return range(max(0, frame - self.horizon), min(self.n, frame + self.horizon + 1))

    # ------------------------------------------------------------------ the original run

    def original_run(self, until: int, keep: range) -> None:
        """Run the object's original schedule (as the engine did) on frames ``0 .. until``, keeping what is needed."""
        if self.prompts is None:
            return
        n = self.n
        if self.pipeline == "sa2va":
            tracker = Sa2VATracker(self.sam, self.prompts[0], prompted_frames=self.tracking.conditioning_frames,
                                   num_frames=n, memory_dtype=self.memory_dtype)
        else:
            tracker = SVACTracker(self.sam, self.seg_prompt, conditioning_frames=self.tracking.conditioning_frames,
                                  num_frames=n)
        for start, decoded in self.source.iter_chunks(self.chunk_size):  # the engine's chunks: the same features
            if start > until:
                break
            feats = encode_frames(self.model, decoded, pipeline=self.pipeline, timings=self.timings)
            with timer(self.model.device) as elapsed:
                for t, f in enumerate(feats, start=start):
                    if t > until:
                        break
                    self.advance(1)
                    out = tracker.step(t, f)
                    self.reverse_of[t] = False
                    if t in tracker.bank.cond:
                        self.cond[t] = tracker.bank.cond[t]
                        self.cond_logits[t] = (out.mask_logits, out.object_score_logits)
                    elif t in keep:
                        self.near[t] = tracker.bank.non_cond[t]
                        self.near_logits[t] = out.mask_logits
            self.timings.sam2_tracking += elapsed()

    # ------------------------------------------------------------------ corrections

    def correct(self, prompt: FramePrompt) -> None:
        """Decode the correction at ``prompt.frame`` from the current state; the frame becomes a conditioning frame."""
        i = prompt.frame
        tracked = i in self.reverse_of
        prev = None
        if tracked:
            prev = self.cond_logits[i][0] if i in self.cond else self.near_logits[i]
            prev = prev.clamp(-PREV_LOGITS_CLAMP, PREV_LOGITS_CLAMP)
        bank = MemoryBank(horizon=self.horizon, cond=self.cond,
                          non_cond={t: e for t, e in self.near.items() if t != i})
        (part, feats), = self.features([i])
        with timer(self.model.device) as elapsed:
            out = _step(self.sam, i, feats[0], 1, bank, self.n, is_init_cond_frame=not tracked,
                        point_inputs=self.correction_inputs(prompt), track_in_reverse=self.reverse_of.get(i, False),
                        prev_sam_mask_logits=prev)
            self.keep_memory(out)
            bank.add(i, out, conditioning=True)  # writes self.cond[i]
        self.timings.sam2_tracking += elapsed()
        self.advance(1)
        self.cond_logits[i] = (out["pred_masks"], out["object_score_logits"])
        self.near.pop(i, None)
        self.near_logits.pop(i, None)
        self.corrected.add(i)
        if self.first_correction is None or i < self.first_correction:
            self.first_correction = i
        if self.memory_after_correction:  # the [SEG] anchors after the correction become ordinary frames
            for t in [t for t in self.cond if self.after_first_correction(t) and t not in self.corrected]:
                del self.cond[t]
                del self.cond_logits[t]

    def sweep(self, frames: Sequence[int], *, reverse: bool, bank: MemoryBank, keep: Iterable[int],
              collect: "_Collector | None") -> dict[int, dict]:
        """Track ``frames`` in order, conditioning frames skipped (their outputs stand), as ``propagate_in_video``.

        Returns the new memories of the frames in ``keep``; their mask logits go to ``self.near_logits``.
        """
        keep = set(keep)
        kept: dict[int, dict] = {}
        for t in frames:  # SAM-2 marks every frame of the sweep as tracked in this direction, conditioning ones too
            self.reverse_of[t] = reverse
        todo = [t for t in frames if t not in self.cond]
        self.advance(len(frames) - len(todo))
        for part, feats in self.features(todo):
            logits, scores = [], []
            with timer(self.model.device) as elapsed:
                for t, f in zip(part, feats):
                    inputs = self.tracking_inputs(t)
                    tracker = self.tracker if inputs is None else None  # a frame without any prompt
                    out = _step(self.sam, t, f, 1, bank, self.n, is_init_cond_frame=False,
                                point_inputs=inputs, track_in_reverse=reverse, tracker=tracker)
                    self.keep_memory(out)
                    bank.add(t, out, conditioning=False, reverse=reverse)
                    if t in keep:
                        kept[t] = bank.non_cond[t]
                        self.near_logits[t] = out["pred_masks"]
                    logits.append(out["pred_masks"])
                    scores.append(out["object_score_logits"])
            self.timings.sam2_tracking += elapsed()
            self.advance(len(part))
            if collect is not None:
                collect.add(part, logits, scores)
        return kept

    def propagate(self, frame: int, keep: range, collect: "_Collector | None") -> None:
        """Track again forwards from ``frame`` to the last frame, then backwards to the first."""
        forward_bank = MemoryBank(horizon=self.horizon, cond=self.cond,
                                  non_cond={t: e for t, e in self.near.items() if t < frame})
        if self.memory_after_correction and self.first_correction is not None:
            # the correction restarts the object's track: the frames after it read the corrected frames'
            # memories and their own, not the [SEG]-decoded frames before it
            forward_bank = MemoryBank(horizon=self.horizon, non_cond={},
                                      cond={t: e for t, e in self.cond.items() if t >= self.first_correction})
        after = range(frame + 1, min(self.n, frame + self.horizon + 1))  # read by the backward sweep
        self.near_logits = {}
        kept = self.sweep(range(frame + 1, self.n), reverse=False, bank=forward_bank, keep=[*keep, *after],
                          collect=collect)
        backward_bank = MemoryBank(horizon=self.horizon, cond=self.cond,
                                   non_cond={t: kept[t] for t in after if t in kept})
        if frame > 0:  # SAM-2 does not track backwards from frame 0
            kept.update(self.sweep(range(frame - 1, -1, -1), reverse=True, bank=backward_bank, keep=keep,
                                   collect=collect))
        self.near = {t: e for t, e in kept.items() if t in keep}
        self.near_logits = {t: v for t, v in self.near_logits.items() if t in keep}


class _Collector:
    """The final masks and presence of the object, filled chunk by chunk."""

    def __init__(self, model: "SVAC", pipeline: str, num_frames: int, frame_size: tuple[int, int],
                 timings: Timings) -> None:
        self.model = model
        self.pipeline = pipeline
        self.frame_size = frame_size
        self.timings = timings
        self.masks = np.zeros((num_frames, *frame_size), dtype=bool)
        self.presence = np.zeros(num_frames, dtype=np.float32)

    def add(self, frames: Sequence[int], logits: Sequence[torch.Tensor], scores: Sequence[torch.Tensor]) -> None:
        if not frames:
            return
        with timer(self.model.device) as elapsed:
            stacked = torch.cat(list(logits), dim=1)  # (1, m, h', w')
            masks = logits_to_masks(self.model, stacked, pipeline=self.pipeline, frame_size=self.frame_size)[0]
            idx = np.asarray(frames)
            self.masks[idx] = masks
            self.presence[idx] = torch.cat(list(scores), dim=1).float().sigmoid().cpu().numpy()[0]
        self.timings.mask_upsample += elapsed()


def check_after_correction(after_correction: str, where: str = "") -> None:
    """Raise ``ValueError`` naming the choices when ``after_correction`` is not an :data:`AfterCorrection`
    (the message starts with ``where``, e.g. the file it was read from, when given)."""
    if after_correction not in AFTER_CORRECTION_CHOICES:
        raise ValueError(f"{where + ': ' if where else ''}after_correction must be one of "
                         f"{', '.join(AFTER_CORRECTION_CHOICES)}, got {after_correction!r}")


def replay_object(model: "SVAC", source: "VideoSource", tracking: "TrackingPrompts", row: int,
                  prompts: Sequence[FramePrompt], *, chunk_size: int | None = None,
                  progress: Progress = False, after_correction: AfterCorrection = "seg") -> ReplayOutput:
    """Track result row ``row`` again with its correction prompts, in order (see the module docstring).

    Args:
        model: the model that made the result (its SAM-2).
        source: the video.
        tracking: the result's ``[SEG]`` prompts and schedule; a row it does not track (an answer
            without ``[SEG]``) is tracked from the corrections alone, the first one decoded
            without memory (SAM-2's initial conditioning frame).
        row: the object's row (0-based).
        prompts: the object's corrections, each the whole prompt of its frame at that point
            (clicks accumulated), in the order they were given; at least one.
        chunk_size: frames decoded and encoded together (default ``config.sam2.encoder_batch_size``).
        progress: a progress bar over the frames the replay steps through (stage ``refine``):
            bool or callback (:mod:`svac.progress`).
        after_correction: what the frames after a correction read (:data:`AfterCorrection`, module
            docstring): ``"seg"`` their ``[SEG]`` prompts and anchors, ``"memory"`` memory alone.

    Returns:
        :class:`ReplayOutput`: ``masks bool (N, H, W)``, ``presence float32 (N,)``, timings.

    Raises:
        ValueError: when ``prompts`` is empty, a frame is outside the video, or ``after_correction`` is
            not one of :data:`AFTER_CORRECTION_CHOICES`.
    """
    import time

    check_after_correction(after_correction)
    if not prompts:
        raise ValueError("replay_object needs at least one correction")
    n = source.num_frames
    bad = [p.frame for p in prompts if not 0 <= p.frame < n]
    if bad:
        raise ValueError(f"correction frame {bad[0]} outside the video's frames 0..{n - 1}")
    started = time.perf_counter()
    timings = Timings()
    frames = [p.frame for p in prompts]
    tracked = row in tracking.tracked
    cond_frames = set(tracking.conditioning_frames) | {0} if tracked else set()
    until = max([frames[0], *cond_frames])
    bar = progress_bar(progress, total=(until + 1 if tracked else 0) + n * len(prompts), desc="refine", unit="frame")
    state = _Replay(model, source, tracking, row, chunk_size or model.config.sam2.encoder_batch_size, timings, bar,
                    after_correction=after_correction)
    collect = _Collector(model, tracking.pipeline, n, (source.height, source.width), timings)
    with bar, torch.inference_mode(), sam2_precision(model):
        state.original_run(until=until, keep=state.window(frames[0]))
        for c, prompt in enumerate(prompts):
            last = c == len(prompts) - 1
            state.correct(prompt)
            state.propagate(prompt.frame, state.window(None if last else frames[c + 1]), collect if last else None)
        cond = sorted(state.cond_logits)
        collect.add(cond, [state.cond_logits[t][0] for t in cond], [state.cond_logits[t][1] for t in cond])
    timings.total = time.perf_counter() - started
    return ReplayOutput(masks=collect.masks, presence=collect.presence, timings=timings)
