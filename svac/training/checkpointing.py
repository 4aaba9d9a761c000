"""Resumable training checkpoints, written atomically.

A checkpoint is a folder ``OUTPUT/checkpoints/step-NNNNNNN`` holding accelerate's
``save_state`` (model, optimizer, scheduler and RNG states; DeepSpeed ZeRO
shards under DeepSpeed) plus ``trainer_state.json`` (the update step and the
loss history). It is written into a hidden temporary folder and renamed into
place, so an interrupted save never leaves a half checkpoint, and the newest
complete checkpoint is what ``--resume`` continues from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
PREFIX = "step-"


@dataclass
class TrainerState:
    """Progress of a run.

    Attributes:
        step: optimizer updates done.
        history: per update, the logged losses (``{"step": int, "loss": float, ...}``).
    """

    step: int = 0
    history: list[dict] = field(default_factory=list)


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """Folder of the checkpoint after ``step`` updates."""
    return Path(output_dir) / CHECKPOINTS_DIR / f"{PREFIX}{step:07d}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or ``None``."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / STATE_FILE).is_file())
    return done[-1] if done else None


def save_checkpoint(accelerator: "Accelerator", output_dir: str | Path, state: TrainerState, *, keep: int) -> Path:
    """Save a checkpoint atomically and delete all but the ``keep`` newest.

    Every process must call this (DeepSpeed saves shards from all ranks); only the main
    process renames and prunes.
    """
    final = checkpoint_dir(output_dir, state.step)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".tmp-{final.name}"
    if accelerator.is_main_process and staging.exists():
        shutil.rmtree(staging)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with tempfile.NamedTemporaryFile("w", dir=staging, delete=False, suffix=".json") as f:
            json.dump(asdict(state), f)
        os.replace(f.name, staging / STATE_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        done = sorted(p for p in root.iterdir() if p.name.startswith(PREFIX))
        for old in done[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: "Accelerator", path: str | Path) -> TrainerState:
    """Restore model, optimizer, scheduler and RNG states from ``path``; return the trainer state.

    Raises:
        FileNotFoundError: when ``path`` is not a complete checkpoint.
    """
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a complete training checkpoint (no {STATE_FILE})")
    accelerator.load_state(str(path))
    data = json.loads((path / STATE_FILE).read_text())
    return TrainerState(step=int(data["step"]), history=list(data["history"]))
