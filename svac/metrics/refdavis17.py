"""Ref-DAVIS17 scores: the average of four DAVIS-2017 unsupervised evaluations.

Ref-DAVIS17 (Khoreva et al., "Video Object Segmentation with Language
Referring Expressions", ACCV 2018) gives every object of DAVIS-2017 val two
annotators' expressions of two kinds (first-frame and full-video), i.e. four
expression sets. The protocol followed by URVOS, ReferFormer and the
MLLM-based methods (Sa2VA, VISA...) predicts each set separately, writes one
DAVIS-2017 result folder per set (palette PNGs, one id per object), scores
each folder with the DAVIS-2017 **unsupervised** evaluation (all frames;
Hungarian matching of predicted ids to ground-truth objects, see
:mod:`svac.metrics.davis_eval`), and reports the mean over the four runs of
J&F, J and F.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from svac.errors import ConfigError
from svac.metrics.davis_eval import (
    GLOBAL_JSON,
    PER_FRAME_CSV,
    PER_SEQUENCE_CSV,
    DavisEvaluation,
    DavisGlobalScores,
    MaskFormat,
    evaluate_davis_folders,
)
from svac.metrics.output import refuse_existing, write_text_atomic

REFDAVIS17_RUNS = 4
"""Expression sets of Ref-DAVIS17: 2 annotators x (first-frame, full-video)."""

SUMMARY_JSON = "refdavis17.json"


@dataclass(frozen=True)
class RefDavis17Result:
    """Mean over the runs of the DAVIS global scores (fractions in [0, 1]).

    Attributes:
        jf: mean of the runs' J&F-Mean.
        j: mean of the runs' J-Mean.
        f: mean of the runs' F-Mean.
        runs: the global scores of each run, in input order.
    """

    jf: float
    j: float
    f: float
    runs: tuple[DavisGlobalScores, ...]


def combine_refdavis17_runs(
    runs: Sequence[DavisGlobalScores], *, expected_runs: int = REFDAVIS17_RUNS
) -> RefDavis17Result:
    """Average the global scores of the Ref-DAVIS17 runs.

    Args:
        runs: global scores of each run, from the unsupervised protocol of
            :func:`svac.metrics.davis_eval.evaluate_davis_folders`.
        expected_runs: how many runs the protocol has (4).

    Returns:
        The :class:`RefDavis17Result`.

    Raises:
        ConfigError: when the number of runs differs from ``expected_runs``.
    """
    if len(runs) != expected_runs:
        raise ConfigError(f"Ref-DAVIS17 averages {expected_runs} runs, got {len(runs)}")
    return RefDavis17Result(
        jf=float(np.mean([r.jf_mean for r in runs])),
        j=float(np.mean([r.j_mean for r in runs])),
        f=float(np.mean([r.f_mean for r in runs])),
        runs=tuple(runs),
    )


def evaluate_refdavis17(
    gt_dir: str | os.PathLike[str],
    run_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] | None,
    *,
    mask_format: MaskFormat = "auto",
    overwrite: bool = False,
    expected_runs: int = REFDAVIS17_RUNS,
) -> tuple[RefDavis17Result, tuple[DavisEvaluation, ...]]:
    """Evaluate the four Ref-DAVIS17 result folders (unsupervised protocol) and average them.

    Each run's tables go to ``<out_dir>/<run folder name>/`` (see
    :func:`~svac.metrics.davis_eval.evaluate_davis_folders`); the average goes
    to ``<out_dir>/refdavis17.json``.

    Args:
        gt_dir: DAVIS-2017 ground-truth folder (palette PNGs).
        run_dirs: the result folders of the runs; their names must differ.
        out_dir: output folder, or ``None`` to write nothing.
        mask_format: passed to the folder evaluation.
        overwrite: replace existing result files.
        expected_runs: number of runs (4).

    Returns:
        ``(average, per-run evaluations)``.

    Raises:
        ConfigError: on a wrong number of runs or repeated folder names.
        svac.errors.OutputExistsError: when a result file exists and ``overwrite`` is False
            (checked for every run before any work).
        Everything :func:`evaluate_davis_folders` raises.
    """
    paths = [Path(p) for p in run_dirs]
    if len(paths) != expected_runs:
        raise ConfigError(f"Ref-DAVIS17 needs {expected_runs} result folders, got {len(paths)}")
    names = [p.resolve().name for p in paths]
    if len(set(names)) != len(names):
        raise ConfigError(f"Ref-DAVIS17 result folders need distinct names, got {names}")
    summary_path = Path(out_dir) / SUMMARY_JSON if out_dir is not None else None
    if summary_path is not None:
        run_files = [
            summary_path.parent / name / file
            for name in names
            for file in (PER_FRAME_CSV, PER_SEQUENCE_CSV, GLOBAL_JSON)
        ]
        refuse_existing([summary_path, *run_files], overwrite=overwrite)
    evaluations = tuple(
        evaluate_davis_folders(
            gt_dir,
            path,
            None if out_dir is None else Path(out_dir) / name,
            protocol="unsupervised",
            method=name,
            mask_format=mask_format,
            overwrite=overwrite,
        )
        for path, name in zip(paths, names)
    )
    result = combine_refdavis17_runs([e.global_scores for e in evaluations], expected_runs=expected_runs)
    if summary_path is not None:
        record = {
            "protocol": "Ref-DAVIS17: mean of DAVIS-2017 unsupervised evaluations",
            "J&F": result.jf,
            "J": result.j,
            "F": result.f,
            "runs": {name: {"J&F": e.global_scores.jf_mean, "J": e.global_scores.j_mean, "F": e.global_scores.f_mean}
                     for name, e in zip(names, evaluations)},
        }
        write_text_atomic(summary_path, json.dumps(record, indent=2) + "\n", overwrite=overwrite)
    return result, evaluations
