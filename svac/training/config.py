"""Typed training configuration (``configs/train/*.yaml``), modelled on Sa2VA's recipe.

Sa2VA fine-tunes with batch 2 x accumulation 4 per GPU, learning rate 4e-5, a cosine schedule
with 5 % warm-up and bf16; LoRA (r=128, alpha=256) on the LLM's attention and MLP projections;
the projector, ``text_hidden_fcs``, SAM-2's mask decoder and the new special-token rows train
fully; the vision encoder and SAM-2's image encoder stay frozen. Those are the defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import typing
from typing import Any, Literal

from svac.config import SVACConfig, apply_overrides, check_path, from_dict, read_yaml
from svac.errors import ConfigError

#: The sub-folder of ``configs/`` holding the training configs (where a bare config name is looked up).
TRAIN_CONFIG_DIR = "train"

#: The LLM projections that get LoRA by default (Qwen2/Llama/Phi-3 names; attention and MLP).
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: Parts that train by default (Sa2VA's recipe).
DEFAULT_TRAINABLE = ("projector", "text_hidden_fcs", "sam2_mask_decoder", "special_tokens")

#: Parts of an SVAC model that can be trained, by name (see :mod:`svac.training.params`).
TRAINABLE_PARTS = ("projector", "text_hidden_fcs", "span_prompt", "sam2_mask_decoder", "special_tokens",
                   "vision_encoder", "llm", "llm_blocks", "sam2_image_encoder", "sam2_high_res_convs", "sam2_memory",
                   "sam2_prompt_encoder", "sam2_tracker")


def _check_probability(section: str, cfg: Any, name: str) -> None:
    """Raise :class:`ConfigError` naming ``section.name`` when ``cfg``'s ``name`` (a probability or ratio) is outside
    [0, 1]."""
    if not 0.0 <= getattr(cfg, name) <= 1.0:
        raise ConfigError(f"{section}.{name} must be in [0, 1], got {getattr(cfg, name)}")


def _check_weights(section: str, cfg: Any, names: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` naming ``section.name`` for the first of ``cfg``'s loss weights ``names`` below 0."""
    for name in names:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{section}.{name} is a weight and must be >= 0, got {getattr(cfg, name)}")


