"""Test helpers: config variants of a shared model, and scripted decoding."""

from __future__ import annotations

import copy
import dataclasses

import torch


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
