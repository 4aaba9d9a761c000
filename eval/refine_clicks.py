"""What one correction click or box does to J, averaged over synthetic videos (the README's click table).

Usage (from a checkout)::

    svac bench refine-clicks [--model M] [--videos 20] [--first-seed 100] [--frame 8] [--frames 24] [--objects 2]
                             [--after-correction seg|memory] [--out clicks.json]

Each video is drawn as ``svac bench refine`` draws its one (``svac.data.synthetic``, 160x120, 24
frames, two objects; seeds ``--first-seed`` on; ``--frames N`` and ``--objects K`` or ``--objects MIN-MAX``
draw longer videos with more objects); the target is its first expression's object. The
video is segmented twice: with that expression (``own``) and with an expression naming the other
object (``wrong``: a mask wrong on purpose, still scored against the target). Each result is then
refined at ``--frame`` with a positive click on the target pixel nearest the target's centroid, or
a negative click on the false-positive pixel nearest the false positives' centroid, or with a box: the
target's bounding box on that frame (pixel edges ``(x0, y0, x1 + 1, y1 + 1)``). Prints, per
row, the mean J on the clicked frame and on the frames after it and the mean false-positive pixels
there (videos whose target is absent from the clicked frame are skipped; a negative click needs a
false positive, so its row holds fewer videos and prints the same videos' values before it).
One thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from refine import nearest_to_centroid  # eval/refine.py (this script's folder)

ROWS = ("own", "own + positive click", "own + negative click", "own + box", "wrong", "wrong + positive click",
        "wrong + negative click", "wrong + box")


def object_range(text: str) -> tuple[int, int]:
    """``"K"`` or ``"MIN-MAX"`` (objects per video, 2 or more: a wrong ``[SEG]`` names another object) as ``(min, max)``.

    Raises:
        argparse.ArgumentTypeError: naming the value, for anything else.
    """
    parts = text.split("-")
    if len(parts) in (1, 2) and all(p.isdigit() for p in parts):
        lo, hi = int(parts[0]), int(parts[-1])
        if 2 <= lo <= hi:
            return lo, hi
    raise argparse.ArgumentTypeError(f"--objects {text!r}: expected K or MIN-MAX with 2 <= MIN <= MAX")


def frame_scores(masks: np.ndarray, truth: np.ndarray, frame: int) -> dict:
    """J on ``frame`` and mean J after it; false-positive pixels on ``frame`` and mean after it (``bool (N, H, W)``)."""
    from svac.metrics.davis import region_similarity

    j = region_similarity(masks, truth)
    fp = (masks & ~truth).sum(axis=(1, 2))
    return {"J_frame": float(j[frame]), "J_after": float(j[frame + 1:].mean()),
            "FP_frame": float(fp[frame]), "FP_after": float(fp[frame + 1:].mean())}


def pixel_centre(region: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` centre of the ``region`` pixel nearest its centroid (:func:`refine.nearest_to_centroid` + 0.5)."""
    x, y = nearest_to_centroid(region)
    return x + 0.5, y + 0.5


def bounding_box(region: np.ndarray) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` pixel edges of the box around ``bool (H, W)`` ``region`` (non-empty): the box refine takes."""
    ys, xs = np.nonzero(region)
    return float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model (default: the bundled default model)")
    parser.add_argument("--videos", type=int, default=20, help="synthetic videos drawn")
    parser.add_argument("--first-seed", type=int, default=100, help="seed of the first video")
    parser.add_argument("--frame", type=int, default=8, help="the frame clicked (of --frames)")
    parser.add_argument("--frames", type=int, default=24, help="frames per video")
    parser.add_argument("--objects", type=object_range, default=(2, 2),
                        help="objects per video: K, or MIN-MAX drawn per video (default 2)")
    parser.add_argument("--out", default=None, help="JSON file to write (must not exist)")
    parser.add_argument("--after-correction", choices=("seg", "memory"), default=None,
                        help="what the frames after the click read (svac.grounding.replay); default: the model's "
                             "(memory with a memory tracker, else seg)")
    args = parser.parse_args(argv)
    if args.out is not None and Path(args.out).exists():
        parser.error(f"--out {args.out} exists; choose another file")
    if args.videos < 1 or args.frames < 2 or not 0 <= args.frame < args.frames - 1:
        parser.error(f"--videos must be >= 1, --frames >= 2 and --frame in 0..{args.frames - 2}")

    import torch

    from svac.data.synthetic.generator import VideoSpec, generate_video
    from svac.grounding.replay import default_after_correction
    from svac.loading import load_model

    torch.set_num_threads(1)
    model = load_model(args.model)
    after_correction = args.after_correction or default_after_correction(model)
    i = args.frame
    rows: dict[str, list] = {name: [] for name in ROWS}
    for seed in range(args.first_seed, args.first_seed + args.videos):
        spec = VideoSpec(num_frames=(args.frames, args.frames), num_objects=args.objects)
        video = generate_video(np.random.default_rng(seed), spec)
        target = video.expressions[0]
        others = [e for e in video.expressions if e.obj_id != target.obj_id]
        truth = video.object_mask(target.obj_id)
        if not truth[i].any() or not others:
            continue
        click, box = pixel_centre(truth[i]), bounding_box(truth[i])
        for name, text in (("own", target.text), ("wrong", others[0].text)):
            result = model.segment(video.frames, text)
            before = frame_scores(result.masks[0], truth, i)
            rows[name].append(before)
            rows[f"{name} + positive click"].append(
                frame_scores(result.refine(frame=i, points=[click], labels=[1],
                                           after_correction=after_correction).masks[0], truth, i))
            rows[f"{name} + box"].append(frame_scores(
                result.refine(frame=i, box=box, after_correction=after_correction).masks[0], truth, i))
            false = result.masks[0, i] & ~truth[i]
            if false.any():
                after = result.refine(frame=i, points=[pixel_centre(false)], labels=[0],
                                      after_correction=after_correction).masks[0]
                rows[f"{name} + negative click"].append({**frame_scores(after, truth, i), "before": before})
    report = {"model": model.config.name, "after_correction": after_correction, "videos": args.videos,
              "frames": args.frames, "objects": list(args.objects),
              "first_seed": args.first_seed, "clicked_frame": i, "rows": {}}
    print(f"{model.config.name}: {len(rows['own'])} videos, click on frame {i}, after_correction "
          f"{after_correction}")
    print(f"{'':24s} {'n':>3s} {'J frame':>8s} {'J after':>8s} {'FP frame':>9s} {'FP after':>9s}")
    for name, scores in rows.items():
        if not scores:
            continue
        mean = {k: float(np.mean([s[k] for s in scores])) for k in ("J_frame", "J_after", "FP_frame", "FP_after")}
        line = (f"{name:24s} {len(scores):3d} {mean['J_frame']:8.3f} {mean['J_after']:8.3f} {mean['FP_frame']:9.1f} "
                f"{mean['FP_after']:9.1f}")
        if "before" in scores[0]:
            mean["before"] = {k: float(np.mean([s["before"][k] for s in scores])) for k in mean}
            line += f"   (before, same videos: J {mean['before']['J_frame']:.3f}, FP {mean['before']['FP_frame']:.1f})"
        report["rows"][name] = {"n": len(scores), **mean,
                                "per_video": [{k: s[k] for k in ("J_frame", "J_after")} for s in scores]}
        print(line)
    if args.out is not None:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
