"""Frame-by-frame SAM-2 tracking prompted by ``[SEG]`` embeddings, with SAM-2's memory (SVAC §3.4).

:func:`track` (SVAC's schedule) drives ``SAM2Base.track_step`` over a stream of encoded frames:

* the first frame is SAM-2's initial conditioning frame (no memory yet);
* every later frame is conditioned on SAM-2's memory bank -- the conditioning
  frames (the first frame and the clips' anchor frames) plus the most recent
  frames -- and its mask decoder is prompted by the ``[SEG]`` embedding of the
  clip the frame belongs to;
* each frame's prediction is encoded into memory for the frames after it.

The same function serves inference (a streamed video) and training (the
sampled frames, with gradients), so training sees SAM-2 memory exactly as
inference does (the train/inference consistency Sa2VA-i calls for). With
``use_memory=False`` every frame is segmented on its own. With
``isolate_prompts=True`` the memory carries no gradient back to the prompts
that produced it (the memory encoder itself still trains), so a frame's loss
reaches only the ``[SEG]`` of its own clip (CSA's per-clip supervision, SVAC §3.4).

:func:`track_sa2va` is Sa2VA's schedule (``pipeline="sa2va"``): the MLLM's frames each decoded
on their own with ``[SEG]``, the later frames tracked by memory without a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import torch

from svac.grounding.sam2_model import FrameFeatures, LanguagePromptedSAM2

if TYPE_CHECKING:
    from svac.grounding.memory_tracker import MemoryTracker

#: Per-frame output entries SAM-2 reads back from memory; nothing else is kept.
MEMORY_KEYS = ("maskmem_features", "maskmem_pos_enc", "obj_ptr")


@dataclass
class MemoryBank:
    """SAM-2's memory of one tracking run: the ``output_dict`` that ``SAM2Base`` reads.

    Attributes:
        cond: outputs of conditioning frames (never pruned), by frame index.
        non_cond: outputs of the other frames, by frame index; pruned to the ``horizon``
            most recent frames.
        horizon: how many frames back SAM-2 can read (memories and object pointers), frames.

    Only the entries SAM-2 reads back (:data:`MEMORY_KEYS`) are kept.
    """

    horizon: int
    cond: dict[int, dict] = field(default_factory=dict)
    non_cond: dict[int, dict] = field(default_factory=dict)

    @property
    def output_dict(self) -> dict[str, dict[int, dict]]:
        """The dict SAM-2's ``track_step`` takes as ``output_dict``."""
        return {"cond_frame_outputs": self.cond, "non_cond_frame_outputs": self.non_cond}

    def add(self, frame: int, out: dict, *, conditioning: bool, reverse: bool = False) -> None:
        """Store frame ``frame``'s output and forget non-conditioning frames beyond the horizon.

        Tracking forwards (``reverse=False``) SAM-2 reads the frames before ``frame``, so the
        frames ``horizon`` or more before it are forgotten; tracking backwards, those ``horizon``
        or more after it.
        """
        entry = {k: out[k] for k in MEMORY_KEYS}
        (self.cond if conditioning else self.non_cond)[frame] = entry
        for old in [t for t in self.non_cond if (t >= frame + self.horizon if reverse else t <= frame - self.horizon)]:
            del self.non_cond[old]


@dataclass
class FrameOutput:
    """SAM-2's prediction on one frame for K objects.

    Attributes:
        frame: the frame index (frames).
        mask_logits: ``float32 (K, 1, S/4, S/4)`` low-resolution mask logits (S = SAM-2 input side).
        object_score_logits: ``float (K, 1)`` object-presence logits (> 0: the object is visible).
    """

    frame: int
    mask_logits: torch.Tensor
    object_score_logits: torch.Tensor


def memory_horizon(model: LanguagePromptedSAM2) -> int:
    """Frames back a SAM-2 model can read: its memory frames (with their stride) and object pointers."""
    stride = max(1, int(model.memory_temporal_stride_for_eval))
    return model.num_maskmem * stride + model.max_obj_ptrs_in_encoder


