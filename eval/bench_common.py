"""Shared pieces of the peer, memory and startup studies (``svac bench peer|memory|startup``).

* :func:`generated_video` -- a deterministic mp4 of moving shapes (any size and length), written
  frame by frame (never held whole), cached by its parameters; with the first frame's mask of
  the red square, the prompt the studies give SAM-2's own predictor on generated videos.
* :func:`run_worker` -- one measured run in a fresh Python process (``eval/bench_worker.py``)
  with one torch / OpenMP / MKL thread, so its peak RSS (``ru_maxrss``) is that run's alone.
* :func:`machine_note` -- what else was running (load average, the busiest other processes),
  written next to every table: timing ratios come from interleaved runs, so background load
  slows both sides alike, but absolute times move with it.
* :func:`write_study` -- the table (Markdown + CSV + JSON) and the plot, written as one set.

These modules run as scripts (``python eval/peer.py ...``) or through ``svac bench ...``; they
import svac from whatever ``PYTHONPATH`` / venv provides, so the same script measures an older
checkout (``PYTHONPATH=/path/to/old/checkout``) for "before" numbers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

#: The worker script, run once per measured run.
WORKER = Path(__file__).with_name("bench_worker.py")
#: Environment of every measured run: one thread everywhere (the machine is shared, and the
#: comparison is thread for thread).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "TOKENIZERS_PARALLELISM": "false"}
#: Frame rate of generated videos (frames per second).
GENERATED_FPS = 24
#: Side of the red square of generated videos, as a fraction of the shorter frame side.
SQUARE_FRACTION = 1 / 6


def generated_video(cache: Path, width: int, height: int, frames: int) -> tuple[Path, Path]:
    """A generated H.264 mp4 (moving red square and blue disc on a gradient) and its frame-0 square mask.

    Written once into ``cache`` (``gen_<W>x<H>_<N>.mp4`` + ``..._mask0.png``) and reused; frames
    are drawn and encoded one at a time, so a 3000-frame video never sits in memory.

    Returns:
        ``(video_path, mask_path)``; the mask is a mode ``L`` PNG, 255 on the square.
    """
    from fractions import Fraction

    import av
    from PIL import Image

    cache.mkdir(parents=True, exist_ok=True)
    stem = f"gen_{width}x{height}_{frames}"
    video, mask = cache / f"{stem}.mp4", cache / f"{stem}_mask0.png"
    if video.is_file() and mask.is_file():
        return video, mask
    tmp = cache / f".{stem}.{os.getpid()}.mp4"
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                           np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    side = max(4, int(min(width, height) * SQUARE_FRACTION))
    radius = side // 2
    container = av.open(str(tmp), mode="w")
    stream = container.add_stream("libx264", rate=Fraction(GENERATED_FPS))
    stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
    stream.options = {"crf": "23", "preset": "veryfast"}
    first_mask = None
    for t in range(frames):
        frame = background.copy()
        sq = np.zeros((height, width), dtype=bool)
        x0 = int((width - side) * (0.5 + 0.45 * np.sin(t / 40)))
        y0 = int((height - side) * (0.5 + 0.45 * np.sin(t / 25 + 1)))
        sq[y0:y0 + side, x0:x0 + side] = True
        cx = int(width * (0.5 + 0.35 * np.cos(t / 33)))
        cy = int(height * (0.5 + 0.35 * np.sin(t / 47)))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2
        frame[disc] = (40, 60, 220)
        frame[sq] = (220, 30, 30)
        if first_mask is None:
            first_mask = sq
        canvas = np.zeros((stream.height, stream.width, 3), dtype=np.uint8)
        canvas[:height, :width] = frame
        for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    Image.fromarray(first_mask.astype(np.uint8) * 255, mode="L").save(mask)
    os.replace(tmp, video)
    return video, mask


def run_worker(args: Sequence[str], *, timeout: float | None = None) -> dict:
    """Run ``eval/bench_worker.py ARGS`` in a fresh process with one thread; return its JSON report.

    The child inherits ``PYTHONPATH`` (so it imports the same svac as the caller).

    Raises:
        RuntimeError: when the worker fails (its stderr tail is in the message).
    """
    env = {**os.environ, **ONE_THREAD_ENV}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(WORKER), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"bench worker {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                           + proc.stderr[-3000:])
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench worker printed no report:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    report = json.loads(lines[-1])
    report["process_wall_seconds"] = wall
    return report


def machine_note() -> dict:
    """Load average and the busiest other processes (CPU % over one second), for the tables."""
    import psutil

    me = os.getpid()
    procs = []
    for p in psutil.process_iter(["pid", "cmdline", "name"]):
        try:
            if p.info["pid"] != me:
                p.cpu_percent(interval=None)  # starts the measurement
                procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    time.sleep(1.0)
    busy = []
    for p in procs:
        try:
            cpu = p.cpu_percent(interval=None)
            if cpu >= 20:
                cmd = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])
                busy.append({"cpu_percent": round(cpu), "command": cmd[:120]})
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    busy.sort(key=lambda b: -b["cpu_percent"])
    return {"load_average_1_5_15": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
            "other_busy_processes": busy[:6]}


#: Environment variable naming the commit of an svac copy that is not a git checkout (an exported tree).
COMMIT_ENV = "SVAC_BENCH_COMMIT"


def svac_version_note() -> dict:
    """Where svac was imported from and its git commit (``$SVAC_BENCH_COMMIT`` for an exported tree)."""
    import svac

    root = Path(svac.__file__).resolve().parents[1]
    commit = os.environ.get(COMMIT_ENV)
    if commit is None:
        try:
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or None
        except OSError:
            commit = None
    return {"svac_from": str(root), "commit": commit}


def markdown_table(rows: list[dict], columns: Sequence[str]) -> str:
    """A GitHub Markdown table of ``rows`` (floats with 3 significant decimals)."""
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def csv_text(rows: list[dict], columns: Sequence[str]) -> str:
    """``rows`` as CSV text with a header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_study(out: Path, name: str, *, markdown: str, rows: list[dict], columns: Sequence[str], report: dict,
                figure, overwrite: bool) -> dict[str, str]:
    """Write ``<name>.md``, ``<name>.csv``, ``<name>.json`` and ``<name>.png`` into ``out`` as one set.

    Raises:
        svac.errors.OutputExistsError: when a file exists and ``overwrite`` is false.
    """
    from svac.atomic_folder import staged_file
    from svac.metrics.output import refuse_existing, write_texts_atomic

    paths = {ext: out / f"{name}.{ext}" for ext in ("md", "csv", "json", "png")}
    refuse_existing(paths.values(), overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    with staged_file(paths["png"]) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        write_texts_atomic({paths["md"]: markdown, paths["csv"]: csv_text(rows, columns),
                            paths["json"]: json.dumps(report, indent=1)}, overwrite=True)
    return {ext: str(p) for ext, p in paths.items()}


def check_out(out: Path, name: str, overwrite: bool) -> None:
    """Refuse, before any measurement, an ``out`` that already holds this study's files (without ``overwrite``)."""
    from svac.metrics.output import refuse_existing

    refuse_existing([out / f"{name}.{ext}" for ext in ("md", "csv", "json", "png")], overwrite=overwrite)


def start_study(out: Path, name: str, overwrite: bool) -> tuple[float, dict]:
    """Check ``out`` (:func:`check_out`), then note the start: ``(perf_counter seconds, machine_note())``.

    Raises:
        svac.errors.OutputExistsError: as :func:`check_out`.
    """
    check_out(out, name, overwrite)
    return time.perf_counter(), machine_note()


def publish_study(out: Path, name: str, *, markdown: str, rows: list[dict], columns: Sequence[str], report: dict,
                  figure, overwrite: bool) -> int:
    """Write the study's files as one set (:func:`write_study`), print the table and the paths; returns 0.

    Raises:
        svac.errors.OutputExistsError: as :func:`write_study`.
    """
    files = write_study(out, name, markdown=markdown, rows=rows, columns=columns, report=report, figure=figure,
                        overwrite=overwrite)
    print(markdown)
    for ext, path in files.items():
        print(f"{ext}: {path}")
    return 0


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (float)."""
    return float(np.median(np.asarray(values, dtype=np.float64)))


def run_locked(build_parser, study, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` with ``build_parser()``, then run ``study(args)`` with ``--out`` checked and locked first.

    The writability probe and the lock (svac's ``reserve_folder``) come before any measurement, so a
    bad ``--out`` fails in a second, not after the study. Returns ``study``'s exit code.

    Raises:
        SystemExit: for bad arguments (argparse).
        svac.atomic_folder.OutputLockedError: when another run holds ``--out``.
    """
    from svac.atomic_folder import reserve_folder

    args = build_parser().parse_args(argv)
    with reserve_folder(Path(args.out)):
        return study(args)
