"""``inference.mask_components``: one region per mask, chosen on SAM-2's low-resolution logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from svac.config import ConfigError, InferenceConfig
from svac.grounding.mask_components import keep_strongest_component
from svac.grounding.mask_upsampling import upsample_masks

from helpers import variant


def _blobs(size: int = 32) -> torch.Tensor:
    """``(1, 1, size, size)`` logits: a large faint region, a small sure one, background at -4."""
    logits = torch.full((1, 1, size, size), -4.0)
    logits[0, 0, 2:12, 2:12] = 0.3  # 100 cells at p = 0.57: mass 57
    logits[0, 0, 20:24, 20:24] = 6.0  # 16 cells at p = 0.998: mass 16
    return logits


def test_the_component_with_the_largest_probability_mass_is_kept():
    logits = _blobs()
    kept = keep_strongest_component(logits, 0.0)
    assert (kept[0, 0, 2:12, 2:12] == 0.3).all()
    assert (kept[0, 0, 20:24, 20:24] == 0.0).all()  # lowered to the threshold: off
    assert not (kept > 0).numpy()[0, 0, 18:, 18:].any()
    # mass, not the largest logit: a sure small region loses to a faint one of more mass; more cells flip it
    logits[0, 0, 20:30, 20:30] = 6.0
    kept = keep_strongest_component(logits, 0.0)
    assert (kept[0, 0, 20:30, 20:30] == 6.0).all() and not (kept[0, 0, 2:12, 2:12] > 0).any()
    # the threshold defines the regions
    assert keep_strongest_component(_blobs(), 0.5)[0, 0, 20, 20] == 6.0


def test_diagonal_neighbours_are_one_region_and_single_regions_are_untouched():
    logits = torch.full((1, 2, 8, 8), -1.0)
    logits[0, 0, 1, 1] = logits[0, 0, 2, 2] = logits[0, 0, 3, 3] = 2.0  # one 8-connected region
    logits[0, 1, 4:6, 4:6] = 1.0
    out = keep_strongest_component(logits, 0.0)
    assert out is logits  # nothing to drop: no copy
    logits[0, 0, 1, 4] = 2.0  # not touching: a second region, of less mass
    out = keep_strongest_component(logits, 0.0)
    assert out[0, 0, 1, 4] == 0.0 and out[0, 0, 3, 3] == 2.0 and torch.equal(out[0, 1], logits[0, 1])
    assert logits[0, 0, 1, 4] == 2.0  # the input is not modified


def test_each_object_and_frame_chooses_on_its_own():
    logits = torch.full((2, 3, 16, 16), -2.0)
    logits[:, :, 1:4, 1:4] = 1.0  # 9 cells
    logits[0, 1, 10:15, 10:15] = 1.0  # 25 cells: wins on object 0, frame 1 only
    out = keep_strongest_component(logits, 0.0) > 0
    assert out[0, 1, 10:15, 10:15].all() and not out[0, 1, 1:4, 1:4].any()
    for o, t in [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)]:
        assert out[o, t, 1:4, 1:4].all() and out[o, t].sum() == 9


@pytest.mark.parametrize("frame_size", [(120, 160), (480, 854)])
def test_upsampled_it_is_the_full_size_region_of_the_kept_cells(frame_size):
    """Checked against the plain path: ``F.interpolate`` of the original logits, thresholded, then regions labelled
    at full size with scipy: the result is exactly the full-size region(s) overlapping the kept cells, and every
    pixel of the other regions is off."""
    rng = np.random.default_rng(0)
    logits = torch.full((1, 4, 32, 32), -3.0)
    for t in range(4):
        for _ in range(3):
            y, x = rng.integers(0, 28, size=2)
            logits[0, t, y:y + 4, x:x + 4] = float(rng.uniform(0.5, 4.0))
    kept = keep_strongest_component(logits, 0.0)
    ours = upsample_masks(kept, frame_size, 0.0)
    plain = (F.interpolate(logits, size=frame_size, mode="bilinear", align_corners=False) > 0).numpy()
    kept_up = (F.interpolate(kept, size=frame_size, mode="bilinear", align_corners=False) > 0).numpy()
    for t in range(4):
        labels, count = ndimage.label(plain[0, t], structure=np.ones((3, 3)))
        hit = np.unique(labels[kept_up[0, t]])
        expected = np.isin(labels, hit[hit > 0])
        assert np.array_equal(ours[0, t], expected), f"frame {t}"
        assert count >= 1 and ours[0, t].sum() <= plain[0, t].sum()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="expected logits"):
        keep_strongest_component(torch.zeros(32, 32), 0.0)
    with pytest.raises(ConfigError, match="mask_components"):
        from svac.config import from_dict

        from_dict(InferenceConfig, {"mask_components": "largest"}, where="inference")


def test_the_engine_applies_it_when_configured(tiny_model):
    """``logits_to_masks`` with ``inference.mask_components: strongest`` gives the kept region only; ``all`` keeps both."""
    from svac.grounding.engine import logits_to_masks

    logits = _blobs()
    both = logits_to_masks(tiny_model, logits, pipeline="svac", frame_size=(64, 64))
    one = logits_to_masks(variant(tiny_model, inference={"mask_components": "strongest"}), logits, pipeline="svac",
                          frame_size=(64, 64))
    assert ndimage.label(both[0, 0], structure=np.ones((3, 3)))[1] == 2
    assert ndimage.label(one[0, 0], structure=np.ones((3, 3)))[1] == 1
    assert np.array_equal(one[0, 0], both[0, 0] & one[0, 0]) and one[0, 0, :32, :32].any()
    assert not one[0, 0, 32:, 32:].any()
    # Sa2VA's two-step upsampling reads the same selected logits
    sa2va = logits_to_masks(variant(tiny_model, inference={"mask_components": "strongest"}), logits, pipeline="sa2va",
                            frame_size=(64, 64))
    assert ndimage.label(sa2va[0, 0], structure=np.ones((3, 3)))[1] == 1 and not sa2va[0, 0, 32:, 32:].any()
