"""Procedurally generated referring-video benchmark in the Ref-YouTube-VOS layout.

No dataset can reach the project's machines, so a small SVAC model is
trained and evaluated on synthetic videos: moving, bouncing, occluding
shapes described by expressions that name exactly one object. Use
:func:`generate_video` to draw videos in memory (e.g. inside a training
loop) and :func:`write_benchmark` to write a split to disk for the
ordinary readers and evaluation. Modules: :mod:`.vocabulary` (word
tables), :mod:`.scene` (shapes, motion, rendering), :mod:`.backgrounds`,
:mod:`.grammar` (attributes, truth, text), :mod:`.generator`, :mod:`.writer`.
"""

from __future__ import annotations

from svac.data.synthetic.backgrounds import RealBackgrounds
from svac.data.synthetic.generator import SyntheticExpression, SyntheticVideo, VideoSpec, generate_video
from svac.data.synthetic.grammar import Atom
from svac.data.synthetic.scene import LateEvent, SceneObject
from svac.data.synthetic.vocabulary import DOMAINS, SUBSETS
from svac.data.synthetic.writer import SynthBenchmarkInfo, davis_palette, video_rng, write_benchmark

__all__ = [
    "DOMAINS",
    "SUBSETS",
    "Atom",
    "LateEvent",
    "RealBackgrounds",
    "SceneObject",
    "SynthBenchmarkInfo",
    "SyntheticExpression",
    "SyntheticVideo",
    "VideoSpec",
    "davis_palette",
    "generate_video",
    "video_rng",
    "write_benchmark",
]
