"""Training: loss terms, per-clip supervision, what trains (LoRA never on vision), data, resume, NaN stop."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest
import torch

from svac.loading import build_from_config
from svac.training.config import LoRAConfig, LossConfig, TrainConfig, load_train_config
from svac.training.data import IGNORE_INDEX, ExampleBuilder, VideoExpressionDataset, collate
from svac.training.losses import dice_loss, mask_losses, point_sample, prompt_region_contrast, uncertain_points
from svac.training.objective import SVACObjective, prompt_separation, target_regions
from svac.training.params import apply_lora, configure_trainable, special_token_ids

finetune = importlib.import_module("svac.recipes.finetune")


# ---------------------------------------------------------------- losses

def test_dice_loss_hand_values():
    big = 50.0
    logits = torch.tensor([[big, big, -big, -big], [big, big, big, big], [-big] * 4])
    targets = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    got = dice_loss(logits, targets)
    assert got[0] == pytest.approx(0.0, abs=1e-6)                 # perfect
    assert got[1] == pytest.approx(1 - (2 * 2 + 1) / (4 + 2 + 1))   # 2 false positives
    assert got[2] == pytest.approx(0.0, abs=1e-6)                 # empty vs empty


def test_mask_losses_terms_and_presence_target():
    logits = torch.zeros(2, 4, 4)
    targets = torch.zeros(2, 8, 8, dtype=torch.bool)
    targets[0, :4] = True
    out = mask_losses(logits, torch.zeros(2), targets, LossConfig())
    assert out.bce.item() == pytest.approx(math.log(2), rel=1e-5)  # p = 0.5 everywhere
    assert out.presence.item() == pytest.approx(math.log(2), rel=1e-5)
    dice_first = 1 - (2 * 0.5 * 32 + 1) / (0.5 * 64 + 32 + 1)
    dice_second = 1 - 1 / (0.5 * 64 + 1)
    assert out.dice.item() == pytest.approx((dice_first + dice_second) / 2, rel=1e-5)


def test_point_sampling_prefers_uncertain_pixels():
    logits = torch.full((1, 1, 16, 16), 10.0)
    logits[..., :, 6:10] = 0.0  # an uncertain band (a quarter of the width)
    pts = uncertain_points(logits, num_points=100, oversample_ratio=3.0, importance_ratio=0.75,
                           generator=torch.Generator().manual_seed(0))
    assert pts.shape == (1, 100, 2) and pts.min() >= 0 and pts.max() <= 1
    values = point_sample(logits, pts)[0]
    assert values[:75].abs().mean() < 0.6 * values[75:].abs().mean()  # importance points sit in the band
    out = mask_losses(torch.randn(3, 8, 8), torch.zeros(3), torch.rand(3, 32, 32) > 0.5,
                      LossConfig(point_sampling=True, num_points=64))
    assert torch.isfinite(out.bce) and torch.isfinite(out.dice)


def test_prompt_separation_is_the_mean_cosine_of_prompts_naming_different_objects():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.6, 0.8])
    prompts = [torch.stack([a, b, a])[None]]  # one clip, K = 3
    # pairs naming different objects: (0,1), (1,2) and their mirrors -> cos(a, b) = 0.6; (0,2) name one object
    got = prompt_separation(prompts, [((1,), (2,), (1,))])
    assert got.item() == pytest.approx(0.6)
    assert prompt_separation(prompts, [((1,), (1,), (1,))]).item() == 0.0  # nothing to separate


def test_prompt_region_contrast_prefers_each_prompt_on_its_own_target():
    regions = torch.eye(3)
    identity = torch.tensor([0, 1, 2])
    matched = prompt_region_contrast(regions.clone(), regions, identity, temperature=0.5)
    swapped = prompt_region_contrast(regions[[1, 0, 2]], regions, identity, temperature=0.5)
    assert matched.item() == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 2)), rel=1e-5)
    assert swapped > matched
    # two rows naming the same object are positives of each other: the loss ignores which of them wins
    same = prompt_region_contrast(regions[[0, 0, 2]], regions[[0, 0, 2]], torch.tensor([0, 0, 1]), temperature=0.5)
    pair, single = -math.log(2 * math.exp(2) / (2 * math.exp(2) + 1)), -math.log(math.exp(2) / (math.exp(2) + 2))
    assert same.item() == pytest.approx((2 * pair + single) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        prompt_region_contrast(regions, regions, identity, temperature=0.0)
    with pytest.raises(ValueError, match="must be"):
        prompt_region_contrast(regions, regions[:2], identity, temperature=0.1)


def test_target_regions_average_features_inside_each_target_per_clip():
    from types import SimpleNamespace

    from svac.grounding.sam2_model import FrameFeatures

    c = 3
    frames = []
    for t in range(4):  # 2x2 feature cells; cell value = frame index + 10 * cell index
        values = torch.tensor([t + 10.0 * i for i in range(4)])[:, None, None].expand(4, 1, c)
        frames.append(FrameFeatures(vision_feats=[values], vision_pos=[values], feat_sizes=[(2, 2)]))
    masks = torch.zeros(2, 4, 8, 8, dtype=torch.bool)
    masks[0, :, :4, :4] = True        # object 0: cell 0 on every frame
    masks[1, 3, 4:, 4:] = True        # object 1: cell 3, only on frame 3 (clip 1)
    example = SimpleNamespace(masks=masks, clip_of_position=torch.tensor([0, 0, 1, 1]), num_clips=2, num_objects=2)
    feats, visible = target_regions(frames, example)
    assert feats.shape == (2, 2, c) and visible.tolist() == [[True, False], [True, True]]
    assert feats[0, 0, 0].item() == pytest.approx(0.5)   # cell 0 on frames 0 and 1
    assert feats[1, 0, 0].item() == pytest.approx(2.5)   # cell 0 on frames 2 and 3
    assert feats[1, 1, 0].item() == pytest.approx(33.0)  # cell 3 on frame 3
    assert feats[0, 1].abs().sum() == 0


# ---------------------------------------------------------------- data

@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=4, seed=3, num_frames=(12, 14), size=(64, 64), progress=False)
    return root


@pytest.fixture
def small_config(tiny_config):
    import dataclasses

    return dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))


def _dataset(model, root, k=2):
    from svac.data.readers import load_dataset

    samples = list(load_dataset(f"rvos:{root}", "train"))
    return VideoExpressionDataset(samples, ExampleBuilder.for_model(model), expressions_per_video=k, seed=0)


def test_examples_use_the_inference_clip_layout_and_label_only_answers(small_config, synth_root):
    from svac.astc import plan_clips

    model = build_from_config(small_config)
    ds = _dataset(model, synth_root)
    ex = ds[0]
    group = ds.videos[0]
    plan = plan_clips(group[0].num_frames, small_config.astc)
    assert ex.num_clips == plan.num_clips == 2 and ex.anchor_positions == (0, 3)
    assert ex.pixel_values.shape[0] == 2 * plan.num_clips
    assert ex.masks.shape == (ex.num_objects, 6, model.sam2_image_size, model.sam2_image_size)
    seg = ex.input_ids == model.seg_token_id
    assert int(seg.sum()) == ex.num_objects * ex.num_clips
    assert (ex.labels[seg] == model.seg_token_id).all()                  # [SEG] are targets
    image_id = model.mllm.config.image_token_id
    assert (ex.labels[ex.input_ids == image_id] == IGNORE_INDEX).all()   # the prompt is not
    answers = ex.labels[ex.labels != IGNORE_INDEX]
    text = model.tokenizer.decode(answers)
    assert text.count("[SEG]") == ex.num_objects * ex.num_clips and "<|im_end|>" in text
    gt = group[0].load_masks(plan.frame_indices)
    assert ex.masks[:, :, 0, 0].shape == (ex.num_objects, 6) and gt.shape[0] == 6
    again = ds[0]
    assert torch.equal(again.input_ids, ex.input_ids)  # deterministic per (seed, epoch, index)


def test_images_shared_by_conversations_are_encoded_once_with_the_same_result(small_config, synth_root):
    model = build_from_config(small_config).eval()
    ds = _dataset(model, synth_root)
    batch = collate([ds[0], ds[1]], model.tokenizer.pad_token_id)
    assert batch.input_ids.shape[0] == ds[0].num_objects + ds[1].num_objects  # one row per expression
    assert batch.pixel_values.shape[0] == ds[0].pixel_values.shape[0] + ds[1].pixel_values.shape[0]
    assert batch.image_index.shape[0] == sum(batch.examples[b].pixel_values.shape[0] for b in batch.row_example)
    with torch.no_grad():
        _, shared = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values,
                                       image_index=batch.image_index)
        _, repeated = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values[batch.image_index])
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)


def test_objective_backpropagates_into_every_trainable_part(small_config, synth_root):
    model = build_from_config(small_config).train()
    configure_trainable(model, ["projector", "text_hidden_fcs", "sam2_mask_decoder", "special_tokens"])
    ds = _dataset(model, synth_root)
    batch = collate([ds[0], ds[1]], model.tokenizer.pad_token_id)
    out = SVACObjective(model, LossConfig())(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.ce > 0
    for name in ("text_hidden_fcs", "grounding.sam_mask_decoder", "mllm.model.multi_modal_projector"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None for p in model.mllm.model.vision_tower.parameters())
    assert all(p.grad is None for p in model.grounding.image_encoder.parameters())
    emb = model.mllm.get_input_embeddings().weight
    rows = emb.grad.abs().sum(dim=1).nonzero().flatten().tolist()
    assert rows and set(rows) <= set(special_token_ids(model))  # only the new tokens' rows


def test_prompt_contrast_reaches_the_prompts_and_the_sam2_image_encoder(small_config, synth_root):
    model = build_from_config(small_config).train()
    configure_trainable(model, ["text_hidden_fcs", "sam2_image_encoder"])
    ds = _dataset(model, synth_root)
    batch = collate([ds[0], ds[1]], model.tokenizer.pad_token_id)
    out = SVACObjective(model, LossConfig(ce=0.0, bce=0.0, dice=0.0, presence=0.0, prompt_contrast=1.0))(batch)
    assert out.contrast > 0 and out.loss.item() == pytest.approx(out.contrast.item())
    out.loss.backward()
    for part in (model.text_hidden_fcs, model.grounding.image_encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    off = SVACObjective(model, LossConfig())(batch)
    assert off.contrast.item() == 0.0


# ---------------------------------------------------------------- what trains

def test_lora_targets_only_the_llm(tiny_config):
    model = build_from_config(tiny_config)
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    lora_names = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora_names
    assert all(".language_model." in n for n in lora_names)
    assert not any("vision_tower" in n or "grounding" in n for n in lora_names)
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora_names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    summary = configure_trainable(model, ["projector"])
    assert summary.parts["lora"] > 0
    assert not any(p.requires_grad for p in model.mllm.model.vision_tower.parameters())


def test_special_token_rows_alone_change(small_config, synth_root):
    model = build_from_config(small_config).train()
    configure_trainable(model, ["special_tokens"])
    emb = model.mllm.get_input_embeddings().weight
    before = emb.detach().clone()
    opt = torch.optim.AdamW(finetune._param_groups(model, 0.1), lr=1e-2)
    ds = _dataset(model, synth_root)
    SVACObjective(model, LossConfig())(collate([ds[0]], model.tokenizer.pad_token_id)).loss.backward()
    opt.step()
    changed = (emb.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed and set(changed) <= set(special_token_ids(model))


# ---------------------------------------------------------------- the recipe

def _recipe_config(small_config, root, out, **extra):
    data = {"model": small_config.to_dict(), "lora": {"enabled": False},
            "trainable": ["projector", "text_hidden_fcs", "sam2_mask_decoder", "special_tokens"],
            "data": {"train": [f"rvos:{root}"], "expressions_per_video": 2},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "output_dir": str(out), "batch_size": 1,
            "grad_accum": 2, "max_steps": 3, "precision": "fp32", "log_every": 1, "save_every": 1}
    data.update(extra)
    from svac.config import from_dict

    return from_dict(TrainConfig, data)


def test_resume_reproduces_the_uninterrupted_loss_trajectory(small_config, synth_root, tmp_path):
    straight = finetune.run(_recipe_config(small_config, synth_root, tmp_path / "a"), progress=False)
    assert straight.steps == 3 and (tmp_path / "a/model").is_dir()
    first = finetune.run(_recipe_config(small_config, synth_root, tmp_path / "b"), stop_after=1, progress=False)
    assert first.steps == 1 and not (tmp_path / "b/model").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        finetune.run(_recipe_config(small_config, synth_root, tmp_path / "b"), progress=False)
    resumed = finetune.run(_recipe_config(small_config, synth_root, tmp_path / "b"), resume=True, progress=False)
    assert resumed.steps == 3
    a = [h["loss"] for h in straight.history]
    b = [h["loss"] for h in resumed.history]
    assert a == pytest.approx(b, rel=1e-6, abs=1e-7)
    assert [h["step"] for h in resumed.history] == [1, 2, 3]

    # a step checkpoint exports to the same weights the finished run saved
    from svac.loading import load_model

    exported = finetune.export_checkpoint(tmp_path / "b", tmp_path / "exported", step=3)
    want = load_model(tmp_path / "b/model", device="cpu").state_dict()
    got = load_model(exported, device="cpu").state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    with pytest.raises(FileNotFoundError, match="step 7"):
        finetune.export_checkpoint(tmp_path / "b", tmp_path / "nope", step=7)

    # the CLI exports into a new folder without --overwrite (its own lock there is not "files"),
    # and refuses a second export into the now non-empty folder
    from svac.cli import main

    assert main(["export", str(tmp_path / "b"), "--step", "3", "--out", str(tmp_path / "cli")]) == 0
    got = load_model(tmp_path / "cli", device="cpu").state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert main(["export", str(tmp_path / "b"), "--step", "3", "--out", str(tmp_path / "cli")]) != 0

    # --weights-dtype float16 stores the floating weights in half precision (the shipped default model's
    # storage): loaded back in float32 they are the trained weights rounded to float16, integers untouched
    from safetensors import safe_open

    assert main(["export", str(tmp_path / "b"), "--step", "3", "--out", str(tmp_path / "half"),
                 "--weights-dtype", "float16"]) == 0
    (shard,) = sorted((tmp_path / "half").glob("*.safetensors"))
    with safe_open(str(shard), "pt") as stored:
        dtypes = {stored.get_slice(k).get_dtype() for k in stored.keys()}
    assert "F16" in dtypes and "F32" not in dtypes
    assert shard.stat().st_size < 0.6 * sum(p.stat().st_size for p in (tmp_path / "cli").glob("*.safetensors"))
    got = load_model(tmp_path / "half", device="cpu").state_dict()
    for k in want:
        expected = want[k].to(torch.float16).to(want[k].dtype) if want[k].is_floating_point() else want[k]
        assert got[k].dtype == want[k].dtype and torch.equal(got[k], expected), k
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="int8"):  # refused before the run's model is rebuilt
        finetune.export_checkpoint(tmp_path / "b", tmp_path / "bad", step=3, weights_dtype="int8")
    assert not (tmp_path / "bad").exists()


def test_nan_loss_stops_with_the_last_good_checkpoint(small_config, synth_root, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = SVACObjective.forward

    def poisoned(self, batch):
        out = original(self, batch)
        calls["n"] += 1
        if calls["n"] > 2:  # third micro-step = second update
            out.loss = out.loss * float("nan")
        return out
    monkeypatch.setattr(SVACObjective, "forward", poisoned)
    with pytest.raises(finetune.TrainingDivergedError, match="step-0000001"):
        finetune.run(_recipe_config(small_config, synth_root, tmp_path / "n"), progress=False)
    assert (tmp_path / "n/checkpoints/step-0000001/trainer_state.json").is_file()


def test_bad_loss_settings_fail_when_the_config_loads():
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="loss.dice"):
        load_train_config("train/svac_default_3_video.yaml", ["loss.dice=-1.0"])
    with pytest.raises(ConfigError, match="prompt_contrast_temperature"):
        load_train_config("train/svac_default_3_video.yaml", ["loss.prompt_contrast_temperature=0.0"])


def test_train_configs_load_and_start_with_their_launch_command():
    from importlib import resources

    folder = resources.files("svac.configs").joinpath("train")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    assert names
    for name in names:
        text = folder.joinpath(name).read_text()
        first = text.splitlines()[0]
        assert first.startswith("# Launch: ") and " train " in first and "svac" in first, name
        assert "# Hardware:" in text and "# Wall time:" in text, name
        load_train_config(f"train/{name}")


# ---------------------------------------------------------------- click-oracle diagnostic

def test_oracle_clicks_fall_inside_their_masks_and_pad_absent_objects():
    oracle = importlib.import_module("svac.recipes.click_oracle")
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, 2:4, 10:13] = True
    masks[2, 15, 0] = True
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        clicks = oracle.oracle_clicks(masks, gen)
        assert clicks["point_labels"][:, 0].tolist() == [oracle.POSITIVE_CLICK, oracle.NO_CLICK, oracle.POSITIVE_CLICK]
        for j in (0, 2):
            x, y = clicks["point_coords"][j, 0].tolist()
            assert masks[j, int(y), int(x)], (j, x, y)


def test_click_oracle_trains_sam2_alone_and_never_overwrites(small_config, synth_root, tmp_path, monkeypatch):
    from svac.training.data import VideoExpressionDataset

    oracle = importlib.import_module("svac.recipes.click_oracle")
    epochs = []
    original = VideoExpressionDataset.set_epoch
    monkeypatch.setattr(VideoExpressionDataset, "set_epoch", lambda self, e: (epochs.append(e), original(self, e)))
    cfg = _recipe_config(small_config, synth_root, tmp_path / "unused", batch_size=4)  # 4 videos: 1 batch per epoch
    records = oracle.run(cfg, steps=2, out=tmp_path / "oracle", log_every=1)
    assert [r.step for r in records] == [1, 2]
    assert epochs == [0, 1]  # a new epoch draws new expressions, as in `svac train`
    assert all(0.0 <= r.dice <= 1.0 and math.isfinite(r.loss) for r in records)
    lines = (tmp_path / "oracle" / oracle.LOG_FILE).read_text().splitlines()
    assert [json.loads(line)["dice"] for line in lines] == [r.dice for r in records]
    assert json.loads((tmp_path / "oracle" / oracle.RESULT_FILE).read_text())["steps"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["oracle"]  # no staging folder left behind
    # the trained SAM-2 loads strictly into a fresh model of the same config (a click curriculum's start)
    from svac.grounding.sam2_model import build_sam2_model, load_sam2_checkpoint

    fresh = build_sam2_model(cfg.model.sam2)
    load_sam2_checkpoint(fresh, str(tmp_path / "oracle" / oracle.SAM2_FILE))
    saved = torch.load(tmp_path / "oracle" / oracle.SAM2_FILE, weights_only=True)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in fresh.state_dict().items())
    with pytest.raises(FileExistsError, match="oracle"):
        oracle.run(cfg, steps=1, out=tmp_path / "oracle")
