"""Are two checkouts' SAM-2 outputs the same? Save a streamed run's logits and masks, then compare two saves.

Usage (from a checkout; run the first command once per checkout, e.g. with ``PYTHONPATH=/path/to/main``)::

    python eval/logits_check.py save VIDEO OUT.npz [--model M] [--query Q] [--chunk-size N]
    python eval/logits_check.py compare A.npz B.npz
    python eval/logits_check.py upsampling A.npz [--rounds R]

``save`` streams ``svac``'s grounding stage over every frame of VIDEO (one thread, inference
mode) and stores SAM-2's low-resolution mask logits ``float32 (K, N, S/4, S/4)`` and the
thresholded full-size masks ``bool (K, N, H, W)``. ``compare`` prints the largest absolute
logit difference (and its frame), whether the logits are bit-identical, whether the masks
are equal, the smallest per-frame mask IoU and the number of differing pixels; exit code 1
when the masks differ. Used for issue 14: svac's SAM-2 inference subclasses against the
unmodified ``sam2`` modules of an earlier checkout (``eval/README.md``). ``upsampling`` times, in one
process on one thread, the masks of a save's logits made in chunks of 8 frames by whole-frame
``F.interpolate`` + threshold (svac before the windowed upsampling) and by
:func:`svac.grounding.mask_upsampling.upsample_masks`, alternating the two over ``--rounds`` rounds, and
checks that both give the save's masks (CPU ms per frame, median over rounds; exit code 1 when a mask differs).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np


def save(args) -> int:
    import torch

    import svac
    import svac.grounding.engine as engine
    from svac.loading import load_model

    torch.set_num_threads(1)
    recorded = []
    to_masks = engine.logits_to_masks

    def recording(model, logits, **kwargs):  # the engine's one call per chunk: its logits, unchanged
        recorded.append(logits.float().clone())
        return to_masks(model, logits, **kwargs)

    engine.logits_to_masks = recording
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_model(args.model, device="cpu")
    model.eval()
    masks = []
    with torch.inference_mode():
        options = {"chunk_size": args.chunk_size} if args.chunk_size else {}
        for chunk in model.segment_stream(args.video, args.query, **options):
            masks.append(chunk.masks.copy())
    logits = torch.cat(recorded, dim=1).numpy()
    np.savez_compressed(args.out, logits=logits, masks=np.concatenate(masks, axis=1))
    print(f"{args.out}: logits {logits.shape}, svac from {svac.__file__}")
    return 0


def compare(args) -> int:
    a, b = np.load(args.a), np.load(args.b)
    la, lb, ma, mb = a["logits"], b["logits"], a["masks"], b["masks"]
    if la.shape != lb.shape or ma.shape != mb.shape:
        print(f"different shapes: logits {la.shape} / {lb.shape}, masks {ma.shape} / {mb.shape}")
        return 1
    diff = np.abs(la.astype(np.float64) - lb)
    inter = (ma & mb).sum(axis=(2, 3))
    union = (ma | mb).sum(axis=(2, 3))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    frame = int(np.unravel_index(diff.argmax(), diff.shape)[1])
    same = np.array_equal(ma, mb)
    print(f"logits max |diff| {diff.max():.3g} (frame {frame}), bit-identical {np.array_equal(la, lb)}; masks equal "
          f"{same}; min IoU {iou.min():.6f}; frames with IoU < 1: {int((iou < 1).sum())}; differing pixels "
          f"{int((ma ^ mb).sum())}")
    return 0 if same else 1


def upsampling(args) -> int:
    import time

    import torch
    import torch.nn.functional as F

    from svac.grounding.mask_upsampling import upsample_masks

    torch.set_num_threads(1)
    saved = np.load(args.a)
    logits, masks = torch.from_numpy(saved["logits"]), saved["masks"]
    height, width = masks.shape[-2:]
    chunks = [logits[:, i:i + 8] for i in range(0, logits.shape[1], 8)]
    ways = {"F.interpolate": lambda c: (F.interpolate(c, size=(height, width), mode="bilinear",
                                                      align_corners=False) > 0).numpy(),
            "upsample_masks": lambda c: upsample_masks(c, (height, width), 0.0)}
    equal = {name: np.array_equal(np.concatenate([f(c) for c in chunks], axis=1), masks) for name, f in ways.items()}
    spent = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, f in ways.items():
            start = time.process_time()
            for c in chunks:
                f(c)
            spent[name].append((time.process_time() - start) / logits.shape[1] * 1000)
    ms = {name: float(np.median(v)) for name, v in spent.items()}
    print(f"{args.a}: {width}x{height}, {logits.shape[1]} frames, masks cover {masks.mean() * 100:.2f} % of the "
          f"frames; CPU ms per frame F.interpolate {ms['F.interpolate']:.3f}, upsample_masks "
          f"{ms['upsample_masks']:.3f} (ratio {ms['upsample_masks'] / ms['F.interpolate']:.3f}); "
          f"equal to the saved masks: {equal}")
    return 0 if all(equal.values()) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="stream a video, save logits and masks")
    s.add_argument("video")
    s.add_argument("out")
    s.add_argument("--model", default=None)
    s.add_argument("--query", default="the red square")
    s.add_argument("--chunk-size", type=int, default=None)
    c = sub.add_parser("compare", help="compare two saves")
    c.add_argument("a")
    c.add_argument("b")
    u = sub.add_parser("upsampling", help="time the saved logits' upsampling: F.interpolate vs upsample_masks")
    u.add_argument("a")
    u.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    return {"save": save, "compare": compare, "upsampling": upsampling}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
