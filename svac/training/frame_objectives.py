"""Single-frame objectives that train SAM-2 without the MLLM: oracle clicks, and the span skip path alone.

Both segment every sampled frame of a batch on its own (SAM-2's initial conditioning frame, no
memory): all frames go through the image encoder in one call and through the mask decoder in one
batch of (frame, object) pairs, supervised by the recipe's mask losses (``bce``, ``dice``, ``presence``).

* :class:`ClickObjective` (``objective: clicks``) -- promptable SAM-2 training as SAM 2 trains its
  decoder (Ravi et al. 2024, §4 and App. D): each object is prompted by one positive click at a pixel
  drawn uniformly inside its mask. Measured on this project's CPU (``docs/training.md``): from
  scratch, SAM-2 first predicts the union of all objects whatever the click; at a constant learning
  rate of 1e-3 (16 frames per update) it follows the click after about 230 updates and reaches
  held-out mIoU ~0.75 by 500 (0.70 at 300 with its image encoder frozen). Half of the objects
  prompted by boxes instead, with a cosine schedule, it had not started after 600 updates.
* :class:`SpanGroundingObjective` (``objective: span_grounding``) -- SAM-2 prompted by the span skip
  path of the ``[SEG]`` prompt alone (:mod:`svac.span_prompt`, ``seg_prompt.span_layer: input``):
  the projection of the expression's averaged input embeddings. That term depends only on the
  answer's tokens, so the LLM and the ``[SEG]`` branch need not run: the image-level grounding stage
  of the default model at a third of the cost of the full objective. Only the span path, the
  embedding table and SAM-2 receive gradient.
* :class:`CorrectionObjective` (``objective: corrections``) -- referring and correction clicks
  together, as refinement (:mod:`svac.grounding.replay`) uses them: a ``[SEG]``-prompted frame
  (sometimes with another expression's prompt, wrong on purpose), a click drawn from its error
  with the ``[SEG]`` prompt and the previous mask, and a later frame tracked from the corrected
  frame's memory. The stage that teaches the default model clicks without losing grounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.grounding.sam2_model import FrameFeatures
from svac.training.config import LossConfig
from svac.training.data import TrainingBatch
from svac.training.losses import StepLosses, mask_losses

#: SAM-2 point labels: padding (no point), negative and positive click (SAM 2's codes).
NO_POINT, NEGATIVE_CLICK, POSITIVE_CLICK = -1, 0, 1


def oracle_clicks(masks: torch.Tensor, generator: torch.Generator) -> dict:
    """One click per object: a pixel drawn uniformly from its mask, or a padding point when it is empty.

    Args:
        masks: ``bool (K, S, S)`` ground truth of K objects on one frame at SAM-2's input size (pixels).
        generator: the random source (CPU).

    Returns:
        SAM-2 ``point_inputs``: ``point_coords`` ``float (K, 1, 2)`` as (x, y) pixel centres and
        ``point_labels`` ``int32 (K, 1)`` (1 = positive click, -1 = padding).
    """
    k = masks.shape[0]
    coords = torch.zeros(k, 1, 2)
    labels = torch.full((k, 1), NO_POINT, dtype=torch.int32)
    for j in range(k):
        ys, xs = masks[j].nonzero(as_tuple=True)
        if xs.numel():
            i = int(torch.randint(xs.numel(), (1,), generator=generator))
            coords[j, 0, 0], coords[j, 0, 1] = float(xs[i]) + 0.5, float(ys[i]) + 0.5
            labels[j, 0] = POSITIVE_CLICK
    return {"point_coords": coords.to(masks.device), "point_labels": labels.to(masks.device)}


def oracle_prompts(masks: torch.Tensor, generator: torch.Generator) -> dict:
    """One positive click per object plus a padding point: SAM-2's prompt for :class:`ClickObjective`.

    The padding point (label -1, as SAM-2 pads point prompts) makes two points per object, so SAM-2
    predicts its single mask (with one point it would switch to its three-mask output, whose
    choice relies on an IoU head this stage does not train).

    Args:
        masks: ``bool (K, S, S)`` ground truth of K objects on one frame at SAM-2's input size (pixels).
        generator: the random source (CPU).

    Returns:
        SAM-2 ``point_inputs``: ``point_coords`` ``float (K, 2, 2)`` (x, y) pixels and ``point_labels``
        ``int32 (K, 2)``: (1, -1) for an object on the frame, (-1, -1) for an absent one.
    """
    clicks = oracle_clicks(masks, generator)
    k = masks.shape[0]
    coords = torch.zeros(k, 2, 2, device=masks.device)
    labels = torch.full((k, 2), NO_POINT, dtype=torch.int32, device=masks.device)
    coords[:, :1] = clicks["point_coords"]
    labels[:, :1] = clicks["point_labels"]
    return {"point_coords": coords, "point_labels": labels}


def box_prompts(masks: torch.Tensor, noise: float, generator: torch.Generator) -> dict:
    """Each object's bounding box, its corners jittered, as SAM-2 point inputs (SAM 2's box prompts in training).

    SAM 2 trains its decoder on boxes drawn around the ground truth with noise (Ravi et al. 2024,
    App. D, as SAM does): here each corner coordinate moves by a uniform amount within ``noise``
    times the box's side along that axis, then is clipped to the frame, and the corners are kept in
    order (top-left <= bottom-right).

    Args:
        masks: ``bool (K, S, S)`` ground truth of K objects on one frame at SAM-2's input size (pixels).
        noise: largest corner shift as a fraction of the box's width (x) or height (y), in [0, 1].
        generator: the random source (CPU).

    Returns:
        SAM-2 ``point_inputs``: ``point_coords`` ``float (K, 2, 2)`` the (x, y) corners in pixels (a box
        of pixels [x0, x1) x [y0, y1) has corners (x0, y0) and (x1, y1), as refinement passes a user's box)
        and ``point_labels`` ``int32 (K, 2)``: (2, 3) for an object on the frame, (-1, -1) padding for
        an absent one.
    """
    from torchvision.ops import masks_to_boxes

    from svac.grounding.replay import BOX_LABELS

    k, size = masks.shape[0], masks.shape[-1]
    coords = torch.zeros(k, 2, 2)
    labels = torch.full((k, 2), NO_POINT, dtype=torch.int32)
    cpu = masks.cpu()
    present = cpu.flatten(1).any(1)
    if bool(present.any()):
        box = masks_to_boxes(cpu[present]).float().view(-1, 2, 2)  # (n, corner, xy), pixel indices
        box[:, 1] += 1  # bottom-right pixel -> its far edges
        side = box[:, 1] - box[:, 0]  # (n, 2): width, height
        shift = (torch.rand(box.shape[0], 2, 2, generator=generator) * 2 - 1) * noise * side[:, None]
        box = (box + shift).clamp(0, size)
        coords[present] = torch.stack([box.min(1).values, box.max(1).values], 1)
        labels[present] = torch.tensor(BOX_LABELS, dtype=torch.int32)
    return {"point_coords": coords.to(masks.device), "point_labels": labels.to(masks.device)}


@dataclass
class FrameLosses(StepLosses):
    """Losses of one step of a single-frame objective (scalar tensors; ``loss`` is back-propagated)."""

    loss: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor


def segment_every_frame(sam, examples: list, point_inputs) -> tuple[dict, torch.Tensor]:
    """SAM-2's prediction on every sampled frame of ``examples``, each frame on its own (no memory).

    Args:
        sam: the :class:`~svac.grounding.sam2_model.LanguagePromptedSAM2`.
        examples: :class:`~svac.training.data.TrainingExample` s.
        point_inputs: ``targets (N, S, S) -> point_inputs`` for the N (frame, object) pairs, ordered
            example by example, frame by frame, object by object.

    Returns:
        SAM-2's ``track_step`` output for the N pairs (``pred_masks`` ``(N, 1, S/4, S/4)``,
        ``object_score_logits`` ``(N, 1)`` ...) and the targets ``bool (N, S, S)``.
    """
    dtype = next(sam.parameters()).dtype
    feats = sam.encode_frames(torch.cat([e.sam_frames for e in examples]).to(dtype))
    parts, repeats, masks = [], [], []
    i = 0
    for e in examples:
        for t in range(e.sam_frames.shape[0]):
            parts.append(feats[i])
            repeats.append(e.num_objects)
            masks.append(e.masks[:, t])
            i += 1
    targets = torch.cat(masks)
    joined = FrameFeatures.concat(parts, repeats)
    out = sam.track_step(frame_idx=0, is_init_cond_frame=True, current_vision_feats=joined.vision_feats,
                         current_vision_pos_embeds=joined.vision_pos, feat_sizes=joined.feat_sizes,
                         point_inputs=point_inputs(targets), mask_inputs=None,
                         output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                         num_frames=1, run_mem_encoder=False)
    return out, targets


def _weighted(out: dict, targets: torch.Tensor, w: LossConfig) -> "FrameLosses":
    terms = mask_losses(out["pred_masks"][:, 0], out["object_score_logits"][:, 0], targets, w)
    total = w.bce * terms.bce + w.dice * terms.dice + w.presence * terms.presence
    return FrameLosses(loss=total, bce=terms.bce, dice=terms.dice, presence=terms.presence)


class ClickObjective(nn.Module):
    """SAM-2 of an SVAC model trained on every sampled frame of a batch under oracle clicks
    (:func:`segment_every_frame`).

    Args:
        model: the SVAC model (only ``model.grounding`` is used).
        loss: mask-loss weights (``bce``, ``dice``, ``presence``; the others are ignored).
        seed: seed of the click draws.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.loss_cfg = loss
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, batch: TrainingBatch) -> "FrameLosses":
        """Weighted mask loss of ``batch`` under oracle clicks."""
        out, targets = segment_every_frame(self.model.grounding, batch.examples,
                                           lambda t: oracle_prompts(t, self.generator))
        return _weighted(out, targets, self.loss_cfg)


