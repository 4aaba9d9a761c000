"""svac.grounding.mask_upsampling: the windowed upsampling gives F.interpolate's bilinear masks (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from svac.grounding.mask_upsampling import source_indices, upsample_masks


def _reference(logits: torch.Tensor, size: tuple[int, int], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    up = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
    return (up > threshold).numpy(), up.numpy()


def _blobs(k: int, n: int, side: int, generator: torch.Generator) -> torch.Tensor:
    """Smooth logits with one object each (a cone around a random centre) and noise, like SAM-2's."""
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    centre = torch.rand(k, n, 2, generator=generator) * side
    radius = 1 + torch.rand(k, n, 1, 1, generator=generator) * side / 4
    dist = ((yy - centre[..., :1, None]) ** 2 + (xx - centre[..., 1:, None]) ** 2).sqrt()
    return 4 * (radius - dist) / radius + 0.5 * torch.randn(k, n, side, side, generator=generator)


@pytest.mark.parametrize("size", [(480, 854), (1080, 1920), (300, 200), (128, 128), (120, 160), (7, 5)])
@pytest.mark.parametrize("threshold", [0.0, 0.7])
def test_masks_are_f_interpolates_up_to_rounding_at_the_threshold(size, threshold):
    gen = torch.Generator().manual_seed(sum(size))
    for logits in (_blobs(2, 8, 32, gen), torch.randn(1, 3, 32, 32, generator=gen) * 3):
        ours = upsample_masks(logits, size, threshold)
        theirs, values = _reference(logits, size, threshold)
        assert ours.shape == theirs.shape and ours.dtype == bool
        differ = ours != theirs
        assert np.abs(values[differ] - threshold).max(initial=0.0) < 1e-5  # only at the threshold, by rounding
        assert differ.mean() < 1e-6
        assert theirs.any() and not theirs.all()  # the case means something


def test_pixels_far_from_any_object_stay_off_and_small_objects_are_found_anywhere(monkeypatch):
    from svac.grounding import mask_upsampling

    size = (480, 854)
    logits = torch.full((3, 2, 32, 32), -8.0)
    logits[0, 0, 0, 0] = 5.0      # a corner cell
    logits[0, 1, 31, 31] = 5.0    # the opposite corner
    logits[1, 0, 15:17, 20] = 3.0
    theirs, _ = _reference(logits, size, 0.0)
    with monkeypatch.context() as m:  # the window, not the whole frame, computes these
        m.setattr(mask_upsampling, "_whole", lambda *a: pytest.fail("whole frame upsampled"))
        masks = upsample_masks(logits[1:], size, 0.0)
    assert np.array_equal(masks, theirs[1:])
    masks = upsample_masks(logits, size, 0.0)  # corners far apart: one window each
    assert np.array_equal(masks, theirs)
    assert masks[0, 0, 0, 0] and masks[0, 1, -1, -1] and masks[1, 0].any()
    assert not masks[2].any() and not masks[1, 1].any()  # no cell above the threshold: nothing on
    assert not upsample_masks(torch.full((1, 4, 32, 32), -1.0), size, 0.0).any()


def test_source_indices_are_pytorchs_bilinear_sampling():
    first, second, weight = source_indices(32, 480)
    assert first.shape == second.shape == weight.shape == (480,)
    assert int(first.min()) == 0 and int(second.max()) == 31 and bool(((second - first) <= 1).all())
    # interpolating a ramp gives F.interpolate's resampled ramp
    ramp = torch.arange(32, dtype=torch.float32)
    ours = ramp[first] * (1 - weight) + ramp[second] * weight
    theirs = F.interpolate(ramp[None, None, :, None], size=(480, 1), mode="bilinear", align_corners=False)[0, 0, :, 0]
    assert torch.allclose(ours, theirs, atol=1e-5)
    with pytest.raises(ValueError, match="sizes"):
        source_indices(0, 4)


def test_bad_logits_are_refused():
    with pytest.raises(ValueError, match=r"\(K, n, h, w\)"):
        upsample_masks(torch.zeros(2, 32, 32), (480, 854), 0.0)


def test_cell_blocks_cover_every_cell_once_and_keep_far_cells_apart():
    from svac.grounding.mask_upsampling import cell_blocks

    on = np.zeros((32, 32), dtype=bool)
    on[0:3, 28:32] = True   # a patch in a corner
    on[1, 20] = True        # a stray cell in the same rows, other columns
    on[24:29, 14:17] = True  # the object
    blocks = cell_blocks(on)
    cover = np.zeros(on.shape, dtype=int)
    for r, c in blocks:
        cover[r, c] += on[r, c]
    assert np.array_equal(cover, on.astype(int))  # every cell in exactly one block
    assert len(blocks) == 3 and (slice(24, 29), slice(14, 17)) in blocks
    assert sum((r.stop - r.start) * (c.stop - c.start) for r, c in blocks) < 40  # not one box over the frame
    assert cell_blocks(np.zeros((4, 4), dtype=bool)) == []
