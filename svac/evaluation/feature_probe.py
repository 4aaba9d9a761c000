"""Linear probe of SAM-2's image features: can an object's category and size be read from its mask-pooled features?

For every object named by a single-object expression, on ``frames`` frames of its video (spread
evenly over the frames showing it), the levels SAM-2's mask decoder reads are averaged inside the
object's mask and concatenated (:func:`svac.training.encoder_objective.mask_pooled`); a multinomial
logistic regression (standardised features, Adam, weight decay) is fitted on a training split and
scored on a held-out one, for the object's category (the dataset's labels,
:data:`svac.data.sample.CATEGORY_KEY`; the synthetic set's shape) and for "larger than the training
objects' median area". The frozen features are probed, never changed.

Run::

    python -m svac.evaluation.feature_probe MODEL --train-root DIR --test-root DIR [--train-split train]
        [--test-split valid] [--train-videos 250] [--test-videos 40] [--out FILE]

Source: svac's diagnosis of the shape family for issue 18 (a probe of the encoder's features, as in
linear evaluation of self-supervised backbones).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

#: Logistic-regression fit: Adam steps, learning rate and weight decay.
FIT_STEPS, FIT_LR, FIT_WEIGHT_DECAY = 300, 1e-2, 1e-3


@dataclass(frozen=True)
class ProbeObjects:
    """Mask-pooled features of objects and their labels.

    Attributes:
        features: ``float32 (N, D)`` (the levels concatenated, highest resolution first).
        categories: ``(N,)`` category names (``None`` where the dataset lists none).
        areas: ``int64 (N,)`` mask areas at SAM-2's input size (pixels).
    """

    features: np.ndarray
    categories: list
    areas: np.ndarray


def collect(model, samples: Sequence, *, videos: int, frames: int) -> ProbeObjects:
    """Mask-pooled features of the objects of the first ``videos`` videos of ``samples``.

    Args:
        model: an SVAC model (its ``grounding`` and ``sam2_image_size``).
        samples: :class:`~svac.data.sample.ReferringSample` s with ground truth.
        videos: how many videos (in the order they first appear).
        frames: frames per object, spread evenly over those showing it.

    Raises:
        ValueError: when no object is found.
    """
    from svac.data.sample import CATEGORY_KEY
    from svac.evaluation.image_level import evenly_spaced
    from svac.grounding.sam2_model import preprocess_frames
    from svac.heads.rvos_training import resize_masks
    from svac.training.encoder_objective import decoder_levels, mask_pooled
    from svac.video.reader import FramePathsVideo

    sam, size = model.grounding, model.sam2_image_size
    objects: dict[tuple[str, int], object] = {}
    order: list[str] = []
    for s in samples:
        if s.video_id not in order:
            order.append(s.video_id)
        if len(s.object_ids) == 1 and len(order) <= videos:
            objects.setdefault((s.video_id, s.object_ids[0]), s)
    feats, cats, areas = [], [], []
    for s in objects.values():
        gt = s.load_masks()
        seen = np.nonzero(gt.reshape(len(gt), -1).any(1))[0]
        picks = evenly_spaced(seen, frames)
        if len(picks) == 0:
            continue
        images = FramePathsVideo(s.frame_paths, name=s.video_id, check_sizes=False).read(picks)
        masks = resize_masks(gt[picks], (size, size))
        keep = masks.flatten(1).any(1)
        if not bool(keep.any()):
            continue
        with torch.no_grad():
            levels = decoder_levels(sam, preprocess_frames(images, size))
            pooled = mask_pooled(levels, masks[keep], torch.nonzero(keep)[:, 0])
        feats.append(pooled.numpy())
        cats += [s.meta.get(CATEGORY_KEY)] * int(keep.sum())
        areas.append(masks[keep].flatten(1).sum(1).numpy())
    if not feats:
        raise ValueError("no object with a visible single-object mask to probe")
    return ProbeObjects(np.concatenate(feats).astype(np.float32), cats, np.concatenate(areas).astype(np.int64))


def linear_probe(x_train: np.ndarray, y_train: Sequence, x_test: np.ndarray, y_test: Sequence, *,
                 seed: int = 0) -> dict:
    """Fit a multinomial logistic regression on standardised features and score it.

    Returns:
        ``{"accuracy", "majority", "n_train", "n_test"}``: held-out accuracy and the held-out share of
        the most frequent class (what a constant guess gets).
    """
    torch.manual_seed(seed)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    a = torch.tensor((x_train - mu) / sd, dtype=torch.float32)
    b = torch.tensor([index[c] for c in y_train])
    linear = torch.nn.Linear(a.shape[1], len(classes))
    opt = torch.optim.Adam(linear.parameters(), lr=FIT_LR, weight_decay=FIT_WEIGHT_DECAY)
    for _ in range(FIT_STEPS):
        opt.zero_grad()
        F.cross_entropy(linear(a), b).backward()
        opt.step()
    with torch.no_grad():
        pred = linear(torch.tensor((x_test - mu) / sd, dtype=torch.float32)).argmax(1).numpy()
    correct = [classes[p] == y for p, y in zip(pred, y_test)]
    majority = max(float(np.mean([y == c for y in y_test])) for c in set(y_test))
    return {"accuracy": float(np.mean(correct)), "majority": majority, "n_train": len(y_train), "n_test": len(y_test)}


def probe(train: ProbeObjects, test: ProbeObjects) -> dict:
    """Category (objects with one) and larger-than-median-area probes of ``train`` -> ``test``."""
    out = {}
    has_tr = [i for i, c in enumerate(train.categories) if c is not None]
    has_te = [i for i, c in enumerate(test.categories) if c is not None]
    if has_tr and has_te:
        out["category"] = linear_probe(train.features[has_tr], [train.categories[i] for i in has_tr],
                                       test.features[has_te], [test.categories[i] for i in has_te])
    median = float(np.median(train.areas))
    out["size_above_median"] = linear_probe(train.features, list(train.areas > median), test.features,
                                            list(test.areas > median))
    out["median_area_px"] = median
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.feature_probe MODEL --train-root DIR --test-root DIR [...]``."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.feature_probe",
                                     description="linear probe of category and size on mask-pooled SAM-2 features")
    parser.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    parser.add_argument("--train-root", required=True, help="rvos dataset root the probe is fitted on")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-root", required=True, help="held-out rvos dataset root it is scored on")
    parser.add_argument("--test-split", default="valid")
    parser.add_argument("--train-videos", type=int, default=250)
    parser.add_argument("--test-videos", type=int, default=40)
    parser.add_argument("--train-frames", type=int, default=2, help="frames per object (training)")
    parser.add_argument("--test-frames", type=int, default=3, help="frames per object (held out)")
    parser.add_argument("--out", default=None, help="write the result as JSON to this file (must not exist)")
    args = parser.parse_args(argv)
    from svac.data.readers import load_dataset
    from svac.loading import load_model
    from svac.metrics.output import report_json

    model = load_model(args.model, device="cpu").eval()
    train = collect(model, list(load_dataset(f"rvos:{args.train_root}", args.train_split)),
                    videos=args.train_videos, frames=args.train_frames)
    test = collect(model, list(load_dataset(f"rvos:{args.test_root}", args.test_split)),
                   videos=args.test_videos, frames=args.test_frames)
    report_json({"model": args.model, "train": f"{args.train_root}:{args.train_split}",
                 "test": f"{args.test_root}:{args.test_split}", **probe(train, test)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
