"""The SVAC model: InternVL-style MLLM + ``[SEG]`` projector + SAM-2, composed by injection (SVAC §3).

:class:`SVAC` receives its parts ready-made -- the transformers InternVL model,
its tokenizer, the SAM-2 grounding model and the ``text_hidden_fcs`` projector
-- and wires them together; :meth:`SVAC.from_config` builds them from an
:class:`~svac.config.SVACConfig` with random weights. The model is a model: loading and
saving live in the base class :class:`svac.checkpoints.pretrained.PretrainedMixin`
(:meth:`SVAC.from_pretrained`, :meth:`SVAC.save_pretrained`, run by :mod:`svac.checkpoints`);
inference (:meth:`SVAC.segment`, :meth:`SVAC.chat`) lives in :mod:`svac.inference` and
:mod:`svac.chat`; training lives in :mod:`svac.training` (its hooks for SVAC in
:data:`svac.training.hooks.TRAINING_HOOKS`), which uses :meth:`SVAC.mllm_forward`,
:meth:`SVAC.seg_prompts` and :mod:`svac.grounding.tracking`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from svac.checkpoints.pretrained import PretrainedMixin
from svac.config import SVACConfig
from svac.errors import ConfigError
from svac.mllm.chat_template import load_chat_template
from svac.mllm.internvl import build_internvl, eager_attention, tokens_per_image
from svac.mllm.tokenizer import add_svac_tokens, build_byte_tokenizer, seg_token_id, token_id
from svac.mllm.tokens import IMG_CONTEXT
from svac.prompting import load_segmentation_prompts
from svac.seg_projector import build_text_hidden_fcs  # noqa: F401  -- also importable from here

if TYPE_CHECKING:
    from transformers import InternVLForConditionalGeneration, PreTrainedTokenizerBase

    from svac.chat import ChatSession
    from svac.grounding.replay import AfterCorrection
    from svac.grounding.sam2_model import LanguagePromptedSAM2
    from svac.outputs import ChatResponse, SegmentationResult
    from svac.streaming import SegmentationStream
    from svac.progress import Progress
    from svac.span_prompt import SpanStates


class SVAC(PretrainedMixin, nn.Module):
    """An SVAC model: the MLLM reads the ASTC-compressed video, ``[SEG]`` states prompt SAM-2 (SVAC §3).

    Args:
        config: the model's configuration.
        mllm: transformers ``InternVLForConditionalGeneration`` (vision tower, projector, LLM).
        tokenizer: its tokenizer, holding ``[SEG]`` and the InternVL image tokens.
        grounding: the SAM-2 model prompted by ``[SEG]`` embeddings.
        text_hidden_fcs: projector from LLM hidden states ``(n, D)`` to SAM-2 prompts ``(n, C)``.
        span_prompt: the span skip path added to the projected ``[SEG]`` states
            (:class:`svac.span_prompt.SpanPrompt`, when ``config.seg_prompt.span_skip``), else ``None``.
        memory_tracker: the modules that decode frames tracked from memory alone
            (:class:`svac.grounding.memory_tracker.MemoryTracker`, when ``config.sam2.memory_tracker``),
            else ``None``.

    Raises:
        ConfigError: when the parts disagree (the embedding table is smaller than the
            tokenizer, the projector's sizes do not match the LLM and SAM-2, or the tokenizer
            lacks ``[SEG]``).
    """

    #: Parts whose weights stay float32 whatever the model's dtype: the ``sam2`` package's modules
    #: compute some tensors in float32 on purpose (point coordinates, positional encodings,
    #: layer norms) and take lower precision from autocast, as in its own video predictor, so
    #: SAM-2 runs under autocast at the model's dtype instead (:func:`svac.inference.ground`).
    float32_modules: tuple[str, ...] = ("grounding", "memory_tracker")

    def __init__(self, config: SVACConfig, *, mllm: "InternVLForConditionalGeneration",
                 tokenizer: "PreTrainedTokenizerBase", grounding: "LanguagePromptedSAM2",
                 text_hidden_fcs: nn.Module, span_prompt: nn.Module | None = None,
                 memory_tracker: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.mllm = mllm
        self.tokenizer = tokenizer
        self.grounding = grounding
        self.text_hidden_fcs = text_hidden_fcs
        self.span_prompt = span_prompt
        self.memory_tracker = memory_tracker
        if (memory_tracker is not None) != config.sam2.memory_tracker:
            raise ConfigError(f"config.sam2.memory_tracker is {config.sam2.memory_tracker} but the model was "
                              f"given {'a' if memory_tracker is not None else 'no'} memory_tracker module")
        if (span_prompt is not None) != config.seg_prompt.span_skip:
            raise ConfigError(f"config.seg_prompt.span_skip is {config.seg_prompt.span_skip} but the model was "
                              f"given {'a' if span_prompt is not None else 'no'} span_prompt module")
        self.chat_template = load_chat_template(config.mllm.chat_template)
        self.prompts = load_segmentation_prompts()
        try:
            self.seg_token_id = seg_token_id(tokenizer)
        except KeyError as exc:
            raise ConfigError("the tokenizer has no [SEG] token; call svac.mllm.tokenizer.add_svac_tokens") from exc
        rows = mllm.get_input_embeddings().weight.shape[0]
        if rows < len(tokenizer):
            raise ConfigError(f"the LLM embeds {rows} tokens but the tokenizer has {len(tokenizer)}; "
                              "resize the embeddings (mllm.resize_token_embeddings)")
        llm_dim = mllm.config.text_config.hidden_size
        first, last = text_hidden_fcs[0], text_hidden_fcs[2]
        if first.in_features != llm_dim or last.out_features != grounding.hidden_dim:
            raise ConfigError(f"text_hidden_fcs maps {first.in_features} -> {last.out_features} but the LLM width is "
                              f"{llm_dim} and SAM-2 prompts have {grounding.hidden_dim} channels")
        if mllm.config.image_token_id != token_id(tokenizer, IMG_CONTEXT):
            raise ConfigError("the MLLM's image_token_id is not the tokenizer's <IMG_CONTEXT> id")

    @classmethod
    def from_config(cls, config: SVACConfig, *, tokenizer: "PreTrainedTokenizerBase | None" = None) -> "SVAC":
        """Build every part from ``config`` with random weights.

        The tokenizer is ``tokenizer`` when given, else loaded from ``config.mllm.tokenizer``, else
        svac's byte-level tokenizer; svac's special tokens are added to it.
        """
        from svac.grounding.sam2_model import build_sam2_model
        from svac.span_prompt import build_span_prompt, zero_last_layer

        template = load_chat_template(config.mllm.chat_template)
        if tokenizer is not None:
            pass
        elif config.mllm.tokenizer is None:
            tokenizer = build_byte_tokenizer(template)
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(config.mllm.tokenizer, trust_remote_code=False)
        add_svac_tokens(tokenizer)
        mllm = build_internvl(config.mllm, vocab_size=len(tokenizer), image_token_id=token_id(tokenizer, IMG_CONTEXT),
                              pad_token_id=tokenizer.pad_token_id)
        grounding = build_sam2_model(config.sam2)
        fcs = build_text_hidden_fcs(mllm.config.text_config.hidden_size, grounding.hidden_dim)
        if config.seg_prompt.zero_init_llm_branch:
            zero_last_layer(fcs)
        span = build_span_prompt(config.seg_prompt, mllm.config.text_config.hidden_size, grounding.hidden_dim)
        tracker = None
        if config.sam2.memory_tracker:
            from svac.grounding.memory_tracker import build_memory_tracker

            tracker = build_memory_tracker(config.sam2, copy_of=grounding)
        return cls(config, mllm=mllm, tokenizer=tokenizer, grounding=grounding, text_hidden_fcs=fcs, span_prompt=span,
                   memory_tracker=tracker)

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the MLLM's parameters."""
        return self.mllm.dtype

    @property
    def tokens_per_image(self) -> int:
        """Visual tokens per MLLM image (InternVL at 448 px: 256)."""
        return tokens_per_image(self.config.mllm)

    @property
    def sam2_image_size(self) -> int:
        """Side of SAM-2's square input (pixels)."""
        return int(self.grounding.image_size)

    # ------------------------------------------------------------------ building blocks

    def mllm_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None,
                     labels: torch.Tensor | None = None, image_index: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Teacher-forced MLLM pass (training and template answers).

        Args:
            input_ids: ``long (B, L)`` with ``num_images * tokens_per_image`` ``<IMG_CONTEXT>`` ids in total.
            attention_mask: ``long (B, L)``.
            pixel_values: ``float (num_images, 3, S, S)`` in prompt order (:func:`svac.mllm.internvl.preprocess_images`),
                or, with ``image_index``, each distinct image once; ``None`` or no rows for a conversation without
                images (training's ``data.frames: none``).
            labels: optional ``long (B, L)`` next-token targets (-100 = ignored).
            image_index: optional ``long (num_images,)``: the row of ``pixel_values`` each image of the prompt
                order is (an image shared by several conversations is encoded once).

        Returns:
            ``(lm_loss or None, last_hidden)`` with ``last_hidden`` the last layer's hidden states
            ``(B, L, D)`` after the final norm.

        Raises:
            ValueError: (from transformers) when image tokens and image features disagree in number.
        """
        out = self._mllm_pass(input_ids, attention_mask, pixel_values, labels, image_index, output_attentions=False)
        return out.loss, out.hidden_states[-1]

    def mllm_attention_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                               pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                               image_index: torch.Tensor | None = None
                               ) -> tuple[torch.Tensor | None, torch.Tensor, tuple[torch.Tensor, ...]]:
        """:meth:`mllm_forward` that also returns the LLM's attention weights (eager attention for this call).

        Returns:
            ``(lm_loss or None, last_hidden, attentions)``: ``attentions[l]`` is layer ``l``'s ``float (B, heads,
            L, L)`` softmax weights (query, key), differentiable.

        Raises:
            ValueError: as :meth:`mllm_forward`.
        """
        with eager_attention(self.mllm):
            out = self._mllm_pass(input_ids, attention_mask, pixel_values, labels, image_index, output_attentions=True)
        return out.loss, out.hidden_states[-1], tuple(out.attentions)

    def _mllm_pass(self, input_ids, attention_mask, pixel_values, labels, image_index, *, output_attentions: bool):
        """The transformers call behind :meth:`mllm_forward` and :meth:`mllm_attention_forward`."""
        if pixel_values is None or pixel_values.shape[0] == 0:  # conversations without images (frames: none)
            return self.mllm(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                             output_hidden_states=True, output_attentions=output_attentions, return_dict=True)
        if image_index is None:
            return self.mllm(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                             labels=labels, output_hidden_states=True, output_attentions=output_attentions,
                             return_dict=True)
        features = self.mllm.get_image_features(pixel_values=pixel_values, return_dict=True)
        features.pooler_output = features.pooler_output[image_index]
        return self.mllm(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                         mm_encoder_outputs={"image": features}, output_hidden_states=True,
                         output_attentions=output_attentions, return_dict=True)

    def seg_prompts(self, hidden: torch.Tensor, span: "SpanStates | None" = None) -> torch.Tensor:
        """Project ``[SEG]`` hidden states ``(n, D)`` to SAM-2 prompt tokens ``(n, C)`` (``text_hidden_fcs``).

        With the span skip path (``config.seg_prompt.span_skip``) the projection of each ``[SEG]``'s
        ``<p>...</p>`` span states (``span``, from :func:`svac.span_prompt.span_states`) is added;
        ``config.seg_prompt.ablate`` drops one of the two terms (an ablation, off by default).

        Raises:
            ValueError: when the model has the span skip path and ``span`` is missing or of another length.
        """
        prompts = self.text_hidden_fcs(hidden.to(self.text_hidden_fcs[0].weight.dtype))
        if self.span_prompt is None:
            return prompts
        if span is None or span.states.shape[0] != hidden.shape[0]:
            raise ValueError(f"this model adds the <p>...</p> span to its {hidden.shape[0]} [SEG] prompt(s): pass "
                             "their span states (svac.span_prompt.span_states)")
        ablate = self.config.seg_prompt.ablate
        if ablate == "llm_branch":
            return self.span_prompt(span)
        if ablate == "span_skip":
            return prompts
        return prompts + self.span_prompt(span)

    def seg_positions(self, input_ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Positions of ``[SEG]`` in a 1-D id sequence at or after ``start``, ``long (n,)``."""
        return (input_ids[start:] == self.seg_token_id).nonzero().flatten() + start

    # ------------------------------------------------------------------ inference

    def segment(self, video, queries: "str | Sequence[str]", *, num_frames: int | None = None,
                clip_len: int | None = None, progress: "Progress" = False) -> "SegmentationResult":
        """Segment the object each query refers to in every frame of ``video``; masks held in memory.

        ``queries`` is one referring expression or a list of them: the result holds one object per
        query (``masks (K, N, H, W)``, objects numbered 1..K in query order), every frame encoded
        once by SAM-2 and the K objects tracked in one batch. For long videos use
        :meth:`segment_stream`. See :func:`svac.inference.segment` for the arguments, result and errors.
        """
        from svac.inference import segment

        return segment(self, video, queries, num_frames=num_frames, clip_len=clip_len, progress=progress)

    def segment_stream(self, video, queries: "str | Sequence[str]", *, num_frames: int | None = None,
                       clip_len: int | None = None, progress: "Progress" = False,
                       chunk_size: int | None = None) -> "SegmentationStream":
        """Answer the queries, then stream the masks chunk by chunk (constant memory on long videos).

        Returns a :class:`svac.streaming.SegmentationStream`: iterate it for
        :class:`svac.outputs.MaskChunk` (``masks bool (K, n, H, W)``), ``.save(dir, format=...)``
        it, or ``.collect()`` it. See :func:`svac.inference.segment_stream`.
        """
        from svac.inference import segment_stream

        return segment_stream(self, video, queries, num_frames=num_frames, clip_len=clip_len, progress=progress,
                              chunk_size=chunk_size)

    def refine(self, result: "SegmentationResult", *, frame: int, points=None, labels=None, box=None,
               object: int | None = None, progress: "Progress" = False,
               after_correction: "AfterCorrection | None" = None) -> "SegmentationResult":
        """Correct ``result`` (made by this model) with clicks and/or a box on one frame; a new result.

        A SAM-2 correction prompt on ``frame`` (coordinates in original video pixels; labels 1 =
        the object is here, 0 = it is not) and the object tracked again forwards and backwards
        from it through SAM-2's memory, the ``[SEG]`` prompts staying as conditioning frames.
        ``result.refine(...)`` is this call. See :func:`svac.refinement.refine` for the
        arguments and errors.
        """
        from svac.refinement import refine

        return refine(self, result, frame=frame, points=points, labels=labels, box=box, object=object,
                      progress=progress, after_correction=after_correction)

    def start_chat(self, video, *, num_frames: int | None = None, clip_len: int | None = None,
                   system: str | None = None) -> "ChatSession":
        """Open a multi-turn chat about ``video`` (see :class:`svac.chat.ChatSession`)."""
        from svac.chat import ChatSession

        return ChatSession(self, video, num_frames=num_frames, clip_len=clip_len, system=system)

    def chat(self, video, message: str, *, history: Sequence[tuple[str, str]] = (), num_frames: int | None = None,
             clip_len: int | None = None, progress: "Progress" = False) -> "ChatResponse":
        """Answer ``message`` about ``video`` after the earlier ``(user, assistant)`` exchanges ``history``.

        The answer is generated; when it holds ``[SEG]`` tokens the masks of the objects they
        name are returned with it (see :class:`svac.chat.ChatSession`).
        """
        session = self.start_chat(video, num_frames=num_frames, clip_len=clip_len)
        for user, assistant in history:
            session.add_turn(user, assistant)
        return session.ask(message, progress=progress)
