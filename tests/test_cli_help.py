"""The ``svac`` command's help names files that exist, and ``svac train`` reads the documented config path."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from svac.cli import build_parser
from svac.config import shipped_config
from svac.training.config import TRAIN_CONFIG_DIR, load_train_config

REPO = Path(__file__).resolve().parents[1]
#: A file the help points to: a path with a folder (``configs/deepspeed/zero2.json``) or a config name
#: (``x.yaml``); bare output names (``metrics.json``) are what a command writes, not files to find.
FILE_NAME = re.compile(r"[\w.+-]+/[\w./+-]+\.(?:yaml|json|py)\b|[\w.+-]+\.yaml\b")


def _help_texts(parser: argparse.ArgumentParser, where: str = "svac"):
    yield where, parser.description or ""
    for action in parser._actions:
        yield where, action.help or ""
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield where, choice.help or ""
            for name, sub in action.choices.items():
                yield from _help_texts(sub, f"{where} {name}")


def test_every_file_the_help_names_exists():
    named = [(where, name) for where, text in _help_texts(build_parser()) for name in FILE_NAME.findall(text)]
    assert any(where == "svac train" and name.startswith("configs/train/") for where, name in named)  # sees the help
    missing = [(where, name) for where, name in named
               if not ((REPO / name).is_file() or ("/" not in name and shipped_config(name, TRAIN_CONFIG_DIR)))]
    assert not missing, f"help names files that do not exist: {missing}"


def test_train_config_by_documented_path_bare_name_and_from_another_folder(tmp_path, monkeypatch):
    documented = load_train_config("configs/train/lavt_synthetic.yaml")
    monkeypatch.chdir(tmp_path)  # no configs/ here: the shipped file is found by the same names
    assert load_train_config("configs/train/lavt_synthetic.yaml") == documented
    assert load_train_config("lavt_synthetic.yaml") == documented
    assert documented.model.head == "lavt"
    launch = (REPO / "configs/train/lavt_synthetic.yaml").read_text().splitlines()[0]
    assert "svac train configs/train/lavt_synthetic.yaml" in launch


def test_train_overrides_may_follow_its_options_and_other_strays_are_refused(capsys):
    """``svac train CONFIG --resume max_steps=100`` (overrides after an option, as the configs' launch lines
    invite) parses the overrides in order; a stray argument of another command is still refused."""
    import pytest

    from svac.cli import parse_arguments

    args = parse_arguments(["train", "svac_default_1_image.yaml", "seed=1", "--resume", "max_steps=2", "save_every=1"])
    assert args.resume and args.config == "svac_default_1_image.yaml"
    assert args.overrides == ["seed=1", "max_steps=2", "save_every=1"]
    with pytest.raises(SystemExit) as exit_:
        parse_arguments(["train", "svac_default_1_image.yaml", "--resume", "--frobnicate"])
    assert exit_.value.code == 2 and "unrecognized arguments: --frobnicate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_arguments(["export", "runs/x", "--out", "y", "max_steps=2"])
    assert "unrecognized arguments: max_steps=2" in capsys.readouterr().err
