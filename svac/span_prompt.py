"""The span skip path of the ``[SEG]`` prompt: the expression's own token states prompt SAM-2 too.

Sa2VA prompts SAM-2 with the projected last-layer hidden state of ``[SEG]`` alone. A model
trained from scratch starts with a ``[SEG]`` state that barely depends on the expression (at
initialisation the state is dominated by the ``[SEG]`` embedding itself, and attention spreads
over hundreds of visual tokens), and training collapsed it to one constant prompt that SAM-2
learnt to ignore. The span skip path (``config.seg_prompt.span_skip``) adds to each ``[SEG]``
prompt a projection of the LLM's layer-0 hidden states -- the input embeddings -- averaged over
the answer's ``<p>...</p>`` span (the restated expression, "It is <p>the red square</p>[SEG]"),
so every prompt depends on the expression from the first update while the ``[SEG]`` state, also
from the LLM, carries what only the video can tell (which object moves, enters later ...). With
``span_layer: last`` the span's *last-layer* states are averaged instead: they start close to the
embeddings (the residual stream of a freshly initialised LLM is dominated by them, and the answer's
cross-entropy keeps them predictive of the restated words) and can learn to carry what the video
shows about the phrase.
With ``zero_init_llm_branch`` the last layer of ``text_hidden_fcs`` starts at zero, so the span
term dominates at first and the ``[SEG]`` branch grows as it learns (ControlNet's zero
convolution, Zhang et al. ICCV 2023, §3.1; ReZero, Bachlechner et al. 2021).

Source: svac's addition (issue 18); the ``<p>...</p>`` phrase markers are Sa2VA's (§3.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from svac.config import SegPromptConfig
from svac.mllm.tokens import PHRASE_END, PHRASE_START

if TYPE_CHECKING:
    from svac.model import SVAC


@dataclass(frozen=True)
class SpanStates:
    """The span states of n ``[SEG]`` tokens.

    Attributes:
        states: ``float (n, D)`` the layer-0 hidden states averaged over the ``<p>...</p>`` span
            before each ``[SEG]`` (zeros where there is none).
        present: ``bool (n,)`` whether a span precedes the ``[SEG]``.
    """

    states: torch.Tensor
    present: torch.Tensor

    @staticmethod
    def cat(parts: "list[SpanStates]") -> "SpanStates":
        """Concatenate along the ``[SEG]`` dimension, in order."""
        return SpanStates(torch.cat([p.states for p in parts]), torch.cat([p.present for p in parts]))


class SpanPrompt(nn.Module):
    """Projection of pooled span states to a SAM-2 prompt: LayerNorm(D) -> Linear(D, D) -> GELU -> Linear(D, C).

    Args:
        llm_dim: D, the LLM's hidden size.
        prompt_dim: C, SAM-2's prompt width (``grounding.hidden_dim``).
    """

    def __init__(self, llm_dim: int, prompt_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(llm_dim)
        self.proj = nn.Sequential(nn.Linear(llm_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, prompt_dim))

    def forward(self, span: SpanStates) -> torch.Tensor:
        """``float (n, C)`` prompt terms; rows without a span are zero."""
        x = span.states.to(self.norm.weight.dtype)
        out = self.proj(self.norm(x))
        return out * span.present[:, None].to(out.dtype)


def build_span_prompt(cfg: SegPromptConfig, llm_dim: int, prompt_dim: int) -> SpanPrompt | None:
    """The span skip module of ``cfg`` (``None`` when ``cfg.span_skip`` is off)."""
    return SpanPrompt(llm_dim, prompt_dim) if cfg.span_skip else None


def zero_last_layer(text_hidden_fcs: nn.Module) -> None:
    """Set the last ``Linear`` of ``text_hidden_fcs`` to zero (weights and bias), in place."""
    last = [m for m in text_hidden_fcs.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


def span_bounds(input_ids: torch.Tensor, positions: torch.Tensor, open_id: int, close_id: int
                ) -> list[tuple[int, int] | None]:
    """For each position, the token range ``(start, stop)`` inside the last complete ``<p>...</p>`` before it.

    Args:
        input_ids: ``long (L,)`` one conversation.
        positions: ``long (n,)`` positions of ``[SEG]`` tokens in it.
        open_id, close_id: ids of ``<p>`` and ``</p>``.

    Returns:
        Per position, the range of the phrase's tokens (markers excluded), or ``None`` when no
        complete non-empty phrase closes before it.
    """
    ids = input_ids.tolist()
    opens = [i for i, t in enumerate(ids) if t == open_id]
    closes = [i for i, t in enumerate(ids) if t == close_id]
    out: list[tuple[int, int] | None] = []
    for pos in positions.tolist():
        close = max((c for c in closes if c < pos), default=None)
        start = None if close is None else max((o for o in opens if o < close), default=None)
        out.append(None if start is None or close - start < 2 else (start + 1, close))
    return out


def phrase_bounds(model: "SVAC", input_ids: torch.Tensor, positions: torch.Tensor) -> list[tuple[int, int] | None]:
    """:func:`span_bounds` with ``model``'s ``<p>`` and ``</p>`` ids: per position, the token range ``(start, stop)``
    of the last complete phrase before it (``stop`` is the ``</p>``'s position), or ``None``."""
    from svac.mllm.tokenizer import token_id

    return span_bounds(input_ids, positions, token_id(model.tokenizer, PHRASE_START),
                       token_id(model.tokenizer, PHRASE_END))


def span_states(model: "SVAC", input_ids: torch.Tensor, positions: torch.Tensor,
                last_hidden: torch.Tensor | None = None) -> SpanStates:
    """The span states of the ``[SEG]`` tokens at ``positions`` of one conversation.

    Args:
        model: the SVAC model (its input embedding table, tokenizer and ``config.seg_prompt.span_layer``).
        input_ids: ``long (L,)`` the conversation's ids (answers included).
        positions: ``long (n,)`` the ``[SEG]`` positions.
        last_hidden: ``(L, D)`` the LLM's last-layer hidden states of the conversation; required when
            ``span_layer`` is ``last``.

    Returns:
        :class:`SpanStates` with ``states`` ``(n, D)``.

    Raises:
        ValueError: when ``span_layer`` is ``last`` and ``last_hidden`` is missing or of another length.
    """
    bounds = phrase_bounds(model, input_ids, positions)
    if model.config.seg_prompt.span_layer == "last":
        if last_hidden is None or last_hidden.shape[0] != input_ids.shape[0]:
            raise ValueError("span_layer 'last' needs the conversation's last-layer hidden states (L, D)")

        def states_of(start: int, stop: int) -> torch.Tensor:
            return last_hidden[start:stop]
        reference = last_hidden
    else:
        table = model.mllm.get_input_embeddings()

        def states_of(start: int, stop: int) -> torch.Tensor:
            return table(input_ids[start:stop])
        reference = table.weight
    states = reference.new_zeros(len(bounds), reference.shape[-1])
    rows = [i for i, b in enumerate(bounds) if b is not None]
    if rows:
        pooled = torch.stack([states_of(*b).mean(0) for b in bounds if b is not None])
        states = states.index_put((torch.tensor(rows, device=states.device),), pooled.to(states.dtype))
    present = torch.tensor([b is not None for b in bounds], dtype=torch.bool, device=states.device)
    return SpanStates(states, present)
