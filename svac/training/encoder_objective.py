"""Object-attribute pretraining of SAM-2's image encoder with feature distillation (``objective: encoder_pretraining``).

svac's addition (cf. supervised backbone pretraining, e.g. an ImageNet-classified backbone before
detection): trained from scratch during grounding, SAM-2's image encoder collapses to "objectness",
and kept at its random initialisation its features do not carry shape (measured in
``docs/training.md``). This stage teaches the encoder what objects look like before any grounding:

1. each sampled frame goes through SAM-2's image encoder as the mask decoder reads it
   (``SAM2Base.forward_image``: trunk, neck, and the decoder's ``conv_s0``/``conv_s1`` on the two
   high-resolution levels);
2. per object on the frame (each distinct object named by a single-object expression of the
   example, visible on the frame), every level is averaged inside the object's mask (weights: the
   fraction of each feature cell the mask covers) and the levels are concatenated;
3. a training-only MLP head predicts from that vector the object's **category** (cross-entropy over
   ``encoder_pretraining.categories``, the dataset's category labels), its **size** (the natural
   log of its area over the frame's, squared error) and its **mean colour** (mean RGB in [0, 1] of
   its pixels, squared error);
4. a **distillation** term keeps the features near those of a frozen copy of the encoder taken
   when the stage starts (per level, mean squared difference over the copy's mean square): without
   it the encoder drifts and what the later stages build on breaks.

The head and the frozen copy belong to the objective, not to the model: the saved model holds
neither, while a training checkpoint (accelerate's ``save_state`` of the objective) holds both, so
``--resume`` continues with the same head and the same distillation target.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from svac.errors import ConfigError
from svac.training.config import EncoderPretrainingConfig
from svac.training.data import TrainingBatch
from svac.training.losses import StepLosses


@dataclass
class EncoderLosses(StepLosses):
    """Losses of one step of :class:`EncoderPretrainingObjective` (scalar tensors; ``loss`` is back-propagated).

    ``category_accuracy`` is the head's accuracy on the batch's objects (logged, not trained; 0 without
    categories); ``objects`` the number of objects the attribute terms averaged over.
    """

    loss: torch.Tensor
    category: torch.Tensor
    size: torch.Tensor
    colour: torch.Tensor
    distill: torch.Tensor
    category_accuracy: torch.Tensor
    objects: torch.Tensor


def decoder_levels(sam, images: torch.Tensor) -> list[torch.Tensor]:
    """The image features SAM-2's mask decoder reads, per level, highest resolution first.

    ``sam.forward_image`` (trunk, neck, then the decoder's ``conv_s0``/``conv_s1`` on the
    high-resolution levels), its last ``sam.num_feature_levels`` FPN levels.

    Args:
        sam: a ``SAM2Base`` (the model's :class:`~svac.grounding.sam2_model.LanguagePromptedSAM2`).
        images: ``float (B, 3, S, S)`` SAM-2-normalised frames.

    Returns:
        Per level, ``float (B, C_l, h_l, w_l)``.
    """
    return list(sam.forward_image(images)["backbone_fpn"][-sam.num_feature_levels:])


class FrozenEncoder(nn.Module):
    """A frozen copy of SAM-2's image encoder and of its mask decoder's high-resolution convolutions.

    The distillation target of :class:`EncoderPretrainingObjective`: its :meth:`forward` gives the
    same levels as :func:`decoder_levels` did when the copy was taken. It never trains (``train()``
    keeps it in eval mode; no parameter requires grad).

    Args:
        sam: the ``SAM2Base`` to copy.
    """

    def __init__(self, sam) -> None:
        super().__init__()
        self.image_encoder = copy.deepcopy(sam.image_encoder)
        high_res = sam.use_high_res_features_in_sam
        self.conv_s0 = copy.deepcopy(sam.sam_mask_decoder.conv_s0) if high_res else None
        self.conv_s1 = copy.deepcopy(sam.sam_mask_decoder.conv_s1) if high_res else None
        self.num_feature_levels = sam.num_feature_levels
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenEncoder":
        """Stay in eval mode whatever ``mode`` says (the target must not change)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Levels as :func:`decoder_levels` (``float (B, C_l, h_l, w_l)``, highest resolution first)."""
        fpn = list(self.image_encoder(images)["backbone_fpn"])
        if self.conv_s0 is not None:
            fpn[0], fpn[1] = self.conv_s0(fpn[0]), self.conv_s1(fpn[1])
        return fpn[-self.num_feature_levels:]


def mask_pooled(levels: list[torch.Tensor], masks: torch.Tensor, frame_of: torch.Tensor) -> torch.Tensor:
    """Per object, every level averaged inside its mask, the levels concatenated.

    Each feature cell weighs the fraction of it the mask covers (the mask average-pooled to the
    level's grid).

    Args:
        levels: per level ``float (B, C_l, h_l, w_l)`` features of B frames.
        masks: ``bool/float (N, S, S)`` N objects' masks at SAM-2's input size (pixels); S a multiple
            of every level's side.
        frame_of: ``long (N,)`` the frame (0..B-1) of each object.

    Returns:
        ``float (N, sum_l C_l)``.

    Raises:
        ValueError: when an object's mask is empty (nothing to average).
    """
    m = masks.to(levels[0].dtype)[:, None]
    if not bool((m.flatten(1).sum(1) > 0).all()):
        raise ValueError("mask_pooled: every object needs a non-empty mask")
    out = []
    for level in levels:
        cover = F.adaptive_avg_pool2d(m, level.shape[-2:]).flatten(1)  # (N, h*w)
        feats = level.flatten(2)[frame_of]  # (N, C, h*w)
        out.append(torch.einsum("nk,nck->nc", cover, feats) / cover.sum(1, keepdim=True))
    return torch.cat(out, dim=1)


def distillation(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Normalised feature distillation: per level ``mean((s - t)^2) / mean(t^2)``, averaged over the levels.

    Args:
        student, teacher: per level ``float (B, C_l, h_l, w_l)``.

    Returns:
        A scalar >= 0; 0 when the features are equal.
    """
    terms = [((s - t) ** 2).mean() / (t ** 2).mean().clamp_min(1e-12) for s, t in zip(student, teacher)]
    return torch.stack(terms).mean()


@dataclass
class FrameObjects:
    """The objects of a batch the attribute terms train on.

    Attributes:
        masks: ``bool (N, S, S)`` at SAM-2's input size (pixels).
        frame_of: ``long (N,)`` their frame among the batch's sampled frames (example by example).
        category: ``long (N,)`` index in ``encoder_pretraining.categories`` (-100 when not trained).
    """

    masks: torch.Tensor
    frame_of: torch.Tensor
    category: torch.Tensor


class EncoderPretrainingObjective(nn.Module):
    """SAM-2's image encoder trained on object attributes with feature distillation (``objective: encoder_pretraining``).

    See the module docstring. Only the model's trainable parts receive gradient (the stage's
    ``trainable``: ``sam2_image_encoder`` and ``sam2_high_res_convs``); the head trains at
    ``encoder_pretraining.head_lr`` (:meth:`own_param_groups`).

    Args:
        model: the SVAC model (only ``model.grounding`` is used).
        cfg: :class:`svac.training.config.EncoderPretrainingConfig`.

    Raises:
        ConfigError: when ``cfg.category`` > 0 and ``cfg.categories`` is empty.
    """

    def __init__(self, model: nn.Module, cfg: EncoderPretrainingConfig) -> None:
        super().__init__()
        if cfg.category > 0 and not cfg.categories:
            raise ConfigError("encoder_pretraining.category > 0 needs encoder_pretraining.categories (the category "
                              "names of the training objects, e.g. [circle, square, star, triangle]); or set "
                              "encoder_pretraining.category: 0")
        self.model = model
        self.cfg = cfg
        sam = model.grounding
        self.teacher = FrozenEncoder(sam)
        size = model.sam2_image_size
        dtype = next(sam.parameters()).dtype
        probe = torch.zeros(1, 3, size, size, dtype=dtype, device=next(sam.parameters()).device)
        width = sum(level.shape[1] for level in self.teacher(probe))
        self.num_categories = len(cfg.categories)
        self.head = nn.Sequential(nn.Linear(width, cfg.head_hidden), nn.ReLU(),
                                  nn.Linear(cfg.head_hidden, self.num_categories + 1 + 3))
        self.head.to(device=probe.device, dtype=dtype)
        self._index = {name: i for i, name in enumerate(cfg.categories)}

    def own_param_groups(self) -> list[dict]:
        """The optimizer groups of the objective's own parameters (the head): ``head_lr``, no weight decay."""
        return [{"params": list(self.head.parameters()), "lr": self.cfg.head_lr, "weight_decay": 0.0}]

    def objects(self, batch: TrainingBatch) -> FrameObjects:
        """Every distinct object named by a single-object expression, on each sampled frame that shows it.

        Raises:
            ConfigError: when the category term is on and an object has no category, or one not in
                ``encoder_pretraining.categories``.
        """
        masks, frame_of, category = [], [], []
        frame = 0
        for e in batch.examples:
            seen: dict[int, int] = {}
            for k, ids in enumerate(e.object_ids):
                if len(ids) == 1 and ids[0] not in seen:
                    seen[ids[0]] = k
            for t in range(e.sam_frames.shape[0]):
                for obj, k in seen.items():
                    if not bool(e.masks[k, t].any()):
                        continue
                    masks.append(e.masks[k, t])
                    frame_of.append(frame + t)
                    category.append(self._category(e, k, obj))
            frame += e.sam_frames.shape[0]
        device = batch.examples[0].masks.device
        if not masks:
            size = batch.examples[0].masks.shape[-1]
            return FrameObjects(torch.zeros(0, size, size, dtype=torch.bool, device=device),
                                torch.zeros(0, dtype=torch.long, device=device),
                                torch.zeros(0, dtype=torch.long, device=device))
        return FrameObjects(torch.stack(masks), torch.tensor(frame_of, device=device),
                            torch.tensor(category, device=device))

    def _category(self, example, k: int, obj: int) -> int:
        if not self.cfg.category:
            return -100
        name = example.categories[k] if len(example.categories) > k else None
        if name is None:
            raise ConfigError(f"encoder_pretraining.category > 0 needs each object's category; video "
                              f"{example.video_id} object {obj} has none (a Ref-YouTube-VOS layout lists them in "
                              "<split>/meta.json); or set encoder_pretraining.category: 0")
        if name not in self._index:
            raise ConfigError(f"video {example.video_id} object {obj} has category {name!r}, not in "
                              f"encoder_pretraining.categories {list(self.cfg.categories)}")
        return self._index[name]

    def forward(self, batch: TrainingBatch) -> EncoderLosses:
        """Weighted attribute and distillation losses of ``batch``.

        Raises:
            ConfigError: see :meth:`objects`.
        """
        from svac.config import IMAGENET_MEAN, IMAGENET_STD

        sam, w = self.model.grounding, self.cfg
        dtype = next(sam.parameters()).dtype
        frames = torch.cat([e.sam_frames for e in batch.examples]).to(dtype)
        levels = decoder_levels(sam, frames)
        distill = distillation(levels, self.teacher(frames)) if w.distill else levels[0].new_zeros(())
        found = self.objects(batch)
        zero = sum(level.sum() for level in levels) * 0.0  # keeps the graph when no object is visible
        category = size = colour = accuracy = zero
        if found.masks.shape[0]:
            out = self.head(mask_pooled(levels, found.masks, found.frame_of))
            n = self.num_categories
            area = found.masks.flatten(1).float().mean(1)  # fraction of the frame's pixels
            size = F.mse_loss(out[:, n], area.log().to(out.dtype))
            mean = torch.tensor(IMAGENET_MEAN, dtype=frames.dtype, device=frames.device)[:, None, None]
            std = torch.tensor(IMAGENET_STD, dtype=frames.dtype, device=frames.device)[:, None, None]
            rgb = (frames * std + mean)[found.frame_of]  # (N, 3, S, S) in [0, 1]
            m = found.masks[:, None].to(rgb.dtype)
            target_rgb = (rgb * m).sum((2, 3)) / m.sum((2, 3))
            colour = F.mse_loss(out[:, n + 1:], target_rgb)
            labelled = found.category >= 0
            if n and bool(labelled.any()):
                category = F.cross_entropy(out[:, :n], found.category, ignore_index=-100)
                accuracy = (out[labelled, :n].argmax(1) == found.category[labelled]).float().mean()
        total = w.category * category + w.size * size + w.colour * colour + w.distill * distill
        return EncoderLosses(loss=total, category=category, size=size, colour=colour, distill=distill,
                             category_accuracy=accuracy, objects=torch.tensor(float(found.masks.shape[0])))
