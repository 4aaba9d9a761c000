"""Typed configs: YAML loading, overrides, and clear errors for unknown keys and wrong types."""

from __future__ import annotations

import pytest
import yaml

from svac.config import ASTCConfig, SVACConfig, from_dict, load_config
from svac.errors import ConfigError


def test_tiny_config_loads_and_round_trips(tiny_config, tmp_path):
    assert tiny_config.name == "svac-tiny" and tiny_config.astc.clip_len == 5
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config.to_dict()))
    assert load_config(path) == tiny_config


def test_overrides_are_typed():
    cfg = load_config("tiny.yaml", ["astc.clip_len=4", "astc.mode=uncompressed", "inference.mask_threshold=1"])
    assert cfg.astc.clip_len == 4 and cfg.astc.mode == "uncompressed"
    assert cfg.inference.mask_threshold == 1.0 and isinstance(cfg.inference.mask_threshold, float)


@pytest.mark.parametrize("override, message", [
    ("astc.clip_lenn=4", "astc.clip_lenn"),
    ("astc.clip_len=four", "astc.clip_len"),
    ("astc.clip_len=true", "astc.clip_len"),
    ("astc.mode=fast", "astc.mode"),
    ("astc.clip_len=0", "clip_len must be >= 1"),
    ("mllm.text.vocab_size=10", "vocab_size"),
    ("novalue", "key.sub=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny.yaml", [override])


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        load_config("nothere.yaml")


def test_settings_sections_default_but_model_sections_are_required(tiny_config):
    data = tiny_config.to_dict()
    del data["astc"], data["csa"], data["inference"]
    data["astc"] = {"num_frames": 8}
    cfg = from_dict(SVACConfig, data)
    assert cfg.astc == ASTCConfig(num_frames=8) and cfg.sam2 == tiny_config.sam2
    with pytest.raises(ConfigError, match="no mllm and no sam2 section"):
        from_dict(SVACConfig, {"astc": {"num_frames": 8}})
