"""Masked single-head scaled dot-product attention from pixels to words (LAVT Eq. 4).

Source: Yang et al., LAVT, CVPR 2022, Sec. 3.2, Eq. 4:
``G'_i = softmax(V_iq^T L_ik / sqrt(C_i)) L_iv^T``, where padded words are
excluded from the softmax. Shared by the 2D and the 3D pixel-word attention
modules.
"""

from __future__ import annotations

import torch
from torch import Tensor

from svac.heads.lavt.errors import LAVTInputError


def check_word_mask(word_mask: Tensor, batch: int, num_words: int) -> None:
    """Validate a word mask: bool ``(batch, num_words)`` with at least one valid word per row.

    Raises:
        LAVTInputError: wrong dtype or shape, or a row without any valid word
            (attention over zero words is undefined).
    """
    if word_mask.dtype != torch.bool:
        raise LAVTInputError(f"word_mask must be torch.bool; got {word_mask.dtype}")
    if tuple(word_mask.shape) != (batch, num_words):
        raise LAVTInputError(f"word_mask must have shape {(batch, num_words)}; got {tuple(word_mask.shape)}")
    if not bool(word_mask.any(dim=1).all()):
        raise LAVTInputError("every expression needs at least one valid (unmasked) word")


def pixel_word_attention(query: Tensor, key: Tensor, value: Tensor, word_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Attend from every pixel to the words of its expression (LAVT Eq. 4).

    Args:
        query: float ``(B, N, C_k)``, one row per pixel (``N = H*W`` or ``T*H*W``).
        key: float ``(B, C_k, L)``, one column per word.
        value: float ``(B, C_v, L)``.
        word_mask: bool ``(B, L)``, ``True`` for real words, ``False`` for padding.

    Returns:
        ``(context, weights)``: float ``(B, N, C_v)`` pixel-specific language
        features ``G'`` and float ``(B, N, L)`` attention weights; padded words
        get a weight of exactly 0 (their logits are set to ``-inf``).

    Raises:
        LAVTInputError: mismatched shapes or a bad ``word_mask``.
    """
    batch, _, key_dim = query.shape
    if key.shape[0] != batch or key.shape[1] != key_dim:
        raise LAVTInputError(f"key must be (B={batch}, C_k={key_dim}, L); got {tuple(key.shape)}")
    num_words = key.shape[2]
    if value.shape[0] != batch or value.shape[2] != num_words:
        raise LAVTInputError(f"value must be (B={batch}, C_v, L={num_words}); got {tuple(value.shape)}")
    check_word_mask(word_mask, batch, num_words)
    scale = key_dim**-0.5
    scores = torch.bmm(query, key) * scale
    scores = scores.masked_fill(~word_mask[:, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = torch.bmm(weights, value.transpose(1, 2))
    return context, weights
