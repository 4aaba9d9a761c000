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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.grounding.sam2_model import FrameFeatures
from svac.training.config import LossConfig
from svac.training.data import TrainingBatch
from svac.training.losses import mask_losses

#: SAM-2 point labels: padding (no point) and positive click (SAM 2's codes).
NO_POINT, POSITIVE_CLICK = -1, 1


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


@dataclass
class FrameLosses:
    """Losses of one step of a single-frame objective (scalar tensors; ``loss`` is back-propagated)."""

    loss: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Detached values for logging."""
        return {k: float(getattr(self, k).detach()) for k in ("loss", "bce", "dice", "presence")}


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
        from svac.errors import ConfigError

        if model.span_prompt is None or model.config.seg_prompt.span_layer != "input":
            raise ConfigError("objective span_grounding needs seg_prompt.span_skip=true and span_layer=input (a span "
                              "term that depends on the answer's tokens alone)")
        self.model = model
        self.loss_cfg = loss

    def forward(self, batch: TrainingBatch) -> "FrameLosses":
        """Weighted mask loss of ``batch`` with span prompts."""
        from svac.csa import allocate
        from svac.span_prompt import SpanStates, span_states
        from svac.training.data import IGNORE_INDEX

        model = self.model
        prompts = []  # per frame, (K, C): example by example, frame by frame
        for b, example in enumerate(batch.examples):
            spans = []
            for r in batch.rows_of(b):
                answer = (batch.input_ids[r] == model.seg_token_id) & (batch.labels[r] != IGNORE_INDEX)
                spans.append(span_states(model, batch.input_ids[r], answer.nonzero()[:, 0]))
            per_clip = allocate(model.span_prompt(SpanStates.cat(spans)), example.num_clips, model.config.csa).prompts
            prompts += [per_clip[int(c)] for c in example.clip_of_position]
        stacked = torch.cat(prompts)
        out, targets = segment_every_frame(model.grounding, batch.examples,
                                           lambda t: model.grounding.text_point_inputs(stacked))
        return _weighted(out, targets, self.loss_cfg)
