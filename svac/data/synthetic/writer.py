"""Write synthetic referring videos to disk in the Ref-YouTube-VOS layout.

Layout (Ref-YouTube-VOS, Seo et al., ECCV 2020; the same readers and
evaluation run on it)::

    OUT/<split>/JPEGImages/<vid>/<frame>.jpg      frames 00000, 00001, ... (5 digits)
    OUT/<split>/Annotations/<vid>/<frame>.png     palette PNG (mode "P", DAVIS palette),
                                                  pixel value = object id 1..K, 0 = background
    OUT/<split>/meta.json                         {"videos": {vid: {"objects": {"1": {"category", "frames"}}}}}
    OUT/meta_expressions/<split>/meta_expressions.json
        {"videos": {vid: {"expressions": {"0": {"exp", "obj_id", ...}}, "frames": [...]}}}
    OUT/synth_config.json                         the generation arguments

Each expression entry also holds ``attributes`` (list of ``{"family",
"value"}``), ``families``, ``subset``, ``domain``, ``late_onset`` (frame index or null)
and, for expressions that need the video, ``answer_phrase`` (the object named by
what one frame shows, :attr:`~svac.data.synthetic.generator.SyntheticExpression.answer_phrase`,
:data:`svac.data.sample.ANSWER_PHRASE_KEY`). Held-out splits (e.g. ``"valid"``) include Annotations too.

The whole folder is built next to OUT and swapped into place
(:class:`svac.atomic_folder.OutputFolder`: checked and locked before anything is
generated), so OUT is either complete or untouched. Output is byte-identical for identical
arguments (same library versions).
"""

from __future__ import annotations

import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from svac.atomic_folder import OutputFolder
from svac.data.synthetic.backgrounds import RealBackgrounds
from svac.data.synthetic.generator import SyntheticVideo, VideoSpec, generate_video
from svac.data.synthetic.vocabulary import DOMAIN_BASE, SUBSET_STANDARD
from svac.errors import ConfigError

#: Digits of frame file names (Ref-YouTube-VOS uses 5: 00000.jpg).
FRAME_NAME_DIGITS = 5
#: JPEG quality of the frames (PIL scale 1-95).
JPEG_QUALITY = 95
#: JPEG chroma subsampling: 0 = 4:4:4, so thin colored shapes keep their color.
JPEG_SUBSAMPLING = 0
#: Name of the file recording the generation arguments.
SYNTH_CONFIG_NAME = "synth_config.json"
#: Version of the on-disk format written by :func:`write_benchmark`.
FORMAT_VERSION = 1
#: Allowed split names (a single folder name).
SPLIT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: Bits per channel of the DAVIS / PASCAL VOC label palette.
_PALETTE_BITS = 8
_PALETTE_SIZE = 256


@dataclass(frozen=True)
class SynthBenchmarkInfo:
    """What :func:`write_benchmark` wrote.

    Attributes:
        out_dir: the benchmark root (OUT), as an absolute path.
        split: split folder name (e.g. ``"train"``).
        subset: ``"standard"``, ``"fast"``, ``"late"`` or ``"static"``.
        domain: ``"base"``, ``"novel_colors"`` or ``"real_backgrounds"``.
        seed: the seed of the run.
        video_ids: ids of the written videos, in order.
        num_objects: objects over all videos.
        num_expressions: expressions over all videos.
        num_frames: frames over all videos.
    """

    out_dir: Path
    split: str
    subset: str
    domain: str
    seed: int
    video_ids: tuple[str, ...]
    num_objects: int
    num_expressions: int
    num_frames: int

    @property
    def num_videos(self) -> int:
        """Number of videos written."""
        return len(self.video_ids)


