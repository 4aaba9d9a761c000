"""Inference: from a video and a question to text plus per-frame masks (SVAC §3).

The stages, each timed:

1. **video** -- open the video, sample T frames over its whole length, decode them as one
   batch and build the MLLM images with ASTC (:mod:`svac.astc`);
2. **MLLM** -- read the question with the visual tokens and obtain the ``[SEG]`` hidden
   states: from the CSA answer template in one forward pass, or by greedy generation;
3. **CSA** -- project the states (``text_hidden_fcs``) and lay them out per clip and object,
   checking the ``[SEG]`` count (:mod:`svac.csa`);
4. **SAM-2** -- stream every frame of the video through the image encoder once (in chunks),
   track the K objects with SAM-2's memory, each frame prompted by its clip's ``[SEG]``, and
   upsample the masks to the original frame size (:mod:`svac.grounding.tracking`).

With ``config.pipeline == "sa2va"`` the same stages reproduce Sa2VA's ``predict_forward``
instead (prompt text, preprocessing, which frames ``[SEG]`` prompts, upsampling; see
:mod:`svac.sa2va_pipeline`).
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from svac.astc import ClipPlan, build_mllm_images, plan_clips
from svac.csa import allocate, seg_tokens
from svac.mllm.capture import LLMRecorder
from svac.mllm.chat_template import Turn
from svac.mllm.prompt_text import as_prompt, encode_prompt, prompt_from_ids
from svac.mllm.internvl import preprocess_images
from svac.outputs import SegmentationResult, Timings
from svac.progress import Progress, progress_iter
from svac.prompting import load_sa2va_prompts
from svac.video.reader import VideoSource, open_video

if TYPE_CHECKING:
    from svac.mllm.prompt_text import PromptText
    from svac.model import SVAC


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
    frames = source.read(plan.frame_indices)
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
                      decode_seconds=0.0)


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
    """
    ids, _ = encode_turns(model, turns, system=system)
    input_ids = torch.tensor([ids], device=model.device)
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
            eos_token_id=stop_ids, pad_token_id=model.tokenizer.pad_token_id, **by_string)
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
    answer_ids = generated.tolist()
    ends = [i for i, t in enumerate(answer_ids) if t in stop_ids]
    answer_ids = answer_ids[:ends[0]] if ends else answer_ids
    return MLLMAnswer(text=text.strip(), seg_hidden=seg_hidden, vision_seconds=rec.record.vision_seconds,
                      prefill_seconds=rec.record.prefill_seconds, decode_seconds=rec.record.decode_seconds,
                      prompt=prompt_from_ids(model.tokenizer, answer_ids).strip())


@dataclass
class GroundingOutput:
    """SAM-2's masks of K objects over every frame of a video.

    Attributes:
        masks: ``bool (K, N, H, W)`` at the original frame size (pixels).
        scores: ``float32 (K,)`` object-presence probability averaged over frames.
        encoder_seconds: time in SAM-2's image encoder (seconds).
        tracking_seconds: time in the rest of the grounding stage (seconds).
    """

    masks: np.ndarray
    scores: np.ndarray
    encoder_seconds: float
    tracking_seconds: float


def ground(model: "SVAC", source: VideoSource, plan: ClipPlan, prompts: torch.Tensor, *,
           progress: Progress = False) -> GroundingOutput:
    """Segment K objects in every frame of ``source``, clip k's frames prompted by ``prompts[k]``.

    Every frame goes through SAM-2's image encoder exactly once (in chunks of
    ``config.sam2.encoder_batch_size`` frames, decoded as they are needed), whatever K is.

    Args:
        model: the SVAC model.
        source: the video.
        plan: its clip plan (clip spans and anchor frames).
        prompts: ``float (num_clips, K, C)`` projected ``[SEG]`` prompts.
        progress: a progress bar over frames (stage ``SAM-2``): bool or callback (:mod:`svac.progress`).
    """
    from svac.grounding.sam2_model import preprocess_frames
    from svac.grounding.tracking import track, track_sa2va
    from svac.sa2va_pipeline import MEMORY_DTYPE, SAM2_STATS_DTYPE, upsample_logits

    t_start = time.perf_counter()
    num_obj = prompts.shape[1]
    n, h, w = source.num_frames, source.height, source.width
    masks = np.zeros((num_obj, n, h, w), dtype=bool)
    presence = np.zeros((num_obj, n), dtype=np.float32)
    if num_obj == 0:
        return GroundingOutput(masks, np.zeros(0, dtype=np.float32), 0.0, 0.0)
    sam = model.grounding
    device, dtype = model.device, next(sam.parameters()).dtype
    clip_of_frame = torch.as_tensor(plan.clip_of_frame(), device=prompts.device)
    prompts = prompts.to(dtype)
    encoder_seconds = 0.0
    sa2va = model.config.pipeline == "sa2va"
    frame_options = {"resample": "pil", "stats_dtype": SAM2_STATS_DTYPE} if sa2va else {}

    def encoded_frames() -> Iterator:
        nonlocal encoder_seconds
        for start, chunk in source.iter_chunks(model.config.sam2.encoder_batch_size):
            images = preprocess_frames(chunk, sam.image_size, device=device, dtype=dtype, **frame_options)
            with _timer(device) as elapsed:
                feats = sam.encode_frames(images)
            encoder_seconds += elapsed()
            yield from ((start + i, f) for i, f in enumerate(feats))

    if sa2va:  # Sa2VA: the MLLM's frames prompted on their own, the others tracked by memory
        stream = track_sa2va(sam, encoded_frames(), prompts[0], prompted_frames=plan.frame_indices.tolist(),
                             num_frames=n, memory_dtype=MEMORY_DTYPE)
    else:
        stream = track(sam, encoded_frames(), lambda t: prompts[clip_of_frame[t]],
                       conditioning_frames=plan.anchor_frames(), num_frames=n)
    threshold = model.config.inference.mask_threshold
    pending: list = []

    def flush() -> None:  # upsample a chunk of frames in one call
        logits = torch.cat([o.mask_logits for o in pending], dim=1).float()  # (K, n_chunk, h', w')
        if sa2va:  # 256 -> 1024 -> frame size
            logits = upsample_logits(logits, sam.image_size, (h, w))
        else:
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        frames = [o.frame for o in pending]
        masks[:, frames[0]:frames[-1] + 1] = (logits > threshold).cpu().numpy()
        scores = torch.cat([o.object_score_logits for o in pending], dim=1).float().sigmoid()
        presence[:, frames[0]:frames[-1] + 1] = scores.cpu().numpy()
        pending.clear()

    with _sam2_precision(device, model.dtype):
        for out in progress_iter(stream, progress, total=n, desc="SAM-2", unit="frame"):
            pending.append(out)
            if len(pending) == model.config.sam2.encoder_batch_size:
                flush()
        if pending:
            flush()
    total = time.perf_counter() - t_start
    return GroundingOutput(masks, presence.mean(axis=1), encoder_seconds, total - encoder_seconds)


