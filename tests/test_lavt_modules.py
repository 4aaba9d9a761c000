"""LAVT building blocks checked against the paper's equations written directly.

PWAM: LAVT (CVPR 2022) Eqs. 1-7; language gate: Eqs. 8-9; video 3D PWAM: the
3D counterparts documented in ``svac/heads/lavt/pwam3d.py``. Each reference
below is written with plain tensor ops (einsum for 1x1 convolutions, a
hand-written instance norm, an explicit masked softmax) from the module's
weights, independent of the module's own code path.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from svac.errors import ConfigError
from svac.heads.lavt import PWAM, PWAM3D, LanguageGate, LAVTInputError, MultiScaleConv3d, pixel_word_attention

TOL = 1e-6
IN_EPS = 1e-5  # torch's InstanceNorm default epsilon


def _instance_norm(x: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-channel normalisation over all positions (biased variance)."""
    dims = tuple(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    return (x - mean) / torch.sqrt(var + IN_EPS)


def _conv1x1(x: torch.Tensor, conv: torch.nn.Module) -> torch.Tensor:
    """A 1x1 convolution as a channel matrix product: y[b,o,...] = sum_c W[o,c] x[b,c,...] + bias[o]."""
    weight = conv.weight.reshape(conv.weight.shape[0], conv.weight.shape[1])
    y = torch.einsum("oc,bc...->bo...", weight, x)
    return y + conv.bias.reshape(1, -1, *([1] * (x.dim() - 2)))


def _masked_attention(query, key, value, mask):
    """Eq. 4 by hand: query (B, N, C), key (B, C, L), value (B, C_v, L), mask bool (B, L)."""
    scores = torch.einsum("bnc,bcl->bnl", query, key) / math.sqrt(query.shape[-1])
    scores = torch.where(mask[:, None, :], scores, torch.full_like(scores, -math.inf))
    weights = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    return torch.einsum("bnl,bvl->bnv", weights, value), weights


def _language(batch=2, words=6, dim=12, generator=None):
    lang = torch.randn(batch, words, dim, generator=generator, dtype=torch.float64)
    mask = torch.ones(batch, words, dtype=torch.bool)
    mask[1, 3:] = False  # second expression has 3 words, 3 padding slots
    return lang, mask


def test_pwam_equals_equations_1_to_7():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    module = PWAM(visual_dim=8, language_dim=12, key_dim=6, value_dim=10).double()
    visual = torch.randn(2, 8, 5, 7, generator=gen, dtype=torch.float64)
    lang, mask = _language(generator=gen)

    v_iq = _instance_norm(_conv1x1(visual, module.query_proj[0])).flatten(2)  # Eq. 1: (B, C_k, HW)
    l_ik = _conv1x1(lang.transpose(1, 2), module.key_proj)  # Eq. 2: (B, C_k, L)
    l_iv = _conv1x1(lang.transpose(1, 2), module.value_proj)  # Eq. 3: (B, C_v, L)
    g_prime, weights = _masked_attention(v_iq.transpose(1, 2), l_ik, l_iv, mask)  # Eq. 4
    g_i = _instance_norm(_conv1x1(g_prime.transpose(1, 2).reshape(2, 10, 5, 7), module.language_out_proj[0]))  # Eq. 5
    v_im = torch.relu(_conv1x1(visual, module.visual_proj[0]))  # Eq. 6
    f_i = torch.relu(_conv1x1(v_im * g_i, module.fusion_proj[0]))  # Eq. 7

    got = module(visual, lang, mask)
    assert got.shape == (2, 8, 5, 7)
    assert (got - f_i).abs().max().item() < TOL
    got_g, got_weights = module.attend(visual, lang, mask)
    assert (got_g - g_i).abs().max().item() < TOL
    assert (got_weights - weights).abs().max().item() < TOL
    assert f_i.abs().max().item() > 0.1  # the comparison is not between two zero tensors


def test_masked_words_get_zero_weight_and_do_not_matter():
    torch.manual_seed(1)
    module = PWAM(visual_dim=8, language_dim=12).double()
    visual = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    lang, mask = _language()
    _, weights = module.attend(visual, lang, mask)
    assert torch.all(weights[1, :, 3:] == 0.0)
    assert torch.all(weights[1, :, :3] > 0.0)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 16, dtype=torch.float64))
    changed = lang.clone()
    changed[1, 3:] = 1e3 * torch.randn(3, 12, dtype=torch.float64)  # garbage in padded slots
    assert torch.equal(module(visual, lang, mask)[1], module(visual, changed, mask)[1])


