"""Training data and loss outputs of the baseline heads (ReferFormer, LAVT) in svac's recipe.

The recipe (``train/finetune.py``) groups referring samples by video
(:class:`svac.training.data.VideoExpressionDataset`) and asks the head's
example builder (:data:`svac.training.hooks.TRAINING_HOOKS`) to turn K expressions of one video
into an example.
For a baseline an example is ``window`` frames of the video resized to the
head's ``input_size`` and ImageNet-normalised -- exactly what inference feeds
the head per window (:func:`preprocess_frames`) -- with the K expressions
tokenized and their ground-truth masks at ``input_size``. The collate function
makes one batch item per (video, expression) pair: the papers train one
expression per clip (ReferFormer §4.1, LAVT §4.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from svac.config import IMAGENET_MEAN, IMAGENET_STD
from svac.data.sample import ReferringSample
from svac.errors import ConfigError
from svac.video.reader import FramePathsVideo, sample_frame_indices

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

#: Largest uint8 pixel value (frames are scaled to [0, 1] by it).
PIXEL_MAX = 255.0
#: A resized mask pixel is foreground when its bilinear (antialiased) value exceeds this.
MASK_RESIZE_THRESHOLD = 0.5


def preprocess_frames(frames: np.ndarray, size: tuple[int, int], *, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Resize RGB frames to ``size`` and normalise them with the ImageNet statistics.

    Args:
        frames: ``uint8 (T, H, W, 3)`` RGB frames (pixels).
        size: ``(height, width)`` of the output (pixels); the aspect ratio is not kept.
        device, dtype: of the output.

    Returns:
        ``float (T, 3, height, width)``: ``(x / 255 - mean) / std`` after an antialiased bilinear resize.

    Raises:
        ValueError: when ``frames`` is not ``uint8 (T, H, W, 3)``.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return ((x / PIXEL_MAX - mean) / std).to(dtype)


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Resize binary masks ``bool (..., H, W)`` to ``bool (..., height, width)`` (antialiased bilinear > 0.5)."""
    t = torch.from_numpy(np.ascontiguousarray(masks)).float()
    lead = t.shape[:-2]
    t = t.reshape(-1, 1, *t.shape[-2:])
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return (t[:, 0] > MASK_RESIZE_THRESHOLD).reshape(*lead, *size)


def training_frame_indices(num_frames: int, window: int, policy: str, rng: np.random.Generator) -> np.ndarray:
    """The ``window`` video frames of one training example, ``int64 (window,)`` in temporal order.

    Args:
        num_frames: frames of the video (>= 1).
        window: T, frames per example (>= 1).
        policy: ``window`` -- T consecutive frames from a start drawn from ``rng`` (the layout of
            the inference windows); ``uniform`` -- T frames spread over the whole video
            (:func:`svac.video.reader.sample_frame_indices`, as ASTC samples).
        rng: the example's generator.

    A video with fewer than T frames repeats frames in temporal order
    (``floor(linspace(0, N-1, T) + 0.5)``), so every example has exactly T frames.

    Raises:
        ConfigError: for an unknown ``policy``, or ``num_frames`` / ``window`` below 1.
    """
    if num_frames < 1 or window < 1:
        raise ConfigError(f"need num_frames >= 1 and window >= 1, got {num_frames} and {window}")
    if num_frames < window:
        return np.floor(np.linspace(0, num_frames - 1, window) + 0.5).astype(np.int64)
    if policy == "uniform":
        return sample_frame_indices(num_frames, window, "uniform")
    if policy == "window":
        start = int(rng.integers(0, num_frames - window + 1))
        return np.arange(start, start + window, dtype=np.int64)
    raise ConfigError(f"baseline.train_frames must be 'window' or 'uniform', got {policy!r}")


@dataclass
class BaselineExample:
    """One video's frames and K referring expressions, ready for a baseline head.

    Attributes:
        video_id: the video's id.
        frame_indices: ``int64 (T,)`` the video frames used.
        frames: ``float (T, 3, H, W)`` ImageNet-normalised frames at the head's ``input_size``.
        masks: ``bool (K, T, H, W)`` ground truth of each expression at ``input_size``.
        input_ids: K token-id tensors ``long (L_k,)`` (special tokens included, not padded).
    """

    video_id: str
    frame_indices: np.ndarray
    frames: torch.Tensor
    masks: torch.Tensor
    input_ids: list[torch.Tensor]

    @property
    def num_expressions(self) -> int:
        """K, the number of expressions."""
        return len(self.input_ids)


