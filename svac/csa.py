"""Clip-Specific Allocation of ``[SEG]`` tokens (CSA, SVAC §3.4), with a checked count contract.

Under CSA the assistant's answer holds one ``[SEG]`` per clip for each object it
segments ("It is [SEG][SEG][SEG]." for 3 clips). Clip k's token prompts SAM-2
on the frames of clip k. An answer naming several objects holds one group of
``num_clips`` tokens per object, in object order.

In single-``[SEG]`` mode (Sa2VA behaviour, kept for ablations and for Sa2VA
checkpoints) each ``[SEG]`` is one object and prompts every clip.

The count is a contract: under CSA a generated answer whose ``[SEG]`` count is
not a multiple of the number of clips is never truncated or padded silently.
The configured policy (``csa.count_policy``) either raises
:class:`~svac.errors.SegCountError`, or -- ``single_fallback`` -- warns, reads
the answer in single-``[SEG]`` mode (each token one object, prompting every
clip) and records that it did so in the result.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from svac.config import CSAConfig
from svac.errors import SegCountError
from svac.mllm.tokens import SEG_TOKEN

#: Name recorded in results when the ``single_fallback`` policy was applied.
SINGLE_FALLBACK = "single_fallback"


@dataclass(frozen=True)
class Allocation:
    """``[SEG]`` embeddings laid out per clip and object.

    Attributes:
        prompts: ``(num_clips, K, C)``: the embedding prompting clip c for object k.
        policy_applied: ``None``, or the name of the fallback policy that was applied.
    """

    prompts: torch.Tensor
    policy_applied: str | None = None

    @property
    def num_objects(self) -> int:
        """K, the number of segmented objects."""
        return self.prompts.shape[1]


def seg_tokens(num_clips: int, cfg: CSAConfig, num_objects: int = 1) -> str:
    """The ``[SEG]`` tokens an answer should hold: ``num_clips`` per object under CSA, one per object in single mode."""
    per_object = num_clips if cfg.mode == "per_clip" else 1
    return SEG_TOKEN * (per_object * num_objects)


def expected_seg_count(num_clips: int, cfg: CSAConfig, num_objects: int = 1) -> int:
    """Number of ``[SEG]`` tokens an answer segmenting ``num_objects`` objects holds."""
    return (num_clips if cfg.mode == "per_clip" else 1) * num_objects


class SegRunConstraint:
    """Generation constraint: every run of ``[SEG]`` tokens holds exactly ``run_length`` of them (SVAC §3.4).

    CSA's answer holds one ``[SEG]`` per clip for each object ("<p>the dog</p>[SEG][SEG]." for two
    clips). A model that learnt the count on videos of one length writes that count on every video
    (svac's default model writes two, even on a video of one clip). Called by ``transformers``'
    ``generate`` as a logits processor at each decoding step: while the answer ends on a run of
    ``[SEG]`` shorter than ``run_length``, only ``[SEG]`` may follow; once the run is complete,
    ``[SEG]`` may not. The model still chooses whether and where a run starts.

    Args:
        seg_token_id: id of ``[SEG]``.
        run_length: ``[SEG]`` tokens per object: the video's number of clips (>= 1).
        prompt_length: tokens of the prompt before the answer (positions before it are not looked at).

    Raises:
        ValueError: when ``run_length < 1`` or ``prompt_length < 0``.
    """

    def __init__(self, seg_token_id: int, run_length: int, prompt_length: int) -> None:
        if run_length < 1:
            raise ValueError(f"run_length must be >= 1, got {run_length}")
        if prompt_length < 0:
            raise ValueError(f"prompt_length must be >= 0, got {prompt_length}")
        self.seg_token_id = seg_token_id
        self.run_length = run_length
        self.prompt_length = prompt_length

    def trailing_run(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``long (B,)``: how many ``[SEG]`` tokens each answer of ``input_ids`` (``long (B, L)``) ends on."""
        is_seg = (input_ids[:, self.prompt_length:] == self.seg_token_id).long()
        return is_seg.flip(1).cumprod(1).sum(1)  # the [SEG]s before the first other token, counted from the end

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """``float (B, V)`` next-token ``scores`` with the constraint applied (``-inf`` where it forbids a token)."""
        run = self.trailing_run(input_ids)
        scores = scores.clone()
        forced = (run > 0) & (run < self.run_length)
        if forced.any():
            seg = scores[forced, self.seg_token_id].clone()
            scores[forced] = float("-inf")
            scores[forced, self.seg_token_id] = seg
        scores[run >= self.run_length, self.seg_token_id] = float("-inf")
        return scores


def allocate(seg_embeddings: torch.Tensor, num_clips: int, cfg: CSAConfig) -> Allocation:
    """Assign the answer's ``[SEG]`` embeddings to clips and objects (SVAC §3.4).

    Args:
        seg_embeddings: ``(n, C)`` embeddings of the answer's ``[SEG]`` tokens, in answer order.
        num_clips: number of clips of the video (>= 1).
        cfg: CSA mode and count policy.

    Returns:
        An :class:`Allocation` with ``prompts`` of shape ``(num_clips, K, C)``: under CSA
        K = n / num_clips and clip c of object k gets token ``k * num_clips + c``; in single
        mode K = n and every clip gets the same tokens. n = 0 gives K = 0 (a text-only answer).

    Raises:
        SegCountError: under CSA when n is not a multiple of ``num_clips`` and the policy is ``raise``.
        ValueError: when ``num_clips < 1`` or ``seg_embeddings`` is not 2-D.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if seg_embeddings.ndim != 2:
        raise ValueError(f"[SEG] embeddings must be (n, C), got {tuple(seg_embeddings.shape)}")
    n, dim = seg_embeddings.shape
    if cfg.mode == "single":
        return Allocation(seg_embeddings[None].expand(num_clips, n, dim))
    if n % num_clips == 0:
        k = n // num_clips
        return Allocation(seg_embeddings.reshape(k, num_clips, dim).transpose(0, 1))
    message = (f"the answer holds {n} {SEG_TOKEN} token(s) but the video has {num_clips} clip(s); "
               f"under CSA it must hold {num_clips} per object")
    if cfg.count_policy == "raise":
        raise SegCountError(message + " (csa.count_policy=raise)", found=n, expected=num_clips)
    warnings.warn(message + f"; applying csa.count_policy={SINGLE_FALLBACK}: each {SEG_TOKEN} is one object "
                  "prompting every clip", stacklevel=2)
    return Allocation(seg_embeddings[None].expand(num_clips, n, dim), policy_applied=SINGLE_FALLBACK)
