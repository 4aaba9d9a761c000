"""No code from a checkpoint or a config: hostile values end in a ConfigError naming the key, and nothing runs.

Each payload class -- a Hydra ``_target_`` inside a SAM-2 override, an interpolation ``${...}``,
an unknown key, a string where a number is expected, a path to a pickle -- goes through every
entry point that reads a config: ``svac segment --model FOLDER`` and ``--model FILE.yaml``,
``SVAC.from_pretrained(folder)``, ``svac train RUN/train_config.json --resume``, ``svac export
RUN``, and a Hugging Face cache folder. The payloads ride in configs of the *old* format (SAM-2
as a list of Hydra overrides), which svac still reads by converting each line to a typed field,
so the only thing wrong with each config is its payload. A payload that ran would create the
marker file ``PWNED``; it must never appear.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from svac.cli import main
from svac.config import SAM2_HYDRA_PATHS, SAM2Config, from_dict, load_config
from svac.errors import ConfigError
from svac.model import SVAC

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "svac" / "default_model"
HUB_ID = "svac-tests/hostile"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
MARKER_NAME = "PWNED"
ENV_VAR = "SVAC_TEST_PAYLOAD_ENV"


def legacy_sam2(sam2: dict) -> dict:
    """A typed ``sam2`` mapping written in the old format: one ``++model.<path>=<value>`` line per Hydra path."""
    out = {k: v for k, v in sam2.items() if k not in ("image_size", "trunk", "neck", "memory_attention",
                                                       "memory_encoder", "mask_decoder")}
    lines = []
    for key, paths in SAM2_HYDRA_PATHS.items():
        section, _, name = key.rpartition(".")
        value = (sam2.get(section) or {}).get(name) if section else sam2.get(name)
        if value is None:
            continue
        text = ("[" + ",".join(str(v) for v in value) + "]" if isinstance(value, list)
                else str(value).lower() if isinstance(value, bool) else str(value))
        lines += [f"++model.{path}={text}" for path in paths]
    out["overrides"] = lines
    return out


class _Touch:
    """Unpickling this runs ``pathlib.Path(marker).touch()``."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _target(config: dict, tmp: pathlib.Path) -> str:
    marker = tmp / MARKER_NAME
    config["sam2"]["overrides"].append(
        f"++model.image_encoder.trunk.payload={{_target_:builtins.open,file:{marker},mode:w}}")
    return r"sam2\.overrides\[\d+\]"


def _interpolation(config: dict, tmp: pathlib.Path) -> str:
    # unchecked, Hydra resolves it: the model is built with a value read from the environment
    config["sam2"]["overrides"].append(f"++model.image_encoder.neck.fpn_interp_model=${{oc.env:{ENV_VAR}}}")
    return r"sam2\.overrides\[\d+\].*oc\.env"


def _unknown_key(config: dict, tmp: pathlib.Path) -> str:
    config["mllm"]["text"]["payload_key"] = 1
    return r"mllm\.text\.payload_key"


def _not_a_number(config: dict, tmp: pathlib.Path) -> str:
    config["mllm"]["vision"]["hidden_size"] = str(config["mllm"]["vision"]["hidden_size"])
    return r"mllm\.vision\.hidden_size"


def _pickle_path(config: dict, tmp: pathlib.Path) -> str:
    path = tmp / "sam2_weights.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": _Touch(tmp / MARKER_NAME)}, f)
    config["sam2"]["checkpoint"] = str(path)
    return r"sam2\.checkpoint.*pickle"


PAYLOADS = {"target": _target, "interpolation": _interpolation, "unknown_key": _unknown_key,
            "not_a_number": _not_a_number, "pickle_path": _pickle_path}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "nearest")


def _poisoned(config: dict, payload: str, tmp: pathlib.Path) -> tuple[dict, str]:
    config = json.loads(json.dumps(config))
    config["sam2"] = legacy_sam2(config["sam2"])
    return config, PAYLOADS[payload](config, tmp)


