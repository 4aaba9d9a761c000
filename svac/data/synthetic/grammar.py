"""Referring expressions of the synthetic benchmark: attributes, their truth, and text.

An expression is a conjunction of *atoms* — (family, value) pairs such as
``("color", "red")``, ``("motion", "left")`` or ``("turns", "blue")`` (see the
families in :mod:`svac.data.synthetic.vocabulary`) — rendered as an English
noun phrase ("the small red circle moving left that appears later").

Truth is three-valued. Attributes that can change over a video (motion
direction, position) hold for an object when they hold on at least
:data:`MAJORITY_FRACTION` of the frames it is present, fail when their clear
opposite holds on that share of frames, and are *unknown* otherwise. An
expression identifies its target when every atom is true for the target and
every other object is ruled out by an atom that is clearly false for it (or,
for the superlatives "fastest"/"slowest", is beaten by a clear speed margin).
Unknown values never identify and never rule out, so a valid expression is
never a borderline call.

Units: pixels, pixels per frame, 0-based frame indices. Source: project
design for the synthetic benchmark (issue 3, item 5).
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from svac.data.synthetic.scene import SceneObject
from svac.data.synthetic.vocabulary import (
    BASE_COLORS,
    CLAUSE_JOINER,
    CLAUSE_MARKER,
    DIRECTION_VECTORS,
    DIRECTIONS,
    FAMILIES,
    FAMILY_COLOR,
    FAMILY_MOTION,
    FAMILY_POSITION,
    FAMILY_SHAPE,
    FAMILY_SIZE,
    FAMILY_SPEED,
    FAMILY_STARTS,
    FAMILY_STAYS,
    FAMILY_TIME,
    FAMILY_TURNS,
    GENERIC_NOUNS,
    MOTION_PHRASES,
    MOTION_STILL,
    NOVEL_COLORS,
    POSITION_PHRASES,
    POSITIONS,
    SHAPES,
    SIZE_SYNONYMS,
    SIZE_WORDS,
    SPEED_FASTEST,
    SPEED_VALUES,
    STARTS_TEMPLATES,
    STATIC_FAMILIES,
    STAYS_TEMPLATES,
    TIME_LATER,
    TIME_PHRASES,
    TIME_START,
    TURNS_TEMPLATES,
)
from svac.errors import ConfigError

#: Share of an object's present frames on which a changing attribute must hold (or clearly fail).
MAJORITY_FRACTION = 0.9
#: Smallest velocity component (pixels/frame) that counts as moving in a direction.
DIRECTION_MIN_COMPONENT = 0.25
#: Position: a frame counts as "on the left" when the centre lies within this fraction of the
#: frame from the left edge (likewise for right / top / bottom) ...
POSITION_NEAR_EDGE = 0.4
#: ... and as clearly not on the left when it lies at least this fraction away from that edge.
POSITION_FAR_EDGE = 0.55
#: "fastest"/"slowest": the speeds must differ by at least this ratio ...
SPEED_RATIO_MARGIN = 1.5
#: ... and by at least this many pixels per frame.
SPEED_GAP = 0.5
#: Most atoms in one expression.
MAX_ATOMS = 3
#: Frames (0 .. LATE_OBSERVED_FRAMES-1) a model is assumed to see in the ``late`` check.
LATE_OBSERVED_FRAMES = 5
#: Families naming a change over time; dropped in the second ``late`` check.
EVENT_FAMILIES: frozenset[str] = frozenset({FAMILY_TIME, FAMILY_TURNS, FAMILY_STAYS, FAMILY_STARTS})


class Truth(enum.Enum):
    """Three-valued truth of an atom for one object."""

    TRUE = "true"
    FALSE = "false"
    UNKNOWN = "unknown"


@dataclass(frozen=True, order=True)
class Atom:
    """One attribute an expression names: a family and a value, e.g. ``Atom("color", "red")``.

    Raises:
        ConfigError: for an unknown family.
    """

    family: str
    value: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ConfigError(f"unknown attribute family {self.family!r}; expected one of {FAMILIES}")
        allowed = _allowed_values(self.family)
        if self.value not in allowed:
            raise ConfigError(f"unknown value {self.value!r} for attribute {self.family!r}; expected one of {allowed}")

    def to_json(self) -> dict[str, str]:
        """``{"family": ..., "value": ...}`` as written in ``meta_expressions.json``."""
        return {"family": self.family, "value": self.value}


@dataclass(frozen=True, eq=False)
class ObjectFacts:
    """What can be observed of one object over a window of frames.

    Arrays hold only the frames of the window where the object is present
    (``n`` of them, ``n >= 1``).

    Attributes:
        obj_id: the object's id.
        shape: shape name.
        size_word: size class.
        appear_frame: first frame (of the whole video) the object is present.
        centers: float64 ``(n, 2)`` centres (x, y), pixels.
        velocities: float64 ``(n, 2)`` velocities, pixels/frame.
        colors: color name per present frame.
    """

    obj_id: int
    shape: str
    size_word: str
    appear_frame: int
    centers: np.ndarray
    velocities: np.ndarray
    colors: tuple[str, ...]

    @property
    def speed(self) -> float:
        """Mean speed over the window's present frames (pixels/frame)."""
        return float(np.linalg.norm(self.velocities, axis=1).mean())


