"""A copy of a synthetic split whose expressions that need the video name their object by what one frame shows.

Issue 18's oracle-description probe: each held-out expression that needs the video ("the fastest shape") is
replaced by its ``answer_phrase`` ("the red square"; the generator writes one where a static description
identifies the target, :func:`svac.data.synthetic.grammar.static_description`), nothing else changed. A model
scored on both copies tells how much of its miss on those expressions is *which* object is meant rather than its
masks (the default model, held-out standard set of seed 1000, 91 of 234 expressions replaced: J&F
0.618 -> 0.782; README, "The default model")::

    svac data oracle-phrases data/synthetic/valid --out data/synthetic/valid-oracle
    svac eval rvos --split valid --data-root data/synthetic/valid-oracle --out runs/eval/oracle
    svac metrics compare runs/eval/default-standard runs/eval/oracle

The copy holds a new ``meta_expressions/<split>/meta_expressions.json`` -- a replaced expression keeps its
families (so ``svac eval``'s per-family table still files it under speed, motion or time) and its original text
under ``oracle_of`` -- and symbolic links to the source split's frames, masks and ``meta.json`` (nothing is
copied, so the source must stay where it is). It is written as a whole (:class:`svac.atomic_folder.OutputFolder`).

Source: svac's diagnosis for issue 18 (an oracle input, as in ablations that give a model ground truth for
one of its stages).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from svac.atomic_folder import OutputFolder
from svac.data.readers.base import read_json
from svac.data.readers.refytvos import CATEGORIES_FILE, FRAMES_DIR, MASKS_DIR, META_DIR, META_FILE
from svac.data.sample import ANSWER_PHRASE_KEY
from svac.errors import AnnotationError

#: The key under which a replaced expression keeps its original text.
ORACLE_OF_KEY = "oracle_of"
#: Entries of a split folder linked into the copy (the Ref-YouTube-VOS layout's frames, masks and objects file).
LINKED = (FRAMES_DIR, MASKS_DIR, CATEGORIES_FILE)


@dataclass(frozen=True)
class OracleCopy:
    """What :func:`write_oracle_phrases` wrote.

    Attributes:
        out_dir: the copy's root folder.
        split: the split copied.
        replaced: expressions whose text is now their ``answer_phrase``.
        kept: expressions left as they were (static ones, and those needing the video without a static name).
    """

    out_dir: Path
    split: str
    replaced: int
    kept: int


def write_oracle_phrases(data_root: str | os.PathLike, out_dir: str | os.PathLike, *, split: str = "valid",
                         overwrite: bool = False) -> OracleCopy:
    """Write the oracle-phrase copy of ``data_root``'s ``split`` (see the module docstring).

    Args:
        data_root: a benchmark written by ``svac data synth`` (Ref-YouTube-VOS layout).
        out_dir: the copy's root folder (must not exist or be empty, unless ``overwrite``).
        split: the split to copy (``valid`` for the held-out sets).
        overwrite: replace a non-empty ``out_dir``.

    Returns:
        An :class:`OracleCopy` with the counts.

    Raises:
        FileNotFoundError: when the split's ``meta_expressions.json`` or its frames, masks or ``meta.json`` are
            missing.
        svac.errors.AnnotationError: when no expression holds an ``answer_phrase`` (a benchmark written before
            ``svac data synth`` wrote them: the same ``svac data synth`` command writes it again, byte-identical
            apart from that field), an ``answer_phrase`` is not a non-empty string, or the
            ``meta_expressions.json`` is not valid JSON.
        svac.errors.OutputExistsError / OutputLockedError / OutputWriteError: as
            :class:`svac.atomic_folder.OutputFolder`.

    Source: svac's oracle-description probe for issue 18 (module docstring).
    """
    root = Path(os.path.abspath(data_root))
    meta_path = root / META_DIR / split / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: is {root} a benchmark of svac data synth with a "
                                f"{split!r} split?")
    for name in LINKED:
        if not (root / split / name).exists():
            raise FileNotFoundError(f"{root / split / name} not found: the copy links the split's frames, masks "
                                    "and meta.json")
    out = Path(os.path.abspath(out_dir))
    with OutputFolder(out, overwrite=overwrite, what="files") as folder:  # --out checked before the work
        meta = read_json(meta_path, "meta_expressions")
        replaced, kept = oracle_expressions(meta, source=meta_path)
        staging = folder.path
        target = staging / META_DIR / split / META_FILE
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (staging / split).mkdir()
        for name in LINKED:
            os.symlink(root / split / name, staging / split / name)
    return OracleCopy(out_dir=out, split=split, replaced=replaced, kept=kept)


def oracle_expressions(meta: dict, *, source: Path) -> tuple[int, int]:
    """Replace, in place, the text of every expression of ``meta`` (a ``meta_expressions.json``) holding an
    ``answer_phrase`` by that phrase, keeping the original under :data:`ORACLE_OF_KEY`.

    Args:
        meta: the parsed ``meta_expressions.json`` (``{"videos": {vid: {"expressions": {id: {...}}}}}``).
        source: the file it was read from (named in errors).

    Returns:
        ``(replaced, kept)`` expression counts.

    Raises:
        svac.errors.AnnotationError: when no expression holds an ``answer_phrase``, or one is not a non-empty string.

    Source: svac's oracle-description probe for issue 18 (module docstring).
    """
    replaced = kept = 0
    for vid, video in meta["videos"].items():
        for exp_id, expression in video["expressions"].items():
            phrase = expression.get(ANSWER_PHRASE_KEY)
            if phrase is None:
                kept += 1
                continue
            if not isinstance(phrase, str) or not phrase.strip():
                raise AnnotationError(f"{source}: video {vid} expression {exp_id}: {ANSWER_PHRASE_KEY} must be a "
                                      f"non-empty string, got {phrase!r}")
            expression[ORACLE_OF_KEY] = expression["exp"]
            expression["exp"] = phrase
            replaced += 1
    if replaced == 0:
        raise AnnotationError(f"{source}: no expression holds an {ANSWER_PHRASE_KEY}; benchmarks written before svac "
                              "data synth wrote them lack it -- the same svac data synth command writes the same "
                              "videos and expressions again, with it")
    return replaced, kept