def check_span_model(model: nn.Module, objective: str) -> None:
    """Raise :class:`svac.errors.ConfigError` unless ``model`` has a span skip path reading the input embeddings."""
    from svac.errors import ConfigError

    if model.span_prompt is None or model.config.seg_prompt.span_layer != "input":
        raise ConfigError(f"objective {objective} needs seg_prompt.span_skip=true and span_layer=input (a span "
                          "term that depends on the answer's tokens alone)")


def span_clip_prompts(model: nn.Module, batch: TrainingBatch) -> list[torch.Tensor]:
    """Per example of ``batch``, the span terms of its expressions' ``[SEG]`` prompts allocated to its clips.

    The span term (:func:`svac.span_prompt.span_states` over the input embeddings, then
    ``model.span_prompt``) depends on the answer's tokens alone: the LLM is not run.

    Returns:
        Per example, ``float (num_clips, K, C)`` (CSA's allocation, :func:`svac.csa.allocate`).
    """
    from svac.csa import allocate
    from svac.span_prompt import SpanStates, span_states
    from svac.training.data import IGNORE_INDEX

    out = []
    for b, example in enumerate(batch.examples):
        spans = []
        for r in batch.rows_of(b):
            answer = (batch.input_ids[r] == model.seg_token_id) & (batch.labels[r] != IGNORE_INDEX)
            spans.append(span_states(model, batch.input_ids[r], answer.nonzero()[:, 0]))
        out.append(allocate(model.span_prompt(SpanStates.cat(spans)), example.num_clips, model.config.csa).prompts)
    return out