def observe(objects: Sequence[SceneObject], end: int | None = None) -> tuple[ObjectFacts, ...]:
    """Facts of every object present in frames ``0 .. end-1`` (the whole video when ``end`` is None).

    Objects absent from the whole window are left out: in a video cut at
    ``end`` they do not exist.
    """
    facts = []
    for obj in objects:
        stop = obj.num_frames if end is None else min(end, obj.num_frames)
        keep = obj.present[:stop]
        if not keep.any():
            continue
        facts.append(
            ObjectFacts(
                obj_id=obj.obj_id,
                shape=obj.shape,
                size_word=obj.size_word,
                appear_frame=obj.appear_frame,
                centers=obj.centers[:stop][keep],
                velocities=obj.velocities[:stop][keep],
                colors=tuple(color for color, flag in zip(obj.colors[:stop], keep) if flag),
            )
        )
    return tuple(facts)


def atom_truth(atom: Atom, facts: ObjectFacts, size: tuple[int, int]) -> Truth:
    """Truth of a non-superlative atom for one object (frame ``size`` = (W, H) in pixels).

    Raises:
        ConfigError: for a ``speed`` atom (superlatives compare objects; see :func:`identifies`).
    """
    family, value = atom.family, atom.value
    if family == FAMILY_SHAPE:
        return _crisp(facts.shape == value)
    if family == FAMILY_SIZE:
        return _crisp(facts.size_word == value)
    if family == FAMILY_COLOR:
        matches = sum(color == value for color in facts.colors)
        return Truth.TRUE if matches == len(facts.colors) else Truth.FALSE if matches == 0 else Truth.UNKNOWN
    if family == FAMILY_MOTION:
        if value == MOTION_STILL:
            return _crisp(not np.any(facts.velocities))
        component = facts.velocities @ np.array(DIRECTION_VECTORS[value], dtype=np.float64)
        return _majority(component >= DIRECTION_MIN_COMPONENT, component <= 0)
    if family == FAMILY_POSITION:
        distance = _distance_from_edge(facts.centers, value, size)
        return _majority(distance <= POSITION_NEAR_EDGE, distance >= POSITION_FAR_EDGE)
    if family == FAMILY_TIME:
        return _crisp((facts.appear_frame > 0) == (value == TIME_LATER))
    if family == FAMILY_TURNS:
        changes = sum(a != b for a, b in zip(facts.colors, facts.colors[1:]))
        if changes == 0 or value not in facts.colors:
            return Truth.FALSE
        return Truth.TRUE if changes == 1 and facts.colors[-1] == value else Truth.UNKNOWN
    if family == FAMILY_STAYS:
        return _crisp(set(facts.colors) == {value})
    if family == FAMILY_STARTS:
        moving = np.any(facts.velocities != 0, axis=1)
        if moving[0] or not moving.any():
            return Truth.FALSE
        first = facts.velocities[int(np.argmax(moving))]
        return _crisp(float(first @ np.array(DIRECTION_VECTORS[value], dtype=np.float64)) >= DIRECTION_MIN_COMPONENT)
    raise ConfigError(f"atom {atom} has no per-object truth; superlatives are judged by identifies()")


