"""Command-line front end of the evaluation: ``svac eval BENCHMARK``.

The ``svac`` command (:mod:`svac.cli`) mounts it as a sub-command through
:func:`add_eval_arguments` / :func:`run_eval_command`; ``python -m svac.evaluation eval ...`` runs
the same code on its own. The studies (``svac bench ...``) are scripts in the top-level ``eval/``.
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


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m svac.evaluation`` (sub-command ``eval``)."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation", description="benchmark runners")
    sub = parser.add_subparsers(dest="command", required=True)
    add_eval_arguments(sub.add_parser("eval", help="evaluate a model on a benchmark"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m svac.evaluation``; returns the exit code."""
    from svac.errors import SVACError

    args = build_parser().parse_args(argv)
    try:
        return run_eval_command(args)
    except (SVACError, FileNotFoundError, ValueError) as exc:
        print(f"svac: error: {exc}", file=sys.stderr)
        return 2
