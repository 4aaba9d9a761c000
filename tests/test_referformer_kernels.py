"""Mask kernels and fusion of the ReferFormer head checked against explicit computations.

* dynamic convolution (ReferFormer §3.4) == one explicit ``F.conv2d`` stack per instance;
* conditional patch kernel (SgMg CPK) == explicit convs + pixel shuffle;
* spectral fusion (SgMg SCF) is real-valued, and rfft2/irfft2 with the identity filter is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from svac.heads.referformer import ReferFormerConfig
from svac.heads.referformer.fusion import (
    MultiplicativeFusion,
    SpectralFusion,
    apply_spectral_filter,
    radial_band_index,
)
from svac.heads.referformer.kernels import ConditionalPatchKernel, DynamicMaskHead
from svac.heads.referformer.position import sine_position_encoding


def _explicit_stack(inputs: torch.Tensor, params: torch.Tensor, channels: list[int]) -> torch.Tensor:
    """Run 1x1 convs from flat params laid out as [all weights (row-major out x in), then all biases]."""
    pairs = list(zip(channels[1:], channels[:-1]))
    offset = 0
    weights = []
    for out_ch, in_ch in pairs:
        weights.append(params[offset : offset + out_ch * in_ch].reshape(out_ch, in_ch, 1, 1))
        offset += out_ch * in_ch
    biases = []
    for out_ch, _ in pairs:
        biases.append(params[offset : offset + out_ch])
        offset += out_ch
    assert offset == params.numel()
    x = inputs[None]
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        x = F.conv2d(x, weight, bias)
        if index < len(weights) - 1:
            x = F.relu(x)
    return x[0]


def _coords(center: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Relative coordinates (2, h, w) of pixel centres to a normalized centre, written out explicitly."""
    out = torch.empty(2, height, width)
    for y in range(height):
        for x in range(width):
            out[0, y, x] = (x + 0.5) / width - center[0]
            out[1, y, x] = (y + 0.5) / height - center[1]
    return out


def test_dynamic_conv_equals_explicit_per_instance_conv2d() -> None:
    torch.manual_seed(0)
    cfg = ReferFormerConfig.tiny()
    head = DynamicMaskHead(cfg)
    frames, queries, height, width = 2, 3, 5, 7
    hidden = torch.randn(frames, queries, cfg.hidden_dim)
    features = torch.randn(frames, cfg.mask_dim, height, width)
    centers = torch.rand(frames, queries, 2)
    out = head(hidden, features, centers)
    assert out.shape == (frames, queries, height, width)
    channels = [cfg.mask_dim + 2] + [cfg.dynamic_conv_channels] * (cfg.dynamic_conv_layers - 1) + [1]
    params = head.controller(hidden)
    expected_params = sum(o * i + o for o, i in zip(channels[1:], channels[:-1]))
    assert params.shape[-1] == expected_params == 169  # 3 layers, 8 channels, 8+2 inputs (ReferFormer)
    for f in range(frames):
        for q in range(queries):
            inputs = torch.cat([features[f], _coords(centers[f, q], height, width)], dim=0)
            reference = _explicit_stack(inputs, params[f, q], channels)[0]
            torch.testing.assert_close(out[f, q], reference, rtol=1e-5, atol=1e-5)