def identifies(atoms: Sequence[Atom], target_id: int, facts: Sequence[ObjectFacts], size: tuple[int, int]) -> bool:
    """Whether ``atoms`` pick out exactly the object ``target_id`` among ``facts``.

    Every non-speed atom must be true for the target; every other object must
    have a clearly false atom, or — when the expression has a superlative —
    be beaten on speed by :data:`SPEED_RATIO_MARGIN` and :data:`SPEED_GAP`.
    An empty expression identifies the target only when it is the sole object.
    The target must be among ``facts`` (else: False).
    """
    filters = [atom for atom in atoms if atom.family != FAMILY_SPEED]
    return _identifies_with(_truth_table(filters, facts, size), facts, atoms, target_id)


def _truth_table(
    atoms: Sequence[Atom], facts: Sequence[ObjectFacts], size: tuple[int, int]
) -> dict[Atom, dict[int, Truth]]:
    return {atom: {fact.obj_id: atom_truth(atom, fact, size) for fact in facts} for atom in atoms}


def _identifies_with(
    table: dict[Atom, dict[int, Truth]], facts: Sequence[ObjectFacts], atoms: Sequence[Atom], target_id: int
) -> bool:
    speeds = {fact.obj_id: fact.speed for fact in facts}
    if target_id not in speeds:
        return False
    superlatives = [atom.value for atom in atoms if atom.family == FAMILY_SPEED]
    if len(superlatives) > 1:
        return False
    filters = [atom for atom in atoms if atom.family != FAMILY_SPEED]
    if any(table[atom][target_id] is not Truth.TRUE for atom in filters):
        return False
    rivals = [
        obj_id
        for obj_id in speeds
        if obj_id != target_id and not any(table[atom][obj_id] is Truth.FALSE for atom in filters)
    ]
    if not superlatives:
        return not rivals
    return all(_beats(speeds[target_id], speeds[obj_id], superlatives[0]) for obj_id in rivals)


def candidate_atoms(target_id: int, facts: Sequence[ObjectFacts], size: tuple[int, int]) -> list[Atom]:
    """Atoms true for the target, in family order, that an expression may use.

    ``stays <color>`` is offered only when some object changes color, and
    ``time start`` only when some object enters later (otherwise they add
    nothing to a plain color / an always-true fact). Both superlatives are
    offered; :func:`identifies` decides whether they hold.
    """
    target = next(fact for fact in facts if fact.obj_id == target_id)
    palette = sorted({color for fact in facts for color in fact.colors})
    anyone_changes = any(len(set(fact.colors)) > 1 for fact in facts)
    anyone_later = any(fact.appear_frame > 0 for fact in facts)
    options = [Atom(FAMILY_COLOR, color) for color in palette]
    options += [Atom(FAMILY_SHAPE, target.shape), Atom(FAMILY_SIZE, target.size_word)]
    options += [Atom(FAMILY_MOTION, value) for value in (*DIRECTIONS, MOTION_STILL)]
    options += [Atom(FAMILY_POSITION, value) for value in POSITIONS]
    options += [Atom(FAMILY_TIME, TIME_LATER)] + ([Atom(FAMILY_TIME, TIME_START)] if anyone_later else [])
    options += [Atom(FAMILY_TURNS, color) for color in palette]
    options += [Atom(FAMILY_STAYS, color) for color in palette] if anyone_changes else []
    options += [Atom(FAMILY_STARTS, value) for value in DIRECTIONS]
    chosen = [atom for atom in options if atom_truth(atom, target, size) is Truth.TRUE]
    return chosen + [Atom(FAMILY_SPEED, value) for value in SPEED_VALUES]