@dataclass
class LoRAConfig:
    """LoRA on the LLM only (peft). The vision tower never gets LoRA.

    Attributes:
        enabled: wrap the LLM with LoRA adapters.
        r, alpha, dropout: LoRA rank, scaling numerator and dropout.
        target_modules: names of the LLM's linear layers that get adapters.
    """

    enabled: bool = True
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ConfigError(f"lora.r and lora.alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        bad = [m for m in self.target_modules if not all(part.isidentifier() for part in m.split("."))]
        if bad or not self.target_modules:
            raise ConfigError(f"lora.target_modules must name the LLM's linear layers (module names such as q_proj), "
                              f"got {self.target_modules}")


@dataclass
class LossConfig:
    """Loss weights (Sa2VA: CE 1.0, mask BCE 2.0, mask Dice 0.5) and mask-loss options.

    Attributes:
        ce: weight of next-token cross-entropy on the answer tokens.
        bce: weight of the per-pixel binary cross-entropy of the masks.
        dice: weight of the Dice loss of the masks.
        presence: weight of the BCE on SAM-2's object-presence logit (SAM-2 gives frames it
            predicts "absent" a constant mask, so presence must be learnt for masks to train).
        prompt_separation: weight of an auxiliary loss (svac's addition, off by default) pushing apart
            the ``[SEG]`` prompts of expressions that name *different* objects of the same video: the
            mean pairwise cosine similarity of their projected prompts. Models trained from scratch
            otherwise fall into "segment every object" with one constant ``[SEG]`` prompt; pretrained
            LLMs (Sa2VA checkpoints) do not need it.
        prompt_contrast: weight of an auxiliary region-prompt contrastive loss (svac's addition, off by
            default): InfoNCE between each clip's ``[SEG]`` prompt and SAM-2's image features averaged
            inside its target on that clip's frames, against the other targets of the batch
            (:func:`svac.training.losses.prompt_region_contrast`). It tells a ``[SEG]`` learnt from
            scratch *which* object it names directly, instead of only through the mask decoder.
        prompt_contrast_temperature: softmax temperature of that loss (on cosine similarities).
        seg_attention: weight of the ``[SEG]`` attention supervision (svac's addition, off by default,
            :mod:`svac.training.seg_attention`): each ``[SEG]`` token's attention over its clip's visual tokens,
            mean over heads, is pulled onto the cells its target covers. It teaches a ``[SEG]`` learnt from scratch
            where its object is, which the mask loss alone does not (issue 18). The LLM computes explicit
            (``eager``) attention in steps where it is on.
        seg_attention_layers: the LLM layers (0-based; negative counts from the last) whose attention is
            supervised.
        seg_attention_query: whose attention is supervised for each ``[SEG]`` token: ``seg`` -- the token's own;
            ``phrase_end`` -- that of the ``</p>`` closing the answer's phrase before it (its state holds the
            expression's words; the ``[SEG]`` token can read it in the next layer).
        point_sampling: compute the mask losses on sampled points (Mask2Former) instead of every pixel.
        num_points: points per mask when sampling (pixels).
        oversample_ratio, importance_ratio: Mask2Former's uncertainty-based point sampling.

    With ``bce``, ``dice`` and ``presence`` all 0, SAM-2 does not track at all (only its image
    encoder runs, for ``prompt_contrast``): a cheap language-grounding stage.

    Raises:
        svac.errors.ConfigError: when a weight is negative or the temperature is not positive.
    """

    ce: float = 1.0
    bce: float = 2.0
    dice: float = 0.5
    presence: float = 1.0
    prompt_separation: float = 0.0
    prompt_contrast: float = 0.0
    prompt_contrast_temperature: float = 0.1
    seg_attention: float = 0.0
    seg_attention_layers: tuple[int, ...] = (-1,)
    seg_attention_query: Literal["seg", "phrase_end"] = "seg"
    point_sampling: bool = False
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_ratio: float = 0.75

    def __post_init__(self) -> None:
        _check_weights("loss", self, ("ce", "bce", "dice", "presence", "prompt_separation", "prompt_contrast",
                                      "seg_attention"))
        if not self.seg_attention_layers:
            raise ConfigError("loss.seg_attention_layers must name at least one LLM layer")
        if self.prompt_contrast_temperature <= 0:
            raise ConfigError(f"loss.prompt_contrast_temperature must be > 0, got {self.prompt_contrast_temperature}")
        if self.num_points < 1:
            raise ConfigError(f"loss.num_points must be >= 1, got {self.num_points}")
        if self.oversample_ratio < 1 or not 0.0 <= self.importance_ratio <= 1.0:
            raise ConfigError(f"loss.oversample_ratio must be >= 1 and loss.importance_ratio in [0, 1], got "
                              f"{self.oversample_ratio} and {self.importance_ratio}")


@dataclass
class DataConfig:
    """Training and validation data.

    Attributes:
        train: dataset specs ``name:/path/to/root`` (see :func:`svac.data.readers.load_dataset`).
        train_split: split read from every training dataset.
        val: optional validation spec, evaluated with ``svac eval`` metrics at the end.
        val_split: split of the validation data.
        expressions_per_video: expressions of one video trained together (its K objects are
            tracked in one SAM-2 batch).
        conversation: how they are asked (:mod:`svac.training.data`): ``single_turn`` -- each in its
            own conversation opening with the video, exactly as inference asks; ``multi_turn`` --
            Sa2VA's K turns of one conversation (a model trained from scratch then encodes the turn
            index instead of the expression; for pretrained LLMs only).
        frames: ``video`` -- T frames sampled with ASTC as at inference; ``single_frame`` -- one
            random frame per example as a one-frame video (the image-level stage of a curriculum);
            ``none`` -- the conversations without the video (no frame is read; the answer still holds
            one ``[SEG]`` per clip of a T-frame video): the answer's cross-entropy alone, cheap, for
            teaching the LLM to restate or answer in the prompts' form (needs the mask losses off).
        answer_phrase: what the answer restates inside ``<p>...</p>`` before its ``[SEG]`` tokens:
            ``expression`` -- the expression (Sa2VA's and SVAC's answers); ``dataset`` -- the phrase the
            dataset gives for the expression (:data:`svac.data.sample.ANSWER_PHRASE_KEY`, the synthetic
            benchmark's static description of the named object for expressions that need the video), the
            expression where it gives none. With ``dataset`` the model learns to name the object it
            segments, and inference should generate its answer (``inference.answer_mode: generate``).
        families: when set, train only on the expressions that name nothing but these attribute
            families (e.g. ``[color, shape, size, position]``: what one frame shows); needs datasets
            that list each expression's ``families`` (the synthetic benchmark). The BPE tokenizer of a
            run from scratch is still learnt from every expression of ``train``.
        skip_invalid: skip bad annotations (counted warning) instead of raising.
        num_workers: DataLoader worker processes.
    """

    train: list[str] = field(default_factory=list)
    train_split: str = "train"
    val: str | None = None
    val_split: str = "valid"
    expressions_per_video: int = 3
    conversation: Literal["single_turn", "multi_turn"] = "single_turn"
    frames: Literal["video", "single_frame", "none"] = "video"
    answer_phrase: Literal["expression", "dataset"] = "expression"
    families: list[str] | None = None
    skip_invalid: bool = False
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.expressions_per_video < 1:
            raise ConfigError(f"data.expressions_per_video must be >= 1, got {self.expressions_per_video}")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {self.num_workers}")


#: Where a correction click of an expression prompted with another expression's ``[SEG]`` is drawn
#: (``corrections.wrong_prompt_clicks``, :class:`CorrectionConfig`).
WrongPromptClicks = Literal["error", "missed"]
WRONG_PROMPT_CLICKS: tuple[str, ...] = typing.get_args(WrongPromptClicks)


@dataclass
class CorrectionConfig:
    """Options of ``objective: corrections`` (:class:`svac.training.frame_objectives.CorrectionObjective`).

    Attributes:
        wrong_prompt: probability that an expression is prompted with the ``[SEG]`` prompt of
            another expression of its video naming other objects (its mask wrong on purpose, the
            click and the memory having to take over), in [0, 1].
        later_frame: also train a later sampled frame tracked from the corrected frame's memory
            (needs ``data.frames: video``); ``False`` trains the clicked frame only.
        referring, correction, propagation: weights of the three passes' mask losses (the
            ``[SEG]`` prompt alone; with the click; the later frame), each >= 0.
        clicks_alone: weight of a fourth pass, the clicked frame prompted by one click inside the
            target and no ``[SEG]`` (SAM 2's own promptable training, :class:`ClickObjective`'s prompt),
            >= 0; 0 skips it.
        box_correction: weight of a fifth pass, the second with the target's box in place of the click
            (box, ``[SEG]`` prompt, previous mask logits), >= 0; 0 skips it.
        boxes_alone: weight of a sixth pass, the clicked frame prompted by the target's box and no
            ``[SEG]``, >= 0; 0 skips it.
        box_noise: largest shift of a training box's corner, as a fraction of the box's side along
            that axis (SAM 2 trains on noisy boxes), in [0, 1].
        wrong_prompt_clicks: where pass 2's click is drawn on the rows prompted with another expression's
            ``[SEG]`` (``wrong_prompt``): ``error`` -- uniformly from the whole error, as on the other rows
            (SAM 2's simulated user, Ravi et al. 2024, App. D), so often a negative click on the prompt's own
            object while the target is elsewhere; ``missed`` -- from the target's missed pixels only, a
            positive click (inside the target when none is missed; the error, as ``error``, when the target is
            absent from the frame). Rows prompted with their own ``[SEG]`` are drawn as ``error`` either way
            (:func:`svac.training.frame_objectives.correction_clicks`, ``missed_only``).

    Raises:
        ConfigError: naming the key, for a value out of range.
    """

    wrong_prompt: float = 0.5
    later_frame: bool = True
    referring: float = 1.0
    correction: float = 1.0
    propagation: float = 1.0
    clicks_alone: float = 0.0
    box_correction: float = 0.0
    boxes_alone: float = 0.0
    box_noise: float = 0.1
    wrong_prompt_clicks: WrongPromptClicks = "error"

    def __post_init__(self) -> None:
        _check_probability("corrections", self, "wrong_prompt")
        _check_probability("corrections", self, "box_noise")
        if self.wrong_prompt_clicks not in WRONG_PROMPT_CLICKS:
            raise ConfigError(f"corrections.wrong_prompt_clicks {self.wrong_prompt_clicks!r} is not one of "
                              f"{', '.join(WRONG_PROMPT_CLICKS)}")
        _check_weights("corrections", self, ("referring", "correction", "propagation", "clicks_alone",
                                             "box_correction", "boxes_alone"))


@dataclass
class TrackingConfig:
    """Options of ``objective: tracking`` (:class:`svac.training.tracking_objective.TrackingObjective`).

    Attributes:
        wrong_prompt: probability that an expression is prompted with the ``[SEG]`` prompt of
            another expression of its video naming other objects (the masks wrong on purpose, the
            correction and the memory having to take over), in [0, 1].
        referring, correction, tracking: weights of the three passes' mask losses (SVAC's schedule
            with the ``[SEG]`` prompts; the corrected frame; the frames after it tracked from memory
            without prompts), each >= 0.

    Raises:
        ConfigError: naming the key, for a value out of range.
    """

    wrong_prompt: float = 0.5
    referring: float = 1.0
    correction: float = 1.0
    tracking: float = 1.0

    def __post_init__(self) -> None:
        _check_probability("tracking", self, "wrong_prompt")
        _check_weights("tracking", self, ("referring", "correction", "tracking"))


@dataclass
class EncoderPretrainingConfig:
    """Options of ``objective: encoder_pretraining``
    (:class:`svac.training.encoder_objective.EncoderPretrainingObjective`).

    svac's addition (cf. supervised backbone pretraining): SAM-2's image encoder learns to tell
    objects' categories, sizes and colours apart from features pooled inside each object's mask,
    while a distillation term keeps its features close to those it had when the stage started.

    Attributes:
        categories: the category names of the training data's objects (the Ref-YouTube-VOS
            ``<split>/meta.json`` ``category``; the synthetic benchmark's shapes), in the order of the
            head's outputs; needed when ``category`` > 0.
        category: weight of the cross-entropy of the object's category, >= 0.
        size: weight of the squared error of the object's log area fraction (natural log of the
            mask's pixels over the frame's pixels at SAM-2's input size), >= 0.
        colour: weight of the squared error of the object's mean RGB (in [0, 1], over its mask's
            pixels), >= 0.
        distill: weight of the feature distillation to a frozen copy of the encoder as the stage
            starts (per feature level, mean squared difference over the copy's mean square,
            averaged over the levels), >= 0.
        head_hidden: width of the training-only MLP head (features).
        head_lr: learning rate of that head (the encoder follows ``optim.lr``), > 0.

    The objective raises :class:`ConfigError` when ``category`` > 0 and ``categories`` is empty.

    Raises:
        ConfigError: naming the key, for a value out of range or a category named twice.
    """

    categories: list[str] = field(default_factory=list)
    category: float = 1.0
    size: float = 0.5
    colour: float = 1.0
    distill: float = 10.0
    head_hidden: int = 128
    head_lr: float = 1e-3

    def __post_init__(self) -> None:
        _check_weights("encoder_pretraining", self, ("category", "size", "colour", "distill"))
        if len(set(self.categories)) != len(self.categories):
            raise ConfigError(f"encoder_pretraining.categories lists a name twice: {self.categories}")
        if self.head_hidden < 1 or not self.head_lr > 0:
            raise ConfigError(f"encoder_pretraining.head_hidden must be >= 1 and head_lr > 0, got "
                              f"{self.head_hidden} and {self.head_lr}")


@dataclass
class VOSConfig:
    """Options of ``objective: vos`` (:class:`svac.training.vos_objective.VOSObjective`).

    Attributes:
        vos: weight of the semi-supervised VOS pass's mask loss (each object's ground-truth mask as SAM-2's
            mask prompt on its first visible sampled frame, the following sampled frames decoded from SAM-2's
            memory alone).
        referring: weight of SVAC's referring objective on the same batch (every frame prompted by its
            clip's ``[SEG]``, :class:`svac.training.objective.SVACObjective`); 0 skips it (and the LLM).
        max_objects: objects tracked per video (drawn among the video's distinct targets), >= 1.
        max_frames: sampled frames decoded from memory after each object's mask frame, >= 1 (``None``: all
            the video's). Short runs learn first: on one batch, one frame after the mask separated two objects
            of a video after ~130 updates, while the whole sampled video stayed on "every object" for 100.
        clicks: probability, in [0, 1], that a tracked run gets one corrective click (SAM 2's simulated
            interaction during VOS training, Ravi et al. 2024, §4): on a random frame c of the run after its
            mask frame and before its last frame, a click drawn from the error of the frame's memory-decoded
            mask against the object, the frame decoded again with the click and its previous logits (and
            memory); c becomes a conditioning frame and the frames after it, decoded from memory alone, are
            supervised by the object -- what :mod:`svac.grounding.replay` runs with
            ``after_correction: memory``. Needs runs of 3 frames or more (``max_frames`` >= 2 or null).
        wrong_prompt: probability, in [0, 1], that a run starts from the ground-truth mask of *another* target
            of its video (one visible on the start frame, naming other objects): the frames up to the click are
            supervised by that target, the click and the frames after it by the run's own (a memory wrong on
            purpose that the click must override, as a wrong ``[SEG]`` anchor at inference). Without a click the
            run is plain VOS of the other target.
        corrections: weight of :class:`~svac.training.frame_objectives.CorrectionObjective` on the same batch
            (the ``[SEG]`` prompt, sometimes another expression's, plus a click from its error: the clicked
            frame as refinement decodes it; options in the ``corrections`` section); 0 skips it.

    Raises:
        ConfigError: naming the key, for a value out of range.
    """

    vos: float = 1.0
    referring: float = 1.0
    max_objects: int = 4
    max_frames: int | None = None
    clicks: float = 0.0
    wrong_prompt: float = 0.0
    corrections: float = 0.0

    def __post_init__(self) -> None:
        _check_weights("vos", self, ("vos", "referring", "corrections"))
        _check_probability("vos", self, "clicks")
        _check_probability("vos", self, "wrong_prompt")
        if self.clicks and self.max_frames is not None and self.max_frames < 2:
            raise ConfigError(f"vos.clicks needs runs of 3 frames (vos.max_frames >= 2 or null), got max_frames "
                              f"{self.max_frames}")
        if self.max_objects < 1:
            raise ConfigError(f"vos.max_objects must be >= 1, got {self.max_objects}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"vos.max_frames must be >= 1 or null, got {self.max_frames}")


@dataclass
class OptimConfig:
    """AdamW with a cosine schedule and linear warm-up.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not applied to norms, biases and embeddings).
        betas: AdamW betas.
        warmup_ratio: fraction of the steps spent warming up linearly.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        max_grad_norm: gradient clipping norm (0 = off).
    """

    lr: float = 4e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = 0.05
    min_lr_ratio: float = 0.0
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ConfigError(f"optim.lr must be > 0 and optim.weight_decay, optim.max_grad_norm >= 0, got "
                              f"{self.lr}, {self.weight_decay}, {self.max_grad_norm}")
        for name in ("warmup_ratio", "min_lr_ratio"):
            _check_probability("optim", self, name)
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be in [0, 1), got {list(self.betas)}")


@dataclass
class TrainConfig:
    """A training run.

    Exactly one of ``model`` and ``init_from`` is given.

    Attributes:
        model: the architecture when starting from scratch.
        init_from: a saved svac model folder, Sa2VA checkpoint or hub id to start from.
        model_overrides: ``key=value`` overrides applied to the model's config (e.g. switching a
            Sa2VA checkpoint to SVAC's pipeline, ASTC frames and CSA: ``pipeline=svac``,
            ``astc.mode=astc``, ``csa.mode=per_clip``).
        add_memory_tracker: give the ``init_from`` model a memory tracker, a copy of its SAM-2 memory
            attention, prompt encoder and mask decoder that decodes the frames tracked from memory alone
            (:mod:`svac.grounding.memory_tracker`; trainable part ``sam2_tracker``); the model must not have one.
        trainable: the parts that train (see :data:`TRAINABLE_PARTS`); LoRA adapters always train.
        lora, loss, data, optim: see their classes.
        output_dir: where checkpoints and the final model go.
        batch_size: videos per step per process.
        grad_accum: steps accumulated per optimizer update.
        max_steps: optimizer updates.
        precision: ``bf16``, ``fp16`` or ``fp32`` (mixed precision through accelerate).
        sam2_memory: track with SAM-2 memory across the sampled frames, as at inference
            (Sa2VA-i's train/inference consistency); ``False`` segments frames independently.
        span_dropout: probability, per expression (conversation row), that its ``[SEG]`` prompts are
            trained without the span skip term, i.e. from the projected last-layer ``[SEG]`` state
            alone (``objective: referring`` on a model with ``seg_prompt.span_skip``). The span term
            passes the mask loss's gradient on almost whole while the ``[SEG]`` branch, which starts at
            zero, passes a small fraction of it to the LLM; dropping the span term makes the branch
            carry the prompt for those rows. 0 (the default) never drops it; inference always adds it.
        bpe_vocab_size: when training from scratch, learn a byte-level BPE tokenizer of this size
            from the training expressions and prompts (small models learn words much faster than
            bytes); ``None`` keeps the tokenizer the model config names.
        objective: what the run trains: ``referring`` -- the whole model on referring expressions
            (:class:`svac.training.objective.SVACObjective`); ``clicks`` -- SAM-2 alone under oracle
            clicks on every sampled frame, no memory (:class:`svac.training.frame_objectives.ClickObjective`;
            the MLLM is saved unchanged); ``span_grounding`` -- SAM-2 prompted by the span skip path
            alone on every sampled frame (:class:`svac.training.frame_objectives.SpanGroundingObjective`:
            the image-level grounding stage of the default model; the LLM is not run); ``corrections``
            -- referring, correction clicks and their propagation through memory, SAM-2 prompted by the
            span term (:class:`svac.training.frame_objectives.CorrectionObjective`, options in ``corrections``:
            the stage that teaches the default model clicks); ``tracking`` -- SVAC's schedule, a correction
            on one frame and the frames after it tracked from SAM-2's memory without prompts
            (:class:`svac.training.tracking_objective.TrackingObjective`, options in ``tracking``; measured,
            not in the default recipe: ``configs/train/tracking_from_memory.yaml``); ``encoder_pretraining``
            -- SAM-2's image encoder alone, on object categories, sizes and colours from mask-pooled features
            with feature distillation (:class:`svac.training.encoder_objective.EncoderPretrainingObjective`,
            options in ``encoder_pretraining``); ``vos`` -- SAM 2's semi-supervised video object segmentation (a
            ground-truth mask on an object's first visible frame, the later frames from memory alone) beside
            SVAC's referring objective (:class:`svac.training.vos_objective.VOSObjective`, options in ``vos``).
        corrections: options of ``objective: corrections`` (:class:`CorrectionConfig`).
        tracking: options of ``objective: tracking`` (:class:`TrackingConfig`).
        encoder_pretraining: options of ``objective: encoder_pretraining`` (:class:`EncoderPretrainingConfig`).
        vos: options of ``objective: vos`` (:class:`VOSConfig`).
        seed: seed of initialisation, data order and augmentation.
        log_every, save_every: in optimizer updates.
        keep_checkpoints: how many step checkpoints to keep.

    Raises:
        ConfigError: naming the key, for a value out of range, or when neither or both of
            ``model`` and ``init_from`` are given.
    """

    model: SVACConfig | None = None
    init_from: str | None = None
    model_overrides: list[str] = field(default_factory=list)
    add_memory_tracker: bool = False
    trainable: list[str] = field(default_factory=lambda: list(DEFAULT_TRAINABLE))
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    output_dir: str = "runs/train"
    batch_size: int = 2
    grad_accum: int = 4
    max_steps: int = 1000
    precision: Literal["bf16", "fp16", "fp32"] = "bf16"
    sam2_memory: bool = True
    span_dropout: float = 0.0
    bpe_vocab_size: int | None = None
    objective: Literal["referring", "clicks", "span_grounding", "corrections", "tracking",
                       "encoder_pretraining", "vos"] = "referring"
    corrections: CorrectionConfig = field(default_factory=CorrectionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    encoder_pretraining: EncoderPretrainingConfig = field(default_factory=EncoderPretrainingConfig)
    vos: VOSConfig = field(default_factory=VOSConfig)
    seed: int = 0
    log_every: int = 10
    save_every: int = 200
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        unknown = sorted(set(self.trainable) - set(TRAINABLE_PARTS))
        if unknown:
            raise ConfigError(f"unknown trainable part(s) {unknown}; known: {', '.join(TRAINABLE_PARTS)}")
        for name in ("batch_size", "grad_accum", "max_steps", "log_every", "save_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if (self.model is None) == (self.init_from is None):
            raise ConfigError("a training config gives exactly one of model (an architecture trained from scratch) "
                              "and init_from (a checkpoint to start from), got "
                              + ("neither" if self.model is None else "both: remove model (a run folder written by "
                                 "an older svac: delete the 'model' key of its train_config.json)"))
        check_path("init_from", self.init_from)
        if self.add_memory_tracker and self.init_from is None:
            raise ConfigError("add_memory_tracker needs init_from (a model built from scratch gets its tracker from "
                              "its config: model.sam2.memory_tracker: true)")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.objective not in ("referring", "vos"):
            for name in ("seg_attention", "prompt_separation", "prompt_contrast"):
                if getattr(self.loss, name):
                    raise ConfigError(f"loss.{name} acts on the LLM's [SEG] tokens, which objective: "
                                      f"{self.objective} does not run (it applies to referring and vos)")
        if self.data.frames == "none":
            used = [f"loss.{n}" for n in ("bce", "dice", "presence", "prompt_contrast", "seg_attention")
                    if getattr(self.loss, n)]
            if self.objective != "referring" or used:
                raise ConfigError("data.frames: none trains the answer's cross-entropy without the video; it needs "
                                  f"objective: referring and no mask or [SEG] terms (got objective: {self.objective}"
                                  + (f", {', '.join(used)} on" if used else "") + ")")
        if not 0.0 <= self.span_dropout <= 1.0:
            raise ConfigError(f"span_dropout is a probability in [0, 1], got {self.span_dropout}")
        if self.span_dropout and self.objective != "referring":
            raise ConfigError("span_dropout drops the span term of the [SEG] prompts that objective: referring trains; "
                              f"objective: {self.objective} does not use it")
        if self.bpe_vocab_size is not None and self.bpe_vocab_size < 1:
            raise ConfigError(f"bpe_vocab_size must be >= 1, got {self.bpe_vocab_size}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for saving next to checkpoints)."""
        import dataclasses

        from svac.config import _to_plain

        return _to_plain(dataclasses.asdict(self))


def load_train_config(source: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load a :class:`TrainConfig` from YAML plus ``key=value`` overrides.

    Args:
        source: a YAML file (``configs/train/svac_default_1_image.yaml``); when no such file exists,
            a config shipped in ``configs/``: ``configs/train/x.yaml``, or the bare name ``x.yaml``
            (looked up in ``configs/train/``), from any working folder.
        overrides: ``key.sub=value`` strings.

    Raises:
        FileNotFoundError: when the file does not exist.
        ConfigError: on unknown keys or wrongly typed values (the message names the key).
    """
    data = apply_overrides(read_yaml(source, folder=TRAIN_CONFIG_DIR), overrides)
    return from_dict(TrainConfig, data)
