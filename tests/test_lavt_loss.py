"""LAVT losses: two-class Dice (TPAMI) and cross-entropy (CVPR 2022) on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from svac.errors import ConfigError
from svac.heads.lavt import LAVTConfig, LAVTInputError, LAVTLoss, LAVTOutput, two_class_dice_loss

CONFIDENT = 30.0  # logit margin giving probabilities within 1e-13 of 0/1


def _perfect_logits(masks: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W) bool -> (B, T, 2, H, W) logits that put ~all mass on the true class."""
    obj = masks.to(torch.float64) * 2 - 1
    return torch.stack([-CONFIDENT * obj, CONFIDENT * obj], dim=2)


def _masks() -> torch.Tensor:
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    masks[0, :, 2:6, 1:4] = True
    masks[1, 1, 0:3, 5:8] = True  # frames 0 and 2 of clip 1 are empty
    return masks


def test_dice_default_and_cross_entropy_option():
    assert LAVTConfig().loss == "dice"
    with pytest.raises(ConfigError):
        LAVTConfig(loss="focal")


def test_perfect_prediction_costs_zero_including_empty_frames():
    masks = _masks()
    out = LAVTOutput(logits=_perfect_logits(masks))
    for mode in ("dice", "ce", "ce+dice"):
        losses = LAVTLoss(LAVTConfig.tiny(loss=mode))(out, masks)
        assert losses["loss"].item() < 1e-9, mode


def test_inverted_prediction_costs_one_without_smoothing():
    masks = _masks()[:1]  # clip 0: every frame has object and background
    out = LAVTOutput(logits=_perfect_logits(~masks))
    loss = LAVTLoss(LAVTConfig.tiny(dice_smooth=0.0))(out, masks)["loss_dice"].item()
    assert abs(loss - 1.0) < 1e-9


def test_dice_hand_computed_value():
    # One frame of 2x2 pixels, one object pixel, logits 0 -> p = 0.5 for both classes.
    # object:     (2 * 0.5 * 1 + s) / (4 * 0.25 + 1 + s) = 2/3 with s = 1
    # background: (2 * 0.5 * 3 + s) / (4 * 0.25 + 3 + s) = 4/5
    # loss = 1 - (2/3 + 4/5) / 2 = 4/15
    masks = torch.tensor([[[[True, False], [False, False]]]])
    logits = torch.zeros(1, 1, 2, 2, 2, dtype=torch.float64)
    loss = LAVTLoss(LAVTConfig.tiny(dice_smooth=1.0))(LAVTOutput(logits=logits), masks)
    assert abs(loss["loss_dice"].item() - 4.0 / 15.0) < 1e-12
    assert set(loss) == {"loss", "loss_dice"}
    direct = two_class_dice_loss(logits[0], masks[0], smooth=1.0)
    assert abs(direct.item() - 4.0 / 15.0) < 1e-12


def test_cross_entropy_and_sum_hand_computed():
    masks = _masks()
    logits = torch.zeros(2, 3, 2, 8, 8, dtype=torch.float64)  # p = 0.5 everywhere
    cfg = LAVTConfig.tiny(loss="ce+dice", ce_weight=2.0, dice_weight=0.5, ce_class_weights=(0.9, 1.1))
    losses = LAVTLoss(cfg)(LAVTOutput(logits=logits), masks)
    assert abs(losses["loss_ce"].item() - math.log(2.0)) < 1e-12  # weighted mean of equal terms
    expected_total = 2.0 * losses["loss_ce"] + 0.5 * losses["loss_dice"]
    assert abs(losses["loss"].item() - expected_total.item()) < 1e-12


def test_logits_are_upsampled_to_mask_size():
    masks = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    masks[0, 0, :4] = True
    low = torch.zeros(1, 1, 2, 2, 2, dtype=torch.float64)
    low[:, :, 1] = 0.7  # constant logits upsample to the same constant
    full = torch.zeros(1, 1, 2, 8, 8, dtype=torch.float64)
    full[:, :, 1] = 0.7
    loss_fn = LAVTLoss(LAVTConfig.tiny(loss="ce+dice"))
    low_loss = loss_fn(LAVTOutput(logits=low), masks)
    full_loss = loss_fn(LAVTOutput(logits=full), masks)
    for key in ("loss", "loss_ce", "loss_dice"):
        assert abs(low_loss[key].item() - full_loss[key].item()) < 1e-12


def test_invalid_frames_are_left_out():
    masks = _masks()
    logits = torch.randn(2, 3, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    valid = torch.tensor([[True, False, True], [False, True, False]])
    loss_fn = LAVTLoss(LAVTConfig.tiny())
    subset = loss_fn(LAVTOutput(logits=logits[valid][None]), masks[valid][None])["loss"]
    with_valid = loss_fn(LAVTOutput(logits=logits), masks, valid=valid)["loss"]
    assert abs(subset.item() - with_valid.item()) < 1e-12
    none = loss_fn(LAVTOutput(logits=logits), masks, valid=torch.zeros(2, 3, dtype=torch.bool))
    assert none["loss"].item() == 0.0 and none["loss_dice"].item() == 0.0
    none["loss"].backward()
    assert logits.grad is not None


def test_bad_targets_are_rejected():
    loss_fn = LAVTLoss(LAVTConfig.tiny())
    out = LAVTOutput(logits=torch.zeros(1, 2, 2, 4, 4))
    with pytest.raises(LAVTInputError, match="bool"):
        loss_fn(out, torch.zeros(1, 2, 4, 4, dtype=torch.uint8))
    with pytest.raises(LAVTInputError, match=r"\(B, T\)"):
        loss_fn(out, torch.zeros(1, 3, 4, 4, dtype=torch.bool))
    with pytest.raises(LAVTInputError, match="valid"):
        loss_fn(out, torch.zeros(1, 2, 4, 4, dtype=torch.bool), valid=torch.ones(1, 2))
