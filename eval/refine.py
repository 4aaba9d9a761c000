"""``svac bench refine``: what a correction click does to J, and what a refinement costs per frame.

Usage (from a checkout; ``svac bench refine ARGS`` runs this script)::

    python eval/refine.py [--model M] [--seed 3] [--frames 24] [--frame 8] [--repeats 3] [--out refine.json]

On a synthetic video drawn with ``--seed`` (``svac.data.synthetic``, 160x120, two objects, its
ground truth known) the model segments the first expression; then, at frame ``--frame``:

* ``positive click``: a click on the target (the mask pixel nearest its centroid);
* ``negative click``: a click on a false-positive pixel of the mask (when there is one);
* ``box``: the target's bounding box;
* ``click, no [SEG]``: the same positive click on the object with its ``[SEG]`` prompt removed
  (an answer without ``[SEG]``: empty before the click, tracked from the click alone);
* ``wrong [SEG]``: a mask wrong on purpose -- the video segmented with an expression naming the
  *other* object, J still measured against the first expression's target -- then the same positive
  click on the target, or a negative click on the false-positive pixel nearest the centroid of the
  false positives (the wrongly covered object).

For each: J (region IoU with the ground truth) on the clicked frame and the mean over the frames
after it and before it, before and after; false-positive pixels on the clicked frame. Timing:
the refinement's wall time per video frame (median of ``--repeats``), and the ratio to the
SAM-2 stage of ``segment`` on the same frames (measured in the same run). Prints a table and
writes ``--out`` (JSON) when given. One thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def nearest_to_centroid(region: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the ``region`` pixel (``bool (H, W)``, not empty) nearest the region's centroid (pixels)."""
    ys, xs = np.nonzero(region)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return int(xs[k]), int(ys[k])


def summarize(masks: np.ndarray, gt: np.ndarray, frame: int) -> dict:
    """J on ``frame``, mean J after and before it, false-positive pixels on ``frame``."""
    from svac.metrics.davis import region_similarity

    js = region_similarity(masks, gt).tolist()
    return {"J_frame": round(js[frame], 4),
            "J_after": round(float(np.mean(js[frame + 1:])), 4) if frame + 1 < len(js) else None,
            "J_before": round(float(np.mean(js[:frame])), 4) if frame > 0 else None,
            "false_positive_px": int((masks[frame] & ~gt[frame]).sum())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model (default: the bundled default model)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the synthetic video")
    parser.add_argument("--frames", type=int, default=24, help="frames of the synthetic video")
    parser.add_argument("--frame", type=int, default=8, help="the frame clicked")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the positive click")
    parser.add_argument("--out", default=None, help="JSON file to write (must not exist)")
    args = parser.parse_args(argv)
    if args.out is not None and Path(args.out).exists():
        parser.error(f"--out {args.out} exists; choose another file")
    if not 0 <= args.frame < args.frames:
        parser.error(f"--frame must be in 0..{args.frames - 1}")

    import torch

    from svac.data.synthetic.generator import VideoSpec, generate_video
    from svac.loading import load_model

    torch.set_num_threads(1)
    model = load_model(args.model)
    video = generate_video(np.random.default_rng(args.seed), VideoSpec(num_frames=(args.frames, args.frames),
                                                                        num_objects=(2, 2)))
    expression = video.expressions[0]
    gt = video.object_mask(expression.obj_id)
    i = args.frame
    result = model.segment(video.frames, expression.text)
    sam2_seconds = result.timings.sam2_encoder + result.timings.sam2_tracking + result.timings.sam2_preprocess
    ys, xs = np.nonzero(gt[i])
    click = tuple(float(c) for c in nearest_to_centroid(gt[i]))
    rows = {"segment": summarize(result.masks[0], gt, i)}
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        refined = result.refine(frame=i, points=[click], labels=[1])
        times.append(time.perf_counter() - start)
    rows["positive click"] = summarize(refined.masks[0], gt, i)
    fy, fx = np.nonzero(result.masks[0, i] & ~gt[i])
    if len(fx):
        k = len(fx) // 2
        rows["negative click"] = summarize(result.refine(frame=i, points=[(float(fx[k]), float(fy[k]))],
                                                         labels=[0]).masks[0], gt, i)
    rows["box"] = summarize(result.refine(frame=i, box=(float(xs.min()), float(ys.min()), float(xs.max() + 1),
                                                        float(ys.max() + 1))).masks[0], gt, i)
    t = result.tracking
    empty = dataclasses.replace(result, masks=np.zeros_like(result.masks),
                                tracking=dataclasses.replace(t, prompts=t.prompts[:, :0], tracked=()))
    rows["no [SEG], before"] = summarize(empty.masks[0], gt, i)
    rows["no [SEG], positive click"] = summarize(empty.refine(frame=i, points=[click], labels=[1]).masks[0], gt, i)
    other = next((e for e in video.expressions if e.obj_id != expression.obj_id), None)
    if other is not None:
        wrong = model.segment(video.frames, other.text)
        rows["wrong [SEG], before"] = summarize(wrong.masks[0], gt, i)
        rows["wrong [SEG], positive click"] = summarize(wrong.refine(frame=i, points=[click], labels=[1]).masks[0],
                                                        gt, i)
        false = wrong.masks[0, i] & ~gt[i]
        if false.any():
            x, y = nearest_to_centroid(false)
            rows["wrong [SEG], negative click"] = summarize(
                wrong.refine(frame=i, points=[(float(x), float(y))], labels=[0]).masks[0], gt, i)
    seconds = statistics.median(times)
    report = {"model": model.config.name, "video": {"seed": args.seed, "frames": args.frames, "size": [160, 120],
                                                    "expression": expression.text},
              "wrong_expression": other.text if other is not None else None, "clicked_frame": i, "click": list(click), "rows": rows,
              "refine_seconds": round(seconds, 4), "refine_ms_per_frame": round(1000 * seconds / args.frames, 2),
              "segment_sam2_ms_per_frame": round(1000 * sam2_seconds / args.frames, 2),
              "refine_over_segment_sam2": round(seconds / max(sam2_seconds, 1e-9), 2)}
    print(f"{model.config.name}, synthetic seed {args.seed} ({args.frames} frames), '{expression.text}', "
          f"click ({click[0]:.0f}, {click[1]:.0f}) on frame {i}")
    if other is not None:
        print(f"wrong [SEG]: segmented with '{other.text}' (another object)")
    print(f"{'':28s} {'J frame':>8s} {'J after':>8s} {'J before':>9s} {'FP px':>6s}")
    for name, r in rows.items():
        cells = [r["J_frame"], r["J_after"], r["J_before"]]
        text = " ".join(f"{c:8.3f}" if c is not None else f"{'-':>8s}" for c in cells)
        print(f"{name:28s} {text}  {r['false_positive_px']:6d}")
    print(f"refine: {report['refine_ms_per_frame']} ms per frame ({seconds:.2f} s for {args.frames} frames), "
          f"{report['refine_over_segment_sam2']} x segment's SAM-2 stage ({report['segment_sam2_ms_per_frame']} ms "
          "per frame)")
    if args.out is not None:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
