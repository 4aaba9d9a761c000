"""Tracking a corrected object from SAM-2's memory (``objective: tracking``; issue 16 §3).

SAM 2 trains its memory on video sequences where a few frames are prompted (conditioning frames)
and the others are decoded from memory alone (Ravi et al. 2024, §4 and App. D); Sa2VA's inference
does the same with its ``[SEG]`` prompt on the first frames. svac's referring schedule prompts
*every* frame with its clip's ``[SEG]`` (SVAC §3.4), so a SAM-2 trained only on it never has to find
the object from memory: its mask decoder follows the frame's prompt and barely reads memory. Then a
correction click (:mod:`svac.grounding.replay`) fixes its own frame and nothing after it.

:class:`TrackingObjective` trains SAM-2's own interactive schedule after a correction -- prompted
conditioning frames, the other frames tracked from memory without a prompt -- which refinement
(:mod:`svac.grounding.replay`) would run if the model could track (today it keeps each frame's
``[SEG]`` prompt). For each group of videos (one clip layout) and each expression k:

1. **referring** -- the whole sampled video tracked with SVAC's schedule (every frame prompted by
   its clip's ``[SEG]`` prompt P, the anchors conditioning frames, SAM-2's memory), supervised by
   P's own object: what stage 3 trains, so grounding is kept. With probability
   ``tracking.wrong_prompt`` P is another expression's prompt naming other objects (the masks are
   wrong on purpose, as in :class:`~svac.training.frame_objectives.CorrectionObjective`);
2. **correction** -- on a sampled frame c (drawn per group), P plus one click drawn from pass 1's
   error against expression k's object (:func:`~svac.training.frame_objectives.correction_clicks`)
   and pass 1's logits as SAM-2's mask prompt, decoded with the memory pass 1 had at c; frame c
   becomes a conditioning frame (SAM 2's ``add_all_frames_to_correct_as_cond``);
3. **tracking** -- the frames after c tracked forwards from that memory with no prompt at all
   (the anchors after c keep pass 1's conditioning memories and are not decoded again), supervised
   by expression k's object: SAM-2 must find the object from memory, the correction's memory
   against the anchors' ``[SEG]`` memories.

The ``[SEG]`` prompts are the model's own (LLM + span skip path, :class:`SVACObjective`), so the
decoder sees the prompts of inference; which parts train is the config's ``trainable`` (SAM-2's mask
decoder, prompt encoder and memory in ``configs/train/tracking_from_memory.yaml``).

Measured on the default model (``docs/training.md``, "Tracking from memory"): after 150 updates the
frames decoded without a prompt are non-empty, but they cover *an* object, not the corrected one
(J with the other object as high as with the target), so the stage is not part of the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.csa import allocate
from svac.grounding.sam2_model import FrameFeatures
from svac.grounding.tracking import MemoryBank, SVACTracker, _step
from svac.training.config import LossConfig, TrackingConfig
from svac.training.data import TrainingBatch
from svac.training.frame_objectives import FrameLosses, _weighted, correction_clicks, prompt_pairing
from svac.training.losses import StepLosses
from svac.training.objective import SVACObjective, layout_groups


@dataclass
class TrackingLosses(StepLosses):
    """Losses of one step of :class:`TrackingObjective` (scalar tensors; ``loss`` is back-propagated).

    ``bce``, ``dice``, ``presence`` are summed over the passes; ``referring``, ``correction`` and
    ``tracking`` are each pass's weighted mask loss.
    """

    loss: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor
    referring: torch.Tensor
    correction: torch.Tensor
    tracking: torch.Tensor


class TrackingObjective(SVACObjective):
    """Referring, a correction and tracking from memory without prompts, in one objective (``objective: tracking``).

    See the module docstring for the three passes.

    Args:
        model: the SVAC model being trained.
        loss: mask-loss weights (``bce``, ``dice``, ``presence``; ``ce`` weighs the answer's
            cross-entropy as in :class:`SVACObjective`).
        tracking: :class:`svac.training.config.TrackingConfig`.
        seed: seed of the prompt pairing, correction frame and click draws.

    Raises (from :meth:`forward`):
        ValueError: when a video has fewer than 3 sampled frames (``data.frames: video`` is needed).
    """

    def __init__(self, model: nn.Module, loss: LossConfig, tracking: TrackingConfig, *, seed: int = 0) -> None:
        super().__init__(model, loss, sam2_memory=True)
        self.cfg = tracking
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, batch: TrainingBatch) -> TrackingLosses:
        """Weighted losses of the three passes on ``batch``."""
        model, w = self.model, self.loss_cfg
        ce, hidden = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values, batch.labels,
                                        image_index=batch.image_index)
        passes: list[tuple[FrameLosses, float]] = []
        named = {"referring": [], "correction": [], "tracking": []}
        for members in layout_groups(batch.examples):
            examples = [batch.examples[b] for b in members]
            prompts = []
            own, target = [], []
            for b, e in zip(members, examples):
                pair = torch.tensor(prompt_pairing(e, self.cfg.wrong_prompt, self.generator))
                allocated = allocate(self._seg_prompts(batch, hidden, b), e.num_clips, model.config.csa).prompts
                prompts.append(allocated[:, pair])
                own.append(e.masks[pair])
                target.append(e.masks)
            for name, part in self._group(examples, prompts, torch.cat(own), torch.cat(target)):
                weight = getattr(self.cfg, name)
                passes.append((part, weight))
                named[name].append(part.loss)
        total = sum(weight * p.loss for p, weight in passes)
        ce = ce if ce is not None else total.new_zeros(())
        zero = total.new_zeros(())
        return TrackingLosses(
            loss=total + w.ce * ce, bce=sum(p.bce for p, _ in passes), dice=sum(p.dice for p, _ in passes),
            presence=sum(p.presence for p, _ in passes),
            **{k: torch.stack(v).mean() if v else zero for k, v in named.items()})

    def _group(self, examples: list, prompts: list[torch.Tensor], own: torch.Tensor, target: torch.Tensor
               ) -> list[tuple[str, FrameLosses]]:
        """The three passes on videos sharing one clip layout, all objects in one SAM-2 batch.

        Args:
            examples: the videos.
            prompts: per video, ``(num_clips, K_i, C)`` the prompts each expression is given.
            own: ``bool (sum K_i, T, S, S)`` the objects those prompts name.
            target: ``bool (sum K_i, T, S, S)`` the expressions' own objects.
        """
        from svac.grounding.replay import PREV_LOGITS_CLAMP

        sam = self.model.grounding
        first = examples[0]
        t_count = first.sam_frames.shape[0]
        if t_count < 3:
            raise ValueError(f"objective tracking needs at least 3 sampled frames per video (data.frames: video), "
                             f"got {t_count}")
        videos = self._encode_group(examples)
        counts = [e.num_objects for e in examples]
        feats = [FrameFeatures.concat([video[t] for video in videos], counts) for t in range(t_count)]
        clip_of = first.clip_of_position
        anchors = frozenset(first.anchor_positions) | {0}
        c = 1 + int(torch.randint(t_count - 2, (1,), generator=self.generator))  # the corrected frame, 1..T-2

        # 1. referring: SVAC's schedule, as the engine runs it; the memory before c is kept for pass 2
        tracker = SVACTracker(sam, lambda t: torch.cat([p[clip_of[t]] for p in prompts]),
                              conditioning_frames=first.anchor_positions, num_frames=t_count, isolate_prompts=True)
        outs, before_c = [], {}
        for t in range(t_count):
            if t == c:
                before_c = dict(tracker.bank.non_cond)
            outs.append(tracker.step(t, feats[t]))
        logits = torch.stack([o.mask_logits[:, 0] for o in outs], dim=1)  # (K, T, h, w)
        scores = torch.stack([o.object_score_logits[:, 0] for o in outs], dim=1)  # (K, T)
        referring = _weighted({"pred_masks": logits.flatten(0, 1)[:, None],
                               "object_score_logits": scores.flatten()[:, None]}, own.flatten(0, 1), self.loss_cfg)

        # 2. the correction at c: P + a click from pass 1's error + pass 1's logits as the mask prompt
        size = target.shape[-2:]
        prev = outs[c].mask_logits.detach()
        predicted = torch.nn.functional.interpolate(prev.float(), size=size, mode="bilinear",
                                                    align_corners=False)[:, 0] > 0
        clicks = correction_clicks(predicted, target[:, c], self.generator)
        seg_c = torch.cat([p[clip_of[c]] for p in prompts])
        inputs = sam.click_point_inputs(clicks["point_coords"], clicks["point_labels"], seg_c)
        cond = {t: e for t, e in tracker.bank.cond.items() if t != c}
        bank = MemoryBank(horizon=tracker.bank.horizon, cond=cond, non_cond=before_c)
        out_c = _step(sam, c, feats[c], seg_c.shape[0], bank, t_count, is_init_cond_frame=False,
                      point_inputs=inputs, prev_sam_mask_logits=prev.clamp(-PREV_LOGITS_CLAMP, PREV_LOGITS_CLAMP))
        bank.add(c, out_c, conditioning=True)
        correction = _weighted(out_c, target[:, c], self.loss_cfg)

        # 3. tracking: the frames after c from memory alone; anchors keep their pass-1 memories
        later_logits, later_scores, later_targets = [], [], []
        for t in range(c + 1, t_count):
            if t in anchors:
                continue
            out = _step(sam, t, feats[t], seg_c.shape[0], bank, t_count, is_init_cond_frame=False, point_inputs=None)
            bank.add(t, out, conditioning=False)
            later_logits.append(out["pred_masks"])
            later_scores.append(out["object_score_logits"])
            later_targets.append(target[:, t])
        result = [("referring", referring), ("correction", correction)]
        if later_logits:
            result.append(("tracking", _weighted({"pred_masks": torch.cat(later_logits),
                                                  "object_score_logits": torch.cat(later_scores)},
                                                 torch.cat(later_targets), self.loss_cfg)))
        return result
