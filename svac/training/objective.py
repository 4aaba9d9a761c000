"""The training objective of SVAC as one module, so accelerate / DeepSpeed wrap a single ``forward``.

For a batch of videos (each with K expressions in one conversation):

1. the MLLM reads the conversation teacher-forced; cross-entropy on the answer tokens;
2. the last-layer hidden states at the ``[SEG]`` inputs are projected (``text_hidden_fcs``) and
   allocated to clips and objects by CSA (:func:`svac.csa.allocate`);
3. SAM-2 encodes the sampled frames once and tracks the K objects through them with its memory,
   as at inference, each frame prompted by its own clip's ``[SEG]``; memories carry no gradient back
   to the prompts, so a frame's mask loss reaches only its own clip's ``[SEG]`` (SVAC §3.4);
4. mask BCE + Dice and SAM-2 presence losses against the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.csa import allocate
from svac.grounding.tracking import track
from svac.training.config import LossConfig
from svac.training.data import IGNORE_INDEX, TrainingBatch
from svac.training.losses import mask_losses


@dataclass
class ObjectiveOutput:
    """Losses of one step (scalar tensors; ``loss`` is the weighted total that is back-propagated)."""

    loss: torch.Tensor
    ce: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Detached values for logging."""
        return {k: float(getattr(self, k).detach()) for k in ("loss", "ce", "bce", "dice", "presence")}


class SVACObjective(nn.Module):
    """Wraps an :class:`~svac.model.SVAC` and computes its training loss on a :class:`TrainingBatch`.

    Args:
        model: the SVAC model being trained.
        loss: loss weights and options.
        sam2_memory: track with SAM-2 memory across the sampled frames (as at inference);
            ``False`` segments every frame on its own.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, *, sam2_memory: bool = True) -> None:
        super().__init__()
        self.model = model
        self.loss_cfg = loss
        self.sam2_memory = sam2_memory

    def forward(self, batch: TrainingBatch) -> ObjectiveOutput:
        """Weighted loss of ``batch``.

        Raises:
            svac.errors.SegCountError: when an example's ``[SEG]`` count does not fit its clips
                (the answer templates always fit; this guards the data pipeline).
        """
        model = self.model
        ce, hidden = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values, batch.labels)
        logits, presence, targets = [], [], []
        sam = model.grounding
        for b, example in enumerate(batch.examples):
            is_seg = (batch.input_ids[b] == model.seg_token_id) & (batch.labels[b] != IGNORE_INDEX)
            prompts = allocate(model.seg_prompts(hidden[b, is_seg]), example.num_clips, model.config.csa).prompts
            feats = sam.encode_frames(example.sam_frames.to(next(sam.parameters()).dtype))
            clip_of = example.clip_of_position
            outs = list(track(sam, enumerate(feats), lambda t: prompts[clip_of[t]],
                              conditioning_frames=example.anchor_positions, num_frames=len(feats),
                              use_memory=self.sam2_memory, isolate_prompts=True))
            logits.append(torch.stack([o.mask_logits[:, 0] for o in outs], dim=1).flatten(0, 1))  # (K*T, h, w)
            presence.append(torch.stack([o.object_score_logits[:, 0] for o in outs], dim=1).flatten())
            targets.append(example.masks.flatten(0, 1))
        terms = mask_losses(torch.cat(logits), torch.cat(presence), torch.cat(targets), self.loss_cfg)
        w = self.loss_cfg
        ce = ce if ce is not None else torch.zeros((), device=terms.bce.device)
        total = w.ce * ce + w.bce * terms.bce + w.dice * terms.dice + w.presence * terms.presence
        return ObjectiveOutput(loss=total, ce=ce, bce=terms.bce, dice=terms.dice, presence=terms.presence)
