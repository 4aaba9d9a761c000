"""Scene rendering of the synthetic benchmark: geometry, bounces, occlusion, exact masks, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from svac.data.synthetic.generator import (
    MIN_VISIBLE_FRACTION,
    MIN_VISIBLE_FRAME_SHARE,
    VideoSpec,
    generate_video,
)
from svac.data.synthetic.scene import (
    center_bounds,
    render_silhouette,
    shape_extent,
    simulate_motion,
    unit_polygon,
)
from svac.data.synthetic.vocabulary import BASE_COLORS, SHAPES
from svac.errors import ConfigError

SIZE = (160, 120)
SMALL_SPEC = VideoSpec(num_frames=(12, 20), size=SIZE)


def _videos(subset: str, count: int, seed: int = 0):
    spec = VideoSpec(num_frames=(12, 20), size=SIZE, subset=subset)
    return [generate_video(np.random.default_rng([seed, index]), spec) for index in range(count)]


@pytest.mark.parametrize("shape", ["square", "triangle", "star"])
def test_unit_polygons_have_area_pi(shape):
    vertices = unit_polygon(shape)
    x, y = vertices[:, 0], vertices[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert area == pytest.approx(math.pi)


@pytest.mark.parametrize("shape", SHAPES)
def test_rendered_area_matches_equal_area_radius(shape):
    radius = 20.0
    pixels = render_silhouette(shape, (80.0, 60.0), radius, SIZE).sum()
    assert abs(pixels - math.pi * radius**2) / (math.pi * radius**2) < 0.12


def test_shapes_look_different():
    masks = {shape: render_silhouette(shape, (80.0, 60.0), 20.0, SIZE) for shape in SHAPES}
    for first in SHAPES:
        for second in SHAPES:
            if first < second:
                union = (masks[first] | masks[second]).sum()
                assert (masks[first] & masks[second]).sum() / union < 0.9, (first, second)


def test_unknown_shape_and_bad_radius_are_refused():
    with pytest.raises(ConfigError, match="hexagon"):
        render_silhouette("hexagon", (10, 10), 5, SIZE)
    with pytest.raises(ConfigError, match="positive"):
        shape_extent("circle", 0.0)
    with pytest.raises(ConfigError, match="does not fit"):
        center_bounds("star", 100.0, SIZE)


def test_bounce_keeps_centre_in_range_and_keeps_speed():
    bounds = center_bounds("star", 15.0, SIZE)
    velocity = (9.3, -7.1)
    centers, velocities = simulate_motion(start=(80.0, 60.0), velocity=velocity, bounds=bounds, num_frames=200)
    assert np.all(centers[:, 0] >= bounds[0]) and np.all(centers[:, 0] <= bounds[1])
    assert np.all(centers[:, 1] >= bounds[2]) and np.all(centers[:, 1] <= bounds[3])
    np.testing.assert_allclose(np.abs(velocities), np.broadcast_to(np.abs(velocity), velocities.shape))
    flips = np.sum(np.sign(velocities[1:]) != np.sign(velocities[:-1]), axis=0)
    assert flips[0] > 5 and flips[1] > 5
    # between bounces the centre moves by exactly the velocity
    steady = np.all(np.sign(velocities[1:]) == np.sign(velocities[:-1]), axis=1)
    np.testing.assert_allclose((centers[1:] - centers[:-1])[steady], velocities[:-1][steady], atol=1e-9)


def test_motion_waits_for_appearance_and_onset():
    bounds = center_bounds("circle", 10.0, SIZE)
    centers, velocities = simulate_motion(
        start=(50.0, 50.0), velocity=(2.0, 0.0), bounds=bounds, num_frames=20, appear_frame=3, motion_onset=8
    )
    assert np.all(velocities[:8] == 0) and np.all(velocities[8:, 0] != 0)
    assert np.all(centers[:9] == (50.0, 50.0)) and centers[9, 0] == 52.0


def test_motion_refuses_too_fast_or_outside_start():
    bounds = center_bounds("circle", 10.0, SIZE)
    with pytest.raises(ConfigError, match="too large"):
        simulate_motion(start=(50.0, 50.0), velocity=(500.0, 0.0), bounds=bounds, num_frames=5)
    with pytest.raises(ConfigError, match="outside"):
        simulate_motion(start=(1.0, 50.0), velocity=(1.0, 0.0), bounds=bounds, num_frames=5)


def test_generated_shapes_never_leave_the_frame():
    pad = 40
    bounced = 0
    for video in _videos("fast", 6):
        width, height = video.size
        for obj in video.objects:
            bounced += int(np.any(np.sign(obj.velocities[1:]) * np.sign(obj.velocities[:-1]) < 0))
            for frame in np.flatnonzero(obj.present):
                padded = render_silhouette(
                    obj.shape, obj.centers[frame] + pad, obj.radius, (width + 2 * pad, height + 2 * pad)
                )
                inside = padded[pad : pad + height, pad : pad + width].sum()
                assert padded.sum() == inside, (obj.obj_id, frame)
    assert bounced > 0


def test_masks_are_exactly_the_visible_pixels():
    occluded_pixels = 0
    for video in _videos("standard", 8) + _videos("fast", 4, seed=1):
        width, height = video.size
        by_depth = sorted(video.objects, key=lambda obj: obj.z_order)
        for frame in range(video.num_frames):
            silhouettes = np.stack([obj.silhouette(frame, (width, height)) for obj in by_depth])
            covered = silhouettes.sum(axis=0)
            occluded_pixels += int((covered > 1).sum())
            expected = np.zeros((height, width), dtype=np.uint8)
            for obj, silhouette in zip(by_depth, silhouettes):
                in_front = [other.z_order > obj.z_order for other in by_depth]
                front = silhouettes[np.array(in_front)].any(axis=0) if any(in_front) else np.zeros_like(silhouette)
                visible = silhouette & ~front
                assert not np.any(expected[visible]), "a pixel claimed by two objects"
                expected[visible] = obj.obj_id
            np.testing.assert_array_equal(video.masks[frame], expected)
            for obj in video.objects:
                pixels = video.frames[frame][video.masks[frame] == obj.obj_id]
                assert np.all(pixels == obj.rgb[frame])
    assert occluded_pixels > 0, "no occlusion happened; the test would prove nothing"


def test_object_records_are_consistent():
    for video in _videos("standard", 8):
        palette = BASE_COLORS
        assert 2 <= len(video.objects) <= 4
        assert [obj.obj_id for obj in video.objects] == list(range(1, len(video.objects) + 1))
        assert sorted(obj.z_order for obj in video.objects) == list(range(len(video.objects)))
        assert 12 <= video.num_frames <= 20
        assert video.frames.shape == (video.num_frames, SIZE[1], SIZE[0], 3) and video.frames.dtype == np.uint8
        assert video.masks.shape == video.frames.shape[:3] and video.masks.dtype == np.uint8
        for obj in video.objects:
            assert obj.shape in SHAPES
            assert all(tuple(obj.rgb[t]) == palette[obj.colors[t]] for t in range(video.num_frames))
            assert not video.object_mask(obj.obj_id)[: obj.appear_frame].any()
            assert video.object_mask(obj.obj_id)[obj.appear_frame].any()


def test_objects_stay_visible_enough():
    for video in _videos("standard", 8) + _videos("late", 6):
        width, height = video.size
        for obj in video.objects:
            frames = np.flatnonzero(obj.present)
            shares = [
                (video.masks[t] == obj.obj_id).sum() / obj.silhouette(int(t), (width, height)).sum() for t in frames
            ]
            assert np.mean(np.array(shares) >= MIN_VISIBLE_FRACTION) >= MIN_VISIBLE_FRAME_SHARE


def test_generation_is_deterministic_by_seed():
    first = generate_video(np.random.default_rng(5), SMALL_SPEC)
    again = generate_video(np.random.default_rng(5), SMALL_SPEC)
    other = generate_video(np.random.default_rng(6), SMALL_SPEC)
    np.testing.assert_array_equal(first.frames, again.frames)
    np.testing.assert_array_equal(first.masks, again.masks)
    assert [e.text for e in first.expressions] == [e.text for e in again.expressions]
    assert first.frames.shape != other.frames.shape or not np.array_equal(first.frames, other.frames)


def test_generator_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="Generator"):
        generate_video(np.random.RandomState(0), SMALL_SPEC)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="num_frames"):
        VideoSpec(num_frames=(5, 10))
    with pytest.raises(ConfigError, match="num_frames"):
        VideoSpec(num_frames=(30, 20))
    with pytest.raises(ConfigError, match="size"):
        VideoSpec(size=(32, 32))
    with pytest.raises(ConfigError, match="size"):
        VideoSpec(size=(160.0, 120))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="subset"):
        VideoSpec(subset="slow")
    with pytest.raises(ConfigError, match="domain"):
        VideoSpec(domain="night")
    with pytest.raises(ConfigError, match="backgrounds"):
        VideoSpec(domain="real_backgrounds")
    with pytest.raises(ConfigError, match="too small for the fast subset"):
        VideoSpec(size=(1000, 64), subset="fast")
