"""svac's own checkpoint format: exact round trip, tied weights, atomic writes, LoRA adapters, load_model."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors import safe_open

from svac.checkpoints import svac_format
from svac.checkpoints.lora import add_lora, llm_lora_config, lora_wrapper, merge_lora
from svac.errors import CheckpointError, OutputExistsError
from svac.loading import UntrainedModelWarning, build_from_config, load_model
from svac.model import SVAC


def _inputs(model, seed=0):
    """A prompt with one image's worth of <IMG_CONTEXT> tokens and the image, for a teacher-forced pass."""
    from svac.mllm.tokens import IMG_CONTEXT

    gen = torch.Generator().manual_seed(seed)
    text = model.tokenizer("where is the swan? [SEG]", add_special_tokens=False).input_ids
    image = model.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    ids = torch.tensor([[*text[:3], *[image] * model.tokens_per_image, *text[3:]]])
    size = model.config.mllm.vision["image_size"]
    return ids, torch.randn(1, 3, size, size, generator=gen)


def _hidden(model, ids, pixels):
    with torch.no_grad():
        _, hidden = model.mllm_forward(ids, torch.ones_like(ids), pixels)
        return model.seg_prompts(hidden[0])


def _all_weight_names(folder):
    names = []
    for shard in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            names += list(f.keys())
    return names


def test_round_trip_is_exact_and_tied_weights_are_stored_once(tiny_model, tmp_path):
    saved = tiny_model.save_pretrained(tmp_path / "ck", max_shard_size=400_000)
    folder = saved.path
    document = json.loads((folder / "config.json").read_text())
    assert document["format"] == "svac" and document["format_version"] == svac_format.FORMAT_VERSION
    assert document["config"] == tiny_model.config.to_dict()
    assert len(saved.shards) > 3 and (folder / "model.safetensors.index.json").is_file()
    names = _all_weight_names(folder)
    assert "mllm.lm_head.weight" not in names and "mllm.model.language_model.embed_tokens.weight" in names
    assert len(names) == len(set(names)) == saved.num_tensors
    assert (folder / "tokenizer.json").is_file() and not (folder / "adapter").exists()

    loaded = SVAC.from_pretrained(folder)
    assert loaded.config == tiny_model.config
    assert loaded.mllm.lm_head.weight is loaded.mllm.model.language_model.embed_tokens.weight
    s1, s2 = tiny_model.state_dict(), loaded.state_dict()
    assert set(s1) == set(s2) and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert loaded.tokenizer.get_vocab() == tiny_model.tokenizer.get_vocab()
    assert loaded.seg_token_id == tiny_model.seg_token_id
    ids, pixels = _inputs(tiny_model)
    assert torch.equal(_hidden(loaded, ids, pixels), _hidden(tiny_model, ids, pixels))


def test_refuses_to_overwrite_and_leaves_nothing_behind_on_failure(tiny_model, tmp_path, monkeypatch):
    target = tmp_path / "ck"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        tiny_model.save_pretrained(target)
    assert (target / "notes.txt").read_text() == "precious"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(svac_format, "write_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny_model.save_pretrained(target, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no partial or backup folder left
    assert (target / "notes.txt").read_text() == "precious"  # the old content survives a failed overwrite
    monkeypatch.undo()

    tiny_model.save_pretrained(target, overwrite=True)
    assert not (target / "notes.txt").exists() and (target / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_stored_config_of_another_format_version_is_refused(tiny_model, tmp_path):
    folder = tiny_model.save_pretrained(tmp_path / "ck").path
    document = json.loads((folder / "config.json").read_text())
    document["format_version"] = 99
    (folder / "config.json").write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="format version 99"):
        SVAC.from_pretrained(folder)


def test_lora_adapter_saves_reloads_and_merges(tiny_config, tmp_path):
    model = build_from_config(tiny_config).eval()
    ids, pixels = _inputs(model)
    base = _hidden(model, ids, pixels)
    wrapper = add_lora(model, llm_lora_config(r=4, alpha=8, dropout=0.0))
    assert model.mllm.model.language_model is wrapper  # svac's (and the trainer's) convention
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert adapted and all(".language_model." in n for n in adapted)  # the vision tower is left alone
    assert {n.rsplit(".", 1)[1] for n in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"}
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.05)
    unmerged = _hidden(model, ids, pixels)
    assert not torch.allclose(unmerged, base, atol=1e-4)

    folder = model.save_pretrained(tmp_path / "ck").path
    assert (folder / "adapter/adapter_config.json").is_file() and (folder / "adapter/adapter_model.safetensors").is_file()
    names = _all_weight_names(folder)
    assert not any("lora" in n or "base_layer" in n for n in names)
    assert "mllm.model.language_model.layers.0.self_attn.q_proj.weight" in names

    reloaded = SVAC.from_pretrained(folder)
    assert lora_wrapper(reloaded) is not None
    torch.testing.assert_close(_hidden(reloaded, ids, pixels), unmerged, atol=1e-6, rtol=0)
    without = SVAC.from_pretrained(folder, load_adapter=False)
    assert lora_wrapper(without) is None and torch.equal(_hidden(without, ids, pixels), base)

    merge_lora(reloaded)
    assert lora_wrapper(reloaded) is None and not any(hasattr(m, "lora_A") for m in reloaded.modules())
    torch.testing.assert_close(_hidden(reloaded, ids, pixels), unmerged, atol=1e-5, rtol=0)


def test_load_model_takes_a_checkpoint_folder(tiny_model, tmp_path):
    folder = tiny_model.save_pretrained(tmp_path / "ck").path
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(str(folder), device="cpu", overrides=["csa.mode=single"])
    assert any(issubclass(w.category, UntrainedModelWarning) for w in caught)  # tiny.yaml is untrained
    assert model.config.csa.mode == "single" and not model.training and model.device.type == "cpu"
    assert torch.equal(model.state_dict()["text_hidden_fcs.2.weight"], tiny_model.state_dict()["text_hidden_fcs.2.weight"])


def test_device_maps_must_cover_every_module(tiny_model, tmp_path):
    folder = tiny_model.save_pretrained(tmp_path / "ck").path
    model = SVAC.from_pretrained(folder, device_map={"mllm": "cpu", "grounding": "cpu", "text_hidden_fcs": "cpu"})
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert {p.device.type for p in SVAC.from_pretrained(folder, device_map="auto").parameters()} == {"cpu"}
    with pytest.raises(CheckpointError, match="device map places no module containing grounding"):
        SVAC.from_pretrained(folder, device_map={"mllm": "cpu", "text_hidden_fcs": "cpu"})


def test_lora_outside_the_language_model_is_refused_when_saving(tiny_config, tmp_path):
    from peft import LoraConfig, get_peft_model

    model = build_from_config(tiny_config)
    model.mllm.model.vision_tower = get_peft_model(model.mllm.model.vision_tower, LoraConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(CheckpointError, match="only saved on the language model"):
        model.save_pretrained(tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