def minimal_descriptions(
    target_id: int, facts: Sequence[ObjectFacts], size: tuple[int, int], max_atoms: int = MAX_ATOMS
) -> list[tuple[Atom, ...]]:
    """Every minimal atom set (at most one atom per family, at most ``max_atoms``) that identifies the target.

    Minimal: no proper subset identifies the target too, so each atom is
    needed. Returned in a fixed order (by size, then by family order).
    """
    options = candidate_atoms(target_id, facts, size)
    table = _truth_table([atom for atom in options if atom.family != FAMILY_SPEED], facts, size)
    found: list[tuple[Atom, ...]] = []
    for count in range(1, max_atoms + 1):
        for combo in itertools.combinations(options, count):
            if len({atom.family for atom in combo}) != count:
                continue
            if any(set(smaller) <= set(combo) for smaller in found):
                continue
            if _identifies_with(table, facts, combo, target_id):
                found.append(combo)
    return found


def is_late_description(
    atoms: Sequence[Atom],
    target_id: int,
    objects: Sequence[SceneObject],
    size: tuple[int, int],
    observed_frames: int = LATE_OBSERVED_FRAMES,
) -> bool:
    """Whether a model seeing only frames ``0 .. observed_frames-1`` cannot identify the target.

    Two checks on the video cut after ``observed_frames`` frames: (1) the
    expression does not identify the target there (it is absent, the named
    change has not happened, or another object matches as well); (2) neither
    do its atoms without the time/change families (:data:`EVENT_FAMILIES`),
    so no shortcut through the static words exists either.
    """
    early = observe(objects, end=observed_frames)
    if identifies(atoms, target_id, early, size):
        return False
    static_atoms = [atom for atom in atoms if atom.family not in EVENT_FAMILIES]
    return not identifies(static_atoms, target_id, early, size)


def static_description(
    target_id: int, facts: Sequence[ObjectFacts], size: tuple[int, int]
) -> tuple[Atom, ...] | None:
    """Atoms that name the target by what one frame shows, or None when no static description identifies it.

    Color and shape when together they identify the target (the object's name, "the red square"), else
    the first minimal description (:func:`minimal_descriptions` order) whose families are all
    static (:data:`~svac.data.synthetic.vocabulary.STATIC_FAMILIES`). The synthetic benchmark writes it
    as the ``answer_phrase`` of expressions that need the video: the object a model should name in its
    answer once it has found which one is meant.
    """
    target = next(fact for fact in facts if fact.obj_id == target_id)
    if len(set(target.colors)) == 1:  # an object that changes colour has no one colour to be named by
        name = (Atom(FAMILY_COLOR, target.colors[0]), Atom(FAMILY_SHAPE, target.shape))
        if identifies(name, target_id, facts, size):
            return name
    return next((atoms for atoms in minimal_descriptions(target_id, facts, size) if is_static(atoms)), None)


def is_static(atoms: Sequence[Atom]) -> bool:
    """Whether every atom's family is one a single frame shows (:data:`~svac.data.synthetic.vocabulary.STATIC_FAMILIES`)."""
    return all(atom.family in STATIC_FAMILIES for atom in atoms)


