"""Are two checkouts' SAM-2 outputs the same? Save a streamed run's logits and masks, then compare two saves.

Usage (from a checkout; run the first command once per checkout, e.g. with ``PYTHONPATH=/path/to/main``)::

    python eval/logits_check.py save VIDEO OUT.npz [--model M] [--query Q] [--chunk-size N]
    python eval/logits_check.py compare A.npz B.npz

``save`` streams ``svac``'s grounding stage over every frame of VIDEO (one thread, inference
mode) and stores SAM-2's low-resolution mask logits ``float32 (K, N, S/4, S/4)`` and the
thresholded full-size masks ``bool (K, N, H, W)``. ``compare`` prints the largest absolute
logit difference (and its frame), whether the logits are bit-identical, whether the masks
are equal, the smallest per-frame mask IoU and the number of differing pixels; exit code 1
when the masks differ. Used for issue 14: svac's SAM-2 inference subclasses against the
unmodified ``sam2`` modules of an earlier checkout (``eval/README.md``).
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
    args = parser.parse_args(argv)
    return save(args) if args.command == "save" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
