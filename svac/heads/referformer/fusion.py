"""Cross-modal fusion before the deformable encoder: ReferFormer multiplication or SgMg spectral fusion.

``multiply`` — ReferFormer (Wu et al., CVPR 2022, §3.2 "Transformer encoder"):
the visual features of each level are multiplied with the text features. The
text features are brought to every pixel by attention from the pixel (query,
with its position encoding) to the words (keys and values); the fused map is
``X ⊙ A`` where ``A`` is that per-pixel text context.

``spectral`` — Spectrum-guided Cross-modal Fusion (SgMg, Miao et al., ICCV
2023, §3.2): the multimodal map is moved to the frequency domain with a real
2-D FFT, every frequency is scaled by a text-conditioned filter, and the
result comes back with the inverse real FFT, giving every pixel a global
(image-wide) interaction at the cost of an FFT. Our reading of the filter: a
real, zero-phase gain per channel and radial frequency band, ``K = 1 + g(f_s)``,
predicted from the sentence feature ``f_s`` by a linear layer initialised to
zero, so that SCF starts as the identity on ``X ⊙ A`` (i.e. as ReferFormer)
and ``irfft2(rfft2(x))`` returns ``x`` for the identity filter.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from svac.errors import ConfigError

from svac.baseline_config import ReferFormerConfig

#: Normalisation of the FFT pair (unitary, so the identity filter is an exact round trip).
FFT_NORM = "ortho"


class PixelWordAttention(nn.Module):
    """Attention from every pixel to the words: the per-pixel text context ``A``.

    Query = pixel feature + position encoding; keys = values = word features;
    padding tokens are masked out.
    """

    def __init__(self, dim: int, nheads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, words: torch.Tensor, word_padding: torch.Tensor
    ) -> torch.Tensor:
        """Return ``A``, float ``(N, C, h, w)``.

        Args:
            x: float ``(N, C, h, w)`` visual features (N = batch x frames).
            pos: float ``(C, h, w)`` or ``(N, C, h, w)`` position encoding.
            words: float ``(N, L, C)`` word features.
            word_padding: bool ``(N, L)``, True at padding tokens.
        """
        n, c, h, w = x.shape
        query = (x + pos).flatten(2).transpose(1, 2)
        context, _ = self.attn(query, words, words, key_padding_mask=word_padding, need_weights=False)
        return context.transpose(1, 2).reshape(n, c, h, w)


class MultiplicativeFusion(nn.Module):
    """ReferFormer's fusion: ``X ⊙ A`` with ``A`` the pixel-to-word attention context."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.text_context = PixelWordAttention(cfg.hidden_dim, cfg.nheads, cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        words: torch.Tensor,
        word_padding: torch.Tensor,
        sentence: torch.Tensor,
    ) -> torch.Tensor:
        """Fuse one level: ``x`` float ``(N, C, h, w)`` → float ``(N, C, h, w)`` (``sentence`` unused)."""
        return x * self.text_context(x, pos, words, word_padding)


def apply_spectral_filter(x: torch.Tensor, spectral_filter: torch.Tensor) -> torch.Tensor:
    """Filter a real map in the frequency domain: ``irfft2(rfft2(x) * K)``.

    Args:
        x: real float ``(..., h, w)``.
        spectral_filter: real or complex ``(..., h, w // 2 + 1)`` (broadcastable),
            one gain per frequency of the half spectrum of ``rfft2``.

    Returns:
        Real float ``(..., h, w)``, same dtype as ``x``. With ``K = 1`` the
        result equals ``x`` up to rounding (orthonormal FFT pair).

    Raises:
        ConfigError: complex ``x`` or a filter whose last two sizes do not fit.
    """
    if x.is_complex():
        raise ConfigError("apply_spectral_filter expects a real input map")
    height, width = x.shape[-2:]
    expected = (height, width // 2 + 1)
    if tuple(spectral_filter.shape[-2:]) != expected:
        raise ConfigError(f"spectral filter must end with {expected}, got {tuple(spectral_filter.shape[-2:])}")
    spectrum = torch.fft.rfft2(x, norm=FFT_NORM)
    return torch.fft.irfft2(spectrum * spectral_filter, s=(height, width), norm=FFT_NORM).to(x.dtype)


def radial_band_index(height: int, width: int, bands: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Band of every ``rfft2`` frequency, long ``(height, width // 2 + 1)`` in ``[0, bands)``.

    The radius ``sqrt(fx² + fy²)`` (cycles per pixel, at most ``sqrt(0.5)``) is
    split into ``bands`` equal intervals; band 0 holds the DC term.
    """
    fy = torch.fft.fftfreq(height, device=device)
    fx = torch.fft.rfftfreq(width, device=device)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / math.sqrt(0.5)
    return torch.clamp((radius * bands).long(), max=bands - 1)


class SpectralFusion(nn.Module):
    """SgMg Spectrum-guided Cross-modal Fusion: ``irfft2(rfft2(X ⊙ A) · (1 + g(f_s)))``.

    ``g`` maps the sentence feature to one real gain per channel and radial
    band (``cfg.spectral_bands``); it is zero-initialised so the module starts
    equal to :class:`MultiplicativeFusion` with the same attention weights.
    """

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.text_context = PixelWordAttention(cfg.hidden_dim, cfg.nheads, cfg.dropout)
        self.bands = cfg.spectral_bands
        self.band_gain = nn.Linear(cfg.hidden_dim, cfg.hidden_dim * cfg.spectral_bands)
        nn.init.zeros_(self.band_gain.weight)
        nn.init.zeros_(self.band_gain.bias)

    def spectral_filter(self, sentence: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Text-conditioned filter, real float ``(N, C, height, width // 2 + 1)`` from ``sentence`` ``(N, C)``."""
        n, c = sentence.shape
        gains = 1.0 + self.band_gain(sentence).view(n, c, self.bands)
        index = radial_band_index(height, width, self.bands, device=sentence.device)
        return gains[:, :, index]

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        words: torch.Tensor,
        word_padding: torch.Tensor,
        sentence: torch.Tensor,
    ) -> torch.Tensor:
        """Fuse one level: ``x`` float ``(N, C, h, w)``, ``sentence`` ``(N, C)`` → float ``(N, C, h, w)``."""
        fused = x * self.text_context(x, pos, words, word_padding)
        return apply_spectral_filter(fused, self.spectral_filter(sentence, x.shape[-2], x.shape[-1]))


def build_fusion(cfg: ReferFormerConfig) -> nn.Module:
    """The fusion module selected by ``cfg.fusion``."""
    return SpectralFusion(cfg) if cfg.fusion == "spectral" else MultiplicativeFusion(cfg)
