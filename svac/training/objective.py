"""The training objective of SVAC as one module, so accelerate / DeepSpeed wrap a single ``forward``.

For a batch of videos (each with K expressions, in K single-turn conversations or one multi-turn one):

1. the MLLM reads the conversations teacher-forced; cross-entropy on the answer tokens;
2. the last-layer hidden states at the ``[SEG]`` inputs are projected (``text_hidden_fcs``, plus the
   ``<p>...</p>`` span skip path when the model has it, :mod:`svac.span_prompt`) and
   allocated to clips and objects by CSA (:func:`svac.csa.allocate`);
3. SAM-2 encodes the sampled frames once and tracks the K objects through them with its memory,
   as at inference, each frame prompted by its own clip's ``[SEG]``; memories carry no gradient back
   to the prompts, so a frame's mask loss reaches only its own clip's ``[SEG]`` (SVAC §3.4);
4. mask BCE + Dice and SAM-2 presence losses against the ground truth;
5. optionally (``loss.prompt_separation``) the mean cosine similarity of the prompts of expressions
   naming different objects of one video, and (``loss.prompt_contrast``) a contrastive loss between
   each clip's prompt and SAM-2's image features inside its target, and (``loss.seg_attention``) each
   ``[SEG]`` token's attention pulled onto its target's visual tokens (:mod:`svac.training.seg_attention`)
   (see :class:`svac.training.config.LossConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.csa import allocate
from svac.errors import ConfigError
from svac.grounding.sam2_model import FrameFeatures
from svac.grounding.tracking import track
from svac.mllm.internvl import token_grid_side
from svac.span_prompt import SpanStates, phrase_bounds, span_states
from svac.training.config import LossConfig
from svac.training.data import IGNORE_INDEX, TrainingBatch
from svac.training.losses import MaskLossTerms, StepLosses, mask_losses, prompt_region_contrast
from svac.training.seg_attention import example_seg_attention_terms, image_cell_coverage


@dataclass
class ObjectiveOutput(StepLosses):
    """Losses of one step (scalar tensors; ``loss`` is the weighted total that is back-propagated)."""

    loss: torch.Tensor
    ce: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor
    separation: torch.Tensor
    contrast: torch.Tensor
    seg_attention: torch.Tensor


class SVACObjective(nn.Module):
    """Wraps an :class:`~svac.model.SVAC` and computes its training loss on a :class:`TrainingBatch`.

    Args:
        model: the SVAC model being trained.
        loss: loss weights and options.
        sam2_memory: track with SAM-2 memory across the sampled frames (as at inference);
            ``False`` segments every frame on its own.
        span_dropout: probability that a conversation row's ``[SEG]`` prompts leave out the span skip
            term in a training step (``TrainConfig.span_dropout``); 0 never, and never in eval mode.
        seed: seed of the span-dropout draws.

    Raises:
        ConfigError: when ``loss.seg_attention_layers`` names a layer the LLM does not have, or
            ``span_dropout`` is set for a model without the span skip path.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, *, sam2_memory: bool = True, span_dropout: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.loss_cfg = loss
        self.sam2_memory = sam2_memory
        if span_dropout and model.span_prompt is None:
            raise ConfigError("span_dropout drops the span skip term of the [SEG] prompts; this model has none "
                              "(seg_prompt.span_skip: false)")
        self.span_dropout = span_dropout
        self.generator = torch.Generator().manual_seed(seed)
        layers = model.mllm.config.text_config.num_hidden_layers
        bad = [i for i in loss.seg_attention_layers if not -layers <= i < layers]
        if loss.seg_attention and bad:
            raise ConfigError(f"loss.seg_attention_layers {bad} outside the LLM's {layers} layers")

    def forward(self, batch: TrainingBatch) -> ObjectiveOutput:
        """Weighted loss of ``batch``.

        Raises:
            svac.errors.SegCountError: when an example's ``[SEG]`` count does not fit its clips
                (the answer templates always fit; this guards the data pipeline).
        """
        model = self.model
        w = self.loss_cfg
        if w.seg_attention:
            ce, hidden, attentions = model.mllm_attention_forward(
                batch.input_ids, batch.attention_mask, batch.pixel_values, batch.labels, image_index=batch.image_index)
            seg_attention = self._seg_attention(batch, [attentions[i] for i in w.seg_attention_layers])
        else:
            ce, hidden = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values, batch.labels,
                                            image_index=batch.image_index)
            seg_attention = hidden.new_zeros((), dtype=torch.float32)
        prompts = [allocate(self._seg_prompts(batch, hidden, b), example.num_clips, model.config.csa).prompts
                   for b, example in enumerate(batch.examples)]
        logits, presence, targets = [], [], []
        regions: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        masks_trained = bool(w.bce or w.dice or w.presence)  # all three off: no tracking at all (cheaper)
        for members in layout_groups(batch.examples):
            examples = [batch.examples[b] for b in members]
            if masks_trained:
                lg, pr, feats = self._track_group(examples, [prompts[b] for b in members])
                logits.append(lg)
                presence.append(pr)
                targets += [e.masks.flatten(0, 1) for e in examples]
            elif w.prompt_contrast:  # only the contrast needs SAM-2's features without tracking
                feats = self._encode_group(examples)
            if w.prompt_contrast:
                for i, b in enumerate(members):
                    regions[b] = target_regions(feats[i], batch.examples[b])
        if masks_trained:
            terms = mask_losses(torch.cat(logits), torch.cat(presence), torch.cat(targets), w)
        else:
            zero = hidden.new_zeros((), dtype=torch.float32)
            terms = MaskLossTerms(bce=zero, dice=zero, presence=zero)
        ce = ce if ce is not None else torch.zeros((), device=terms.bce.device)
        separation = prompt_separation(prompts, [e.object_ids for e in batch.examples])
        contrast = terms.bce.new_zeros(())
        if w.prompt_contrast:
            contrast = self._contrast(prompts, regions, batch.examples)
        total = (w.ce * ce + w.bce * terms.bce + w.dice * terms.dice + w.presence * terms.presence
                 + w.prompt_separation * separation + w.prompt_contrast * contrast + w.seg_attention * seg_attention)
        return ObjectiveOutput(loss=total, ce=ce, bce=terms.bce, dice=terms.dice, presence=terms.presence,
                               separation=separation, contrast=contrast, seg_attention=seg_attention)

    def _seg_prompts(self, batch: TrainingBatch, hidden: torch.Tensor, b: int) -> torch.Tensor:
        """Projected prompts ``(n, C)`` of the answer ``[SEG]`` tokens of example ``b``'s rows, in row order."""
        model = self.model
        states, spans = [], []
        for r in batch.rows_of(b):
            positions = self._answer_seg_positions(batch, r)
            states.append(hidden[r, positions])
            if model.span_prompt is not None:
                span = span_states(model, batch.input_ids[r], positions, hidden[r])
                if self.training and self.span_dropout and self._drop_span():
                    span = SpanStates(span.states, torch.zeros_like(span.present))
                spans.append(span)
        return model.seg_prompts(torch.cat(states), SpanStates.cat(spans) if spans else None)

    def _drop_span(self) -> bool:
        """One draw of the span dropout: whether the next row's prompts leave out the span term."""
        return bool(torch.rand((), generator=self.generator) < self.span_dropout)

    def _answer_seg_positions(self, batch: TrainingBatch, r: int) -> torch.Tensor:
        """``long`` positions in row ``r`` of its answers' ``[SEG]`` tokens (not of any typed in a question)."""
        ids = batch.input_ids[r]
        return ((ids == self.model.seg_token_id) & (batch.labels[r] != IGNORE_INDEX)).nonzero()[:, 0]

    def _seg_attention(self, batch: TrainingBatch, attentions: list[torch.Tensor]) -> torch.Tensor:
        """Mean :mod:`svac.training.seg_attention` loss over the batch's supervised ``[SEG]`` tokens and layers."""
        model = self.model
        grid = token_grid_side(model.config.mllm)
        astc = model.config.astc.mode == "astc"
        image_token = model.mllm.config.image_token_id
        terms = []
        for b, example in enumerate(batch.examples):
            rows = batch.rows_of(b)
            coverage = torch.stack([image_cell_coverage(m, example.clip_of_position, astc, grid)
                                    for m in example.masks])
            if astc:
                image_clips = [c for c in range(example.num_clips) for _ in range(2)]
            else:
                image_clips = example.clip_of_position.tolist()
            terms += example_seg_attention_terms(
                attentions, rows, [self._attention_queries(batch, r) for r in rows],
                [(batch.input_ids[r] == image_token).nonzero()[:, 0] for r in rows], coverage, image_clips,
                model.config.csa.mode == "per_clip")
        if not terms:
            return attentions[0].new_zeros((), dtype=torch.float32)
        return torch.stack(terms).mean()

    def _attention_queries(self, batch: TrainingBatch, r: int) -> torch.Tensor:
        """Positions in row ``r`` whose attention :mod:`svac.training.seg_attention` supervises, one per answer
        ``[SEG]`` (``loss.seg_attention_query``).

        Raises:
            ValueError: under ``phrase_end`` when a ``[SEG]`` has no ``<p>...</p>`` phrase before it.
        """
        positions = self._answer_seg_positions(batch, r)
        if self.loss_cfg.seg_attention_query == "seg":
            return positions
        bounds = phrase_bounds(self.model, batch.input_ids[r], positions)
        if any(b is None for b in bounds):
            raise ValueError("loss.seg_attention_query=phrase_end needs a <p>...</p> phrase before every [SEG]")
        return torch.tensor([stop for _, stop in bounds], dtype=torch.long, device=positions.device)

    def _contrast(self, prompts: list[torch.Tensor], regions: dict[int, tuple[torch.Tensor, torch.Tensor]],
                  examples: list) -> torch.Tensor:
        """:func:`prompt_region_contrast` over every (video, clip, expression) whose target is visible in the clip."""
        rows_p, rows_r, identity, names = [], [], [], {}
        for b, example in enumerate(examples):
            feats, visible = regions[b]  # (num_clips, K, C), (num_clips, K)
            for k in range(example.num_objects):
                ids = example.object_ids[k] if len(example.object_ids) == example.num_objects else (("expr", k),)
                label = names.setdefault((b, frozenset(ids)), len(names))
                keep = visible[:, k]
                rows_p.append(prompts[b][keep, k])
                rows_r.append(feats[keep, k])
                identity += [label] * int(keep.sum())
        p, r = torch.cat(rows_p), torch.cat(rows_r)
        return prompt_region_contrast(p, r, torch.tensor(identity, dtype=torch.long, device=p.device),
                                      self.loss_cfg.prompt_contrast_temperature)

    def _track_group(self, examples: list, prompts: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor, list[list[FrameFeatures]]]:
        """Track the objects of videos sharing one clip layout, all in one SAM-2 batch.

        Every frame of every video is encoded in one image-encoder call; at frame t, video i's
        features are repeated for its K_i objects. Returns mask logits ``(sum K_i * T, h, w)`` and
        presence logits ``(sum K_i * T,)``, ordered video by video, object by object, frame by frame,
        and each video's per-frame image-encoder features (before memory).
        """
        sam = self.model.grounding
        first = examples[0]
        num_frames = first.sam_frames.shape[0]
        videos = self._encode_group(examples)
        counts = [e.num_objects for e in examples]
        per_frame = [FrameFeatures.concat([video[t] for video in videos], counts) for t in range(num_frames)]
        clip_of = first.clip_of_position
        outs = list(track(sam, enumerate(per_frame), lambda t: torch.cat([p[clip_of[t]] for p in prompts]),
                          conditioning_frames=first.anchor_positions, num_frames=num_frames,
                          use_memory=self.sam2_memory, isolate_prompts=True))
        logits = torch.stack([o.mask_logits[:, 0] for o in outs], dim=1)  # (sum K, T, h, w)
        presence = torch.stack([o.object_score_logits[:, 0] for o in outs], dim=1)  # (sum K, T)
        return logits.flatten(0, 1), presence.flatten(), videos

    def _encode_group(self, examples: list) -> list[list[FrameFeatures]]:
        """SAM-2 image-encoder features of every sampled frame of videos with one clip layout, per video
        (one encoder call for all of them)."""
        sam = self.model.grounding
        num_frames = examples[0].sam_frames.shape[0]
        frames = torch.cat([e.sam_frames for e in examples]).to(next(sam.parameters()).dtype)
        feats = sam.encode_frames(frames)
        return [feats[i * num_frames:(i + 1) * num_frames] for i in range(len(examples))]


