"""Vocabulary of the synthetic referring-video benchmark.

Every word the generator can put in an expression comes from the tables in
this module: shape names, size words, the named color palettes of each
domain, and the surface phrases of each grammar attribute. The tables are
read-only module constants so a reader, a test or a later analysis can map an
expression back to the attributes it names.

Source: project design for the synthetic benchmark (issue 3, item 5); the
domain split (``base`` versus ``novel_colors`` versus ``real_backgrounds``)
serves the LoRA domain-shift experiment.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

RGB = tuple[int, int, int]

#: Shapes drawn by the generator; each is also the object's ``category`` in ``meta.json``.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

#: Size classes; the equal-area radius ranges are in :mod:`svac.data.synthetic.scene`.
SIZE_WORDS: tuple[str, ...] = ("small", "large")

#: Surface words of each size class (the first one is the class name).
SIZE_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"small": ("small", "little"), "large": ("large", "big")}
)

#: Named colors of the ``base`` domain (RGB, 0-255): bright, saturated and
#: pairwise far apart so a color word is never in doubt.
BASE_COLORS: Mapping[str, RGB] = MappingProxyType(
    {
        "red": (220, 30, 30),
        "green": (40, 190, 50),
        "blue": (40, 80, 235),
        "yellow": (245, 220, 40),
        "white": (245, 245, 245),
        "cyan": (40, 215, 225),
    }
)

#: Named colors of the ``novel_colors`` domain; no name and no RGB value is shared with :data:`BASE_COLORS`.
NOVEL_COLORS: Mapping[str, RGB] = MappingProxyType(
    {
        "orange": (255, 140, 0),
        "purple": (150, 50, 210),
        "pink": (255, 130, 190),
        "brown": (165, 95, 35),
        "teal": (0, 160, 150),
    }
)

#: Domains of the benchmark (the ``domain=`` argument).
DOMAIN_BASE = "base"
DOMAIN_NOVEL_COLORS = "novel_colors"
DOMAIN_REAL_BACKGROUNDS = "real_backgrounds"
DOMAINS: tuple[str, ...] = (DOMAIN_BASE, DOMAIN_NOVEL_COLORS, DOMAIN_REAL_BACKGROUNDS)

#: The color palette of each domain.
DOMAIN_COLORS: Mapping[str, Mapping[str, RGB]] = MappingProxyType(
    {
        DOMAIN_BASE: BASE_COLORS,
        DOMAIN_NOVEL_COLORS: NOVEL_COLORS,
        DOMAIN_REAL_BACKGROUNDS: BASE_COLORS,
    }
)

#: Subsets of the benchmark (the ``subset=`` argument).
SUBSET_STANDARD = "standard"
SUBSET_FAST = "fast"
SUBSET_LATE = "late"
SUBSET_STATIC = "static"
SUBSETS: tuple[str, ...] = (SUBSET_STANDARD, SUBSET_FAST, SUBSET_LATE, SUBSET_STATIC)

#: Motion directions in image coordinates (x to the right, y downwards), as unit steps.
DIRECTION_VECTORS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
)
DIRECTIONS: tuple[str, ...] = tuple(DIRECTION_VECTORS)

#: Frame regions named by the position attribute.
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom")

# Attribute families of the grammar (the ``family`` of an :class:`~svac.data.synthetic.grammar.Atom`).
FAMILY_COLOR = "color"  # value: a color name; the object has that color in every frame it is present
FAMILY_SHAPE = "shape"  # value: a shape name
FAMILY_SIZE = "size"  # value: a size class
FAMILY_MOTION = "motion"  # value: a direction or "still"
FAMILY_POSITION = "position"  # value: a frame region
FAMILY_SPEED = "speed"  # value: "fastest" or "slowest" (superlative over the other candidates)
FAMILY_TIME = "time"  # value: "later" (enters after frame 0) or "start" (present from frame 0)
FAMILY_TURNS = "turns"  # value: the color the object changes to
FAMILY_STAYS = "stays"  # value: the color the object keeps while another object changes color
FAMILY_STARTS = "starts"  # value: the direction a still object starts moving in
FAMILIES: tuple[str, ...] = (
    FAMILY_COLOR,
    FAMILY_SHAPE,
    FAMILY_SIZE,
    FAMILY_MOTION,
    FAMILY_POSITION,
    FAMILY_SPEED,
    FAMILY_TIME,
    FAMILY_TURNS,
    FAMILY_STAYS,
    FAMILY_STARTS,
)

#: Families that one frame shows (the ``static`` subset names objects with these alone).
STATIC_FAMILIES: frozenset[str] = frozenset({FAMILY_COLOR, FAMILY_SHAPE, FAMILY_SIZE, FAMILY_POSITION})

MOTION_STILL = "still"
SPEED_FASTEST = "fastest"
SPEED_SLOWEST = "slowest"
SPEED_VALUES: tuple[str, ...] = (SPEED_FASTEST, SPEED_SLOWEST)
TIME_LATER = "later"
TIME_START = "start"

#: Head nouns used when the expression does not name the shape.
GENERIC_NOUNS: tuple[str, ...] = ("shape", "object")

#: Surface phrases of the motion attribute, placed after the noun.
MOTION_PHRASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "left": ("moving left", "that moves left", "going left"),
        "right": ("moving right", "that moves right", "going right"),
        "up": ("moving up", "that moves up", "going up"),
        "down": ("moving down", "that moves down", "going down"),
        MOTION_STILL: ("that stays still", "that does not move"),
    }
)

#: Surface phrases of the position attribute, placed right after the noun.
POSITION_PHRASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "left": ("on the left",),
        "right": ("on the right",),
        "top": ("at the top",),
        "bottom": ("at the bottom",),
    }
)

#: Surface phrases of the time attribute.
TIME_PHRASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        TIME_LATER: ("that appears later", "that enters later"),
        TIME_START: ("that is there from the start",),
    }
)

#: Templates of the event attributes; ``{color}`` / ``{direction}`` is filled with the value.
TURNS_TEMPLATES: tuple[str, ...] = ("that turns {color}", "that becomes {color}")
STAYS_TEMPLATES: tuple[str, ...] = ("that stays {color}",)
STARTS_TEMPLATES: tuple[str, ...] = ("that starts moving {direction}",)

#: Word that opens a relative clause; a second clause drops it and is joined with :data:`CLAUSE_JOINER`.
CLAUSE_MARKER = "that"
CLAUSE_JOINER = "and"