class SpanGroundingObjective(nn.Module):
    """SAM-2 prompted by the span skip path alone, every sampled frame on its own (``objective: span_grounding``).

    Each frame of clip c is prompted, for each expression, by the span term of that expression's
    clip-c ``[SEG]`` (:func:`svac.span_prompt.span_states` over the input embeddings, then
    ``model.span_prompt``); the LLM and ``text_hidden_fcs`` are not run.

    Args:
        model: an SVAC model with ``seg_prompt.span_skip`` and ``span_layer: input``.
        loss: mask-loss weights (``bce``, ``dice``, ``presence``; the others are ignored).

    Raises:
        svac.errors.ConfigError: when the model has no span skip path, or it reads the last layer.
    """

    def __init__(self, model: nn.Module, loss: LossConfig) -> None:
        super().__init__()
        check_span_model(model, "span_grounding")
        self.model = model
        self.loss_cfg = loss

    def forward(self, batch: TrainingBatch) -> "FrameLosses":
        """Weighted mask loss of ``batch`` with span prompts."""
        prompts = []  # per frame, (K, C): example by example, frame by frame
        for example, per_clip in zip(batch.examples, span_clip_prompts(self.model, batch)):
            prompts += [per_clip[int(c)] for c in example.clip_of_position]
        stacked = torch.cat(prompts)
        out, targets = segment_every_frame(self.model.grounding, batch.examples,
                                           lambda t: self.model.grounding.text_point_inputs(stacked))
        return _weighted(out, targets, self.loss_cfg)


