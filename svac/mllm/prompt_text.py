"""Prompt text that knows which parts a person typed: user text is always text, never a control token.

A prompt is assembled from svac's own templates (chat layout, ``<img><IMG_CONTEXT>...</img>``,
the CSA answer ``<p>{expression}</p>[SEG]``) and from text that comes from outside: a query,
a chat message, a dataset's referring expression. A :class:`PromptText` keeps the two apart, so
:func:`encode_prompt` can read the template's ``[SEG]``, ``<p>``, ``<|im_end|>`` ... as control
tokens while the same strings typed by a user are tokenized as the characters they are (the
ids the tokenizer gives that text when no added token is matched). ``"[SEG] the red square"``
asks for one object, and ``"<IMG_CONTEXT>"`` in a query adds no image placeholder.

Why the encoding is exact: a fast tokenizer splits its input at added tokens and tokenizes the
pieces between them independently. :func:`encode_prompt` tokenizes the whole prompt once; if no
added token starts inside user text (every ordinary query), those ids are returned unchanged,
so ordinary prompts get exactly the ids they always had (training and inference agree). Only
when user text holds an added token are the pieces between the template's own control tokens
re-tokenized as plain text, and the template's control tokens put back by id.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class PromptPart:
    """A piece of prompt text.

    Attributes:
        text: the characters.
        user: ``True`` when the text came from outside svac (a query, a chat message, a dataset
            expression): it is tokenized as plain text, never as control tokens.
    """

    text: str
    user: bool


@dataclass(frozen=True)
class PromptText:
    """Prompt text as a sequence of template parts and user parts (see the module docstring).

    ``str(prompt)`` is the plain text. ``+`` concatenates; a ``str`` operand counts as template
    text (text svac itself wrote), so wrap anything a person typed with :meth:`user`.
    """

    parts: tuple[PromptPart, ...] = ()

    @classmethod
    def template(cls, text: str) -> "PromptText":
        """Text written by svac (templates, image tokens, ``[SEG]``): its control tokens are read as such."""
        return cls((PromptPart(text, False),) if text else ())

    @classmethod
    def user(cls, text: str) -> "PromptText":
        """Text from outside svac: always tokenized as plain text."""
        return cls((PromptPart(text, True),) if text else ())

    def __str__(self) -> str:
        return "".join(p.text for p in self.parts)

    def __len__(self) -> int:
        return sum(len(p.text) for p in self.parts)

    def __add__(self, other: "PromptText | str") -> "PromptText":
        return PromptText(self.parts + as_prompt(other).parts)

    def __radd__(self, other: "PromptText | str") -> "PromptText":
        return PromptText(as_prompt(other).parts + self.parts)

    def __contains__(self, sub: str) -> bool:
        return sub in str(self)

    def count(self, sub: str) -> int:
        """Occurrences of ``sub`` in the plain text."""
        return str(self).count(sub)

    def strip(self) -> "PromptText":
        """The prompt without leading and trailing whitespace (part kinds kept)."""
        parts = list(self.parts)
        while parts and not parts[0].text.lstrip():
            parts.pop(0)
        while parts and not parts[-1].text.rstrip():
            parts.pop()
        if parts:
            parts[0] = PromptPart(parts[0].text.lstrip(), parts[0].user)
            parts[-1] = PromptPart(parts[-1].text.rstrip(), parts[-1].user)
        return PromptText(tuple(parts))

    def user_spans(self) -> list[tuple[int, int]]:
        """Character ranges ``[start, stop)`` of the user parts in ``str(self)``."""
        spans, pos = [], 0
        for part in self.parts:
            if part.user:
                spans.append((pos, pos + len(part.text)))
            pos += len(part.text)
        return spans


PromptLike = Union[PromptText, str]


def as_prompt(value: PromptLike) -> PromptText:
    """``value`` as a :class:`PromptText`; a plain ``str`` is template text (written by svac)."""
    if isinstance(value, PromptText):
        return value
    if isinstance(value, str):
        return PromptText.template(value)
    raise TypeError(f"prompt text must be a str or PromptText, got {type(value).__name__}")


def fill(template: str, **fields: PromptLike) -> PromptText:
    """``template.format(**fields)`` keeping each field's part kinds; the template's own text is template text.

    Args:
        template: a ``str.format`` template with named fields only (``"{video}Please segment {expression}."``).
        fields: the values; a ``str`` is template text, a :class:`PromptText` keeps its parts
            (pass ``PromptText.user(text)`` for text a person typed).

    Raises:
        KeyError: when the template names a field that is not given.
        ValueError: when the template uses positional fields, conversions or format specs.
    """
    out = PromptText()
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out = out + PromptText.template(literal)
        if name is None:
            continue
        if not name or spec or conversion:
            raise ValueError(f"prompt template fields must be plain names, got {{{name}}} in {template!r}")
        out = out + as_prompt(fields[name])
    return out


def control_token_ids(tokenizer: "PreTrainedTokenizerBase") -> set[int]:
    """Ids of every token the tokenizer matches as a whole: added tokens (special or not) and special tokens."""
    return set(tokenizer.added_tokens_decoder) | set(tokenizer.all_special_ids)


def encode_prompt(tokenizer: "PreTrainedTokenizerBase", prompt: PromptLike) -> list[int]:
    """Token ids of ``prompt`` (no BOS/EOS added): template control tokens as ids, user text as plain text.

    Args:
        tokenizer: the model's tokenizer (a fast tokenizer gives offsets; a slow one is handled
            part by part).
        prompt: the prompt; a plain ``str`` is template text and is tokenized as before.

    Returns:
        The ids. Without added tokens inside user parts they equal
        ``tokenizer(str(prompt), add_special_tokens=False).input_ids`` exactly.
    """
    prompt = as_prompt(prompt)
    text = str(prompt)
    spans = prompt.user_spans()
    if not spans:
        return list(tokenizer(text, add_special_tokens=False).input_ids)
    if not tokenizer.is_fast:  # no offsets: template parts as usual, user parts with special tokens split
        ids: list[int] = []
        for part in prompt.parts:
            ids += plain_text_ids(tokenizer, part.text) if part.user else list(
                tokenizer(part.text, add_special_tokens=False).input_ids)
        return ids
    control = control_token_ids(tokenizer)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    kept: list[int] = []  # indices of the template's own control tokens
    in_user = False
    for i, (tid, (start, stop)) in enumerate(zip(ids, offsets)):
        if tid not in control:
            continue
        piece = text[start:stop]
        core = start + len(piece) - len(piece.lstrip())  # an lstrip token's span holds the spaces before it
        if any(a <= core < b for a, b in spans):
            in_user = True
        else:
            kept.append(i)
    if not in_user:
        return ids
    out: list[int] = []
    pos = 0
    for i in kept:
        start, stop = offsets[i]
        out += plain_text_ids(tokenizer, text[pos:start])
        out.append(ids[i])
        pos = stop
    return out + plain_text_ids(tokenizer, text[pos:])


def plain_text_ids(tokenizer: "PreTrainedTokenizerBase", text: str) -> list[int]:
    """Ids of ``text`` read as plain text: no added or special token is matched (no BOS/EOS added).

    Special tokens are split with the tokenizer's ``split_special_tokens``. Added tokens that
    are not special are still matched that way by fast tokenizers, so when one shows up the
    text is re-read by a copy of the tokenizer in which every added token is special and split.
    """
    if not text:
        return []
    ids = list(tokenizer(text, add_special_tokens=False, split_special_tokens=True).input_ids)
    if not tokenizer.is_fast or not control_token_ids(tokenizer) & set(ids):
        return ids
    return _splitting_backend(tokenizer).encode(text, add_special_tokens=False).ids


def _splitting_backend(tokenizer: "PreTrainedTokenizerBase"):
    """A copy of a fast tokenizer's backend that matches no added token (every one special, split)."""
    from tokenizers import AddedToken, Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()
    added = backend.get_added_tokens_decoder().values()
    backend.add_special_tokens([AddedToken(t.content, single_word=t.single_word, lstrip=t.lstrip, rstrip=t.rstrip,
                                           normalized=t.normalized, special=True) for t in added])
    backend.encode_special_tokens = True
    return backend



def prompt_from_ids(tokenizer: "PreTrainedTokenizerBase", ids: Sequence[int]) -> PromptText:
    """Generated ids as prompt text for the next turn: its control tokens as template, the rest as plain text.

    The model's own ``[SEG]`` / ``<p>`` stay control tokens when the answer is read again; text it
    merely spelled out (e.g. a user's literal ``[SEG]`` echoed byte by byte) stays text.
    """
    control = control_token_ids(tokenizer)
    out, run = PromptText(), []
    for tid in list(ids) + [None]:
        if tid is not None and int(tid) not in control:
            run.append(int(tid))
            continue
        if run:
            out = out + PromptText.user(tokenizer.decode(run, skip_special_tokens=False))
            run = []
        if tid is not None:
            out = out + PromptText.template(tokenizer.convert_ids_to_tokens(int(tid)))
    return out
