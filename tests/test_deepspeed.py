"""DeepSpeed ZeRO-2 on the CPU: two gloo processes take real optimizer updates of a tiny SVAC (opt-in).

Opt-in (``SVAC_RUN_DEEPSPEED=1``, needs the ``train`` extra): it launches the real recipe twice,
``svac train ... --deepspeed configs/deepspeed/zero2.json`` under ``torch.distributed.run`` with
two processes on the CPU (``DS_ACCELERATOR=cpu``: DeepSpeed's CPU accelerator, gloo), and the
same config in one plain process that accumulates the two processes' micro-batches. With
fp32 and no dropout, data parallelism over N processes of one video each is, by construction,
the same update as one process accumulating N micro-batches (the sharded sampler deals the
same shuffled order round-robin), so the two runs must follow the same learning-rate schedule
and end with the same weights up to float rounding. One known difference is checked for what
it is: ZeRO flattens every trainable parameter, so one that gets no gradient (SAM-2's IoU head
here) still takes AdamW's decoupled weight decay, where torch's AdamW skips it. The first
launch JIT-builds DeepSpeed's shared-memory comm op (about a minute on this project's 2-core
machine); the whole module then takes under a minute.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

OPT_IN_ENV = "SVAC_RUN_DEEPSPEED"

pytestmark = [
    pytest.mark.deepspeed,
    pytest.mark.skipif(os.environ.get(OPT_IN_ENV) != "1",
                       reason=f"opt-in: set {OPT_IN_ENV}=1 (needs the train extra)"),
]

REPO_ROOT = Path(__file__).resolve().parents[1]
ZERO2_CONFIG = REPO_ROOT / "configs" / "deepspeed" / "zero2.json"
NUM_PROCESSES = 2
UPDATES = 2
VIDEOS = NUM_PROCESSES * UPDATES      # one epoch: every process sees one video per update
VIDEO_FRAMES = 16
FRAME_SIZE = (64, 64)                 # (W, H) pixels
DATA_SEED = 3
LAUNCH_TIMEOUT_S = 900                # the first launch compiles DeepSpeed's shm comm op
OUTPUT_TAIL_LINES = 60
# fp32 all-reduce vs local accumulation differ only in summation order (measured: 1e-5 of the
# update's norm, almost all of it from attention key biases, whose true gradient is 0).
UPDATE_REL_TOL = 1e-4
# SAM-2.1's memory attention has dropout 0.1; its random masks would differ between a second
# process and a second micro-batch of the same process, so the comparison turns it off
# (sam2.memory_attention.dropout = 0).


@dataclass(frozen=True)
class Runs:
    """The two finished training runs: ZeRO-2 over two processes, and its one-process reference."""

    config: Path
    zero2: Path
    reference: Path


def _train_config(data_root: Path) -> dict:
    """A tiny SVAC recipe config (as tests/test_training.py builds, without dropout): 1 video per process per update."""
    from svac.config import load_config

    tiny = load_config("tiny.yaml")
    model = dataclasses.replace(tiny, astc=dataclasses.replace(tiny.astc, num_frames=6, clip_len=3),
                                sam2=dataclasses.replace(tiny.sam2, memory_attention=dataclasses.replace(
                                    tiny.sam2.memory_attention, dropout=0.0)))
    return {"model": model.to_dict(), "lora": {"enabled": False},
            "trainable": ["projector", "text_hidden_fcs", "sam2_mask_decoder", "special_tokens"],
            "data": {"train": [f"rvos:{data_root}"], "expressions_per_video": 2},
            "optim": {"lr": 1e-3, "warmup_ratio": 0.0}, "output_dir": "unset", "batch_size": 1,
            "grad_accum": 1, "max_steps": UPDATES, "precision": "fp32", "log_every": 1, "save_every": 1,
            "seed": 0}


def _launch(command: list[str], log: Path) -> None:
    env = dict(os.environ)
    env["DS_ACCELERATOR"] = "cpu"
    env.pop("ACCELERATE_USE_CPU", None)  # accelerate's --cpu switches DeepSpeed off
    env.setdefault("OMP_NUM_THREADS", "1")
    with open(log, "w", encoding="utf-8") as out:
        try:
            code = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=LAUNCH_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            code = None
    if code != 0:
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-OUTPUT_TAIL_LINES:])
        status = f"timed out after {LAUNCH_TIMEOUT_S} s" if code is None else f"exited with {code}"
        pytest.fail(f"{' '.join(command)}\n{status}; last lines of {log}:\n{tail}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    """Synthesise 4 videos, then train 2 updates with ZeRO-2 on 2 CPU processes and in 1 plain process."""
    if importlib.util.find_spec("deepspeed") is None:
        pytest.fail(f"{OPT_IN_ENV}=1 but deepspeed is not importable: install the train extra "
                    "(pip install -e '.[train]')")
    from svac.data.synthetic import write_benchmark

    tmp = tmp_path_factory.mktemp("deepspeed")
    write_benchmark(tmp / "synth", videos=VIDEOS, seed=DATA_SEED, num_frames=(VIDEO_FRAMES, VIDEO_FRAMES),
                    size=FRAME_SIZE, progress=False)
    config = tmp / "train.yaml"
    config.write_text(json.dumps(_train_config(tmp / "synth"), indent=1))  # JSON is YAML
    zero2, reference = tmp / "zero2", tmp / "reference"
    _launch([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={NUM_PROCESSES}",
             "-m", "svac.cli", "train", str(config), f"output_dir={zero2}", "--deepspeed", str(ZERO2_CONFIG),
             "--quiet"], tmp / "zero2.log")
    _launch([sys.executable, "-m", "svac.cli", "train", str(config), f"output_dir={reference}",
             f"grad_accum={NUM_PROCESSES}", "--quiet"], tmp / "reference.log")
    return Runs(config=config, zero2=zero2, reference=reference)


def _history(run_dir: Path) -> list[dict]:
    lines = (run_dir / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_zero2_run_finishes_its_updates_with_one_optimizer_shard_per_process(runs):
    result = json.loads((runs.zero2 / "train_result.json").read_text())
    assert result["steps"] == UPDATES
    history = _history(runs.zero2)
    assert [h["step"] for h in history] == list(range(1, UPDATES + 1))
    assert all(math.isfinite(v) for h in history for v in h.values())
    last = runs.zero2 / "checkpoints" / f"step-{UPDATES:07d}"
    assert json.loads((last / "trainer_state.json").read_text())["step"] == UPDATES
    shards = sorted(p.name for p in last.rglob("*optim_states.pt"))
    assert shards == [f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt" for rank in range(NUM_PROCESSES)]
    from svac.loading import load_model

    assert load_model(runs.zero2 / "model", device="cpu").config.trained


def test_zero2_updates_equal_one_process_accumulating_the_same_batches(runs):
    from svac.loading import load_model
    from svac.training.config import load_train_config
    from svac.training.hooks import training_hooks

    ours, reference = _history(runs.zero2), _history(runs.reference)
    assert [h["lr"] for h in ours] == pytest.approx([h["lr"] for h in reference], rel=1e-9, abs=1e-12)

    finetune = importlib.import_module("svac.recipes.finetune")
    cfg = load_train_config(runs.config)
    init = finetune.build_model(cfg, finetune.training_samples(cfg))  # the runs' own initialisation
    training_hooks(init).configure_training(init, cfg)
    before = init.state_dict()
    got = load_model(runs.zero2 / "model", device="cpu").state_dict()
    want = load_model(runs.reference / "model", device="cpu").state_dict()
    assert got.keys() == want.keys() == before.keys()
    decay_bound = UPDATES * cfg.optim.lr * cfg.optim.weight_decay  # relative shrink, at most
    diff_sq = want_sq = 0.0
    gradient_free = []
    for name, start in before.items():
        step_got = got[name].double() - start.double()
        step_want = want[name].double() - start.double()
        if not step_want.any():  # no gradient reached it (or frozen): at most weight decay under ZeRO
            gradient_free.append(name)
            assert (step_got.abs() <= decay_bound * start.double().abs() * (1 + 1e-6) + 1e-12).all(), name
            continue
        diff_sq += float((step_got - step_want).pow(2).sum())
        want_sq += float(step_want.pow(2).sum())
    assert want_sq > 0, "the reference run did not change any weight"
    assert len(gradient_free) < len(before)
    assert math.sqrt(diff_sq / want_sq) < UPDATE_REL_TOL
