"""3D pixel-word attention module of video LAVT (TPAMI extension).

Source: Yang, Wang, Ye, Tang, Chen, Zhao, Torr, "Language-Aware Vision
Transformer for Referring Segmentation", IEEE TPAMI 2024 (video LAVT). The
abstract describes the video module as "a 3D version of this component [the
pixel-word attention]" built "by introducing multi-scale convolutional
operators arranged in parallel". Our reading, written as the 3D counterparts of
the image PWAM's Eqs. 1-7 (CVPR 2022, Sec. 3.2):

Every per-pixel projection of the image PWAM that acts on a *visual*,
*linguistic* (pixel-specific language, ``G``) or *multi-modal* map becomes a
:class:`MultiScaleConv3d`: several 3D convolutions of different kernel sizes
placed side by side on the same input, each followed by its own norm or
activation, their outputs summed. With the default kernels
``((3, 3, 3), (1, 1, 1))`` each projection is a spatio-temporal 3x3x3 conv
beside a point-wise 1x1x1 conv:

* Eq. 1 (3D)  ``V_q = sum_k IN(conv3d_k(V))``, flattened over T*H*W   (visual)
* Eq. 2-3     ``L_k = conv1d(L)``, ``L_v = conv1d(L)``                  (words; unchanged)
* Eq. 4       ``G' = softmax(V_q^T L_k / sqrt(C)) L_v^T`` over all T*H*W positions
* Eq. 5 (3D)  ``G = sum_k IN(conv3d_k(unflatten(G'^T)))``              (linguistic)
* Eq. 6 (3D)  ``V_m = sum_k ReLU(conv3d_k(V))``                        (visual)
* Eq. 7 (3D)  ``F = sum_k ReLU(conv3d_k(V_m * G))``                    (multi-modal)

Instance norm statistics are taken per clip over (T, H, W). The language gate
stays point-wise (1x1x1 convs, Eqs. 8-9). Only the convolutions with a
temporal extent > 1 mix information across frames inside this module.
The TPAMI full text was not available while writing this module; the
placement of the pairs follows the abstract plus the option names the authors
publish for their video model (temporal 3x3x3 / spatial 1x1x1 pairs on the
query, the language output projection and the multi-modal projection).
"""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from svac.errors import ConfigError
from svac.heads.lavt.attention import pixel_word_attention
from svac.heads.lavt.errors import LAVTInputError
from svac.heads.lavt.pwam import check_language

POST_INSTANCE_NORM = "instance_norm"
POST_RELU = "relu"
_POSTS = (POST_INSTANCE_NORM, POST_RELU)
DEFAULT_KERNELS: tuple[tuple[int, int, int], ...] = ((3, 3, 3), (1, 1, 1))


