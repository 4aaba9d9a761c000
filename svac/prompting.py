"""Referring-segmentation prompts (``prompts/segmentation.yaml``) and the video's visual-token text."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from svac.astc import ClipPlan
from svac.mllm.prompt_text import PromptLike, PromptText, fill
from svac.mllm.tokens import IMG_CONTEXT

SEGMENTATION_FILE = "segmentation.yaml"
SA2VA_FILE = "sa2va.yaml"


@dataclass(frozen=True)
class SegmentationPrompts:
    """The templates of ``prompts/segmentation.yaml`` (see that file for the placeholders).

    Attributes:
        image: text of one MLLM image, ``{tokens}`` standing for its ``<IMG_CONTEXT>`` tokens.
        clip_separator: text after each clip's images.
        questions: referring-segmentation questions (``{video}``, ``{expression}``).
        answers: answers restating the expression (``{expression}``) and carrying the ``[SEG]`` tokens (``{seg}``).
        chat_first_turn: the first user turn of a free chat (``{video}``, ``{content}``).
    """

    image: str
    clip_separator: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    chat_first_turn: str

    def video_text(self, plan: ClipPlan, tokens_per_image: int) -> str:
        """The ``{video}`` text of a plan: each MLLM image's tokens, clip by clip.

        Holds exactly ``plan.num_images * tokens_per_image`` ``<IMG_CONTEXT>`` tokens
        (2 per clip times tokens per image under ASTC).
        """
        image = self.image.format(tokens=IMG_CONTEXT * tokens_per_image)
        parts = []
        for clip in plan.clips:
            count = sum(1 for c in plan.image_clips if c == clip.index)
            parts.append(image * count + self.clip_separator)
        return "".join(parts)

    def question(self, video: PromptLike, expression: str, index: int = 0) -> PromptText:
        """Referring question ``index`` for ``expression`` about the video text ``video``.

        ``expression`` is user text: tokenized as plain text even when it holds ``[SEG]``,
        ``<IMG_CONTEXT>`` or any other special token (:mod:`svac.mllm.prompt_text`).
        """
        return fill(self.questions[index], video=video, expression=PromptText.user(expression))

    def answer(self, seg: str, expression: str, index: int = 0) -> PromptText:
        """Answer template ``index`` restating ``expression`` (user text) and holding the ``[SEG]`` tokens ``seg``."""
        return fill(self.answers[index], seg=seg, expression=PromptText.user(expression))

    def chat_turn(self, video: PromptLike, message: str) -> PromptText:
        """The first user turn of a free chat: the video, then ``message`` (user text)."""
        return fill(self.chat_first_turn, video=video, content=PromptText.user(message))


def load_segmentation_prompts() -> SegmentationPrompts:
    """Read ``prompts/segmentation.yaml``."""
    data = yaml.safe_load(resources.files("svac.prompts").joinpath(SEGMENTATION_FILE).read_text(encoding="utf-8"))
    return SegmentationPrompts(image=data["image"], clip_separator=data["clip_separator"],
                               questions=tuple(data["questions"]), answers=tuple(data["answers"]),
                               chat_first_turn=data["chat_first_turn"])


@dataclass(frozen=True)
class Sa2VAPrompts:
    """Sa2VA's own prompt text (``prompts/sa2va.yaml``), read by the ``sa2va`` pipeline.

    Attributes:
        image: text of one MLLM frame, ``{tokens}`` standing for its ``<IMG_CONTEXT>`` tokens.
        image_separator: text between two frames (Sa2VA: a newline; none after the last frame).
        question: the referring question (``{video}``, ``{expression}``).
        question_for_question: the question used when the expression contains ``?``.
        answer: the template answer (``{seg}``).
    """

    image: str
    image_separator: str
    question: str
    question_for_question: str
    answer: str

    def video_text(self, num_images: int, tokens_per_image: int) -> str:
        """The frames' text: ``num_images`` image blocks of ``tokens_per_image`` tokens joined by the separator."""
        return self.image_separator.join([self.image.format(tokens=IMG_CONTEXT * tokens_per_image)] * num_images)

    def ask(self, video: PromptLike, expression: str) -> PromptText:
        """Sa2VA's referring question for ``expression`` (user text) about the frames' text ``video``."""
        template = self.question_for_question if "?" in expression else self.question
        return fill(template, video=video, expression=PromptText.user(expression))

    def reply(self, seg: str) -> PromptText:
        """Sa2VA's template answer holding the ``[SEG]`` tokens ``seg``."""
        return fill(self.answer, seg=seg)


def load_sa2va_prompts() -> Sa2VAPrompts:
    """Read ``prompts/sa2va.yaml``."""
    data = yaml.safe_load(resources.files("svac.prompts").joinpath(SA2VA_FILE).read_text(encoding="utf-8"))
    return Sa2VAPrompts(image=data["image"], image_separator=data["image_separator"], question=data["question"],
                        question_for_question=data["question_for_question"], answer=data["answer"])