def test_attention_rejects_expression_without_words():
    query = torch.randn(1, 4, 3)
    key = torch.randn(1, 3, 5)
    value = torch.randn(1, 2, 5)
    with pytest.raises(LAVTInputError, match="at least one valid"):
        pixel_word_attention(query, key, value, torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(LAVTInputError, match="torch.bool"):
        pixel_word_attention(query, key, value, torch.ones(1, 5, dtype=torch.long))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_language_gate_equals_equations_8_and_9(spatial_dims):
    torch.manual_seed(2)
    gate = LanguageGate(dim=6, spatial_dims=spatial_dims).double()
    torch.nn.init.normal_(gate.conv2.weight)  # leave the zero init so the check is not trivial
    torch.nn.init.normal_(gate.conv2.bias)
    shape = (2, 6, 4, 5) if spatial_dims == 2 else (2, 6, 3, 4, 5)
    fused = torch.randn(*shape, dtype=torch.float64)
    visual = torch.randn(*shape, dtype=torch.float64)

    s_i = torch.tanh(_conv1x1(torch.relu(_conv1x1(fused, gate.conv1)), gate.conv2))  # Eq. 8
    e_i = s_i * fused + visual  # Eq. 9

    assert (gate.gate(fused) - s_i).abs().max().item() < TOL
    assert (gate(fused, visual) - e_i).abs().max().item() < TOL
    assert (s_i * fused).abs().max().item() > 0.1


def test_language_gate_zero_init_passes_visual_features_and_still_learns():
    gate = LanguageGate(dim=4, spatial_dims=2, zero_init=True)
    fused = torch.randn(1, 4, 3, 3)
    visual = torch.randn(1, 4, 3, 3)
    out = gate(fused, visual)
    assert torch.equal(out, visual)
    (out * torch.randn_like(out)).sum().backward()
    assert gate.conv2.weight.grad.abs().sum().item() > 0.0
    with pytest.raises(ConfigError):
        LanguageGate(dim=4, spatial_dims=1)


def _branch_conv(x, branch):
    conv = branch[0]
    return F.conv3d(x, conv.weight, conv.bias, padding=conv.padding)


def test_pwam3d_equals_3d_equations():
    torch.manual_seed(3)
    module = PWAM3D(visual_dim=6, language_dim=12, kernels=((3, 3, 3), (1, 1, 1))).double()
    visual = torch.randn(2, 6, 4, 5, 5, dtype=torch.float64)
    lang, mask = _language()

    def parallel(x, proj, post):
        return sum(post(_branch_conv(x, branch)) for branch in proj.branches)

    v_q = parallel(visual, module.query_proj, _instance_norm).flatten(2)  # Eq. 1 (3D)
    l_k = _conv1x1(lang.transpose(1, 2), module.key_proj)  # Eq. 2
    l_v = _conv1x1(lang.transpose(1, 2), module.value_proj)  # Eq. 3
    g_prime, _ = _masked_attention(v_q.transpose(1, 2), l_k, l_v, mask)  # Eq. 4 over T*H*W
    g = parallel(g_prime.transpose(1, 2).reshape(2, 6, 4, 5, 5), module.language_out_proj, _instance_norm)  # Eq. 5
    v_m = parallel(visual, module.visual_proj, torch.relu)  # Eq. 6 (3D)
    f = parallel(v_m * g, module.fusion_proj, torch.relu)  # Eq. 7 (3D)

    got = module(visual, lang, mask)
    assert got.shape == (2, 6, 4, 5, 5)
    assert (got - f).abs().max().item() < TOL
    assert f.abs().max().item() > 0.1


def test_multiscale_conv3d_temporal_reach_is_its_temporal_kernel():
    torch.manual_seed(4)
    layer = MultiScaleConv3d(3, 4, kernels=((3, 3, 3), (1, 1, 1)), post="relu").double()
    x = torch.randn(1, 3, 8, 6, 6, dtype=torch.float64)
    y = x.clone()
    y[:, :, 4] += torch.randn(3, 6, 6, dtype=torch.float64)
    change = (layer(x) - layer(y)).abs().sum(dim=(0, 1, 3, 4))  # per frame
    assert torch.all(change[[3, 4, 5]] > 0)
    assert torch.all(change[[0, 1, 2, 6, 7]] == 0)
    with pytest.raises(ConfigError):
        MultiScaleConv3d(3, 4, kernels=((2, 3, 3),), post="relu")
    with pytest.raises(ConfigError):
        MultiScaleConv3d(3, 4, kernels=((3, 3, 3),), post="gelu")


def _zero_temporal_taps(module: PWAM3D) -> None:
    """Keep only the centre frame of every 3D kernel (temporal extent becomes 1)."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv3d) and layer.kernel_size[0] > 1:
                centre = layer.kernel_size[0] // 2
                keep = torch.zeros_like(layer.weight)
                keep[:, :, centre] = 1.0
                layer.weight.mul_(keep)


def _permutation_error(module: PWAM3D, visual, lang, mask, order) -> float:
    return (module(visual[:, :, order], lang, mask) - module(visual, lang, mask)[:, :, order]).abs().max().item()


def test_pwam3d_mixes_frames_only_through_temporal_convolutions():
    """Without temporal taps the 3D PWAM treats the clip as an unordered set of frames.

    Attention (Eq. 4), point-wise convs and clip-level instance norm commute
    with a permutation of the frames; the temporal taps of the 3D kernels are
    the only order-aware part, so with them the output is not equivariant and
    without them it is (to rounding).
    """
    torch.manual_seed(5)
    module = PWAM3D(visual_dim=6, language_dim=12).double()
    visual = torch.randn(2, 6, 5, 4, 4, dtype=torch.float64)
    lang, mask = _language()
    order = torch.tensor([3, 0, 4, 1, 2])
    assert _permutation_error(module, visual, lang, mask, order) > 1e-3
    _zero_temporal_taps(module)
    assert _permutation_error(module, visual, lang, mask, order) < TOL


def test_pwam_rejects_bad_shapes():
    module = PWAM(visual_dim=8, language_dim=12)
    lang, mask = _language()
    lang = lang.float()
    with pytest.raises(LAVTInputError, match="visual"):
        module(torch.randn(2, 7, 4, 4), lang, mask)
    with pytest.raises(LAVTInputError, match="words"):
        module(torch.randn(2, 8, 4, 4), lang[:, :, :5], mask)
    with pytest.raises(LAVTInputError, match="word_mask"):
        module(torch.randn(2, 8, 4, 4), lang, mask[:, :4])
    with pytest.raises(LAVTInputError, match="visual"):
        PWAM3D(8, 12)(torch.randn(2, 8, 4, 4), lang, mask)