def _model_folder(folder: pathlib.Path, payload: str, tmp: pathlib.Path) -> str:
    """A copy of the default model (weights linked) whose config.json carries ``payload``; returns the key regex."""
    folder.mkdir(parents=True)
    for item in DEFAULT_MODEL.iterdir():
        if item.name != "config.json":
            (folder / item.name).symlink_to(item)
    document = json.loads((DEFAULT_MODEL / "config.json").read_text())
    document["config"], key = _poisoned(document["config"], payload, tmp)
    (folder / "config.json").write_text(json.dumps(document, indent=2))
    return key


def _frames(tmp: pathlib.Path) -> pathlib.Path:
    folder = tmp / "frames"
    folder.mkdir()
    for i in range(3):
        image = np.zeros((48, 64, 3), dtype=np.uint8)
        image[10:30, 8 + 4 * i:28 + 4 * i] = (220, 40, 40)
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return folder


def _assert_cli_refused(rc: int, capsys, key: str, tmp: pathlib.Path) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("svac: error:") and "\n" not in err, err
    assert "Traceback" not in err
    assert re.search(key, err), err
    assert not (tmp / MARKER_NAME).exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_segment_model_folder(payload, tmp_path, capsys):
    key = _model_folder(tmp_path / "model", payload, tmp_path)
    rc = main(["segment", str(_frames(tmp_path)), "the red square", "--model", str(tmp_path / "model"),
               "--out", str(tmp_path / "out"), "--quiet", "--no-overlay"])
    _assert_cli_refused(rc, capsys, key, tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_segment_model_yaml(payload, tmp_path, capsys):
    config, key = _poisoned(load_config("tiny.yaml").to_dict(), payload, tmp_path)
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(config))
    rc = main(["segment", str(_frames(tmp_path)), "the red square", "--model", str(path),
               "--out", str(tmp_path / "out"), "--quiet", "--no-overlay"])
    _assert_cli_refused(rc, capsys, key, tmp_path)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_from_pretrained_folder(payload, tmp_path):
    key = _model_folder(tmp_path / "model", payload, tmp_path)
    with pytest.raises(ConfigError, match=key):
        SVAC.from_pretrained(tmp_path / "model")
    assert not (tmp_path / MARKER_NAME).exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hub_cache_folder(payload, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hub-cache"
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    key = _model_folder(repo / "snapshots" / COMMIT, payload, tmp_path)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    with pytest.raises(ConfigError, match=key):
        SVAC.from_pretrained(HUB_ID, cache_dir=cache, local_files_only=True)
    assert not (tmp_path / MARKER_NAME).exists()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "data"
    write_benchmark(root, videos=1, seed=5, num_frames=(12, 12), size=(64, 64), progress=False)
    return root


def _run_folder(run: pathlib.Path, payload: str, tmp: pathlib.Path, data: pathlib.Path) -> str:
    """A training run folder whose ``train_config.json`` carries ``payload`` in its model; returns the key regex."""
    from svac.training.checkpointing import STATE_FILE, checkpoint_dir

    model, key = _poisoned(load_config("tiny.yaml").to_dict(), payload, tmp)
    config = {"model": model, "lora": {"enabled": False}, "data": {"train": [f"rvos:{data}"]},
              "output_dir": str(run), "batch_size": 1, "grad_accum": 1, "max_steps": 2, "precision": "fp32"}
    step = checkpoint_dir(run, 1)
    step.mkdir(parents=True)
    (step / STATE_FILE).write_text(json.dumps({"step": 1, "history": []}))
    (run / "train_config.json").write_text(json.dumps(config, indent=2))
    return key


@pytest.mark.parametrize("payload", PAYLOADS)
def test_train_resume_from_train_config_json(payload, tmp_path, capsys, synth_root):
    run = tmp_path / "run"
    key = _run_folder(run, payload, tmp_path, synth_root)
    rc = main(["train", str(run / "train_config.json"), "--resume", "--quiet"])
    _assert_cli_refused(rc, capsys, key, tmp_path)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_export_run(payload, tmp_path, capsys, synth_root):
    run = tmp_path / "run"
    key = _run_folder(run, payload, tmp_path, synth_root)
    rc = main(["export", str(run), "--out", str(tmp_path / "exported")])
    _assert_cli_refused(rc, capsys, key, tmp_path)
    assert not (tmp_path / "exported").exists()


# --------------------------------------------------------------------------- the old format, case by case


def test_old_format_configs_convert_to_the_same_typed_config(tiny_config):
    old = legacy_sam2(tiny_config.to_dict()["sam2"])
    assert len(old["overrides"]) == 25 and "trunk" not in old
    assert from_dict(SAM2Config, old) == tiny_config.sam2


@pytest.mark.parametrize("line, key", [
    ("++model.image_encoder._target_=builtins.exec", r"sam2\.overrides\[0\].*does not set"),
    ("++model.memory_attention.layer={_target_:builtins.open,file:x,mode:w}", r"sam2\.overrides\[0\]"),
    ("++model.image_encoder.trunk.embed_dim={_target_:builtins.open}", r"sam2\.overrides\[0\].*not a number"),
    ("++model.image_size=${oc.env:HOME}", r"sam2\.overrides\[0\].*not a number"),
    ("++model.image_size=128${oc.env:HOME}", r"sam2\.overrides\[0\].*not a number"),
    ("++model.image_size=big", r"sam2\.overrides\[0\].*not a number"),
    ("hydra.job.chdir=true", r"sam2\.overrides\[0\].*does not set"),
    ("~model.memory_attention", r"sam2\.overrides\[0\].*does not set"),
    ("++model.image_encoder.trunk.stages=[1,1,${x}]", r"sam2\.overrides\[0\].*not a number"),
])
def test_old_format_lines_that_are_not_typed_sizes_are_refused(line, key):
    with pytest.raises(ConfigError, match=key) as info:
        from_dict(SAM2Config, {"config_name": "configs/sam2.1/sam2.1_hiera_t.yaml", "overrides": [line]},
                  where="sam2")
    assert "To convert an old config" in str(info.value)


def test_old_format_lines_that_disagree_are_refused():
    with pytest.raises(ConfigError, match="contradicts.*sam2.memory_attention.d_model"):
        from_dict(SAM2Config, {"overrides": ["++model.memory_attention.d_model=32",
                                             "++model.memory_attention.layer.d_model=64"]}, where="sam2")
    with pytest.raises(ConfigError, match="sam2.image_size is 128"):
        from_dict(SAM2Config, {"image_size": 128, "overrides": ["++model.image_size=256"]}, where="sam2")


@pytest.mark.parametrize("data, key", [
    ({"trunk": {"_target_": "builtins.open"}}, r"sam2\.trunk\._target_"),
    ({"trunk": {"embed_dim": {"_target_": "builtins.open"}}}, r"sam2\.trunk\.embed_dim"),
    ({"trunk": {"embed_dim": "${oc.env:HOME}"}}, r"sam2\.trunk\.embed_dim"),
    ({"trunk": {"embed_dim": True}}, r"sam2\.trunk\.embed_dim"),
    ({"config_name": "../../evil.yaml"}, r"sam2\.config_name"),
    ({"config_name": "configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml"}, r"sam2\.config_name"),
    ({"mask_decoder": {"payload": 1}}, r"sam2\.mask_decoder\.payload"),
    ({"checkpoint": "weights.pickle"}, r"sam2\.checkpoint"),
])
def test_typed_sam2_fields_refuse_anything_but_plain_numbers(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(SAM2Config, data, where="sam2")


@pytest.mark.parametrize("override, key", [
    ("mllm.text.rope_parameters={_target_: builtins.open, rope_theta: 1.0}", r"mllm\.text\.rope_parameters\._target_"),
    ("mllm.text.rope_parameters={rope_type: default, rope_theta: '${oc.env:HOME}'}",
     r"mllm\.text\.rope_parameters\.rope_theta.*interpolation"),
    ("mllm.text.hidden_act='${oc.env:HOME}'", r"mllm\.text\.hidden_act.*interpolation"),
    ("mllm.text.layer_types=[{_target_: builtins.open}]", r"mllm\.text\.layer_types"),
    ("mllm.text.architectures=[Qwen2ForCausalLM]", r"mllm\.text\.architectures"),
    ("mllm.vision.attn_implementation=eager", r"mllm\.vision\.attn_implementation"),
    ("mllm.text_model_type=bert", r"mllm\.text_model_type"),
    ("mllm.text.pad_token_id=0", r"mllm\.text\.pad_token_id"),
    ("mllm.tokenizer=tok.pkl", r"mllm\.tokenizer.*pickle"),
    ("mllm.attn_implementation=custom_kernel", r"mllm\.attn_implementation"),
    ("baseline.referformer={text_encoder_init_config: {_target_: builtins.open}}",
     r"baseline\.referformer\.text_encoder_init_config\._target_"),
    ("baseline.referformer={backbone_weights: weights.p}", r"backbone_weights.*pickle"),
    ("baseline.referformer={hidden_dim: '${oc.env:HOME}'}", r"baseline\.referformer\.hidden_dim"),
    ("baseline.lavt={embed_dim: {_target_: builtins.open}}", r"baseline\.lavt\.embed_dim"),
    ("baseline.lavt={text_encoder_path: bert.pickle}", r"text_encoder_path.*pickle"),
])
def test_library_keyword_dicts_take_only_the_library_class_fields_as_plain_data(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config("tiny.yaml", [override])


def test_referformer_weight_names_come_from_the_backbones_own_enum(tmp_path):
    from svac.heads.referformer.backbone import build_backbone
    from svac.baseline_config import ReferFormerConfig

    # a torchvision weight name of another model, and a name that is not a weight at all
    for name in ("ResNet50_Weights.IMAGENET1K_V1", "resnet50.IMAGENET1K_V1", "Swin_T_Weights.__class__"):
        with pytest.raises(ConfigError, match="Swin_T_Weights.IMAGENET1K_V1"):
            build_backbone(ReferFormerConfig(backbone="swin_t", backbone_weights=name))


def test_training_config_paths_and_names(tmp_path):
    from svac.training.config import load_train_config

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"init_from": "model.pkl"}))
    with pytest.raises(ConfigError, match=r"init_from.*pickle"):
        load_train_config(path)
    path.write_text(yaml.safe_dump({"init_from": "runs/x/model", "lora": {"target_modules": ["${oc.env:HOME}"]}}))
    with pytest.raises(ConfigError, match=r"lora\.target_modules"):
        load_train_config(path)
    path.write_text(yaml.safe_dump({"init_from": "runs/x/model", "data": {"train": ["evil.module:/data"]}}))
    from svac.data.readers import parse_spec

    cfg = load_train_config(path)
    with pytest.raises(ConfigError, match="unknown dataset 'evil.module'"):
        parse_spec(cfg.data.train[0])


