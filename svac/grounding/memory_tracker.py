"""A second memory attention and mask decoder for frames tracked from memory alone (issue 16 §3).

svac's referring schedule prompts every frame with its clip's ``[SEG]`` (SVAC §3.4), so the SAM-2
trained on it never decodes a frame from memory alone: on the default model such frames come out
empty, and training SAM-2's own task (semi-supervised VOS, ``objective: vos``) on the same memory
attention and mask decoder teaches tracking but loses what the ``[SEG]`` prompts and the correction
clicks had taught (``docs/training.md``, "Memory (semi-supervised VOS)").

:class:`MemoryTracker` keeps the two tasks apart: its own copies of SAM-2's memory attention,
prompt encoder and mask decoder decode the frames that have **no prompt at all** -- after a
correction with ``after_correction="memory"`` (:mod:`svac.grounding.replay`), and the memory-decoded
frames of ``objective: vos`` -- while the ``[SEG]``-prompted frames, the clicked frames and the
mask-prompted frames keep SAM-2's own modules, as do the image encoder, the memory encoder and the
object-pointer projections (shared, so both read and write one memory bank). The referring
schedule never uses it: a model with a tracker segments exactly as without.

Switch: ``sam2.memory_tracker`` (:class:`svac.config.SAM2Config`), saved with the model (weights under
``memory_tracker.``); off for Sa2VA and SAM 2 checkpoints. A training run adds one to a model without
it with ``add_memory_tracker: true`` (:class:`svac.training.config.TrainConfig`), initialised as a copy
of SAM-2's modules.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from torch import nn

from svac.grounding.sam2_model import LanguagePromptedSAM2

if TYPE_CHECKING:
    from svac.config import SAM2Config

#: ``SAM2Base`` attributes a :class:`MemoryTracker` stands in for while it decodes a frame.
TRACKER_PARTS = ("memory_attention", "sam_prompt_encoder", "sam_mask_decoder")


class MemoryTracker(nn.Module):
    """SAM-2's memory attention, prompt encoder and mask decoder, a second copy for memory-only frames.

    Args:
        memory_attention: a ``sam2`` ``MemoryAttention`` of the grounding model's sizes.
        sam_prompt_encoder: a ``sam2`` ``PromptEncoder`` (it only encodes SAM-2's padding point here).
        sam_mask_decoder: a ``sam2`` ``MaskDecoder``.

    Its outputs are those of ``SAM2Base.track_step`` on the frame (:meth:`decoding`).
    """

    def __init__(self, memory_attention: nn.Module, sam_prompt_encoder: nn.Module,
                 sam_mask_decoder: nn.Module) -> None:
        super().__init__()
        self.memory_attention = memory_attention
        self.sam_prompt_encoder = sam_prompt_encoder
        self.sam_mask_decoder = sam_mask_decoder

    def copy_from(self, sam: LanguagePromptedSAM2) -> None:
        """Set the weights to those of ``sam``'s own three modules (the start of a tracker's training).

        Raises:
            RuntimeError: when the sizes differ (``load_state_dict``'s strict check).
        """
        for name in TRACKER_PARTS:
            getattr(self, name).load_state_dict(getattr(sam, name).state_dict(), strict=True)

    @contextmanager
    def decoding(self, sam: LanguagePromptedSAM2) -> Iterator[None]:
        """A context in which ``sam``'s ``track_step`` reads memory and decodes with this tracker's modules.

        ``SAM2Base`` reads the three modules as attributes; they are swapped for the context and put
        back after it, also on an error. Only frames with no point, box, mask or ``[SEG]`` prompt may be
        decoded in it (:func:`svac.grounding.tracking._step` checks).
        """
        saved = {name: getattr(sam, name) for name in TRACKER_PARTS}
        try:
            for name in TRACKER_PARTS:
                setattr(sam, name, getattr(self, name))
            yield
        finally:
            for name, module in saved.items():
                setattr(sam, name, module)


class _UnhookedSAM2(LanguagePromptedSAM2):
    """:class:`LanguagePromptedSAM2` without svac's forward hooks: the donor of a tracker's modules."""

    def _register_heads_hooks(self) -> None:
        pass


def build_memory_tracker(cfg: "SAM2Config", *, copy_of: LanguagePromptedSAM2 | None = None) -> MemoryTracker:
    """A :class:`MemoryTracker` with random weights, its modules built as the grounding model's are; with
    ``copy_of``, a copy of that SAM-2's three modules instead, on its device and dtype (the start of training).

    The ``sam2`` package builds the three modules inside ``SAM2Base`` (the mask decoder and prompt
    encoder from its sizes), so a SAM-2 of the same config (no checkpoint, without svac's forward hooks,
    which would tie the modules to it) is built and the three taken from it; its other parts are dropped.

    Raises:
        svac.errors.ConfigError: as :func:`svac.grounding.sam2_model.build_sam2_model`.
    """
    import dataclasses

    from svac.grounding.sam2_model import build_sam2_model

    donor = build_sam2_model(dataclasses.replace(cfg, checkpoint=None, memory_tracker=False),
                             model_class=_UnhookedSAM2)
    tracker = MemoryTracker(*(getattr(donor, name) for name in TRACKER_PARTS))
    if copy_of is not None:
        reference = next(copy_of.parameters())
        tracker.to(device=reference.device, dtype=reference.dtype)
        tracker.copy_from(copy_of)
    return tracker


def attach_memory_tracker(model) -> None:
    """Give an SVAC model a memory tracker initialised as a copy of its SAM-2's three modules.

    ``model.config.sam2.memory_tracker`` becomes ``True`` (saved with the model) and
    ``model.memory_tracker`` the new :class:`MemoryTracker`, on the device and dtype of ``model.grounding``.
    Until it is trained the model tracks from memory exactly as without it.

    Raises:
        svac.errors.ConfigError: when the model is not an SVAC model or already has a tracker.
    """
    import dataclasses

    from svac.errors import ConfigError

    config = getattr(model, "config", None)
    if getattr(model, "grounding", None) is None or not hasattr(config, "sam2"):
        raise ConfigError("add_memory_tracker: only an SVAC model (head: svac) has SAM-2 memory to track with")
    if config.sam2.memory_tracker or getattr(model, "memory_tracker", None) is not None:
        raise ConfigError("add_memory_tracker: the model already has a memory tracker (sam2.memory_tracker is true)")
    tracker = build_memory_tracker(config.sam2, copy_of=model.grounding)
    model.config = dataclasses.replace(config, sam2=dataclasses.replace(config.sam2, memory_tracker=True))
    model.memory_tracker = tracker
