"""Anchor-based Spatio-Temporal Compression (ASTC, SVAC §3.3) and the clip layout CSA relies on.

The T frames sampled for the MLLM are cut into consecutive clips of m frames
(the last clip may be shorter). Each clip gives the MLLM exactly two images:

* the **anchor frame** -- the clip's first frame, untouched;
* the **composite frame** -- the clip's other m-1 frames tiled row-major on a
  g x g grid (g = ceil(sqrt(m-1)), empty cells black) and resized bicubically
  back to one frame's size.

So the MLLM reads ``2 x tokens_per_image`` visual tokens per clip instead of
``m x tokens_per_image``: ASTC's token count is 2/m of the uncompressed one.
A one-frame clip (m = 1, or a short last clip) gets an all-black composite so
that every clip contributes the same two images.

The SAM-2 side never sees composites: it reads the original frames. Clip k's
``[SEG]`` (CSA, SVAC §3.4) prompts SAM-2 on every video frame of the clip's
*span*: from its anchor frame up to the next clip's anchor frame (the first
clip starts at frame 0, the last one ends with the video).

Comparison modes for the efficiency studies: ``uncompressed`` (every sampled
frame is an MLLM image) and ``first_k`` (Sa2VA: the video's first k frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from svac.config import ASTCConfig
from svac.video.reader import sample_frame_indices

ImageRole = Literal["anchor", "composite", "frame"]


@dataclass(frozen=True)
class Clip:
    """One clip of sampled frames.

    Attributes:
        index: clip number k (0-based).
        positions: positions of the clip's frames in the sampled-frame list.
        frame_indices: the same frames as video frame indices (frames).
        span: ``(start, stop)`` video frames prompted by this clip's ``[SEG]`` (stop excluded).
    """

    index: int
    positions: tuple[int, ...]
    frame_indices: tuple[int, ...]
    span: tuple[int, int]

    @property
    def anchor_frame(self) -> int:
        """Video index of the clip's anchor (first) frame."""
        return self.frame_indices[0]


@dataclass(frozen=True)
class ClipPlan:
    """Which frames the MLLM sees, how they form clips, and which images it reads.

    Attributes:
        mode: ``astc``, ``uncompressed`` or ``first_k``.
        num_video_frames: frames in the whole video (frames).
        frame_indices: sampled video frame indices, ``int64 (T,)``, sorted and unique.
        clips: the clips, in temporal order; their spans partition ``[0, num_video_frames)``.
        image_roles: role of each MLLM image in prompt order.
        image_clips: clip index of each MLLM image.
    """

    mode: str
    num_video_frames: int
    frame_indices: np.ndarray
    clips: tuple[Clip, ...]
    image_roles: tuple[ImageRole, ...]
    image_clips: tuple[int, ...]

    @property
    def num_clips(self) -> int:
        """Number of clips (one ``[SEG]`` each under CSA)."""
        return len(self.clips)

    @property
    def num_images(self) -> int:
        """Number of MLLM images (2 per clip under ASTC)."""
        return len(self.image_roles)

    def clip_of_frame(self) -> np.ndarray:
        """Clip index of every video frame, ``int64 (num_video_frames,)``."""
        out = np.empty(self.num_video_frames, dtype=np.int64)
        for clip in self.clips:
            out[clip.span[0]:clip.span[1]] = clip.index
        return out

    def anchor_frames(self) -> tuple[int, ...]:
        """Video indices of the clips' anchor frames."""
        return tuple(c.anchor_frame for c in self.clips)


def split_into_clips(num_frames: int, clip_len: int) -> list[range]:
    """Cut ``num_frames`` sampled frames into consecutive clips of ``clip_len`` frames.

    Returns:
        ``ceil(num_frames / clip_len)`` ranges of positions; all have ``clip_len`` frames but
        the last, which may be shorter.

    Raises:
        ValueError: when ``num_frames < 1`` or ``clip_len < 1``.
    """
    if num_frames < 1 or clip_len < 1:
        raise ValueError(f"need num_frames >= 1 and clip_len >= 1, got {num_frames} and {clip_len}")
    return [range(s, min(s + clip_len, num_frames)) for s in range(0, num_frames, clip_len)]


def composite_grid_size(num_tiles: int) -> int:
    """Side g of the g x g grid holding ``num_tiles`` frames: ``ceil(sqrt(num_tiles))``, at least 1."""
    if num_tiles < 0:
        raise ValueError(f"num_tiles must be >= 0, got {num_tiles}")
    return math.isqrt(num_tiles - 1) + 1 if num_tiles > 0 else 1


