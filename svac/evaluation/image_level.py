"""Image-level referring evaluation: each expression segmented on single frames of its video.

The image stage of the default model's recipe (``configs/train/svac_default_1_image.yaml``) trains
SAM-2 on single frames without memory; a video-level evaluation of such a model would measure
SAM-2's untrained memory more than its grounding. This evaluation asks each expression on
``frames_per_expression`` frames (spread evenly over the frames showing every object of its video, so
the expressions of one video are compared on the same frames; over the frames showing its own object
when no frame shows them all), each frame
as a one-frame video (the MLLM sees it as one clip; SAM-2 segments it on its own, exactly like the
image stage trains), and reports DAVIS J and F per frame averaged per expression and then over
expressions, with a bootstrap interval, per attribute family, and the pair-identity rate on those
frames (:mod:`svac.evaluation.expression_stats`).

Run::

    python -m svac.evaluation.image_level MODEL --data-root DIR [--split valid] [--frames 3] [--out FILE]

Source: svac's learning curves for issue 18.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from svac.evaluation.expression_stats import PAIR_IDENTITY_IOU, bootstrap_mean, family_scores, pair_identity
from svac.metrics.davis import contour_accuracy, region_similarity

#: Frames per expression, spread evenly over the frames where its object is visible.
DEFAULT_FRAMES = 3


@dataclass(frozen=True)
class ImageLevelResult:
    """What :func:`evaluate_image_level` measured.

    Attributes:
        scores: ``{"J&F", "J", "F", "J&F_ci95", "n_expressions", "families", "pair_identity"}``.
        per_item: per expression ``{"key", "J", "F", "families"}``.
    """

    scores: dict
    per_item: list[dict]


def evenly_spaced(indices: np.ndarray, count: int) -> np.ndarray:
    """``count`` entries of ``indices`` spread evenly from the first to the last (all of them when fewer)."""
    if len(indices) <= count:
        return indices
    return indices[np.linspace(0, len(indices) - 1, count).round().astype(int)]


def evaluate_image_level(model, samples: Sequence, *, frames_per_expression: int = DEFAULT_FRAMES) -> ImageLevelResult:
    """Segment every sample's expression on single frames and score them.

    Args:
        model: anything with ``segment(frames, expression)`` (:class:`svac.SVAC`).
        samples: :class:`~svac.data.sample.ReferringSample` s with ground truth.
        frames_per_expression: frames scored per expression (where its object is visible).

    Returns:
        An :class:`ImageLevelResult`.

    Raises:
        ValueError: when ``samples`` is empty or ``frames_per_expression`` < 1.
    """
    from svac.video.reader import FramePathsVideo

    if not samples or frames_per_expression < 1:
        raise ValueError("need at least one sample and frames_per_expression >= 1")
    rows, predictions, items = [], {}, []
    families = {}
    by_video: dict[str, list] = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(s)
    for video_id, group in by_video.items():
        video = FramePathsVideo(group[0].frame_paths, name=video_id, check_sizes=False)
        truths = [s.load_masks() for s in group]
        visible = [set(np.nonzero(gt.reshape(len(gt), -1).any(1))[0].tolist()) for gt in truths]
        shared = sorted(set.intersection(*visible))  # frames showing every object of the video
        for s, gt, seen in zip(group, truths, visible):
            picks = evenly_spaced(np.array(shared or sorted(seen), dtype=np.int64), frames_per_expression)
            if len(picks) == 0:
                continue
            frames = video.read(picks)
            pred = np.stack([model.segment([frame], s.expression).masks.any(axis=0)[0] for frame in frames])
            j = region_similarity(pred, gt[picks])
            f = contour_accuracy(pred, gt[picks])
            key = f"{video_id}/{s.exp_id}"
            rows.append({"key": key, "J": float(np.mean(j)), "F": float(np.mean(f)),
                         "families": list(s.meta.get("families") or ())})
            families[key] = rows[-1]["families"]
            if shared:  # pairs are compared on the same frames
                predictions[key] = pred
                items.append((key, video_id, tuple(s.object_ids)))
    if not rows:
        raise ValueError("no expression has a visible object to score")
    identity = pair_identity(items, predictions.__getitem__)
    jf = bootstrap_mean([(r["J"] + r["F"]) / 2 for r in rows])
    scores = {"J&F": jf.mean, "J": float(np.mean([r["J"] for r in rows])),
              "F": float(np.mean([r["F"] for r in rows])), "J&F_ci95": [jf.low, jf.high], "n_expressions": jf.n,
              "pair_identity": identity.to_dict()}
    if any(families.values()):
        scores["families"] = family_scores(rows, families)
    return ImageLevelResult(scores=scores, per_item=rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.image_level MODEL --data-root DIR [--split S] [--frames N] [--out FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.image_level",
                                     description="image-level referring evaluation (single frames, no memory)")
    parser.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    parser.add_argument("--data-root", required=True, help="an rvos dataset root (e.g. the synthetic benchmark)")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per expression")
    parser.add_argument("--out", default=None, help="write the scores as JSON to this file (must not exist)")
    args = parser.parse_args(argv)
    from svac.data.readers import load_dataset
    from svac.loading import load_model
    from svac.metrics.output import report_json

    model = load_model(args.model, device="cpu")
    result = evaluate_image_level(model, list(load_dataset(f"rvos:{args.data_root}", args.split)),
                                  frames_per_expression=args.frames)
    report_json({"model": args.model, "data_root": args.data_root, "split": args.split,
                 "frames_per_expression": args.frames, "pair_identity_iou": PAIR_IDENTITY_IOU,
                 "scores": result.scores}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