def realize(atoms: Sequence[Atom], rng: np.random.Generator | None) -> str:
    """English text of an atom set, e.g. ``"the big red circle on the left moving up"``.

    Word order: "the", superlative, size, color, noun (shape, else "shape"/"object"),
    position, motion, then relative clauses (time, turns, stays, starts); a
    second relative clause is joined with "and" instead of repeating "that".
    Surface variants are drawn with ``rng``; with ``rng=None`` each is the first listed (one
    canonical text per atom set, drawing nothing).

    Raises:
        ConfigError: when two atoms share a family.
    """
    values = {atom.family: atom.value for atom in atoms}
    if len(values) != len(atoms):
        raise ConfigError(f"an expression names each family at most once, got {list(atoms)}")
    words = ["the"]
    if FAMILY_SPEED in values:
        words.append(values[FAMILY_SPEED])
    if FAMILY_SIZE in values:
        words.append(_pick(rng, SIZE_SYNONYMS[values[FAMILY_SIZE]]))
    if FAMILY_COLOR in values:
        words.append(values[FAMILY_COLOR])
    words.append(values.get(FAMILY_SHAPE) or _pick(rng, GENERIC_NOUNS))
    modifiers = []
    if FAMILY_POSITION in values:
        modifiers.append(_pick(rng, POSITION_PHRASES[values[FAMILY_POSITION]]))
    if FAMILY_MOTION in values:
        modifiers.append(_pick(rng, MOTION_PHRASES[values[FAMILY_MOTION]]))
    if FAMILY_TIME in values:
        modifiers.append(_pick(rng, TIME_PHRASES[values[FAMILY_TIME]]))
    if FAMILY_TURNS in values:
        modifiers.append(_pick(rng, TURNS_TEMPLATES).format(color=values[FAMILY_TURNS]))
    if FAMILY_STAYS in values:
        modifiers.append(_pick(rng, STAYS_TEMPLATES).format(color=values[FAMILY_STAYS]))
    if FAMILY_STARTS in values:
        modifiers.append(_pick(rng, STARTS_TEMPLATES).format(direction=values[FAMILY_STARTS]))
    clause_opened = False
    for phrase in modifiers:
        head, _, rest = phrase.partition(" ")
        if head == CLAUSE_MARKER and clause_opened:
            phrase = f"{CLAUSE_JOINER} {rest}"
        clause_opened = clause_opened or head == CLAUSE_MARKER
        words.append(phrase)
    return " ".join(words)


def _allowed_values(family: str) -> tuple[str, ...]:
    colors = (*BASE_COLORS, *NOVEL_COLORS)
    return {
        FAMILY_COLOR: colors,
        FAMILY_SHAPE: SHAPES,
        FAMILY_SIZE: SIZE_WORDS,
        FAMILY_MOTION: (*DIRECTIONS, MOTION_STILL),
        FAMILY_POSITION: POSITIONS,
        FAMILY_SPEED: SPEED_VALUES,
        FAMILY_TIME: (TIME_LATER, TIME_START),
        FAMILY_TURNS: colors,
        FAMILY_STAYS: colors,
        FAMILY_STARTS: DIRECTIONS,
    }[family]


def _pick(rng: np.random.Generator | None, options: Sequence[str]) -> str:
    return str(options[0 if rng is None else int(rng.integers(len(options)))])


def _crisp(flag: bool) -> Truth:
    return Truth.TRUE if flag else Truth.FALSE


def _majority(holds: np.ndarray, fails: np.ndarray) -> Truth:
    if holds.mean() >= MAJORITY_FRACTION:
        return Truth.TRUE
    if fails.mean() >= MAJORITY_FRACTION:
        return Truth.FALSE
    return Truth.UNKNOWN


def _distance_from_edge(centers: np.ndarray, side: str, size: tuple[int, int]) -> np.ndarray:
    """Distance of each centre from the named frame edge, as a fraction of the frame (0 at that edge)."""
    width, height = size
    x = centers[:, 0] / (width - 1)
    y = centers[:, 1] / (height - 1)
    return {"left": x, "right": 1.0 - x, "top": y, "bottom": 1.0 - y}[side]


def _beats(target_speed: float, rival_speed: float, superlative: str) -> bool:
    fast, slow = (target_speed, rival_speed) if superlative == SPEED_FASTEST else (rival_speed, target_speed)
    return fast >= SPEED_RATIO_MARGIN * slow and fast - slow >= SPEED_GAP
