"""Bad configs and options fail early and clearly: a one-line error before any model is built.

Command-line options are checked by argparse (``type=``) while the arguments are parsed;
config values (YAML, ``--set`` overrides, training configs) when the config loads. A config must
give the sections its head is built from: svac never falls back to a library's full-size
defaults (an empty YAML used to build transformers' full-size InternVL and be OOM-killed).
"""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

import svac.loading
import svac.model
from svac.cli import main
from svac.config import load_config
from svac.errors import ConfigError
from svac.training.config import load_train_config


@pytest.fixture
def no_model_building(monkeypatch):
    """Any model built from a config fails the test: errors must come before."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the bad value was reported")

    monkeypatch.setattr(svac.loading, "build_from_config", refuse)
    monkeypatch.setattr(svac.model.SVAC, "from_pretrained", refuse)


def _frames(tmp: pathlib.Path) -> str:
    import numpy as np
    from PIL import Image

    folder = tmp / "frames"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(folder / f"{i:05d}.png")
    return str(folder)


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert "error:" in last, err
    for needle in needles:
        assert needle in last, err
    return last


# --------------------------------------------------------------------------- options (argparse)


@pytest.mark.parametrize("argv, needle", [
    (["segment", "V", "q", "--frames", "0"], "argument --frames: must be an integer >= 1"),
    (["segment", "V", "q", "--frames", "-3"], "argument --frames: must be an integer >= 1"),
    (["segment", "V", "q", "--clip-len", "0"], "argument --clip-len: must be an integer >= 1"),
    (["segment", "V", "q", "--frames", "ten"], "argument --frames: expected an integer"),
    (["segment", "V", "q", "--device", "tpu"], "argument --device: the device must be auto, cpu, cuda or cuda:N"),
    (["segment", "V", "q", "--device", "cuda:x"], "argument --device"),
    (["chat", "V", "--frames", "0"], "argument --frames"),
    (["chat", "V", "--device", "tpu"], "argument --device"),
    (["train", "C", "--stop-after", "0"], "argument --stop-after"),
    (["export", "R", "--out", "D", "--step", "-1"], "argument --step"),
    (["data", "synth", "--out", "D", "--videos", "0", "--seed", "1"], "argument --videos"),
    (["data", "synth", "--out", "D", "--videos", "2", "--seed", "-1"], "argument --seed"),
    (["data", "synth", "--out", "D", "--videos", "2", "--seed", "1", "--min-frames", "0"], "argument --min-frames"),
    (["data", "synth", "--out", "D", "--videos", "2", "--seed", "1", "--size", "0x120"], "argument --size"),
    (["data", "synth", "--out", "D", "--videos", "2", "--seed", "1", "--size", "big"], "argument --size"),
    (["eval", "davis17", "--data-root", "R", "--out", "O", "--frames", "0"], "argument --frames"),
    (["eval", "davis17", "--data-root", "R", "--out", "O", "--clip-len", "-1"], "argument --clip-len"),
    (["eval", "davis17", "--data-root", "R", "--out", "O", "--device", "tpu"], "argument --device"),
    (["eval", "davis17", "--data-root", "R", "--out", "O", "--merge-timeout", "-5"], "argument --merge-timeout"),
    (["eval", "davis17", "--data-root", "R", "--out", "O", "--merge-timeout", "nan"], "argument --merge-timeout"),
    (["demo", "--port", "70000"], "argument --port: must be a port number from 1 to 65535"),
    (["demo", "--port", "0"], "argument --port"),
    (["demo", "--frames", "0"], "argument --frames"),
    (["demo", "--device", "tpu"], "argument --device"),
])
def test_bad_options_are_refused_while_parsing(argv, needle, capsys, no_model_building):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    _one_line_error(capsys, needle)


@pytest.mark.parametrize("argv, needle", [
    (["--frames", "5,0"], "argument --frames"),
    (["--clip-lens", "-2"], "argument --clip-lens"),
    (["--k-objects", "2,0"], "argument --k-objects"),
    (["--num-videos", "0"], "argument --num-videos"),
    (["--repeats", "0"], "argument --repeats"),
    (["--threads", "0"], "argument --threads"),
    (["--seed", "-1"], "argument --seed"),
    (["--device", "tpu"], "argument --device"),
])
def test_bad_study_options_are_refused_while_parsing(argv, needle, capsys, no_model_building):
    """``svac bench frames ARGS`` runs ``eval/frame_scaling.py ARGS``, whose parser checks them (in-process here)."""
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "eval"))
    from frame_scaling import main as frame_scaling_main

    with pytest.raises(SystemExit) as info:
        frame_scaling_main(argv)
    assert info.value.code == 2
    _one_line_error(capsys, needle)


def test_data_synth_frame_range_is_checked_before_writing(tmp_path, capsys):
    rc = main(["data", "synth", "--out", str(tmp_path / "d"), "--videos", "2", "--seed", "1",
               "--min-frames", "40", "--max-frames", "20"])
    assert rc == 2 and not (tmp_path / "d").exists()
    _one_line_error(capsys, "--min-frames (40) must not exceed --max-frames (20)")


# --------------------------------------------------------------------------- model configs


def _segment(tmp_path, model: str, *extra: str) -> int:
    return main(["segment", _frames(tmp_path), "the object", "--model", model, "--out", str(tmp_path / "out"),
                 "--quiet", "--no-overlay", *extra])


@pytest.mark.parametrize("document, needle", [
    ({}, "has no mllm and no sam2 section"),
    ({"name": "x"}, "has no mllm and no sam2 section"),
    ({"mllm": "tiny"}, "has no mllm and no sam2 section"),
    ("missing_sam2", "has no sam2 section"),
    ("missing_mllm", "has no mllm section"),
    ("missing_vision_sizes", "mllm.vision is missing patch_size, hidden_size, num_hidden_layers"),
    ("missing_text_sizes", "mllm.text is missing hidden_size, intermediate_size"),
    ({"head": "referformer"}, "has no baseline.referformer section"),
    ({"head": "lavt", "baseline": {"window": 3}}, "has no baseline.lavt section"),
])
def test_incomplete_model_configs_name_the_missing_section(document, needle, tmp_path, capsys, no_model_building):
    tiny = yaml.safe_load((pathlib.Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml").read_text())
    if document == "missing_sam2":
        document = {k: v for k, v in tiny.items() if k != "sam2"}
    elif document == "missing_mllm":
        document = {k: v for k, v in tiny.items() if k != "mllm"}
    elif document == "missing_vision_sizes":
        document = {**tiny, "mllm": {**tiny["mllm"], "vision": {"image_size": 64}}}
    elif document == "missing_text_sizes":
        document = {**tiny, "mllm": {**tiny["mllm"], "text": {"num_hidden_layers": 2}}}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(document) if document else "")
    with pytest.raises(ConfigError, match=needle.split(",")[0]):
        load_config(path)
    assert _segment(tmp_path, str(path)) == 2
    _one_line_error(capsys, needle)


@pytest.mark.parametrize("override, needle", [
    ("mllm.text.hidden_size=-5", "mllm.text.hidden_size must be an integer >= 1"),
    ("mllm.text.num_hidden_layers=0", "mllm.text.num_hidden_layers must be an integer >= 1"),
    ("mllm.vision.patch_size=0", "mllm.vision.patch_size must be an integer >= 1"),
    ("mllm.vision.image_size=[64,0]", "mllm.vision.image_size must be an integer >= 1"),
    ("mllm.text.intermediate_size=2.5", "mllm.text.intermediate_size must be an integer >= 1"),
    ("sam2.image_size=100", "sam2.image_size must be a positive multiple of 32"),
    ("sam2.image_size=-128", "sam2.image_size must be a positive multiple of 32"),
    ("sam2.trunk.embed_dim=0", "sam2.trunk.embed_dim must be >= 1"),
    ("sam2.trunk.stages=[1,1,1]", "sam2.trunk.stages: expected 4 values"),
    ("sam2.trunk.stages=[1,1,-1,1]", "sam2.trunk.stages must be >= 1"),
    ("sam2.trunk.global_att_blocks=[9]", "sam2.trunk.global_att_blocks [9] names a block beyond"),
    ("sam2.memory_attention.feat_sizes=[8,0]", "sam2.memory_attention.feat_sizes must be >= 1"),
    ("sam2.memory_attention.dropout=1.5", "sam2.memory_attention.dropout must be in [0, 1)"),
    ("sam2.memory_encoder.out_dim=-16", "sam2.memory_encoder.out_dim must be >= 1"),
    ("sam2.neck.d_model=64", "sam2.neck.num_pos_feats (32) must equal sam2.neck.d_model (64)"),
    ("sam2.memory_encoder.out_dim=8", "sam2.memory_encoder.num_pos_feats (16) must equal sam2.memory_encoder.out_dim"),
    ("sam2.trunk.embed_dim=8", "sam2.neck.backbone_channel_list must be [64, 32, 16, 8]"),
    ("sam2.max_cond_frames_in_attn=0", "sam2.max_cond_frames_in_attn must be >= 1 or -1"),
    ("inference.max_new_tokens=0", "inference.max_new_tokens must be >= 1"),
    ("inference.device=tpu", "inference.device must be auto, cpu, cuda or cuda:N"),
    ("inference.mask_threshold=.nan", "inference.mask_threshold must be a finite logit"),
])
def test_bad_values_fail_when_the_config_loads(override, needle, tmp_path, capsys, no_model_building):
    with pytest.raises(ConfigError) as info:
        load_config("tiny.yaml", [override])
    assert needle in str(info.value)
    assert _segment(tmp_path, "tiny.yaml", "--set", override) == 2
    _one_line_error(capsys, needle)


def test_a_default_model_override_fails_before_loading_weights(tmp_path, capsys, no_model_building):
    assert main(["segment", _frames(tmp_path), "q", "--out", str(tmp_path / "o"),
                 "--set", "inference.max_new_tokens=0"]) == 2
    _one_line_error(capsys, "inference.max_new_tokens must be >= 1")


# --------------------------------------------------------------------------- training configs


@pytest.mark.parametrize("text, overrides, needle", [
    ("", [], "exactly one of model"),
    ("max_steps: 10\n", [], "got neither"),
    ("init_from: runs/x/model\n", ["model.name=x"], "no model.mllm and no model.sam2 section"),
    ("init_from: runs/x/model\n", ["optim.lr=-1"], "optim.lr must be > 0"),
    ("init_from: runs/x/model\n", ["optim.warmup_ratio=2"], "optim.warmup_ratio must be in [0, 1]"),
    ("init_from: runs/x/model\n", ["lora.r=0"], "lora.r and lora.alpha must be >= 1"),
    ("init_from: runs/x/model\n", ["lora.dropout=1"], "lora.dropout must be in [0, 1)"),
    ("init_from: runs/x/model\n", ["data.num_workers=-1"], "data.num_workers must be >= 0"),
    ("init_from: runs/x/model\n", ["data.expressions_per_video=0"], "data.expressions_per_video must be >= 1"),
    ("init_from: runs/x/model\n", ["seed=-1"], "seed must be >= 0"),
    ("init_from: runs/x/model\n", ["loss.num_points=0"], "loss.num_points must be >= 1"),
])
def test_training_configs_fail_when_they_load(text, overrides, needle, tmp_path, capsys):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_train_config(path, overrides)
    assert main(["train", str(path), *overrides]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "runs").exists()
