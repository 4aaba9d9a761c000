"""[SEG] attention supervision (issue 18): the cells each [SEG] token is pulled to, the loss, and the objective."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from svac.astc import make_composite
from svac.errors import ConfigError
from svac.loading import build_from_config
from svac.training.config import LossConfig, load_train_config
from svac.training.data import ExampleBuilder, VideoExpressionDataset, collate
from svac.training.objective import SVACObjective
from svac.training.params import configure_trainable
from svac.training.seg_attention import example_seg_attention_terms, image_cell_coverage, seg_attention_loss


def _square(size, top, left, side):
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_anchor_cells_are_the_fraction_of_each_cell_the_target_covers():
    masks = torch.stack([_square(32, 0, 4, 4)] + [torch.zeros(32, 32, dtype=torch.bool)] * 2)
    cover = image_cell_coverage(masks, torch.tensor([0, 0, 0]), astc=True, grid=4)
    assert cover.shape == (2, 16)
    expected = np.zeros(16)
    expected[0] = 16 / 64  # cell (0, 0) spans rows and columns 0-7: the square covers 4 x 4 of its 8 x 8 pixels
    torch.testing.assert_close(cover[0], torch.tensor(expected, dtype=torch.float32))
    assert cover[1].sum() == 0


def test_composite_cells_follow_the_tiling_of_make_composite():
    """The composite's coverage equals the cell means of make_composite run on the masks as images."""
    size, grid = 32, 4
    rng = np.random.default_rng(0)
    frames = [_square(size, int(rng.integers(0, 24)), int(rng.integers(0, 24)), 8) for _ in range(4)]
    masks = torch.stack([torch.zeros(size, size, dtype=torch.bool), *frames])
    cover = image_cell_coverage(masks, torch.zeros(5, dtype=torch.long), astc=True, grid=grid)
    images = np.stack([np.repeat(f.numpy()[..., None] * 255, 3, axis=2).astype(np.uint8) for f in frames])
    composite = make_composite(images, size, size)[..., 0].astype(np.float64) / 255
    reference = composite.reshape(grid, size // grid, grid, size // grid).mean(axis=(1, 3)).reshape(-1)
    np.testing.assert_allclose(cover[1].numpy(), reference, atol=0.03)
    assert cover[1].sum() > 0


def test_frames_mode_has_one_image_per_sampled_frame():
    masks = torch.stack([_square(16, 0, 0, 8), _square(16, 8, 8, 8)])
    cover = image_cell_coverage(masks, torch.tensor([0, 1]), astc=False, grid=2)
    torch.testing.assert_close(cover, torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 1.0]]))
    with pytest.raises(ValueError, match="masks"):
        image_cell_coverage(masks, torch.tensor([0]), astc=False, grid=2)


def test_loss_is_zero_on_the_target_and_log_of_the_spread_when_uniform():
    weights = torch.tensor([0.0, 0.5, 1.0, 0.0])
    on = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    assert seg_attention_loss(on, weights).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((2, 4), 0.25)
    assert seg_attention_loss(uniform, weights).item() == pytest.approx(-math.log(1.5 / 4))
    # the token's attention elsewhere (text tokens) does not count: only the share among the keys does
    assert seg_attention_loss(uniform * 0.1, weights).item() == pytest.approx(-math.log(1.5 / 4), rel=1e-5)
    off = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert seg_attention_loss(off, weights).item() > 10
    with pytest.raises(ValueError, match="covers none"):
        seg_attention_loss(uniform, torch.zeros(4))
    with pytest.raises(ValueError, match="disagree"):
        seg_attention_loss(uniform, torch.ones(3))


def test_each_seg_token_is_scored_on_its_own_clips_images():
    """CSA: token k * num_clips + c looks at clip c's images and expression k's cells."""
    per_image, length = 2, 12
    image_positions = torch.arange(8)            # 4 images (2 clips x anchor, composite) x 2 tokens
    coverage = torch.zeros(2, 4, per_image)       # expression 1 covers token 1 of clip 1's anchor only
    coverage[1, 2, 1] = 1.0
    coverage[0, 0, 0] = coverage[0, 2, 0] = 1.0
    attention = torch.zeros(1, 1, length, length)
    attention[0, 0, 10, 5] = 1.0                  # clip 0 of expression 1 (no target there: not scored)
    attention[0, 0, 11, 0] = 1.0                  # clip 1 of expression 1 looks at clip 0's anchor: not its key
    seg_positions = [torch.tensor([8, 9]), torch.tensor([10, 11])]
    terms = example_seg_attention_terms([attention, attention], [0, 0], seg_positions,
                                        [image_positions, image_positions], coverage, [0, 0, 1, 1], per_clip=True)
    # scored: positions 8 and 9 (expression 0, clips 0 and 1) and 11 (expression 1, clip 1), at both layers;
    # none of them attends to its own keys, so each is at the floor
    assert len(terms) == 3 * 2
    assert all(t.item() == pytest.approx(-math.log(1e-6)) for t in terms)
    attention[0, 0, 11, 0], attention[0, 0, 11, 5] = 0.0, 1.0
    terms = example_seg_attention_terms([attention], [0, 0], seg_positions, [image_positions, image_positions],
                                        coverage, [0, 0, 1, 1], per_clip=True)
    assert terms[-1].item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="SEG"):
        example_seg_attention_terms([attention], [0], [torch.tensor([8])], [image_positions], coverage,
                                    [0, 0, 1, 1], per_clip=True)


