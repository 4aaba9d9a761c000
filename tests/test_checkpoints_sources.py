"""Where weights come from: Hub ids without network, Meta SAM 2 files, InternVL + SAM 2 composition, bitsandbytes."""

from __future__ import annotations

import dataclasses
import pickle
import shutil

import huggingface_hub.constants
import pytest
import torch
from test_checkpoints_synthetic import TINY_SAM2, write_sa2va_checkpoint

from svac.checkpoints.compose import compose_from_pretrained
from svac.checkpoints.hub import resolve_checkpoint
from svac.checkpoints.loader import load_checkpoint
from svac.checkpoints.quantization import QuantizationUnavailableError
from svac.checkpoints.sam2_meta import meta_sam2_config, replace_grounding, sam2_config_for
from svac.config import SAM2Config, from_dict
from svac.errors import CheckpointError, ConfigError
from svac.grounding.sam2_model import build_sam2_model
from svac.loading import build_from_config
from svac.model import SVAC

HUB_ID = "svac-tests/tiny-sa2va"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _tiny_sam2_config(checkpoint=None) -> SAM2Config:
    return dataclasses.replace(from_dict(SAM2Config, TINY_SAM2),
                               checkpoint=None if checkpoint is None else str(checkpoint))


@pytest.fixture(scope="module")
def meta_sam2_file(tmp_path_factory):
    """A Meta-style SAM 2 file ``{"model": state_dict}`` of the tiny hiera-L SAM 2.0, and its state dict."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(21)
        sam2 = build_sam2_model(_tiny_sam2_config())
    state = {k: v.clone() for k, v in sam2.state_dict().items()}
    path = tmp_path_factory.mktemp("sam2") / "tiny_sam2.pt"
    torch.save({"model": state}, path)
    return path, state


# --------------------------------------------------------------------------- Hub ids


def test_hub_id_missing_from_cache_offline_names_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hub-cache"
    with pytest.raises(CheckpointError, match=f"not in the Hugging Face cache {cache}.*offline"):
        SVAC.from_pretrained(HUB_ID, cache_dir=cache)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(CheckpointError, match=f"not in the Hugging Face cache {cache}.*local_files_only"):
        resolve_checkpoint(HUB_ID, cache_dir=cache, local_files_only=True)
    with pytest.raises(CheckpointError, match="neither a checkpoint folder nor a Hugging Face Hub id"):
        resolve_checkpoint("no such/thing/here")


def test_hub_unreachable_and_not_cached_names_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    cache = tmp_path / "hub-cache"
    with pytest.raises(CheckpointError, match=f"not in the Hugging Face cache {cache} and the Hub cannot be reached"):
        resolve_checkpoint(HUB_ID, cache_dir=cache)


def test_hub_id_in_the_cache_loads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hub-cache"
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    write_sa2va_checkpoint(snapshot, "qwen2", seed=4)  # the layout huggingface_hub keeps in its cache
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    assert resolve_checkpoint(HUB_ID, cache_dir=cache) == snapshot
    loaded = load_checkpoint(HUB_ID, model_class=SVAC, cache_dir=cache)
    assert loaded.folder == snapshot and loaded.report.kind == "sa2va"


# --------------------------------------------------------------------------- quantization


def test_quantized_loading_without_bitsandbytes_says_what_to_install(tmp_path):
    with pytest.raises(QuantizationUnavailableError, match=r"svac\[quant\]"):
        SVAC.from_pretrained(tmp_path, load_in_8bit=True)
    with pytest.raises(QuantizationUnavailableError, match="bitsandbytes"):
        SVAC.from_pretrained(tmp_path, load_in_4bit=True)
    with pytest.raises(ConfigError, match="one of load_in_8bit and load_in_4bit"):
        SVAC.from_pretrained(tmp_path, load_in_8bit=True, load_in_4bit=True)


# --------------------------------------------------------------------------- Meta SAM 2 files


def test_meta_file_names_map_to_sam2_package_configs():
    assert sam2_config_for("ckpts/sam2_hiera_large.pt").config_name == "configs/sam2/sam2_hiera_l.yaml"
    assert sam2_config_for("sam2.1_hiera_base_plus.pt").config_name == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert sam2_config_for("sam2.1_hiera_tiny.pt").checkpoint == "sam2.1_hiera_tiny.pt"
    with pytest.raises(CheckpointError, match="not a Meta SAM 2 file name"):
        sam2_config_for("my_sam.pt")


def test_a_meta_file_keeps_every_sam2_option_of_the_model(tmp_path):
    # the architecture comes from the file name; multimask output, kept logits (Sa2VA's), memory and
    # batch options stay the model's
    path = tmp_path / "sam2_hiera_large.pt"
    path.write_bytes(b"")
    mine = SAM2Config(image_size=64, multimask_output=True, keep_absent_object_logits=True,
                      max_cond_frames_in_attn=-1, encoder_batch_size=3)
    new = meta_sam2_config(path, options_of=mine)
    assert (new.config_name, new.checkpoint, new.image_size) == ("configs/sam2/sam2_hiera_l.yaml", str(path), None)
    assert (new.multimask_output, new.keep_absent_object_logits, new.max_cond_frames_in_attn,
            new.encoder_batch_size) == (True, True, -1, 3)
    with pytest.raises(CheckpointError, match="not found"):
        meta_sam2_config(tmp_path / "sam2.1_hiera_tiny.pt", options_of=mine)


def test_replace_grounding_loads_a_meta_file_strictly(tiny_config, meta_sam2_file, tmp_path):
    path, state = meta_sam2_file
    model = build_from_config(tiny_config)  # SAM 2.1 hiera-T (tiny) -> replaced by SAM 2.0 hiera-L (tiny)
    replace_grounding(model, path, config=_tiny_sam2_config())
    assert model.config.sam2.config_name == "configs/sam2/sam2_hiera_l.yaml"
    assert model.config.sam2.checkpoint == str(path)
    own = model.grounding.state_dict()
    assert set(own) == set(state) and all(torch.equal(own[k], state[k]) for k in state)

    other = dict(state)
    other.pop("no_mem_embed")
    torch.save({"model": other}, tmp_path / "incomplete.pt")
    with pytest.raises(CheckpointError, match="missing.*no_mem_embed"):
        replace_grounding(model, tmp_path / "incomplete.pt", config=_tiny_sam2_config())


class _Payload:
    """An arbitrary object: unpickling it would run code, which weights_only loading refuses."""


def test_meta_files_are_never_unpickled(tiny_config, tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"model": _Payload()}, f, protocol=2)
    model = build_from_config(tiny_config)
    with pytest.raises(CheckpointError, match="cannot read SAM 2 checkpoint"):
        replace_grounding(model, tmp_path / "evil.pt", config=_tiny_sam2_config())


def test_sa2va_with_its_sam2_replaced_by_a_meta_file(tmp_path, meta_sam2_file):
    path, state = meta_sam2_file
    tensors = write_sa2va_checkpoint(tmp_path / "ck", "qwen2", seed=8)
    loaded = load_checkpoint(tmp_path / "ck", model_class=SVAC, sam2_checkpoint=_tiny_sam2_config(path))
    ignored = loaded.report.ignored
    assert set(ignored) == {k for k in tensors if k.startswith("grounding_encoder.sam2_model.")}
    assert all("replaced by the SAM 2 checkpoint" in why for why in ignored.values())
    own = loaded.model.grounding.state_dict()
    assert all(torch.equal(own[k], state[k]) for k in state)
    assert torch.equal(loaded.model.state_dict()["text_hidden_fcs.0.weight"], tensors["text_hidden_fcs.0.weight"])


# --------------------------------------------------------------------------- InternVL + SAM 2


def test_compose_internvl_chat_checkpoint_with_sam2(tmp_path, meta_sam2_file):
    path, state = meta_sam2_file
    tensors = write_sa2va_checkpoint(tmp_path / "InternVL2_5-tiny", "qwen2", model_type="internvl_chat",
                                     template="internvl2_5", seed=9)
    assert not any(k.startswith(("grounding_encoder", "text_hidden_fcs")) for k in tensors)
    first = compose_from_pretrained(tmp_path / "InternVL2_5-tiny", _tiny_sam2_config(path), model_class=SVAC)
    model = first.model
    assert first.report.kind == "internvl_chat" and model.config.trained is False
    assert model.config.csa.mode == "per_clip" and model.config.mllm.chat_template == "qwen"
    weights = model.state_dict()
    assert torch.equal(weights["mllm.model.multi_modal_projector.linear_2.weight"], tensors["mlp1.3.weight"])
    assert all(torch.equal(weights["grounding." + k], v) for k, v in state.items())
    second = compose_from_pretrained(tmp_path / "InternVL2_5-tiny", _tiny_sam2_config(path), model_class=SVAC)
    assert torch.equal(second.model.state_dict()["text_hidden_fcs.0.weight"], weights["text_hidden_fcs.0.weight"])
    with pytest.raises(CheckpointError, match="InternVL checkpoint without SAM 2.*compose_from_pretrained"):
        SVAC.from_pretrained(tmp_path / "InternVL2_5-tiny")


def test_compose_native_transformers_internvl_with_sam2(tiny_model, tmp_path, meta_sam2_file):
    path, state = meta_sam2_file
    folder = tmp_path / "InternVL-hf-tiny"
    tiny_model.mllm.save_pretrained(folder)
    tiny_model.tokenizer.save_pretrained(folder)
    model = compose_from_pretrained(folder, _tiny_sam2_config(path), model_class=SVAC).model
    ours, theirs = model.mllm.state_dict(), tiny_model.mllm.state_dict()
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert model.config.mllm.text_model_type == "qwen2" and model.config.mllm.chat_template == "qwen"
    assert all(torch.equal(model.grounding.state_dict()[k], v) for k, v in state.items())
    saved = model.save_pretrained(tmp_path / "svac-init")
    assert SVAC.from_pretrained(saved.path).config == model.config
    shutil.rmtree(folder)
