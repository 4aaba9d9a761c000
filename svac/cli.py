"""The ``svac`` command line: parses arguments and calls the library (nothing else lives here)."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from svac import cli_types


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="model to use: a saved model folder, a Hugging Face Hub id, or a config YAML (path or a "
                        "name in configs/) for a randomly initialised model; default: the default model")
    p.add_argument("--frames", type=cli_types.positive_int, default=None, metavar="T",
                   help="frames the MLLM sees (default: from config)")
    p.add_argument("--clip-len", type=cli_types.positive_int, default=None, metavar="M",
                   help="frames per clip (default: from config)")
    p.add_argument("--device", type=cli_types.device, default=None,
                   help="auto, cpu, cuda or cuda:N (default: from config)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set astc.mode=uncompressed (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``svac`` command."""
    parser = argparse.ArgumentParser(prog="svac", description="MLLM-based referring video object segmentation")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment what each query refers to in every frame of a video")
    seg.add_argument("video", help="video file (mp4/avi/webm/mkv/mov) or folder of JPEG/PNG frames")
    seg.add_argument("queries", nargs="*", metavar="QUERY",
                     help='referring expressions, e.g. "the dog jumping over the fence": one object per query')
    seg.add_argument("--query", dest="more_queries", action="append", default=[], metavar="QUERY",
                     help="one more query (repeatable; after the positional ones)")
    seg.add_argument("--out", default="svac_output", help="output folder (default: %(default)s)")
    seg.add_argument("--format", default="svac", choices=["svac", "davis", "coco-rle"],
                     help="masks as masks/<object>/<frame>.png (svac), as the DAVIS results layout <video>/<frame>.png "
                          "(davis: read by 'svac metrics davis' and the DAVIS evaluation), or as per-frame COCO RLE "
                          "in masks.json (coco-rle) (default: %(default)s)")
    seg.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    seg.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    seg.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_model_args(seg)

    ref = sub.add_parser("refine", help="correct a saved result with clicks or a box on one frame (new result folder)",
                         description="Add a SAM-2 correction prompt (clicks and/or a box, in pixels of the original "
                                     "video) on one frame of one object of RESULT_DIR and track that object again "
                                     "forwards and backwards through SAM-2's memory. The queries of RESULT_DIR are "
                                     "run again on its video with --model (which must be the model that made it: "
                                     "the masks are checked), its earlier corrections replayed, and the refined "
                                     "result written to --out; RESULT_DIR is left as it is.")
    ref.add_argument("result_dir", metavar="RESULT_DIR", help="a folder written by svac segment or svac refine")
    ref.add_argument("--frame", type=cli_types.nonnegative_int, required=True, help="the frame to correct (0-based)")
    ref.add_argument("--point", dest="points", action="append", default=[], type=cli_types.click, metavar="X,Y,LABEL",
                     help="a click in pixels of the original frame; LABEL 1: the object is here, 0: it is not "
                          "(repeatable)")
    ref.add_argument("--box", type=cli_types.box, default=None, metavar="X0,Y0,X1,Y1",
                     help="a box around the object, in pixels of the original frame")
    ref.add_argument("--object", type=cli_types.positive_int, default=None, metavar="K",
                     help="the object id (as in result.json; default: the only object)")
    ref.add_argument("--out", required=True, help="the new result folder")
    ref.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    ref.add_argument("--video", default=None, help="the video (default: the one recorded in RESULT_DIR's result.json)")
    ref.add_argument("--format", default=None, choices=["svac", "davis", "coco-rle"],
                     help="format of the masks written (default: RESULT_DIR's)")
    ref.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    ref.add_argument("--after-correction", default=None, choices=["seg", "memory"],
                     help="what the frames after a correction read: their [SEG] prompts (seg) or SAM-2's memory "
                          "alone, from the correction on (memory); default: RESULT_DIR's (recorded by segment: memory "
                          "for a model with a memory tracker, else seg); a result's corrections all use one")
    ref.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_model_args(ref)

    chat = sub.add_parser("chat", help="chat about a video (type a question per line; empty line or 'exit' ends)")
    chat.add_argument("video", help="video file or folder of frames")
    chat.add_argument("--out", default=None, help="write the masks of each answer with [SEG] to OUT/turn-NN")
    chat.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    _add_model_args(chat)

    train = sub.add_parser("train", help="train or fine-tune a model (recipe: train/finetune.py)")
    train.add_argument("config", help="training config YAML: a path such as configs/train/lavt_synthetic.yaml, or "
                                      "the bare name of a config shipped in configs/train/ (lavt_synthetic.yaml)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. max_steps=100")
    train.add_argument("--deepspeed", default=None, metavar="JSON",
                       help="DeepSpeed config, e.g. configs/deepspeed/zero2.json (GPUs; needs the train extra)")
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    train.add_argument("--stop-after", type=cli_types.positive_int, default=None, metavar="N",
                       help="stop (checkpointed, resumable) after N updates in total")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    export = sub.add_parser("export", help="save a training checkpoint as a model folder (for svac eval/segment)")
    export.add_argument("run_dir", help="a training run's output_dir")
    export.add_argument("--out", required=True, help="model folder to create")
    export.add_argument("--step", type=cli_types.positive_int, default=None,
                        help="checkpoint step (default: the newest)")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    export.add_argument("--weights-dtype", default=None, choices=["float32", "float16", "bfloat16"],
                        help="store the floating-point weights in this dtype (default: as trained); svac's "
                             "default model ships in float16 (half the size, cast back when loaded)")

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a synthetic referring-video benchmark (Ref-YouTube-VOS layout)")
    synth.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
    synth.add_argument("--videos", type=cli_types.positive_int, required=True, help="number of videos")
    synth.add_argument("--seed", type=cli_types.nonnegative_int, required=True,
                       help="random seed (same seed, same files)")
    synth.add_argument("--subset", default="standard", choices=["standard", "fast", "late", "static"],
                       help="static: colour, shape, size and position expressions only (default: %(default)s)")
    synth.add_argument("--domain", default="base", choices=["base", "novel_colors", "real_backgrounds"])
    synth.add_argument("--split", default="train", help="split folder name (default: %(default)s)")
    synth.add_argument("--backgrounds", default=None, help="folder of real frames (domain real_backgrounds)")
    synth.add_argument("--min-frames", type=cli_types.positive_int, default=16, help="shortest video (frames)")
    synth.add_argument("--max-frames", type=cli_types.positive_int, default=64, help="longest video (frames)")
    synth.add_argument("--size", type=cli_types.frame_size, default="160x120",
                       help="frame size WxH in pixels (default: %(default)s)")
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    oracle = data.add_parser("oracle-phrases", help="copy a synthetic split with each expression that needs the video "
                                                    "replaced by its answer_phrase (the object named by one frame)")
    oracle.add_argument("data_root", help="a benchmark written by svac data synth")
    oracle.add_argument("--out", required=True, help="output folder (must not exist or be empty); links the frames")
    oracle.add_argument("--split", default="valid", help="split to copy (default: %(default)s)")
    oracle.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")

    from svac.evaluation.cli_args import add_eval_arguments

    add_eval_arguments(sub.add_parser("eval", help="evaluate a model on a benchmark (resumable, shardable)"))
    bench = sub.add_parser("bench", help="efficiency studies").add_subparsers(dest="bench_command", required=True)
    for name, what in EVAL_STUDIES.items():
        script = f"eval/{STUDY_SCRIPTS.get(name, name)}.py"
        study = bench.add_parser(name, help=what, add_help=False,
                                 description=f"{what}. Runs {script} of the svac checkout with the arguments "
                                             f"given; 'svac bench {name} --help' lists them.")
        study.add_argument("study_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    metrics = sub.add_parser("metrics", help="score predictions").add_subparsers(dest="metrics_command",
                                                                                required=True)
    davis = metrics.add_parser("davis", help="DAVIS J and F (official conventions) of a prediction folder")
    davis.add_argument("--gt", required=True, help="ground-truth folder <seq>/<frame>.png")
    davis.add_argument("--pred", required=True, help="prediction folder <seq>/<frame>.png")
    davis.add_argument("--out", required=True, help="folder for per_frame.csv, per_sequence.csv, global.json")
    davis.add_argument("--protocol", default="semi", choices=["semi", "unsupervised"])
    davis.add_argument("--sequences", nargs="+", default=None, metavar="SEQ",
                       help="sequences to score (default: every sequence folder of --gt)")
    davis.add_argument("--overwrite", action="store_true", help="replace existing result files")

    demo = sub.add_parser("demo", help="try svac in the browser: a local Gradio app (needs the demo extra)")
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s, this machine only)")
    demo.add_argument("--port", type=cli_types.port, default=7860, help="port to serve on (default: %(default)s)")
    demo.add_argument("--share", default="false", choices=["true", "false"],
                      help="also open a public Gradio share link (needs internet access; default: %(default)s)")
    _add_model_args(demo)
    compare = metrics.add_parser("compare", help="paired comparison of two svac eval runs (B - A, bootstrap 95%% CI)")
    compare.add_argument("run_a", help="svac eval --out folder of run A (e.g. the baseline)")
    compare.add_argument("run_b", help="svac eval --out folder of run B, same benchmark split")
    compare.add_argument("--out", default=None, help="write the comparison as JSON to this file (must not exist)")
    return parser


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The parsed command line (``argv`` without the program name); exits with status 2 on bad arguments.

    ``svac train CONFIG --resume max_steps=100``: argparse ends a ``nargs="*"`` positional at the
    first option, so KEY=VALUE overrides after an option come back unrecognised; for ``train``
    they are taken as overrides (in order), anything else is refused as argparse would.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) == "train" and all("=" in a and not a.startswith("-") for a in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``svac`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in EVAL_STUDIES:  # the script parses its own arguments
        try:
            return _eval_study(argv[1], argv[2:])
        except FileNotFoundError as exc:
            print(f"svac: error: {exc}", file=sys.stderr)
            return 2
    args = parse_arguments(argv)
    from svac.errors import INPUT_ERRORS

    try:
        if args.command == "segment":
            return _segment(args)
        if args.command == "chat":
            return _chat(args)
        if args.command == "refine":
            return _refine(args)
        if args.command == "train":
            return _train(args)
        if args.command == "export":
            return _export(args)
        if args.command == "data":
            return _synth(args) if args.data_command == "synth" else _oracle_phrases(args)
        if args.command == "metrics":
            return _metrics_compare(args) if args.metrics_command == "compare" else _metrics_davis(args)
        if args.command == "eval":
            from svac.evaluation.cli_args import run_eval_command

            return run_eval_command(args)
        if args.command == "bench":
            return _eval_study(args.bench_command, args.study_args)
        if args.command == "demo":
            return _demo(args)
    except INPUT_ERRORS as exc:
        print(f"svac: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from svac.atomic_folder import WRITE_ERRNOS

        if exc.errno not in WRITE_ERRNOS:
            raise
        print(f"svac: error: cannot write {exc.filename or 'the output'}: {exc.strerror}", file=sys.stderr)
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
    from svac.video.export import result_folder
    from svac.video.reader import open_video, source_name

    queries = [q.strip() for q in [*args.queries, *args.more_queries]]
    if not queries:
        raise ValueError("no query given: svac segment VIDEO \"QUERY\" [\"QUERY\" ...] (or --query QUERY)")
    for i, q in enumerate(queries):
        if not q:
            which = "the query" if len(queries) == 1 else f"query {i + 1} of {len(queries)}"
            raise ValueError(f"{which} is empty: give a referring expression such as 'the dog jumping over the fence'")
    sequence = source_name(args.video) if args.format == "davis" else None
    # checked, locked and staged before any work: a bad --out fails at once, a failure leaves the old results
    with result_folder(args.out, overwrite=args.overwrite, sequence=sequence) as out:
        source = open_video(args.video)
        model = _load(args)
        if hasattr(model, "segment_stream"):  # SVAC: masks written chunk by chunk as SAM-2 computes them
            stream = model.segment_stream(source, queries, num_frames=args.frames, clip_len=args.clip_len,
                                          progress=not args.quiet)
            result = stream.save(out, format=args.format, overlay=not args.no_overlay)
            files = stream.files
        else:  # a baseline head: whole-video masks, one query at a time
            from svac.outputs import merge_results
            from svac.video.export import export_result

            result = merge_results([model.segment(source, q, num_frames=args.frames, clip_len=args.clip_len,
                                                  progress=not args.quiet) for q in queries], names=queries)
            files = export_result(result, source, out, format=args.format, overlay=not args.no_overlay,
                                  progress=not args.quiet)
    if result.text:
        print(result.text)
    missing = [o for o in result.objects if not o.found]
    for obj in missing:
        print(f"svac: note: the answer to query {obj.query_index + 1} ({obj.name!r}) holds no [SEG]: object {obj.id} "
              "is empty", file=sys.stderr)
    print(f"{result.num_objects} object(s), {files.num_mask_files} mask file(s) in {files.masks_dir} "
          f"({files.format}), overlay {files.overlay}, summary {files.summary}")
    t = result.timings
    stages = f" (SAM-2 encoder {t.sam2_encoder:.2f} s, LLM prefill {t.llm_prefill:.3f} s)" if t.sam2_encoder else ""
    print(f"time: {t.total:.2f} s{stages}")
    return 0


def _refine(args) -> int:
    from pathlib import Path

    from svac.refinement import rerun_saved_result, saved_summary
    from svac.video.export import result_folder

    if not (args.points or args.box):
        raise ValueError("nothing to refine with: give --point X,Y,LABEL (repeatable) and/or --box X0,Y0,X1,Y1")
    if Path(args.out).resolve() == Path(args.result_dir).resolve():
        raise ValueError(f"--out must be a new folder, not RESULT_DIR itself ({args.result_dir}): RESULT_DIR is kept")
    summary = saved_summary(args.result_dir)  # a missing or unreadable result fails before any work
    recorded = summary.get("after_correction", "seg")
    if args.after_correction not in (None, recorded) and summary.get("corrections"):
        raise ValueError(f"{args.result_dir} was refined with --after-correction {recorded}; its corrections are "
                         f"replayed with the new one, so it must be the same (got {args.after_correction})")
    files = summary.get("files") if isinstance(summary.get("files"), dict) else {}
    fmt = args.format or files.get("format") or "svac"
    sequence = summary.get("video") if fmt == "davis" else None
    with result_folder(args.out, overwrite=args.overwrite, sequence=sequence) as out:
        result = rerun_saved_result(_load(args), args.result_dir, video=args.video, num_frames=args.frames,
                                    clip_len=args.clip_len, progress=not args.quiet)
        refined = result.refine(frame=args.frame, points=[p[:2] for p in args.points] or None,
                                labels=[p[2] for p in args.points] or None, box=args.box, object=args.object,
                                progress=not args.quiet, after_correction=args.after_correction)
        saved = refined.save(out, format=fmt, overlay=not args.no_overlay, progress=not args.quiet)
    c = refined.corrections[-1]
    t = refined.timings
    print(f"object {c.object} refined at frame {c.frame} ({len(refined.corrections)} correction(s) in all): "
          f"{saved.num_mask_files} mask file(s) in {saved.masks_dir} ({saved.format}), summary {saved.summary}")
    print(f"time: refinement {t.total:.2f} s for {refined.num_frames} frames (SAM-2 encoder {t.sam2_encoder:.2f} s, "
          f"tracking {t.sam2_tracking:.2f} s)")
    return 0


#: The studies that live in the checkout's eval/ folder, run by ``svac bench NAME``.
EVAL_STUDIES = {
    "frames": "frame-scaling study: tokens, seconds, memory, J&F vs T (ASTC vs uncompressed vs first_k)",
    "peer": "svac's per-frame core vs SAM-2's own SAM2VideoPredictor, same weights, interleaved",
    "memory": "peak RSS vs video length (100 ... 3000 frames), svac vs SAM2VideoPredictor",
    "costs": "fixed costs: 1-frame svac segment vs importing torch+transformers+sam2, svac --help, overlay",
    "refine": "J before/after a correction click or box on a synthetic video, refinement time per frame",
    "refine-clicks": "mean J and false positives before/after correction clicks over many synthetic videos",
}
#: The script of a study whose file is not named after it (the others: ``eval/<name>.py``).
STUDY_SCRIPTS = {"frames": "frame_scaling", "refine-clicks": "refine_clicks"}


def _eval_study(name: str, study_args: list[str]) -> int:
    """Run ``eval/<script>.py`` of the checkout svac is imported from, in a child Python process."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "eval" / f"{STUDY_SCRIPTS.get(name, name)}.py"
    if not script.is_file():
        raise FileNotFoundError(f"svac bench {name} runs {script}, which is not there: the studies live in the eval/ "
                                "folder of an svac source checkout (git clone, then pip install -e .)")
    return subprocess.call([sys.executable, str(script), *study_args])


#: Shown before each chat input.
CHAT_PROMPT = "you> "


def _chat(args) -> int:
    from contextlib import nullcontext

    from svac.atomic_folder import OutputFolder

    session_out = None
    if args.out is not None:  # the session's folder: checked and locked now, replaced as a whole at the first masks
        session_out = OutputFolder(args.out, overwrite=args.overwrite, commit_on_exit=False, what="chat results",
                                   results=lambda name: name.startswith("turn-"))
    with session_out if session_out is not None else nullcontext():
        model = _load(args)
        session = model.start_chat(args.video, num_frames=args.frames, clip_len=args.clip_len)
        print(f"chatting about {session.source.name} ({session.source.num_frames} frames); empty line or 'exit' ends")
        turn = 0
        while True:
            try:
                line = input(CHAT_PROMPT)
            except (EOFError, KeyboardInterrupt):
                print()
                break
            message = line.strip()
            if not message or message.lower() in ("exit", "quit"):
                break
            turn += 1
            try:
                _chat_turn(session, message, turn, session_out)
            except KeyboardInterrupt:
                print("\nsvac: turn interrupted; the session goes on", file=sys.stderr)
            except Exception as exc:  # one bad turn does not end the session
                print(f"svac: error in this turn ({type(exc).__name__}): {exc}; the session goes on", file=sys.stderr)
    return 0


def _chat_turn(session, message: str, turn: int, out) -> None:
    from svac.video.export import export_result

    response = session.ask(message)
    print(f"svac> {response.text}")
    if response.result is None:
        return
    r = response.result
    print(f"      {r.num_objects} object(s) segmented over {r.masks.shape[1]} frames")
    if out is None:
        return
    name = f"turn-{turn:02d}"
    export_result(r, session.source, out.path / name)  # staged and renamed in: whole or absent
    out.commit()  # the first saved turn replaces the previous session's folder as a whole; later ones add to it
    print(f"      masks in {out.target / name / 'masks'}")


def _demo(args) -> int:
    from svac.demo.app import launch_demo, require_gradio

    require_gradio()  # before the model loads, so a missing extra is reported at once
    launch_demo(_load(args), host=args.host, port=args.port, share=args.share == "true", num_frames=args.frames,
                clip_len=args.clip_len)
    return 0


def _train(args) -> int:
    import importlib

    from svac.training.config import load_train_config

    from svac.atomic_folder import reserve_folder
    from svac.evaluation.sharding import detect_shard

    recipe = importlib.import_module("svac.recipes.finetune")
    cfg = load_train_config(args.config, args.overrides)
    shard = detect_shard()  # under accelerate / torchrun every rank runs this: one lock per rank
    with reserve_folder(cfg.output_dir, tag=f".rank{shard.rank}" if shard.world_size > 1 else ""):
        result = recipe.run(cfg, deepspeed=args.deepspeed, resume=args.resume, stop_after=args.stop_after,
                            progress=not args.quiet)
    print(f"{result.steps} updates, final loss {result.final_loss:.4f}, {result.wall_seconds:.0f} s, "
          f"peak RSS {result.peak_rss_mb:.0f} MiB; model: {result.model_dir}")
    return 0


def _export(args) -> int:
    import importlib

    from svac.atomic_folder import reserve_folder

    recipe = importlib.import_module("svac.recipes.finetune")
    with reserve_folder(args.out, overwrite=args.overwrite, what="files"):  # checked before the model is rebuilt
        out = recipe.export_checkpoint(args.run_dir, args.out, step=args.step, overwrite=args.overwrite,
                                       weights_dtype=args.weights_dtype)
    print(f"model saved in {out}")
    return 0


def _synth(args) -> int:
    from svac.data.synthetic import write_benchmark

    width, height = args.size
    if args.min_frames > args.max_frames:
        raise ValueError(f"--min-frames ({args.min_frames}) must not exceed --max-frames ({args.max_frames})")
    info = write_benchmark(args.out, videos=args.videos, seed=args.seed, subset=args.subset, domain=args.domain,
                           split=args.split, num_frames=(args.min_frames, args.max_frames), size=(width, height),
                           backgrounds=args.backgrounds, overwrite=args.overwrite)
    print(f"wrote {info.num_videos} videos, {info.num_expressions} expressions to {info.out_dir} "
          f"(split {info.split}, subset {info.subset}, domain {info.domain}, seed {info.seed})")
    return 0


def _oracle_phrases(args) -> int:
    from svac.data.synthetic.oracle_phrases import write_oracle_phrases

    copy = write_oracle_phrases(args.data_root, args.out, split=args.split, overwrite=args.overwrite)
    print(f"wrote {copy.out_dir}: {copy.replaced} expressions replaced by their answer_phrase, {copy.kept} kept "
          f"(split {copy.split}; frames and masks linked from {args.data_root})")
    return 0


def _metrics_davis(args) -> int:
    from svac.atomic_folder import reserve_folder
    from svac.metrics.davis_eval import evaluate_davis_folders

    with reserve_folder(args.out):
        result = evaluate_davis_folders(args.gt, args.pred, args.out, protocol=args.protocol,
                                        sequences=args.sequences, overwrite=args.overwrite)
    g = result.global_scores
    print(f"J&F {g.jf_mean:.4f}  J {g.j_mean:.4f}  F {g.f_mean:.4f}  ({args.protocol}); files in {args.out}")
    return 0


def _metrics_compare(args) -> int:
    import json
    from pathlib import Path

    from svac.evaluation.expression_stats import compare_runs
    from svac.metrics.output import write_text_atomic

    result = compare_runs(args.run_a, args.run_b).to_dict()
    text = json.dumps(result, indent=1)
    if args.out is not None:
        write_text_atomic(Path(args.out), text + "\n", overwrite=False)
    d = result["b_minus_a"]
    print(f"J&F A {result['a']['mean']:.4f} {result['a']['ci95']}  B {result['b']['mean']:.4f} {result['b']['ci95']}  "
          f"B-A {d['mean']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] over {d['n']} expressions")
    for name, f in result["families"].items():
        print(f"  {name:9s} n={f['b_minus_a']['n']:4d}  A {f['a']['mean']:.4f}  B {f['b']['mean']:.4f}  "
              f"B-A {f['b_minus_a']['mean']:+.4f} [{f['b_minus_a']['ci95'][0]:+.4f}, {f['b_minus_a']['ci95'][1]:+.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
