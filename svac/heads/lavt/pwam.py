"""Pixel-word attention module (PWAM) and language gate (LG) of image LAVT.

Source: Yang et al., "LAVT: Language-Aware Vision Transformer for Referring
Image Segmentation", CVPR 2022, Sec. 3.2 (PWAM, Eqs. 1-7) and Sec. 3.3
(language pathway / gate, Eqs. 8-9). Written from the equations:

* Eq. 1  ``V_iq = flatten(w_iq(V_i))``        w_iq: 1x1 conv + instance norm
* Eq. 2  ``L_ik = w_ik(L)``                   w_ik: 1x1 conv over words
* Eq. 3  ``L_iv = w_iv(L)``                   w_iv: 1x1 conv over words
* Eq. 4  ``G'_i = softmax(V_iq^T L_ik / sqrt(C_i)) L_iv^T``   (padded words masked)
* Eq. 5  ``G_i = w_iw(unflatten(G'_i^T))``    w_iw: 1x1 conv + instance norm
* Eq. 6  ``V_im = w_im(V_i)``                 w_im: 1x1 conv + ReLU
* Eq. 7  ``F_i = w_io(V_im * G_i)``           w_io: 1x1 conv + ReLU ("*" element-wise)
* Eq. 8  ``S_i = gamma_i(F_i)``               gamma_i: 1x1 conv, ReLU, 1x1 conv, tanh
* Eq. 9  ``E_i = S_i * F_i + V_i``

``F_i`` feeds the mask predictor, ``E_i`` the next Swin stage (Fig. 2). The
released code uses GELU in w_im / w_io; this module follows the paper (ReLU).
Instance norms have no affine parameters (the paper names the norm only).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from svac.errors import ConfigError
from svac.heads.lavt.attention import check_word_mask, pixel_word_attention
from svac.heads.lavt.errors import LAVTInputError

_CONV_BY_RANK = {2: nn.Conv2d, 3: nn.Conv3d}


def check_language(words: Tensor, word_mask: Tensor, batch: int, language_dim: int) -> None:
    """Validate word features float ``(batch, L, language_dim)`` and their bool ``(batch, L)`` mask.

    Raises:
        LAVTInputError: wrong rank, batch size, channel count, dtype or mask.
    """
    if words.dim() != 3 or words.shape[0] != batch or words.shape[2] != language_dim:
        raise LAVTInputError(
            f"words must be float (B={batch}, L, C_l={language_dim}); got {tuple(words.shape)}"
        )
    if not torch.is_floating_point(words):
        raise LAVTInputError(f"words must be a float tensor; got {words.dtype}")
    check_word_mask(word_mask, batch, words.shape[1])


class PWAM(nn.Module):
    """Pixel-word attention module for 2D feature maps (LAVT Eqs. 1-7).

    Args:
        visual_dim: channels ``C_i`` of the stage's visual features.
        language_dim: channels ``C_l`` of the word features (BERT width).
        key_dim: channels of queries and keys; default ``C_i`` (as in the paper).
        value_dim: channels of the values; default ``C_i``.

    Submodules are named after the paper's projections: ``query_proj`` (w_iq),
    ``key_proj`` (w_ik), ``value_proj`` (w_iv), ``language_out_proj`` (w_iw),
    ``visual_proj`` (w_im), ``fusion_proj`` (w_io).
    """

    def __init__(self, visual_dim: int, language_dim: int, key_dim: int | None = None, value_dim: int | None = None):
        super().__init__()
        key_dim = visual_dim if key_dim is None else key_dim
        value_dim = visual_dim if value_dim is None else value_dim
        self.visual_dim = visual_dim
        self.language_dim = language_dim
        self.query_proj = nn.Sequential(nn.Conv2d(visual_dim, key_dim, kernel_size=1), nn.InstanceNorm2d(key_dim))
        self.key_proj = nn.Conv1d(language_dim, key_dim, kernel_size=1)
        self.value_proj = nn.Conv1d(language_dim, value_dim, kernel_size=1)
        self.language_out_proj = nn.Sequential(
            nn.Conv2d(value_dim, visual_dim, kernel_size=1), nn.InstanceNorm2d(visual_dim)
        )
        self.visual_proj = nn.Sequential(nn.Conv2d(visual_dim, visual_dim, kernel_size=1), nn.ReLU())
        self.fusion_proj = nn.Sequential(nn.Conv2d(visual_dim, visual_dim, kernel_size=1), nn.ReLU())

    def _check(self, visual: Tensor, words: Tensor, word_mask: Tensor) -> None:
        if visual.dim() != 4 or visual.shape[1] != self.visual_dim:
            raise LAVTInputError(
                f"visual must be float (B, C={self.visual_dim}, H, W); got {tuple(visual.shape)}"
            )
        check_language(words, word_mask, visual.shape[0], self.language_dim)

    def attend(self, visual: Tensor, words: Tensor, word_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Eqs. 1-5: pixel-specific language features and the attention weights.

        Args:
            visual: float ``(B, C_i, H, W)`` visual features ``V_i``.
            words: float ``(B, L, C_l)`` word features ``L`` (BERT last layer).
            word_mask: bool ``(B, L)``, ``False`` on padding.

        Returns:
            ``(G, A)``: float ``(B, C_i, H, W)`` language features ``G_i`` and
            float ``(B, H*W, L)`` attention weights (rows sum to 1, 0 on padding).

        Raises:
            LAVTInputError: malformed inputs.
        """
        self._check(visual, words, word_mask)
        batch, _, height, width = visual.shape
        words_by_channel = words.transpose(1, 2)  # (B, C_l, L): Conv1d runs over words
        v_q = self.query_proj(visual).flatten(2).transpose(1, 2)  # Eq. 1: (B, HW, C_k)
        l_k = self.key_proj(words_by_channel)  # Eq. 2: (B, C_k, L)
        l_v = self.value_proj(words_by_channel)  # Eq. 3: (B, C_v, L)
        g_prime, weights = pixel_word_attention(v_q, l_k, l_v, word_mask)  # Eq. 4: (B, HW, C_v)
        g_map = g_prime.transpose(1, 2).reshape(batch, -1, height, width)  # unflatten(G'^T)
        g = self.language_out_proj(g_map)  # Eq. 5: (B, C_i, H, W)
        return g, weights

    def forward(self, visual: Tensor, words: Tensor, word_mask: Tensor) -> Tensor:
        """Eqs. 1-7: multi-modal features ``F_i``.

        Args:
            visual: float ``(B, C_i, H, W)``.
            words: float ``(B, L, C_l)``.
            word_mask: bool ``(B, L)``.

        Returns:
            float ``(B, C_i, H, W)`` multi-modal features ``F_i`` (non-negative, ReLU).

        Raises:
            LAVTInputError: malformed inputs.
        """
        g, _ = self.attend(visual, words, word_mask)  # Eqs. 1-5
        v_m = self.visual_proj(visual)  # Eq. 6
        f = self.fusion_proj(v_m * g)  # Eq. 7
        return f


