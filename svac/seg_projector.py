"""The ``[SEG]`` projector: LLM hidden states to SAM-2 prompt tokens (``text_hidden_fcs``, Sa2VA §3.2).

Apart from :mod:`svac.model` so that the checkpoint loaders build a fresh projector (composing
InternVL with SAM 2) without importing the model class they are handed.
"""

from __future__ import annotations

from torch import nn


def build_text_hidden_fcs(llm_dim: int, prompt_dim: int) -> nn.Sequential:
    """The ``[SEG]`` projector: Linear(D, D) -> ReLU -> Linear(D, C) (``text_hidden_fcs`` in Sa2VA §3.2).

    Maps an LLM hidden state ``(..., D)`` to a SAM-2 prompt token ``(..., C)`` (C = 256 for
    released SAM 2 models). The layer indices (0 and 2) match Sa2VA checkpoints.
    """
    return nn.Sequential(nn.Linear(llm_dim, llm_dim), nn.ReLU(), nn.Linear(llm_dim, prompt_dim), nn.Dropout(0.0))
