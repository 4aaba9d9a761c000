"""Shapes, motion and rendering of the synthetic referring-video benchmark.

A scene is a handful of flat-colored shapes moving in straight lines over a
background and bouncing off the frame edges. Shapes are drawn back to front
(z-order) with :mod:`PIL.ImageDraw` without anti-aliasing, so every pixel
belongs to exactly one object or to the background, and the ground-truth mask
of an object is exactly the set of its *visible* pixels.

Units: positions and radii in pixels (x to the right, y downwards, pixel
centres at integer coordinates), velocities in pixels per frame, times in
frame indices (0-based). Source: project design for the synthetic benchmark
(issue 3, item 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from svac.data.synthetic.vocabulary import SHAPES
from svac.errors import ConfigError

#: Ratio of a star's inner to outer vertex radius.
STAR_INNER_RATIO = 0.5
#: Number of points of the star.
STAR_POINTS = 5
#: Angle (degrees) of the first vertex of triangle and star: pointing up in image coordinates.
APEX_ANGLE_DEG = -90.0

#: Late-event kinds (see :class:`LateEvent`).
EVENT_ENTERS = "enters"
EVENT_TURNS_COLOR = "turns_color"
EVENT_STARTS_MOVING = "starts_moving"
EVENT_KINDS: tuple[str, ...] = (EVENT_ENTERS, EVENT_TURNS_COLOR, EVENT_STARTS_MOVING)

_LABEL_DTYPE = np.uint8
#: Largest object id a mask can hold (palette PNG, 0 is background).
MAX_OBJECT_ID = int(np.iinfo(_LABEL_DTYPE).max)


def unit_polygon(shape: str) -> np.ndarray:
    """Vertices of ``shape`` centred on the origin and scaled to area ``pi``.

    Every shape of equal-area radius ``r`` then covers about ``pi * r**2``
    pixels, so the size words (small / large) mean the same area for every
    shape. Triangle and star point up (image coordinates, y downwards).

    Args:
        shape: one of :data:`~svac.data.synthetic.vocabulary.SHAPES` other than ``"circle"``.

    Returns:
        float64 array ``(N, 2)`` of (x, y) vertices, in drawing order.

    Raises:
        ConfigError: for ``"circle"`` (drawn as an ellipse) or an unknown shape.
    """
    if shape == "square":
        vertices = np.array([(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)])
    elif shape == "triangle":
        angles = np.deg2rad(APEX_ANGLE_DEG + np.arange(3) * 120.0)
        vertices = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif shape == "star":
        count = 2 * STAR_POINTS
        angles = np.deg2rad(APEX_ANGLE_DEG + np.arange(count) * 360.0 / count)
        radii = np.where(np.arange(count) % 2 == 0, 1.0, STAR_INNER_RATIO)
        vertices = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    else:
        raise ConfigError(f"no polygon for shape {shape!r}; polygons exist for square, triangle and star")
    x, y = vertices[:, 0], vertices[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    return vertices * math.sqrt(math.pi / area)


def shape_extent(shape: str, radius: float) -> tuple[float, float, float, float]:
    """Offsets ``(x_min, x_max, y_min, y_max)`` (pixels) of the drawn shape around its centre.

    Raises:
        ConfigError: for an unknown shape or a non-positive radius.
    """
    _check_shape(shape)
    if not radius > 0:
        raise ConfigError(f"shape radius must be positive, got {radius}")
    if shape == "circle":
        return (-radius, radius, -radius, radius)
    vertices = unit_polygon(shape) * radius
    return (
        float(vertices[:, 0].min()),
        float(vertices[:, 0].max()),
        float(vertices[:, 1].min()),
        float(vertices[:, 1].max()),
    )


def center_bounds(shape: str, radius: float, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Range ``(x_lo, x_hi, y_lo, y_hi)`` of centres keeping the whole shape inside a ``size`` = (W, H) frame.

    The drawn shape then stays within pixel columns ``0..W-1`` and rows ``0..H-1``.

    Raises:
        ConfigError: when the shape does not fit in the frame.
    """
    width, height = size
    x_min, x_max, y_min, y_max = shape_extent(shape, radius)
    bounds = (-x_min, (width - 1) - x_max, -y_min, (height - 1) - y_max)
    if bounds[0] >= bounds[1] or bounds[2] >= bounds[3]:
        raise ConfigError(f"a {shape} of radius {radius:.1f} px does not fit in a {width}x{height} frame")
    return bounds


