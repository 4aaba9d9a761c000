"""The LAVT model (image and video variants) end to end on tiny configurations.

``davis16`` (real DAVIS-2016 frames and masks) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from svac.config import from_dict
from svac.errors import CheckpointError, ConfigError
from svac.heads.lavt import LAVT, LAVTConfig, LAVTInputError, LAVTLoss, LAVTPrediction

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VOCAB = LAVTConfig.tiny().text_vocab_size
VARIANTS = ("image", "video")


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: the machine's two cores are shared, and oversubscribed torch threads stall."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _text(batch=2, length=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[-1, 4:] = 0  # the last expression has 4 words and 3 padding slots
    ids[-1, 4:] = 0
    return ids, mask


def _model(variant, seed=0, **overrides):
    torch.manual_seed(seed)
    return LAVT(LAVTConfig.tiny(variant, **overrides))


@pytest.mark.parametrize("variant", VARIANTS)
def test_forward_backward_shapes(variant):
    model = _model(variant)
    frames = torch.randn(2, 3, 3, 64, 96)
    ids, mask = _text()
    out = model(frames, ids, mask)
    assert out.logits.shape == (2, 3, 2, 16, 24)
    assert torch.isfinite(out.logits).all()
    masks = torch.zeros(2, 3, 64, 96, dtype=torch.bool)
    masks[:, :, 20:40, 30:60] = True
    loss = LAVTLoss(model.cfg)(out, masks)["loss"]
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    groups = {
        "text_encoder.": 0.0, "backbone.": 0.0, "fusions.": 0.0, "gates.": 0.0, "decoder.": 0.0,
    }
    for name, param in model.named_parameters():
        for prefix in groups:
            if name.startswith(prefix):
                groups[prefix] += param.grad.abs().sum().item()
    assert all(total > 0 for total in groups.values()), groups


@pytest.mark.parametrize("variant", VARIANTS)
def test_predict_masks_at_input_size(variant):
    model = _model(variant)
    model.train()
    frames = torch.randn(1, 2, 3, 48, 64)
    ids, mask = _text(batch=1)
    pred = model.predict(frames, ids, mask)
    assert isinstance(pred, LAVTPrediction)
    assert pred.masks.dtype == torch.bool and pred.masks.shape == (1, 2, 48, 64)
    assert pred.scores.shape == (1,) and 0.0 <= pred.scores.item() <= 1.0
    assert model.training  # mode restored
    model.eval()
    logits = model(frames, ids, mask).logits
    probs = torch.softmax(torch.nn.functional.interpolate(logits[0], size=(48, 64), mode="bilinear"), dim=1)[:, 1]
    assert torch.equal(pred.masks[0], probs > 0.5)
    with pytest.raises(LAVTInputError, match="threshold"):
        model.predict(frames, ids, mask, threshold=1.0)


def test_image_variant_treats_frames_independently():
    model = _model("image").eval()
    frames = torch.randn(1, 4, 3, 64, 64)
    ids, mask = _text(batch=1)
    changed = frames.clone()
    changed[0, 1] = torch.randn(3, 64, 64)
    with torch.no_grad():
        a = model(frames, ids, mask).logits
        b = model(changed, ids, mask).logits
    assert not torch.allclose(a[0, 1], b[0, 1])
    for t in (0, 2, 3):
        assert torch.allclose(a[0, t], b[0, t], atol=1e-6, rtol=0)


def test_video_variant_couples_frames():
    model = _model("video").eval()
    frames = torch.randn(1, 4, 3, 64, 64)
    ids, mask = _text(batch=1)
    changed = frames.clone()
    changed[0, 0] = torch.randn(3, 64, 64)
    with torch.no_grad():
        a = model(frames, ids, mask).logits
        b = model(changed, ids, mask).logits
    assert (a[0, 3] - b[0, 3]).abs().max().item() > 1e-4


@pytest.mark.parametrize("variant", VARIANTS)
def test_padded_tokens_do_not_change_the_output(variant):
    model = _model(variant).eval()
    frames = torch.randn(2, 2, 3, 64, 64)
    ids, mask = _text()
    other = ids.clone()
    other[-1, 4:] = torch.tensor([5, 9, 17])
    with torch.no_grad():
        a = model(frames, ids, mask).logits
        b = model(frames, other, mask).logits
    assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_frozen_text_encoder():
    model = _model("image", freeze_text_encoder=True)
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    model.train()
    assert not model.text_encoder.bert.training
    assert model.decoder.training
    frames = torch.randn(1, 1, 3, 64, 64)
    ids, mask = _text(batch=1)
    model(frames, ids, mask).logits.sum().backward()
    assert all(p.grad is None for p in model.text_encoder.parameters())
    assert LAVTConfig().freeze_text_encoder is False  # the paper fine-tunes BERT


def test_bad_inputs_are_rejected():
    model = _model("image")
    ids, mask = _text()
    with pytest.raises(LAVTInputError, match="multiples of 4"):
        model(torch.randn(2, 1, 3, 66, 64), ids, mask)
    with pytest.raises(LAVTInputError, match="at least"):
        model(torch.randn(2, 1, 3, 32, 64), ids, mask)
    with pytest.raises(LAVTInputError, match=r"\(B, T, 3, H, W\)"):
        model(torch.randn(2, 3, 64, 64), ids, mask)
    with pytest.raises(LAVTInputError, match="input_ids"):
        model(torch.randn(1, 1, 3, 64, 64), ids, mask)
    empty = mask.clone()
    empty[0] = 0
    with pytest.raises(LAVTInputError, match="at least one valid"):
        model(torch.randn(2, 1, 3, 64, 64), ids, empty)
    with pytest.raises(LAVTInputError, match="0/1"):
        model(torch.randn(2, 1, 3, 64, 64), ids, mask * 2)
    with pytest.raises(LAVTInputError, match="vocabulary|input_ids must lie"):
        model(torch.randn(2, 1, 3, 64, 64), ids + VOCAB, mask)


def test_config_validation_and_paper_shapes():
    image = LAVTConfig.paper("image")
    swin_b = (128, (2, 2, 18, 2), (4, 8, 16, 32), (7, 7))  # torchvision.models.swin_b
    assert (image.embed_dim, image.depths, image.num_heads, image.window_size) == swin_b
    video = LAVTConfig.paper("video")
    swin3d_t = (96, (2, 2, 6, 2), (3, 6, 12, 24), (8, 7, 7))  # torchvision swin3d_t
    assert (video.embed_dim, video.depths, video.num_heads, video.window_size) == swin3d_t
    assert video.patch_size == (1, 4, 4)
    # a mapping (a YAML section) goes through the config tree's one loader: lists become tuples, unknown keys refused
    assert from_dict(LAVTConfig, {"variant": "video", "pwam3d_kernels": [[3, 1, 1], [1, 3, 3]], "patch_size": [1, 4, 4],
                                  "window_size": [2, 7, 7]}).pwam3d_kernels == ((3, 1, 1), (1, 3, 3))
    with pytest.raises(ConfigError, match="unknown"):
        from_dict(LAVTConfig, {"varient": "image"})
    with pytest.raises(ConfigError, match="temporal patch"):
        LAVTConfig.tiny("video", patch_size=(2, 4, 4))
    with pytest.raises(ConfigError, match="window_size"):
        LAVTConfig.tiny("image", window_size=(2, 4, 4))
    with pytest.raises(ConfigError, match="divisible"):
        LAVTConfig.tiny("image", num_heads=(3, 1, 1, 1))
    with pytest.raises(ConfigError, match="odd"):
        LAVTConfig.tiny("video", pwam3d_kernels=((2, 3, 3),))
    assert from_dict(LAVTConfig, dataclasses.asdict(image)) == image


def test_image_backbone_loads_torchvision_state_dict(tmp_path):
    from torchvision.models import SwinTransformer

    cfg = LAVTConfig.tiny("image")
    torch.manual_seed(7)
    reference = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                window_size=[4, 4])
    path = tmp_path / "swin.pth"
    torch.save(reference.state_dict(), path)
    model = LAVT(LAVTConfig.tiny("image", backbone_weights=str(path)))
    for key, value in reference.features.state_dict().items():
        assert torch.equal(model.backbone.features.state_dict()[key], value), key
    bad = {k: v for k, v in reference.state_dict().items() if "features.1." not in k}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="lacks"):
        LAVT(LAVTConfig.tiny("image", backbone_weights=str(tmp_path / "bad.pth")))
    with pytest.raises(CheckpointError, match="not found"):
        LAVT(LAVTConfig.tiny("image", backbone_weights=str(tmp_path / "missing.pth")))
    assert cfg.backbone_weights is None


def test_video_backbone_folds_kinetics_temporal_patch(tmp_path):
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    torch.manual_seed(8)
    kinetics_like = SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=16, depths=[1, 1, 1, 1],
                                      num_heads=[1, 1, 1, 1], window_size=[2, 4, 4])
    path = tmp_path / "swin3d.pth"
    torch.save(kinetics_like.state_dict(), path)
    model = LAVT(LAVTConfig.tiny("video", backbone_weights=str(path)))
    frame = torch.randn(1, 3, 1, 32, 32)
    static_pair = frame.repeat(1, 1, 2, 1, 1)  # two identical frames
    with torch.no_grad():
        original = kinetics_like.patch_embed(static_pair)  # one temporal token
        ours = model.backbone.patch_embed(static_pair)  # one token per frame
    assert ours.shape[1] == 2 and original.shape[1] == 1
    for t in range(2):
        assert torch.allclose(ours[:, t], original[:, 0], atol=1e-5)


def _tokenize(text: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stand-in tokenizer for a random-vocabulary BERT: each word hashed to an id in [1, VOCAB)."""
    ids = [1 + zlib.crc32(word.encode()) % (VOCAB - 1) for word in text.lower().split()][:length]
    padded = ids + [0] * (length - len(ids))
    mask = [1] * len(ids) + [0] * (length - len(ids))
    return torch.tensor([padded]), torch.tensor([mask])


