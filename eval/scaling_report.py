"""The files of the frame-scaling study: CSV tables, a markdown report and matplotlib plots.

Written into the study's folder:

==========================  =====================================================================
``frame_scaling.csv``       one row per (mode, T): tokens, seconds, overhead ratio, memory, J&F
``frame_scaling_runs.csv``  every measured run
``frame_scaling.md``        the table, the checks (tokens, overhead ratio, encoder vs K), the
                            per-stage split, and the settings
``k_objects.csv``           SAM-2 encoder / tracking seconds for K = 1, 2, 4 objects
``profile.csv``             per-stage seconds of one ASTC run per T
``tokens_vs_T.png``         visual tokens into the LLM vs T
``seconds_vs_T.png``        end-to-end and floor seconds vs T, and the overhead ratio vs T
``memory_vs_T.png``         peak RSS (and CUDA peak on GPUs) vs T
``jf_vs_T.png``             J&F vs T (a note instead when the videos have no ground truth)
==========================  =====================================================================

Plots are drawn with matplotlib's object API on an Agg canvas (no global backend change).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from svac.metrics.output import refuse_existing, write_texts_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the study's sibling modules in eval/
from frame_scaling_settings import OVERHEAD_TARGET  # noqa: E402

if TYPE_CHECKING:
    from frame_scaling import FrameScalingResult, ScalingRow

OUTPUT_FILES: dict[str, str] = {
    "csv": "frame_scaling.csv",
    "runs_csv": "frame_scaling_runs.csv",
    "markdown": "frame_scaling.md",
    "k_objects_csv": "k_objects.csv",
    "profile_csv": "profile.csv",
    "tokens_plot": "tokens_vs_T.png",
    "seconds_plot": "seconds_vs_T.png",
    "memory_plot": "memory_vs_T.png",
    "jf_plot": "jf_vs_T.png",
}
#: Resolution of the plots (dots per inch) and their size (inches).
PLOT_DPI = 120
PLOT_SIZE = (6.4, 4.4)
WIDE_PLOT_SIZE = (11.0, 4.4)


def check_outputs(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse to start when the study's files already exist in ``out_dir`` (unless ``overwrite``).

    Raises:
        svac.errors.OutputExistsError: naming the existing files.
    """
    refuse_existing([out_dir / name for name in OUTPUT_FILES.values()], overwrite=overwrite)


def _csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[ScalingRow]) -> str:
    """The study's main table in GitHub markdown."""
    header = ("| mode | T | visual tokens | tokens ÷ uncompressed | expected | LLM prefill (s) | SAM-2 encoder (s) "
              "| end-to-end (s) | overhead ratio (median / max) | peak RSS MiB (+ during run) | CUDA peak (MiB) "
              "| J&F |")
    lines = [header, "|" + "|".join(["---"] * (header.count("|") - 1)) + "|"]
    for r in rows:
        lines.append(f"| {r.variant} | {r.num_frames} | {r.visual_tokens} | {r.token_ratio:.4f} | "
                     f"{r.expected_ratio:.4f} | {r.llm_prefill_s:.4f} | {r.sam2_encoder_s:.3f} | {r.total_s:.3f} | "
                     f"{r.overhead_ratio:.2f} / {r.overhead_ratio_max:.2f} | "
                     f"{r.peak_rss_mib:.0f} (+{r.rss_increase_mib:.0f}) | "
                     f"{_fmt(r.cuda_peak_mib, 0)} | {_fmt(r.jf)} |")
    return "\n".join(lines)