def render_silhouette(shape: str, center: Sequence[float], radius: float, size: tuple[int, int]) -> np.ndarray:
    """Pixels covered by one shape drawn alone on a ``size`` = (W, H) canvas.

    Drawn with :class:`PIL.ImageDraw.ImageDraw` (no anti-aliasing); parts
    outside the canvas are cut off.

    Args:
        shape: a shape name from :data:`~svac.data.synthetic.vocabulary.SHAPES`.
        center: (x, y) in pixels.
        radius: equal-area radius in pixels (see :func:`unit_polygon`).
        size: canvas (W, H) in pixels.

    Returns:
        bool array ``(H, W)``.

    Raises:
        ConfigError: for an unknown shape.
    """
    _check_shape(shape)
    return _draw_silhouette(None if shape == "circle" else unit_polygon(shape), center, radius, size)


def _draw_silhouette(
    polygon: np.ndarray | None, center: Sequence[float], radius: float, size: tuple[int, int]
) -> np.ndarray:
    """Draw a circle (``polygon`` None) or a unit polygon scaled by ``radius`` at ``center``."""
    canvas = Image.new("1", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = float(center[0]), float(center[1])
    if polygon is None:
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=1)
    else:
        points = polygon * radius + np.array([cx, cy])
        draw.polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.asarray(canvas, dtype=bool)


