"""One measured run of the peer / memory / startup studies, in its own process (run by :mod:`bench_common`).

Modes (the first argument):

* ``svac-core VIDEO --model M --query Q [--mask-out PNG]`` -- svac's grounding stage on every
  frame of VIDEO, given its own ``[SEG]`` prompts: the MLLM reads the video and answers first
  (untimed setup, reported as ``mllm_seconds``), then the timed **core** runs from opening the
  video to thresholded full-size masks of every frame (decoding, SAM-2 preprocessing, image
  encoder, memory attention, mask decoder, memory encoder, upsampling, thresholding). The masks
  go to a sink that sums each frame's area. ``--mask-out`` saves the frame-0 mask (the prompt
  the predictor gets).
* ``predictor VIDEO --sam2-pt PT --sam2-config JSON --mask PNG`` -- the ``sam2`` package's
  ``SAM2VideoPredictor`` with the same SAM-2 weights and architecture options, prompted by the
  mask PNG on frame 0; the timed core is ``init_state`` (decoding and preprocessing every frame),
  ``add_new_mask`` and ``propagate_in_video``, whose full-size logits are thresholded at 0 into
  the same sink.
* ``svac-segment VIDEO --model M --query Q --out DIR`` -- the whole ``svac segment`` job (CLI
  entry in-process: MLLM, SAM-2, mask PNGs, ``overlay.mp4``, ``result.json``).
* ``overlay VIDEO --frames N`` -- ``svac.video.export.write_overlay`` on the first N frames with a
  box mask (the overlay writer of a checkout whose job does not time it).

With ``--modules`` the ``svac-core`` and ``predictor`` runs also report ``modules_ms_per_frame``: CPU
milliseconds per frame spent in each SAM-2 part (image encoder with its high-resolution convolutions
= ``forward_image``, ``track_step`` and, inside it, memory conditioning with memory attention, prompt
encoder, mask decoder, memory encoder), timed by wrappers around those calls (a little slower than
an uninstrumented run: for the split, not for the ratio).

Every mode prints one JSON line: seconds (wall, and CPU seconds of the process -- all its threads
-- for the core), frames, and ``peak_rss_mib`` (``ru_maxrss`` of this process: imports, model and run).
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

MIB = 1024 * 1024


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (MiB; Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_one_thread() -> None:
    import torch

    torch.set_num_threads(1)


# ----------------------------------------------------------------------------- per-part timing

#: SAM-2 modules and methods timed by ``--modules`` (process CPU time per call, summed).
TIMED_MODULES = ("image_encoder", "memory_attention", "sam_prompt_encoder", "sam_mask_decoder", "memory_encoder")
TIMED_METHODS = ("forward_image", "track_step", "_prepare_memory_conditioned_features")


def time_sam2_parts(sam) -> dict:
    """Wrap ``sam``'s parts (:data:`TIMED_MODULES`, :data:`TIMED_METHODS`) to sum their CPU seconds into the
    returned dict (name -> seconds), as the run goes."""
    spent: dict = {}
    starts: dict = {}

    def pre(name):
        return lambda module, inputs: starts.setdefault(name, []).append(time.process_time())

    def post(name):
        def hook(module, inputs, output):
            spent[name] = spent.get(name, 0.0) + time.process_time() - starts[name].pop()
        return hook

    for name in TIMED_MODULES:
        module = getattr(sam, name)
        module.register_forward_pre_hook(pre(name))
        module.register_forward_hook(post(name))
    for name in TIMED_METHODS:
        method = getattr(sam, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            t0 = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - t0
        setattr(sam, name, timed)
    return spent


def _per_frame_ms(spent: dict | None, frames: int) -> dict | None:
    return None if spent is None else {k: 1e3 * v / frames for k, v in sorted(spent.items())}


# ----------------------------------------------------------------------------- svac


def _load_model(spec: str | None):
    import warnings

    from svac.loading import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model(spec, device="cpu")


def svac_core(args) -> dict:
    """svac's grounding stage, timed from opening the video to every frame's thresholded masks."""
    import torch

    set_one_thread()
    model = _load_model(args.model)
    model.eval()
    spent = time_sam2_parts(model.grounding) if args.modules else None
    streaming = hasattr(model, "segment_stream")
    areas: list[np.ndarray] = []
    first_mask = None
    with torch.inference_mode():
        if streaming:  # this checkout streams: the MLLM answers when the stream is made, SAM-2 runs as it is read
            t0 = time.perf_counter()
            stream = model.segment_stream(args.video, args.query)
            mllm = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            for chunk in stream:
                if first_mask is None:
                    first_mask = chunk.masks[0, 0].copy()
                areas.append(chunk.masks.reshape(chunk.masks.shape[0], chunk.masks.shape[1], -1).sum(-1))
            core, core_cpu = time.perf_counter() - t0, time.process_time() - c0
            timings = stream.timings.to_dict()
            num_frames = stream.num_frames
        else:  # a checkout before streaming: its segment() minus the grounding stage, then ground() timed
            from svac.csa import allocate, seg_tokens
            from svac.inference import answer_with_template, ground, prepare_video
            from svac.mllm.chat_template import Turn
            from svac.video.reader import open_video

            t0 = time.perf_counter()
            prepared = prepare_video(model, args.video)
            question = model.prompts.question(prepared.video_text, args.query)
            answer = model.prompts.answer(seg_tokens(prepared.plan.num_clips, model.config.csa), args.query)
            mllm_answer = answer_with_template(model, prepared, [Turn(question, answer)])
            allocation = allocate(model.seg_prompts(mllm_answer.seg_hidden), prepared.plan.num_clips,
                                  model.config.csa)
            mllm = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            source = open_video(args.video)
            grounded = ground(model, source, prepared.plan, allocation.prompts)
            k, n = grounded.masks.shape[:2]
            areas.append(grounded.masks.reshape(k, n, -1).sum(-1))
            core, core_cpu = time.perf_counter() - t0, time.process_time() - c0
            first_mask = grounded.masks[0, 0].copy()
            timings = {"sam2_encoder": grounded.encoder_seconds, "sam2_tracking": grounded.tracking_seconds,
                       "video_decode": prepared.decode_seconds}
            num_frames = n
    if args.mask_out:
        from PIL import Image

        Image.fromarray(first_mask.astype(np.uint8) * 255, mode="L").save(args.mask_out)
    area = np.concatenate(areas, axis=1)
    return {"mode": "svac-core", "core_seconds": core, "core_cpu_seconds": core_cpu, "frames": int(num_frames),
            "mllm_seconds": mllm,
            "mask_area_mean": float(area.mean()), "frame0_area": int(first_mask.sum()), "timings": timings,
            "modules_ms_per_frame": _per_frame_ms(spent, int(num_frames)), "peak_rss_mib": peak_rss_mib()}


# ----------------------------------------------------------------------------- SAM-2's predictor


def build_predictor(config_json: str, checkpoint: str):
    """``SAM2VideoPredictor`` built from svac's typed SAM-2 config (same sizes and options), weights loaded strictly.

    svac-only constructor options are dropped; hole filling is off (``fill_hole_area=0``), as svac
    does none (and SAM-2's hole filling needs its CUDA extension).
    """
    import torch
    from hydra.utils import instantiate
    from omegaconf import open_dict
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    from svac.config import SAM2Config, from_dict
    from svac.grounding.sam2_hydra import sam2_model_node

    cfg = from_dict(SAM2Config, json.loads(Path(config_json).read_text()))
    node = sam2_model_node(cfg, SAM2VideoPredictor)
    accepted = set(inspect.signature(SAM2Base.__init__).parameters) | set(
        inspect.signature(SAM2VideoPredictor.__init__).parameters)
    with open_dict(node):
        for key in [k for k in node if k != "_target_" and k not in accepted]:
            del node[key]
        node["fill_hole_area"] = 0
    predictor = instantiate(node, _recursive_=True)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    predictor.load_state_dict(state, strict=True)
    return predictor.eval()


def predictor_core(args) -> dict:
    """``SAM2VideoPredictor``: init_state + add_new_mask(frame 0) + propagate_in_video, thresholded at 0."""
    import torch
    from PIL import Image

    set_one_thread()
    predictor = build_predictor(args.sam2_config, args.sam2_pt)
    spent = time_sam2_parts(predictor) if args.modules else None
    mask = np.asarray(Image.open(args.mask)) > 0
    areas = []
    with torch.inference_mode():
        t0, c0 = time.perf_counter(), time.process_time()
        state = predictor.init_state(str(args.video))
        predictor.add_new_mask(state, frame_idx=0, obj_id=1, mask=torch.from_numpy(mask))
        for _, _, logits in predictor.propagate_in_video(state):
            masks = (logits > 0.0).cpu().numpy()
            areas.append(masks.reshape(masks.shape[0], -1).sum(-1))
        core, core_cpu = time.perf_counter() - t0, time.process_time() - c0
    area = np.stack(areas, axis=1)
    frames = int(state["num_frames"])
    return {"mode": "predictor", "core_seconds": core, "core_cpu_seconds": core_cpu, "frames": frames,
            "mask_area_mean": float(area.mean()), "frame0_area": int(mask.sum()),
            "modules_ms_per_frame": _per_frame_ms(spent, frames), "peak_rss_mib": peak_rss_mib()}


# ----------------------------------------------------------------------------- whole jobs


def svac_segment(args) -> dict:
    """The whole ``svac segment`` job through the CLI entry, in this process."""
    set_one_thread()
    from svac.cli import main

    t0 = time.perf_counter()
    code = main(["segment", str(args.video), args.query, "--out", str(args.out), "--quiet", "--overwrite"]
                + (["--model", args.model] if args.model else []))
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"svac segment exited with {code}")
    summary = json.loads((Path(args.out) / "result.json").read_text())
    return {"mode": "svac-segment", "wall_seconds": wall, "frames": int(summary["num_frames"]),
            "timings": summary.get("timings_seconds", {}), "peak_rss_mib": peak_rss_mib()}


def overlay(args) -> dict:
    """``write_overlay`` on the first ``--frames`` frames with a centred box mask (one object)."""
    set_one_thread()
    import tempfile

    from svac.video.export import DEFAULT_FPS, write_overlay
    from svac.video.reader import ArrayVideo, open_video

    source = open_video(args.video)
    n = min(args.frames, source.num_frames)
    clip = ArrayVideo(source.read(range(n)), fps=source.fps)
    masks = np.zeros((1, n, source.height, source.width), dtype=bool)
    masks[:, :, source.height // 4:3 * source.height // 4, source.width // 4:3 * source.width // 4] = True
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        write_overlay(masks, clip, Path(tmp) / "overlay.mp4", fps=source.fps or DEFAULT_FPS)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"mode": "overlay", "seconds": seconds, "frames": n, "ms_per_frame": 1e3 * seconds / n,
            "cpu_ms_per_frame": 1e3 * cpu / n,
            "note": "frames given in memory (decoding not counted)", "peak_rss_mib": peak_rss_mib()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["svac-core", "predictor", "svac-segment", "overlay"])
    parser.add_argument("video")
    parser.add_argument("--model", default=None)
    parser.add_argument("--query", default="the red square")
    parser.add_argument("--mask-out", default=None)
    parser.add_argument("--mask", default=None)
    parser.add_argument("--sam2-pt", default=None)
    parser.add_argument("--sam2-config", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--modules", action="store_true", help="also time SAM-2's parts (svac-core, predictor)")
    args = parser.parse_args(argv)
    run = {"svac-core": svac_core, "predictor": predictor_core, "svac-segment": svac_segment,
           "overlay": overlay}[args.mode]
    report = run(args)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