def correction_clicks(predicted: torch.Tensor, targets: torch.Tensor, generator: torch.Generator, *,
                      missed_only: torch.Tensor | None = None) -> dict:
    """One correction click per object, drawn where the prediction is wrong (SAM 2's interactive training).

    The click is a pixel drawn uniformly from the error region: positive (label 1) when it is a
    missed target pixel, negative (label 0) when it is a false positive -- so the larger error
    is the likelier one to be corrected (SAM 2, Ravi et al. 2024, App. D). A prediction without
    error gets a positive click inside the target; no target and no error, a padding point.
    Rows flagged in ``missed_only`` draw from the target's missed pixels only (a positive click;
    inside the target when none is missed; the whole error as above when the target is absent), so
    every row draws from the generator exactly when it would without the flag.

    Args:
        predicted: ``bool (K, S, S)`` the masks to correct, at SAM-2's input size (pixels).
        targets: ``bool (K, S, S)`` the ground truth.
        generator: the random source (CPU).
        missed_only: ``bool (K,)`` the rows whose click is drawn from the missed pixels only, or ``None``
            (none: every row as SAM 2 draws).

    Returns:
        ``point_coords`` ``float (K, 1, 2)`` (x, y) pixel centres and ``point_labels`` ``int32 (K, 1)``
        (1 positive, 0 negative, -1 padding).

    Raises:
        ValueError: when ``missed_only`` is not a ``bool`` tensor of shape ``(K,)``.
    """
    k = targets.shape[0]
    if missed_only is not None and (missed_only.dtype != torch.bool or tuple(missed_only.shape) != (k,)):
        raise ValueError(f"missed_only must be a bool tensor of shape ({k},), got {missed_only.dtype} "
                         f"{tuple(missed_only.shape)}")
    coords = torch.zeros(k, 1, 2)
    labels = torch.full((k, 1), NO_POINT, dtype=torch.int32)
    cpu_predicted, cpu_targets = predicted.cpu(), targets.cpu()
    error = cpu_predicted != cpu_targets
    only = torch.zeros(k, dtype=torch.bool) if missed_only is None else missed_only.cpu()
    for j in range(k):
        if only[j] and cpu_targets[j].any():
            missed = cpu_targets[j] & ~cpu_predicted[j]
            region = missed if missed.any() else cpu_targets[j]
        else:
            region = error[j] if error[j].any() else cpu_targets[j]
        ys, xs = region.nonzero(as_tuple=True)
        if xs.numel():
            i = int(torch.randint(xs.numel(), (1,), generator=generator))
            y, x = int(ys[i]), int(xs[i])
            coords[j, 0, 0], coords[j, 0, 1] = x + 0.5, y + 0.5
            labels[j, 0] = POSITIVE_CLICK if bool(cpu_targets[j, y, x]) else NEGATIVE_CLICK
    return {"point_coords": coords.to(targets.device), "point_labels": labels.to(targets.device)}


