"""In-memory generator of synthetic referring videos (no disk needed).

:func:`generate_video` draws one video from a :class:`VideoSpec` with an
explicitly passed :class:`numpy.random.Generator`: 2–4 flat-colored shapes
(circle, square, triangle, star) of two size classes move in straight lines
and bounce off the frame edges over a plain / noisy / gradient (or real)
background, may enter after the first frame and occlude each other; each
expression names exactly one object unambiguously (checked with
:mod:`svac.data.synthetic.grammar`).

Subsets (``VideoSpec.subset``):

* ``standard`` — speeds of :data:`STANDARD_SPEED_RANGE`; some objects enter
  later; with probability :data:`DUPLICATE_PROBABILITY` two objects share shape
  and color, so only motion, position, time or speed tells them apart. Every
  object gets 1–3 expressions.
* ``fast`` — every object moves at least ``FAST_DISPLACEMENT_FRACTION * max(W, H)
  / FAST_WINDOW_FRAMES`` pixels per frame, so it travels at least a quarter of
  the frame along its (bouncing) path in any 5 consecutive frames. Every
  object gets 1–3 expressions.
* ``static`` — scenes drawn as in ``standard``, but every expression names its object
  with static families only (:data:`~svac.data.synthetic.vocabulary.STATIC_FAMILIES`:
  color, shape, size, position), so one frame suffices to tell which object is meant
  (positions are judged over the frames the object is present, as everywhere). Every
  object gets 1–3 expressions; scenes where an object has no static description are drawn again.
* ``late`` — a *target* and a *decoy* share shape, size and color; from frame
  ``onset >= LATE_ONSET_MIN`` (6) on, the target enters the scene, turns
  another color, or starts moving in a direction (decoy: still throughout).
  Only expressions that pass :func:`~svac.data.synthetic.grammar.is_late_description`
  are kept: on the video cut after its first 5 frames, neither the expression
  nor its static words identify the object. The target always gets 1–3 such
  expressions, the decoy gets them when any exist ("the square that stays
  blue"), other objects get none.

Units: pixels, pixels per frame, 0-based frame indices. Source: project
design for the synthetic benchmark (issue 3, item 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from svac.data.synthetic.backgrounds import SYNTHETIC_BACKGROUNDS, RealBackgrounds, synthetic_background
from svac.data.synthetic.grammar import (
    LATE_OBSERVED_FRAMES,
    Atom,
    is_late_description,
    is_static,
    minimal_descriptions,
    observe,
    realize,
    static_description,
)
from svac.data.synthetic.scene import (
    EVENT_ENTERS,
    EVENT_KINDS,
    EVENT_STARTS_MOVING,
    EVENT_TURNS_COLOR,
    LateEvent,
    SceneObject,
    center_bounds,
    compose_frames,
    render_labels,
    shape_extent,
    simulate_motion,
)
from svac.data.synthetic.vocabulary import (
    DIRECTION_VECTORS,
    DIRECTIONS,
    DOMAIN_BASE,
    DOMAIN_COLORS,
    DOMAIN_REAL_BACKGROUNDS,
    DOMAINS,
    SHAPES,
    SIZE_WORDS,
    SUBSET_FAST,
    SUBSET_LATE,
    SUBSET_STANDARD,
    SUBSET_STATIC,
    SUBSETS,
)
from svac.errors import ConfigError, SVACError

#: Allowed range of video lengths (frames).
MIN_VIDEO_FRAMES = 12
MAX_VIDEO_FRAMES = 512
#: Allowed range of frame sides (pixels).
MIN_FRAME_SIDE = 64
MAX_FRAME_SIDE = 1024
#: Allowed range of objects per video.
MIN_OBJECTS = 2
MAX_OBJECTS = 8

#: Equal-area radius of each size class, as a fraction of min(W, H).
SIZE_RADIUS_RANGES: dict[str, tuple[float, float]] = {"small": (0.065, 0.08), "large": (0.11, 0.13)}
#: Speed range of the ``standard`` and ``late`` subsets, as a fraction of min(W, H) per frame.
STANDARD_SPEED_RANGE = (0.006, 0.025)
#: ``fast``: an object must travel this fraction of max(W, H) ...
FAST_DISPLACEMENT_FRACTION = 0.25
#: ... within this many frames.
FAST_WINDOW_FRAMES = 5
#: ``fast``: speeds are drawn from [minimum, minimum * FAST_SPEED_SPREAD].
FAST_SPEED_SPREAD = 1.3
#: Motion kinds and their probabilities per subset.
MOTION_STILL_KIND = "still"
MOTION_HORIZONTAL = "horizontal"
MOTION_VERTICAL = "vertical"
MOTION_DIAGONAL = "diagonal"
MOTION_KINDS: tuple[str, ...] = (MOTION_STILL_KIND, MOTION_HORIZONTAL, MOTION_VERTICAL, MOTION_DIAGONAL)
STANDARD_MOTION_PROBABILITIES = (0.15, 0.3, 0.25, 0.3)
FAST_MOTION_PROBABILITIES = (0.0, 0.35, 0.3, 0.35)
#: Angle from the horizontal of diagonal motion (degrees).
DIAGONAL_ANGLE_RANGE_DEG = (30.0, 60.0)
#: Probability that two objects of a ``standard``/``fast`` video share shape and color ...
DUPLICATE_PROBABILITY = 0.5
#: ... and, given that, also their size class.
SAME_SIZE_PROBABILITY = 0.5
#: Probability that an object (other than the first drawn) enters after frame 0 ...
LATE_ENTRY_PROBABILITY = 0.2
#: ... at a frame in [APPEAR_LATER_MIN, T // 2].
APPEAR_LATER_MIN = 4
#: ``late``: earliest frame of the target's event (after the LATE_OBSERVED_FRAMES frames a model is assumed to see).
LATE_ONSET_MIN = LATE_OBSERVED_FRAMES + 1
#: ``late``: frames the video goes on after the event, at least.
MIN_FRAMES_AFTER_EVENT = 6
#: An object must show at least this fraction of its area ...
MIN_VISIBLE_FRACTION = 0.3
#: ... on at least this share of the frames it is present.
MIN_VISIBLE_FRAME_SHARE = 0.8
#: Visible fraction an object needs when it enters and when its event happens.
MIN_VISIBLE_AT_CHANGE = 0.5
#: Expressions per described object: 1 .. this.
MAX_EXPRESSIONS_PER_OBJECT = 3
#: Scenes drawn before giving up on a spec.
MAX_SCENE_ATTEMPTS = 200


@dataclass(frozen=True)
class VideoSpec:
    """What kind of video :func:`generate_video` draws.

    Attributes:
        num_frames: inclusive range (min, max) of the video length T in frames.
        size: frame (W, H) in pixels.
        subset: ``"standard"``, ``"fast"``, ``"late"`` or ``"static"`` (see the module docstring).
        domain: ``"base"``, ``"novel_colors"`` or ``"real_backgrounds"``.
        num_objects: inclusive range (min, max) of objects per video.
        backgrounds: real frames, required by (and only allowed with) ``domain="real_backgrounds"``.

    Raises:
        ConfigError: for any value out of range or of the wrong type, for a frame
            too small for the ``fast`` speeds, or a domain/backgrounds mismatch.
    """

    num_frames: tuple[int, int] = (16, 64)
    size: tuple[int, int] = (160, 120)
    subset: str = SUBSET_STANDARD
    domain: str = DOMAIN_BASE
    num_objects: tuple[int, int] = (2, 4)
    backgrounds: RealBackgrounds | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        frames = _int_range("num_frames", self.num_frames, MIN_VIDEO_FRAMES, MAX_VIDEO_FRAMES)
        object.__setattr__(self, "num_frames", frames)
        object.__setattr__(self, "num_objects", _int_range("num_objects", self.num_objects, MIN_OBJECTS, MAX_OBJECTS))
        size = _int_pair("size", self.size)
        if not all(MIN_FRAME_SIDE <= side <= MAX_FRAME_SIDE for side in size):
            raise ConfigError(f"size (W, H) must have sides in [{MIN_FRAME_SIDE}, {MAX_FRAME_SIDE}] px, got {size}")
        object.__setattr__(self, "size", size)
        if self.subset not in SUBSETS:
            raise ConfigError(f"unknown subset {self.subset!r}; expected one of {SUBSETS}")
        if self.domain not in DOMAINS:
            raise ConfigError(f"unknown domain {self.domain!r}; expected one of {DOMAINS}")
        if self.domain == DOMAIN_REAL_BACKGROUNDS and self.backgrounds is None:
            raise ConfigError("domain 'real_backgrounds' needs backgrounds= (a folder of real frames)")
        if self.domain != DOMAIN_REAL_BACKGROUNDS and self.backgrounds is not None:
            raise ConfigError(f"backgrounds= is used only by domain 'real_backgrounds', not {self.domain!r}")
        if self.backgrounds is not None and not isinstance(self.backgrounds, RealBackgrounds):
            raise ConfigError(f"backgrounds must be a RealBackgrounds, got {type(self.backgrounds).__name__}")
        if self.subset == SUBSET_FAST:
            fastest = fast_speed_range(size)[1]
            room = min(_smallest_center_range(size))
            if fastest >= room:
                raise ConfigError(
                    f"frame {size[0]}x{size[1]} is too small for the fast subset: speeds up to "
                    f"{fastest:.1f} px/frame need more than {room:.1f} px of room to bounce"
                )


def fast_speed_range(size: tuple[int, int]) -> tuple[float, float]:
    """Speed range (pixels/frame) of the ``fast`` subset for a frame ``size`` = (W, H).

    The minimum moves an object ``FAST_DISPLACEMENT_FRACTION * max(W, H)`` pixels
    along its path in ``FAST_WINDOW_FRAMES`` frames.
    """
    minimum = FAST_DISPLACEMENT_FRACTION * max(size) / FAST_WINDOW_FRAMES
    return minimum, minimum * FAST_SPEED_SPREAD


@dataclass(frozen=True)
class SyntheticExpression:
    """A referring expression naming exactly one object of a synthetic video.

    Attributes:
        text: the expression, e.g. ``"the red circle moving left"``.
        obj_id: id of the object it refers to (mask value).
        atoms: the grammar attributes it names.
        subset: the subset whose guarantee it satisfies (``"standard"``, ``"fast"``, ``"late"``).
        late_onset: for ``late`` expressions, the frame from which the named
            change can be seen (the target's event onset); otherwise None.
        answer_phrase: for an expression naming a family one frame cannot show (speed, motion,
            time ...), the target named by what one frame shows
            (:func:`~svac.data.synthetic.grammar.static_description`, canonical text, e.g. "the red
            square"); None for static expressions and when no static description identifies the target.
    """

    text: str
    obj_id: int
    atoms: tuple[Atom, ...]
    subset: str
    late_onset: int | None = None
    answer_phrase: str | None = None

    @property
    def families(self) -> tuple[str, ...]:
        """The attribute families named, in the order of :attr:`atoms`."""
        return tuple(atom.family for atom in self.atoms)


@dataclass(frozen=True, eq=False)
class SyntheticVideo:
    """One generated video with its masks, objects and expressions.

    Attributes:
        frames: uint8 ``(T, H, W, 3)`` RGB frames.
        masks: uint8 ``(T, H, W)`` object ids of the visible pixels (0 = background).
        objects: the objects, ordered by id (1..K).
        expressions: every expression, each naming one object.
        subset: the video's subset.
        domain: the video's domain.
        background: ``"plain"``, ``"noisy"``, ``"gradient"`` or ``"real:<sequence>"``.
    """

    frames: np.ndarray
    masks: np.ndarray
    objects: tuple[SceneObject, ...]
    expressions: tuple[SyntheticExpression, ...]
    subset: str
    domain: str
    background: str

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """Frame (W, H) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def object_mask(self, obj_id: int) -> np.ndarray:
        """bool ``(T, H, W)``: the visible pixels of object ``obj_id``.

        Raises:
            ConfigError: when the video has no such object.
        """
        if obj_id not in {obj.obj_id for obj in self.objects}:
            raise ConfigError(f"no object {obj_id} in this video (ids {[obj.obj_id for obj in self.objects]})")
        return self.masks == obj_id


def generate_video(rng: np.random.Generator, spec: VideoSpec | None = None) -> SyntheticVideo:
    """Draw one synthetic referring video.

    Deterministic: the same generator state and spec give identical arrays
    and texts. Scenes that break a rule (an object hidden too much, an object
    that cannot be named uniquely, no ``late`` expression for the target) are
    drawn again from the same generator.

    Args:
        rng: the only source of randomness (e.g. ``numpy.random.default_rng(seed)``).
        spec: what to draw (default :class:`VideoSpec()`).

    Returns:
        a :class:`SyntheticVideo`.

    Raises:
        ConfigError: when ``rng`` is not a :class:`numpy.random.Generator` or ``spec`` not a :class:`VideoSpec`.
        SVACError: when no valid scene is found in :data:`MAX_SCENE_ATTEMPTS` tries.
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    spec = VideoSpec() if spec is None else spec
    if not isinstance(spec, VideoSpec):
        raise ConfigError(f"spec must be a VideoSpec, got {type(spec).__name__}")
    num_frames = int(rng.integers(spec.num_frames[0], spec.num_frames[1] + 1))
    palette = DOMAIN_COLORS[spec.domain]
    for _ in range(MAX_SCENE_ATTEMPTS):
        if spec.subset == SUBSET_LATE:
            plans = _plan_late_scene(rng, spec, num_frames, tuple(palette))
        else:
            plans = _plan_free_scene(rng, spec, num_frames, tuple(palette))
        objects, plan_ids = _build_objects(rng, plans, num_frames, spec.size, palette)
        labels, areas = render_labels(objects, spec.size)
        if not _visible_enough(objects, labels, areas):
            continue
        expressions = _describe(rng, objects, plan_ids, spec)
        if expressions is None:
            continue
        background, background_name = _background(rng, spec, num_frames)
        return SyntheticVideo(
            frames=compose_frames(background, labels, objects),
            masks=labels,
            objects=tuple(objects),
            expressions=expressions,
            subset=spec.subset,
            domain=spec.domain,
            background=background_name,
        )
    raise SVACError(f"no valid synthetic scene found in {MAX_SCENE_ATTEMPTS} attempts for {spec}")


@dataclass
class _Plan:
    """Mutable draft of one object before its trajectory is simulated."""

    shape: str
    size_word: str
    radius: float
    color: str
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    appear: int = 0
    motion_onset: int = 0
    event: LateEvent | None = None


def _random_plan(rng: np.random.Generator, colors: Sequence[str], scale: float) -> _Plan:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    size_word = SIZE_WORDS[int(rng.integers(len(SIZE_WORDS)))]
    color = colors[int(rng.integers(len(colors)))]
    return _Plan(shape=shape, size_word=size_word, radius=_radius(rng, size_word, scale), color=color)


def _radius(rng: np.random.Generator, size_word: str, scale: float) -> float:
    low, high = SIZE_RADIUS_RANGES[size_word]
    return float(rng.uniform(low, high) * scale)


def _sample_velocity(
    rng: np.random.Generator, probabilities: Sequence[float], speed_range: tuple[float, float]
) -> np.ndarray:
    kind = MOTION_KINDS[int(rng.choice(len(MOTION_KINDS), p=probabilities))]
    speed = float(rng.uniform(*speed_range))
    signs = np.where(rng.random(2) < 0.5, -1.0, 1.0)
    if kind == MOTION_STILL_KIND:
        return np.zeros(2)
    if kind == MOTION_HORIZONTAL:
        return np.array([signs[0] * speed, 0.0])
    if kind == MOTION_VERTICAL:
        return np.array([0.0, signs[1] * speed])
    angle = math.radians(rng.uniform(*DIAGONAL_ANGLE_RANGE_DEG))
    return signs * speed * np.array([math.cos(angle), math.sin(angle)])


def _standard_speed_range(size: tuple[int, int]) -> tuple[float, float]:
    scale = min(size)
    return STANDARD_SPEED_RANGE[0] * scale, STANDARD_SPEED_RANGE[1] * scale


def _plan_free_scene(rng: np.random.Generator, spec: VideoSpec, num_frames: int, colors: Sequence[str]) -> list[_Plan]:
    """Objects of a ``standard`` or ``fast`` video."""
    scale = min(spec.size)
    count = int(rng.integers(spec.num_objects[0], spec.num_objects[1] + 1))
    plans = [_random_plan(rng, colors, scale) for _ in range(count)]
    if rng.random() < DUPLICATE_PROBABILITY:
        first, second = (int(index) for index in rng.choice(count, size=2, replace=False))
        plans[second].shape, plans[second].color = plans[first].shape, plans[first].color
        if rng.random() < SAME_SIZE_PROBABILITY:
            plans[second].size_word = plans[first].size_word
            plans[second].radius = _radius(rng, plans[first].size_word, scale)
    if spec.subset == SUBSET_FAST:
        probabilities, speed_range = FAST_MOTION_PROBABILITIES, fast_speed_range(spec.size)
    else:
        probabilities, speed_range = STANDARD_MOTION_PROBABILITIES, _standard_speed_range(spec.size)
    for index, plan in enumerate(plans):
        plan.velocity = _sample_velocity(rng, probabilities, speed_range)
        if index > 0 and rng.random() < LATE_ENTRY_PROBABILITY:
            plan.appear = int(rng.integers(APPEAR_LATER_MIN, num_frames // 2 + 1))
    return plans


def _plan_late_scene(rng: np.random.Generator, spec: VideoSpec, num_frames: int, colors: Sequence[str]) -> list[_Plan]:
    """Objects of a ``late`` video: plans[0] is the target, plans[1] its decoy."""
    scale = min(spec.size)
    count = int(rng.integers(spec.num_objects[0], spec.num_objects[1] + 1))
    kind = EVENT_KINDS[int(rng.integers(len(EVENT_KINDS)))]
    onset = int(rng.integers(LATE_ONSET_MIN, num_frames - MIN_FRAMES_AFTER_EVENT + 1))
    target = _random_plan(rng, colors, scale)
    decoy = _Plan(target.shape, target.size_word, _radius(rng, target.size_word, scale), target.color)
    plans = [target, decoy] + [_random_plan(rng, colors, scale) for _ in range(count - 2)]
    speed_range = _standard_speed_range(spec.size)
    for plan in plans:
        plan.velocity = _sample_velocity(rng, STANDARD_MOTION_PROBABILITIES, speed_range)
    if kind == EVENT_ENTERS:
        target.appear = onset
        target.event = LateEvent(EVENT_ENTERS, onset)
    elif kind == EVENT_TURNS_COLOR:
        others = [color for color in colors if color != target.color]
        target.event = LateEvent(EVENT_TURNS_COLOR, onset, others[int(rng.integers(len(others)))])
    else:
        direction = DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
        target.velocity = np.array(DIRECTION_VECTORS[direction], dtype=np.float64) * rng.uniform(*speed_range)
        target.motion_onset = onset
        decoy.velocity = np.zeros(2)
        target.event = LateEvent(EVENT_STARTS_MOVING, onset, direction)
    return plans


def _build_objects(
    rng: np.random.Generator,
    plans: Sequence[_Plan],
    num_frames: int,
    size: tuple[int, int],
    palette: Mapping[str, tuple[int, int, int]],
) -> tuple[list[SceneObject], list[int]]:
    """Simulate the plans; ids and z-order are random permutations. Returns objects by id and each plan's id."""
    count = len(plans)
    id_of_plan = [int(value) + 1 for value in rng.permutation(count)]
    z_of_plan = [int(value) for value in rng.permutation(count)]
    objects: list[SceneObject] = []
    for index, plan in enumerate(plans):
        bounds = center_bounds(plan.shape, plan.radius, size)
        start = (float(rng.uniform(bounds[0], bounds[1])), float(rng.uniform(bounds[2], bounds[3])))
        centers, velocities = simulate_motion(
            start=start,
            velocity=plan.velocity,
            bounds=bounds,
            num_frames=num_frames,
            appear_frame=plan.appear,
            motion_onset=plan.motion_onset,
        )
        colors = [plan.color] * num_frames
        if plan.event is not None and plan.event.kind == EVENT_TURNS_COLOR:
            colors[plan.event.onset :] = [plan.event.value] * (num_frames - plan.event.onset)
        objects.append(
            SceneObject(
                obj_id=id_of_plan[index],
                shape=plan.shape,
                size_word=plan.size_word,
                radius=plan.radius,
                z_order=z_of_plan[index],
                appear_frame=plan.appear,
                centers=centers,
                velocities=velocities,
                colors=tuple(colors),
                rgb=np.array([palette[color] for color in colors], dtype=np.uint8),
                event=plan.event,
            )
        )
    return sorted(objects, key=lambda obj: obj.obj_id), id_of_plan


def _visible_enough(objects: Sequence[SceneObject], labels: np.ndarray, areas: np.ndarray) -> bool:
    """Every object shows enough of itself, and is well visible when it enters or changes."""
    num_frames = labels.shape[0]
    counts = np.stack([np.bincount(labels[frame].ravel(), minlength=len(objects) + 1) for frame in range(num_frames)])
    for index, obj in enumerate(objects):
        present = obj.present
        fraction = counts[:, obj.obj_id] / np.maximum(areas[:, index], 1)
        if np.mean(fraction[present] >= MIN_VISIBLE_FRACTION) < MIN_VISIBLE_FRAME_SHARE:
            return False
        changes = [obj.appear_frame] + ([obj.event.onset] if obj.event is not None else [])
        if any(fraction[frame] < MIN_VISIBLE_AT_CHANGE for frame in changes):
            return False
    return True


def _describe(
    rng: np.random.Generator, objects: Sequence[SceneObject], plan_ids: Sequence[int], spec: VideoSpec
) -> tuple[SyntheticExpression, ...] | None:
    """Expressions of the video, or None when a required object cannot be named."""
    facts = observe(objects)
    late = spec.subset == SUBSET_LATE
    if late:
        onset = objects[plan_ids[0] - 1].event.onset  # type: ignore[union-attr]
        speakers = [(plan_ids[0], True), (plan_ids[1], False)]
    else:
        onset = None
        speakers = [(obj.obj_id, True) for obj in objects]
    expressions: list[SyntheticExpression] = []
    named: dict[int, str | None] = {}
    for obj_id, required in speakers:
        options = minimal_descriptions(obj_id, facts, spec.size)
        if spec.subset == SUBSET_STATIC:
            options = [atoms for atoms in options if is_static(atoms)]
        if late:
            options = [atoms for atoms in options if is_late_description(atoms, obj_id, objects, spec.size)]
        if not options:
            if required:
                return None
            continue
        count = min(int(rng.integers(1, MAX_EXPRESSIONS_PER_OBJECT + 1)), len(options))
        for pick in sorted(int(value) for value in rng.choice(len(options), size=count, replace=False)):
            atoms = options[pick]
            phrase = None
            if not is_static(atoms):
                if obj_id not in named:  # drawn from nothing: the video's random stream is unchanged
                    static = static_description(obj_id, facts, spec.size)
                    named[obj_id] = None if static is None else realize(static, None)
                phrase = named[obj_id]
            expressions.append(SyntheticExpression(realize(atoms, rng), obj_id, atoms, spec.subset, onset, phrase))
    return tuple(expressions)


def _background(rng: np.random.Generator, spec: VideoSpec, num_frames: int) -> tuple[np.ndarray, str]:
    if spec.backgrounds is not None:
        frames, name = spec.backgrounds.clip(rng, num_frames, spec.size)
        return frames, f"real:{name}"
    kind = SYNTHETIC_BACKGROUNDS[int(rng.integers(len(SYNTHETIC_BACKGROUNDS)))]
    return synthetic_background(rng, kind, spec.size, num_frames), kind


def _smallest_center_range(size: tuple[int, int]) -> tuple[float, float]:
    """Narrowest room (x, y) in pixels a centre has to move in, over every shape of the largest size."""
    radius = SIZE_RADIUS_RANGES["large"][1] * min(size)
    ranges_x, ranges_y = [], []
    for shape in SHAPES:
        x_min, x_max, y_min, y_max = shape_extent(shape, radius)
        ranges_x.append(size[0] - 1 - (x_max - x_min))
        ranges_y.append(size[1] - 1 - (y_max - y_min))
    return min(ranges_x), min(ranges_y)


def _int_pair(name: str, value: object) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"{name} must be a pair of integers, got {value!r}")
    if not all(isinstance(item, (int, np.integer)) and not isinstance(item, bool) for item in value):
        raise ConfigError(f"{name} must be a pair of integers, got {value!r}")
    return int(value[0]), int(value[1])


def _int_range(name: str, value: object, low: int, high: int) -> tuple[int, int]:
    first, last = _int_pair(name, value)
    if not low <= first <= last <= high:
        raise ConfigError(f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {value!r}")
    return first, last
