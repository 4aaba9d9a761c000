"""The training objective of SVAC as one module, so accelerate / DeepSpeed wrap a single ``forward``.

For a batch of videos (each with K expressions in one conversation):

1. the MLLM reads the conversation teacher-forced; cross-entropy on the answer tokens;
2. the last-layer hidden states at the ``[SEG]`` inputs are projected (``text_hidden_fcs``) and
   allocated to clips and objects by CSA (:func:`svac.csa.allocate`);
3. SAM-2 encodes the sampled frames once and tracks the K objects through them with its memory,
   as at inference, each frame prompted by its own clip's ``[SEG]``; memories carry no gradient back
   to the prompts, so a frame's mask loss reaches only its own clip's ``[SEG]`` (SVAC §3.4);
4. mask BCE + Dice and SAM-2 presence losses against the ground truth;
5. optionally (``loss.prompt_separation``) the mean cosine similarity of the prompts of expressions
   naming different objects of one video (see :class:`svac.training.config.LossConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.csa import allocate
from svac.grounding.sam2_model import FrameFeatures
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
    separation: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Detached values for logging."""
        return {k: float(getattr(self, k).detach())
                for k in ("loss", "ce", "bce", "dice", "presence", "separation")}


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
        prompts = []
        for b, example in enumerate(batch.examples):
            is_seg = (batch.input_ids[b] == model.seg_token_id) & (batch.labels[b] != IGNORE_INDEX)
            prompts.append(allocate(model.seg_prompts(hidden[b, is_seg]), example.num_clips, model.config.csa).prompts)
        logits, presence, targets = [], [], []
        groups: dict[tuple, list[int]] = {}
        for b, example in enumerate(batch.examples):  # videos with the same clip layout are tracked together
            key = (tuple(example.clip_of_position.tolist()), example.anchor_positions)
            groups.setdefault(key, []).append(b)
        for members in groups.values():
            lg, pr = self._track_group([batch.examples[b] for b in members], [prompts[b] for b in members])
            logits.append(lg)
            presence.append(pr)
            targets += [batch.examples[b].masks.flatten(0, 1) for b in members]
        terms = mask_losses(torch.cat(logits), torch.cat(presence), torch.cat(targets), self.loss_cfg)
        w = self.loss_cfg
        ce = ce if ce is not None else torch.zeros((), device=terms.bce.device)
        separation = prompt_separation(prompts, [e.object_ids for e in batch.examples])
        total = (w.ce * ce + w.bce * terms.bce + w.dice * terms.dice + w.presence * terms.presence
                 + w.prompt_separation * separation)
        return ObjectiveOutput(loss=total, ce=ce, bce=terms.bce, dice=terms.dice, presence=terms.presence,
                               separation=separation)

    def _track_group(self, examples: list, prompts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Track the objects of videos sharing one clip layout, all in one SAM-2 batch.

        Every frame of every video is encoded in one image-encoder call; at frame t, video i's
        features are repeated for its K_i objects. Returns mask logits ``(sum K_i * T, h, w)`` and
        presence logits ``(sum K_i * T,)``, ordered video by video, object by object, frame by frame.
        """
        sam = self.model.grounding
        first = examples[0]
        num_frames = first.sam_frames.shape[0]
        frames = torch.cat([e.sam_frames for e in examples]).to(next(sam.parameters()).dtype)
        feats = sam.encode_frames(frames)
        counts = [e.num_objects for e in examples]
        per_frame = [FrameFeatures.concat([feats[i * num_frames + t] for i in range(len(examples))], counts)
                     for t in range(num_frames)]
        clip_of = first.clip_of_position
        outs = list(track(sam, enumerate(per_frame), lambda t: torch.cat([p[clip_of[t]] for p in prompts]),
                          conditioning_frames=first.anchor_positions, num_frames=num_frames,
                          use_memory=self.sam2_memory, isolate_prompts=True))
        logits = torch.stack([o.mask_logits[:, 0] for o in outs], dim=1)  # (sum K, T, h, w)
        presence = torch.stack([o.object_score_logits[:, 0] for o in outs], dim=1)  # (sum K, T)
        return logits.flatten(0, 1), presence.flatten()


def prompt_separation(prompts: list[torch.Tensor], object_ids: list[tuple[tuple[int, ...], ...]]) -> torch.Tensor:
    """Mean cosine similarity between ``[SEG]`` prompts of expressions naming different objects of one video.

    Args:
        prompts: per video, ``(num_clips, K, C)`` allocated prompts.
        object_ids: per video, per expression, the object ids it names.

    Returns:
        A scalar in [-1, 1]; 0 when no video has two expressions naming different objects.
    """
    sims = []
    for p, ids in zip(prompts, object_ids):
        k = p.shape[1]
        if k < 2 or len(ids) != k:
            continue
        different = torch.tensor([[set(ids[i]) != set(ids[j]) for j in range(k)] for i in range(k)],
                                 device=p.device)
        if not different.any():
            continue
        unit = torch.nn.functional.normalize(p.float(), dim=-1)
        cos = unit @ unit.transpose(1, 2)  # (num_clips, K, K)
        sims.append(cos[:, different].mean())
    if not sims:
        return prompts[0].new_zeros(()) if prompts else torch.zeros(())
    return torch.stack(sims).mean()
