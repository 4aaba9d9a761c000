"""Training losses of SVAC (Sa2VA §3.3 weights; Mask2Former point sampling; SAM-2 object presence).

* next-token cross-entropy on the answer tokens (computed by the LLM);
* mask losses, per object and frame: 2.0 x binary cross-entropy + 0.5 x Dice, on every pixel
  or on points sampled by uncertainty (Mask2Former, Cheng et al. CVPR 2022, §3.3 / App. A);
* SAM-2 object presence: binary cross-entropy on the object-score logit (SAM 2, §4 "occlusion
  prediction"), because SAM-2 replaces the mask of a frame predicted "absent" by a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from svac.training.config import LossConfig

#: Additive smoothing of the Dice loss (keeps empty-vs-empty at loss 0 and gradients finite).
DICE_SMOOTH = 1.0


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss per mask: ``1 - (2 sum(p g) + 1) / (sum(p) + sum(g) + 1)`` with ``p = sigmoid(logits)``.

    Args:
        logits: ``float (N, P)`` mask logits (P pixels or points per mask).
        targets: ``float (N, P)`` in {0, 1}.

    Returns:
        ``float (N,)``, each in [0, 1).
    """
    probs = logits.sigmoid()
    inter = (probs * targets).sum(-1)
    return 1.0 - (2.0 * inter + DICE_SMOOTH) / (probs.sum(-1) + targets.sum(-1) + DICE_SMOOTH)


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy per mask: ``float (N,)`` for ``(N, P)`` logits and targets."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)


def point_sample(values: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample maps at normalised points.

    Args:
        values: ``float (N, 1, H, W)``.
        points: ``float (N, P, 2)`` as (x, y) in [0, 1] (0 = left/top edge, 1 = right/bottom edge).

    Returns:
        ``float (N, P)``.
    """
    grid = points[:, :, None, :] * 2.0 - 1.0
    return F.grid_sample(values, grid, mode="bilinear", align_corners=False)[:, 0, :, 0]


def uncertain_points(logits: torch.Tensor, num_points: int, oversample_ratio: float, importance_ratio: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask2Former's training points: mostly where the prediction is most uncertain, the rest uniform.

    ``oversample_ratio * num_points`` random points are drawn; the ``importance_ratio * num_points``
    whose logits are closest to 0 are kept, and uniform random points complete the set.

    Args:
        logits: ``float (N, 1, h, w)`` mask logits (no gradient is taken through the choice).
        num_points: P, points per mask.

    Returns:
        ``float (N, P, 2)`` (x, y) in [0, 1].
    """
    n = logits.shape[0]
    device = logits.device
    sampled = int(num_points * oversample_ratio)
    candidates = torch.rand(n, sampled, 2, device=device, generator=generator)
    with torch.no_grad():
        uncertainty = -point_sample(logits.detach().float(), candidates).abs()
    important = int(importance_ratio * num_points)
    top = uncertainty.topk(important, dim=1).indices
    chosen = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
    rest = torch.rand(n, num_points - important, 2, device=device, generator=generator)
    return torch.cat([chosen, rest], dim=1)


@dataclass
class StepLosses:
    """Base of the training objectives' per-step loss records: every field a scalar tensor, ``loss`` the
    weighted total that is back-propagated (the others are logged)."""

    def as_floats(self) -> dict[str, float]:
        """Detached values of every field, in field order, for logging."""
        return {f.name: float(getattr(self, f.name).detach()) for f in fields(self)}


@dataclass
class MaskLossTerms:
    """Mean mask losses over all objects and frames of a batch (scalars)."""

    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor


def mask_losses(logits: torch.Tensor, presence_logits: torch.Tensor, targets: torch.Tensor, cfg: LossConfig,
                generator: torch.Generator | None = None) -> MaskLossTerms:
    """Mask BCE, Dice and presence losses of SAM-2 predictions against ground truth.

    Args:
        logits: ``float (N, h, w)`` low-resolution mask logits (one per object and frame).
        presence_logits: ``float (N,)`` SAM-2 object-score logits.
        targets: ``bool/float (N, H, W)`` ground-truth masks at the SAM-2 input size (pixels).
        cfg: loss options (point sampling).

    Returns:
        :class:`MaskLossTerms`, each the mean over the N masks.
    """
    targets = targets.float()
    present = (targets.flatten(1).amax(dim=1) > 0).float()
    if cfg.point_sampling:
        points = uncertain_points(logits[:, None], cfg.num_points, cfg.oversample_ratio, cfg.importance_ratio,
                                  generator)
        pred = point_sample(logits[:, None].float(), points)
        gt = point_sample(targets[:, None], points)
    else:
        pred = F.interpolate(logits[:, None].float(), size=targets.shape[-2:], mode="bilinear",
                             align_corners=False).flatten(1)
        gt = targets.flatten(1)
    return MaskLossTerms(bce=bce_loss(pred, gt).mean(), dice=dice_loss(pred, gt).mean(),
                         presence=F.binary_cross_entropy_with_logits(presence_logits.float(), present))


def prompt_region_contrast(prompts: torch.Tensor, regions: torch.Tensor, identity: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between ``[SEG]`` prompts and the image features of their targets (svac's addition).

    Each prompt should be closer (cosine) to the features of its own target than to those of the
    other targets in the batch, and each target's features closer to its own prompts: the
    region-word alignment of GLIP (Li et al., CVPR 2022, §3.1) and the symmetric contrastive loss
    of CLIP (Radford et al., ICML 2021, §2.3), applied to SVAC's projected ``[SEG]`` prompts and
    SAM-2's image embedding. Rows with the same ``identity`` (two expressions naming the same
    object of one video) are positives of each other.

    Args:
        prompts: ``float (N, C)`` projected ``[SEG]`` prompts, one per (video, clip, expression).
        regions: ``float (N, C)`` SAM-2 image features averaged inside the expression's target on
            the clip's frames (see :meth:`svac.training.objective.SVACObjective.forward`).
        identity: ``long (N,)`` target identity; equal values mark the same object of the same video.
        temperature: softmax temperature (> 0) on cosine similarities.

    Returns:
        A scalar >= 0 (0 when N == 0, or when every row has the same identity).

    Raises:
        ValueError: when the shapes disagree or ``temperature`` <= 0.
    """
    if prompts.shape != regions.shape or prompts.ndim != 2 or identity.shape != prompts.shape[:1]:
        raise ValueError(f"prompts {tuple(prompts.shape)}, regions {tuple(regions.shape)} and identity "
                         f"{tuple(identity.shape)} must be (N, C), (N, C) and (N,)")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if prompts.shape[0] == 0:
        return prompts.sum() * 0.0
    logits = F.normalize(prompts.float(), dim=-1) @ F.normalize(regions.float(), dim=-1).T / temperature
    positive = identity[:, None] == identity[None, :]

    def nce(scores: torch.Tensor) -> torch.Tensor:
        log_prob = scores.log_softmax(dim=1)
        return -torch.logsumexp(log_prob.masked_fill(~positive, float("-inf")), dim=1).mean()

    return 0.5 * (nce(logits) + nce(logits.T))
