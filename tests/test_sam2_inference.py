"""svac's inference subclasses of SAM-2's modules (:mod:`svac.grounding.sam2_inference`) against SAM-2's own modules.

The subclasses skip per-frame work whose result is known (prompt embeddings, positional
encodings, the first memory self-attention computed per chunk, unused hypernetworks, the
decoder's token self-attention). Tracking with them must give SAM-2's logits bit for bit, follow
weight changes, and change nothing outside ``torch.inference_mode``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from svac.grounding import sam2_inference as si
from svac.grounding.tracking import SVACTracker

OURS = (si.CachedPromptEncoder, si.SingleMaskDecoder, si.SkippableMLP, si.TokenSelfAttention,
        si.PrecomputedSelfAttentionLayer, si.SharedPositionEmbeddingSine)
FRAMES, CLIP = 12, 4


def _copy(tiny_model):
    """The tiny model's SAM-2, keeping the decoder's logits of absent objects (a random SAM-2 predicts none, and
    SAM-2 would replace every logit by one constant)."""
    sam = copy.deepcopy(tiny_model.grounding).eval()
    sam.keep_absent_object_logits = True
    return sam


def _sam2_classes(sam):
    """A copy of ``sam`` whose modules are SAM-2's own classes again (the unmodified path)."""
    ref = copy.deepcopy(sam)
    for module in ref.modules():
        if type(module) in OURS:
            module.__class__ = type(module).__bases__[0]
    assert not any(type(m) in OURS for m in ref.modules())
    return ref


def _track(sam, frames: torch.Tensor, prompts: torch.Tensor, grad_mode: str = "inference"):
    """Logits and object scores of SVAC's schedule on ``frames`` (clips of CLIP frames, one prompt row per clip)."""
    context = torch.inference_mode() if grad_mode == "inference" else torch.no_grad()
    with context:
        feats = sam.encode_frames(frames)
        tracker = SVACTracker(sam, lambda t: prompts[t // CLIP], conditioning_frames=range(0, FRAMES, CLIP),
                              num_frames=FRAMES)
        outs = [tracker.step(t, f) for t, f in enumerate(feats)]
    return (torch.cat([o.mask_logits for o in outs], dim=1).clone(),
            torch.cat([o.object_score_logits for o in outs], dim=1).clone())


@pytest.fixture(scope="module")
def inputs(tiny_model):
    g = torch.Generator().manual_seed(0)
    size = tiny_model.sam2_image_size
    frames = torch.randn(FRAMES, 3, size, size, generator=g)
    prompts = torch.randn(FRAMES // CLIP, 2, tiny_model.grounding.hidden_dim, generator=g)  # 2 objects, 3 clips
    return frames, prompts


def test_svac_builds_sam2_with_its_inference_subclasses(tiny_model):
    built = {type(m) for m in tiny_model.grounding.modules()}
    assert set(OURS) <= built, set(OURS) - built


def test_tracking_with_the_inference_subclasses_gives_sam2s_logits_bit_for_bit(tiny_model, inputs, monkeypatch):
    from sam2.modeling.sam.prompt_encoder import PromptEncoder

    frames, prompts = inputs
    sam = _copy(tiny_model)
    ref = _sam2_classes(sam)
    embedded = []
    original = PromptEncoder._embed_points
    monkeypatch.setattr(PromptEncoder, "_embed_points",
                        lambda self, *a, **k: embedded.append(1) or original(self, *a, **k))
    skipped = []
    sam.sam_mask_decoder.output_hypernetworks_mlps[1].register_forward_hook(
        lambda m, i, o: skipped.append(bool((o == 0).all())))

    ours = _track(sam, frames, prompts)
    ours_embedded = len(embedded)
    theirs = _track(ref, frames, prompts)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    assert ours[0].std() > 0 and ours[1].std() > 0  # real logits, not one constant
    # the work was skipped: one prompt embedding for the whole video, unused hypernetworks not run
    assert ours_embedded == 1 and len(embedded) - ours_embedded == FRAMES
    assert skipped == [True] * FRAMES
    # every frame after the first had its first-layer memory self-attention from the batch
    assert all(f.self_attention is not None for f in _encode(sam, frames))


def _encode(sam, frames):
    with torch.inference_mode():
        return sam.encode_frames(frames)


def test_inference_caches_follow_weight_changes(tiny_model, inputs):
    frames, prompts = inputs
    sam = _copy(tiny_model)
    ref = _sam2_classes(sam)
    before = _track(sam, frames, prompts)
    for model in (sam, ref):  # in place, as an optimiser step or load_state_dict would
        with torch.no_grad():
            model.sam_prompt_encoder.not_a_point_embed.weight.add_(0.5)
            model.sam_mask_decoder.transformer.layers[0].self_attn.q_proj.weight.mul_(1.5)
            model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.mul_(2.0)
    after, theirs = _track(sam, frames, prompts), _track(ref, frames, prompts)
    assert torch.equal(after[0], theirs[0]) and torch.equal(after[1], theirs[1])
    assert not torch.equal(after[0], before[0])


def test_outside_inference_mode_sam2s_own_code_runs(tiny_model, inputs):
    frames, prompts = inputs
    sam = _copy(tiny_model)
    with torch.no_grad():
        feats = sam.encode_frames(frames)
    assert all(f.self_attention is None for f in feats)  # nothing precomputed with autograd possible
    plain = _track(sam, frames, prompts, grad_mode="no_grad")
    assert torch.equal(plain[0], _track(sam, frames, prompts)[0])