def test_conditional_patch_kernel_equals_explicit_convs_and_pixel_shuffle() -> None:
    torch.manual_seed(1)
    cfg = ReferFormerConfig.tiny(kernel="conditional_patch", cpk_patch_size=2)
    cpk = ConditionalPatchKernel(cfg)
    p = cfg.cpk_patch_size
    frames, queries, height, width = 2, 2, 3, 4
    hidden = torch.randn(frames, queries, cfg.hidden_dim)
    features = torch.randn(frames, cfg.mask_dim, height, width)
    centers = torch.rand(frames, queries, 2)
    out = cpk(hidden, features, centers)
    assert out.shape == (frames, queries, height * p, width * p)
    channels = [cfg.mask_dim + 2, cfg.dynamic_conv_channels, p * p]
    params = cpk.controller(hidden)
    for f in range(frames):
        for q in range(queries):
            inputs = torch.cat([features[f], _coords(centers[f, q], height, width)], dim=0)
            patches = _explicit_stack(inputs, params[f, q], channels)  # (p*p, h, w)
            torch.testing.assert_close(out[f, q], F.pixel_shuffle(patches[None], p)[0, 0], rtol=1e-5, atol=1e-5)
            # pixel shuffle semantics: channel i*p + j of low-res pixel (y, x) lands at (y*p + i, x*p + j)
            for y in range(height):
                for x in range(width):
                    for i in range(p):
                        for j in range(p):
                            torch.testing.assert_close(
                                out[f, q, y * p + i, x * p + j], patches[i * p + j, y, x], rtol=1e-5, atol=1e-5
                            )


def test_spectral_filter_identity_round_trip_is_exact_and_real() -> None:
    torch.manual_seed(2)
    for height, width in [(8, 8), (5, 7), (6, 9)]:
        x = torch.randn(2, 3, height, width, dtype=torch.float64)
        identity = torch.ones(height, width // 2 + 1, dtype=torch.float64)
        y = apply_spectral_filter(x, identity)
        assert not y.is_complex() and y.dtype == x.dtype and y.shape == x.shape
        torch.testing.assert_close(y, x, rtol=0, atol=1e-12)


def test_spectral_filter_acts_in_frequency_domain() -> None:
    # a filter that keeps only the DC term returns the per-channel spatial mean everywhere
    torch.manual_seed(3)
    x = torch.randn(1, 2, 6, 8, dtype=torch.float64)
    dc_only = torch.zeros(6, 8 // 2 + 1, dtype=torch.float64)
    dc_only[0, 0] = 1.0
    y = apply_spectral_filter(x, dc_only)
    torch.testing.assert_close(y, x.mean(dim=(-2, -1), keepdim=True).expand_as(x), rtol=0, atol=1e-12)


def test_radial_bands_cover_spectrum_with_dc_in_band_zero() -> None:
    bands = radial_band_index(8, 10, 4)
    assert bands.shape == (8, 10 // 2 + 1)
    assert int(bands[0, 0]) == 0
    assert int(bands.max()) == 3  # the Nyquist corner reaches the last band
    assert set(bands.unique().tolist()) == {0, 1, 2, 3}


def test_spectral_fusion_is_real_and_starts_equal_to_multiplication() -> None:
    torch.manual_seed(4)
    cfg = ReferFormerConfig.tiny(fusion="spectral")
    spectral = SpectralFusion(cfg)
    multiply = MultiplicativeFusion(cfg)
    multiply.text_context.load_state_dict(spectral.text_context.state_dict())
    n, c, h, w, length = 3, cfg.hidden_dim, 6, 10, 5
    x = torch.randn(n, c, h, w)
    pos = sine_position_encoding(h, w, c)
    words = torch.randn(n, length, c)
    padding = torch.zeros(n, length, dtype=torch.bool)
    padding[1, 3:] = True
    sentence = torch.randn(n, c)
    out = spectral(x, pos, words, padding, sentence)
    assert out.dtype == torch.float32 and not out.is_complex() and out.shape == x.shape
    torch.testing.assert_close(out, multiply(x, pos, words, padding, sentence), rtol=1e-5, atol=1e-5)
    # with non-zero text-conditioned gains the two differ, and depend on the sentence
    torch.nn.init.normal_(spectral.band_gain.weight, std=0.1)
    out_a = spectral(x, pos, words, padding, sentence)
    out_b = spectral(x, pos, words, padding, sentence.flip(0))
    assert not torch.allclose(out_a, multiply(x, pos, words, padding, sentence), atol=1e-4)
    assert not torch.allclose(out_a, out_b, atol=1e-4)
    out_a.sum().backward()
    assert spectral.band_gain.weight.grad is not None and torch.isfinite(spectral.band_gain.weight.grad).all()