def disjoint_rows(example, k: int) -> list[int]:
    """The expression rows of ``example`` naming no object of row ``k`` (by ``object_ids``; every other row
    when the example has no ids)."""
    n = example.num_objects
    ids = example.object_ids if len(example.object_ids) == n else tuple((j,) for j in range(n))
    return [j for j in range(n) if not set(ids[j]) & set(ids[k])]


def correction_inputs(sam, out: dict, target: torch.Tensor, generator: torch.Generator,
                      prompts: torch.Tensor | None = None, *,
                      missed_only: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
    """SAM 2's simulated user correcting a prediction: the prompts that decode its frame again.

    One click per object drawn from the error of ``out``'s mask against ``target``
    (:func:`correction_clicks`), encoded as SAM-2 point inputs beside the ``[SEG]`` ``prompts`` when
    given (:meth:`~svac.grounding.sam2_model.LanguagePromptedSAM2.click_point_inputs`), and ``out``'s
    low-resolution mask logits, detached and clamped as SAM-2's video predictor clamps them, as the
    previous-mask prompt -- as :mod:`svac.grounding.replay` decodes a correction.

    Args:
        sam: the :class:`~svac.grounding.sam2_model.LanguagePromptedSAM2`.
        out: SAM-2's ``track_step`` output for K objects (``pred_masks_high_res`` ``(K, 1, S, S)``,
            ``pred_masks`` ``(K, 1, S/4, S/4)``).
        target: ``bool (K, S, S)`` the objects the corrections aim at (pixels of SAM-2's input).
        generator: the click draws' random source (CPU).
        prompts: ``float (K, C)`` projected ``[SEG]`` prompts kept beside the clicks, or ``None``.
        missed_only: ``bool (K,)`` the rows clicked on missed target pixels only (:func:`correction_clicks`),
            or ``None``.

    Returns:
        ``(point_inputs, prev_sam_mask_logits)``.
    """
    from svac.grounding.replay import PREV_LOGITS_CLAMP

    predicted = (out["pred_masks_high_res"][:, 0] > 0).detach()
    clicks = correction_clicks(predicted, target, generator, missed_only=missed_only)
    inputs = sam.click_point_inputs(clicks["point_coords"], clicks["point_labels"], prompts)
    return inputs, out["pred_masks"].detach().clamp(-PREV_LOGITS_CLAMP, PREV_LOGITS_CLAMP)


def prompt_pairing(example, wrong_prompt: float, generator: torch.Generator) -> list[int]:
    """For each expression of ``example``, the expression whose ``[SEG]`` prompt it gets: itself, or with
    probability ``wrong_prompt`` another one naming disjoint objects (a mask wrong on purpose).

    Returns:
        ``K`` expression indices (0-based).
    """
    chosen = []
    for j in range(example.num_objects):
        others = disjoint_rows(example, j)
        if others and float(torch.rand(1, generator=generator)) < wrong_prompt:
            chosen.append(others[int(torch.randint(len(others), (1,), generator=generator))])
        else:
            chosen.append(j)
    return chosen


@dataclass
class CorrectionLosses(StepLosses):
    """Losses of one step of :class:`CorrectionObjective` (scalar tensors; ``loss`` is back-propagated).

    ``bce``, ``dice``, ``presence`` are summed over the passes; ``referring``, ``correction``,
    ``propagation``, ``clicks_alone``, ``box_correction`` and ``boxes_alone`` are each pass's mask loss
    (0 for a pass not run).
    """

    loss: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor
    referring: torch.Tensor
    correction: torch.Tensor
    propagation: torch.Tensor
    clicks_alone: torch.Tensor
    box_correction: torch.Tensor
    boxes_alone: torch.Tensor


class CorrectionObjective(nn.Module):
    """Referring, correction clicks and propagation of a correction, in one objective (``objective: corrections``).

    SAM 2 learns interactive prompts by simulating a user: it predicts, a click is drawn from
    the error, it predicts again with the click and its previous mask (Ravi et al. 2024, §4,
    App. D). Here the first prediction is the referring one, so the ``[SEG]`` prompt and the
    clicks are learnt together, as :mod:`svac.grounding.replay` uses them at inference. For each
    expression k of each video, on two sampled frames a < b (``data.frames: video``):

    1. **referring**: frame a prompted by the ``[SEG]`` prompt P alone (initial conditioning
       frame), supervised by P's own object -- what the referring stages train, so grounding is
       kept (:class:`SpanGroundingObjective`'s prompt: the span term of the clip's ``[SEG]``);
    2. **correction**: frame a again with P, one click drawn from the error of pass 1 against
       expression k's object (:func:`correction_clicks`) and pass 1's mask logits as SAM-2's mask
       prompt (clamped as SAM-2's video predictor does), supervised by expression k's object;
    3. **propagation** (``corrections.later_frame``): frame b tracked from pass 2's memory as a
       conditioning frame with b's own clip prompt (SAM-2's memory attention), supervised by
       expression k's object;
    4. **clicks alone** (``corrections.clicks_alone`` > 0): frame a prompted by one click drawn
       inside expression k's object and no ``[SEG]`` (:func:`oracle_prompts`), supervised by it;
    5. **box correction** (``corrections.box_correction`` > 0): pass 2 with expression k's box
       (:func:`box_prompts`, corners jittered by ``corrections.box_noise``) in place of the click --
       the box, P and pass 1's mask logits, as refinement decodes a box drawn on a ``[SEG]`` frame;
    6. **boxes alone** (``corrections.boxes_alone`` > 0): frame a prompted by expression k's box and
       no ``[SEG]``, as refinement decodes a box on an object the answer gave no ``[SEG]``.

    With probability ``corrections.wrong_prompt`` P is the prompt of another expression of the
    video naming other objects: the mask of pass 1 is wrong on purpose and the click (and then
    the memory) must take over from the language prompt -- the case refinement exists for. With
    ``corrections.wrong_prompt_clicks: missed`` the click of such a row is a positive click on the
    target's missed pixels (never a negative click on P's object supervised by another object).

    Args:
        model: an SVAC model with ``seg_prompt.span_skip`` and ``span_layer: input``.
        loss: mask-loss weights (``bce``, ``dice``, ``presence``).
        corrections: :class:`svac.training.config.CorrectionConfig`.
        seed: seed of the frame, prompt and click draws.

    Raises:
        svac.errors.ConfigError: when the model has no span skip path reading the input embeddings.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, corrections, *, seed: int = 0) -> None:
        super().__init__()
        check_span_model(model, "corrections")
        self.model = model
        self.loss_cfg = loss
        self.cfg = corrections
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, batch: TrainingBatch) -> CorrectionLosses:
        """Weighted mask losses of the passes on ``batch`` (those with a weight > 0, and pass 1)."""
        model, sam, w = self.model, self.model.grounding, self.loss_cfg
        per_clip = span_clip_prompts(model, batch)  # per example (num_clips, K, C)
        dtype = next(sam.parameters()).dtype
        first, later, prompt_a, prompt_b, own_a, target_a, target_b, counts = [], [], [], [], [], [], [], []
        wrong = []  # per example, bool (K,): the rows prompted with another expression's [SEG]
        for e, prompts in zip(batch.examples, per_clip):
            t = e.sam_frames.shape[0]
            if t < 2 and self.cfg.later_frame:
                raise ValueError("objective corrections with later_frame needs at least two sampled frames "
                                 "(data.frames: video)")
            a = int(torch.randint(max(t - 1, 1), (1,), generator=self.generator))
            b = a + 1 + int(torch.randint(max(t - a - 1, 1), (1,), generator=self.generator)) if t > 1 else a
            pair = torch.tensor(prompt_pairing(e, self.cfg.wrong_prompt, self.generator))
            first.append(e.sam_frames[a])
            later.append(e.sam_frames[b])
            prompt_a.append(prompts[int(e.clip_of_position[a])][pair])
            prompt_b.append(prompts[int(e.clip_of_position[b])][pair])
            own_a.append(e.masks[pair, a])
            wrong.append(pair != torch.arange(len(pair)))
            target_a.append(e.masks[:, a])
            target_b.append(e.masks[:, b])
            counts.append(e.num_objects)
        n = len(first)
        frames = torch.stack(first + (later if self.cfg.later_frame else [])).to(dtype)
        feats = sam.encode_frames(frames)
        feats_a = FrameFeatures.concat(feats[:n], counts)
        p_a, own, tgt_a = torch.cat(prompt_a), torch.cat(own_a), torch.cat(target_a)
        empty = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}

        def step(f, frame_idx, init, point_inputs, output_dict, num_frames, prev=None, memory=False):
            return sam.track_step(frame_idx=frame_idx, is_init_cond_frame=init, current_vision_feats=f.vision_feats,
                                  current_vision_pos_embeds=f.vision_pos, feat_sizes=f.feat_sizes,
                                  point_inputs=point_inputs, mask_inputs=None, output_dict=output_dict,
                                  num_frames=num_frames, run_mem_encoder=memory, prev_sam_mask_logits=prev)

        out1 = step(feats_a, 0, True, sam.text_point_inputs(p_a), empty, 1)
        referring = _weighted(out1, own, w)
        missed_only = torch.cat(wrong) if self.cfg.wrong_prompt_clicks == "missed" else None
        inputs, prev = correction_inputs(sam, out1, tgt_a, self.generator, p_a, missed_only=missed_only)
        num_frames = 2 if self.cfg.later_frame else 1
        out2 = step(feats_a, 0, True, inputs, empty, num_frames, prev=prev, memory=self.cfg.later_frame)
        correction = _weighted(out2, tgt_a, w)
        parts = [(referring, self.cfg.referring), (correction, self.cfg.correction)]
        propagation = None
        if self.cfg.later_frame:
            feats_b = FrameFeatures.concat(feats[n:], counts)
            bank = {"cond_frame_outputs": {0: out2}, "non_cond_frame_outputs": {}}
            out3 = step(feats_b, 1, False, sam.text_point_inputs(torch.cat(prompt_b)), bank, 2)
            propagation = _weighted(out3, torch.cat(target_b), w)
            parts.append((propagation, self.cfg.propagation))
        alone = None
        if self.cfg.clicks_alone:
            out4 = step(feats_a, 0, True, oracle_prompts(tgt_a, self.generator), empty, 1)
            alone = _weighted(out4, tgt_a, w)
            parts.append((alone, self.cfg.clicks_alone))
        box_correction = boxes_alone = None
        if self.cfg.box_correction or self.cfg.boxes_alone:
            boxes = box_prompts(tgt_a, self.cfg.box_noise, self.generator)
        if self.cfg.box_correction:
            inputs = sam.click_point_inputs(boxes["point_coords"], boxes["point_labels"], p_a)
            box_correction = _weighted(step(feats_a, 0, True, inputs, empty, 1, prev=prev), tgt_a, w)
            parts.append((box_correction, self.cfg.box_correction))
        if self.cfg.boxes_alone:
            boxes_alone = _weighted(step(feats_a, 0, True, boxes, empty, 1), tgt_a, w)
            parts.append((boxes_alone, self.cfg.boxes_alone))
        zero = referring.loss.new_zeros(())
        return CorrectionLosses(
            loss=sum(weight * p.loss for p, weight in parts), bce=sum(p.bce for p, _ in parts),
            dice=sum(p.dice for p, _ in parts), presence=sum(p.presence for p, _ in parts),
            referring=referring.loss, correction=correction.loss,
            propagation=propagation.loss if propagation is not None else zero,
            clicks_alone=alone.loss if alone is not None else zero,
            box_correction=box_correction.loss if box_correction is not None else zero,
            boxes_alone=boxes_alone.loss if boxes_alone is not None else zero)
