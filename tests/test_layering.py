"""The layering: no import cycles in svac/, one segmentation-model protocol, training hooks in the training layer."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest
import torch

from svac.errors import ConfigError
from svac.heads import HEADS, head_class
from svac.segmentation_model import SegmentationModel
from svac.training.hooks import TRAINING_HOOKS, TrainingHooks, training_hooks

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "eval"))
from import_cycles import count_cycles, import_graph  # noqa: E402

TINY = {"svac": "tiny.yaml", "referformer": "referformer_tiny.yaml", "lavt": "lavt_tiny.yaml"}
#: Keyword arguments every head's from_pretrained takes (what svac.loading.load_model passes, and more).
FROM_PRETRAINED = ("torch_dtype", "device_map", "overrides", "revision", "cache_dir", "local_files_only")
SEGMENT = ("num_frames", "clip_len", "progress")


def test_no_import_cycle_in_svac_even_inside_functions():
    runtime = import_graph(REPO / "svac")["runtime"]
    count, cycles = count_cycles(runtime)
    assert count == 0, f"import cycles: {cycles}"
    # the tool sees function-level imports: the model's inference methods import svac.inference when called
    assert "function" in runtime.edges["svac.model", "svac.inference"]["kinds"]
    assert not runtime.has_edge("svac.checkpoints.building", "svac.model")  # loading is handed the class


def test_the_model_module_holds_no_training_or_loading_code():
    from svac.model import SVAC

    own = vars(SVAC)
    for hook in ("configure_training", "example_builder", "collate_fn", "training_objective"):
        assert not hasattr(SVAC, hook)
    assert "from_pretrained" not in own and "save_pretrained" not in own  # the base class's
    assert callable(SVAC.from_pretrained) and callable(SVAC.save_pretrained)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_every_head_is_a_segmentation_model_with_one_signature(head):
    cls = head_class(head)
    for name in ("from_config", "from_pretrained", "save_pretrained", "segment"):
        assert callable(getattr(cls, name)), name
    params = inspect.signature(cls.from_pretrained).parameters
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in FROM_PRETRAINED), head
    assert "device" not in params  # one spelling: device_map (loading.py used to pass device= to baselines)
    assert all(k in inspect.signature(cls.segment).parameters for k in SEGMENT)
    assert {"max_shard_size", "overwrite"} <= set(inspect.signature(cls.save_pretrained).parameters)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_each_head_has_its_training_hooks_and_built_models_satisfy_the_protocol(head):
    from svac.config import load_config
    from svac.loading import build_from_config

    assert set(TRAINING_HOOKS) == set(HEADS)
    model = build_from_config(load_config(TINY[head]))
    assert isinstance(model, SegmentationModel)
    hooks = training_hooks(model)
    assert isinstance(hooks, TrainingHooks) and hooks is TRAINING_HOOKS[head]


def test_an_unknown_head_has_no_training_hooks():
    class Fake:
        class config:  # noqa: N801 -- stands for a config object
            head = "maskformer"

    with pytest.raises(ConfigError, match="'maskformer' head has no training hooks"):
        training_hooks(Fake())


def test_a_baseline_loads_on_the_one_device_a_device_map_names(tmp_path):
    from svac.config import load_config
    from svac.loading import build_from_config

    model = build_from_config(load_config("lavt_tiny.yaml"))
    model.save_pretrained(tmp_path / "ck")
    cls = head_class("lavt")
    for device_map in (None, "cpu", torch.device("cpu"), {"": "cpu"}, {"head": "cpu", "": "cpu"}):
        loaded = cls.from_pretrained(tmp_path / "ck", device_map=device_map)
        assert loaded.device == torch.device("cpu")
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    with pytest.raises(ConfigError, match="loaded on one device"):
        cls.from_pretrained(tmp_path / "ck", device_map={"head.backbone": "cpu", "": "meta"})
