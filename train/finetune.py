"""SVAC training recipe: one accelerate loop, DeepSpeed ZeRO on GPUs, plain on a CPU.

Run it as ``svac train CONFIG [key=value ...] [--deepspeed configs/deepspeed/zero2.json] [--resume]``
(multi-GPU: ``accelerate launch --num_processes N -m svac.cli train ...``). Each config in
``configs/train/`` starts with its exact launch command, the hardware it assumes and its wall time.

What the loop does, per optimizer update (``batch_size`` videos x ``grad_accum`` micro-steps per
process): the MLLM reads each video's conversation (ASTC frames, K expressions, CSA answers) with
teacher forcing; the ``[SEG]`` states prompt SAM-2, which tracks the K objects through the sampled
frames with its memory as at inference; the loss is CE + 2.0 BCE + 0.5 Dice (+ SAM-2 presence).
Checkpoints are atomic and resumable with the same loss trajectory; a non-finite loss stops the
run with the last good checkpoint kept. An objective may own training-only parameters (e.g. the head
of :class:`svac.training.encoder_objective.EncoderPretrainingObjective`): they train in the groups its
``own_param_groups()`` gives, are checkpointed with it (so ``--resume`` restores them) and are not saved
with the model.

The loop only talks to the model through the training hooks of its head
(:data:`svac.training.hooks.TRAINING_HOOKS`: ``configure_training``, ``example_builder``,
``collate_fn``, ``training_objective``) and ``save_pretrained``, so the baseline heads
(``model.head: referformer | lavt``, :mod:`svac.heads.rvos`) train through it unchanged: each
example is ``baseline.window`` frames of a video with its expressions, and the loss is the
head's own criterion.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from svac.errors import SVACError
from svac.training.checkpointing import TrainerState, latest_checkpoint, load_checkpoint, save_checkpoint
from svac.training.config import TrainConfig
from svac.training.data import VideoExpressionDataset
from svac.training.hooks import training_hooks
from svac.training.params import row_masked_parameters

LOG_FILE = "train_log.jsonl"
MODEL_DIR = "model"
RESULT_FILE = "train_result.json"


class TrainingDivergedError(SVACError, RuntimeError):
    """The loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""


@dataclass
class TrainResult:
    """Summary of a finished run.

    Attributes:
        steps: optimizer updates done.
        final_loss: mean total loss of the last logged window.
        wall_seconds: wall time of this invocation (seconds); ``train_result.json`` also records
            ``train_seconds``, the optimisation time summed over every invocation (resumes included),
            ``train_cpu_seconds``, the process CPU time of the same (all threads; a measure that other
            jobs on a shared machine do not inflate), and each ``train_log.jsonl`` record its cumulative
            ``seconds`` and ``cpu_seconds``.
        peak_rss_mb: peak resident memory of the process (MiB).
        model_dir: where the trained model was saved.
        history: per update, the losses.
    """

    steps: int
    final_loss: float
    wall_seconds: float
    peak_rss_mb: float
    model_dir: Path
    history: list[dict]


