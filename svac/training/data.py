"""Training examples: a video, several of its referring expressions in one conversation, and their masks.

Frames are sampled and laid out in clips with the same ASTC code as inference
(:func:`svac.astc.plan_clips`, :func:`svac.astc.build_mllm_images`), so the
model trains on exactly the inputs it will see. Like Sa2VA, the expressions of
one video are asked in one multi-turn conversation (the video opens the first
turn); each answer holds one ``[SEG]`` per clip under CSA (one in single mode),
and the SAM-2 side tracks all the video's objects at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from svac.astc import build_mllm_images, plan_clips
from svac.config import SVACConfig
from svac.csa import seg_tokens
from svac.data.sample import ReferringSample
from svac.grounding.sam2_model import preprocess_frames
from svac.mllm.chat_template import ChatTemplate, load_chat_template
from svac.mllm.internvl import preprocess_images, tokens_per_image
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
        input_ids: ``long (L,)`` the conversation.
        labels: ``long (L,)`` answer tokens, :data:`IGNORE_INDEX` elsewhere.
        pixel_values: ``float (num_images, 3, S, S)`` MLLM images (anchor + composite per clip under ASTC).
        sam_frames: ``float (T, 3, S2, S2)`` the sampled frames, SAM-2-normalised.
        masks: ``bool (K, T, S2, S2)`` ground truth of each expression on the sampled frames.
        clip_of_position: ``long (T,)`` clip index of each sampled frame.
        anchor_positions: positions of the clips' anchor frames among the sampled frames.
        num_clips: number of clips.
        object_ids: per expression, the ids of the objects it names (``(K,)`` tuples).
    """

    video_id: str
    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    sam_frames: torch.Tensor
    masks: torch.Tensor
    clip_of_position: torch.Tensor
    anchor_positions: tuple[int, ...]
    num_clips: int
    object_ids: tuple[tuple[int, ...], ...] = ()

    @property
    def num_objects(self) -> int:
        """K, the number of expressions (one object each)."""
        return int(self.masks.shape[0])


@dataclass
class TrainingBatch:
    """Examples collated for one step: padded token ids, concatenated MLLM images, per-video SAM-2 inputs.

    Attributes:
        input_ids: ``long (B, L)`` right-padded.
        attention_mask: ``long (B, L)``.
        labels: ``long (B, L)``.
        pixel_values: ``float (sum of num_images, 3, S, S)`` in example order.
        examples: the examples (SAM-2 frames, masks and clip layout).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    examples: list[TrainingExample]

    def to(self, device: torch.device | str) -> "TrainingBatch":
        """Move every tensor to ``device``."""
        def move(x):
            return x.to(device)

        examples = [TrainingExample(e.video_id, move(e.input_ids), move(e.labels), move(e.pixel_values),
                                    move(e.sam_frames), move(e.masks), move(e.clip_of_position), e.anchor_positions,
                                    e.num_clips, e.object_ids) for e in self.examples]
        return TrainingBatch(move(self.input_ids), move(self.attention_mask), move(self.labels),
                             move(self.pixel_values), examples)


@dataclass
class ExampleBuilder:
    """Turns samples of one video into a :class:`TrainingExample` (picklable, for DataLoader workers).

    Attributes:
        config: the model's config (ASTC, CSA, MLLM image settings).
        tokenizer: the model's tokenizer.
        sam2_image_size: SAM-2's input side (pixels).
        template: the chat template; ``prompts``: the segmentation prompts.
    """

    config: SVACConfig
    tokenizer: "PreTrainedTokenizerBase"
    sam2_image_size: int
    template: ChatTemplate
    prompts: SegmentationPrompts

    @classmethod
    def for_model(cls, model: "SVAC") -> "ExampleBuilder":
        """The builder matching ``model``'s inputs."""
        return cls(config=model.config, tokenizer=model.tokenizer, sam2_image_size=model.sam2_image_size,
                   template=load_chat_template(model.config.mllm.chat_template), prompts=load_segmentation_prompts())

    def build(self, samples: Sequence[ReferringSample], rng: np.random.Generator) -> TrainingExample:
        """Build the example of ``samples`` (expressions of one video, same frames).

        Question and answer templates are drawn from ``rng``.

        Raises:
            ValueError: when the samples do not share one video.
            svac.errors.AnnotationError / VideoReadError: on unreadable annotations or frames.
        """
        first = samples[0]
        if any(s.frame_paths != first.frame_paths for s in samples):
            raise ValueError(f"expressions of one example must share the video; {first.video_id} differs")
        video = FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False)
        plan = plan_clips(video.num_frames, self.config.astc)
        frames = video.read(plan.frame_indices)
        pixel_values = preprocess_images(build_mllm_images(frames, plan), self.config.mllm)
        video_text = self.prompts.video_text(plan, tokens_per_image(self.config.mllm))
        seg = seg_tokens(plan.num_clips, self.config.csa)
        ids: list[int] = []
        labels: list[int] = []
        system = self.template.default_system
        head = (self.template.bos or "") + (self.template.system.format(system=system) if system else "")
        if head:
            ids += self._tokens(head)
            labels += [IGNORE_INDEX] * (len(ids) - len(labels))
        for k, sample in enumerate(samples):
            question_index = int(rng.integers(len(self.prompts.questions)))
            answer_index = int(rng.integers(len(self.prompts.answers)))
            user = self.prompts.question(video_text if k == 0 else "", sample.expression, question_index)
            answer = self.prompts.answer(seg, sample.expression, answer_index)
            prompt_ids = self._tokens(fill(self.template.user, content=user) + self.template.assistant_prefix)
            answer_ids = self._tokens(answer + self.template.assistant_suffix)
            ids += prompt_ids + answer_ids
            labels += [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        masks = np.stack([s.load_masks(plan.frame_indices) for s in samples])  # (K, T, H, W)
        size = self.sam2_image_size
        masks_t = torch.from_numpy(masks).float().flatten(0, 1)[:, None]
        masks_t = F.interpolate(masks_t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        masks_t = (masks_t[:, 0] > 0.5).reshape(len(samples), len(plan.frame_indices), size, size)
        clip_of_position = torch.tensor([c.index for c in plan.clips for _ in c.positions], dtype=torch.long)
        return TrainingExample(
            video_id=first.video_id, input_ids=torch.tensor(ids, dtype=torch.long),
            labels=torch.tensor(labels, dtype=torch.long), pixel_values=pixel_values,
            sam_frames=preprocess_frames(frames, size), masks=masks_t, clip_of_position=clip_of_position,
            anchor_positions=tuple(c.positions[0] for c in plan.clips), num_clips=plan.num_clips,
            object_ids=tuple(tuple(s.object_ids) for s in samples))

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


def collate(examples: list[TrainingExample], pad_token_id: int) -> TrainingBatch:
    """Right-pad token ids and labels, build the attention mask and concatenate MLLM images."""
    length = max(e.input_ids.numel() for e in examples)
    ids = torch.full((len(examples), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), length), dtype=torch.long)
    for b, e in enumerate(examples):
        n = e.input_ids.numel()
        ids[b, :n], labels[b, :n], mask[b, :n] = e.input_ids, e.labels, 1
    return TrainingBatch(input_ids=ids, attention_mask=mask, labels=labels,
                         pixel_values=torch.cat([e.pixel_values for e in examples]), examples=examples)