def simulate_motion(
    *,
    start: Sequence[float],
    velocity: Sequence[float],
    bounds: tuple[float, float, float, float],
    num_frames: int,
    appear_frame: int = 0,
    motion_onset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Straight-line motion with elastic bounces off the frame edges.

    The object sits at ``start`` until ``max(appear_frame, motion_onset)``,
    then moves by its velocity every frame; when a step would carry the
    centre past ``bounds`` it is mirrored back inside and that velocity
    component flips sign (the speed is kept).

    Args:
        start: centre (x, y) in pixels at ``appear_frame``; must lie within ``bounds``.
        velocity: initial (vx, vy) in pixels per frame; each component must be
            smaller than the width of its allowed range.
        bounds: allowed centre range ``(x_lo, x_hi, y_lo, y_hi)`` from :func:`center_bounds`.
        num_frames: length of the video (frames).
        appear_frame: first frame the object is present.
        motion_onset: first frame the object moves (it is still before).

    Returns:
        ``(centers, velocities)``, both float64 ``(T, 2)``: the centre at each
        frame and the velocity applied from that frame to the next (zero
        while absent or still). Frames before ``appear_frame`` hold ``start``.

    Raises:
        ConfigError: when ``start`` is outside ``bounds`` or a velocity component is too large to bounce.
    """
    position = np.array(start, dtype=np.float64)
    current = np.array(velocity, dtype=np.float64)
    low = np.array([bounds[0], bounds[2]])
    high = np.array([bounds[1], bounds[3]])
    if np.any(position < low) or np.any(position > high):
        raise ConfigError(f"start {tuple(position)} lies outside the allowed centre range {bounds}")
    if np.any(np.abs(current) >= high - low):
        raise ConfigError(f"velocity {tuple(current)} px/frame is too large for the centre range {bounds}")
    centers = np.empty((num_frames, 2), dtype=np.float64)
    velocities = np.zeros((num_frames, 2), dtype=np.float64)
    moving_from = max(appear_frame, motion_onset)
    for frame in range(num_frames):
        centers[frame] = position
        if frame < moving_from:
            continue
        velocities[frame] = current
        position = position + current
        below, above = position < low, position > high
        position = np.where(below, 2 * low - position, position)
        position = np.where(above, 2 * high - position, position)
        current = np.where(below | above, -current, current)
    return centers, velocities


@dataclass(frozen=True)
class LateEvent:
    """A change that makes an object nameable only from frame ``onset`` on (the ``late`` subset).

    Attributes:
        kind: ``"enters"`` (the object appears at ``onset``), ``"turns_color"``
            (its color changes to ``value`` at ``onset``) or ``"starts_moving"``
            (it is still until ``onset``, then moves towards ``value``).
        onset: frame index (0-based) of the change.
        value: the new color name, the direction, or ``""`` for ``"enters"``.
    """

    kind: str
    onset: int
    value: str = ""


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One shape of a synthetic video, with its whole trajectory.

    Attributes:
        obj_id: mask value of the object (1..K; 0 is background), as in Ref-YouTube-VOS.
        shape: shape name (also the ``category`` in ``meta.json``).
        size_word: size class, ``"small"`` or ``"large"``.
        radius: equal-area radius in pixels (the shape covers about ``pi * radius**2`` pixels).
        z_order: drawing rank; a higher rank is drawn later, in front.
        appear_frame: first frame the object is present (0-based).
        centers: float64 ``(T, 2)`` centre (x, y) in pixels at every frame.
        velocities: float64 ``(T, 2)`` velocity (vx, vy) in pixels/frame applied
            from each frame to the next (zero while absent or still).
        colors: color name at every frame (length T).
        rgb: uint8 ``(T, 3)`` drawn color at every frame.
        event: the late event of the object, if any.
    """

    obj_id: int
    shape: str
    size_word: str
    radius: float
    z_order: int
    appear_frame: int
    centers: np.ndarray
    velocities: np.ndarray
    colors: tuple[str, ...]
    rgb: np.ndarray
    event: LateEvent | None = None

    @property
    def num_frames(self) -> int:
        """Length of the video (frames)."""
        return int(self.centers.shape[0])

    @property
    def present(self) -> np.ndarray:
        """bool ``(T,)``: frames where the object is in the scene (it may still be occluded)."""
        return np.arange(self.num_frames) >= self.appear_frame

    @property
    def speed(self) -> float:
        """Mean speed (pixels/frame) over the frames the object is present."""
        return float(np.linalg.norm(self.velocities[self.present], axis=1).mean())

    def silhouette(self, frame: int, size: tuple[int, int]) -> np.ndarray:
        """bool ``(H, W)``: pixels the object covers at ``frame`` when nothing occludes it (none when absent)."""
        if frame < self.appear_frame:
            return np.zeros((size[1], size[0]), dtype=bool)
        return render_silhouette(self.shape, self.centers[frame], self.radius, size)


def render_labels(objects: Sequence[SceneObject], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Label maps of the scene: which object is visible at each pixel.

    Objects are drawn in increasing ``z_order``; a later object overwrites the
    pixels of earlier ones, so each pixel holds the id of the front-most
    object covering it (0 = background).

    Args:
        objects: the scene's objects (all with the same number of frames T).
        size: frame (W, H) in pixels.

    Returns:
        ``(labels, areas)``: labels uint8 ``(T, H, W)`` of object ids, and
        int64 ``(T, K)`` full silhouette areas (pixels, occlusion ignored) in
        the order of ``objects``.

    Raises:
        ConfigError: when there are no objects, ids repeat or exceed the mask range,
            or the objects disagree on T.
    """
    if not objects:
        raise ConfigError("a scene needs at least one object")
    ids = [obj.obj_id for obj in objects]
    if len(set(ids)) != len(ids) or min(ids) < 1 or max(ids) > MAX_OBJECT_ID:
        raise ConfigError(f"object ids must be distinct and within 1..{MAX_OBJECT_ID}, got {ids}")
    lengths = {obj.num_frames for obj in objects}
    if len(lengths) != 1:
        raise ConfigError(f"objects disagree on the number of frames: {sorted(lengths)}")
    num_frames = lengths.pop()
    width, height = size
    labels = np.zeros((num_frames, height, width), dtype=_LABEL_DTYPE)
    areas = np.zeros((num_frames, len(objects)), dtype=np.int64)
    order = sorted(range(len(objects)), key=lambda index: objects[index].z_order)
    for obj in objects:
        _check_shape(obj.shape)
    polygons = [None if obj.shape == "circle" else unit_polygon(obj.shape) for obj in objects]
    for frame in range(num_frames):
        for index in order:
            obj = objects[index]
            if frame < obj.appear_frame:
                continue
            covered = _draw_silhouette(polygons[index], obj.centers[frame], obj.radius, size)
            labels[frame][covered] = obj.obj_id
            areas[frame, index] = int(covered.sum())
    return labels, areas


def compose_frames(background: np.ndarray, labels: np.ndarray, objects: Sequence[SceneObject]) -> np.ndarray:
    """Paint each visible object pixel with the object's color over the background.

    Args:
        background: uint8 ``(T, H, W, 3)``.
        labels: uint8 ``(T, H, W)`` from :func:`render_labels`.
        objects: the scene's objects.

    Returns:
        uint8 ``(T, H, W, 3)`` frames; a pixel with label k has exactly object k's color at that frame.

    Raises:
        ConfigError: when the shapes of ``background`` and ``labels`` disagree.
    """
    if background.shape[:3] != labels.shape or background.shape[3:] != (3,):
        raise ConfigError(f"background {background.shape} does not match labels {labels.shape} (+3 channels)")
    num_frames = labels.shape[0]
    lookup = np.zeros((num_frames, MAX_OBJECT_ID + 1, 3), dtype=np.uint8)
    for obj in objects:
        lookup[:, obj.obj_id] = obj.rgb
    frames = np.array(background, dtype=np.uint8, copy=True)
    for frame in range(num_frames):
        foreground = labels[frame] > 0
        frames[frame][foreground] = lookup[frame][labels[frame][foreground]]
    return frames


def _check_shape(shape: str) -> None:
    if shape not in SHAPES:
        raise ConfigError(f"unknown shape {shape!r}; expected one of {SHAPES}")
