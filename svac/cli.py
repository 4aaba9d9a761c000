"""The ``svac`` command line: parses arguments and calls the library (nothing else lives here)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model to use: a config YAML (path or a name in configs/); default: the default model")
    p.add_argument("--frames", type=int, default=None, metavar="T", help="frames the MLLM sees (default: from config)")
    p.add_argument("--clip-len", type=int, default=None, metavar="M", help="frames per clip (default: from config)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: from config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set astc.mode=uncompressed (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``svac`` command."""
    parser = argparse.ArgumentParser(prog="svac", description="MLLM-based referring video object segmentation")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment what a query refers to in every frame of a video")
    seg.add_argument("video", help="video file (mp4/avi/webm/mkv/mov) or folder of JPEG/PNG frames")
    seg.add_argument("query", help='the referring expression, e.g. "the dog jumping over the fence"')
    seg.add_argument("--out", default="svac_output", help="output folder (default: %(default)s)")
    seg.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    seg.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    seg.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_model_args(seg)

    chat = sub.add_parser("chat", help="chat about a video (type a question per line; empty line or 'exit' ends)")
    chat.add_argument("video", help="video file or folder of frames")
    chat.add_argument("--out", default=None, help="write the masks of each answer with [SEG] to OUT/turn-NN")
    chat.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    _add_model_args(chat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``svac`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    from svac.errors import SVACError

    try:
        if args.command == "segment":
            return _segment(args)
        if args.command == "chat":
            return _chat(args)
    except (SVACError, FileNotFoundError, ValueError) as exc:
        print(f"svac: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _load(args):
    from svac.loading import UntrainedModelWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UntrainedModelWarning)
        model = load_model(args.model, device=args.device, overrides=args.overrides)
    for w in caught:
        if issubclass(w.category, UntrainedModelWarning):
            print(f"svac: WARNING: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def _segment(args) -> int:
    from svac.errors import OutputExistsError
    from svac.video.export import RESULT_ITEMS, export_result
    from svac.video.reader import open_video

    out = Path(args.out)
    existing = [n for n in RESULT_ITEMS if (out / n).exists()]
    if existing and not args.overwrite:  # refuse before any work is done
        raise OutputExistsError(f"{out} already holds results ({', '.join(existing)}); "
                                "choose another folder or pass --overwrite")
    if not args.query.strip():
        raise ValueError("the query is empty: give a referring expression such as 'the dog jumping over the fence'")
    source = open_video(args.video)
    model = _load(args)
    result = model.segment(source, args.query, num_frames=args.frames, clip_len=args.clip_len,
                           progress=not args.quiet)
    files = export_result(result, source, out, overwrite=args.overwrite, overlay=not args.no_overlay,
                          progress=not args.quiet)
    print(result.text)
    print(f"{files.num_mask_files} masks in {files.masks_dir}, overlay {files.overlay}, summary {files.summary}")
    t = result.timings
    print(f"time: {t.total:.2f} s (SAM-2 encoder {t.sam2_encoder:.2f} s, LLM prefill {t.llm_prefill:.3f} s)")
    return 0


def _chat(args) -> int:
    from svac.video.export import export_result

    model = _load(args)
    session = model.start_chat(args.video, num_frames=args.frames, clip_len=args.clip_len)
    print(f"chatting about {session.source.name} ({session.source.num_frames} frames); empty line or 'exit' ends")
    turn = 0
    for line in sys.stdin:
        message = line.strip()
        if not message or message.lower() in ("exit", "quit"):
            break
        turn += 1
        response = session.ask(message)
        print(f"svac> {response.text}")
        if response.result is not None:
            r = response.result
            print(f"      {r.num_objects} object(s) segmented over {r.masks.shape[1]} frames")
            if args.out is not None:
                files = export_result(r, session.source, Path(args.out) / f"turn-{turn:02d}", overwrite=args.overwrite)
                print(f"      masks in {files.masks_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
