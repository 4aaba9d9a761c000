"""Semi-supervised video object segmentation through SAM-2's memory (``objective: vos``; issue 16 §3).

SAM 2's core task (Ravi et al. 2024, §3 and §4 "Training"; its video predictor's ``add_new_mask`` then
``propagate_in_video``): an object's mask is given on one frame, which becomes a conditioning frame, and
every later frame is decoded from SAM-2's memory alone -- memory attention reading the conditioning
memory, the recent frames' memories and the object pointers, the mask decoder given no prompt. Only the
memory tells the tracked object apart from the other objects of the frame.

svac's referring schedule prompts *every* frame with its clip's ``[SEG]`` (SVAC §3.4), so SAM-2 trained on
it alone never needs memory: measured on the default model, memory attention's output differs by 2.7 %
between memories of two different objects (7.4 % between consecutive frames) and frames decoded without a
prompt come out empty, and a correction click (:mod:`svac.grounding.replay`) does not carry to the frames
after it (``docs/training.md``, "Tracking from memory").

:class:`VOSObjective` trains that task on the referring training videos, beside SVAC's own objective:

1. **VOS** -- for each video, up to ``vos.max_objects`` of its distinct targets; each object's
   ground-truth mask on its first visible sampled frame s is SAM-2's mask prompt (an initial
   conditioning frame, as ``add_new_mask``: SAM-2 takes the mask as its output, encodes it into memory
   and makes the object pointer from it), and the sampled frames after s are decoded from memory alone
   (no point, box or ``[SEG]`` prompt; at most ``vos.max_frames`` of them), each written into memory,
   supervised by the object's masks
   (BCE + Dice + presence, :func:`~svac.training.frame_objectives._weighted`). The objects of one video
   that become visible on the same frame are tracked through the same frames in one SAM-2 batch, so
   only their memories differ. Runs that start on different frames are tracked together when they are
   as long (SAM-2 reads frame *offsets*, so a run is shifted to start at 0).
   With probability ``vos.clicks`` a run gets one **corrective click** (SAM 2's simulated interaction,
   Ravi et al. 2024, §4 and App. D): on a random frame c after the mask frame and before the run's last,
   a click drawn from the error of the memory-decoded mask against the object
   (:func:`~svac.training.frame_objectives.correction_clicks`), the frame decoded again with the click,
   its previous logits as SAM-2's mask prompt and the same memory; c becomes a conditioning frame and the
   frames after it are decoded from memory alone. With probability ``vos.wrong_prompt`` the run starts
   from another target's mask (a memory wrong on purpose): the frames before the click follow that
   target, the click and the frames after it the run's own -- :mod:`svac.grounding.replay`'s
   ``after_correction="memory"`` after a wrong ``[SEG]`` anchor.
2. **referring** (weight ``vos.referring``; 0 skips it and the LLM) -- :class:`SVACObjective` on the
   same batch, so that grounding is kept while SAM-2's memory and decoder change.
3. **corrections** (weight ``vos.corrections``; 0 skips it) --
   :class:`~svac.training.frame_objectives.CorrectionObjective` on the same batch: the clicked frame as
   refinement decodes it (the ``[SEG]`` prompt, sometimes another expression's, plus the click).

Which parts train is the config's ``trainable`` (``sam2_memory`` at least: memory attention, memory
encoder, object-pointer projections). A model with a memory tracker (``sam2.memory_tracker``,
:mod:`svac.grounding.memory_tracker`) decodes the memory-only frames with it, as refinement's
``after_correction="memory"`` does; trained alone (``trainable: [sam2_tracker]``) it learns to track
while the ``[SEG]``, click and mask-prompted frames keep SAM-2's own modules unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.grounding.sam2_model import FrameFeatures
from svac.grounding.tracking import MemoryBank, _step, memory_horizon
from svac.training.config import LossConfig, VOSConfig
from svac.training.data import TrainingBatch
from svac.training.frame_objectives import CorrectionObjective, _weighted, correction_inputs, disjoint_rows
from svac.training.losses import StepLosses
from svac.training.objective import SVACObjective


@dataclass
class VOSLosses(StepLosses):
    """Losses of one step of :class:`VOSObjective` (scalar tensors; ``loss`` is back-propagated).

    ``bce``, ``dice`` and ``presence`` are the VOS pass's terms; ``vos`` its weighted mask loss;
    ``referring`` the referring objective's total and ``corrections`` the correction objective's (0 when
    its weight is 0).
    """

    loss: torch.Tensor
    bce: torch.Tensor
    dice: torch.Tensor
    presence: torch.Tensor
    vos: torch.Tensor
    referring: torch.Tensor
    corrections: torch.Tensor


@dataclass(frozen=True)
class VOSTrack:
    """One object tracked from a ground-truth mask: video ``example`` (index in the batch), target row
    ``row`` of its masks, first visible sampled frame ``start`` (frames), and ``prompt_row``, the target whose
    mask on ``start`` starts the run (``row`` itself, or another target: a memory wrong on purpose)."""

    example: int
    row: int
    start: int
    prompt_row: int


def vos_tracks(examples: list, max_objects: int, generator: torch.Generator,
               wrong_prompt: float = 0.0) -> list[VOSTrack]:
    """The objects the VOS pass tracks: per video, up to ``max_objects`` distinct targets, drawn at random.

    Two expressions naming the same objects are one target (``object_ids``; without ids every expression
    is one). A target never visible, or visible only on the last sampled frame, leaves
    nothing to track and is not drawn.

    Args:
        examples: :class:`~svac.training.data.TrainingExample` s (masks ``bool (K, T, S, S)``).
        max_objects: targets per video, >= 1.
        generator: the draw's random generator.
        wrong_prompt: probability, in [0, 1], that a track starts from the mask of another target visible
            on its start frame and naming other objects (``prompt_row``; when there is one).

    Returns:
        The tracks, video by video, each video's in target-row order.
    """
    tracks = []
    for b, example in enumerate(examples):
        masks = example.masks
        visible = masks.flatten(2).any(-1)  # (K, T)
        named = len(example.object_ids) == example.num_objects
        seen: set = set()
        rows = []
        for k in range(example.num_objects):
            key = frozenset(example.object_ids[k]) if named else k
            if key in seen:
                continue
            seen.add(key)
            first = visible[k].nonzero()
            if len(first) and int(first[0]) < masks.shape[1] - 1:
                rows.append((k, int(first[0])))
        order = torch.randperm(len(rows), generator=generator)[:max_objects].sort().values.tolist()
        for i in order:
            row, start = rows[i]
            prompt_row = row
            if wrong_prompt and float(torch.rand(1, generator=generator)) < wrong_prompt:
                others = [j for j in disjoint_rows(example, row) if bool(masks[j, start].any())]
                if others:
                    prompt_row = others[int(torch.randint(len(others), (1,), generator=generator))]
            tracks.append(VOSTrack(example=b, row=row, start=start, prompt_row=prompt_row))
    return tracks


class VOSObjective(SVACObjective):
    """SAM 2's semi-supervised VOS through memory, plus SVAC's referring objective (``objective: vos``).

    See the module docstring.

    Args:
        model: the SVAC model being trained.
        loss: mask-loss weights (``bce``, ``dice``, ``presence``; ``ce`` weighs the referring answer's
            cross-entropy as in :class:`SVACObjective`).
        vos: :class:`svac.training.config.VOSConfig`.
        corrections: :class:`svac.training.config.CorrectionConfig`, the options of the correction term
            (used when ``vos.corrections`` > 0).
        seed: seed of the object, click and prompt draws.
    """

    def __init__(self, model: nn.Module, loss: LossConfig, vos: VOSConfig, *, corrections=None,
                 seed: int = 0) -> None:
        super().__init__(model, loss, sam2_memory=True)
        self.cfg = vos
        self.generator = torch.Generator().manual_seed(seed)
        self.corrections = None
        if vos.corrections:
            if corrections is None:
                raise ValueError("vos.corrections > 0 needs the corrections section's options")
            self.corrections = CorrectionObjective(model, loss, corrections, seed=seed + 1)
        self._batch_features: dict[int, list[FrameFeatures]] = {}  # id(example) -> features, during forward

    def forward(self, batch: TrainingBatch) -> VOSLosses:
        """Weighted losses of the VOS pass and the referring objective on ``batch``.

        SAM-2's image encoder runs once per sampled frame: the referring pass reads the features the VOS
        pass computed (:meth:`_encode_group`).
        """
        tracks = vos_tracks(batch.examples, self.cfg.max_objects, self.generator, self.cfg.wrong_prompt)
        feats = self._encode_videos(batch.examples)
        part = self.track_from_masks(batch.examples, tracks, feats)
        if self.cfg.referring:
            self._batch_features = {id(e): f for e, f in zip(batch.examples, feats)}
            try:
                referring = super().forward(batch).loss
            finally:
                self._batch_features = {}
        else:
            referring = part.loss.new_zeros(())
        corrections = self.corrections(batch).loss if self.corrections is not None else part.loss.new_zeros(())
        return VOSLosses(loss=self.cfg.vos * part.loss + self.cfg.referring * referring
                         + self.cfg.corrections * corrections, bce=part.bce, dice=part.dice,
                         presence=part.presence, vos=part.loss, referring=referring, corrections=corrections)

    def _encode_group(self, examples: list) -> list[list[FrameFeatures]]:
        """:meth:`SVACObjective._encode_group`, reading the features of this step's videos when the VOS pass
        has already computed them."""
        cached = [self._batch_features.get(id(e)) for e in examples]
        if all(f is not None for f in cached):
            return cached
        return super()._encode_group(examples)

    def _encode_videos(self, examples: list) -> list[list[FrameFeatures]]:
        """Per video, SAM-2's features of its sampled frames (one encoder call per frame count)."""
        out: list = [None] * len(examples)
        by_length: dict[int, list[int]] = {}
        for b, e in enumerate(examples):
            by_length.setdefault(int(e.sam_frames.shape[0]), []).append(b)
        for members in by_length.values():
            for b, feats in zip(members, self._encode_group([examples[b] for b in members])):
                out[b] = feats
        return out

    def track_from_masks(self, examples: list, tracks: list[VOSTrack], feats: list[list[FrameFeatures]]):
        """The VOS pass: each track's mask prompt on its start frame, the later frames from memory alone,
        one corrective click on some runs (``vos.clicks``; module docstring).

        Args:
            examples: the batch's videos.
            tracks: :func:`vos_tracks`.
            feats: per video, its frames' SAM-2 features (:meth:`_encode_videos`).

        Returns:
            :class:`~svac.training.frame_objectives.FrameLosses` over every frame decoded after the start frame
            (a clicked frame twice: before its click, supervised by the run's prompt target, and after it,
            supervised by the run's own target).

        Raises:
            ValueError: when ``tracks`` is empty (no video has a target visible before its last sampled frame).
        """
        if not tracks:
            raise ValueError("objective vos: no object of the batch is visible before its video's last sampled frame")
        sam = self.model.grounding
        dtype = next(sam.parameters()).dtype
        by_length: dict[int, list[VOSTrack]] = {}
        for tr in tracks:
            length = int(examples[tr.example].masks.shape[1]) - tr.start
            if self.cfg.max_frames is not None:
                length = min(length, 1 + self.cfg.max_frames)
            by_length.setdefault(length, []).append(tr)
        logits, scores, targets = [], [], []

        def supervise(out: dict, target: torch.Tensor) -> None:
            logits.append(out["pred_masks"])
            scores.append(out["object_score_logits"])
            targets.append(target)

        for length, group in by_length.items():
            k = len(group)
            own = torch.stack([examples[tr.example].masks[tr.row, tr.start:tr.start + length]
                               for tr in group])  # (k, L, S, S)
            prompted = torch.stack([examples[tr.example].masks[tr.prompt_row, tr.start:tr.start + length]
                                    for tr in group])  # the start mask's target
            click = None  # the clicked frame of this group's runs
            if length >= 3 and self.cfg.clicks and float(torch.rand(1, generator=self.generator)) < self.cfg.clicks:
                click = 1 + int(torch.randint(length - 2, (1,), generator=self.generator))
            bank = MemoryBank(horizon=memory_horizon(sam))
            for j in range(length):
                frame = FrameFeatures.concat([feats[tr.example][tr.start + j] for tr in group], [1] * k)
                if j == 0:
                    out = _step(sam, 0, frame, k, bank, length, mask_inputs=prompted[:, 0, None].to(dtype),
                                is_init_cond_frame=True, point_inputs=None)
                    bank.add(0, out, conditioning=True)
                    continue
                out = _step(sam, j, frame, k, bank, length, is_init_cond_frame=False, point_inputs=None,
                            tracker=self.model.memory_tracker)
                if click is None or j < click:
                    supervise(out, prompted[:, j])
                    bank.add(j, out, conditioning=False)
                elif j > click:
                    supervise(out, own[:, j])
                    bank.add(j, out, conditioning=False)
                else:
                    supervise(out, prompted[:, j])
                    out = self._corrected(frame, j, k, bank, length, out, own[:, j])
                    supervise(out, own[:, j])
                    bank.add(j, out, conditioning=True)
        return _weighted({"pred_masks": torch.cat(logits), "object_score_logits": torch.cat(scores)},
                         torch.cat(targets), self.loss_cfg)

    def _corrected(self, frame: FrameFeatures, j: int, k: int, bank: MemoryBank, length: int, tracked: dict,
                   target: torch.Tensor) -> dict:
        """Frame ``j`` decoded again with one click drawn from the error of ``tracked`` against ``target``
        (``bool (k, S, S)``), ``tracked``'s logits as SAM-2's mask prompt, and the same memory (as
        :meth:`svac.grounding.replay._Replay.correct` decodes a tracked frame)."""
        sam = self.model.grounding
        inputs, prev = correction_inputs(sam, tracked, target, self.generator)
        return _step(sam, j, frame, k, bank, length, is_init_cond_frame=False, point_inputs=inputs,
                     prev_sam_mask_logits=prev)