class LanguageGate(nn.Module):
    """Language gate of the language pathway (LAVT Eqs. 8-9), for 2D or 3D maps.

    ``S_i = tanh(conv2(ReLU(conv1(F_i))))`` (Eq. 8, 1x1 convs) and
    ``E_i = S_i * F_i + V_i`` (Eq. 9): the multi-modal features are gated
    element-wise and added to the stage's visual features.

    Args:
        dim: channels ``C_i``.
        spatial_dims: 2 for ``(B, C, H, W)`` maps, 3 for ``(B, C, T, H, W)``.
        zero_init: start with ``conv2`` at zero, so ``S_i = 0`` and ``E_i = V_i``
            (gradients still reach ``conv2``; not stated by the paper).

    Raises:
        svac.errors.ConfigError: ``spatial_dims`` other than 2 or 3.
    """

    def __init__(self, dim: int, spatial_dims: int = 2, zero_init: bool = True):
        super().__init__()
        if spatial_dims not in _CONV_BY_RANK:
            raise ConfigError(f"LanguageGate.spatial_dims must be 2 or 3; got {spatial_dims}")
        conv = _CONV_BY_RANK[spatial_dims]
        self.dim = dim
        self.spatial_dims = spatial_dims
        self.conv1 = conv(dim, dim, kernel_size=1)
        self.conv2 = conv(dim, dim, kernel_size=1)
        if zero_init:
            nn.init.zeros_(self.conv2.weight)
            nn.init.zeros_(self.conv2.bias)

    def gate(self, fused: Tensor) -> Tensor:
        """Eq. 8: the element-wise gate ``S_i`` in ``(-1, 1)``, same shape as ``fused``.

        Raises:
            LAVTInputError: wrong rank or channel count.
        """
        if fused.dim() != self.spatial_dims + 2 or fused.shape[1] != self.dim:
            raise LAVTInputError(
                f"LanguageGate expects a ({self.spatial_dims + 2})-D tensor with {self.dim} channels; "
                f"got {tuple(fused.shape)}"
            )
        return torch.tanh(self.conv2(torch.relu(self.conv1(fused))))

    def forward(self, fused: Tensor, visual: Tensor) -> Tensor:
        """Eq. 9: ``E_i = S_i * F_i + V_i``.

        Args:
            fused: float ``F_i``, ``(B, C_i, H, W)`` or ``(B, C_i, T, H, W)``.
            visual: float ``V_i``, same shape.

        Returns:
            float ``E_i``, same shape, the input of the next stage.

        Raises:
            LAVTInputError: shapes differ or are malformed.
        """
        if fused.shape != visual.shape:
            raise LAVTInputError(
                f"LanguageGate: fused {tuple(fused.shape)} and visual {tuple(visual.shape)} must match"
            )
        s = self.gate(fused)  # Eq. 8
        e = s * fused + visual  # Eq. 9
        return e
