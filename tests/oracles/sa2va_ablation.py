"""Which of Sa2VA mode's steps the oracle fixture detects: undo one at a time and compare again (issue 13 probe).

Each row re-runs :func:`sa2va_compare.compare` on a fixture folder with one step of svac's
``sa2va`` pipeline put back to what svac did before (SAM 2's object-score gating, single-mask
``[SEG]`` decoding, every frame prompted, float32 memory, float32 SAM-2 statistics, torch
resizing, direct upsampling). A step the fixture cannot tell apart shows the same numbers as
"all steps". Diagnostic only (it patches svac's internals for the duration of one row)::

    python tests/oracles/sa2va_ablation.py tests/fixtures/sa2va_tiny/sa2va_1b
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sa2va_compare  # noqa: E402
from sa2va_frames import load_frames, shared_davis16  # noqa: E402


@contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _model_patch(change):
    """Apply ``change(model)`` to every model the loader returns."""
    from svac.checkpoints import loader

    load = loader.load_checkpoint

    def patched_load(*args, **kwargs):
        loaded = load(*args, **kwargs)
        change(loaded.model)
        return loaded

    return patched(loader, "load_checkpoint", patched_load)


def ablations():
    """``(name, context manager)`` for each step undone."""
    import svac.grounding.sam2_model as sam2_model
    import svac.grounding.tracking as tracking
    import svac.inference as inference
    import svac.sa2va_pipeline as pipeline

    track, frames_in, images_in = tracking.track_sa2va, sam2_model.preprocess_frames, inference.preprocess_images

    def every_frame_prompted(model, frames, prompts, *, prompted_frames, num_frames, memory_dtype=None):
        return track(model, frames, prompts, prompted_frames=range(num_frames), num_frames=num_frames,
                     memory_dtype=memory_dtype)

    def float32_memory(model, frames, prompts, *, prompted_frames, num_frames, memory_dtype=None):
        return track(model, frames, prompts, prompted_frames=prompted_frames, num_frames=num_frames, memory_dtype=None)

    return [
        ("all steps", nullcontext()),
        ("SAM 2 gating (absent object -> -1024)",
         _model_patch(lambda m: setattr(m.grounding, "keep_absent_object_logits", False))),
        ("single mask for [SEG]", _model_patch(lambda m: setattr(m.grounding, "text_multimask_output", False))),
        ("every frame prompted, conditioning", patched(tracking, "track_sa2va", every_frame_prompted)),
        ("memory features in float32", patched(tracking, "track_sa2va", float32_memory)),
        ("SAM-2 mean/std in float32",
         patched(sam2_model, "preprocess_frames", lambda *a, **k: frames_in(*a, **{**k, "stats_dtype": torch.float32}))),
        ("SAM-2 torch resize", patched(sam2_model, "preprocess_frames",
                                       lambda *a, **k: frames_in(*a, **{**k, "resample": "torch"}))),
        ("MLLM torch resize", patched(inference, "preprocess_images",
                                      lambda *a, **k: images_in(*a, **{**k, "resample": "torch"}))),
        ("upsampling 256 -> frame directly", patched(pipeline, "upsample_logits", lambda logits, size, frame: F.interpolate(
            logits, size=frame, mode="bilinear", align_corners=False))),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    frames = load_frames(shared_davis16(sa2va_compare.REPO_ROOT))
    print(f"#### {args.folder.name}\n\n| step undone | ids equal | [SEG] prompt | low-res logits (max) | IoU (min) |")
    print("|---|---|---|---|---|")
    for name, context in ablations():
        with context:
            r = sa2va_compare.compare(args.folder, frames=frames)
        print(f"| {name} | {r.ids_equal} | {r.seg_prompt:.1e} | {max(r.low_res):.1e} | {min(r.iou):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
