"""Multi-turn chat about a video (SVAC §3; Sa2VA-style conversation).

A :class:`ChatSession` reads the video once (frame sampling, ASTC images, MLLM
pixel values) and keeps the conversation. Each question is answered by greedy
generation over the whole conversation; an answer holding ``[SEG]`` tokens
also returns the masks of the objects they name (CSA count policy applies), so
"What is the man holding? Segment it." gets text and masks in one call, and a
question that needs no mask gets text only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from svac.inference import answer_by_generation, finish, prepare_video
from svac.mllm.chat_template import Turn
from svac.mllm.prompt_text import PromptText
from svac.outputs import ChatResponse
from svac.progress import Progress

if TYPE_CHECKING:
    from svac.model import SVAC


class ChatSession:
    """A conversation about one video.

    Args:
        model: the SVAC model.
        video: anything :func:`svac.video.reader.open_video` accepts.
        num_frames: T, overrides ``config.astc.num_frames``.
        clip_len: m, overrides ``config.astc.clip_len``.
        system: system prompt (``None``: the chat template's default).

    Raises:
        svac.errors.VideoReadError: when the video cannot be read.
    """

    def __init__(self, model: "SVAC", video, *, num_frames: int | None = None, clip_len: int | None = None,
                 system: str | None = None) -> None:
        self.model = model
        self.system = system
        with torch.inference_mode():
            self.prepared = prepare_video(model, video, num_frames=num_frames, clip_len=clip_len)
        self.turns: list[Turn] = []

    @property
    def source(self):
        """The video (:class:`svac.video.reader.VideoSource`)."""
        return self.prepared.source

    def _user_text(self, message: str) -> PromptText:
        if self.turns:
            return PromptText.user(message)
        return self.model.prompts.chat_turn(self.prepared.video_text, message)

    def add_turn(self, user: str, assistant: str) -> None:
        """Append an earlier exchange to the history without running the model.

        ``user`` is read as plain text (a ``[SEG]`` in it is text); ``assistant`` is taken as the
        model's own earlier answer, so its ``[SEG]`` / ``<p>`` tokens are read as control tokens.
        """
        self.turns.append(Turn(self._user_text(user), assistant))

    def ask(self, message: str, *, progress: Progress = False) -> ChatResponse:
        """Answer ``message``; return the text, plus masks when the answer holds ``[SEG]`` tokens.

        Raises:
            ValueError: when ``message`` is empty.
            svac.errors.SegCountError: when the ``[SEG]`` count does not fit the clips and the
                count policy is ``raise``.
        """
        if not message or not message.strip():
            raise ValueError("the message is empty")
        t0 = time.perf_counter()
        user = self._user_text(message.strip())
        with torch.inference_mode():
            answer = answer_by_generation(self.model, self.prepared, [*self.turns, Turn(user)], system=self.system)
            result = None
            if answer.seg_hidden.shape[0] > 0:
                result = finish(self.model, self.prepared, answer, progress=progress)
                result.timings.total = time.perf_counter() - t0
        self.turns.append(Turn(user, answer.prompt if answer.prompt is not None else answer.text))
        return ChatResponse(text=answer.text, result=result)
