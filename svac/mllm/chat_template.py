"""Chat templates of the Sa2VA family (Qwen, InternLM2 and Phi-3 layouts), read from ``prompts/``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import yaml

from svac.errors import ConfigError
from svac.mllm.prompt_text import PromptLike, PromptText, as_prompt, fill

TEMPLATES_FILE = "chat_templates.yaml"


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation: the user's text and the assistant's answer (``None`` if pending).

    Either may be a plain ``str`` (template text: its control tokens are read as such) or a
    :class:`~svac.mllm.prompt_text.PromptText` whose user parts are always plain text. svac's
    prompt builders (:meth:`svac.prompting.SegmentationPrompts.question` ...) mark what a person
    typed as user text.
    """

    user: PromptLike
    assistant: PromptLike | None = None


@dataclass(frozen=True)
class ChatTemplate:
    """How a conversation is laid out as text for one LLM family (see ``prompts/chat_templates.yaml``).

    Attributes:
        name: family name (``qwen``, ``internlm2``, ``phi3``).
        system, user: formats of a system turn (``{system}``) and a user turn (``{content}``).
        assistant_prefix: opens the assistant's turn (the generation prompt).
        assistant_suffix: closes an assistant turn; its first token ends an answer.
        bos: text before the whole conversation, or ``None``.
        stop: strings that end generation.
        special_tokens: tokens of the layout that a tokenizer must keep whole.
        default_system: system prompt used when none is given (``None``: no system turn).
    """

    name: str
    system: str
    user: str
    assistant_prefix: str
    assistant_suffix: str
    bos: str | None
    stop: tuple[str, ...]
    special_tokens: tuple[str, ...]
    default_system: str | None

    def render(self, turns: Sequence[Turn], *, system: str | None = None) -> str:
        """Lay out a conversation as plain text (see :meth:`render_prompt`)."""
        return str(self.render_prompt(turns, system=system))

    def render_prompt(self, turns: Sequence[Turn], *, system: str | None = None) -> PromptText:
        """Lay out a conversation as prompt text (user parts of the turns stay user parts).

        Completed turns end with ``assistant_suffix``; when the last turn has no answer
        the text ends with ``assistant_prefix`` (the prompt for generation).

        Args:
            turns: the conversation, oldest first; only the last may lack an answer.
            system: system prompt; ``None`` uses ``default_system``.

        Raises:
            ValueError: when ``turns`` is empty or an earlier turn lacks an answer.
        """
        if not turns:
            raise ValueError("a conversation needs at least one turn")
        if any(t.assistant is None for t in turns[:-1]):
            raise ValueError("only the last turn of a conversation may lack an answer")
        out = PromptText.template(self.bos or "")
        system = self.default_system if system is None else system
        if system:
            out = out + fill(self.system, system=system)
        for turn in turns:
            out = out + fill(self.user, content=turn.user) + self.assistant_prefix
            if turn.assistant is not None:
                out = out + as_prompt(turn.assistant) + self.assistant_suffix
        return out

    @property
    def end_of_answer(self) -> str:
        """The token that ends an assistant answer (first token of ``assistant_suffix``)."""
        return self.stop[0]


def load_chat_template(name: str) -> ChatTemplate:
    """Load chat template ``name`` from ``prompts/chat_templates.yaml``.

    Raises:
        ConfigError: when no template of that name exists.
    """
    data = yaml.safe_load(resources.files("svac.prompts").joinpath(TEMPLATES_FILE).read_text(encoding="utf-8"))
    if name not in data:
        raise ConfigError(f"unknown chat template {name!r}; known: {', '.join(sorted(data))}")
    entry = dict(data[name])
    entry["stop"] = tuple(entry["stop"])
    entry["special_tokens"] = tuple(entry["special_tokens"])
    return ChatTemplate(name=name, **entry)
