"""Expressions of the synthetic benchmark, checked by an evaluator written apart from the generator.

The helpers below parse an expression's text back into attributes using only
the vocabulary tables, then decide from the object records (trajectories,
per-frame colors, appearance frames) which objects it can mean. The
generator's own choice of ``obj_id`` is never trusted.
"""

from __future__ import annotations

import numpy as np
import pytest

from svac.data.synthetic import grammar as gm
from svac.data.synthetic import vocabulary as vb
from svac.data.synthetic.generator import (
    LATE_ONSET_MIN,
    MAX_EXPRESSIONS_PER_OBJECT,
    VideoSpec,
    fast_speed_range,
    generate_video,
)
from svac.data.synthetic.scene import EVENT_ENTERS, EVENT_STARTS_MOVING, EVENT_TURNS_COLOR
from svac.errors import ConfigError

SIZE = (160, 120)
EARLY = 5  # the first frames a "late" model is allowed to see: 0..4
TEMPORAL = {"motion", "position", "speed", "time", "turns", "stays", "starts"}


def _videos(subset: str, count: int, seed: int = 0, domain: str = "base"):
    spec = VideoSpec(num_frames=(12, 32), size=SIZE, subset=subset, domain=domain)
    return [generate_video(np.random.default_rng([seed, index]), spec) for index in range(count)]


# ---------------------------------------------------------------- parser


def _phrase_table() -> list[tuple[tuple[str, ...], tuple[str, str] | None]]:
    colors = list(vb.BASE_COLORS) + list(vb.NOVEL_COLORS)
    entries: list[tuple[str, tuple[str, str] | None]] = []
    entries += [(value, ("speed", value)) for value in ("fastest", "slowest")]
    entries += [(word, ("size", size)) for size, words in vb.SIZE_SYNONYMS.items() for word in words]
    entries += [(color, ("color", color)) for color in colors]
    entries += [(shape, ("shape", shape)) for shape in vb.SHAPES]
    entries += [(noun, None) for noun in vb.GENERIC_NOUNS]
    entries += [(p, ("motion", v)) for v, phrases in vb.MOTION_PHRASES.items() for p in phrases]
    entries += [(p, ("position", v)) for v, phrases in vb.POSITION_PHRASES.items() for p in phrases]
    entries += [(p, ("time", v)) for v, phrases in vb.TIME_PHRASES.items() for p in phrases]
    entries += [(t.format(color=c), ("turns", c)) for t in vb.TURNS_TEMPLATES for c in colors]
    entries += [(t.format(color=c), ("stays", c)) for t in vb.STAYS_TEMPLATES for c in colors]
    entries += [(t.format(direction=d), ("starts", d)) for t in vb.STARTS_TEMPLATES for d in vb.DIRECTIONS]
    table = []
    for phrase, meaning in entries:
        tokens = tuple(token for token in phrase.split() if token not in ("that", "and"))
        table.append((tokens, meaning))
    return sorted(table, key=lambda item: -len(item[0]))


PHRASES = _phrase_table()


def parse(text: str) -> set[tuple[str, str]]:
    tokens = text.split()
    assert tokens[0] == "the", text
    tokens = [token for token in tokens[1:] if token not in ("that", "and")]
    meanings: set[tuple[str, str]] = set()
    nouns = 0
    position = 0
    while position < len(tokens):
        for phrase, meaning in PHRASES:
            if tuple(tokens[position : position + len(phrase)]) == phrase:
                if meaning is None or meaning[0] == "shape":
                    nouns += 1
                if meaning is not None:
                    meanings.add(meaning)
                position += len(phrase)
                break
        else:
            raise AssertionError(f"cannot parse {text!r} at {tokens[position:]}")
    assert nouns == 1, f"{text!r} must have exactly one head noun"
    return meanings


# ---------------------------------------------------------------- independent semantics


def _window(obj, end):
    stop = obj.num_frames if end is None else end
    frames = [t for t in range(min(stop, obj.num_frames)) if t >= obj.appear_frame]
    return frames