# ---------------------------------------------------------------- in the objective


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=4, seed=3, num_frames=(12, 14), size=(64, 64), progress=False)
    return root


def _batch(model, root):
    from svac.data.readers import load_dataset

    samples = list(load_dataset(f"rvos:{root}", "train"))
    ds = VideoExpressionDataset(samples, ExampleBuilder.for_model(model), expressions_per_video=2, seed=0)
    return collate([ds[0], ds[1]], model.tokenizer.pad_token_id)


def _target_mass(model, batch, objective):
    """Mean share of each supervised [SEG]'s last-layer attention (among its keys) on its target's cells."""
    with torch.no_grad():
        return math.exp(-objective(batch).seg_attention.item())


def test_seg_attention_trains_the_llm_to_look_at_the_target(tiny_config, synth_root):
    small = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))
    torch.manual_seed(0)
    model = build_from_config(small).train()
    configure_trainable(model, ["llm"])
    batch = _batch(model, synth_root)
    objective = SVACObjective(model, LossConfig(ce=0.0, bce=0.0, dice=0.0, presence=0.0, seg_attention=1.0))
    out = objective(batch)
    assert out.seg_attention > 0 and out.loss.item() == pytest.approx(out.seg_attention.item())
    out.loss.backward()
    q = model.mllm.model.language_model.layers[-1].self_attn.q_proj.weight
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert model.mllm.config.text_config._attn_implementation != "eager"  # restored after the pass
    before = _target_mass(model, batch, objective)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(15):
        optimizer.zero_grad()
        objective(batch).loss.backward()
        optimizer.step()
    assert _target_mass(model, batch, objective) > 2 * before
    off = SVACObjective(model, LossConfig())(batch)
    assert off.seg_attention.item() == 0.0


def test_phrase_end_query_supervises_the_closing_marker_before_each_seg(tiny_config, synth_root):
    from svac.mllm.tokenizer import token_id
    from svac.mllm.tokens import PHRASE_END

    small = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))
    model = build_from_config(small)
    batch = _batch(model, synth_root)
    objective = SVACObjective(model, LossConfig(seg_attention=1.0, seg_attention_query="phrase_end"))
    queries = objective._attention_queries(batch, 0)
    segs = objective._answer_seg_positions(batch, 0)
    assert len(queries) == len(segs) and (queries < segs).all()
    assert (batch.input_ids[0, queries] == token_id(model.tokenizer, PHRASE_END)).all()
    seg_only = SVACObjective(model, LossConfig(seg_attention=1.0))
    with torch.no_grad():
        assert objective(batch).seg_attention.item() != seg_only(batch).seg_attention.item()


def test_seg_attention_layers_are_checked(tiny_config):
    model = build_from_config(tiny_config)
    with pytest.raises(ConfigError, match="seg_attention_layers"):
        SVACObjective(model, LossConfig(seg_attention=1.0, seg_attention_layers=(5,)))
    with pytest.raises(ConfigError, match="seg_attention"):
        load_train_config("train/svac_default_3_video.yaml", ["loss.seg_attention=-1.0"])
    with pytest.raises(ConfigError, match="seg_attention_layers"):
        LossConfig(seg_attention_layers=())
    for term in ("seg_attention", "prompt_contrast", "prompt_separation"):
        with pytest.raises(ConfigError, match=f"loss.{term} .*objective: corrections does not run"):
            load_train_config("train/svac_default_4_clicks.yaml", [f"loss.{term}=1.0"])
    assert load_train_config("train/svac_default_3_video.yaml", ["loss.seg_attention=1.0",
                                                                 "loss.seg_attention_layers=[0,-1]"]
                             ).loss.seg_attention_layers == (0, -1)