def _step(model: LanguagePromptedSAM2, frame: int, feats: FrameFeatures, k: int, bank: MemoryBank, num_frames: int,
          mask_inputs: torch.Tensor | None = None, tracker: "MemoryTracker | None" = None, **options) -> dict:
    """``model.track_step`` on one frame for k objects, reading and writing ``bank`` (``options``: its other arguments).

    ``mask_inputs`` (``float (k, 1, S, S)``, S = SAM-2's input side) is SAM-2's mask prompt (its video predictor's
    ``add_new_mask``); ``None`` gives none. The frame's precomputed memory self-attention, when it has one, is
    handed to SAM-2's memory attention. ``tracker`` (:class:`~svac.grounding.memory_tracker.MemoryTracker`)
    decodes a frame without any prompt in place of SAM-2's memory attention, prompt encoder and mask decoder.

    Raises:
        ValueError: when ``tracker`` is given for a frame with a prompt (points, ``[SEG]``, a mask or previous logits).
    """
    if tracker is not None:
        if mask_inputs is not None or options.get("point_inputs") is not None \
                or options.get("prev_sam_mask_logits") is not None:
            raise ValueError(f"frame {frame}: the memory tracker decodes frames without prompts only")
    # the tracker's memory attention computes its own self-attention: the handoff is SAM-2's
    with model.self_attention_handoff(feats) if tracker is None else tracker.decoding(model):
        return model.track_step(frame_idx=frame, current_vision_feats=[f.expand(-1, k, -1) for f in feats.vision_feats],
                                current_vision_pos_embeds=[p.expand(-1, k, -1) for p in feats.vision_pos],
                                feat_sizes=feats.feat_sizes, mask_inputs=mask_inputs, output_dict=bank.output_dict,
                                num_frames=num_frames, **options)


class SVACTracker:
    """SVAC's schedule as a state advanced one frame at a time (:func:`track` iterates it).

    The engine (:mod:`svac.grounding.engine`) calls :meth:`step` on each frame as soon as its
    features exist, so decoding, encoding and tracking run chunk by chunk. The memory bank is
    :attr:`bank`, reachable for a later re-propagation from any frame (refinement keeps the
    conditioning memories of the ``[SEG]``-prompted anchor frames).

    Args: as :func:`track` (without ``frames``).
    """

    def __init__(self, model: LanguagePromptedSAM2, prompt_of_frame: Callable[[int], torch.Tensor], *,
                 conditioning_frames: Iterable[int] = (), num_frames: int, use_memory: bool = True,
                 isolate_prompts: bool = False) -> None:
        self.model = model
        self.prompt_of_frame = prompt_of_frame
        self.conditioning_frames = frozenset(int(t) for t in conditioning_frames)
        self.num_frames = num_frames
        self.use_memory = use_memory
        self.isolate_prompts = isolate_prompts
        self.bank = MemoryBank(horizon=memory_horizon(model))
        self.previous: int | None = None
        self._inputs: tuple[torch.Tensor, dict] | None = None  # the last prompts and their SAM-2 point inputs

    def _point_inputs(self, prompts: torch.Tensor) -> dict:
        """SAM-2's ``point_inputs`` for ``prompts``, built again only when ``prompt_of_frame`` returns another
        tensor (a clip's frames share one: SAM-2 only reads these inputs)."""
        if self._inputs is None or self._inputs[0] is not prompts:
            self._inputs = (prompts, self.model.text_point_inputs(prompts))
        return self._inputs[1]

    def step(self, frame: int, feats: FrameFeatures) -> FrameOutput:
        """Segment the K objects on ``frame`` (its encoder features ``feats``) and write its memory.

        Raises:
            ValueError: when ``frame`` does not come after the previous frame, or ``feats`` hold
                neither 1 nor K images.
        """
        if self.previous is not None and frame <= self.previous:
            raise ValueError(f"frames must come in increasing order, got {frame} after {self.previous}")
        prompts = self.prompt_of_frame(frame)
        k = prompts.shape[0]
        if feats.batch not in (1, k):
            raise ValueError(f"frame {frame}: features for {feats.batch} objects but {k} prompts")
        is_first = self.previous is None or not self.use_memory
        out = _step(self.model, frame, feats, k, self.bank, self.num_frames, is_init_cond_frame=is_first,
                    point_inputs=self._point_inputs(prompts), run_mem_encoder=self.use_memory,
                    isolate_prompt_gradients=self.isolate_prompts)
        if self.use_memory:
            self.bank.add(frame, out, conditioning=is_first or frame in self.conditioning_frames)
        self.previous = frame
        return FrameOutput(frame=frame, mask_logits=out["pred_masks"], object_score_logits=out["object_score_logits"])


def track(model: LanguagePromptedSAM2, frames: Iterable[tuple[int, FrameFeatures]],
          prompt_of_frame: Callable[[int], torch.Tensor], *, conditioning_frames: Iterable[int] = (),
          num_frames: int, use_memory: bool = True, isolate_prompts: bool = False) -> Iterator[FrameOutput]:
    """Track K objects through a stream of encoded frames, prompting each frame with its clip's ``[SEG]``.

    Args:
        model: the SAM-2 model.
        frames: ``(frame_index, features)`` in increasing frame order; each frame's features
            come from one image-encoder pass (:meth:`LanguagePromptedSAM2.encode_frames`) and are
            shared by all K objects (batch 1), or are already laid out per object (batch K, e.g.
            several videos tracked together, see :meth:`FrameFeatures.concat`).
        prompt_of_frame: maps a frame index to its ``[SEG]`` prompts ``float (K, C)``.
        conditioning_frames: frames whose memories stay conditioning memories (the clips'
            anchor frames); the first frame always is one.
        num_frames: number of frames of the run (frames), as SAM-2's ``num_frames``.
        use_memory: ``False`` segments every frame on its own, without SAM-2 memory.
        isolate_prompts: memories carry no gradient back to the prompts (training with CSA's
            per-clip supervision; the memory encoder still trains).

    Yields:
        One :class:`FrameOutput` per input frame, in order.

    Raises:
        ValueError: when frame indices do not increase.
    """
    tracker = SVACTracker(model, prompt_of_frame, conditioning_frames=conditioning_frames, num_frames=num_frames,
                          use_memory=use_memory, isolate_prompts=isolate_prompts)
    for frame, feats in frames:
        yield tracker.step(frame, feats)