def truth(meaning, obj, end, size):
    """True / False / None (unclear) for one attribute on frames [0, end)."""
    family, value = meaning
    frames = _window(obj, end)
    colors = [obj.colors[t] for t in frames]
    velocity = obj.velocities[frames]
    center = obj.centers[frames]
    if family == "shape":
        return obj.shape == value
    if family == "size":
        return obj.size_word == value
    if family == "color":
        return True if set(colors) == {value} else False if value not in colors else None
    if family == "time":
        return (obj.appear_frame > 0) if value == "later" else (obj.appear_frame == 0)
    if family == "stays":
        return set(colors) == {value}
    if family == "turns":
        switches = [t for t in range(1, len(colors)) if colors[t] != colors[t - 1]]
        if not switches or value not in colors:
            return False
        return True if len(switches) == 1 and colors[-1] == value else None
    if family == "motion":
        if value == "still":
            return bool(np.all(velocity == 0))
        along = velocity @ np.array(vb.DIRECTION_VECTORS[value], dtype=float)
        return _share(along >= gm.DIRECTION_MIN_COMPONENT, along <= 0)
    if family == "position":
        width, height = size
        share = {
            "left": center[:, 0] / (width - 1),
            "right": 1 - center[:, 0] / (width - 1),
            "top": center[:, 1] / (height - 1),
            "bottom": 1 - center[:, 1] / (height - 1),
        }[value]
        return _share(share <= gm.POSITION_NEAR_EDGE, share >= gm.POSITION_FAR_EDGE)
    if family == "starts":
        moving = [bool(np.any(v != 0)) for v in velocity]
        if not moving or moving[0] or not any(moving):
            return False
        first = velocity[moving.index(True)]
        return float(first @ np.array(vb.DIRECTION_VECTORS[value], dtype=float)) >= gm.DIRECTION_MIN_COMPONENT
    raise AssertionError(meaning)


def _share(holds, fails):
    if holds.mean() >= gm.MAJORITY_FRACTION:
        return True
    if fails.mean() >= gm.MAJORITY_FRACTION:
        return False
    return None


def _speed(obj, end):
    frames = _window(obj, end)
    return float(np.mean(np.hypot(obj.velocities[frames, 0], obj.velocities[frames, 1])))


def identified(meanings, video, end=None):
    """The one object id the attributes determine on frames [0, end), or None when not exactly one."""
    objects = [obj for obj in video.objects if _window(obj, end)]
    filters = [m for m in meanings if m[0] != "speed"]
    superlative = [m[1] for m in meanings if m[0] == "speed"]
    sure, unsure = [], []
    for obj in objects:
        values = [truth(m, obj, end, video.size) for m in filters]
        if all(value is True for value in values):
            sure.append(obj)
        elif not any(value is False for value in values):
            unsure.append(obj)  # cannot be ruled out
    if not superlative:
        return sure[0].obj_id if len(sure) == 1 and not unsure else None

    def beats(obj, other):
        mine, theirs = _speed(obj, end), _speed(other, end)
        fast, slow = (mine, theirs) if superlative[0] == "fastest" else (theirs, mine)
        return fast >= gm.SPEED_RATIO_MARGIN * slow and fast - slow >= gm.SPEED_GAP

    winners = [obj for obj in sure if all(beats(obj, other) for other in sure + unsure if other is not obj)]
    return winners[0].obj_id if len(winners) == 1 else None


def assert_unique(video):
    for expression in video.expressions:
        meanings = parse(expression.text)
        assert meanings == {(atom.family, atom.value) for atom in expression.atoms}, expression.text
        assert identified(meanings, video) == expression.obj_id, (expression.text, expression.obj_id)


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("subset", ["standard", "fast", "late", "static"])
def test_every_expression_names_exactly_its_object(subset):
    videos = _videos(subset, 25)
    for video in videos:
        assert_unique(video)
    assert sum(len(video.expressions) for video in videos) >= 25


def test_evaluator_detects_ambiguity():
    """The checker is not vacuous: dropping words from multi-attribute expressions makes them ambiguous."""
    ambiguous = 0
    for video in _videos("standard", 25):
        for expression in video.expressions:
            meanings = parse(expression.text)
            if len(meanings) > 1:
                for meaning in meanings:
                    ambiguous += identified(meanings - {meaning}, video) != expression.obj_id
    assert ambiguous > 10