def segment(model: "SVAC", video, expression: str, *, num_frames: int | None = None, clip_len: int | None = None,
            progress: Progress = False) -> SegmentationResult:
    """Segment what ``expression`` refers to in every frame of ``video`` (SVAC §3).

    With ``config.inference.answer_mode == "template"`` the answer is the first CSA answer of
    ``prompts/segmentation.yaml`` (one ``[SEG]`` per clip, or one in single mode) and is read
    in one forward pass; with ``"generate"`` it is generated and the ``[SEG]`` count policy applies.
    In the ``sa2va`` pipeline the question and template answer are Sa2VA's (``prompts/sa2va.yaml``).

    Args:
        model: the SVAC model.
        video: a video path, frame folder, frame list or array (see :func:`svac.video.reader.open_video`).
        expression: the referring expression (non-empty).
        num_frames: T, overrides ``config.astc.num_frames``.
        clip_len: m, overrides ``config.astc.clip_len``.
        progress: ``True`` for progress bars, or a callback receiving :class:`svac.progress.ProgressEvent`.

    Returns:
        A :class:`~svac.outputs.SegmentationResult` with masks over every video frame.

    Raises:
        ValueError: when ``expression`` is empty.
        svac.errors.VideoReadError: when the video cannot be read.
        svac.errors.SegCountError: in generate mode, on a ``[SEG]`` count mismatch with policy ``raise``.
    """
    if not expression or not expression.strip():
        raise ValueError("the query is empty: give a referring expression such as 'the dog jumping over the fence'")
    t0 = time.perf_counter()
    with torch.inference_mode():
        prepared = prepare_video(model, video, num_frames=num_frames, clip_len=clip_len)
        seg = seg_tokens(prepared.plan.num_clips, model.config.csa)
        if model.config.pipeline == "sa2va":
            sa2va_prompts = load_sa2va_prompts()
            question = sa2va_prompts.ask(prepared.video_text, expression.strip())
            answer = sa2va_prompts.reply(seg)
        else:
            question = model.prompts.question(prepared.video_text, expression.strip())
            answer = model.prompts.answer(seg, expression.strip())
        if model.config.inference.answer_mode == "template":
            mllm_answer = answer_with_template(model, prepared, [Turn(question, answer)])
        else:
            mllm_answer = answer_by_generation(model, prepared, [Turn(question)])
        result = finish(model, prepared, mllm_answer, progress=progress)
    result.timings.total = time.perf_counter() - t0
    return result


def finish(model: "SVAC", prepared: PreparedVideo, answer: MLLMAnswer, *,
           progress: Progress = False) -> SegmentationResult:
    """Allocate the answer's ``[SEG]`` states to clips (CSA), run SAM-2, and assemble the result."""
    allocation = allocate(model.seg_prompts(answer.seg_hidden), prepared.plan.num_clips, model.config.csa)
    grounded = ground(model, prepared.source, prepared.plan, allocation.prompts, progress=progress)
    timings = Timings(video_decode=prepared.decode_seconds, mllm_vision=answer.vision_seconds,
                      llm_prefill=answer.prefill_seconds, llm_decode=answer.decode_seconds,
                      sam2_encoder=grounded.encoder_seconds, sam2_tracking=grounded.tracking_seconds)
    source, plan = prepared.source, prepared.plan
    return SegmentationResult(
        text=answer.text, masks=grounded.masks, scores=grounded.scores, frame_indices=plan.frame_indices.copy(),
        clip_spans=[c.span for c in plan.clips], frame_names=source.frame_names, video_name=source.name,
        fps=source.fps, mode=plan.mode, csa_mode=model.config.csa.mode,
        num_visual_tokens=prepared.num_visual_tokens, seg_policy_applied=allocation.policy_applied,
        model_name=model.config.name, timings=timings)


def _sam2_precision(device: torch.device, dtype: torch.dtype):
    """The context SAM-2 runs in: autocast to the model's ``dtype`` when it is not float32.

    SAM-2's weights stay float32 (:attr:`svac.model.SVAC.float32_modules`) and lower precision
    comes from autocast, as in the ``sam2`` package's own video predictor.
    """
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextmanager
def _timer(device: torch.device):
    """Measure a block's wall time in seconds (synchronising CUDA so GPU work is counted)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sync()
    start = time.perf_counter()
    box = {}
    yield lambda: box["elapsed"]
    sync()
    box["elapsed"] = time.perf_counter() - start
