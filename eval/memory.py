"""``svac bench memory``: peak RSS against video length, svac vs SAM-2's ``SAM2VideoPredictor``.

Usage (from a checkout; ``svac bench memory ARGS`` runs this script)::

    python eval/memory.py --out runs/bench/memory                   # 100, 300, 1000, 3000 frames of 854x480
    python eval/memory.py --frames 100 300 --size 854x480 --out DIR

For each length N a video of N generated 854x480 frames (moving red square and blue disc, H.264)
is written once into ``--cache``; then each side runs once per N, each in a fresh process with one
thread, and its peak RSS (``ru_maxrss``: imports + model + run) is recorded:

* ``svac segment`` -- the whole job as the command line runs it (in-process CLI entry): MLLM,
  SAM-2 over every frame, one mask PNG per frame, ``overlay.mp4``, ``result.json``;
* ``svac core`` -- svac's grounding stage only, masks handed to a sink (as ``eval/peer.py``);
* ``predictor`` -- ``SAM2VideoPredictor`` with svac's SAM-2 weights, prompted by the red square's
  frame-0 mask: ``init_state`` + ``add_new_mask`` + ``propagate_in_video``, masks thresholded into
  the same sink.

Runs go shortest video first, sides interleaved. The table gives each side's peak RSS per N and
its ratio to the same side at the shortest N (target for svac at 3000 vs 100 frames: <= 1.1), plus,
from the ``svac segment`` runs, the share of the job spent taking the MLLM's frames
(``timings.video_decode`` ÷ job wall time; target <= 5 % at 1000 frames) and the overlay writer's
milliseconds per frame when the job reports it (target <= 15 ms at 854x480).

Outputs in ``--out``: ``memory.md``, ``memory.csv``, ``memory.json`` (every run), ``memory.png``
(peak RSS vs frames, one line per side).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
from peer import export_sam2  # noqa: E402

NAME = "memory"
SIDES = ("svac-segment", "svac-core", "predictor")
LABELS = {"svac-segment": "svac segment (job)", "svac-core": "svac core", "predictor": "SAM2VideoPredictor"}
#: Targets of issue 14.
RSS_RATIO_TARGET = 1.1
SAMPLING_SHARE_TARGET = 0.05
OVERLAY_MS_TARGET = 15.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svac bench memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="svac model (default: the default model)")
    p.add_argument("--frames", nargs="+", type=int, default=[100, 300, 1000, 3000], help="video lengths (frames)")
    p.add_argument("--size", default="854x480", help="frame size WxH (default: %(default)s)")
    p.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="what to measure (default: all)")
    p.add_argument("--query", default="the red square", help="svac's query (default: %(default)s)")
    p.add_argument("--out", default="runs/bench/memory", help="output folder (default: %(default)s)")
    p.add_argument("--cache", default="runs/bench/cache", help="generated videos, exported SAM-2 (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace this study's files in --out")
    return p


def plot(rows: list[dict], sides):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    frames = [r["frames"] for r in rows]
    for side in sides:
        ax.plot(frames, [r[f"{side} peak RSS MiB"] for r in rows], marker="o", label=LABELS[side])
    ax.set_xscale("log")
    ax.set_xticks(frames, [str(f) for f in frames])
    ax.set_xlabel("video length (frames, 854x480)" if rows else "frames")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("Peak RSS vs video length (one process per run, 1 thread)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """Parse the arguments, then run the study with ``--out`` checked and locked first (see :func:`study`)."""
    return bc.run_locked(build_parser, study, argv)


def study(args) -> int:
    """Run the study with parsed ``args``; returns the exit code."""
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise SystemExit(f"svac bench memory: --size must be WxH, got {args.size!r}") from None
    if min(args.frames) < 1:
        raise SystemExit("svac bench memory: --frames must be positive")
    out, cache = Path(args.out), Path(args.cache)
    started, before = bc.start_study(out, NAME, args.overwrite)
    pt, cfg, model_name = export_sam2(args.model, cache)
    model_args = ["--model", args.model] if args.model else []
    lengths = sorted(set(args.frames))
    rows, runs = [], []
    with tempfile.TemporaryDirectory(prefix="svac-bench-memory-") as tmp:
        for n in lengths:
            video, mask = bc.generated_video(cache, width, height, n)
            row = {"frames": n}
            for side in args.sides:
                if side == "svac-segment":
                    rep = bc.run_worker(["svac-segment", video, "--query", args.query, "--out", Path(tmp) / f"seg{n}"]
                                        + model_args)
                    t = rep["timings"]
                    row["svac segment s/frame"] = rep["wall_seconds"] / n
                    row["MLLM frame sampling share"] = t.get("video_decode", 0.0) / rep["wall_seconds"]
                    row["overlay ms/frame"] = (1e3 * t["write_overlay"] / n) if "write_overlay" in t else None
                elif side == "svac-core":
                    rep = bc.run_worker(["svac-core", video, "--query", args.query] + model_args)
                    row["svac core ms/frame"] = 1e3 * rep["core_seconds"] / n
                else:
                    rep = bc.run_worker(["predictor", video, "--sam2-pt", pt, "--sam2-config", cfg, "--mask", mask])
                    row["predictor ms/frame"] = 1e3 * rep["core_seconds"] / n
                rep["side"], rep["length"] = side, n
                runs.append(rep)
                row[f"{side} peak RSS MiB"] = rep["peak_rss_mib"]
                print(f"  {n} frames, {side}: peak RSS {rep['peak_rss_mib']:.0f} MiB", flush=True)
            rows.append(row)
    for side in args.sides:
        base = rows[0][f"{side} peak RSS MiB"]
        for row in rows:
            row[f"{side} RSS ÷ at {lengths[0]}"] = row[f"{side} peak RSS MiB"] / base
    columns = ["frames"] + [c for side in args.sides for c in (f"{side} peak RSS MiB", f"{side} RSS ÷ at {lengths[0]}")]
    columns += [c for c in ("svac segment s/frame", "svac core ms/frame", "predictor ms/frame",
                            "MLLM frame sampling share", "overlay ms/frame") if any(c in r for r in rows)]
    checks = []
    longest = rows[-1]
    for side in [s for s in args.sides if s.startswith("svac")]:
        ratio = longest[f"{side} RSS ÷ at {lengths[0]}"]
        checks.append(f"- {LABELS[side]}: peak RSS at {longest['frames']} ÷ at {lengths[0]} frames = {ratio:.3f} "
                      f"(target <= {RSS_RATIO_TARGET}: {'met' if ratio <= RSS_RATIO_TARGET else 'NOT met'})")
    at_1000 = next((r for r in rows if r["frames"] == 1000 and "MLLM frame sampling share" in r), None)
    if at_1000 is not None:
        share = at_1000["MLLM frame sampling share"]
        checks.append(f"- MLLM frame sampling at 1000 frames: {100 * share:.1f} % of the svac segment job "
                      f"(target <= {100 * SAMPLING_SHARE_TARGET:.0f} %: "
                      f"{'met' if share <= SAMPLING_SHARE_TARGET else 'NOT met'})")
    overlay = [r["overlay ms/frame"] for r in rows if r.get("overlay ms/frame") is not None]
    if overlay:
        worst = max(overlay)
        checks.append(f"- overlay writing: up to {worst:.1f} ms/frame at {args.size} (target <= {OVERLAY_MS_TARGET:.0f}: "
                      f"{'met' if worst <= OVERLAY_MS_TARGET else 'NOT met'})")
    note = {"machine_at_start": before, "machine_at_end": bc.machine_note(), **bc.svac_version_note()}
    markdown = "\n\n".join([
        f"# Peak RSS vs video length ({args.size}, model {model_name}, one fresh process per run, 1 thread)",
        bc.markdown_table(rows, columns),
        "\n".join(checks),
        f"svac: {note['svac_from']} (commit {note['commit']}). Load average at start "
        f"{before['load_average_1_5_15']} on {before['cpus']} CPUs; other busy processes: "
        + ("; ".join(f"{p['cpu_percent']}% {p['command']}" for p in before["other_busy_processes"]) or "none"),
        f"Wall time of the study: {time.perf_counter() - started:.0f} s.",
    ]) + "\n"
    report = {"study": NAME, "model": model_name, "size": args.size, "rows": rows, "runs": runs, "notes": note,
              "checks": checks}
    return bc.publish_study(out, NAME, markdown=markdown, rows=rows, columns=columns, report=report,
                           figure=plot(rows, args.sides), overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
