"""Training examples: a video, several of its referring expressions, and their masks.

Frames are sampled and laid out in clips with the same ASTC code as inference
(:func:`svac.astc.plan_clips`, :func:`svac.astc.build_mllm_images`), so the
model trains on exactly the inputs it will see. Each answer holds one ``[SEG]``
per clip under CSA (one in single mode), and the SAM-2 side tracks all the
video's objects at once.

How the expressions are asked (``data.conversation``):

* ``single_turn`` (default) -- every expression in its own conversation that opens
  with the video, exactly as :meth:`svac.SVAC.segment` asks it at inference. Nothing
  but the expression and the video tells two prompts apart.
* ``multi_turn`` -- Sa2VA's layout: the K expressions of a video as K turns of one
  conversation, the video opening the first. A model trained from scratch this way
  learns to encode the *turn index* (expression k is always asked at turn k, while
  inference asks at turn 0), so use it only for pretrained LLMs that need Sa2VA's layout.

Which frames (``data.frames``): ``video`` samples T frames with ASTC as inference does;
``single_frame`` draws one frame at random per example and presents it as a one-frame
video (one clip: the frame as anchor and an empty composite), the cheap image-level
stage of the default model's recipe; ``none`` asks the same questions without the video (no image, no
SAM-2 input; the answer holds the ``[SEG]`` tokens of a T-frame video), for answer-only stages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch

from svac.astc import build_mllm_images, plan_clips
from svac.config import SVACConfig
from svac.csa import seg_tokens
from svac.data.sample import ANSWER_PHRASE_KEY, CATEGORY_KEY, ReferringSample
from svac.grounding.sam2_model import preprocess_frames
from svac.heads.rvos_training import resize_masks
from svac.mllm.chat_template import ChatTemplate, load_chat_template
from svac.mllm.internvl import preprocess_images, tokens_per_image, vision_image_size
from svac.mllm.prompt_text import PromptLike, encode_prompt, fill
from svac.prompting import SegmentationPrompts, load_segmentation_prompts
from svac.video.reader import FramePathsVideo

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from svac.model import SVAC

#: Label of tokens that do not count in the cross-entropy (the transformers convention).
IGNORE_INDEX = -100


@dataclass
class TrainingExample:
    """One video with K referring expressions, ready for the model.

    Attributes:
        video_id: the video's id.
        input_ids: ``long (R, L)`` the conversations, right-padded: R = K single-turn
            conversations (one per expression, in expression order) or R = 1 multi-turn one.
        labels: ``long (R, L)`` answer tokens, :data:`IGNORE_INDEX` elsewhere (and on padding).
        attention_mask: ``long (R, L)`` 1 on tokens, 0 on padding.
        pixel_values: ``float (num_images, 3, S, S)`` MLLM images (anchor + composite per clip under ASTC).
        sam_frames: ``float (T, 3, S2, S2)`` the sampled frames, SAM-2-normalised.
        masks: ``bool (K, T, S2, S2)`` ground truth of each expression on the sampled frames.
        clip_of_position: ``long (T,)`` clip index of each sampled frame.
        anchor_positions: positions of the clips' anchor frames among the sampled frames.
        num_clips: number of clips.
        object_ids: per expression, the ids of the objects it names (``(K,)`` tuples).
        categories: per expression, the category name of the one object it names where the dataset lists
            it (:data:`svac.data.sample.CATEGORY_KEY`), else ``None`` (``(K,)``).
    """

    video_id: str
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor
    sam_frames: torch.Tensor
    masks: torch.Tensor
    clip_of_position: torch.Tensor
    anchor_positions: tuple[int, ...]
    num_clips: int
    object_ids: tuple[tuple[int, ...], ...] = ()
    categories: tuple[str | None, ...] = ()

    @property
    def num_objects(self) -> int:
        """K, the number of expressions (one object each)."""
        return int(self.masks.shape[0])

    @property
    def num_conversations(self) -> int:
        """R, the number of conversations (token rows)."""
        return int(self.input_ids.shape[0])


@dataclass
class TrainingBatch:
    """Examples collated for one step: padded token rows, their MLLM images, per-video SAM-2 inputs.

    Attributes:
        input_ids: ``long (N, L)`` every conversation of every example, right-padded (N = sum of R).
        attention_mask: ``long (N, L)``.
        labels: ``long (N, L)``.
        pixel_values: ``float (sum over examples of num_images, 3, S, S)``: each example's images once.
        examples: the examples (SAM-2 frames, masks and clip layout).
        row_example: ``(N,)`` the example each row belongs to (rows of one example are consecutive).
        image_index: ``long (sum over rows of num_images,)``: for the images of every row in row order,
            their row in ``pixel_values`` (an example's images serve each of its conversations).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    examples: list[TrainingExample]
    row_example: tuple[int, ...]
    image_index: torch.Tensor

    def rows_of(self, b: int) -> list[int]:
        """The rows of example ``b``, in order."""
        return [r for r, e in enumerate(self.row_example) if e == b]

    def to(self, device: torch.device | str) -> "TrainingBatch":
        """Move every tensor to ``device``."""
        def move(x):
            return x.to(device)

        examples = [dataclasses.replace(e, **{f.name: move(getattr(e, f.name)) for f in dataclasses.fields(e)
                                              if isinstance(getattr(e, f.name), torch.Tensor)})
                    for e in self.examples]
        return TrainingBatch(move(self.input_ids), move(self.attention_mask), move(self.labels),
                             move(self.pixel_values), examples, self.row_example, move(self.image_index))


@dataclass
class ExampleBuilder:
    """Turns samples of one video into a :class:`TrainingExample` (picklable, for DataLoader workers).

    Attributes:
        config: the model's config (ASTC, CSA, MLLM image settings).
        tokenizer: the model's tokenizer.
        sam2_image_size: SAM-2's input side (pixels).
        template: the chat template; ``prompts``: the segmentation prompts.
        conversation: ``single_turn`` or ``multi_turn`` (see the module docstring).
        frames: ``video``, ``single_frame`` or ``none`` (see the module docstring).
        answer_phrase: ``expression`` or ``dataset``: what the answer's ``<p>...</p>`` restates
            (:class:`svac.training.config.DataConfig`).
    """

    config: SVACConfig
    tokenizer: "PreTrainedTokenizerBase"
    sam2_image_size: int
    template: ChatTemplate
    prompts: SegmentationPrompts
    conversation: Literal["single_turn", "multi_turn"] = "single_turn"
    frames: Literal["video", "single_frame", "none"] = "video"
    answer_phrase: Literal["expression", "dataset"] = "expression"

    @classmethod
    def for_model(cls, model: "SVAC", *, conversation: Literal["single_turn", "multi_turn"] = "single_turn",
                  frames: Literal["video", "single_frame", "none"] = "video",
                  answer_phrase: Literal["expression", "dataset"] = "expression") -> "ExampleBuilder":
        """The builder matching ``model``'s inputs, asking expressions as ``conversation`` on ``frames``."""
        return cls(config=model.config, tokenizer=model.tokenizer, sam2_image_size=model.sam2_image_size,
                   template=load_chat_template(model.config.mllm.chat_template), prompts=load_segmentation_prompts(),
                   conversation=conversation, frames=frames, answer_phrase=answer_phrase)

    def build(self, samples: Sequence[ReferringSample], rng: np.random.Generator) -> TrainingExample:
        """Build the example of ``samples`` (expressions of one video, same frames).

        Question and answer templates (and, for ``single_frame``, the frame) are drawn from ``rng``.

        Raises:
            ValueError: when the samples do not share one video.
            svac.errors.AnnotationError / VideoReadError: on unreadable annotations or frames.
        """
        first = samples[0]
        if any(s.frame_paths != first.frame_paths for s in samples):
            raise ValueError(f"expressions of one example must share the video; {first.video_id} differs")
        if self.frames == "none":
            return self._text_only(samples, rng)
        video = FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False)
        if self.frames == "single_frame":
            chosen = int(rng.integers(video.num_frames))
            plan = plan_clips(1, dataclasses.replace(self.config.astc, num_frames=1))
            frame_indices = np.array([chosen])
        else:
            plan = plan_clips(video.num_frames, self.config.astc)
            frame_indices = plan.frame_indices
        frames = video.read(frame_indices)
        pixel_values = preprocess_images(build_mllm_images(frames, plan), self.config.mllm)
        video_text = self.prompts.video_text(plan, tokens_per_image(self.config.mllm))
        rows = self._conversations(samples, video_text, seg_tokens(plan.num_clips, self.config.csa), rng)
        masks = np.stack([s.load_masks(frame_indices) for s in samples])  # (K, T, H, W)
        size = self.sam2_image_size
        masks_t = resize_masks(masks, (size, size))  # (K, T, S, S) bool
        clip_of_position = torch.tensor([c.index for c in plan.clips for _ in c.positions], dtype=torch.long)
        input_ids, labels, attention = _pad_rows(rows, self.tokenizer.pad_token_id)
        return TrainingExample(
            video_id=first.video_id, input_ids=input_ids, labels=labels, attention_mask=attention,
            pixel_values=pixel_values, sam_frames=preprocess_frames(frames, size), masks=masks_t,
            clip_of_position=clip_of_position, anchor_positions=tuple(c.positions[0] for c in plan.clips),
            num_clips=plan.num_clips, object_ids=tuple(tuple(s.object_ids) for s in samples),
            categories=tuple(s.meta.get(CATEGORY_KEY) for s in samples))

    def _text_only(self, samples: Sequence[ReferringSample], rng: np.random.Generator) -> TrainingExample:
        """The example of ``frames: none``: the conversations without the video, no image and no SAM-2 input."""
        plan = plan_clips(self.config.astc.num_frames, self.config.astc)  # the clips of a video of T frames or more
        rows = self._conversations(samples, "", seg_tokens(plan.num_clips, self.config.csa), rng)
        input_ids, labels, attention = _pad_rows(rows, self.tokenizer.pad_token_id)
        side, size = vision_image_size(self.config.mllm), self.sam2_image_size
        return TrainingExample(
            video_id=samples[0].video_id, input_ids=input_ids, labels=labels, attention_mask=attention,
            pixel_values=torch.zeros((0, 3, side, side)), sam_frames=torch.zeros((0, 3, size, size)),
            masks=torch.zeros((len(samples), 0, size, size), dtype=torch.bool),
            clip_of_position=torch.zeros((0,), dtype=torch.long), anchor_positions=(), num_clips=plan.num_clips,
            object_ids=tuple(tuple(s.object_ids) for s in samples),
            categories=tuple(s.meta.get(CATEGORY_KEY) for s in samples))

    def _conversations(self, samples: Sequence[ReferringSample], video_text: PromptLike, seg: str,
                       rng: np.random.Generator) -> list[tuple[list[int], list[int]]]:
        """Token rows ``(ids, labels)`` asking each sample (``conversation``), answers holding ``seg``."""
        system = self.template.default_system
        head = (self.template.bos or "") + (self.template.system.format(system=system) if system else "")
        head_ids = self._tokens(head) if head else []
        rows: list[tuple[list[int], list[int]]] = []
        for k, sample in enumerate(samples):
            if self.conversation == "single_turn" or k == 0:
                rows.append((list(head_ids), [IGNORE_INDEX] * len(head_ids)))
            question_index = int(rng.integers(len(self.prompts.questions)))
            answer_index = int(rng.integers(len(self.prompts.answers)))
            opens = self.conversation == "single_turn" or k == 0
            user = self.prompts.question(video_text if opens else "", sample.expression, question_index)
            answer = self.prompts.answer(seg, self._phrase(sample), answer_index)
            prompt_ids = self._tokens(fill(self.template.user, content=user) + self.template.assistant_prefix)
            answer_ids = self._tokens(answer + self.template.assistant_suffix)
            ids, labels = rows[-1]
            ids += prompt_ids + answer_ids
            labels += [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        return rows

    def _phrase(self, sample: ReferringSample) -> str:
        """The phrase the answer restates: the expression, or the dataset's phrase for it under ``dataset``."""
        if self.answer_phrase == "dataset":
            phrase = sample.meta.get(ANSWER_PHRASE_KEY)
            if phrase is not None:
                if not isinstance(phrase, str) or not phrase.strip():
                    raise ValueError(f"{sample.dataset}/{sample.video_id}/{sample.exp_id}: "
                                     f"{ANSWER_PHRASE_KEY!r} must be non-empty text, got {phrase!r}")
                return phrase
        return sample.expression

    def _tokens(self, text: PromptLike) -> list[int]:
        # expressions are user parts of the prompt: a "[SEG]" in a dataset's text stays text
        return encode_prompt(self.tokenizer, text)


class VideoExpressionDataset(torch.utils.data.Dataset):
    """A map-style dataset of videos; item i is video i with up to ``expressions_per_video`` expressions.

    Which expressions and prompt templates an item gets is drawn from a generator seeded by
    ``(seed, epoch, index)``, so a run is reproducible and resumable; call :meth:`set_epoch`
    at the start of every epoch.

    Args:
        samples: referring samples (any reader's output); grouped by ``(dataset, video_id)``.
        builder: the model's example builder (``training_hooks(model).example_builder(model)``, whose
            ``build(samples, rng)`` makes one example; :class:`ExampleBuilder` for SVAC).
        expressions_per_video: K, expressions per example (fewer when a video has fewer).
        seed: base seed.

    Raises:
        ValueError: when ``samples`` is empty.
    """

    def __init__(self, samples: Sequence[ReferringSample], builder, *, expressions_per_video: int,
                 seed: int) -> None:
        groups: dict[tuple[str, str], list[ReferringSample]] = {}
        for s in samples:
            groups.setdefault((s.dataset, s.video_id), []).append(s)
        if not groups:
            raise ValueError("no training samples")
        self.videos = [groups[k] for k in sorted(groups)]
        self.builder = builder
        self.expressions_per_video = expressions_per_video
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random choices items use."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> TrainingExample:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        group = self.videos[index]
        k = min(self.expressions_per_video, len(group))
        chosen = [group[i] for i in sorted(rng.choice(len(group), size=k, replace=False))]
        return self.builder.build(chosen, rng)


def _pad_rows(rows: list[tuple[list[int], list[int]]], pad_token_id: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad token rows: ``(ids, labels, attention_mask)``, each ``long (R, L)``."""
    length = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    labels_t = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    mask_t = torch.zeros((len(rows), length), dtype=torch.long)
    for r, (ids, labels) in enumerate(rows):
        n = len(ids)
        ids_t[r, :n] = torch.tensor(ids, dtype=torch.long)
        labels_t[r, :n] = torch.tensor(labels, dtype=torch.long)
        mask_t[r, :n] = 1
    return ids_t, labels_t, mask_t


def collate(examples: list[TrainingExample], pad_token_id: int) -> TrainingBatch:
    """Stack every example's conversations into right-padded rows; each example's MLLM images serve all its rows."""
    length = max(e.input_ids.shape[1] for e in examples)
    total = sum(e.num_conversations for e in examples)
    ids = torch.full((total, length), pad_token_id, dtype=torch.long)
    labels = torch.full((total, length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((total, length), dtype=torch.long)
    row_example: list[int] = []
    image_index: list[torch.Tensor] = []
    r = first_image = 0
    for b, e in enumerate(examples):
        n, width = e.input_ids.shape
        ids[r:r + n, :width], labels[r:r + n, :width], mask[r:r + n, :width] = e.input_ids, e.labels, e.attention_mask
        row_example += [b] * n
        own = torch.arange(first_image, first_image + e.pixel_values.shape[0])
        image_index += [own] * n
        first_image += e.pixel_values.shape[0]
        r += n
    return TrainingBatch(input_ids=ids, attention_mask=mask, labels=labels,
                         pixel_values=torch.cat([e.pixel_values for e in examples]), examples=examples,
                         row_example=tuple(row_example), image_index=torch.cat(image_index))
