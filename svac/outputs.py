"""Typed results of svac's inference: timings, segmentation results and chat responses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Timings:
    """Wall-clock time of each stage of one query, in seconds.

    Attributes:
        video_decode: decoding the frames the MLLM sees (ASTC composites included).
        mllm_vision: the MLLM's vision tower and projector.
        llm_prefill: the LLM's pass over the prompt (the whole forward in template mode).
        llm_decode: the LLM's generation steps after the prefill.
        sam2_encoder: SAM-2's image encoder over every frame (one pass per frame).
        sam2_tracking: SAM-2 memory attention, mask decoder, memory encoder and mask upsampling,
            plus decoding the frames SAM-2 reads.
        total: the whole query, end to end.
    """

    video_decode: float = 0.0
    mllm_vision: float = 0.0
    llm_prefill: float = 0.0
    llm_decode: float = 0.0
    sam2_encoder: float = 0.0
    sam2_tracking: float = 0.0
    total: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Seconds by stage."""
        return asdict(self)


@dataclass
class SegmentationResult:
    """The answer to one query on a video: text plus one binary mask per object and frame.

    Attributes:
        text: the assistant's answer (``[SEG]`` tokens kept where the masks belong).
        masks: ``bool (K, N, H, W)``: object k's mask on every video frame, at the video's
            original size (pixels); K = 0 for a text-only answer.
        scores: ``float32 (K,)`` per-object confidence in [0, 1]: SAM-2's object-presence
            probability averaged over the frames.
        frame_indices: ``int64 (T,)`` video frames the MLLM saw.
        clip_spans: per clip, ``(start, stop)`` video frames its ``[SEG]`` prompted (stop excluded).
        frame_names: one name per video frame, used to name exported files.
        video_name: name of the video (file stem or folder name).
        fps: frames per second of the video when known.
        mode: ASTC mode (``astc``, ``uncompressed``, ``first_k``).
        csa_mode: ``per_clip`` or ``single``.
        num_visual_tokens: visual tokens the LLM read.
        seg_policy_applied: name of the ``[SEG]``-count fallback applied, or ``None``.
        model_name: name of the model that answered.
        timings: seconds per stage.
    """

    text: str
    masks: np.ndarray
    scores: np.ndarray
    frame_indices: np.ndarray
    clip_spans: list[tuple[int, int]]
    frame_names: tuple[str, ...]
    video_name: str
    fps: float | None
    mode: str
    csa_mode: str
    num_visual_tokens: int
    seg_policy_applied: str | None = None
    model_name: str = "svac"
    timings: Timings = field(default_factory=Timings)

    @property
    def num_objects(self) -> int:
        """K, the number of segmented objects."""
        return int(self.masks.shape[0])

    def summary(self) -> dict:
        """A JSON-serialisable summary (everything but the masks; mask areas per frame instead)."""
        return {
            "video": self.video_name,
            "model": self.model_name,
            "text": self.text,
            "num_objects": self.num_objects,
            "num_frames": int(self.masks.shape[1]) if self.masks.ndim == 4 else len(self.frame_names),
            "frame_size": {"height": int(self.masks.shape[2]), "width": int(self.masks.shape[3])}
            if self.masks.ndim == 4 else None,
            "fps": self.fps,
            "mode": self.mode,
            "csa_mode": self.csa_mode,
            "frame_indices": [int(i) for i in self.frame_indices],
            "clip_spans": [[int(a), int(b)] for a, b in self.clip_spans],
            "num_visual_tokens": int(self.num_visual_tokens),
            "seg_policy_applied": self.seg_policy_applied,
            "objects": [
                {"id": k + 1, "score": float(self.scores[k]),
                 "area_pixels": [int(a) for a in self.masks[k].reshape(self.masks.shape[1], -1).sum(axis=1)]}
                for k in range(self.num_objects)
            ],
            "timings_seconds": self.timings.to_dict(),
        }


@dataclass
class ChatResponse:
    """One assistant turn of a chat about a video.

    Attributes:
        text: the answer.
        result: the segmentation of the objects the answer's ``[SEG]`` tokens name, or ``None``
            when the answer holds none (a text-only answer).
    """

    text: str
    result: SegmentationResult | None = None