class Sa2VATracker:
    """Sa2VA's schedule as a state advanced one frame at a time (:func:`track_sa2va` iterates it).

    Args: as :func:`track_sa2va` (without ``frames``). The memory bank is :attr:`bank`.
    """

    def __init__(self, model: LanguagePromptedSAM2, prompts: torch.Tensor, *, prompted_frames: Iterable[int],
                 num_frames: int, memory_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.prompted = frozenset(int(t) for t in prompted_frames)
        self.num_frames = num_frames
        self.memory_dtype = memory_dtype
        self.k = prompts.shape[0]
        self.point_inputs = model.text_point_inputs(prompts)
        self.bank = MemoryBank(horizon=memory_horizon(model))
        self.previous: int | None = None
        self.tracking = False

    def step(self, frame: int, feats: FrameFeatures) -> FrameOutput:
        """Decode ``frame`` (prompted by ``[SEG]`` or tracked by memory) and write its memory.

        Raises:
            ValueError: when ``frame`` does not come after the previous frame, or a prompted frame
                comes after a tracked one.
        """
        if self.previous is not None and frame <= self.previous:
            raise ValueError(f"frames must come in increasing order, got {frame} after {self.previous}")
        conditioning = frame in self.prompted
        if conditioning and self.tracking:
            raise ValueError(f"prompted frame {frame} comes after a tracked frame: Sa2VA prompts the first frames")
        self.tracking = self.tracking or not conditioning
        out = _step(self.model, frame, feats, self.k, self.bank, self.num_frames, is_init_cond_frame=conditioning,
                    point_inputs=self.point_inputs if conditioning else None)
        if self.memory_dtype is not None:
            out["maskmem_features"] = out["maskmem_features"].to(self.memory_dtype)
        self.bank.add(frame, out, conditioning=conditioning)
        self.previous = frame
        return FrameOutput(frame=frame, mask_logits=out["pred_masks"], object_score_logits=out["object_score_logits"])


def track_sa2va(model: LanguagePromptedSAM2, frames: Iterable[tuple[int, FrameFeatures]], prompts: torch.Tensor, *,
                prompted_frames: Iterable[int], num_frames: int,
                memory_dtype: torch.dtype | None = None) -> Iterator[FrameOutput]:
    """Sa2VA's SAM-2 schedule (``pipeline="sa2va"``): the MLLM's frames prompted on their own, the rest tracked.

    As Sa2VA's ``language_embd_inference`` then ``propagate_in_video``: each frame of
    ``prompted_frames`` (the frames the MLLM read, 0..k-1) is an initial conditioning frame --
    decoded with the ``[SEG]`` prompt and no memory read -- whose memory becomes a
    conditioning memory; every other frame is decoded from SAM-2's memory (the conditioning
    memories, the most recent frames and the object pointers) without a prompt. Every frame's
    prediction is encoded into memory; memory features are kept in ``memory_dtype``.

    Args:
        model: the SAM-2 model (Sa2VA's: ``keep_absent_object_logits`` and multimask output).
        frames: ``(frame_index, features)`` in increasing frame order, shared by the K objects.
        prompts: ``float (K, C)`` projected ``[SEG]`` prompts, one per object.
        prompted_frames: the frames prompted by ``[SEG]``; they must come before every other frame.
        num_frames: frames of the video (SAM-2's ``num_frames``).
        memory_dtype: dtype memory features are stored in (Sa2VA: ``bfloat16``,
            :data:`svac.sa2va_pipeline.MEMORY_DTYPE`); ``None`` keeps the model's.

    Yields:
        One :class:`FrameOutput` per input frame, in order.

    Raises:
        ValueError: when frame indices do not increase, or a prompted frame comes after a tracked one.
    """
    tracker = Sa2VATracker(model, prompts, prompted_frames=prompted_frames, num_frames=num_frames,
                           memory_dtype=memory_dtype)
    for frame, feats in frames:
        yield tracker.step(frame, feats)
