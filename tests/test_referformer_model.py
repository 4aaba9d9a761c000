"""ReferFormer on tiny configurations: shapes, gradients, frozen text encoder, input and config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from svac.errors import ConfigError
from svac.heads.referformer import (
    ReferFormer,
    ReferFormerConfig,
    ReferFormerCriterion,
    ReferFormerTarget,
    postprocess,
)

DAVIS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis16"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VOCAB = 100  # vocab_size of the tiny text encoder


@pytest.fixture
def davis_root() -> Path:
    if not (DAVIS / "JPEGImages" / "480p" / "blackswan").is_dir():
        pytest.fail(f"DAVIS-2016 test data missing: expected {DAVIS}/JPEGImages/480p/blackswan (see its README)")
    return DAVIS


def _inputs(b: int, t: int, h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(b, t, 3, h, w, generator=g)
    ids = torch.randint(3, VOCAB, (b, 6), generator=g)
    mask = torch.ones(b, 6, dtype=torch.long)
    mask[-1, 4:] = 0
    return frames, ids, mask


def _targets(b: int, t: int, h: int, w: int) -> list[ReferFormerTarget]:
    targets = []
    for video in range(b):
        masks = torch.zeros(t, h, w, dtype=torch.bool)
        masks[:, 8 + video : 30, 16:40] = True
        masks[-1] = False  # object leaves the last frame
        targets.append(ReferFormerTarget(masks))
    return targets


@pytest.mark.parametrize(
    "overrides, t",
    [
        ({}, 2),
        ({"backbone": "tiny_resnet"}, 2),
        ({"backbone": "tiny_video_swin"}, 3),
        ({"fusion": "spectral", "kernel": "conditional_patch", "loss": "multi_granularity"}, 2),
    ],
    ids=["swin", "resnet", "video_swin_odd_T", "sgmg"],
)
def test_forward_backward_shapes_and_gradients(overrides: dict, t: int) -> None:
    torch.manual_seed(0)
    cfg = ReferFormerConfig.tiny(**overrides)
    model = ReferFormer(cfg).train()
    b, h, w = 2, 64, 96
    frames, ids, mask = _inputs(b, t, h, w)
    output = model(frames, ids, mask)
    n = cfg.num_queries
    assert output.pred_logits.shape == (b, t, n, 1)
    assert output.pred_boxes.shape == (b, t, n, 4)
    assert output.pred_masks.shape == (b, t, n, h // 4, w // 4)
    assert output.mask_stride == 4 and output.input_size == (h, w)
    assert len(output.aux_outputs) == cfg.dec_layers - 1
    assert all(a.pred_masks.shape == output.pred_masks.shape for a in output.aux_outputs)
    assert ((output.pred_boxes > 0) & (output.pred_boxes < 1)).all()

    losses = ReferFormerCriterion(cfg)(output, _targets(b, t, h, w))
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    losses["loss"].backward()

    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    missing = [name for name, p in trainable if p.grad is None]
    assert not missing, f"trainable parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)
    nonzero = sum(int(torch.count_nonzero(p.grad) > 0) for _, p in trainable)
    assert nonzero > 0.8 * len(trainable)
    text_params = list(model.text_encoder.encoder.parameters())
    assert text_params and all(not p.requires_grad and p.grad is None for p in text_params)
    assert not model.text_encoder.encoder.training  # frozen encoder stays in eval mode
    assert any(p.grad is not None for p in model.text_encoder.project.parameters())


def test_conditional_patch_kernel_resolution_follows_patch_size() -> None:
    cfg = ReferFormerConfig.tiny(kernel="conditional_patch", cpk_patch_size=4, aux_loss=False, dec_layers=1)
    model = ReferFormer(cfg)
    frames, ids, mask = _inputs(1, 2, 64, 64)
    output = model(frames, ids, mask)
    assert output.mask_stride == 2 and output.pred_masks.shape == (1, 2, cfg.num_queries, 32, 32)
    assert output.aux_outputs == ()
    losses = ReferFormerCriterion(cfg)(output, _targets(1, 2, 64, 64))
    assert set(losses) == {"loss_class", "loss_bbox", "loss_giou", "loss_mask", "loss_dice", "loss"}


def test_predict_picks_best_frame_averaged_query_and_returns_input_size_masks() -> None:
    torch.manual_seed(1)
    cfg = ReferFormerConfig.tiny()
    model = ReferFormer(cfg).eval()
    frames, ids, mask = _inputs(2, 3, 64, 64, seed=4)
    prediction = model.predict(frames, ids, mask)
    output = model(frames, ids, mask, return_aux=False)
    expected_index = output.pred_logits[..., 0].sigmoid().mean(dim=1).argmax(dim=1)
    assert torch.equal(prediction.query_index, expected_index)
    assert prediction.masks.dtype == torch.bool and prediction.masks.shape == (2, 3, 64, 64)
    reference = postprocess(output)
    assert torch.equal(prediction.masks, reference.masks)
    torch.testing.assert_close(prediction.scores, reference.scores)
    assert prediction.boxes.shape == (2, 3, 4) and prediction.boxes_xyxy.shape == (2, 3, 4)


def test_input_errors_are_named() -> None:
    model = ReferFormer(ReferFormerConfig.tiny(aux_loss=False, dec_layers=1))
    frames, ids, mask = _inputs(1, 2, 64, 64)
    with pytest.raises(ConfigError, match="multiples of 32"):
        model(frames[..., :60], ids, mask)
    with pytest.raises(ConfigError, match="batch"):
        model(frames, ids.repeat(2, 1), mask.repeat(2, 1))
    with pytest.raises(ConfigError, match="at least one real token"):
        model(frames, ids, torch.zeros_like(mask))
    with pytest.raises(ConfigError, match="long"):
        model(frames, ids.float(), mask)
    with pytest.raises(ConfigError, match="aux_loss"):
        model(frames, ids, mask, return_aux=True)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fusion": "fourier"}, "fusion"),
        ({"hidden_dim": 48}, "multiple of 32"),
        ({"cpk_patch_size": 3}, "divide 8"),
        ({"granularity_scales": (2, 4)}, "containing 1"),
        ({"num_queries": 0}, "num_queries"),
        ({"backbone": "tiny_swin", "backbone_weights": "Swin_T_Weights.IMAGENET1K_V1"}, "no pretrained"),
        ({"fpn_reduction": (8, 4, 2)}, "fpn_reduction"),
    ],
)
def test_config_errors_are_named(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReferFormerConfig.tiny(**overrides)


def test_tiny_rejects_unknown_field_and_default_is_paper_sized() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        ReferFormerConfig.tiny(hidden=3)
    cfg = ReferFormerConfig()
    assert (cfg.hidden_dim, cfg.num_queries, cfg.enc_layers, cfg.dec_layers) == (256, 5, 4, 4)
    assert (cfg.class_weight, cfg.bbox_weight, cfg.giou_weight, cfg.dice_weight, cfg.mask_weight) == (2, 5, 2, 5, 2)
    assert cfg.fpn_reduction == (8, 4, 2, 1) and cfg.mask_stride == 4


def test_missing_backbone_weight_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    from svac.errors import CheckpointError
    from svac.heads.referformer.backbone import build_backbone

    with pytest.raises(CheckpointError, match="does not exist"):
        build_backbone(ReferFormerConfig(backbone="resnet50", backbone_weights=str(tmp_path / "missing.pth")))
    with pytest.raises(ConfigError, match="neither"):
        build_backbone(ReferFormerConfig(backbone="resnet50", backbone_weights="NotAWeight.X"))


def _davis_clip(root: Path, num_frames: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    images = sorted((root / "JPEGImages" / "480p" / "blackswan").glob("*.jpg"))[:num_frames]
    annotations = sorted((root / "Annotations" / "480p" / "blackswan").glob("*.png"))[:num_frames]
    frames = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in images])
    masks = torch.stack([torch.from_numpy(np.asarray(Image.open(p)) > 0) for p in annotations])
    frames = F.interpolate(frames.float() / 255, size=size, mode="bilinear", align_corners=False)
    frames = (frames - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    masks = F.interpolate(masks[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5
    return frames[None], masks


def test_a_few_steps_on_a_real_davis_clip_reduce_the_loss(davis_root: Path) -> None:
    torch.manual_seed(0)
    cfg = ReferFormerConfig.tiny(aux_loss=False)
    model = ReferFormer(cfg).train()
    criterion = ReferFormerCriterion(cfg)
    frames, masks = _davis_clip(davis_root, 2, (64, 64))
    ids = torch.tensor([[5, 17, 42, 9]])
    attention = torch.ones_like(ids)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    history = []
    for _ in range(8):
        losses = criterion(model(frames, ids, attention), [ReferFormerTarget(masks)])
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(float(losses["loss"].detach()))
    assert all(np.isfinite(history))
    assert history[-1] < 0.8 * history[0], history


def test_text_encoder_loads_a_local_checkpoint_frozen(tmp_path: Path) -> None:
    from transformers import RobertaConfig, RobertaModel

    from svac.errors import CheckpointError
    from svac.baseline_config import TINY_TEXT_CONFIG
    from svac.heads.referformer.text_encoder import FrozenTextEncoder

    torch.manual_seed(2)
    saved = RobertaModel(RobertaConfig(**TINY_TEXT_CONFIG), add_pooling_layer=False).eval()
    saved.save_pretrained(tmp_path / "roberta")
    cfg = ReferFormerConfig.tiny(text_encoder=str(tmp_path / "roberta"), text_encoder_init_config=None)
    encoder = FrozenTextEncoder(cfg)
    _, ids, mask = _inputs(2, 1, 32, 32)
    expected = saved(input_ids=ids, attention_mask=mask).last_hidden_state
    features = encoder(ids, mask)
    torch.testing.assert_close(features.words, encoder.project(expected))
    assert features.padding_mask.tolist() == (mask == 0).tolist()
    # sentence feature = masked mean of the projected words
    torch.testing.assert_close(features.sentence[1], features.words[1, :4].mean(dim=0))
    assert all(not p.requires_grad for p in encoder.encoder.parameters())
    with pytest.raises(CheckpointError, match="cannot load text encoder"):
        FrozenTextEncoder(ReferFormerConfig.tiny(text_encoder=str(tmp_path / "absent"), text_encoder_init_config=None))