def test_standard_objects_get_one_to_three_expressions_and_the_video_matters():
    videos = _videos("standard", 40, seed=3)
    temporal = 0
    total = 0
    for video in videos:
        counts = [sum(e.obj_id == obj.obj_id for e in video.expressions) for obj in video.objects]
        assert all(1 <= count <= MAX_EXPRESSIONS_PER_OBJECT for count in counts)
        for expression in video.expressions:
            total += 1
            temporal += bool(TEMPORAL & set(expression.families))
            assert expression.subset == "standard" and expression.late_onset is None
    families = {family for video in videos for e in video.expressions for family in e.families}
    assert {"color", "shape", "size", "motion", "position", "speed", "time"} <= families
    assert temporal / total > 0.3, f"only {temporal}/{total} expressions need more than one frame"


def test_static_expressions_use_only_what_one_frame_shows_and_name_every_object():
    from svac.data.synthetic.vocabulary import STATIC_FAMILIES

    videos = _videos("static", 30, seed=5)
    families = {family for video in videos for e in video.expressions for family in e.families}
    assert families == set(STATIC_FAMILIES)  # colour, shape, size and position, and nothing else
    for video in videos:
        assert {e.obj_id for e in video.expressions} == {obj.obj_id for obj in video.objects}
        assert all(e.subset == "static" for e in video.expressions)


@pytest.mark.parametrize("subset", ["standard", "fast", "late"])
def test_answer_phrases_name_the_object_by_what_one_frame_shows(subset):
    """Expressions that need the video carry the object's static name; the independent parser and checker agree."""
    from svac.data.synthetic.vocabulary import STATIC_FAMILIES

    named = needing = 0
    for video in _videos(subset, 25, seed=7):
        for expression in video.expressions:
            if set(expression.families) <= STATIC_FAMILIES:
                assert expression.answer_phrase is None, expression.text
                continue
            needing += 1
            if expression.answer_phrase is None:
                continue
            named += 1
            meanings = parse(expression.answer_phrase)
            assert {family for family, _ in meanings} <= STATIC_FAMILIES, expression.answer_phrase
            assert identified(meanings, video) == expression.obj_id, (expression.text, expression.answer_phrase)
            if {family for family, _ in meanings} != {"color", "shape"}:  # the name is used whenever it identifies
                obj = next(o for o in video.objects if o.obj_id == expression.obj_id)
                colors = {c for c, here in zip(obj.colors, obj.present) if here}
                assert len(colors) > 1 or identified({("color", colors.pop()), ("shape", obj.shape)}, video) != obj.obj_id
    assert needing > 20 and named > 0
    if subset != "late":  # late targets share shape, size and colour with a decoy by design
        assert named / needing > 0.5, f"{named}/{needing}"


def test_canonical_realization_draws_nothing():
    atoms = (gm.Atom("size", "large"), gm.Atom("color", "red"), gm.Atom("shape", "square"))
    assert gm.realize(atoms, None) == "the " + vb.SIZE_SYNONYMS["large"][0] + " red square"
    assert gm.realize((gm.Atom("position", "left"),), None) == "the " + vb.GENERIC_NOUNS[0] + " " + vb.POSITION_PHRASES["left"][0]


def test_fast_objects_move_a_quarter_frame_in_five_frames():
    need = 0.25 * max(SIZE)
    assert fast_speed_range(SIZE)[0] * 5 == pytest.approx(need)
    checked = 0
    for video in _videos("fast", 12):
        for obj in video.objects:
            frames = np.flatnonzero(obj.present)
            speeds = np.hypot(obj.velocities[frames, 0], obj.velocities[frames, 1])
            assert np.all(speeds * 5 >= need - 1e-9)
            for start in frames:
                stop = start + 5
                if stop >= video.num_frames:
                    break
                steady = np.all(np.sign(obj.velocities[start : stop + 1]) == np.sign(obj.velocities[start]))
                if steady:
                    checked += 1
                    assert np.linalg.norm(obj.centers[stop] - obj.centers[start]) >= need - 1e-9
        assert all(e.subset == "fast" for e in video.expressions)
        assert {e.obj_id for e in video.expressions} == {obj.obj_id for obj in video.objects}
    assert checked > 50