def run(cfg: TrainConfig, *, deepspeed: str | None = None, resume: bool = False,
        stop_after: int | None = None, progress: bool = True) -> TrainResult:
    """Train according to ``cfg``.

    Args:
        cfg: the run's configuration.
        deepspeed: a DeepSpeed JSON config (``configs/deepspeed/zero2.json`` ...); needs the
            ``train`` extra and, in practice, GPUs.
        resume: continue from the newest checkpoint in ``cfg.output_dir``; a run that already finished
            (its model and ``train_result.json`` saved) is left as it is and its result returned.
        stop_after: stop (after checkpointing) once this many updates are done in total; the
            run can be resumed later. For tests and time-boxed runs.
        progress: show a progress bar.

    Raises:
        FileExistsError: when ``cfg.output_dir`` already holds a run and ``resume`` is false.
        TrainingDivergedError: on a non-finite loss.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, set_seed

    t_start = time.perf_counter()
    out = Path(cfg.output_dir)
    if resume and (out / MODEL_DIR).is_dir() and (out / RESULT_FILE).is_file():
        return _finished(out)  # nothing left to do: a chain of stages can be rerun with --resume
    previous = latest_checkpoint(out)
    if not resume and (previous is not None or (out / MODEL_DIR).exists()):
        raise FileExistsError(f"{out} already holds a training run; pass --resume to continue it or choose "
                              "another output_dir")
    plugin = None
    from accelerate.utils import DistributedDataParallelKwargs

    # plain multi-process runs: some heads have parts without a gradient in a given batch
    # (e.g. SAM-2's IoU head), which DDP otherwise refuses
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    if deepspeed is not None:
        from accelerate.utils import DeepSpeedPlugin, InitProcessGroupKwargs  # imports deepspeed lazily
        from deepspeed.accelerator import get_accelerator

        # the JSON's "gradient_clipping": "auto" would always become 1.0: take the config's value
        plugin = DeepSpeedPlugin(hf_ds_config=deepspeed, gradient_clipping=cfg.optim.max_grad_norm)
        # accelerate names a process-group backend only for GPU-like devices; on a CPU
        # (DS_ACCELERATOR=cpu) every rank would believe it is process 0 of 1. Name DeepSpeed's own
        # backend (nccl on CUDA, which is accelerate's default anyway; gloo or ccl on a CPU).
        handlers.append(InitProcessGroupKwargs(backend=get_accelerator().communication_backend_name()))
    precision = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.precision]
    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, mixed_precision=precision,
                              deepspeed_plugin=plugin, kwargs_handlers=handlers,
                              dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    set_seed(cfg.seed)

    samples = training_samples(cfg)
    model = build_model(cfg, samples)
    hooks = training_hooks(model)
    summary = hooks.configure_training(model, cfg)
    dataset, loader = training_data(cfg, model, samples)
    objective = hooks.training_objective(model, cfg)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.optim.weight_decay) + _objective_groups(objective, model),
                                  lr=cfg.optim.lr, betas=cfg.optim.betas)
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    # once prepared, accelerate steps the scheduler num_processes times per optimizer update (it counts
    # single-process batches), so the schedule is laid out in those units.
    per_update = accelerator.num_processes
    scheduler = get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=math.ceil(cfg.optim.warmup_ratio * cfg.max_steps) * per_update,
        num_training_steps=cfg.max_steps * per_update, min_lr_rate=cfg.optim.min_lr_ratio)
    objective, optimizer, loader, scheduler = accelerator.prepare(objective, optimizer, loader, scheduler)

    state = TrainerState()
    if resume and previous is not None:
        state = load_checkpoint(accelerator, previous)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        accelerator.print(f"trainable parameters: {summary.trainable:,} ({summary.parts}); frozen: {summary.frozen:,}")

    target = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)
    batches_per_epoch = len(loader)
    consumed = state.step * cfg.grad_accum
    epoch, skip = divmod(consumed, batches_per_epoch)
    bar = tqdm(total=target, initial=state.step, desc="train", unit="step",
               disable=not (progress and accelerator.is_local_main_process))
    window: list[dict] = []
    objective.train()
    # cumulative seconds of optimisation over every invocation of the run (resumes included)
    elapsed_before = state.history[-1].get("seconds", 0.0) if state.history else 0.0
    cpu_before = state.history[-1].get("cpu_seconds", 0.0) if state.history else 0.0
    t_loop, cpu_loop = time.perf_counter(), time.process_time()
    while state.step < target:
        loader.set_epoch(epoch)
        dataset.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in batches:
            with accelerator.accumulate(objective):
                output = objective(batch)
                if not torch.isfinite(output.loss.detach()):
                    last = latest_checkpoint(out)
                    raise TrainingDivergedError(
                        f"the loss became {float(output.loss.detach())} at update {state.step + 1} "
                        f"({output.as_floats()}); stopped. Last good checkpoint: {last or 'none yet'}")
                accelerator.backward(output.loss)
                if accelerator.sync_gradients and cfg.optim.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(objective.parameters(), cfg.optim.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window.append(output.as_floats())
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            record = {"step": state.step, "lr": scheduler.get_last_lr()[0],
                      "seconds": elapsed_before + time.perf_counter() - t_loop,
                      "cpu_seconds": cpu_before + time.process_time() - cpu_loop,
                      **{k: sum(w[k] for w in window) / len(window) for k in window[0]}}
            window = []
            state.history.append(record)
            bar.update(1)
            if state.step % cfg.log_every == 0 or state.step == target:
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                if accelerator.is_main_process:
                    with open(out / LOG_FILE, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
            if state.step % cfg.save_every == 0 or state.step == target:
                save_checkpoint(accelerator, out, state, keep=cfg.keep_checkpoints)
            if state.step >= target:
                break
        epoch += 1
    bar.close()

    model_dir = out / MODEL_DIR
    if state.step >= cfg.max_steps:
        unwrapped = accelerator.unwrap_model(objective).model
        if accelerator.is_main_process:
            _save_trained_model(unwrapped, model_dir, overwrite=resume)
    accelerator.wait_for_everyone()
    result = TrainResult(steps=state.step, final_loss=state.history[-1]["loss"] if state.history else float("nan"),
                         wall_seconds=time.perf_counter() - t_start,
                         peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                         model_dir=model_dir, history=state.history)
    if accelerator.is_main_process:
        (out / RESULT_FILE).write_text(json.dumps(
            {"steps": result.steps, "final_loss": result.final_loss, "wall_seconds": result.wall_seconds,
             "train_seconds": state.history[-1]["seconds"] if state.history else 0.0,
             "train_cpu_seconds": state.history[-1]["cpu_seconds"] if state.history else 0.0,
             "peak_rss_mb": result.peak_rss_mb, "model_dir": str(model_dir)}, indent=2))
    return result


def _finished(out: Path) -> TrainResult:
    """The result of the finished run in ``out`` (its ``train_result.json`` and ``train_log.jsonl``)."""
    done = json.loads((out / RESULT_FILE).read_text())
    log = out / LOG_FILE
    history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
    return TrainResult(steps=done["steps"], final_loss=done["final_loss"], wall_seconds=0.0,
                       peak_rss_mb=done["peak_rss_mb"], model_dir=out / MODEL_DIR, history=history)


def export_checkpoint(run_dir: str | Path, out: str | Path, *, step: int | None = None,
                      overwrite: bool = False, weights_dtype: str | None = None) -> Path:
    """Save the model of a step checkpoint as a loadable svac model folder.

    Rebuilds the run's model from its ``train_config.json`` (the same tokenizer, LoRA wrapping
    and objective as in training), loads the checkpoint's weights strictly and saves with
    ``save_pretrained``. Use it to evaluate a run part-way (e.g. ablations stopped with
    ``--stop-after``) without finishing it.

    Args:
        run_dir: a training run's ``output_dir``.
        out: the model folder to create.
        step: which checkpoint (optimizer updates); ``None`` takes the newest.
        overwrite: replace a non-empty ``out``.
        weights_dtype: ``float32``, ``float16`` or ``bfloat16``: the dtype the floating-point weights are
            stored in (``svac.checkpoints.svac_format.save_svac``); ``None`` keeps the trained dtype.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: no ``train_config.json`` or no such complete checkpoint in ``run_dir``.
        svac.errors.OutputExistsError: ``out`` holds files and ``overwrite`` is false.
        RuntimeError: the checkpoint's weights do not match the rebuilt model (missing or extra keys).
        svac.errors.ConfigError: ``weights_dtype`` names no supported dtype (before anything is rebuilt).
    """
    from accelerate.utils import SAFE_WEIGHTS_NAME
    from safetensors.torch import load_model as load_weights

    from svac.checkpoints.placement import resolve_dtype
    from svac.training.checkpointing import STATE_FILE, checkpoint_dir
    from svac.training.config import load_train_config

    dtype = None if weights_dtype is None else resolve_dtype(weights_dtype, "float32")
    run_dir = Path(run_dir)
    config_file = run_dir / "train_config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run: no train_config.json")
    path = latest_checkpoint(run_dir) if step is None else checkpoint_dir(run_dir, step)
    if path is None or not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"no complete checkpoint {'(any step)' if step is None else f'at step {step}'} "
                                f"in {run_dir / 'checkpoints'}")
    cfg = load_train_config(config_file)
    model = build_model(cfg, training_samples(cfg))
    hooks = training_hooks(model)
    hooks.configure_training(model, cfg)
    objective = hooks.training_objective(model, cfg)
    weights = path / SAFE_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{path} has no {SAFE_WEIGHTS_NAME} (DeepSpeed checkpoints: convert with "
                                "zero_to_fp32 first)")
    load_weights(objective, str(weights), strict=True)  # tied weights (lm_head) are restored as shared
    _save_trained_model(model, Path(out), overwrite=overwrite, weights_dtype=dtype)
    return Path(out)


def training_samples(cfg: TrainConfig) -> list:
    """Every training sample (one video and one expression) of ``cfg.data.train``, in spec order.

    Raises:
        ValueError: when ``cfg.data.train`` is empty.
        svac.errors.AnnotationError: on a bad annotation (unless ``cfg.data.skip_invalid``), naming the file.
    """
    from svac.data.readers import load_dataset

    if not cfg.data.train:
        raise ValueError("data.train is empty: give at least one dataset spec name:/path/to/root")
    samples = []
    for spec in cfg.data.train:
        samples.extend(load_dataset(spec, cfg.data.train_split, skip_invalid=cfg.data.skip_invalid))
    return samples


def training_data(cfg: TrainConfig, model, samples: list):
    """The run's dataset (one item per video, ``cfg.data.expressions_per_video`` expressions each) and
    its shuffling loader (``cfg.batch_size`` videos per batch, seeded by ``cfg.seed``).

    Call ``dataset.set_epoch(e)`` before each epoch so the expressions and prompt templates drawn
    per video change between epochs, as :func:`run` does. With ``cfg.data.families`` only the
    expressions naming nothing but those attribute families are used (:func:`select_families`).
    """
    if cfg.data.families is not None:
        samples = select_families(samples, cfg.data.families)
    hooks = training_hooks(model)
    dataset = VideoExpressionDataset(samples, hooks.example_builder(model, cfg.data),
                                     expressions_per_video=cfg.data.expressions_per_video, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True,
                                         collate_fn=hooks.collate_fn(model),
                                         num_workers=cfg.data.num_workers,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    return dataset, loader


def select_families(samples: list, families: list[str]) -> list:
    """The samples whose expression names only attribute ``families`` (the ``families`` list of its metadata,
    as the synthetic benchmark writes it).

    Raises:
        svac.errors.ConfigError: when a sample has no ``families`` metadata (the filter cannot be applied),
            or no sample is left.
    """
    from svac.errors import ConfigError

    allowed = set(families)
    kept = []
    for s in samples:
        named = s.meta.get("families")
        if not named:
            raise ConfigError(f"data.families needs each expression's attribute families; {s.dataset} "
                              f"{s.video_id}/{s.exp_id} lists none")
        if set(named) <= allowed:
            kept.append(s)
    if not kept:
        raise ConfigError(f"no training expression names only the families {sorted(allowed)}")
    return kept


def build_model(cfg: TrainConfig, samples: list):
    """The model a run starts from, in training mode: ``cfg.init_from`` loaded, or ``cfg.model`` built
    with seed ``cfg.seed`` (and, when ``cfg.bpe_vocab_size`` is set, a BPE tokenizer learnt from
    ``samples``' expressions and the prompt templates).

    Raises:
        svac.errors.ConfigError: on an invalid model config or override.
        FileNotFoundError / svac.errors.CheckpointError: when ``cfg.init_from`` cannot be loaded.
        svac.errors.ConfigError: with ``cfg.add_memory_tracker``, when the model already has a tracker or is not SVAC.
    """
    from svac.config import apply_overrides, from_dict
    from svac.config import SVACConfig
    from svac.loading import build_from_config, load_model

    if cfg.init_from is not None:
        model = load_model(cfg.init_from, device="cpu", overrides=cfg.model_overrides)
        if cfg.add_memory_tracker:
            from svac.grounding.memory_tracker import attach_memory_tracker

            attach_memory_tracker(model)
        return model.train()
    config = from_dict(SVACConfig, apply_overrides(cfg.model.to_dict(), cfg.model_overrides))
    tokenizer = None
    if cfg.bpe_vocab_size is not None:
        tokenizer = _bpe_tokenizer(config, samples, cfg.bpe_vocab_size)
    return build_from_config(config, seed=cfg.seed, tokenizer=tokenizer).train()


def _bpe_tokenizer(config, samples: list, vocab_size: int):
    """A byte-level BPE learnt from the training expressions (plus, for SVAC, the prompt templates).

    SVAC's keeps its chat template's special tokens; a baseline head's is an expression
    tokenizer for its text encoder (:func:`svac.heads.text.train_expression_tokenizer`).
    """
    texts = [s.expression for s in samples]
    if config.head != "svac":
        from svac.heads.text import train_expression_tokenizer

        return train_expression_tokenizer(texts, vocab_size)
    from svac.mllm.chat_template import load_chat_template
    from svac.mllm.tokenizer import train_bpe_tokenizer
    from svac.prompting import load_segmentation_prompts

    prompts = load_segmentation_prompts()
    texts += list(prompts.questions) + list(prompts.answers)
    return train_bpe_tokenizer(load_chat_template(config.mllm.chat_template), texts, vocab_size)


def _param_groups(model, weight_decay: float) -> list[dict]:
    masked = {id(p) for p in row_masked_parameters(model)} if hasattr(model, "mllm") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or id(p) in masked or "norm" in name or "embed" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _objective_groups(objective, model) -> list[dict]:
    """The optimizer groups of an objective's own trainable parameters (a training-only head, not saved with the
    model): its ``own_param_groups()`` when it has one, else none.

    Raises:
        RuntimeError: when the objective has trainable parameters outside the model that no group holds
            (they would silently never train).
    """
    own = getattr(objective, "own_param_groups", None)
    groups = own() if own is not None else []
    known = {id(p) for p in model.parameters()} | {id(p) for g in groups for p in g["params"]}
    stray = [n for n, p in objective.named_parameters() if p.requires_grad and id(p) not in known]
    if stray:
        raise RuntimeError(f"the training objective's parameters {stray[:5]} are outside the model and in no "
                           "optimizer group (give the objective an own_param_groups method)")
    return groups


def _save_trained_model(model, model_dir: Path, *, overwrite: bool = False,
                        weights_dtype: torch.dtype | None = None) -> None:
    """Mark ``model`` as trained and save it with ``save_pretrained`` in ``model_dir`` (floating-point weights stored
    in ``weights_dtype``; ``None``: as trained)."""
    import dataclasses

    model.config = dataclasses.replace(model.config, trained=True)
    model.save_pretrained(model_dir, overwrite=overwrite, weights_dtype=weights_dtype)
