"""``svac bench peer``: svac's per-frame core against SAM-2's own ``SAM2VideoPredictor``, same weights, interleaved.

Usage (from a checkout; ``svac bench peer ARGS`` runs this script)::

    python eval/peer.py --out runs/bench/peer                       # blackswan + a generated 128x128 video
    python eval/peer.py --videos examples/blackswan.mp4 --generated 854x480x300 --repeats 5 --out DIR

What is compared, and why it is fair:

* **Same weights.** svac's SAM-2 (from ``--model``, default: the default model) is saved as a
  Meta-format ``.pt`` (``{"model": state_dict}``) and loaded strictly into ``SAM2VideoPredictor``
  built from the same typed config (sizes and options); svac-only options are dropped and hole
  filling is off on the predictor (svac does none).
* **Same prompt, same object.** SAM-2's predictor takes a mask on frame 0; svac takes its
  ``[SEG]`` prompts from its MLLM. Each svac run first lets its MLLM answer (untimed, reported
  apart as ``svac MLLM s``); the predictor is given svac's own frame-0 mask (from a warm-up run),
  so both track the same object from the same start. When svac's frame-0 mask is empty the
  predictor gets the generated video's red-square mask, or a centred box on a file; per-frame
  work does not depend on the mask's content.
* **Same work per frame, timed the same way.** The core of each side runs from opening the video
  to a thresholded, full-size boolean mask of every frame, handed to the same sink (per-frame
  area): decoding, SAM-2 preprocessing, image encoder, memory attention, mask decoder, memory
  encoder, upsampling, thresholding. The predictor's core is ``init_state`` +
  ``add_new_mask(frame 0)`` + ``propagate_in_video``; svac's is its grounding stage.
* **Same conditions.** Every run is a fresh process with one thread (torch, OpenMP, MKL); svac
  and predictor runs alternate (ABBA order over repeats), so background load slows both alike.
  Ratios are per pair (svac run ÷ the predictor run next to it) of the core's CPU time (process
  time over all threads: on a CPU shared with other jobs it moves far less than wall time, which
  is given too); the table gives their median and range. Peak RSS is each process's ``ru_maxrss``
  (imports + model + run).

With ``--modules`` each video also gets one instrumented run per side (after the timed pairs), and
``peer.md`` a second table: CPU ms per frame in each SAM-2 part (``bench_worker.py --modules``) and,
for svac, its own stages (decoding, preprocessing, upsampling; wall seconds from its timings).

Outputs in ``--out``: ``peer.md`` (table, notes, machine load), ``peer.csv``, ``peer.json`` (every run),
``peer.png`` (ms per frame per video, both sides, ratio on top).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

NAME = "peer"
#: Targets of issue 14: svac ÷ predictor core time per frame, by frame size.
TARGETS = {(854, 480): 0.8, (128, 128): 0.7}
COLUMNS = ("video", "size", "frames", "svac CPU ms/frame", "predictor CPU ms/frame", "ratio (median)", "ratio min",
           "ratio max", "target", "met", "wall ratio (median)", "svac wall ms/frame", "predictor wall ms/frame",
           "svac peak RSS MiB", "predictor peak RSS MiB", "svac MLLM s", "predictor prompt")
REPO = Path(__file__).resolve().parents[1]
#: Columns of the ``--modules`` table: (title, side, key in ``modules_ms_per_frame`` or svac's timings).
PART_COLUMNS = (("image encoder", "forward_image"), ("track_step", "track_step"),
                ("memory conditioning", "_prepare_memory_conditioned_features"),
                ("memory attention", "memory_attention"), ("prompt encoder", "sam_prompt_encoder"),
                ("mask decoder", "sam_mask_decoder"), ("memory encoder", "memory_encoder"))
SVAC_STAGES = (("decode", "frame_decode"), ("preprocess", "sam2_preprocess"), ("upsample+threshold", "mask_upsample"))


def export_sam2(model_spec: str | None, cache: Path) -> tuple[Path, Path, str]:
    """svac's SAM-2 as a Meta ``.pt`` plus its typed config as JSON; returns the paths and the model name."""
    import warnings

    from svac.checkpoints.sam2_meta import save_meta_checkpoint
    from svac.grounding.sam2_model import load_sam2_checkpoint
    from svac.loading import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(model_spec, device="cpu")
    cache.mkdir(parents=True, exist_ok=True)
    pt, cfg = cache / "sam2_from_svac.pt", cache / "sam2_from_svac.json"
    save_meta_checkpoint(model.grounding, pt)
    cfg.write_text(json.dumps(dataclasses.asdict(model.config.sam2)))
    load_sam2_checkpoint(model.grounding, str(pt))  # the file loads back strictly: same keys, same shapes
    return pt, cfg, model.config.name


