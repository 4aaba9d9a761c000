"""Inference: from a video and one or several questions to text plus per-frame masks (SVAC §3).

The stages, each timed:

1. **video** -- open the video, sample T frames over its whole length, take them in one forward
   decoding pass (:meth:`~svac.video.reader.VideoSource.read_sorted`) and build the MLLM images
   with ASTC (:mod:`svac.astc`); done once, whatever the number of queries;
2. **MLLM** -- per query, read the question with the visual tokens and obtain the ``[SEG]``
   hidden states: from the CSA answer template in one forward pass, or by greedy generation;
3. **CSA** -- per query, project the states (``text_hidden_fcs``) and lay them out per clip and
   object, checking the ``[SEG]`` count (:mod:`svac.csa`); a query whose answer holds no
   ``[SEG]`` becomes an empty object flagged ``found=False``;
4. **SAM-2** -- stream every frame of the video once, in order, in chunks: SAM-2's image encoder
   runs once per frame and the objects of every query are tracked together in one SAM-2 batch,
   each frame prompted by its clip's ``[SEG]``; the masks of a chunk are upsampled to the frame
   size and handed out before the next chunk (:mod:`svac.grounding.engine`).

:func:`segment_stream` returns after stage 3 with a :class:`~svac.streaming.SegmentationStream`
that runs stage 4 as it is read (constant memory on long videos); :func:`segment` reads it whole
into a :class:`~svac.outputs.SegmentationResult` with ``masks (K, N, H, W)``.

With ``config.pipeline == "sa2va"`` the same stages reproduce Sa2VA's ``predict_forward``
instead (prompt text, preprocessing, which frames ``[SEG]`` prompts, upsampling; see
:mod:`svac.sa2va_pipeline`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from svac.astc import ClipPlan, build_mllm_images, plan_clips
from svac.csa import SegRunConstraint, allocate, seg_tokens
from svac.mllm.capture import LLMRecorder
from svac.mllm.chat_template import Turn
from svac.mllm.prompt_text import as_prompt, encode_prompt, prompt_from_ids
from svac.mllm.internvl import preprocess_images
from svac.grounding.engine import TrackingPrompts, stream_masks
from svac.outputs import SegmentationResult, SegmentedObject, Timings
from svac.progress import Progress
from svac.streaming import SegmentationStream
from svac.prompting import load_sa2va_prompts
from svac.video.reader import VideoSource, open_video

if TYPE_CHECKING:
    from svac.mllm.prompt_text import PromptText
    from svac.model import SVAC
    from svac.span_prompt import SpanStates


@dataclass
class PreparedVideo:
    """A video ready for the MLLM.

    Attributes:
        source: the opened video (frames are decoded on demand).
        plan: sampled frames, clips and MLLM images (ASTC).
        pixel_values: ``float (num_images, 3, S, S)`` MLLM images on the model's device.
        video_text: the ``{video}`` prompt text with the images' ``<IMG_CONTEXT>`` tokens.
        decode_seconds: time spent decoding frames and building composites (seconds).
    """

    source: VideoSource
    plan: ClipPlan
    pixel_values: torch.Tensor
    video_text: str
    decode_seconds: float

    @property
    def num_visual_tokens(self) -> int:
        """Visual tokens the LLM reads for this video."""
        return self.video_text.count("<IMG_CONTEXT>")


@dataclass
class MLLMAnswer:
    """The MLLM's answer and the last-layer hidden states of its ``[SEG]`` tokens.

    Attributes:
        text: the answer text (``[SEG]`` kept, chat-format tokens removed).
        seg_hidden: ``(n, D)`` hidden states of the answer's n ``[SEG]`` tokens, in order.
        seg_span: their ``<p>...</p>`` span states when the model has the span skip path
            (:mod:`svac.span_prompt`), else ``None``.
        vision_seconds, prefill_seconds, decode_seconds: stage timings (seconds).
        prompt: the answer as prompt text for a later turn (its control tokens as template
            text, text it only spelled out as user text); ``None`` for a given answer.
    """

    text: str
    seg_hidden: torch.Tensor
    vision_seconds: float
    prefill_seconds: float
    decode_seconds: float
    prompt: "PromptText | None" = None
    seg_span: "SpanStates | None" = None


def _span_of(model: "SVAC", ids: torch.Tensor, positions: torch.Tensor, *, hidden: torch.Tensor | None = None,
             pixel_values: torch.Tensor | None = None) -> "SpanStates | None":
    """The span states of the ``[SEG]`` tokens at ``positions`` of the conversation ``ids`` (``None`` without the
    span skip path). Its last-layer states are ``hidden`` when given, else one teacher-forced pass computes them."""
    if model.span_prompt is None:
        return None
    from svac.span_prompt import span_states

    if model.config.seg_prompt.span_layer == "last" and hidden is None:
        _, last = model.mllm_forward(ids[None], torch.ones_like(ids[None]), pixel_values)
        hidden = last[0]
    return span_states(model, ids, positions, hidden)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; any other name is passed to ``torch.device``.

    Raises:
        ValueError: when CUDA is asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def prepare_video(model: "SVAC", video, *, num_frames: int | None = None, clip_len: int | None = None) -> PreparedVideo:
    """Open ``video``, sample its MLLM frames, build the ASTC images and their pixel values.

    Args:
        model: the SVAC model (its ASTC config, image size and device are used).
        video: anything :func:`svac.video.reader.open_video` accepts.
        num_frames: T, overrides ``config.astc.num_frames``.
        clip_len: m, overrides ``config.astc.clip_len``.

    Raises:
        svac.errors.VideoReadError: when the video cannot be read.
    """
    t0 = time.perf_counter()
    source = open_video(video)
    plan = plan_clips(source.num_frames, model.config.astc, num_frames=num_frames, clip_len=clip_len)
    frames = source.read_sorted(plan.frame_indices)
    images = build_mllm_images(frames, plan)
    decode_seconds = time.perf_counter() - t0
    sa2va = model.config.pipeline == "sa2va"
    pixel_values = preprocess_images(images, model.config.mllm, device=model.device, dtype=model.dtype,
                                     resample="pil" if sa2va else "torch")
    if sa2va:
        video_text = load_sa2va_prompts().video_text(plan.num_images, model.tokens_per_image)
    else:
        video_text = model.prompts.video_text(plan, model.tokens_per_image)
    return PreparedVideo(source=source, plan=plan, pixel_values=pixel_values, video_text=video_text,
                         decode_seconds=decode_seconds)


def encode_turns(model: "SVAC", turns: Sequence[Turn], *, system: str | None = None) -> tuple[list[int], int]:
    """Token ids of a conversation whose last turn's answer, if given, is the part to read.

    The prompt (everything up to the last assistant prefix) and the last answer are
    tokenised separately and concatenated, as in training. User parts of the turns
    (:class:`~svac.mllm.prompt_text.PromptText`) are read as plain text: a ``[SEG]`` or
    ``<IMG_CONTEXT>`` typed in a query is never a control token.

    Returns:
        ``(ids, answer_start)``: all ids, and the index where the last answer starts.
    """
    *before, last = turns
    prompt = model.chat_template.render_prompt([*before, Turn(last.user)], system=system)
    ids = encode_prompt(model.tokenizer, prompt)
    start = len(ids)
    if last.assistant is not None:
        ids = ids + encode_prompt(model.tokenizer, as_prompt(last.assistant) + model.chat_template.assistant_suffix)
    return ids, start


def answer_with_template(model: "SVAC", prepared: PreparedVideo, turns: Sequence[Turn], *,
                         system: str | None = None) -> MLLMAnswer:
    """Read the given answer (the last turn's ``assistant`` text) in one forward pass; return its ``[SEG]`` states.

    Raises:
        ValueError: when the last turn has no answer, or image tokens and images disagree.
    """
    if turns[-1].assistant is None:
        raise ValueError("answer_with_template needs the answer text in the last turn")
    ids, start = encode_turns(model, turns, system=system)
    input_ids = torch.tensor([ids], device=model.device)
    with LLMRecorder(model.mllm, keep_prefill=True) as rec:
        model.mllm(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                   pixel_values=prepared.pixel_values, logits_to_keep=1)
    hidden = rec.record.prefill_hidden[0]
    positions = model.seg_positions(input_ids[0], start)
    return MLLMAnswer(text=str(turns[-1].assistant), seg_hidden=hidden[positions],
                      vision_seconds=rec.record.vision_seconds, prefill_seconds=rec.record.prefill_seconds,
                      decode_seconds=0.0, seg_span=_span_of(model, input_ids[0], positions, hidden=hidden))


def answer_by_generation(model: "SVAC", prepared: PreparedVideo, turns: Sequence[Turn], *,
                         system: str | None = None) -> MLLMAnswer:
    """Generate the answer to the last turn greedily and collect its ``[SEG]`` hidden states.

    The hidden state of a generated ``[SEG]`` is the last layer's state at the step where the
    token is the input, as in teacher-forced training. Should the answer end on ``[SEG]``
    (decoding budget exhausted), one teacher-forced pass over the whole sequence supplies it.

    Generation stops at the chat template's stop tokens, and at its stop strings that the
    tokenizer does not hold as one token (Sa2VA-4B: the ``phi3`` layout's ``<|end|>`` with a
    Qwen2.5 tokenizer), as Sa2VA's stop-word criterion does; in the ``sa2va`` pipeline also at
    the tokenizer's end-of-sequence token, which Sa2VA passes as ``eos_token_id``.

    Under CSA (``csa.mode: per_clip``) with ``csa.generation: runs`` every run of ``[SEG]`` the
    model writes holds one per clip of this video (:class:`svac.csa.SegRunConstraint`).
    """
    ids, _ = encode_turns(model, turns, system=system)
    input_ids = torch.tensor([ids], device=model.device)
    constraint = {}
    if model.config.csa.mode == "per_clip" and model.config.csa.generation == "runs":
        from transformers import LogitsProcessorList

        constraint["logits_processor"] = LogitsProcessorList(
            [SegRunConstraint(model.seg_token_id, prepared.plan.num_clips, input_ids.shape[1])])
    stops = list(model.chat_template.stop)
    stop_ids = [i for i in model.tokenizer.convert_tokens_to_ids(stops)
                if i is not None and i != model.tokenizer.unk_token_id]
    stop_strings = [s for s, i in zip(stops, model.tokenizer.convert_tokens_to_ids(stops))
                    if i is None or i == model.tokenizer.unk_token_id]
    eos = model.tokenizer.eos_token_id
    if model.config.pipeline == "sa2va" and eos is not None and eos not in stop_ids:
        stop_ids.append(eos)
    by_string = {"stop_strings": stop_strings, "tokenizer": model.tokenizer} if stop_strings else {}
    with LLMRecorder(model.mllm) as rec:
        sequences = model.mllm.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), pixel_values=prepared.pixel_values,
            max_new_tokens=model.config.inference.max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=stop_ids, pad_token_id=model.tokenizer.pad_token_id, **by_string, **constraint)
    generated = sequences[0, input_ids.shape[1]:]
    if generated.numel() and int(generated[-1]) in stop_ids:
        generated = generated[:-1]
    positions = (generated == model.seg_token_id).nonzero().flatten().tolist()
    steps = rec.record.step_hidden
    if positions and positions[-1] >= len(steps):
        full = torch.cat([input_ids[0], generated])[None]
        _, hidden = model.mllm_forward(full, torch.ones_like(full), prepared.pixel_values)
        seg_hidden = hidden[0, input_ids.shape[1] + torch.tensor(positions, device=full.device)]
    elif positions:
        seg_hidden = torch.stack([steps[p][0] for p in positions])
    else:
        seg_hidden = torch.zeros(0, model.mllm.config.text_config.hidden_size, device=model.device, dtype=model.dtype)
    text = model.tokenizer.decode(generated, skip_special_tokens=False)
    for stop in model.chat_template.stop:
        text = text.split(stop)[0]
    span = _span_of(model, torch.cat([input_ids[0], generated]),
                    input_ids.shape[1] + torch.tensor(positions, dtype=torch.long, device=generated.device),
                    pixel_values=prepared.pixel_values)
    answer_ids = generated.tolist()
    ends = [i for i, t in enumerate(answer_ids) if t in stop_ids]
    answer_ids = answer_ids[:ends[0]] if ends else answer_ids
    return MLLMAnswer(text=text.strip(), seg_hidden=seg_hidden, vision_seconds=rec.record.vision_seconds,
                      prefill_seconds=rec.record.prefill_seconds, decode_seconds=rec.record.decode_seconds,
                      prompt=prompt_from_ids(model.tokenizer, answer_ids).strip(), seg_span=span)


@dataclass
class GroundingOutput:
    """SAM-2's masks of K objects over every frame of a video, held whole (:func:`ground`).

    Attributes:
        masks: ``bool (K, N, H, W)`` at the original frame size (pixels).
        scores: ``float32 (K,)`` object-presence probability averaged over frames.
        encoder_seconds: time in SAM-2's image encoder (seconds).
        tracking_seconds: time in the rest of the grounding stage (decoding, preprocessing,
            tracking, upsampling; seconds).
    """

    masks: np.ndarray
    scores: np.ndarray
    encoder_seconds: float
    tracking_seconds: float


def tracking_prompts(model: "SVAC", plan: ClipPlan, prompts: torch.Tensor, *, num_objects: int | None = None,
                     tracked: Sequence[int] | None = None) -> TrackingPrompts:
    """The :class:`~svac.grounding.engine.TrackingPrompts` of ``prompts`` on a video planned as ``plan``.

    Args:
        model: the model (its pipeline decides the schedule).
        plan: the video's clip plan.
        prompts: ``float (num_clips, K_t, C)`` projected ``[SEG]`` prompts.
        num_objects: K of the result (default K_t); ``tracked``: the result rows of the K_t
            prompts (default ``0 .. K_t - 1``).
    """
    sa2va = model.config.pipeline == "sa2va"
    k = prompts.shape[1]
    return TrackingPrompts(
        prompts=prompts, clip_of_frame=np.asarray(plan.clip_of_frame(), dtype=np.int64),
        conditioning_frames=tuple(int(t) for t in (plan.frame_indices if sa2va else plan.anchor_frames())),
        pipeline="sa2va" if sa2va else "svac", num_objects=k if num_objects is None else num_objects,
        tracked=tuple(range(k)) if tracked is None else tuple(tracked))


def ground(model: "SVAC", source: VideoSource, plan: ClipPlan, prompts: torch.Tensor, *,
           progress: Progress = False) -> GroundingOutput:
    """Segment K objects in every frame of ``source``, clip c's frames prompted by ``prompts[c]``, masks held whole.

    Every frame goes through SAM-2's image encoder exactly once, whatever K is
    (:func:`svac.grounding.engine.stream_masks`, collected into one array).

    Args:
        model: the SVAC model.
        source: the video.
        plan: its clip plan (clip spans and anchor frames).
        prompts: ``float (num_clips, K, C)`` projected ``[SEG]`` prompts.
        progress: a progress bar over frames (stage ``SAM-2``): bool or callback (:mod:`svac.progress`).
    """
    t_start = time.perf_counter()
    num_obj = prompts.shape[1]
    n, h, w = source.num_frames, source.height, source.width
    masks = np.zeros((num_obj, n, h, w), dtype=bool)
    presence = np.zeros((num_obj, n), dtype=np.float32)
    if num_obj == 0:
        return GroundingOutput(masks, np.zeros(0, dtype=np.float32), 0.0, 0.0)
    timings = Timings()
    for chunk in stream_masks(model, source, tracking_prompts(model, plan, prompts), progress=progress,
                              timings=timings):
        masks[:, chunk.start:chunk.stop] = chunk.masks
        presence[:, chunk.start:chunk.stop] = chunk.presence
    total = time.perf_counter() - t_start
    return GroundingOutput(masks, presence.mean(axis=1), timings.sam2_encoder, total - timings.sam2_encoder)


def check_queries(queries: "str | Sequence[str]") -> list[str]:
    """The queries of a ``segment`` call, stripped: one string or a non-empty sequence of non-empty strings.

    Raises:
        ValueError: naming the empty query (or the empty list).
        TypeError: when ``queries`` is neither a string nor a sequence of strings.
    """
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, Sequence) or not all(isinstance(q, str) for q in queries):
        raise TypeError(f"queries must be a string or a list of strings, got {type(queries).__name__}")
    if not queries:
        raise ValueError("no query given: give at least one referring expression")
    for i, q in enumerate(queries):
        if not q.strip():
            which = "the query" if len(queries) == 1 else f"query {i + 1} of {len(queries)}"
            raise ValueError(f"{which} is empty: give a referring expression such as 'the dog jumping over the fence'")
    return [q.strip() for q in queries]


def referring_turn(model: "SVAC", prepared: PreparedVideo, expression: str) -> Turn:
    """The conversation turn that asks one referring expression on a prepared video, with its template answer
    (one ``[SEG]`` per clip under CSA): Sa2VA's prompts for the ``sa2va`` pipeline, ``prompts/segmentation.yaml``'s
    first question and answer otherwise. ``expression`` is user text."""
    seg = seg_tokens(prepared.plan.num_clips, model.config.csa)
    if model.config.pipeline == "sa2va":
        sa2va_prompts = load_sa2va_prompts()
        return Turn(sa2va_prompts.ask(prepared.video_text, expression), sa2va_prompts.reply(seg))
    return Turn(model.prompts.question(prepared.video_text, expression), model.prompts.answer(seg, expression))


def answer_query(model: "SVAC", prepared: PreparedVideo, expression: str) -> MLLMAnswer:
    """The MLLM's answer to one referring expression on a prepared video (template or generated)."""
    turn = referring_turn(model, prepared, expression)
    if model.config.inference.answer_mode == "template":
        return answer_with_template(model, prepared, [turn])
    return answer_by_generation(model, prepared, [Turn(turn.user)])


def segment_stream(model: "SVAC", video, queries: "str | Sequence[str]", *, num_frames: int | None = None,
                   clip_len: int | None = None, progress: Progress = False,
                   chunk_size: int | None = None) -> SegmentationStream:
    """Answer every query, then return a stream that segments the objects frame chunk by frame chunk (SVAC §3).

    The MLLM stages run now (the video's T frames are taken once for every query); SAM-2 runs as
    the returned :class:`~svac.streaming.SegmentationStream` is read: iterate it for
    :class:`~svac.outputs.MaskChunk` (``masks bool (K, n, H, W)`` of n consecutive frames),
    :meth:`~svac.streaming.SegmentationStream.save` it to a folder, or
    :meth:`~svac.streaming.SegmentationStream.collect` it into a result. Memory does not grow
    with the video's length.

    Args:
        model: the SVAC model.
        video: a video path, frame folder, frame list or array (see :func:`svac.video.reader.open_video`).
        queries: a referring expression, or a list of them: one object per query, numbered in
            query order (object ids 1..K; a query whose answer holds several objects' ``[SEG]``
            gives that many objects, one with none gives an empty object with ``found=False``).
        num_frames: T, overrides ``config.astc.num_frames``.
        clip_len: m, overrides ``config.astc.clip_len``.
        progress: ``True`` for progress bars, or a callback receiving :class:`svac.progress.ProgressEvent`.
        chunk_size: frames per chunk (default ``config.sam2.encoder_batch_size``).

    Raises:
        ValueError: when a query is empty (or none is given).
        svac.errors.VideoReadError: when the video cannot be read.
        svac.errors.SegCountError: in generate mode, on a ``[SEG]`` count mismatch with policy ``raise``.
    """
    queries = check_queries(queries)
    t0 = time.perf_counter()
    with torch.inference_mode():
        prepared = prepare_video(model, video, num_frames=num_frames, clip_len=clip_len)
        answers = [answer_query(model, prepared, q) for q in queries]
    return build_stream(model, prepared, answers, names=queries, started=t0, progress=progress,
                        chunk_size=chunk_size)


def build_stream(model: "SVAC", prepared: PreparedVideo, answers: Sequence[MLLMAnswer], *,
                 names: Sequence[str | None], started: float, progress: Progress = False,
                 chunk_size: int | None = None) -> SegmentationStream:
    """Lay the answers' ``[SEG]`` states out per clip and object (CSA) and make the stream of their masks.

    Query q's answer gives K_q objects named ``names[q]`` (one empty object flagged
    ``found=False`` when K_q = 0); the objects of all queries are tracked in one SAM-2 batch.
    """
    plan = prepared.plan
    objects, prompt_parts, tracked, policies = [], [], [], []
    timings = Timings(video_decode=prepared.decode_seconds)
    with torch.inference_mode():
        for q, (answer, name) in enumerate(zip(answers, names)):
            timings.mllm_vision += answer.vision_seconds
            timings.llm_prefill += answer.prefill_seconds
            timings.llm_decode += answer.decode_seconds
            allocation = allocate(model.seg_prompts(answer.seg_hidden, answer.seg_span), plan.num_clips,
                                  model.config.csa)
            if allocation.policy_applied is not None:
                policies.append(allocation.policy_applied)
            if allocation.num_objects == 0:
                objects.append(SegmentedObject(id=len(objects) + 1, name=name, query_index=q, found=False))
                continue
            for _ in range(allocation.num_objects):
                tracked.append(len(objects))
                objects.append(SegmentedObject(id=len(objects) + 1, name=name, query_index=q, found=True))
            prompt_parts.append(allocation.prompts)
        if prompt_parts:
            prompts = torch.cat(prompt_parts, dim=1)
        else:
            dim = model.grounding.hidden_dim
            prompts = torch.zeros(plan.num_clips, 0, dim, device=model.device)
    tracking = tracking_prompts(model, plan, prompts, num_objects=len(objects), tracked=tracked)
    source = prepared.source
    return SegmentationStream(
        model=model, source=source, tracking=tracking, objects=objects, answers=[a.text for a in answers],
        frame_indices=plan.frame_indices.copy(), clip_spans=[c.span for c in plan.clips], mode=plan.mode,
        csa_mode=model.config.csa.mode, num_visual_tokens=prepared.num_visual_tokens,
        seg_policy_applied=policies[0] if policies else None, model_name=model.config.name, timings=timings,
        query_timings=[Timings(mllm_vision=a.vision_seconds, llm_prefill=a.prefill_seconds, llm_decode=a.decode_seconds)
                       for a in answers],
        started=started, progress=progress, chunk_size=chunk_size)


def segment(model: "SVAC", video, queries: "str | Sequence[str]", *, num_frames: int | None = None,
            clip_len: int | None = None, progress: Progress = False) -> SegmentationResult:
    """Segment what each query refers to in every frame of ``video``, masks in memory (SVAC §3).

    With ``config.inference.answer_mode == "template"`` the answer is the first CSA answer of
    ``prompts/segmentation.yaml`` (one ``[SEG]`` per clip, or one in single mode) and is read
    in one forward pass; with ``"generate"`` it is generated and the ``[SEG]`` count policy applies.
    In the ``sa2va`` pipeline the question and template answer are Sa2VA's (``prompts/sa2va.yaml``).
    This is :func:`segment_stream` read whole: for long videos, stream instead (the masks of
    N frames take K x N x H x W bytes).

    Args:
        model: the SVAC model.
        video: a video path, frame folder, frame list or array (see :func:`svac.video.reader.open_video`).
        queries: a referring expression (non-empty) or a list of them (one object per query).
        num_frames: T, overrides ``config.astc.num_frames``.
        clip_len: m, overrides ``config.astc.clip_len``.
        progress: ``True`` for progress bars, or a callback receiving :class:`svac.progress.ProgressEvent`.

    Returns:
        A :class:`~svac.outputs.SegmentationResult` with ``masks bool (K, N, H, W)`` over every
        video frame and one :class:`~svac.outputs.SegmentedObject` per object.

    Raises:
        ValueError: when a query is empty.
        svac.errors.VideoReadError: when the video cannot be read.
        svac.errors.SegCountError: in generate mode, on a ``[SEG]`` count mismatch with policy ``raise``.
    """
    return segment_stream(model, video, queries, num_frames=num_frames, clip_len=clip_len,
                          progress=progress).collect()


def finish(model: "SVAC", prepared: PreparedVideo, answer: MLLMAnswer, *,
           progress: Progress = False) -> SegmentationResult:
    """Allocate one answer's ``[SEG]`` states to clips (CSA), run SAM-2, and assemble the result (chat turns).

    The objects are unnamed (a chat answer names them in its text); call it for answers holding
    ``[SEG]`` (a chat turn without one has no result).
    """
    return build_stream(model, prepared, [answer], names=[None], started=time.perf_counter(),
                        progress=progress).collect()
