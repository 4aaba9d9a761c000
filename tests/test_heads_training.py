"""Baseline heads through svac's training recipe: examples, objectives, what trains, and a short ``finetune.run``."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pytest
import torch

from svac.config import from_dict, read_yaml
from svac.errors import ConfigError
from svac.training.config import TrainConfig
from svac.training.hooks import training_hooks

finetune = importlib.import_module("svac.recipes.finetune")

YAMLS = {"referformer": "referformer_tiny.yaml", "lavt": "lavt_tiny.yaml"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module's toy models on one thread (on a shared 2-core CPU a second one mostly waits), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=3, seed=0, num_frames=(12, 14), size=(64, 64), progress=False)
    return root


@pytest.fixture(scope="module")
def samples(synth_root):
    from svac.data.readers import load_dataset

    return list(load_dataset(f"rvos:{synth_root}", "train"))


def _build(head, **baseline):
    from svac.config import SVACConfig
    from svac.loading import build_from_config

    data = read_yaml(YAMLS[head])
    data["baseline"].update(baseline)
    return build_from_config(from_dict(SVACConfig, data))


def _train_config(head, root, out, **extra):
    data = {"model": read_yaml(YAMLS[head]), "lora": {"enabled": False},
            "data": {"train": [f"rvos:{root}"], "expressions_per_video": 2},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "output_dir": str(out), "batch_size": 2,
            "grad_accum": 1, "max_steps": 2, "precision": "fp32", "log_every": 1, "save_every": 1}
    data.update(extra)
    return from_dict(TrainConfig, data)


def test_frame_policies_give_window_frames_in_order():
    from svac.heads.rvos_training import training_frame_indices

    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(20):
        idx = training_frame_indices(12, 5, "window", rng)
        assert len(idx) == 5 and np.array_equal(np.diff(idx), np.ones(4)) and 0 <= idx[0] <= 7
        starts.add(int(idx[0]))
    assert len(starts) > 1  # the start is random
    from svac.video.reader import sample_frame_indices

    assert np.array_equal(training_frame_indices(12, 5, "uniform", rng), sample_frame_indices(12, 5, "uniform"))
    short = training_frame_indices(3, 5, "window", rng)  # a short video repeats frames in temporal order
    assert len(short) == 5 and set(short.tolist()) == {0, 1, 2} and (np.diff(short) >= 0).all()
    with pytest.raises(ConfigError, match="train_frames"):
        training_frame_indices(12, 5, "random", rng)


def test_examples_hold_window_frames_and_resized_ground_truth(samples):
    from svac.heads.rvos_training import resize_masks
    from svac.training.data import VideoExpressionDataset

    model = _build("lavt", input_size=[64, 96], window=4)
    ds = VideoExpressionDataset(samples, training_hooks(model).example_builder(model), expressions_per_video=2, seed=0)
    ex = ds[0]
    group = ds.videos[0]
    assert ex.frames.shape == (4, 3, 64, 96) and ex.frames.dtype == torch.float32
    assert ex.masks.shape == (2, 4, 64, 96) and ex.masks.dtype == torch.bool
    assert np.array_equal(np.diff(ex.frame_indices), np.ones(3))
    by_expression = {s.expression: s for s in group}
    texts = [model.tokenizer.decode(ids, skip_special_tokens=True) for ids in ex.input_ids]
    for k, text in enumerate(texts):
        gt = resize_masks(by_expression[text].load_masks(ex.frame_indices), (64, 96))
        assert torch.equal(ex.masks[k], gt)
    assert ds[0].frame_indices.tolist() == ex.frame_indices.tolist()  # reproducible per (seed, epoch, index)
    batch = training_hooks(model).collate_fn(model)([ex, ds[1]])
    assert batch.frames.shape[0] == batch.masks.shape[0] == batch.input_ids.shape[0] == 4  # one item per expression
    assert torch.equal(batch.frames[0], batch.frames[1])  # the two expressions of video 0 share its frames
    lengths = batch.attention_mask.sum(1)
    assert (batch.input_ids[batch.attention_mask == 0] == model.tokenizer.pad_token_id).all()
    assert int(lengths.max()) == batch.input_ids.shape[1]


@pytest.mark.parametrize("head", sorted(YAMLS))
def test_objective_trains_everything_but_the_frozen_parts(head, samples):
    from svac.training.data import VideoExpressionDataset

    model = _build(head, input_size=[64, 64], window=3).train()
    cfg = from_dict(TrainConfig, {"model": read_yaml(YAMLS[head]), "lora": {"enabled": False}})
    summary = training_hooks(model).configure_training(model, cfg)
    ds = VideoExpressionDataset(samples, training_hooks(model).example_builder(model), expressions_per_video=1, seed=0)
    out = training_hooks(model).training_objective(model, cfg)(training_hooks(model).collate_fn(model)([ds[0], ds[1]]))
    out.loss.backward()
    floats = out.as_floats()
    assert np.isfinite(floats["loss"]) and floats["loss"] > 0 and len(floats) > 1
    text = model.text_encoder_module()
    text_grads = [p.grad for p in text.parameters()]
    if head == "referformer":  # ReferFormer §3.1: the text encoder is frozen, its projection trains
        assert all(g is None for g in text_grads) and summary.frozen == sum(p.numel() for p in text.parameters())
        assert model.head.text_encoder.project[0].weight.grad.abs().sum() > 0
    else:  # LAVT fine-tunes BERT
        assert any(g is not None and g.abs().sum() > 0 for g in text_grads) and summary.frozen == 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.backbone.parameters())
    assert summary.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("changes, message", [
    ({"lora": {"enabled": True}}, "lora.enabled must be false"),
    ({"lora": {"enabled": False}, "trainable": ["llm"]}, "trainable names SVAC parts"),
    ({"lora": {"enabled": False}, "loss": {"dice": 1.0}}, "model.baseline.lavt"),
])
def test_svac_only_training_options_are_refused(changes, message):
    model = _build("lavt")
    with pytest.raises(ConfigError, match=message):
        cfg = from_dict(TrainConfig, {"model": read_yaml(YAMLS["lavt"]), **changes})
        training_hooks(model).configure_training(model, cfg)


@pytest.mark.parametrize("data, message", [({"frames": "none"}, "data.frames='none' is for SVAC"),
                                           ({"answer_phrase": "dataset"}, "writes no answer")])
def test_svac_only_data_options_are_refused(data, message):
    from svac.training.config import DataConfig

    model = _build("lavt")
    with pytest.raises(ConfigError, match=message):
        training_hooks(model).example_builder(model, DataConfig(**data))


def test_lora_with_a_baseline_fails_before_training(synth_root, tmp_path):
    cfg = _train_config("referformer", synth_root, tmp_path / "run", lora={"enabled": True})
    with pytest.raises(ConfigError, match="lora.enabled must be false for the referformer head"):
        finetune.run(cfg, progress=False)
    assert not (tmp_path / "run" / "model").exists()


@pytest.mark.parametrize("head", sorted(YAMLS))
def test_finetune_trains_a_baseline_that_load_model_reads_back(head, synth_root, tmp_path):
    from svac.loading import load_model
    from svac.video.reader import FramePathsVideo

    extra = {"bpe_vocab_size": 300} if head == "lavt" else {}
    result = finetune.run(_train_config(head, synth_root, tmp_path / "run", **extra), progress=False)
    assert result.steps == 2 and len(result.history) == 2
    assert all(np.isfinite(h["loss"]) for h in result.history)
    log = [json.loads(line) for line in (tmp_path / "run" / finetune.LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and set(log[0]) == set(result.history[0])
    from svac.loading import UntrainedModelWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(str(result.model_dir), device="cpu")
    assert not [w for w in caught if issubclass(w.category, UntrainedModelWarning)]  # saved as trained
    assert model.config.head == head and model.config.trained
    if head == "lavt":  # the BPE learnt from the expressions replaced the byte tokenizer, and BERT's table fits it
        assert len(model.tokenizer) == 300 == model.head_config.text_vocab_size
    sample = next(iter(_samples_of(synth_root)))
    video = FramePathsVideo(sample.frame_paths)
    res = model.segment(video, sample.expression)
    assert res.masks.shape == (1, video.num_frames, video.height, video.width)


def _samples_of(root):
    from svac.data.readers import load_dataset

    return load_dataset(f"rvos:{root}", "train")


def test_param_groups_skip_frozen_parameters():
    model = _build("referformer")
    training_hooks(model).configure_training(model, from_dict(TrainConfig, {"model": read_yaml(YAMLS["referformer"]),
                                                     "lora": {"enabled": False}}))
    groups = finetune._param_groups(model, 0.1)
    ids = {id(p) for g in groups for p in g["params"]}
    frozen = [p for p in model.text_encoder_module().parameters()]
    assert frozen and not any(id(p) in ids for p in frozen)
    assert len(ids) == sum(1 for p in model.parameters() if p.requires_grad)


def test_resumed_baseline_run_repeats_the_loss_trajectory(synth_root, tmp_path):
    """Random window starts come from the (seed, epoch, index) generator, so a resumed run sees the same clips."""
    straight = finetune.run(_train_config("lavt", synth_root, tmp_path / "a", max_steps=3), progress=False)
    first = finetune.run(_train_config("lavt", synth_root, tmp_path / "b", max_steps=3), stop_after=1,
                         progress=False)
    assert first.steps == 1 and not (tmp_path / "b" / "model").exists()
    resumed = finetune.run(_train_config("lavt", synth_root, tmp_path / "b", max_steps=3), resume=True,
                           progress=False)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in straight.history], rel=1e-5)