def _markdown(result: FrameScalingResult) -> str:
    rows = list(result.rows)
    astc = [r for r in rows if r.mode == "astc"]
    exact = [r for r in astc if r.num_frames % r.clip_len == 0]
    lines = [
        "# Frame-scaling study",
        "",
        f"Model `{result.model_name}` "
        f"({'trained' if result.trained else 'UNTRAINED: random weights, J&F is meaningless'}), "
        f"device `{result.device}`, {result.threads} CPU threads; videos: {', '.join(result.video_names)} "
        f"({result.video_frames} frames each, every frame through SAM-2); {result.repeats} measured runs per "
        f"(video, mode, T) after one warm-up per mode; seconds are medians; study took {result.wall_seconds:.0f} s.",
        "",
        markdown_table(rows),
        "",
        "## Checks",
        "",
        "- **Tokens**: ASTC reads 2⌈T/m⌉ images for T frames, i.e. exactly 2/m of `uncompressed` when m "
        "divides T. "
        f"{len(exact)} ASTC rows have m | T and all of them match 2/m exactly: "
        f"{all(abs(r.token_ratio - 2 / r.clip_len) < 1e-12 for r in exact)}. Rows whose count differs from the "
        f"analytic count: {len(result.token_mismatches)}.",
        f"- **Overhead ratio** (end-to-end ÷ (SAM-2 encoder + LLM prefill), target ≤ {OVERHEAD_TARGET}): "
        f"median per row from {min(r.overhead_ratio for r in rows):.2f} to {result.max_overhead_ratio:.2f}; "
        f"target {'met' if result.overhead_target_met else 'NOT met'} "
        f"({sum(r.overhead_ratio <= OVERHEAD_TARGET for r in rows)} of {len(rows)} rows within it).",
    ]
    if result.k_objects:
        base = result.k_objects[0]
        lines += [
            f"- **Encoder vs K**: SAM-2 encoder seconds for K = "
            + ", ".join(f"{k.num_objects}: {k.encoder_s:.3f}" for k in result.k_objects)
            + f" (largest / K={base.num_objects}: {max(k.encoder_s for k in result.k_objects) / base.encoder_s:.2f}); "
            "tracking seconds " + ", ".join(f"{k.num_objects}: {k.tracking_s:.3f}" for k in result.k_objects) + ".",
            "",
            "| K objects | SAM-2 encoder (s) | SAM-2 tracking (s) | frames |",
            "|---|---|---|---|",
            *[f"| {k.num_objects} | {k.encoder_s:.3f} | {k.tracking_s:.3f} | {k.video_frames} |"
              for k in result.k_objects],
        ]
    if result.profiles:
        names = [s.name for s in result.profiles[0].stages]
        lines += ["", f"## Where the time goes (ASTC m={result.profiles[0].clip_len}, one run per T; seconds and share "
                      "of end-to-end)", "",
                  "| stage | " + " | ".join(f"T={p.num_frames}" for p in result.profiles) + " |",
                  "|---|" + "---|" * len(result.profiles)]
        for i, name in enumerate(names):
            cells = [f"{p.stages[i].seconds:.3f} ({100 * p.stages[i].share:.0f}%)" for p in result.profiles]
            floor = " (floor)" if result.profiles[0].stages[i].in_floor else ""
            lines.append(f"| {name}{floor} | " + " | ".join(cells) + " |")
        lines.append("| **end-to-end** | " + " | ".join(f"{p.total_seconds:.3f}" for p in result.profiles) + " |")
        lines.append("| **overhead ratio** | " + " | ".join(f"{p.overhead_ratio:.2f}" for p in result.profiles) + " |")
    lines += ["", "Plots: " + ", ".join(f"`{OUTPUT_FILES[k]}`" for k in ("tokens_plot", "seconds_plot", "memory_plot",
                                                                         "jf_plot")) + "."]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def _series(rows: list[ScalingRow]) -> dict[str, list[ScalingRow]]:
    out: dict[str, list[ScalingRow]] = {}
    for r in rows:
        out.setdefault(r.variant, []).append(r)
    return out


