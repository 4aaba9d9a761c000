"""Test helpers: config variants of a shared model, scripted decoding, and the example video's objects."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import torch

#: ``examples/synthetic.mp4`` (video s2026_00006 of ``svac data synth --videos 8 --seed 2026 --split valid``).
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "synthetic.mp4"
#: Its objects' ids (the ``example_truth`` fixture of conftest.py).
WHITE_SQUARE, RED_SQUARE, RED_TRIANGLE, BLUE_TRIANGLE = 1, 2, 3, 4


def variant(model, **sections):
    """A shallow copy of ``model`` (same weights) whose config sections are replaced field by field.

    Example: ``variant(model, inference={"answer_mode": "generate"}, csa={"mode": "single"})``.
    """
    config = model.config
    for name, changes in sections.items():
        config = dataclasses.replace(config, **{name: dataclasses.replace(getattr(config, name), **changes)})
    clone = copy.copy(model)
    clone.config = config
    return clone


def scripted_generate(mllm, tokens):
    """A stand-in for ``mllm.generate`` that decodes ``tokens`` (then stops), one real decoder call per token.

    It runs the same model calls ``generate`` does -- a prefill over the prompt and one cached
    step per fed token -- so hidden-state capture behaves exactly as during real decoding.
    """
    def generate(input_ids, attention_mask, pixel_values, **_):
        out = mllm(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values, use_cache=True)
        past, mask = out.past_key_values, attention_mask
        for tok in tokens[:-1]:
            step = torch.tensor([[tok]], device=input_ids.device)
            mask = torch.cat([mask, torch.ones_like(step)], dim=1)
            out = mllm(input_ids=step, attention_mask=mask, past_key_values=past, use_cache=True)
            past = out.past_key_values
        return torch.cat([input_ids, torch.tensor([tokens], device=input_ids.device)], dim=1)
    return generate


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for test servers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame_j(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``float (N,)`` region J per frame of ``bool (N, H, W)`` masks against the truth (1 where both are empty)."""
    inter = (masks & truth).sum(axis=(1, 2))
    union = (masks | truth).sum(axis=(1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))
