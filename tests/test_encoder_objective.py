"""Object-attribute pretraining of SAM-2's image encoder (``objective: encoder_pretraining``), tiny and on the CPU."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch

from svac.config import from_dict
from svac.errors import ConfigError
from svac.loading import build_from_config
from svac.training.config import EncoderPretrainingConfig, TrainConfig, load_train_config
from svac.training.data import ExampleBuilder, collate
from svac.training.encoder_objective import (EncoderPretrainingObjective, FrozenEncoder, decoder_levels,
                                             distillation, mask_pooled)
from svac.training.params import configure_trainable

finetune = importlib.import_module("svac.recipes.finetune")
SHAPES = ["circle", "square", "triangle", "star"]
TRAINABLE = ["sam2_image_encoder", "sam2_high_res_convs"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=4, seed=3, num_frames=(12, 12), size=(64, 64), progress=False)
    return root


@pytest.fixture(scope="module")
def samples(synth_root):
    from svac.data.readers import load_dataset

    return list(load_dataset(f"rvos:{synth_root}", "train"))


def _batch(model, samples, videos=2):
    builder = ExampleBuilder.for_model(model, frames="single_frame")
    by_video: dict[str, list] = {}
    for s in samples:
        by_video.setdefault(s.video_id, []).append(s)
    rng = np.random.default_rng(0)
    examples = [builder.build(group, rng) for group in list(by_video.values())[:videos]]
    return collate(examples, model.tokenizer.pad_token_id)


def _objective(tiny_config, **options):
    model = build_from_config(tiny_config).train()
    configure_trainable(model, TRAINABLE)
    return EncoderPretrainingObjective(model, EncoderPretrainingConfig(categories=SHAPES, **options))


def test_the_reader_gives_each_single_object_expression_its_category(samples, synth_root):
    import json

    from svac.data.sample import CATEGORY_KEY

    meta = json.loads((synth_root / "train/meta.json").read_text())["videos"]
    for s in samples:
        assert s.meta[CATEGORY_KEY] == meta[s.video_id]["objects"][str(s.object_ids[0])]["category"]


def test_the_frozen_copy_gives_sam2s_own_features_and_distillation_starts_at_zero(tiny_config, samples):
    objective = _objective(tiny_config)
    batch = _batch(objective.model, samples)
    frames = torch.cat([e.sam_frames for e in batch.examples])
    sam = objective.model.grounding
    # the levels the decoder reads, as SAM-2 computes them (forward_image, then _prepare_backbone_features)
    _, flat, _, sizes = sam._prepare_backbone_features(sam.forward_image(frames))
    levels = decoder_levels(sam, frames)
    for f, level, (h, w) in zip(flat, levels, sizes):
        assert torch.equal(f, level.flatten(2).permute(2, 0, 1)) and level.shape[-2:] == (h, w)
    for mine, copied in zip(levels, objective.teacher(frames)):
        assert torch.equal(mine, copied)
    out = objective(batch)
    assert float(out.distill.detach()) == 0.0 and float(out.objects) > 0
    assert not any(p.requires_grad for p in objective.teacher.parameters())
    objective.train()
    assert not objective.teacher.training


def test_mask_pooling_averages_each_level_inside_the_mask():
    level = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True  # frame 1's top-left 2x2 cells
    masks[1, 0:2, 6:8] = True  # frame 0's cell (0, 3)
    pooled = mask_pooled([level], masks, torch.tensor([1, 0]))
    assert torch.allclose(pooled[0], level[1, :, :2, :2].mean((1, 2)))
    assert torch.allclose(pooled[1], level[0, :, 0, 3])
    with pytest.raises(ValueError, match="non-empty"):
        mask_pooled([level], torch.zeros(1, 8, 8, dtype=torch.bool), torch.tensor([0]))
    assert float(distillation([level], [level])) == 0.0
    assert float(distillation([2 * level], [level])) == pytest.approx(1.0)


def test_the_attribute_losses_fall_on_a_tiny_set_and_reach_the_encoder(tiny_config, samples):
    torch.manual_seed(0)
    objective = _objective(tiny_config, distill=1.0)
    batch = _batch(objective.model, samples, videos=3)
    params = [p for p in objective.parameters() if p.requires_grad]
    encoder_before = [p.detach().clone() for p in objective.model.grounding.image_encoder.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    first = None
    for _ in range(15):
        out = objective(batch)
        attributes = float((out.category + 0.5 * out.size + out.colour).detach())
        first = attributes if first is None else first
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert attributes < 0.7 * first
    moved = [not torch.equal(a, p) for a, p in zip(encoder_before, objective.model.grounding.image_encoder.parameters())]
    assert all(moved)
    assert float(objective(batch).distill) > 0  # the encoder left its starting point


def test_categories_are_required_and_checked(tiny_config, samples):
    with pytest.raises(ConfigError, match="encoder_pretraining.categories"):
        EncoderPretrainingObjective(build_from_config(tiny_config), EncoderPretrainingConfig())
    with pytest.raises(ConfigError, match="encoder_pretraining.size"):
        EncoderPretrainingConfig(size=-1.0)
    objective = _objective(tiny_config)
    model = objective.model
    without = [dataclasses.replace(s, meta={}) for s in samples]
    with pytest.raises(ConfigError, match="has none"):
        objective(_batch(model, without))
    objective.cfg = dataclasses.replace(objective.cfg, categories=["circle"])
    objective._index = {"circle": 0}
    with pytest.raises(ConfigError, match="not in encoder_pretraining.categories"):
        objective(_batch(model, samples, videos=4))
    no_category = EncoderPretrainingObjective(model, EncoderPretrainingConfig(category=0.0))
    out = no_category(_batch(model, without))  # size and colour need no labels
    assert float(out.category) == 0.0 and float(out.size) > 0


def _stage(tiny_config, root, out, **extra):
    data = {"model": tiny_config.to_dict(), "lora": {"enabled": False}, "objective": "encoder_pretraining",
            "trainable": TRAINABLE, "encoder_pretraining": {"categories": SHAPES},
            "data": {"train": [f"rvos:{root}"], "expressions_per_video": 12, "frames": "single_frame"},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0, "weight_decay": 0.0}, "output_dir": str(out),
            "batch_size": 2, "grad_accum": 1, "max_steps": 3, "precision": "fp32", "log_every": 1, "save_every": 1,
            "keep_checkpoints": 5}
    data.update(extra)
    return from_dict(TrainConfig, data)


def test_the_stage_resumes_exactly_with_its_head_and_saves_a_model_without_it(tiny_config, synth_root, tmp_path):
    from accelerate.utils import SAFE_WEIGHTS_NAME
    from safetensors.torch import load_file

    from svac.loading import load_model

    straight = finetune.run(_stage(tiny_config, synth_root, tmp_path / "a"), progress=False)
    finetune.run(_stage(tiny_config, synth_root, tmp_path / "b"), stop_after=1, progress=False)
    resumed = finetune.run(_stage(tiny_config, synth_root, tmp_path / "b"), resume=True, progress=False)
    a = [(h["loss"], h["category"], h["distill"]) for h in straight.history]
    b = [(h["loss"], h["category"], h["distill"]) for h in resumed.history]
    assert np.allclose(a, b, rtol=1e-6, atol=1e-7) and straight.history[0]["distill"] == 0.0
    # the checkpoint holds the head and the frozen copy; the two runs end with the same head
    head_a = {k: v for k, v in load_file(tmp_path / "a/checkpoints/step-0000003" / SAFE_WEIGHTS_NAME).items()
              if k.startswith(("head.", "teacher."))}
    head_b = load_file(tmp_path / "b/checkpoints/step-0000003" / SAFE_WEIGHTS_NAME)
    assert any(k.startswith("head.") for k in head_a) and any(k.startswith("teacher.") for k in head_a)
    assert all(torch.equal(v, head_b[k]) for k, v in head_a.items())
    first = load_file(tmp_path / "b/checkpoints/step-0000001" / SAFE_WEIGHTS_NAME)
    assert not torch.equal(first["head.0.weight"], head_b["head.0.weight"])  # the head trains
    # the saved model is a model: no head, no frozen copy; only the image encoder and conv_s0/s1 changed
    files = sorted((tmp_path / "a/model").glob("*.safetensors"))
    assert files
    for f in files:
        assert not any(k.startswith(("head.", "teacher.")) or "teacher" in k for k in load_file(f))
    after = load_model(str(tmp_path / "a/model"), device="cpu").state_dict()
    assert not any(k.startswith(("head.", "teacher.")) or "teacher" in k for k in after)
    before = build_from_config(tiny_config).state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("grounding.image_encoder.", "grounding.sam_mask_decoder.conv_s"))
                           for k in changed)
    assert any(k.startswith("grounding.sam_mask_decoder.conv_s") for k in changed)


def test_the_objects_stage_config_loads():
    cfg = load_train_config("train/svac_default_0_objects.yaml")
    assert cfg.objective == "encoder_pretraining" and set(cfg.trainable) == set(TRAINABLE)
    assert cfg.model is not None and cfg.encoder_pretraining.categories and cfg.encoder_pretraining.distill > 0


def test_the_feature_probe_reads_labels_from_mask_pooled_features(tiny_config, samples):
    from svac.evaluation.feature_probe import collect, linear_probe, probe

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    y = list(x[:, 2] > 0)  # linearly separable
    assert linear_probe(x[:60], y[:60], x[60:], y[60:])["accuracy"] >= 0.95
    objects = collect(build_from_config(tiny_config).eval(), samples, videos=2, frames=2)
    assert objects.features.shape[0] == len(objects.categories) == len(objects.areas) > 0
    assert set(objects.categories) <= set(SHAPES) and (objects.areas > 0).all()
    result = probe(objects, objects)
    assert 0.0 <= result["category"]["accuracy"] <= 1.0 and result["size_above_median"]["n_test"] == len(objects.areas)
