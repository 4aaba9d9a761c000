"""One object, one region: keep the strongest connected component of each low-resolution mask.

A referring expression of svac's synthetic benchmark names one object, yet a decoder unsure between
similar objects ("the big object" among two large ones) puts part of its mask on the others: on the
default model's held-out static set, 14-17 % of the predicted pixels of an average frame lie on
objects other than the target, at the same rate on the first frame and the last (the decoder's
uncertainty, not the memory drifting). ``inference.mask_components: strongest`` keeps, for each object
on each frame, only the region the decoder is most sure of.

:func:`keep_strongest_component` works on SAM-2's low-resolution logits (32 x 32 cells at 128 px),
before they are upsampled, so the choice costs the same at any frame size:

* the cells above the threshold are split into connected components, 8-connected
  (:func:`scipy.ndimage.label`, as SAM-2's own post-processing labels its masks' regions);
* each component's mass is the sum of its cells' probabilities (``sigmoid``): a large region of
  moderate confidence and a small one of high confidence compete on one scale;
* the cells of every other component are lowered to the threshold (off).

Two 8-connected components never share a 2 x 2 block of cells, and a bilinear value is a blend of
one such block, so after upsampling the kept component's pixels are exactly those it had before
and nothing of the others remains (``tests/test_mask_components.py``).

What it does not do: it is wrong for an expression naming several objects ("the two circles"), and
for one object split in two by an occluder only the larger part is kept -- which is why it is off by
default (Sa2VA and SVAC do not post-process their masks) and on only in configurations made for
one-object expressions (svac's default model). SAM-2 has related post-processing on the same
low-resolution logits: its video predictor's ``fill_hole_area`` (fills holes below an area) and its
image predictor's ``max_sprinkle_area`` (removes regions below an area); this one keeps one region
whatever the areas. Like the video predictor's, it changes only the output masks, not what SAM-2's
memory encodes (the memory encoder has run on the frame before the masks are post-processed).

Source: svac's own post-processing (issue 18); connected components as ``scipy.ndimage``.
"""

from __future__ import annotations

import numpy as np
import torch

#: 8-connectivity: cells touching by an edge or a corner are one region.
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def keep_strongest_component(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """``logits`` with every cell above ``threshold`` outside its mask's strongest component set to ``threshold``.

    Args:
        logits: ``float (K, n, h, w)`` mask logits of K objects on n frames (any float dtype and
            device; SAM-2's low-resolution logits, h = w = image_size / 4).
        threshold: a cell is on when its logit is above it (``inference.mask_threshold``).

    Returns:
        A tensor of the same shape, dtype and device: per object and frame, the 8-connected component
        of on-cells with the largest probability mass (sum of ``sigmoid(logit)``) keeps its values; the
        on-cells of the other components are set to ``threshold`` (off). Ties go to the component found
        first (row-major order). ``logits`` itself when no mask has two components or more (nothing to
        drop), else a new tensor: the input is never modified.

    Raises:
        ValueError: when ``logits`` is not 4-D.
    """
    from scipy import ndimage

    if logits.ndim != 4:
        raise ValueError(f"expected logits (K, n, h, w), got {tuple(logits.shape)}")
    values = logits.detach().float().cpu()
    on = (values > threshold).numpy()
    probs = values.sigmoid().numpy()
    drop = np.zeros(on.shape, dtype=bool)
    for o in range(on.shape[0]):
        for i in range(on.shape[1]):
            if not on[o, i].any():
                continue
            labels, count = ndimage.label(on[o, i], structure=EIGHT_CONNECTED)
            if count < 2:
                continue
            mass = ndimage.sum_labels(probs[o, i], labels, index=np.arange(1, count + 1))
            strongest = 1 + int(np.argmax(mass))
            drop[o, i] = (labels > 0) & (labels != strongest)
    if not drop.any():
        return logits
    out = logits.clone()
    out[torch.from_numpy(drop).to(out.device)] = threshold
    return out
