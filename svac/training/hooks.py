"""How the recipe trains each head: one :class:`TrainingHooks` entry per head in :data:`TRAINING_HOOKS`.

The training loop (``train/finetune.py``) talks to a model only through the four hooks of its
head (as in torchtune, the recipe side owns the loss, the data and the trainable set; the model
stays a model):

* ``configure_training(model, cfg)`` -- which parameters train (LoRA, unfrozen parts); returns a
  :class:`~svac.training.params.TrainableSummary`;
* ``example_builder(model, data)`` -- an object with ``build(samples, rng) -> example`` turning the
  referring samples of one video into a training example (``data``: the config's
  :class:`~svac.training.config.DataConfig`, e.g. ``conversation`` and ``frames``);
* ``collate_fn(model)`` -- a picklable function collating examples into a batch;
* ``training_objective(model, cfg)`` -- a module whose ``forward(batch)`` returns the losses
  (``.loss`` and ``.as_floats()``).

SVAC's hooks: LoRA + Sa2VA's trainable parts, :class:`~svac.training.data.ExampleBuilder`,
:func:`~svac.training.data.collate`, the objective ``cfg.objective`` names
(:func:`svac_training_objective`: :class:`~svac.training.objective.SVACObjective`, or a
single-frame objective of :mod:`svac.training.frame_objectives`). The
baselines' (ReferFormer, LAVT): the whole head except its frozen parts,
:class:`~svac.heads.rvos_training.BaselineExampleBuilder`,
:func:`~svac.heads.rvos_training.collate_baseline` and the head's own criterion
(``model.objective()``). The table is fixed: a config's ``head`` only looks an entry up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping

from torch import nn

from svac.errors import ConfigError

if TYPE_CHECKING:
    from svac.heads.rvos import RVOSBaseline
    from svac.heads.rvos_training import BaselineBatch, BaselineExampleBuilder
    from svac.model import SVAC
    from svac.training.config import DataConfig, TrainConfig
    from svac.training.data import ExampleBuilder, TrainingBatch
    from svac.training.params import TrainableSummary


@dataclass(frozen=True)
class TrainingHooks:
    """The training interface of one head (see the module docstring for each hook's contract).

    Attributes:
        configure_training: ``(model, cfg) -> TrainableSummary``.
        example_builder: ``(model, data=None) -> builder`` with ``builder.build(samples, rng) -> example``.
        collate_fn: ``(model) -> collate`` with ``collate(examples) -> batch`` (picklable).
        training_objective: ``(model, cfg) -> nn.Module`` whose ``forward(batch)`` returns the losses.
    """

    configure_training: Callable[[Any, "TrainConfig"], "TrainableSummary"]
    example_builder: Callable[..., Any]
    collate_fn: Callable[[Any], Callable[[list], Any]]
    training_objective: Callable[[Any, "TrainConfig"], nn.Module]


# ---------------------------------------------------------------------------------------------- SVAC


def svac_configure_training(model: "SVAC", cfg: "TrainConfig") -> "TrainableSummary":
    """Apply LoRA to the LLM (when ``cfg.lora.enabled``), unfreeze ``cfg.trainable`` (:mod:`svac.training.params`)."""
    from svac.training.params import apply_lora, configure_trainable

    if cfg.lora.enabled:
        apply_lora(model, cfg.lora)
    return configure_trainable(model, cfg.trainable)


def svac_example_builder(model: "SVAC", data: "DataConfig | None" = None) -> "ExampleBuilder":
    """Turns a video's referring samples into a training example for this model (:mod:`svac.training.data`),
    asking them as ``data.conversation`` on ``data.frames`` (defaults: single-turn, video)."""
    from svac.training.config import DataConfig
    from svac.training.data import ExampleBuilder

    data = DataConfig() if data is None else data
    return ExampleBuilder.for_model(model, conversation=data.conversation, frames=data.frames,
                                    answer_phrase=data.answer_phrase)


def svac_collate_fn(model: "SVAC") -> "Callable[[list], TrainingBatch]":
    """A picklable function collating training examples into a batch (pads with the tokenizer's pad id)."""
    from svac.training.data import collate

    return partial(collate, pad_token_id=model.tokenizer.pad_token_id)


def svac_training_objective(model: "SVAC", cfg: "TrainConfig") -> nn.Module:
    """The module whose ``forward(batch)`` returns the losses for ``cfg.objective`` (a fixed table).

    ``referring``: :class:`svac.training.objective.SVACObjective`; ``clicks``:
    :class:`svac.training.frame_objectives.ClickObjective` (SAM-2 alone under oracle clicks); ``span_grounding``:
    :class:`svac.training.frame_objectives.SpanGroundingObjective` (SAM-2 prompted by the span skip path alone);
    ``corrections``: :class:`svac.training.frame_objectives.CorrectionObjective` (referring and correction clicks);
    ``tracking``: :class:`svac.training.tracking_objective.TrackingObjective` (referring, a correction, and the
    frames after it decoded from memory without prompts); ``encoder_pretraining``:
    :class:`svac.training.encoder_objective.EncoderPretrainingObjective` (SAM-2's image encoder on object
    categories, sizes and colours with feature distillation; its head trains but is not saved with the model);
    ``vos``: :class:`svac.training.vos_objective.VOSObjective` (SAM 2's semi-supervised VOS from a ground-truth mask
    through memory, beside referring).
    """
    from svac.training import frame_objectives
    from svac.training.objective import SVACObjective
    from svac.training.tracking_objective import TrackingObjective

    if cfg.objective == "clicks":
        return frame_objectives.ClickObjective(model, cfg.loss, seed=cfg.seed)
    if cfg.objective == "span_grounding":
        return frame_objectives.SpanGroundingObjective(model, cfg.loss)
    if cfg.objective == "corrections":
        return frame_objectives.CorrectionObjective(model, cfg.loss, cfg.corrections, seed=cfg.seed)
    if cfg.objective == "tracking":
        return TrackingObjective(model, cfg.loss, cfg.tracking, seed=cfg.seed)
    if cfg.objective == "encoder_pretraining":
        from svac.training.encoder_objective import EncoderPretrainingObjective

        return EncoderPretrainingObjective(model, cfg.encoder_pretraining)
    if cfg.objective == "vos":
        from svac.training.vos_objective import VOSObjective

        return VOSObjective(model, cfg.loss, cfg.vos, corrections=cfg.corrections, seed=cfg.seed)
    return SVACObjective(model, cfg.loss, sam2_memory=cfg.sam2_memory, span_dropout=cfg.span_dropout, seed=cfg.seed)


# --------------------------------------------------------------------------- baselines (ReferFormer, LAVT)


def baseline_configure_training(model: "RVOSBaseline", cfg: "TrainConfig") -> "TrainableSummary":
    """Make every parameter trainable except the head's frozen parts (``model.frozen_modules()``).

    A baseline trains in full, as in its paper; LoRA, ``trainable`` and ``loss`` are SVAC's
    options and must keep their defaults off / unset (the head's loss weights live in
    ``model.baseline.<head>``).

    Returns:
        A :class:`svac.training.params.TrainableSummary` (parts: the head's top-level modules).

    Raises:
        ConfigError: when ``lora.enabled`` is true, or ``trainable`` / ``loss`` are changed.
    """
    from svac.training.config import DEFAULT_TRAINABLE, LossConfig
    from svac.training.params import TrainableSummary

    where = f"model.baseline.{model.head_name}"
    if cfg.lora.enabled:
        raise ConfigError(f"lora.enabled must be false for the {model.head_name} head: LoRA adapts SVAC's LLM, and "
                          f"a baseline trains its own weights in full (set lora.enabled: false)")
    if list(cfg.trainable) != list(DEFAULT_TRAINABLE):
        raise ConfigError(f"trainable names SVAC parts; the {model.head_name} head trains in full except the parts "
                          f"its config freezes ({where}); remove trainable from the config")
    if cfg.loss != LossConfig():
        raise ConfigError(f"loss holds SVAC's loss weights; the {model.head_name} head's loss weights are in "
                          f"{where}; remove loss from the config")
    model.requires_grad_(True)
    for module in model.frozen_modules().values():
        module.requires_grad_(False)
    parts: dict[str, int] = {}
    for name, child in model.head.named_children():
        count = sum(p.numel() for p in child.parameters() if p.requires_grad)
        if count:
            parts[name] = count
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return TrainableSummary(trainable=trainable, frozen=frozen, parts=parts)


def baseline_example_builder(model: "RVOSBaseline", data: "DataConfig | None" = None) -> "BaselineExampleBuilder":
    """Turns K expressions of one video into a training example (:mod:`svac.heads.rvos_training`).

    The baselines read each expression on its own (no conversation) over ``baseline.window`` frames.

    Raises:
        ConfigError: when ``data.frames`` asks for anything but ``video`` examples (SVAC's image-level and
            answer-only stages), or ``data.answer_phrase`` for an answer (the baselines write none).
    """
    from svac.heads.rvos_training import BaselineExampleBuilder

    if data is not None and data.frames != "video":
        raise ConfigError(f"data.frames={data.frames!r} is for SVAC; the {model.config.head} baseline trains on "
                          "windows of baseline.window frames (data.frames=video)")
    if data is not None and data.answer_phrase != "expression":
        raise ConfigError(f"data.answer_phrase={data.answer_phrase!r} is for SVAC's answers; the "
                          f"{model.config.head} baseline reads the expression and writes no answer")
    b = model.config.baseline
    return BaselineExampleBuilder(input_size=tuple(b.input_size), window=b.window, train_frames=b.train_frames,
                                  tokenizer=model.tokenizer, max_length=model.max_text_length)


def baseline_collate_fn(model: "RVOSBaseline") -> "Callable[[list], BaselineBatch]":
    """A picklable function collating examples into a :class:`~svac.heads.rvos_training.BaselineBatch`."""
    from svac.heads.rvos_training import collate_baseline

    return partial(collate_baseline, pad_token_id=model.tokenizer.pad_token_id)


def baseline_training_objective(model: "RVOSBaseline", cfg: "TrainConfig") -> nn.Module:
    """The module whose ``forward(batch)`` returns the head's losses (``.loss``, ``.as_floats()``).

    The head's own criterion with the weights of its config (ReferFormer §3.4, LAVT §3.4).
    """
    return model.objective()


# ------------------------------------------------------------------------------------------ the table

SVAC_TRAINING = TrainingHooks(configure_training=svac_configure_training, example_builder=svac_example_builder,
                              collate_fn=svac_collate_fn, training_objective=svac_training_objective)
BASELINE_TRAINING = TrainingHooks(configure_training=baseline_configure_training,
                                  example_builder=baseline_example_builder, collate_fn=baseline_collate_fn,
                                  training_objective=baseline_training_objective)

#: Head name (a config's ``head``, the keys of :data:`svac.heads.HEADS`) -> its training hooks (read-only).
TRAINING_HOOKS: Mapping[str, TrainingHooks] = MappingProxyType({
    "svac": SVAC_TRAINING,
    "referformer": BASELINE_TRAINING,
    "lavt": BASELINE_TRAINING,
})


def training_hooks(model: Any) -> TrainingHooks:
    """The training hooks of ``model``'s head (``model.config.head``).

    Raises:
        ConfigError: for a head without training hooks.
    """
    head = model.config.head
    if head not in TRAINING_HOOKS:
        raise ConfigError(f"the {head!r} head has no training hooks; heads that train: {', '.join(TRAINING_HOOKS)}")
    return TRAINING_HOOKS[head]