def make_composite(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fold a clip's non-anchor frames into one composite frame (ASTC, SVAC §3.3).

    The frames are tiled row-major on a g x g grid of ``height x width`` cells
    (g = ceil(sqrt(n)), unused cells black), and the grid is resized bicubically
    (antialiased) to ``height x width``.

    Args:
        frames: ``uint8 (n, height, width, 3)`` RGB frames, ``n >= 0`` (n = 0 gives a black frame).
        height, width: frame size (pixels).

    Returns:
        ``uint8 (height, width, 3)`` composite frame.

    Raises:
        ValueError: when the frames are not ``(n, height, width, 3)`` ``uint8``.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
        raise ValueError(f"expected uint8 frames of shape (n, {height}, {width}, 3), got {frames.dtype} {frames.shape}")
    n = frames.shape[0]
    if n == 0:
        return np.zeros((height, width, 3), dtype=np.uint8)
    g = composite_grid_size(n)
    grid = np.zeros((g * height, g * width, 3), dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, g)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = frames[k]
    if g == 1:
        return grid
    t = torch.from_numpy(grid).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return t.round_().clamp_(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()


def plan_clips(num_video_frames: int, cfg: ASTCConfig, *, num_frames: int | None = None,
               clip_len: int | None = None) -> ClipPlan:
    """Sample the MLLM frames of a video and lay out its clips and MLLM images.

    Args:
        num_video_frames: frames in the video (frames, >= 1).
        cfg: ASTC settings (mode, T, m, k).
        num_frames: overrides ``cfg.num_frames`` (T) when given.
        clip_len: overrides ``cfg.clip_len`` (m) when given.

    Returns:
        The :class:`ClipPlan`. In ``astc`` mode each clip contributes an anchor then a
        composite image; in ``uncompressed`` and ``first_k`` modes each sampled frame is one image.

    Raises:
        ValueError: when ``num_video_frames < 1`` or T, m are below 1.
    """
    T = cfg.num_frames if num_frames is None else num_frames
    m = cfg.clip_len if clip_len is None else clip_len
    if cfg.mode == "first_k":
        indices = sample_frame_indices(num_video_frames, cfg.first_k, "first")
    else:
        indices = sample_frame_indices(num_video_frames, T, "uniform")
    groups = split_into_clips(len(indices), m)
    clips = []
    for k, group in enumerate(groups):
        start = 0 if k == 0 else int(indices[group[0]])
        stop = num_video_frames if k == len(groups) - 1 else int(indices[groups[k + 1][0]])
        clips.append(Clip(index=k, positions=tuple(group), frame_indices=tuple(int(indices[p]) for p in group),
                          span=(start, stop)))
    roles: list[ImageRole] = []
    image_clips: list[int] = []
    for clip in clips:
        if cfg.mode == "astc":
            roles += ["anchor", "composite"]
            image_clips += [clip.index, clip.index]
        else:
            roles += ["frame"] * len(clip.positions)
            image_clips += [clip.index] * len(clip.positions)
    return ClipPlan(mode=cfg.mode, num_video_frames=num_video_frames, frame_indices=indices, clips=tuple(clips),
                    image_roles=tuple(roles), image_clips=tuple(image_clips))


def build_mllm_images(frames: np.ndarray, plan: ClipPlan) -> np.ndarray:
    """The MLLM images of a plan, in prompt order.

    Args:
        frames: ``uint8 (T, H, W, 3)`` -- the sampled frames ``plan.frame_indices``, in order.
        plan: the plan from :func:`plan_clips`.

    Returns:
        ``uint8 (plan.num_images, H, W, 3)``: per clip the anchor then the composite (``astc``),
        or the sampled frames themselves (other modes).

    Raises:
        ValueError: when ``frames`` does not hold exactly the plan's T frames.
    """
    if frames.ndim != 4 or frames.shape[0] != len(plan.frame_indices):
        raise ValueError(f"expected the {len(plan.frame_indices)} sampled frames (T, H, W, 3), got {frames.shape}")
    if plan.mode != "astc":
        return frames
    H, W = frames.shape[1:3]
    images = []
    for clip in plan.clips:
        pos = list(clip.positions)
        images.append(frames[pos[0]])
        images.append(make_composite(frames[pos[1:]], H, W))
    return np.stack(images)