def _real_clip(root: Path, size=(64, 112), frames=("00000", "00010")):
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    images, masks = [], []
    for name in frames:
        rgb = Image.open(root / "JPEGImages/480p/blackswan" / f"{name}.jpg").convert("RGB")
        rgb = np.asarray(rgb.resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32) / 255.0
        images.append((torch.from_numpy(rgb).permute(2, 0, 1) - mean) / std)
        ann = Image.open(root / "Annotations/480p/blackswan" / f"{name}.png").resize((size[1], size[0]), Image.NEAREST)
        masks.append(torch.from_numpy(np.asarray(ann) > 0))
    return torch.stack(images)[None], torch.stack(masks)[None]


@pytest.mark.parametrize("variant", VARIANTS)
def test_overfits_a_real_davis_clip(davis16, variant):
    frames, masks = _real_clip(davis16)
    expression = json.loads((davis16 / "meta_expressions.json").read_text())["videos"]["blackswan"]["expressions"]["0"]
    ids, mask = _tokenize(expression["exp"], length=10)
    model = _model(variant, seed=1)
    loss_fn = LAVTLoss(model.cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    history = []
    for _ in range(40):
        loss = loss_fn(model(frames, ids, mask), masks)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    pred = model.predict(frames, ids, mask)
    inter = (pred.masks & masks).sum().item()
    union = (pred.masks | masks).sum().item()
    assert history[-1] < 0.5 * history[0], history
    assert inter / union > 0.5, (inter, union)