def test_sam2_is_built_from_the_shipped_config_and_typed_values_only(tiny_config):
    """The composed tree holds only the sam2 package's strings and svac's class as ``_target_``."""
    from omegaconf import OmegaConf

    from svac.grounding.sam2_hydra import sam2_model_node
    from svac.grounding.sam2_model import LanguagePromptedSAM2

    node = OmegaConf.to_container(sam2_model_node(tiny_config.sam2, LanguagePromptedSAM2))
    targets = []

    def walk(tree):
        if isinstance(tree, dict):
            for k, v in tree.items():
                if k == "_target_":
                    targets.append(v)
                walk(v)
        elif isinstance(tree, list):
            for v in tree:
                walk(v)

    walk(node)
    assert targets[0] == "svac.grounding.sam2_model.LanguagePromptedSAM2"
    assert all(t.startswith("sam2.modeling.") for t in targets[1:]) and len(targets) > 10
    assert node["image_encoder"]["trunk"]["embed_dim"] == 16 and node["image_size"] == 128
    assert node["memory_attention"]["layer"]["cross_attention"]["embedding_dim"] == 32


def test_shipped_configs_are_in_the_typed_format():
    for path in [*REPO.glob("configs/*.yaml"), *REPO.glob("configs/train/*.yaml"), DEFAULT_MODEL / "config.json"]:
        assert "++model." not in path.read_text(), path