@dataclass
class BaselineBatch:
    """One item per (video, expression) pair; the frames of a video repeat for each of its expressions.

    Attributes:
        frames: ``float (N, T, 3, H, W)``.
        masks: ``bool (N, T, H, W)``.
        input_ids: ``long (N, L)`` right-padded with the tokenizer's pad id.
        attention_mask: ``long (N, L)``, 1 on real tokens.
        video_ids: the N items' video ids.
    """

    frames: torch.Tensor
    masks: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    video_ids: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "BaselineBatch":
        """The batch with every tensor on ``device``."""
        return BaselineBatch(self.frames.to(device), self.masks.to(device), self.input_ids.to(device),
                             self.attention_mask.to(device), list(self.video_ids))


@dataclass
class BaselineExampleBuilder:
    """Builds :class:`BaselineExample` s for a baseline head (picklable, for DataLoader workers).

    Attributes:
        input_size: ``(height, width)`` of the frames and masks (pixels).
        window: T, frames per example.
        train_frames: frame policy (see :func:`training_frame_indices`).
        tokenizer: the model's text tokenizer.
        max_length: most tokens per expression (the text encoder's positions).
    """

    input_size: tuple[int, int]
    window: int
    train_frames: str
    tokenizer: "PreTrainedTokenizerBase"
    max_length: int

    def build(self, samples: Sequence[ReferringSample], rng: np.random.Generator) -> BaselineExample:
        """The example of ``samples`` (expressions of one video), frames chosen with ``rng``.

        Raises:
            ValueError: when the samples do not share one video.
            svac.errors.AnnotationError / VideoReadError: on unreadable annotations or frames.
        """
        first = samples[0]
        if any(s.frame_paths != first.frame_paths for s in samples):
            raise ValueError(f"expressions of one example must share the video; {first.video_id} differs")
        video = FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False)
        indices = training_frame_indices(video.num_frames, self.window, self.train_frames, rng)
        frames = preprocess_frames(video.read(indices), self.input_size)
        masks = resize_masks(np.stack([s.load_masks(indices) for s in samples]), self.input_size)
        ids = [torch.tensor(self.tokenizer(s.expression, truncation=True, max_length=self.max_length,
                                           split_special_tokens=True).input_ids,  # expressions are text
                            dtype=torch.long) for s in samples]
        return BaselineExample(video_id=first.video_id, frame_indices=indices, frames=frames, masks=masks,
                               input_ids=ids)


def collate_baseline(examples: list[BaselineExample], pad_token_id: int) -> BaselineBatch:
    """One batch item per (video, expression): frames repeated per expression, token ids right-padded.

    Raises:
        ValueError: when the examples' frames differ in shape (they all come from one config).
    """
    shapes = {tuple(e.frames.shape) for e in examples}
    if len(shapes) != 1:
        raise ValueError(f"examples of one batch must share the frame shape (T, 3, H, W); got {sorted(shapes)}")
    frames, masks, ids, names = [], [], [], []
    for e in examples:
        for k, tokens in enumerate(e.input_ids):
            frames.append(e.frames)
            masks.append(e.masks[k])
            ids.append(tokens)
            names.append(e.video_id)
    length = max(t.numel() for t in ids)
    input_ids = torch.full((len(ids), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(ids), length), dtype=torch.long)
    for i, tokens in enumerate(ids):
        input_ids[i, :tokens.numel()] = tokens
        attention[i, :tokens.numel()] = 1
    return BaselineBatch(frames=torch.stack(frames), masks=torch.stack(masks), input_ids=input_ids,
                         attention_mask=attention, video_ids=names)


@dataclass
class HeadLosses:
    """Losses of one training step of a baseline head.

    Attributes:
        loss: the weighted total (scalar tensor) that is back-propagated.
        terms: the named terms of the head's criterion (scalar tensors), e.g. ``loss_dice``.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]

    def as_floats(self) -> dict[str, float]:
        """Detached values for logging: ``loss`` then the terms."""
        return {"loss": float(self.loss.detach()), **{k: float(v.detach()) for k, v in self.terms.items()}}
