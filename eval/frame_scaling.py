"""Run the frame-scaling study (``svac bench frames``) as a script; same arguments.

Example (the tiny random model, a few minutes on a CPU)::

    python eval/frame_scaling.py --model tiny.yaml --out runs/frame_scaling
"""

from __future__ import annotations

import argparse
import sys

from svac.evaluation.cli_args import add_bench_frames_arguments, run_bench_frames_command


def main() -> int:
    """Parse ``sys.argv`` and run the study; returns the exit code."""
    parser = argparse.ArgumentParser(description="SVAC frame-scaling study (ASTC vs uncompressed vs first_k)")
    add_bench_frames_arguments(parser)
    return run_bench_frames_command(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
