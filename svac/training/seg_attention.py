"""``[SEG]`` attention supervision: each ``[SEG]`` token is taught to look at its object's visual tokens.

svac's addition for models trained from scratch (issue 18). Trained by the mask loss alone, a tiny LLM's ``[SEG]``
token spreads its attention over a clip's visual tokens in proportion to their number (attention lift 0.98-1.02 on
the target's cells, :mod:`svac.evaluation.visual_probe`), and neither the mask loss nor a direct regression of the
target's centroid from the ``[SEG]`` state taught it to do otherwise within this CPU's budgets: a model has to find
the right tokens before a loss on what it reads from them can say anything. This objective says where to look.

For the ``[SEG]`` token of clip ``c`` and expression ``k`` (CSA: one ``[SEG]`` per clip, SVAC §3.4) the keys are
the visual tokens of clip ``c``'s MLLM images -- its anchor and composite frames under ASTC (SVAC §3.3), its
frames otherwise -- and each key's weight is how much of its cell the target covers (the composite's cells are
measured on the same tiling of the clip's frames as :func:`svac.astc.make_composite`), divided by the largest
weight. With ``p`` the token's attention over those keys (mean over heads, renormalised to sum to 1) the loss is
``-log(sum_j w_j p_j)``: 0 when all attention lands on the most-covered cells, large when it lands off the object.
``[SEG]`` tokens whose target is absent from their clip are not supervised. Under ``csa.mode: single`` the one
``[SEG]`` of an expression has every image of the video as keys.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from svac.astc import composite_grid_size

#: Floor of the attention mass on the target inside the log (keeps the loss finite for a token looking elsewhere).
MIN_TARGET_MASS = 1e-6


def image_cell_coverage(masks: torch.Tensor, clip_of_position: torch.Tensor, astc: bool, grid: int) -> torch.Tensor:
    """Fraction of each visual-token cell of each MLLM image that the target covers.

    Args:
        masks: ``bool (T, S, S)`` the target on the T sampled frames (SAM-2 input size; pixels). The MLLM images
            are the same frames resized to their own square size, so cells are fractions of the frame.
        clip_of_position: ``long (T,)`` the clip of each sampled frame (the clips' frames are consecutive, the
            first of each is its anchor).
        astc: the MLLM images are each clip's anchor then composite frame (ASTC); otherwise one per sampled frame.
        grid: cells per side of one MLLM image (``sqrt(tokens_per_image)``).

    Returns:
        ``float32 (num_images, grid * grid)`` in ``[0, 1]``, images in prompt order, cells row-major.

    Raises:
        ValueError: when ``masks`` is not ``(T, S, S)`` with ``T = len(clip_of_position)``.

    Source: svac's addition (issue 18); the anchor / composite layout is ASTC's (SVAC §3.3).
    """
    if masks.ndim != 3 or masks.shape[0] != len(clip_of_position):
        raise ValueError(f"expected masks (T, S, S) for {len(clip_of_position)} frames, got {tuple(masks.shape)}")
    frames = masks.float()
    if not astc:
        return F.adaptive_avg_pool2d(frames[:, None], grid).flatten(1)
    size = frames.shape[-1]
    images = []
    for clip in torch.unique_consecutive(clip_of_position).tolist():
        positions = (clip_of_position == clip).nonzero()[:, 0].tolist()
        images.append(frames[positions[0]])
        rest = positions[1:]
        side = composite_grid_size(len(rest))
        canvas = frames.new_zeros((side * size, side * size))
        for i, p in enumerate(rest):
            r, c = divmod(i, side)
            canvas[r * size:(r + 1) * size, c * size:(c + 1) * size] = frames[p]
        images.append(canvas)
    return torch.stack([F.adaptive_avg_pool2d(im[None, None], grid).flatten() for im in images])


def seg_attention_loss(attention: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``-log(sum_j w_j p_j)`` for one ``[SEG]`` token at one layer (see the module docstring).

    Args:
        attention: ``float (heads, n)`` the token's softmax attention on its ``n`` key tokens.
        weights: ``float (n,)`` the target's coverage of each key's cell, ``max > 0``.

    Returns:
        A ``float32`` scalar, ``>= 0``.

    Raises:
        ValueError: when the shapes disagree or no key is covered.

    Source: svac's addition (issue 18).
    """
    if attention.ndim != 2 or attention.shape[1] != weights.shape[0]:
        raise ValueError(f"attention (heads, n) and weights (n,) disagree: {tuple(attention.shape)}, "
                         f"{tuple(weights.shape)}")
    top = weights.max()
    if not top > 0:
        raise ValueError("the target covers none of the keys")
    p = attention.float().mean(0)
    p = p / p.sum().clamp_min(torch.finfo(p.dtype).tiny)
    return -torch.log((p * (weights.float() / top)).sum().clamp_min(MIN_TARGET_MASS))


def example_seg_attention_terms(attentions: Sequence[torch.Tensor], rows: Sequence[int],
                                seg_positions: Sequence[torch.Tensor], image_positions: Sequence[torch.Tensor],
                                coverage: torch.Tensor, image_clips: Sequence[int], per_clip: bool
                                ) -> list[torch.Tensor]:
    """The loss of every supervised ``[SEG]`` token of one video at every given layer.

    Args:
        attentions: the supervised layers' ``float (rows, heads, L, L)`` attention weights.
        rows: the video's token rows in ``attentions``, in conversation order.
        seg_positions: per row, ``long`` positions of its answer's ``[SEG]`` tokens; over the rows in order they
            are the video's ``[SEG]`` tokens in answer order (CSA: token ``k * num_clips + c`` is clip ``c`` of
            expression ``k``, :func:`svac.csa.allocate`).
        image_positions: per row, ``long (num_images * P,)`` positions of its ``<IMG_CONTEXT>`` tokens.
        coverage: ``float (K, num_images, P)`` from :func:`image_cell_coverage` per expression.
        image_clips: the clip of each MLLM image.
        per_clip: CSA (one ``[SEG]`` per clip); otherwise one ``[SEG]`` per expression for every clip.

    Returns:
        Scalar losses (possibly none: targets absent from every clip).

    Raises:
        ValueError: when the ``[SEG]`` count does not fit the expressions and clips.

    Source: svac's addition (issue 18); the ``[SEG]``-to-clip allocation is CSA's (SVAC §3.4).
    """
    num_clips = max(image_clips) + 1
    expressions, num_images, per_image = coverage.shape
    total = sum(len(p) for p in seg_positions)
    if total != expressions * (num_clips if per_clip else 1):
        raise ValueError(f"{total} [SEG] tokens for {expressions} expressions and {num_clips} clips "
                         f"(per_clip={per_clip})")
    clips = torch.tensor(image_clips)
    terms, s = [], 0
    for row, segs, images in zip(rows, seg_positions, image_positions):
        keys_of_image = images.reshape(num_images, per_image)
        for position in segs.tolist():
            k, c = divmod(s, num_clips) if per_clip else (s, None)
            s += 1
            chosen = (clips == c) if c is not None else torch.ones(num_images, dtype=torch.bool)
            weights = coverage[k][chosen].flatten()
            if not weights.max() > 0:
                continue
            keys = keys_of_image[chosen].flatten()
            terms += [seg_attention_loss(layer[row, :, position, keys], weights) for layer in attentions]
    return terms

