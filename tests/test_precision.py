"""Lower-precision inference: the MLLM in bfloat16/float16, SAM-2's weights in float32 under autocast.

Released Sa2VA folders load in bfloat16 by default; before this, segmenting in bfloat16 or
float16 stopped in SAM-2's prompt encoder on a dtype mismatch (its point coordinates are float32
on purpose), so every release needed ``--set inference.dtype=float32``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "oracles"))

from sa2va_compare import reference_masks, reference_outputs  # noqa: E402
from sa2va_frames import EXPRESSION, load_frames  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sa2va_tiny"
#: Mean IoU over the 8 frames between svac in bfloat16 and the reference in float32 (measured:
#: 0.94-1.00 over the four layouts; a broken low-precision path gives empty or full masks).
MIN_MEAN_IOU_BF16 = 0.9


def _dtypes(model) -> tuple[set[torch.dtype], set[torch.dtype]]:
    mllm = {p.dtype for p in model.mllm.parameters()} | {p.dtype for p in model.text_hidden_fcs.parameters()}
    sam2 = {p.dtype for p in model.grounding.parameters()}
    return mllm, sam2


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_tiny_model_segments_in_lower_precision(dtype):
    from svac.loading import UntrainedModelWarning, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        model = load_model("tiny.yaml", device="cpu", overrides=[f"inference.dtype={dtype}"])
    mllm, sam2 = _dtypes(model)
    assert mllm == {getattr(torch, dtype)} and sam2 == {torch.float32}
    frames = np.zeros((6, 48, 64, 3), dtype=np.uint8)
    frames[:, 10:30, 12:40] = (220, 40, 40)
    result = model.segment(frames, "the red square")
    assert result.masks.shape == (1, 6, 48, 64) and result.masks.dtype == bool
    assert np.isfinite(result.scores).all()


@pytest.mark.parametrize("variant", ["sa2va_1b", "sa2va_4b", "sa2va_26b", "sa2va_internvl3"])
def test_sa2va_release_segments_in_its_stored_bfloat16(variant, davis16):
    from svac.loading import load_model

    folder = FIXTURES / variant
    model = load_model(str(folder), device="cpu", overrides=["inference.answer_mode=template"])
    mllm, sam2 = _dtypes(model)
    assert mllm == {torch.bfloat16} and sam2 == {torch.float32}  # the folder's torch_dtype; SAM-2 float32
    frames = load_frames(davis16)
    result = model.segment(frames, EXPRESSION)
    ref, meta = reference_outputs(folder)
    expected = reference_masks(ref, meta)
    ious = [(got & want).sum() / max((got | want).sum(), 1) for got, want in zip(result.masks[0], expected)]
    assert np.mean(ious) >= MIN_MEAN_IOU_BF16, ious