def layout_groups(examples: list) -> list[list[int]]:
    """Indices of the videos that share one clip layout (clip of every sampled frame, anchor positions), group
    by group in order of first appearance: such videos are tracked together in one SAM-2 batch."""
    groups: dict[tuple, list[int]] = {}
    for b, example in enumerate(examples):
        groups.setdefault((tuple(example.clip_of_position.tolist()), example.anchor_positions), []).append(b)
    return list(groups.values())


def target_regions(frames: list[FrameFeatures], example) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM-2 image features averaged inside each expression's target, per clip.

    The lowest-resolution level of the image encoder (the mask decoder's image embedding before
    memory) is averaged with weights = the fraction of each feature cell the target covers, over
    all sampled frames of the clip.

    Args:
        frames: the video's T sampled frames' features (:meth:`LanguagePromptedSAM2.encode_frames`).
        example: the :class:`~svac.training.data.TrainingExample` (masks ``(K, T, S, S)``, clips).

    Returns:
        ``float (num_clips, K, C)`` region features and ``bool (num_clips, K)``: whether the target is
        visible on at least one frame of the clip (elsewhere the features are zeros).
    """
    h, w = frames[0].feat_sizes[-1]
    feats = torch.stack([f.vision_feats[-1][:, 0] for f in frames])  # (T, h*w, C)
    masks = example.masks.to(device=feats.device, dtype=feats.dtype)
    cover = torch.nn.functional.adaptive_avg_pool2d(masks, (h, w)).flatten(2)  # (K, T, h*w)
    clip_of = example.clip_of_position.to(feats.device)
    out = feats.new_zeros(example.num_clips, example.num_objects, feats.shape[-1])
    visible = torch.zeros(example.num_clips, example.num_objects, dtype=torch.bool, device=feats.device)
    for c in range(example.num_clips):
        in_clip = clip_of == c
        weight = cover[:, in_clip].flatten(1)  # (K, n_c * h*w)
        total = weight.sum(1)
        visible[c] = total > 0
        out[c] = (weight @ feats[in_clip].flatten(0, 1)) / total.clamp_min(1e-6)[:, None]
    return out, visible


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