def _box_mask(video: Path, path: Path) -> None:
    from PIL import Image

    from svac.video.reader import open_video

    src = open_video(video)
    m = np.zeros((src.height, src.width), dtype=np.uint8)
    m[src.height // 4:3 * src.height // 4, src.width // 4:3 * src.width // 4] = 255
    Image.fromarray(m, mode="L").save(path)


def measure_video(video: Path, fallback_mask: Path | None, args, pt: Path, cfg: Path, work: Path) -> dict:
    """Warm-up, then ``args.repeats`` interleaved pairs on one video; returns its row and runs."""
    from PIL import Image

    svac_args = ["svac-core", video, "--query", args.query] + (["--model", args.model] if args.model else [])
    mask = work / f"{video.stem}_svac_frame0.png"
    warm = bc.run_worker(svac_args + ["--mask-out", mask])
    prompt = "svac's frame-0 mask"
    if not (np.asarray(Image.open(mask)) > 0).any():
        if fallback_mask is not None:
            mask, prompt = fallback_mask, "generated red-square mask (svac's frame 0 was empty)"
        else:
            _box_mask(video, mask)
            prompt = "centred box (svac's frame 0 was empty)"
    pred_args = ["predictor", video, "--sam2-pt", pt, "--sam2-config", cfg, "--mask", mask]
    bc.run_worker(pred_args)  # warm-up of the predictor side too (file cache, lazy imports compiled)
    runs = []
    for r in range(args.repeats):
        order = ("svac", "predictor") if r % 2 == 0 else ("predictor", "svac")
        pair = {}
        for side in order:
            report = bc.run_worker(svac_args if side == "svac" else pred_args)
            report["side"], report["repeat"] = side, r
            pair[side] = report
            runs.append(report)
        s, p = pair["svac"], pair["predictor"]
        print(f"  {video.name} repeat {r}: svac {1e3 * s['core_cpu_seconds'] / s['frames']:.1f} CPU ms/frame, "
              f"predictor {1e3 * p['core_cpu_seconds'] / p['frames']:.1f} CPU ms/frame "
              f"(wall {1e3 * s['core_seconds'] / s['frames']:.1f} / {1e3 * p['core_seconds'] / p['frames']:.1f})",
              flush=True)
    svac_runs = [x for x in runs if x["side"] == "svac"]
    pred_runs = [x for x in runs if x["side"] == "predictor"]
    frames = svac_runs[0]["frames"]
    if pred_runs[0]["frames"] != frames:
        raise RuntimeError(f"{video}: svac read {frames} frames, the predictor {pred_runs[0]['frames']}")
    cpu_ratios = [s["core_cpu_seconds"] / p["core_cpu_seconds"] for s, p in zip(svac_runs, pred_runs)]
    wall_ratios = [s["core_seconds"] / p["core_seconds"] for s, p in zip(svac_runs, pred_runs)]
    from svac.video.reader import open_video

    src = open_video(video)
    target = TARGETS.get((src.width, src.height))
    ratio = bc.median(cpu_ratios)
    row = {"video": video.name, "size": f"{src.width}x{src.height}", "frames": frames,
           "svac CPU ms/frame": 1e3 * bc.median([x["core_cpu_seconds"] for x in svac_runs]) / frames,
           "predictor CPU ms/frame": 1e3 * bc.median([x["core_cpu_seconds"] for x in pred_runs]) / frames,
           "ratio (median)": ratio, "ratio min": min(cpu_ratios), "ratio max": max(cpu_ratios), "target": target,
           "met": None if target is None else ("yes" if ratio <= target else "no"),
           "wall ratio (median)": bc.median(wall_ratios),
           "svac wall ms/frame": 1e3 * bc.median([x["core_seconds"] for x in svac_runs]) / frames,
           "predictor wall ms/frame": 1e3 * bc.median([x["core_seconds"] for x in pred_runs]) / frames,
           "svac peak RSS MiB": max(x["peak_rss_mib"] for x in svac_runs),
           "predictor peak RSS MiB": max(x["peak_rss_mib"] for x in pred_runs),
           "svac MLLM s": bc.median([x["mllm_seconds"] for x in svac_runs]), "predictor prompt": prompt}
    result = {"row": row, "runs": runs, "warmup": warm}
    if args.modules:
        result["parts"] = {"svac": bc.run_worker(svac_args + ["--modules"]), "predictor": bc.run_worker(
            pred_args + ["--modules"])}
    return result


def parts_table(results: list[dict], names: list[str]) -> str:
    """The ``--modules`` table: per video and side, CPU ms per frame in each SAM-2 part (and svac's own stages)."""
    head = ["video", "side", "core CPU"] + [t for t, _ in PART_COLUMNS] + [t for t, _ in SVAC_STAGES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, result in zip(names, results):
        for side in ("svac", "predictor"):
            run = result["parts"][side]
            parts = run.get("modules_ms_per_frame") or {}
            cells = [name, side, f"{1e3 * run['core_cpu_seconds'] / run['frames']:.2f}"]
            cells += [f"{parts[k]:.2f}" if k in parts else "" for _, k in PART_COLUMNS]
            timings = run.get("timings") or {}
            cells += [f"{1e3 * timings[k] / run['frames']:.2f}" if k in timings else "" for _, k in SVAC_STAGES]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 3.6))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["svac CPU ms/frame"] for r in rows], 0.4, label="svac (grounding core)")
    ax.bar(x + 0.2, [r["predictor CPU ms/frame"] for r in rows], 0.4, label="SAM2VideoPredictor")
    for i, r in enumerate(rows):
        top = max(r["svac CPU ms/frame"], r["predictor CPU ms/frame"])
        ax.text(i, top * 1.02, f"{r['ratio (median)']:.2f}x", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [f"{r['video']}\n{r['size']}, {r['frames']} fr" for r in rows], fontsize=8)
    ax.set_ylabel("core CPU time per frame (ms), 1 thread")
    ax.set_title("svac vs SAM-2's video predictor, same weights (ratio on top)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_generated(text: str) -> tuple[int, int, int]:
    try:
        w, h, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxHxN (e.g. 128x128x300), got {text!r}") from None
    if min(w, h, n) < 1:
        raise argparse.ArgumentTypeError(f"sizes and frame count must be positive, got {text!r}")
    return w, h, n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svac bench peer", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="svac model (default: the default model)")
    p.add_argument("--videos", nargs="*", default=[str(REPO / "examples" / "blackswan.mp4")],
                   help="video files to measure (default: examples/blackswan.mp4)")
    p.add_argument("--generated", nargs="*", type=parse_generated, default=[(128, 128, 300)], metavar="WxHxN",
                   help="generated videos to measure (default: 128x128x300)")
    p.add_argument("--query", default="the red square", help="svac's query (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved pairs per video (default: %(default)s)")
    p.add_argument("--out", default="runs/bench/peer", help="output folder (default: %(default)s)")
    p.add_argument("--cache", default="runs/bench/cache", help="generated videos and the exported SAM-2 (default: "
                   "%(default)s)")
    p.add_argument("--modules", action="store_true", help="also one instrumented run per side and video: CPU ms per "
                   "frame in each SAM-2 part")
    p.add_argument("--overwrite", action="store_true", help="replace this study's files in --out")
    return p


def main(argv=None) -> int:
    """Parse the arguments, then run the study with ``--out`` checked and locked first (see :func:`study`)."""
    return bc.run_locked(build_parser, study, argv)


def study(args) -> int:
    """Run the study with parsed ``args``; returns the exit code."""
    if args.repeats < 1:
        raise SystemExit("svac bench peer: --repeats must be >= 1")
    out, cache = Path(args.out), Path(args.cache)
    started, before = bc.start_study(out, NAME, args.overwrite)
    pt, cfg, model_name = export_sam2(args.model, cache)
    work = cache / "peer_masks"
    work.mkdir(parents=True, exist_ok=True)
    videos = [(Path(v), None) for v in args.videos]
    videos += [bc.generated_video(cache, w, h, n) for w, h, n in args.generated]
    results = []
    for video, fallback in videos:
        print(f"peer: {video}", flush=True)
        results.append(measure_video(video, fallback, args, pt, cfg, work))
    rows = [r["row"] for r in results]
    note = {"machine_at_start": before, "machine_at_end": bc.machine_note(), **bc.svac_version_note()}
    markdown = "\n\n".join([
        f"# svac vs SAM2VideoPredictor: core time per frame (model {model_name}, 1 thread, {args.repeats} "
        "interleaved pairs per video)",
        bc.markdown_table(rows, COLUMNS),
        "Core = from opening the video to a thresholded full-size mask of every frame (see eval/peer.py). "
        "Ratio = svac ÷ predictor core CPU time (process time, all threads) per interleaved pair, median and "
        "range; the wall-time ratio is given too (it moves with the other jobs' load). Peak RSS = ru_maxrss of "
        "each run's process.",
        f"svac: {note['svac_from']} (commit {note['commit']}). Load average at start "
        f"{before['load_average_1_5_15']} on {before['cpus']} CPUs; other busy processes: "
        + ("; ".join(f"{p['cpu_percent']}% {p['command']}" for p in before["other_busy_processes"]) or "none"),
        f"Wall time of the study: {time.perf_counter() - started:.0f} s.",
    ] + ([
        "CPU ms per frame by part (one instrumented run per side and video, after the timed pairs; svac's decode, "
        "preprocess and upsample columns are wall ms from its timings):",
        parts_table(results, [f"{r['video']} {r['size']}x{r['frames']}" for r in rows]),
    ] if args.modules else [])) + "\n"
    report = {"study": NAME, "model": model_name, "query": args.query, "repeats": args.repeats, "rows": rows,
              "videos": [{"video": str(v), "runs": r["runs"], "warmup": r["warmup"], "parts": r.get("parts")}
                         for (v, _), r in zip(videos, results)], "notes": note}
    return bc.publish_study(out, NAME, markdown=markdown, rows=rows, columns=COLUMNS, report=report,
                           figure=plot(rows), overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
