"""``svac bench costs``: fixed costs -- start-up of a 1-frame ``svac segment``, ``svac --help``, overlay writing.

Usage (from a checkout; ``svac bench costs ARGS`` runs this script)::

    python eval/costs.py --out runs/bench/costs

Interleaved over ``--repeats`` rounds, each command in a fresh process with one thread:

* ``import``: ``python -c "import torch, transformers, sam2"`` -- the floor of any run that
  uses the three libraries;
* ``import + InternVL``: the same plus ``from transformers import InternVLForConditionalGeneration``
  -- the floor of svac's own runs: transformers imports lazily, and its model classes pull in
  ``transformers.modeling_utils`` (with ``torch._dynamo`` and ``torch.distributed.tensor``);
* ``segment 1 frame``: ``python -m svac.cli segment ONE_FRAME.mp4 "the red square" --out TMP``
  with the default model (a generated 854x480, 1-frame video), whole job (mask PNG, overlay,
  ``result.json``); target: wall time <= 1.3 x ``import``;
* ``svac --help``: ``python -m svac.cli --help`` (should import neither torch nor transformers);
* ``overlay``: ``svac.video.export.write_overlay`` on ``--overlay-frames`` frames of
  ``--overlay-video`` held in memory (decoding not counted) with a one-object box mask;
  target <= 15 ms per 854x480 frame (wall time, and the process's CPU time).

Outputs in ``--out``: ``costs.md``, ``costs.csv``, ``costs.json``, ``costs.png``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402

NAME = "costs"
REPO = Path(__file__).resolve().parents[1]
STARTUP_TARGET = 1.3
OVERLAY_MS_TARGET = 15.0
COLUMNS = ("what", "median s", "min s", "max s", "÷ import", "÷ import + InternVL", "target", "met")
#: What every svac run imports beyond ``import torch, transformers, sam2``: transformers' InternVL model class.
INTERNVL_IMPORT = "import torch, transformers, sam2; from transformers import InternVLForConditionalGeneration"


def timed(cmd: list[str]) -> float:
    env = {**os.environ, **bc.ONE_THREAD_ENV}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="svac bench costs", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--overlay-video", default=str(REPO / "examples" / "blackswan.mp4"),
                   help="video whose frames the overlay is written on (default: examples/blackswan.mp4)")
    p.add_argument("--overlay-frames", type=int, default=50, help="frames of the overlay run (default: %(default)s)")
    p.add_argument("--out", default="runs/bench/costs", help="output folder (default: %(default)s)")
    p.add_argument("--cache", default="runs/bench/cache", help="the generated 1-frame video (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace this study's files in --out")
    return p


def plot(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed_rows = [r for r in rows if not r["what"].startswith("overlay")]
    fig, ax = plt.subplots(figsize=(5.5, 3.0))
    ax.barh([r["what"] for r in timed_rows], [r["median s"] for r in timed_rows])
    ax.set_xlabel("wall time (s), median, 1 thread")
    ax.set_title("Fixed costs", fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """Parse the arguments, then run the study with ``--out`` checked and locked first (see :func:`study`)."""
    return bc.run_locked(build_parser, study, argv)


def study(args) -> int:
    """Run the study with parsed ``args``; returns the exit code."""
    if args.repeats < 1:
        raise SystemExit("svac bench costs: --repeats must be >= 1")
    out, cache = Path(args.out), Path(args.cache)
    started, before = bc.start_study(out, NAME, args.overwrite)
    one, _ = bc.generated_video(cache, 854, 480, 1)
    py = sys.executable
    times = {"import": [], "import + InternVL": [], "segment 1 frame": [], "svac --help": []}
    overlay, overlay_cpu = [], []
    with tempfile.TemporaryDirectory(prefix="svac-bench-costs-") as tmp:
        commands = {"import": [py, "-c", "import torch, transformers, sam2"],
                    "import + InternVL": [py, "-c", INTERNVL_IMPORT],
                    "segment 1 frame": [py, "-m", "svac.cli", "segment", str(one), "the red square", "--out",
                                        str(Path(tmp) / "seg"), "--overwrite", "--quiet"],
                    "svac --help": [py, "-m", "svac.cli", "--help"]}
        timed(commands["segment 1 frame"])  # warm-up: file cache, compiled bytecode
        for r in range(args.repeats):
            order = list(commands) if r % 2 == 0 else list(reversed(commands))
            for name in order:
                times[name].append(timed(commands[name]))
            rep = bc.run_worker(["overlay", args.overlay_video, "--frames", args.overlay_frames])
            overlay.append(rep["ms_per_frame"])
            overlay_cpu.append(rep["cpu_ms_per_frame"])
            print(f"  round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items())
                  + f", overlay {overlay[-1]:.1f} ms/frame", flush=True)
    base = bc.median(times["import"])
    floor = bc.median(times["import + InternVL"])
    rows = []
    for name, values in times.items():
        med = bc.median(values)
        target = STARTUP_TARGET if name == "segment 1 frame" else None
        rows.append({"what": name, "median s": med, "min s": min(values), "max s": max(values),
                     "÷ import": med / base, "÷ import + InternVL": med / floor, "target": target,
                     "met": None if target is None else ("yes" if med / base <= target else "no")})
    for what, values in (("overlay ms/frame", overlay), ("overlay CPU ms/frame", overlay_cpu)):
        med = bc.median(values)
        rows.append({"what": what, "median s": med, "min s": min(values), "max s": max(values),
                     "target": OVERLAY_MS_TARGET, "met": "yes" if med <= OVERLAY_MS_TARGET else "no"})
    note = {"machine_at_start": before, "machine_at_end": bc.machine_note(), **bc.svac_version_note()}
    markdown = "\n\n".join([
        f"# Fixed costs ({args.repeats} interleaved rounds, fresh processes, 1 thread)",
        bc.markdown_table(rows, COLUMNS),
        "The overlay rows are in milliseconds per frame (their 'median s' column; wall time, and CPU time of the "
        f"process, which moves less with other jobs' load), frames of {Path(args.overlay_video).name} in memory, "
        "one object.",
        f"svac: {note['svac_from']} (commit {note['commit']}). Load average at start "
        f"{before['load_average_1_5_15']} on {before['cpus']} CPUs; other busy processes: "
        + ("; ".join(f"{p['cpu_percent']}% {p['command']}" for p in before["other_busy_processes"]) or "none"),
        f"Wall time of the study: {time.perf_counter() - started:.0f} s.",
    ]) + "\n"
    report = {"study": NAME, "rows": rows, "times": times, "overlay_ms_per_frame": overlay,
              "overlay_cpu_ms_per_frame": overlay_cpu, "notes": note}
    return bc.publish_study(out, NAME, markdown=markdown, rows=rows, columns=COLUMNS, report=report,
                           figure=plot(rows), overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