class MultiScaleConv3d(nn.Module):
    """3D convolutions of several kernel sizes side by side, outputs summed.

    ``y = sum_k post_k(conv3d_k(x))`` with "same" zero padding (``k // 2``),
    so every branch keeps the ``(T, H, W)`` size. ``post`` is an instance norm
    (no affine) or a ReLU, applied to each branch separately.

    Args:
        in_dim: input channels.
        out_dim: output channels.
        kernels: odd kernel sizes ``(t, h, w)``, one per branch.
        post: ``"instance_norm"`` or ``"relu"``.

    Raises:
        svac.errors.ConfigError: no kernels, an even or non-positive kernel
            size, or an unknown ``post``.
    """

    def __init__(self, in_dim: int, out_dim: int, kernels: Sequence[Sequence[int]], post: str):
        super().__init__()
        if post not in _POSTS:
            raise ConfigError(f"MultiScaleConv3d.post must be one of {_POSTS}; got {post!r}")
        if not kernels:
            raise ConfigError("MultiScaleConv3d needs at least one kernel size")
        branches = []
        for kernel in kernels:
            kernel = tuple(int(k) for k in kernel)
            if len(kernel) != 3 or any(k < 1 or k % 2 == 0 for k in kernel):
                raise ConfigError(f"MultiScaleConv3d kernels must be 3 odd positive ints; got {kernel!r}")
            conv = nn.Conv3d(in_dim, out_dim, kernel_size=kernel, padding=tuple(k // 2 for k in kernel))
            after = nn.InstanceNorm3d(out_dim) if post == POST_INSTANCE_NORM else nn.ReLU()
            branches.append(nn.Sequential(conv, after))
        self.branches = nn.ModuleList(branches)
        self.kernels = tuple(tuple(int(k) for k in kernel) for kernel in kernels)
        self.post = post

    def forward(self, x: Tensor) -> Tensor:
        """Sum of the branches; ``x`` float ``(B, C_in, T, H, W)`` -> ``(B, C_out, T, H, W)``."""
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class PWAM3D(nn.Module):
    """Video pixel-word attention module (3D counterparts of LAVT Eqs. 1-7).

    Args:
        visual_dim: channels ``C_i`` of the stage's visual features.
        language_dim: channels ``C_l`` of the word features.
        kernels: kernel sizes of the parallel 3D convolutions (see module doc).
        key_dim: channels of queries and keys; default ``C_i``.
        value_dim: channels of the values; default ``C_i``.

    Submodules mirror :class:`svac.heads.lavt.pwam.PWAM`: ``query_proj``,
    ``key_proj``, ``value_proj``, ``language_out_proj``, ``visual_proj``,
    ``fusion_proj``; the four per-pixel ones are :class:`MultiScaleConv3d`.
    """

    def __init__(
        self,
        visual_dim: int,
        language_dim: int,
        kernels: Sequence[Sequence[int]] = DEFAULT_KERNELS,
        key_dim: int | None = None,
        value_dim: int | None = None,
    ):
        super().__init__()
        key_dim = visual_dim if key_dim is None else key_dim
        value_dim = visual_dim if value_dim is None else value_dim
        self.visual_dim = visual_dim
        self.language_dim = language_dim
        self.query_proj = MultiScaleConv3d(visual_dim, key_dim, kernels, POST_INSTANCE_NORM)
        self.key_proj = nn.Conv1d(language_dim, key_dim, kernel_size=1)
        self.value_proj = nn.Conv1d(language_dim, value_dim, kernel_size=1)
        self.language_out_proj = MultiScaleConv3d(value_dim, visual_dim, kernels, POST_INSTANCE_NORM)
        self.visual_proj = MultiScaleConv3d(visual_dim, visual_dim, kernels, POST_RELU)
        self.fusion_proj = MultiScaleConv3d(visual_dim, visual_dim, kernels, POST_RELU)

    def attend(self, visual: Tensor, words: Tensor, word_mask: Tensor) -> tuple[Tensor, Tensor]:
        """3D Eqs. 1-5: clip-level pixel-specific language features and attention weights.

        Args:
            visual: float ``(B, C_i, T, H, W)``.
            words: float ``(B, L, C_l)``.
            word_mask: bool ``(B, L)``.

        Returns:
            ``(G, A)``: float ``(B, C_i, T, H, W)`` and float ``(B, T*H*W, L)``.

        Raises:
            LAVTInputError: malformed inputs.
        """
        if visual.dim() != 5 or visual.shape[1] != self.visual_dim:
            raise LAVTInputError(
                f"visual must be float (B, C={self.visual_dim}, T, H, W); got {tuple(visual.shape)}"
            )
        check_language(words, word_mask, visual.shape[0], self.language_dim)
        batch, _, frames, height, width = visual.shape
        words_by_channel = words.transpose(1, 2)  # (B, C_l, L)
        v_q = self.query_proj(visual).flatten(2).transpose(1, 2)  # Eq. 1 (3D): (B, THW, C_k)
        l_k = self.key_proj(words_by_channel)  # Eq. 2: (B, C_k, L)
        l_v = self.value_proj(words_by_channel)  # Eq. 3: (B, C_v, L)
        g_prime, weights = pixel_word_attention(v_q, l_k, l_v, word_mask)  # Eq. 4: (B, THW, C_v)
        g_map = g_prime.transpose(1, 2).reshape(batch, -1, frames, height, width)
        g = self.language_out_proj(g_map)  # Eq. 5 (3D): (B, C_i, T, H, W)
        return g, weights

    def forward(self, visual: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """3D Eqs. 1-7: multi-modal features ``F_i`` of the clip.

        Args:
            visual: float ``(B, C_i, T, H, W)``.
            words: float ``(B, L, C_l)``.
            word_mask: bool ``(B, L)``.

        Returns:
            float ``(B, C_i, T, H, W)``.

        Raises:
            LAVTInputError: malformed inputs.
        """
        g, _ = self.attend(visual, words, word_mask)  # Eqs. 1-5 (3D)
        v_m = self.visual_proj(visual)  # Eq. 6 (3D)
        f = self.fusion_proj(v_m * g)  # Eq. 7 (3D)
        return f


__all__ = ["MultiScaleConv3d", "PWAM3D", "DEFAULT_KERNELS"]