def _axes(ax, ylabel: str, frames: list[int], *, log_y: bool = False) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(frames)
    ax.set_xticklabels([str(t) for t in frames])
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("T (frames sampled for the MLLM)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def write_plots(result: FrameScalingResult, out_dir: Path) -> dict[str, Path]:
    """Draw the four plots (see the module docstring); returns their paths by role."""
    from matplotlib.figure import Figure

    series = _series(list(result.rows))
    frames = sorted({r.num_frames for r in result.rows})
    title = f"{result.model_name} on {result.device}"
    paths = {k: out_dir / OUTPUT_FILES[k] for k in ("tokens_plot", "seconds_plot", "memory_plot", "jf_plot")}

    fig = Figure(figsize=PLOT_SIZE)
    ax = fig.add_subplot()
    for label, rs in series.items():
        ax.plot([r.num_frames for r in rs], [r.visual_tokens for r in rs], marker="o", label=label)
    _axes(ax, "visual tokens into the LLM", frames, log_y=True)
    ax.set_title(f"Visual tokens vs T ({title})")
    ax.legend(fontsize="small")
    _save(fig, paths["tokens_plot"])

    fig = Figure(figsize=WIDE_PLOT_SIZE)
    ax, ax_ratio = fig.subplots(1, 2)
    for label, rs in series.items():
        line, = ax.plot([r.num_frames for r in rs], [r.total_s for r in rs], marker="o", label=f"{label}: end-to-end")
        ax.plot([r.num_frames for r in rs], [r.sam2_encoder_s + r.llm_prefill_s for r in rs], linestyle="--",
                color=line.get_color(), label=f"{label}: encoder + prefill")
        ax_ratio.plot([r.num_frames for r in rs], [r.overhead_ratio for r in rs], marker="o", label=label)
    _axes(ax, "seconds (median)", frames)
    ax.set_title("End-to-end and floor seconds vs T")
    ax.legend(fontsize="x-small")
    ax_ratio.axhline(OVERHEAD_TARGET, color="black", linestyle=":", label=f"target {OVERHEAD_TARGET}")
    _axes(ax_ratio, "end-to-end ÷ (SAM-2 encoder + LLM prefill)", frames)
    ax_ratio.set_title("Overhead ratio vs T")
    ax_ratio.legend(fontsize="x-small")
    _save(fig, paths["seconds_plot"])

    cuda = any(r.cuda_peak_mib is not None for r in result.rows)
    fig = Figure(figsize=WIDE_PLOT_SIZE if cuda else PLOT_SIZE)
    axes = fig.subplots(1, 2) if cuda else [fig.add_subplot()]
    for label, rs in series.items():
        axes[0].plot([r.num_frames for r in rs], [r.peak_rss_mib for r in rs], marker="o", label=label)
        if cuda:
            axes[1].plot([r.num_frames for r in rs], [r.cuda_peak_mib or 0.0 for r in rs], marker="o", label=label)
    _axes(axes[0], "peak RSS during the run (MiB)", frames)
    axes[0].set_title(f"Peak memory vs T ({title})")
    axes[0].legend(fontsize="small")
    if cuda:
        _axes(axes[1], "CUDA peak allocated (MiB)", frames)
        axes[1].legend(fontsize="small")
    _save(fig, paths["memory_plot"])

    fig = Figure(figsize=PLOT_SIZE)
    ax = fig.add_subplot()
    scored = {label: [r for r in rs if r.jf is not None] for label, rs in series.items()}
    if any(scored.values()):
        for label, rs in scored.items():
            if rs:
                ax.plot([r.num_frames for r in rs], [r.jf for r in rs], marker="o", label=label)
        ax.legend(fontsize="small")
        ax.set_ylim(0.0, 1.0)
    else:
        ax.text(0.5, 0.5, "no ground truth for these videos:\nJ&F not measured", ha="center", va="center",
                transform=ax.transAxes)
    _axes(ax, "J&F (MeViS protocol)", frames)
    ax.set_title("J&F vs T" + ("" if result.trained else " (untrained model: meaningless)"))
    _save(fig, paths["jf_plot"])
    return paths


def write_report(result: FrameScalingResult, out_dir: Path, *, overwrite: bool) -> dict[str, Path]:
    """Write every file of the study (see the module docstring) and return their paths by role.

    Raises:
        svac.errors.OutputExistsError: when a file exists and ``overwrite`` is False.
    """
    check_outputs(out_dir, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / name for k, name in OUTPUT_FILES.items()}
    write_plots(result, out_dir)
    # the tables as one set: a failure (e.g. a full disk) leaves the previous tables, never a mix
    write_texts_atomic({
        paths["csv"]: _csv_text([{**dataclasses.asdict(r), "tokens_exact": r.tokens_exact} for r in result.rows]),
        paths["runs_csv"]: _csv_text([dataclasses.asdict(r) for r in result.runs]),
        paths["k_objects_csv"]: _csv_text([dataclasses.asdict(k) for k in result.k_objects]),
        paths["profile_csv"]: _csv_text(
            [{"num_frames": p.num_frames, "clip_len": p.clip_len, "stage": s.name, "seconds": s.seconds,
              "share": s.share, "in_floor": s.in_floor} for p in result.profiles for s in p.stages]),
        paths["markdown"]: _markdown(result)}, overwrite=overwrite)
    return paths