def test_late_expressions_cannot_be_resolved_from_the_first_five_frames():
    kinds = set()
    for video in _videos("late", 30, seed=1):
        target = next(obj for obj in video.objects if obj.event is not None)
        kinds.add(target.event.kind)
        assert target.event.onset >= LATE_ONSET_MIN > EARLY
        assert any(e.obj_id == target.obj_id for e in video.expressions)
        for expression in video.expressions:
            assert expression.subset == "late" and expression.late_onset == target.event.onset
            meanings = parse(expression.text)
            assert identified(meanings, video) == expression.obj_id
            assert identified(meanings, video, end=EARLY) != expression.obj_id, expression.text
            static = {m for m in meanings if m[0] not in {"time", "turns", "stays", "starts"}}
            assert identified(static, video, end=EARLY) != expression.obj_id, expression.text
        _assert_target_hidden_early(video, target)
    assert kinds == {EVENT_ENTERS, EVENT_TURNS_COLOR, EVENT_STARTS_MOVING}


def _assert_target_hidden_early(video, target):
    """In frames 0..4 the pixels show nothing that sets the target apart from its decoy."""
    early_target = video.masks[:EARLY] == target.obj_id
    if target.event.kind == EVENT_ENTERS:
        assert not early_target.any()
        return
    decoys = [
        obj
        for obj in video.objects
        if obj is not target
        and (obj.shape, obj.size_word, obj.colors[0]) == (target.shape, target.size_word, target.colors[0])
    ]
    assert decoys
    decoy = decoys[0]
    target_colors = {tuple(c) for c in video.frames[:EARLY][early_target]}
    decoy_colors = {tuple(c) for c in video.frames[:EARLY][video.masks[:EARLY] == decoy.obj_id]}
    assert target_colors <= decoy_colors | {tuple(decoy.rgb[0])}
    if target.event.kind == EVENT_STARTS_MOVING:
        assert np.all(target.centers[:EARLY + 1] == target.centers[0])
        assert np.all(decoy.velocities == 0)


@pytest.mark.parametrize("domain", ["base", "novel_colors"])
def test_domains_use_their_own_palette(domain):
    palette = vb.DOMAIN_COLORS[domain]
    foreign = set(vb.NOVEL_COLORS if domain == "base" else vb.BASE_COLORS)
    for video in _videos("standard", 10, seed=2, domain=domain):
        for obj in video.objects:
            assert set(obj.colors) <= set(palette)
            assert {tuple(c) for c in obj.rgb} <= set(palette.values())
        for expression in video.expressions:
            assert not foreign & set(expression.text.split()), expression.text
            assert expression.subset == "standard"
        assert_unique(video)


def test_domain_vocabularies_are_disjoint():
    assert not set(vb.BASE_COLORS) & set(vb.NOVEL_COLORS)
    assert not set(vb.BASE_COLORS.values()) & set(vb.NOVEL_COLORS.values())
    base_words = {word for phrases in vb.MOTION_PHRASES.values() for p in phrases for word in p.split()}
    base_words |= set(vb.SHAPES) | {w for words in vb.SIZE_SYNONYMS.values() for w in words}
    assert not base_words & set(vb.NOVEL_COLORS)
    assert vb.DOMAIN_COLORS["real_backgrounds"] is vb.BASE_COLORS


def test_palette_colors_are_well_separated():
    for palette in (vb.BASE_COLORS, vb.NOVEL_COLORS):
        values = np.array(list(palette.values()), dtype=float)
        distances = np.linalg.norm(values[:, None] - values[None], axis=2)
        assert distances[~np.eye(len(values), dtype=bool)].min() > 80


def test_realize_joins_clauses_and_rejects_repeated_families():
    rng = np.random.default_rng(0)
    atoms = (gm.Atom("shape", "circle"), gm.Atom("time", "later"), gm.Atom("turns", "red"))
    text = gm.realize(atoms, rng)
    assert text.startswith("the circle that ") and text.count("that") == 1 and " and " in text
    assert parse(text) == {("shape", "circle"), ("time", "later"), ("turns", "red")}
    with pytest.raises(ConfigError, match="at most once"):
        gm.realize((gm.Atom("color", "red"), gm.Atom("color", "blue")), rng)
    with pytest.raises(ConfigError, match="family"):
        gm.Atom("mood", "happy")
    with pytest.raises(ConfigError, match="value"):
        gm.Atom("motion", "sideways")
