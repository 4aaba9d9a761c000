"""Recording what the LLM computes during a forward pass or ``generate``: last-layer hidden states and timings.

transformers' ``generate`` can return every layer's hidden states for every step,
which for a long video prompt costs ``num_layers x prompt_len x D`` floats. svac
needs only the last layer, and only at the generated tokens, so it hooks the
LLM's decoder (``InternVLModel.language_model``) instead: each call's
``last_hidden_state`` (after the final norm, as ``hidden_states[-1]``) is kept
for decoding steps, and the prefill call is timed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LLMCallRecord:
    """What the LLM decoder did during one ``generate`` (or forward) call.

    Attributes:
        prefill_seconds: wall time of the first decoder call (the prompt), seconds.
        decode_seconds: summed wall time of the later calls (one per new token), seconds.
        vision_seconds: wall time of the vision tower + projector, seconds.
        step_hidden: last-layer hidden state of the last position of every decoding call,
            each ``(batch, D)``; entry j belongs to the j-th generated token as *input*.
        prefill_hidden: last-layer hidden states of the prompt ``(batch, L, D)`` when
            ``keep_prefill=True``, else ``None``.
    """

    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    vision_seconds: float = 0.0
    step_hidden: list[torch.Tensor] = field(default_factory=list)
    prefill_hidden: torch.Tensor | None = None
    _calls: int = 0


class LLMRecorder:
    """Context manager hooking an ``InternVLForConditionalGeneration`` to fill an :class:`LLMCallRecord`.

    Usage::

        with LLMRecorder(mllm) as rec:
            mllm.generate(...)
        rec.record.prefill_seconds, rec.record.step_hidden

    Timings synchronise CUDA before reading the clock, so they are exact on GPUs too.
    """

    def __init__(self, mllm: nn.Module, *, keep_prefill: bool = False) -> None:
        self.decoder = mllm.model.language_model
        self.vision = mllm.model.vision_tower
        self.projector = mllm.model.multi_modal_projector
        self.keep_prefill = keep_prefill
        self.record = LLMCallRecord()
        self._handles: list = []
        self._t0 = 0.0
        self._v0 = 0.0

    def __enter__(self) -> "LLMRecorder":
        self._handles = [
            self.decoder.register_forward_pre_hook(self._pre),
            self.decoder.register_forward_hook(self._post),
            self.vision.register_forward_pre_hook(self._vision_pre),
            self.projector.register_forward_hook(self._vision_post),
        ]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _clock(self, module: nn.Module) -> float:
        param = next(module.parameters(), None)
        if param is not None and param.is_cuda:
            torch.cuda.synchronize(param.device)
        return time.perf_counter()

    def _pre(self, module, args) -> None:
        self._t0 = self._clock(module)

    def _post(self, module, args, output) -> None:
        elapsed = self._clock(module) - self._t0
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        rec = self.record
        if rec._calls == 0:
            rec.prefill_seconds += elapsed
            if self.keep_prefill:
                rec.prefill_hidden = hidden.detach()
        else:
            rec.decode_seconds += elapsed
            rec.step_hidden.append(hidden[:, -1].detach())
        rec._calls += 1

    def _vision_pre(self, module, args) -> None:
        self._v0 = self._clock(module)

    def _vision_post(self, module, args, output) -> None:
        self.record.vision_seconds += self._clock(module) - self._v0