def davis_palette() -> bytes:
    """The 256-color label palette of DAVIS (the PASCAL VOC color map), as 768 RGB bytes.

    Color ``i`` spreads the bits of ``i`` over the channels from the most
    significant bit down: bit 0 of each 3-bit group to red, bit 1 to green,
    bit 2 to blue (index 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0) ...).
    Source: DAVIS annotation PNGs / PASCAL VOC devkit ``labelcolormap``.
    """
    table = bytearray()
    for index in range(_PALETTE_SIZE):
        rgb = [0, 0, 0]
        code = index
        for shift in range(_PALETTE_BITS - 1, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << shift
            code >>= 3
        table += bytes(rgb)
    return bytes(table)


def video_id(seed: int, index: int) -> str:
    """Folder name of video ``index`` of a run with ``seed``, e.g. ``"s7_00003"``."""
    return f"s{seed}_{index:05d}"


def video_rng(
    seed: int, index: int, *, split: str = "train", subset: str = SUBSET_STANDARD, domain: str = DOMAIN_BASE
) -> np.random.Generator:
    """The random generator of video ``index`` of a :func:`write_benchmark` run.

    ``generate_video(video_rng(seed, i, split=..., subset=..., domain=...), spec)``
    reproduces the i-th written video in memory. Split, subset and domain
    enter the seed, so a ``valid`` split never repeats ``train`` videos even
    with the same seed. Each video has its own stream (numpy ``SeedSequence``
    spawn key), so videos do not depend on each other.
    """
    salt = zlib.crc32(f"{split}/{subset}/{domain}".encode())
    return np.random.default_rng(np.random.SeedSequence(entropy=(int(seed), salt), spawn_key=(int(index),)))


def write_benchmark(
    out_dir: str | os.PathLike[str],
    *,
    videos: int,
    seed: int,
    subset: str = SUBSET_STANDARD,
    domain: str = DOMAIN_BASE,
    split: str = "train",
    num_frames: tuple[int, int] = (16, 64),
    size: tuple[int, int] = (160, 120),
    backgrounds: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SynthBenchmarkInfo:
    """Generate ``videos`` synthetic referring videos and write them in the Ref-YouTube-VOS layout.

    Args:
        out_dir: benchmark root OUT; must be absent or empty unless ``overwrite``.
        videos: number of videos (>= 1).
        seed: non-negative seed; same arguments give byte-identical files.
        subset: ``"standard"``, ``"fast"``, ``"late"`` or ``"static"`` (see :mod:`svac.data.synthetic.generator`).
        domain: ``"base"``, ``"novel_colors"`` or ``"real_backgrounds"``.
        split: split folder name, e.g. ``"train"`` or ``"valid"`` (both get Annotations).
        num_frames: inclusive range of video lengths (frames).
        size: frame (W, H) in pixels.
        backgrounds: folder of real frames (e.g. DAVIS ``JPEGImages/480p``); required by
            and only allowed with ``domain="real_backgrounds"``. Never read implicitly.
        overwrite: replace a non-empty OUT.
        progress: show a tqdm progress bar over videos.

    Returns:
        a :class:`SynthBenchmarkInfo`.

    Raises:
        ConfigError: for a bad argument.
        OutputExistsError: when OUT exists, is not empty and ``overwrite`` is False, or is a file.
        OutputLockedError: when another run is writing OUT.
        OutputWriteError: when OUT cannot be written (permission, read-only, full); OUT then holds
            its previous contents, or nothing.
        VideoReadError: when a real background frame cannot be read.
        SVACError: when the generator finds no valid scene.
    """
    _check_count("videos", videos, minimum=1)
    _check_count("seed", seed, minimum=0)
    if not isinstance(split, str) or not SPLIT_PATTERN.match(split):
        raise ConfigError(f"split must be a folder name matching {SPLIT_PATTERN.pattern}, got {split!r}")
    if not isinstance(overwrite, bool):
        raise ConfigError(f"overwrite must be True or False, got {overwrite!r}")
    real = RealBackgrounds(backgrounds) if backgrounds is not None else None
    spec = VideoSpec(num_frames=num_frames, size=size, subset=subset, domain=domain, backgrounds=real)
    out = Path(os.path.abspath(out_dir))
    # checked, locked and staged before generating anything; swapped in whole at the end
    with OutputFolder(out, overwrite=overwrite, what="files") as folder:
        staging = folder.path
        info = _write_all(staging, out, spec, videos=videos, seed=seed, split=split, progress=progress)
        _write_json(
            staging / SYNTH_CONFIG_NAME,
            {
                "generator": "svac.data.synthetic",
                "format_version": FORMAT_VERSION,
                "split": split,
                "videos": videos,
                "seed": seed,
                "subset": spec.subset,
                "domain": spec.domain,
                "num_frames": list(spec.num_frames),
                "size": list(spec.size),
                "backgrounds": None if backgrounds is None else str(backgrounds),
                "jpeg_quality": JPEG_QUALITY,
                "num_objects": info.num_objects,
                "num_expressions": info.num_expressions,
            },
        )
    return info


def _write_all(
    staging: Path, out: Path, spec: VideoSpec, *, videos: int, seed: int, split: str, progress: bool
) -> SynthBenchmarkInfo:
    split_dir = staging / split
    meta: dict = {"videos": {}}
    meta_expressions: dict = {"videos": {}}
    palette = davis_palette()
    ids: list[str] = []
    objects = expressions = frames = 0
    for index in tqdm(range(videos), desc=f"synth {split}/{spec.subset}", unit="video", disable=not progress):
        rng = video_rng(seed, index, split=split, subset=spec.subset, domain=spec.domain)
        video = generate_video(rng, spec)
        vid = video_id(seed, index)
        names = _write_video(split_dir, vid, video, palette)
        meta["videos"][vid] = {
            "objects": {
                str(obj.obj_id): {
                    "category": obj.shape,
                    "frames": [names[t] for t in range(video.num_frames) if np.any(video.masks[t] == obj.obj_id)],
                }
                for obj in video.objects
            }
        }
        meta_expressions["videos"][vid] = {
            "expressions": {
                str(number): {
                    "exp": expression.text,
                    "obj_id": str(expression.obj_id),
                    "attributes": [atom.to_json() for atom in expression.atoms],
                    "families": list(expression.families),
                    "subset": expression.subset,
                    "domain": video.domain,
                    "late_onset": expression.late_onset,
                    **({"answer_phrase": expression.answer_phrase} if expression.answer_phrase is not None else {}),
                }
                for number, expression in enumerate(video.expressions)
            },
            "frames": names,
        }
        ids.append(vid)
        objects += len(video.objects)
        expressions += len(video.expressions)
        frames += video.num_frames
    _write_json(split_dir / "meta.json", meta)
    _write_json(staging / "meta_expressions" / split / "meta_expressions.json", meta_expressions)
    return SynthBenchmarkInfo(
        out_dir=out,
        split=split,
        subset=spec.subset,
        domain=spec.domain,
        seed=seed,
        video_ids=tuple(ids),
        num_objects=objects,
        num_expressions=expressions,
        num_frames=frames,
    )


def _write_video(split_dir: Path, vid: str, video: SyntheticVideo, palette: bytes) -> list[str]:
    image_dir = split_dir / "JPEGImages" / vid
    mask_dir = split_dir / "Annotations" / vid
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True)
    names = [f"{t:0{FRAME_NAME_DIGITS}d}" for t in range(video.num_frames)]
    for t, name in enumerate(names):
        Image.fromarray(video.frames[t]).save(
            image_dir / f"{name}.jpg", format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING
        )
        mask = Image.fromarray(video.masks[t])
        mask.putpalette(palette)
        mask.save(mask_dir / f"{name}.png", format="PNG")
    return names


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _check_count(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
