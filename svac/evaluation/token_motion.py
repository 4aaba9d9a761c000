"""How far do objects move between the images the MLLM reads, in visual tokens? (issue 18's diagnosis)

An expression that names an object by its speed, motion or time can only be followed if the MLLM's visual tokens
show the object's travel. ASTC (SVAC §3.3) gives the MLLM, per clip, the anchor frame and a composite frame
(the clip's other frames tiled ``c x c`` and resized to one frame's size), each read as ``g x g`` tokens
(:func:`svac.mllm.internvl.token_grid_side`). One token of an anchor covers ``W / g x H / g`` pixels of the
video frame; one token of a composite tile ``c`` times that. This measures, from the ground-truth masks, for
each expression that names only time, speed or motion (:data:`svac.evaluation.prompt_probe.VIDEO_ONLY_FAMILIES`):

* ``within_clip``: the distance between the target's mask centroids on the first and the last tile of each
  clip's composite frame, in composite-token widths (x in units of the tile token's width, y of its height);
* ``across_anchors``: the same between consecutive anchor frames, in anchor-token widths;
* ``gap``: for each, the smallest difference between the target's travel and another object's (objects shown
  on both frames): how far apart in tokens the evidence that tells them apart is.

Per family and for all: ``n`` (clip or anchor pairs), the median travel and gap (tokens) and the share under
one token. Objects and their masks come from the expressions that name one object
(:func:`svac.evaluation.visual_probe.single_object_videos`); an object no such expression names is not counted.

Run::

    python -m svac.evaluation.token_motion MODEL --data-root DIR [--split valid] [--videos 40] [--out FILE]

Source: svac's diagnosis for issue 18 (the token scale of the evidence the temporal families need).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Sequence

import numpy as np

from svac.evaluation.prompt_probe import VIDEO_ONLY_FAMILIES, names_only_video_families, refuse_existing_out
from svac.evaluation.visual_probe import single_object_videos

if TYPE_CHECKING:
    from svac.astc import ClipPlan

#: What is measured: travel inside each clip's composite frame, and between consecutive anchor frames.
MEASURES = ("within_clip", "across_anchors")


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else None


def _travel(p: tuple[float, float] | None, q: tuple[float, float] | None, cell_w: float, cell_h: float) -> float | None:
    """Distance from centroid ``p`` to ``q`` in token widths (``cell_w x cell_h`` pixels); ``None`` if either is."""
    return None if p is None or q is None else float(np.hypot((q[0] - p[0]) / cell_w, (q[1] - p[1]) / cell_h))


def frame_pairs(plan: "ClipPlan") -> dict[str, list[tuple[int, int, int]]]:
    """Per measure of :data:`MEASURES`, the ``(first frame, last frame, tiles per side)`` pairs it compares:
    the first and last composite tile of each clip with two or more (``c`` of the clip's composite grid), and
    consecutive anchors (``1``). Frames are video frame indices. Raises ``ValueError`` for a plan not in ``astc``
    mode (no composite frames)."""
    from svac.astc import composite_grid_size

    if plan.mode != "astc":
        raise ValueError(f"token_motion measures ASTC plans; this plan is {plan.mode!r}")
    within = [(c.frame_indices[1], c.frame_indices[-1], composite_grid_size(len(c.frame_indices) - 1))
              for c in plan.clips if len(c.frame_indices) >= 3]
    anchors = plan.anchor_frames()
    return {"within_clip": within, "across_anchors": [(a, b, 1) for a, b in zip(anchors, anchors[1:])]}


def travels(model, samples: Sequence, *, videos: int) -> list[dict]:
    """One row per (video-only expression, frame pair of :func:`frame_pairs`) where the target and at least one
    other object are shown on both frames: ``measure``, ``families``, ``travel`` and ``gap`` (tokens; module
    docstring).

    Raises:
        ValueError: when no expression names a single object with ground truth (or as :func:`frame_pairs`).
    """
    from svac.astc import plan_clips
    from svac.mllm.internvl import token_grid_side

    grid = token_grid_side(model.config.mllm)
    rows = []
    for video_samples in single_object_videos(samples, videos).values():
        plan = plan_clips(video_samples[0].num_frames, model.config.astc)
        pairs = frame_pairs(plan)
        frames = sorted({f for ps in pairs.values() for a, b, _ in ps for f in (a, b)})
        naming = {}
        for s in video_samples:
            naming.setdefault(s.object_ids[0], s)
        masks = {oid: s.load_masks(frames) for oid, s in naming.items()}  # bool (n, H, W) per object
        height, width = next(iter(masks.values())).shape[1:]
        centroids = {oid: dict(zip(frames, map(_centroid, m))) for oid, m in masks.items()}
        # each object's travel on each pair (tokens), once per video; None where it is not shown on both frames
        moved = {(measure, a, b): {oid: _travel(c[a], c[b], width / grid * tiles, height / grid * tiles)
                                   for oid, c in centroids.items()}
                 for measure, measure_pairs in pairs.items() for a, b, tiles in measure_pairs}
        for s in video_samples:
            if not names_only_video_families(s):
                continue
            families = sorted(frozenset(s.meta["families"]))
            for (measure, _, _), travel in moved.items():
                target = travel[s.object_ids[0]]
                others = [t for oid, t in travel.items() if oid != s.object_ids[0] and t is not None]
                if target is not None and others:
                    rows.append({"measure": measure, "families": families, "travel": target,
                                 "gap": min(abs(target - t) for t in others)})
    return rows


def summarise(rows: Sequence[dict]) -> dict:
    """Per measure, per family of :data:`VIDEO_ONLY_FAMILIES` and ``all``: ``n``, ``travel_median``,
    ``travel_under_one``, ``gap_median``, ``gap_under_one`` (tokens, shares)."""
    out: dict = {}
    for measure in MEASURES:
        out[measure] = {}
        for family in (*sorted(VIDEO_ONLY_FAMILIES), "all"):
            chosen = [r for r in rows if r["measure"] == measure and (family == "all" or family in r["families"])]
            travel = np.array([r["travel"] for r in chosen])
            gap = np.array([r["gap"] for r in chosen])
            out[measure][family] = {"n": len(chosen)} | ({
                "travel_median": float(np.median(travel)), "travel_under_one": float((travel < 1).mean()),
                "gap_median": float(np.median(gap)), "gap_under_one": float((gap < 1).mean())} if chosen else {})
    return out


def run(model_path: str, *, data_root: str, split: str = "valid", videos: int = 40) -> dict:
    """Load the model (its ASTC and MLLM settings), measure (:func:`travels`) and summarise; JSON-ready."""
    from svac.astc import composite_grid_size
    from svac.data.readers import load_dataset
    from svac.loading import load_model
    from svac.mllm.internvl import token_grid_side

    model = load_model(model_path, device="cpu")
    rows = travels(model, list(load_dataset(f"rvos:{data_root}", split)), videos=videos)
    astc = model.config.astc
    return {"model": model_path, "data": f"{data_root}:{split}", "videos": videos,
            "token_grid": token_grid_side(model.config.mllm), "num_frames": astc.num_frames, "clip_len": astc.clip_len,
            "composite_tiles_per_side": composite_grid_size(astc.clip_len - 1), **summarise(rows)}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.token_motion MODEL --data-root DIR ...`` (module docstring)."""
    from svac.metrics.output import report_json

    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.token_motion",
                                     description="how far objects move between the MLLM's images, in visual tokens")
    parser.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    parser.add_argument("--data-root", required=True, help="rvos dataset root with ground-truth masks")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--out", default=None, help="write the result as JSON to this file (must not exist)")
    args = parser.parse_args(argv)
    refuse_existing_out(args.out)
    report_json(run(args.model, data_root=args.data_root, split=args.split, videos=args.videos), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
