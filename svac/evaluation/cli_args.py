"""Command-line front end of the evaluation: ``svac eval BENCHMARK`` and ``svac bench frames``.

The ``svac`` command (:mod:`svac.cli`) mounts these as sub-commands through
:func:`add_eval_arguments` / :func:`run_eval_command` and :func:`add_bench_frames_arguments` /
:func:`run_bench_frames_command`; ``python -m svac.evaluation eval ...`` and
``python -m svac.evaluation bench-frames ...`` run the same code on their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from svac import cli_types


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``svac eval BENCHMARK``."""
    from svac.evaluation.benchmarks import BENCHMARKS

    p.add_argument("benchmark", choices=sorted(BENCHMARKS), help="benchmark to evaluate")
    p.add_argument("--data-root", required=True, help="dataset root in the benchmark's released layout")
    p.add_argument("--out", required=True, help="run folder (predictions, per-item records, metrics.json)")
    p.add_argument("--split", default=None, help="split to evaluate (default: the benchmark's evaluation split)")
    p.add_argument("--model", default=None, help="config YAML (path or name in configs/); default: the default model")
    p.add_argument("--frames", type=cli_types.positive_int, default=None, metavar="T",
                   help="frames the MLLM sees (default: config)")
    p.add_argument("--clip-len", type=cli_types.positive_int, default=None, metavar="M",
                   help="frames per clip (default: config)")
    p.add_argument("--device", type=cli_types.device, default=None, help="auto, cpu, cuda or cuda:N (default: "
                   "config; under torchrun on GPUs each rank uses cuda:$LOCAL_RANK)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--no-resume", action="store_true", help="refuse an --out that already holds finished items")
    p.add_argument("--skip-invalid", action="store_true",
                   help="drop invalid annotations (listed in metrics.json) instead of failing")
    p.add_argument("--merge-only", action="store_true", help="only merge the finished items into metrics.json")
    p.add_argument("--merge-timeout", type=cli_types.nonnegative_float, default=None, metavar="SECONDS",
                   help="how long rank 0 waits for the other ranks' items (default: no limit)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``svac eval`` with parsed ``args``; prints the numbers and the files; returns the exit code."""
    from svac.evaluation.runner import merge_benchmark, run_benchmark

    if args.merge_only:
        result = merge_benchmark(args.benchmark, data_root=args.data_root, out_dir=args.out, split=args.split,
                                 skip_invalid=args.skip_invalid, wait_timeout=args.merge_timeout or 0.0)
    else:
        result = run_benchmark(args.benchmark, data_root=args.data_root, model_spec=args.model, out_dir=args.out,
                               num_frames=args.frames, clip_len=args.clip_len, split=args.split,
                               resume=not args.no_resume, progress=not args.quiet, device=args.device,
                               overrides=tuple(args.overrides), skip_invalid=args.skip_invalid,
                               merge_timeout=args.merge_timeout)
    shard = result.shard
    where = f" (rank {shard.rank} of {shard.world_size})" if shard.world_size > 1 else ""
    print(f"{result.benchmark} {result.split}{where}: {result.num_items} items, {result.num_predicted} predicted now, "
          f"{result.num_resumed} finished before")
    if result.metrics_path is not None:
        print(json.dumps(result.scores, indent=1) if result.scores is not None else "no ground truth: see notes")
        for role, path in result.files.items():
            print(f"{role}: {path}")
    return 0


def add_bench_frames_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``svac bench frames``."""
    from svac.evaluation.frame_scaling_settings import (
        DEFAULT_CLIP_LENS,
        DEFAULT_FRAMES,
        DEFAULT_K_OBJECTS,
        DEFAULT_THREADS,
        MODES,
    )

    p.add_argument("--model", default=None, help="config YAML (path or name in configs/); default: the default model")
    p.add_argument("--out", default="frame_scaling", help="output folder (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="use the first --num-videos expressions of an rvos dataset")
    p.add_argument("--split", default="valid", help="split of --data-root (default: %(default)s)")
    p.add_argument("--videos", nargs="+", default=[], metavar="VIDEO",
                   help="video files / frame folders to use (no ground truth, no J&F)")
    p.add_argument("--expression", default=None, help="query asked on --videos")
    p.add_argument("--frames", type=cli_types.positive_int_list, default=list(DEFAULT_FRAMES), metavar="T,T,...",
                   help="values of T (default: %(default)s)")
    p.add_argument("--clip-lens", type=cli_types.positive_int_list, default=list(DEFAULT_CLIP_LENS),
                   metavar="M,M,...",
                   help="ASTC clip lengths m (default: %(default)s)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="input modes (default: all)")
    p.add_argument("--num-videos", type=cli_types.positive_int, default=1,
                   help="synthetic videos / dataset expressions (default: 1)")
    p.add_argument("--repeats", type=cli_types.positive_int, default=3, help="measured runs per setting (default: 3)")
    p.add_argument("--k-objects", type=cli_types.positive_int_list, default=list(DEFAULT_K_OBJECTS),
                   metavar="K,K,...",
                   help="object counts of the encoder-vs-K check (default: %(default)s)")
    p.add_argument("--device", type=cli_types.device, default=None, help="auto, cpu, cuda or cuda:N (default: config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable)")
    p.add_argument("--seed", type=cli_types.nonnegative_int, default=0,
                   help="seed of the synthetic videos and random prompts")
    p.add_argument("--threads", type=cli_types.positive_int, default=DEFAULT_THREADS,
                   help="torch CPU threads during the study (default: %(default)s, steady on a shared CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace the study's files in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_bench_frames_command(args: argparse.Namespace) -> int:
    """Run ``svac bench frames`` with parsed ``args``; prints the table and the files; returns the exit code."""
    from svac.evaluation.frame_scaling import DEFAULT_EXPRESSION, OVERHEAD_TARGET, run_frame_scaling
    from svac.evaluation.scaling_report import markdown_table

    result = run_frame_scaling(model_spec=args.model, out_dir=args.out, data_root=args.data_root, split=args.split,
                               videos=args.videos, expression=args.expression or DEFAULT_EXPRESSION,
                               frames=args.frames, clip_lens=args.clip_lens, modes=args.modes,
                               num_videos=args.num_videos, repeats=args.repeats, k_objects=args.k_objects,
                               device=args.device, overrides=tuple(args.overrides), seed=args.seed,
                               threads=args.threads, overwrite=args.overwrite, progress=not args.quiet)
    print(markdown_table(list(result.rows)))
    print(f"overhead ratio: max {result.max_overhead_ratio:.2f} (target <= {OVERHEAD_TARGET}: "
          f"{'met' if result.overhead_target_met else 'NOT met'}); token mismatches: {len(result.token_mismatches)}")
    for role, path in result.files.items():
        print(f"{role}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m svac.evaluation`` (sub-commands ``eval`` and ``bench-frames``)."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation",
                                     description="benchmark runners and the frame-scaling study")
    sub = parser.add_subparsers(dest="command", required=True)
    add_eval_arguments(sub.add_parser("eval", help="evaluate a model on a benchmark"))
    add_bench_frames_arguments(sub.add_parser("bench-frames", help="the frame-scaling study"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m svac.evaluation``; returns the exit code."""
    from svac.errors import SVACError

    args = build_parser().parse_args(argv)
    try:
        return run_eval_command(args) if args.command == "eval" else run_bench_frames_command(args)
    except (SVACError, FileNotFoundError, ValueError) as exc:
        print(f"svac: error: {exc}", file=sys.stderr)
        return 2
