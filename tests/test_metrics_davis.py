"""Hand-computed DAVIS J and F, boundary maps, disk, radius and the statistics."""

from __future__ import annotations

import numpy as np
import pytest

from svac.errors import SVACError
from svac.metrics.davis import (
    boundary_map,
    boundary_radius,
    contour_accuracy,
    disk_structure,
    region_similarity,
)
from svac.metrics.stats import decay_bin_edges, mean_recall_decay
from svac.metrics.validation import MetricInputError

SMALL = 8  # an 8x8 frame: ceil(0.008 * sqrt(128)) = 1 px tolerance (a 3x3 cross)


def masks(size: int = SMALL, *pixels: tuple[int, int]) -> np.ndarray:
    m = np.zeros((size, size), dtype=bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def test_boundary_radius_follows_the_diagonal() -> None:
    assert boundary_radius(480, 854) == 8  # ceil(7.837)
    assert boundary_radius(100, 100) == 2  # ceil(1.131)
    assert boundary_radius(SMALL, SMALL) == 1  # ceil(0.0905)
    with pytest.raises(MetricInputError):
        boundary_radius(0, 5)


def test_disk_matches_the_skimage_definition() -> None:
    assert disk_structure(0).tolist() == [[True]]
    assert disk_structure(1).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert int(disk_structure(2).sum()) == 13
    assert int(disk_structure(8).sum()) == 197  # lattice points with x² + y² <= 64
    d = disk_structure(8)
    assert d.shape == (17, 17) and d[0, 8] and not d[0, 7] and d[1, 5] and not d[1, 4]


def test_one_pixel_boundary_is_the_2x2_block_towards_the_origin() -> None:
    b = boundary_map(masks(SMALL, (2, 2)))
    assert sorted(zip(*np.nonzero(b))) == [(1, 1), (1, 2), (2, 1), (2, 2)]


def test_full_frame_mask_has_no_boundary() -> None:
    assert not boundary_map(np.ones((5, 7), dtype=bool)).any()
    assert not boundary_map(np.zeros((5, 7), dtype=bool)).any()


def test_last_row_and_column_rules() -> None:
    last_row = np.zeros((4, 5), dtype=bool)
    last_row[3] = True
    b = boundary_map(last_row)
    assert b[2].all() and not b[3].any() and not b[:2].any()
    last_col = np.zeros((4, 5), dtype=bool)
    last_col[:, 4] = True
    b = boundary_map(last_col)
    assert b[:, 3].all() and not b[:, 4].any() and not b[:, :3].any()


def test_boundary_map_works_on_stacks() -> None:
    stack = np.stack([masks(SMALL, (2, 2)), masks(SMALL)])
    b = boundary_map(stack)
    assert b.shape == stack.shape and int(b[0].sum()) == 4 and not b[1].any()


def test_j_hand_computed() -> None:
    gt = np.zeros((SMALL, SMALL), dtype=bool)
    gt[0:4, 0:4] = True  # 16 px
    pred = np.zeros_like(gt)
    pred[0:4, 2:6] = True  # 16 px, 8 shared
    assert float(region_similarity(pred, gt)) == 8 / 24
    assert float(region_similarity(gt, gt)) == 1.0


def test_j_edge_cases() -> None:
    empty = masks()
    one = masks(SMALL, (3, 3))
    full = np.ones((SMALL, SMALL), dtype=bool)
    assert float(region_similarity(empty, empty)) == 1.0
    assert float(region_similarity(one, empty)) == 0.0
    assert float(region_similarity(empty, one)) == 0.0
    assert float(region_similarity(one, one)) == 1.0
    assert float(region_similarity(one, full)) == 1 / 64


def test_f_partial_match_hand_computed() -> None:
    # boundaries {(1,1),(1,2),(2,1),(2,2)} and {(1,3),(1,4),(2,3),(2,4)}; radius 1:
    # two pixels of each lie next to the other's -> P = R = 1/2 -> F = 1/2.
    gt = masks(SMALL, (2, 2))
    pred = masks(SMALL, (2, 4))
    assert float(contour_accuracy(pred, gt)) == 0.5
    assert float(region_similarity(pred, gt)) == 0.0
    # one column closer: every boundary pixel is within 1 px -> F = 1 although J < 1
    near = masks(SMALL, (2, 3))
    assert float(contour_accuracy(near, gt)) == 1.0


def test_f_precision_and_recall_differ() -> None:
    gt = masks(SMALL, (2, 2))  # boundary of 4 px
    pred = masks(SMALL, (2, 2), (6, 6))  # 8 px of boundary, 4 matched -> P = 1/2, R = 1
    assert float(contour_accuracy(pred, gt)) == pytest.approx(2 * 0.5 * 1.0 / 1.5, abs=0)


def test_f_empty_boundary_rules() -> None:
    empty = masks()
    one = masks(SMALL, (3, 3))
    full = np.ones((SMALL, SMALL), dtype=bool)
    assert float(contour_accuracy(empty, empty)) == 1.0  # P = R = 1
    assert float(contour_accuracy(empty, one)) == 0.0  # P = 1, R = 0
    assert float(contour_accuracy(one, empty)) == 0.0  # P = 0, R = 1
    assert float(contour_accuracy(one, one)) == 1.0
    # a full-frame mask has no boundary: against an empty mask both boundaries are empty
    assert float(contour_accuracy(full, full)) == 1.0
    assert float(contour_accuracy(empty, full)) == 1.0
    assert float(region_similarity(empty, full)) == 0.0
    assert float(contour_accuracy(one, full)) == 0.0


def test_void_pixels_are_excluded() -> None:
    gt = np.zeros((SMALL, SMALL), dtype=bool)
    gt[0:3, 0:3] = True
    void = np.zeros_like(gt)
    void[5:8, 5:8] = True
    pred = gt | void
    assert float(region_similarity(pred, gt)) == 9 / 18
    assert float(region_similarity(pred, gt, void)) == 1.0
    assert float(contour_accuracy(pred, gt)) < 1.0
    assert float(contour_accuracy(pred, gt, void)) == 1.0


def test_stacks_score_each_frame() -> None:
    gt = np.stack([masks(SMALL, (2, 2)), masks(), masks(SMALL, (2, 2))])
    pred = np.stack([masks(SMALL, (2, 4)), masks(), masks()])
    assert region_similarity(pred, gt).tolist() == [0.0, 1.0, 0.0]
    assert contour_accuracy(pred, gt).tolist() == [0.5, 1.0, 0.0]


def test_different_sizes_raise() -> None:
    with pytest.raises(MetricInputError, match="sizes differ"):
        region_similarity(np.zeros((4, 5), dtype=bool), np.zeros((5, 4), dtype=bool))
    with pytest.raises(MetricInputError, match="sizes differ"):
        contour_accuracy(np.zeros((2, 4, 5), dtype=bool), np.zeros((2, 4, 6), dtype=bool))
    with pytest.raises(MetricInputError, match="sizes differ"):
        region_similarity(masks(), masks(), np.zeros((3, 3), dtype=bool))


def test_non_bool_masks_raise() -> None:
    with pytest.raises(SVACError, match="dtype bool"):
        region_similarity(np.zeros((4, 4), dtype=np.uint8), masks(4))
    with pytest.raises(MetricInputError, match="dimensions"):
        contour_accuracy(np.zeros(4, dtype=bool), np.zeros(4, dtype=bool))


def test_decay_bins() -> None:
    assert decay_bin_edges(5).tolist() == [0, 1, 2, 3, 4]
    # linspace(1, 4, 5) = [1, 1.75, 2.5, 3.25, 4]; 2.5 rounds up (not to even) -> 3
    assert decay_bin_edges(4).tolist() == [0, 1, 2, 2, 3]
    assert decay_bin_edges(1).tolist() == [0, 0, 0, 0, 0]
    assert decay_bin_edges(300)[-1] == 299  # no uint8 wrap-around
    with pytest.raises(MetricInputError):
        decay_bin_edges(0)


def test_mean_recall_decay_hand_computed() -> None:
    stats = mean_recall_decay(np.array([1.0, 0.8, 0.5, 0.4, 0.2]))
    assert stats.mean == pytest.approx(2.9 / 5, abs=1e-15)
    assert stats.recall == 2 / 5  # 0.5 itself is not above 0.5
    # bins [0:2], [1:3], [2:4], [3:5] -> mean(1, .8) - mean(.4, .2)
    assert stats.decay == pytest.approx(0.9 - 0.3, abs=1e-15)
    single = mean_recall_decay(np.array([0.7]))
    assert (single.mean, single.recall, single.decay) == (0.7, 1.0, 0.0)


def test_statistics_reject_bad_values() -> None:
    with pytest.raises(MetricInputError):
        mean_recall_decay(np.array([]))
    with pytest.raises(MetricInputError, match="NaN"):
        mean_recall_decay(np.array([0.5, np.nan]))


def brute_force_f(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """F from explicit pairwise distances between boundary pixels (no dilation)."""
    pb = np.argwhere(boundary_map(pred))
    gb = np.argwhere(boundary_map(gt))
    if len(pb) == 0 or len(gb) == 0:
        precision = 1.0 if len(pb) == 0 else 0.0
        recall = 1.0 if len(gb) == 0 else 0.0
    else:
        d2 = ((pb[:, None, :] - gb[None, :, :]) ** 2).sum(axis=2)
        precision = float(np.count_nonzero(d2.min(axis=1) <= radius**2)) / len(pb)
        recall = float(np.count_nonzero(d2.min(axis=0) <= radius**2)) / len(gb)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_f_equals_pairwise_distance_definition_on_random_masks() -> None:
    rng = np.random.default_rng(seed=7)
    height, width, tolerance = 30, 40, 0.1  # radius ceil(0.1 * 50) = 5
    radius = boundary_radius(height, width, tolerance)
    assert radius == 5
    for _ in range(20):
        gt = rng.random((height, width)) < rng.uniform(0.02, 0.6)
        pred = rng.random((height, width)) < rng.uniform(0.0, 0.3)
        assert float(contour_accuracy(pred, gt, tolerance=tolerance)) == brute_force_f(pred, gt, radius)
        # swapping the masks swaps precision and recall: F is symmetric
        assert float(contour_accuracy(gt, pred, tolerance=tolerance)) == brute_force_f(gt, pred, radius)
