"""SAM-2 whose mask decoder is prompted by ``[SEG]`` embeddings (SVAC §3.4; Sa2VA §3.2).

:class:`LanguagePromptedSAM2` subclasses the ``sam2`` package's ``SAM2Base``
(nothing is copied from it): a forward hook on its prompt encoder appends the
projected ``[SEG]`` hidden state to the sparse prompt tokens that the SAM prompt
encoder makes from an empty (padding) point prompt, so the mask decoder's
two-way transformer attends to it like to a click. Everything else -- image encoder, memory attention,
memory encoder, object pointers -- is SAM-2's own code, driven frame by frame
by :mod:`svac.grounding.tracking`.

The model is built from a Hydra config shipped in the ``sam2`` package
(``configs/sam2.1/sam2.1_hiera_t.yaml`` ...) with the model class replaced by
this subclass, so released SAM 2 / 2.1 checkpoints load into it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from sam2.modeling.sam2_base import SAM2Base

from svac.config import SAM2Config
from svac.errors import CheckpointError

#: Key under which the ``[SEG]`` prompt travels inside SAM-2's ``point_inputs`` dict.
TEXT_PROMPT_KEY = "text_prompt"


@dataclass
class FrameFeatures:
    """SAM-2 image-encoder output of one frame, flattened as ``SAM2Base.track_step`` expects.

    Attributes:
        vision_feats: per feature level, ``(H_l * W_l, 1, C)`` (highest resolution first).
        vision_pos: positional encodings, same shapes.
        feat_sizes: ``(H_l, W_l)`` per level (feature cells).
        self_attention: ``float (1, H * W, C)`` the first memory-attention layer's self-attention
            on this frame (lowest-resolution level, batch first), computed with the frame's chunk
            (:meth:`LanguagePromptedSAM2.encode_frames` under ``torch.inference_mode``), or ``None``.
    """

    vision_feats: list[torch.Tensor]
    vision_pos: list[torch.Tensor]
    feat_sizes: list[tuple[int, int]]
    self_attention: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        """Images in the batch dimension (1 for one frame; K when shared by K objects)."""
        return int(self.vision_feats[-1].shape[1])

    @staticmethod
    def concat(parts: "list[FrameFeatures]", repeats: list[int]) -> "FrameFeatures":
        """Stack single-frame features along the batch dimension, frame i repeated ``repeats[i]`` times.

        Used to track the objects of several videos at once (K_i objects of video i). The result
        holds no precomputed self-attention.
        """
        def cat(tensors):
            return torch.cat([t.expand(-1, r, -1) for t, r in zip(tensors, repeats)], dim=1)

        levels = range(len(parts[0].vision_feats))
        return FrameFeatures(vision_feats=[cat([p.vision_feats[l] for p in parts]) for l in levels],
                             vision_pos=[cat([p.vision_pos[l] for p in parts]) for l in levels],
                             feat_sizes=list(parts[0].feat_sizes))


@dataclass
class _HeadsCall:
    """What one ``_forward_sam_heads`` call hands its prompt-encoder and mask-decoder hooks.

    Attributes:
        seg_tokens: ``(K, 1, C)`` ``[SEG]`` prompts appended to the sparse prompt embeddings, or ``None``.
        keep_logits: whether the decoder's raw mask logits are kept (``keep_absent_object_logits``).
        raw_logits: the decoder's mask logits ``(K, M, 4h, 4w)`` before SAM-2's "no object" replacement.
    """

    seg_tokens: torch.Tensor | None
    keep_logits: bool
    raw_logits: torch.Tensor | None = None


class LanguagePromptedSAM2(SAM2Base):
    """SAM-2 with ``[SEG]`` embeddings as extra sparse prompt tokens of the mask decoder.

    ``SAM2Base._forward_sam_heads`` runs unchanged; two forward hooks do svac's part:

    * on ``sam_prompt_encoder``: the ``[SEG]`` prompts of the call are appended to the sparse
      prompt embeddings it makes (after SAM-2's padding point), so the mask decoder's two-way
      transformer attends to them like to a click;
    * on ``sam_mask_decoder`` (``keep_absent_object_logits`` only): the raw mask logits are kept,
      so that an object predicted absent keeps them instead of SAM-2's "no object" logit.

    The ``sam2`` members this relies on are pinned by ``tests/test_sam2_contract.py``.

    Args:
        text_multimask_output: whether the decoder predicts 3 masks (keeping the one with the
            best predicted IoU) when prompted by a ``[SEG]`` embedding; Sa2VA's SAM 2 does.
        keep_absent_object_logits: keep the decoder's mask logits when the object-score logit
            is <= 0, on every frame (Sa2VA's copy of SAM 2 comments out SAM 2's replacement by
            ``NO_OBJ_SCORE``); ``False`` is SAM 2's behaviour. The object pointer is gated by the
            score either way.
        **kwargs: every argument of ``sam2.modeling.sam2_base.SAM2Base`` (image encoder,
            memory attention and memory encoder modules, and options).
    """

    def __init__(self, *args, text_multimask_output: bool = False, keep_absent_object_logits: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.text_multimask_output = text_multimask_output
        self.keep_absent_object_logits = keep_absent_object_logits
        self._heads_call: _HeadsCall | None = None
        self._register_heads_hooks()

    def _register_heads_hooks(self) -> None:
        """Register svac's two forward hooks on the prompt encoder and the mask decoder (class docstring)."""
        self.sam_prompt_encoder.register_forward_hook(self._append_seg_tokens)
        self.sam_mask_decoder.register_forward_hook(self._record_raw_logits)

    def _build_sam_heads(self):
        """``SAM2Base._build_sam_heads``, with the prompt encoder and mask decoder made svac's inference subclasses
        (:func:`svac.grounding.sam2_inference.use_inference_heads`: same modules and parameters; in
        inference they skip work whose result is known)."""
        from svac.grounding.sam2_inference import use_inference_heads

        super()._build_sam_heads()
        use_inference_heads(self.sam_prompt_encoder, self.sam_mask_decoder)

    # ------------------------------------------------------------------ prompts

    def text_point_inputs(self, prompts: torch.Tensor) -> dict:
        """SAM-2 ``point_inputs`` carrying ``[SEG]`` prompts.

        Args:
            prompts: ``float (K, C)`` projected ``[SEG]`` embeddings, one per object, with
                C = ``self.hidden_dim`` (256 for released SAM 2 models).

        Returns:
            A dict with one padding point per object (label -1, as SAM-2 uses when no click
            is given) and the prompts under :data:`TEXT_PROMPT_KEY`.

        Raises:
            ValueError: when ``prompts`` is not ``(K, hidden_dim)``.
        """
        if prompts.ndim != 2 or prompts.shape[1] != self.hidden_dim:
            raise ValueError(f"[SEG] prompts must be (K, {self.hidden_dim}), got {tuple(prompts.shape)}")
        k = prompts.shape[0]
        return {
            "point_coords": prompts.new_zeros(k, 1, 2, dtype=torch.float32),
            "point_labels": -torch.ones(k, 1, dtype=torch.int32, device=prompts.device),
            TEXT_PROMPT_KEY: prompts[:, None, :],
        }

    def click_point_inputs(self, coords: torch.Tensor, labels: torch.Tensor,
                           prompts: torch.Tensor | None = None) -> dict:
        """SAM-2 ``point_inputs`` of correction clicks and box corners, with the frame's ``[SEG]`` prompts when given.

        The clicks go through SAM-2's own prompt encoder (``sam_prompt_encoder``) as in its video
        predictor's ``add_new_points_or_box``; the ``[SEG]`` prompts are appended after them
        (:meth:`text_point_inputs`), so a correction keeps the language prompt of its frame.

        Args:
            coords: ``float (K, P, 2)`` (x, y) in SAM-2 input pixels, in ``[0, image_size]``.
            labels: ``int (K, P)``: 1 positive click, 0 negative click, 2 and 3 a box's top-left and
                bottom-right corners (SAM-2's convention; a box comes first).
            prompts: ``float (K, C)`` projected ``[SEG]`` embeddings, or ``None`` for clicks alone.

        Raises:
            ValueError: when the shapes do not match.
        """
        if coords.ndim != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
            raise ValueError(f"clicks must be coords (K, P, 2) and labels (K, P), got {tuple(coords.shape)} and "
                             f"{tuple(labels.shape)}")
        inputs = {} if prompts is None else self.text_point_inputs(prompts)
        if prompts is not None and prompts.shape[0] != coords.shape[0]:
            raise ValueError(f"{coords.shape[0]} objects of clicks but {prompts.shape[0]} [SEG] prompts")
        inputs.update(point_coords=coords.to(torch.float32), point_labels=labels.to(torch.int32))
        return inputs

    def _use_multimask(self, is_init_cond_frame, point_inputs):
        if point_inputs is not None and TEXT_PROMPT_KEY in point_inputs:
            return self.text_multimask_output
        return super()._use_multimask(is_init_cond_frame, point_inputs)

    def _forward_sam_heads(self, backbone_features, point_inputs=None, mask_inputs=None, high_res_features=None,
                           multimask_output=False):
        """``SAM2Base._forward_sam_heads`` with the ``[SEG]`` prompt of ``point_inputs`` appended to the
        sparse prompt tokens and, with ``keep_absent_object_logits``, the decoder's logits kept.

        The outputs have the same meaning and shapes as there (for K objects): low-res multimask
        logits ``(K, M, 4h, 4w)``, high-res logits ``(K, M, S, S)``, IoU predictions ``(K, M)``,
        best low-/high-res logits ``(K, 1, ., .)``, object pointer ``(K, C)`` and object-score
        logits ``(K, 1)``; S = ``image_size`` pixels. A ``[SEG]`` prompt may come with mask inputs:
        a correction click on a ``[SEG]``-prompted frame (:mod:`svac.grounding.replay`) also gives
        SAM-2 the frame's previous mask logits, as SAM-2's video predictor does for clicks.
        """
        seg = None if point_inputs is None else point_inputs.get(TEXT_PROMPT_KEY)
        call = _HeadsCall(seg_tokens=seg, keep_logits=self.keep_absent_object_logits and mask_inputs is None)
        self._heads_call = call
        try:
            outputs = super()._forward_sam_heads(backbone_features, point_inputs, mask_inputs, high_res_features,
                                                 multimask_output)
        finally:
            self._heads_call = None
        if call.keep_logits and self.pred_obj_scores and bool((outputs[-1] <= 0).any()):
            outputs = self._with_raw_logits(outputs, call.raw_logits, multimask_output)
        return outputs

    def _append_seg_tokens(self, module, inputs, output):
        """Forward hook of ``sam_prompt_encoder``: append the call's ``[SEG]`` tokens to the sparse embeddings."""
        call = self._heads_call
        if call is None or call.seg_tokens is None:
            return output
        sparse, dense = output
        return torch.cat([sparse, call.seg_tokens.to(sparse.dtype)], dim=1), dense

    def _record_raw_logits(self, module, inputs, output):
        """Forward hook of ``sam_mask_decoder``: keep its mask logits when the call keeps them."""
        call = self._heads_call
        if call is not None and call.keep_logits:
            call.raw_logits = output[0]
        return output

    def _with_raw_logits(self, outputs: tuple, raw_logits: torch.Tensor, multimask_output: bool) -> tuple:
        """``outputs`` of ``_forward_sam_heads`` with every mask taken from the decoder's raw logits
        (SAM-2 replaced those of absent objects by ``NO_OBJ_SCORE``); the best mask is the same
        IoU argmax SAM-2 takes; IoUs, object pointer and object scores stay SAM-2's."""
        _, _, ious, _, _, obj_ptr, obj_logits = outputs
        low_multi = raw_logits.float()
        high_multi = F.interpolate(low_multi, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False)
        if multimask_output:
            rows = torch.arange(low_multi.shape[0], device=low_multi.device)
            best = ious.argmax(dim=-1)
            low, high = low_multi[rows, best][:, None], high_multi[rows, best][:, None]
        else:
            low, high = low_multi, high_multi
        return low_multi, high_multi, ious, low, high, obj_ptr, obj_logits

    def track_step(self, frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds, feat_sizes,
                   point_inputs, mask_inputs, output_dict, num_frames, track_in_reverse=False, run_mem_encoder=True,
                   prev_sam_mask_logits=None, isolate_prompt_gradients=False):
        """``SAM2Base.track_step`` that also returns the object-score logits in training mode.

        SAM-2 keeps ``object_score_logits`` only at inference; svac supervises object presence
        during training (masks of frames predicted "absent" carry no gradient), so the output
        dict always holds ``object_score_logits`` ``(K, 1)`` and the IoU predictions ``ious``
        ``(K, M)``. The work is done by SAM-2's own ``_track_step`` and ``_encode_memory_in_output``.

        With ``isolate_prompt_gradients=True`` the memory written for later frames carries no
        gradient back to this frame's prompt: the predicted mask enters the memory encoder
        detached and the object pointer is stored detached, while the memory encoder's weights
        and the image features still receive gradient. Later frames' losses then reach only
        their own ``[SEG]`` (CSA's per-clip supervision, SVAC §3.4).
        """
        current_out, sam_outputs, _, _ = self._track_step(
            frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds, feat_sizes,
            point_inputs, mask_inputs, output_dict, num_frames, track_in_reverse, prev_sam_mask_logits)
        _, _, ious, low_res_masks, high_res_masks, obj_ptr, object_score_logits = sam_outputs
        if isolate_prompt_gradients:
            obj_ptr, object_score_for_memory = obj_ptr.detach(), object_score_logits.detach()
            masks_for_memory = high_res_masks.detach()
        else:
            object_score_for_memory, masks_for_memory = object_score_logits, high_res_masks
        current_out.update(pred_masks=low_res_masks, pred_masks_high_res=high_res_masks, obj_ptr=obj_ptr,
                           object_score_logits=object_score_logits, ious=ious)
        self._encode_memory_in_output(current_vision_feats, feat_sizes, point_inputs, run_mem_encoder,
                                      masks_for_memory, object_score_for_memory, current_out)
        return current_out

    # ------------------------------------------------------------------ encoder

    def encode_frames(self, images: torch.Tensor) -> list[FrameFeatures]:
        """Run the SAM-2 image encoder once on a batch of frames.

        Args:
            images: ``float (n, 3, S, S)`` normalised frames (:func:`preprocess_frames`).

        Returns:
            One :class:`FrameFeatures` per frame, in order.

        Under ``torch.inference_mode`` each frame also carries the first memory-attention layer's
        self-attention (:attr:`FrameFeatures.self_attention`), computed for the whole batch at once
        (it reads only the frame's own features); tracking hands it to that layer
        (:meth:`self_attention_handoff`).
        """
        backbone_out = self.forward_image(images)
        _, feats, pos, sizes = self._prepare_backbone_features(backbone_out)
        layer = self._first_memory_layer()
        attended = None
        if layer is not None and torch.is_inference_mode_enabled() and not torch.is_autocast_enabled():
            attended = layer.precompute_self_attention(feats[-1], pos[-1],
                                                       pos_enc_at_input=self.memory_attention.pos_enc_at_input)
        return [FrameFeatures(vision_feats=[f[:, i:i + 1] for f in feats],
                              vision_pos=[p[:, i:i + 1] for p in pos],
                              feat_sizes=list(sizes),
                              self_attention=None if attended is None else attended[i:i + 1])
                for i in range(images.shape[0])]

    def _first_memory_layer(self):
        """The first memory-attention layer when it is svac's
        :class:`~svac.grounding.sam2_inference.PrecomputedSelfAttentionLayer` (batch-first), else ``None``."""
        from svac.grounding.sam2_inference import PrecomputedSelfAttentionLayer

        layers = getattr(self.memory_attention, "layers", None)
        if not layers or not isinstance(layers[0], PrecomputedSelfAttentionLayer):
            return None
        return layers[0] if self.memory_attention.batch_first else None

    def self_attention_handoff(self, feats: FrameFeatures):
        """A context in which the next memory attention uses ``feats.self_attention`` (when there is one) instead
        of computing the first layer's self-attention again."""
        from contextlib import nullcontext

        layer = self._first_memory_layer()
        if layer is None or feats.self_attention is None:
            return nullcontext()
        return layer.using_self_attention(feats.self_attention)


def preprocess_frames(frames, image_size: int, *, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32, resample: Literal["torch", "pil"] = "torch",
                      stats_dtype: torch.dtype = torch.float32, workspace: "InputWorkspace | None" = None
                      ) -> torch.Tensor:
    """SAM-2 input of RGB frames: bicubic resize to S x S in ``uint8``, scale to [0, 1], ImageNet-normalise.

    The frames are resized while still ``uint8`` (on the CPU, where they were decoded) and only
    the S x S result is converted to float: torch's antialiased bicubic on ``uint8`` channels-last
    frames took 0.8 ms per 854x480 frame here, against 24 ms on the float frames (it rounds to
    ``uint8``, a difference of at most one grey level). Training (:mod:`svac.training.data`) uses
    this function too, so training and inference see the same pixels.

    Args:
        frames: ``uint8 (n, H, W, 3)`` numpy array (original video frames).
        image_size: S, the model's input side (pixels).
        resample: ``torch`` -- torch's antialiased bicubic on the ``uint8`` frames (svac's pipeline);
            ``pil`` -- PIL's bicubic filter on the ``uint8`` frames (Sa2VA's ``DirectResize``).
        stats_dtype: dtype the ImageNet mean and std are rounded to before normalising in float32
            (Sa2VA: ``bfloat16``, :data:`svac.sa2va_pipeline.SAM2_STATS_DTYPE`).
        workspace: float32 storage reused from call to call (:class:`InputWorkspace`, the streaming
            engine's); ``None`` allocates new storage. With a workspace and ``dtype`` float32 the result
            is a view of it, valid until the workspace's next use.

    Returns:
        ``float (n, 3, S, S)`` on ``device`` in ``dtype``, channels-last in memory (the
        ``(n, S, S, 3)`` layout the frames come in; the image encoder's first convolution reads it so).

    Raises:
        ValueError: when ``frames`` is not ``uint8 (n, H, W, 3)``.
    """
    import numpy as np

    from svac.config import IMAGENET_MEAN, IMAGENET_STD

    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (n, H, W, 3), got {frames.dtype} {frames.shape}")
    if resample == "pil":
        from svac.sa2va_pipeline import resize_bicubic_pil

        frames = resize_bicubic_pil(frames, image_size)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # uint8, channels-last in memory
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=True)
    # normalised in place in the (n, S, S, 3) layout, statistics broadcast over the last dimension: one
    # float32 tensor in all (a new one per call cost page faults on every chunk of a stream: 0.2-0.3 ms
    # per 128x128 frame here); the same float operations per pixel as before, so the same values
    pixels = x.permute(0, 2, 3, 1)  # (n, S, S, 3) view, contiguous
    n = pixels.shape[0]
    out = (workspace.take(n, image_size, device) if workspace is not None else
           torch.empty((n, image_size, image_size, 3), dtype=torch.float32, device=device))
    out.copy_(pixels).div_(255.0)
    out.sub_(torch.tensor(IMAGENET_MEAN, device=out.device, dtype=stats_dtype).float())
    out.div_(torch.tensor(IMAGENET_STD, device=out.device, dtype=stats_dtype).float())
    return out.permute(0, 3, 1, 2).to(dtype)


class InputWorkspace:
    """Reusable float32 storage for :func:`preprocess_frames` (``workspace=``): one ``(n, S, S, 3)`` tensor,
    grown when a call needs more frames, on the device of the last call.

    The streaming engine preprocesses every chunk of a video into the same storage, so the float
    frames are not allocated (and their pages faulted in) again per chunk. Not thread-safe; a
    result of :func:`preprocess_frames` stays valid only until the workspace's next use.
    """

    def __init__(self) -> None:
        self._storage: torch.Tensor | None = None
        self._key: tuple | None = None

    def take(self, n: int, image_size: int, device: torch.device | str) -> torch.Tensor:
        """``float32 (n, image_size, image_size, 3)`` on ``device``: a view of the kept storage (new when too small)."""
        key = (image_size, str(device))
        if self._storage is None or self._key != key or self._storage.shape[0] < n:
            self._storage = torch.empty((n, image_size, image_size, 3), dtype=torch.float32, device=device)
            self._key = key
        return self._storage[:n]


def build_sam2_model(cfg: SAM2Config, *, model_class: type[LanguagePromptedSAM2] | None = None) -> LanguagePromptedSAM2:
    """Build :class:`LanguagePromptedSAM2` from a ``sam2`` package config resized by ``cfg``'s typed fields
    (:func:`svac.grounding.sam2_hydra.sam2_model_node`: no string from a file reaches Hydra).

    ``model_class`` (default :class:`LanguagePromptedSAM2`) is the class built, a subclass of it
    (:func:`svac.grounding.memory_tracker.build_memory_tracker` builds one without svac's hooks).

    When ``cfg.checkpoint`` is set, a Meta SAM 2 / 2.1 ``.pt`` checkpoint is loaded strictly
    (``torch.load(weights_only=True)``).

    Raises:
        svac.errors.ConfigError: when the sizes do not fit together or ``sam2`` cannot build them.
        svac.errors.CheckpointError: when the checkpoint is missing or its keys do not match.
    """
    from hydra.errors import HydraException
    from hydra.utils import instantiate
    from omegaconf.errors import OmegaConfBaseException

    from svac.errors import ConfigError
    from svac.grounding.sam2_hydra import sam2_model_node

    node = sam2_model_node(cfg, model_class or LanguagePromptedSAM2)
    _use_inference_modules(node)
    try:
        model = instantiate(node, _recursive_=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot build SAM-2 from {cfg.config_name} with {cfg.architecture()}: {exc}") from exc
    if cfg.checkpoint is not None:
        load_sam2_checkpoint(model, cfg.checkpoint)
    return model


#: Hydra paths of SAM-2 modules replaced by svac's inference subclasses: (path, sam2's class, svac's class).
INFERENCE_MODULES = (
    ("image_encoder.neck.position_encoding", "sam2.modeling.position_encoding.PositionEmbeddingSine",
     "svac.grounding.sam2_inference.SharedPositionEmbeddingSine"),
    ("memory_encoder.position_encoding", "sam2.modeling.position_encoding.PositionEmbeddingSine",
     "svac.grounding.sam2_inference.SharedPositionEmbeddingSine"),
    ("memory_attention.layer", "sam2.modeling.memory_attention.MemoryAttentionLayer",
     "svac.grounding.sam2_inference.PrecomputedSelfAttentionLayer"),
)


def _use_inference_modules(node) -> None:
    """Point the ``_target_`` of each :data:`INFERENCE_MODULES` path that builds sam2's class at svac's subclass.

    The subclasses (:mod:`svac.grounding.sam2_inference`) take the same arguments and hold the same
    parameters; a path holding another class is left alone.
    """
    from omegaconf import OmegaConf, open_dict

    for path, theirs, ours in INFERENCE_MODULES:
        sub = OmegaConf.select(node, path)
        if sub is not None and sub.get("_target_") == theirs:
            with open_dict(sub):
                sub["_target_"] = ours


def load_sam2_checkpoint(model: SAM2Base, path: str) -> None:
    """Load a Meta SAM 2 ``.pt`` checkpoint (``{"model": state_dict}``) strictly, without unpickling code.

    Raises:
        CheckpointError: when the file is missing or unreadable, or keys/shapes do not match
            (the message lists the offending keys).
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"SAM 2 checkpoint not found: {p}")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read SAM 2 checkpoint {p}: {exc}") from exc
    state = blob.get("model", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{p} is not a SAM 2 checkpoint (expected a dict with a 'model' state dict)")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shape:
        raise CheckpointError(f"SAM 2 checkpoint {p} does not match the model config: missing {missing[:20]}, "
                              f"unexpected {unexpected[:20]}, shape mismatch {shape[:20]}")
    model.load_state_dict(state, strict=True)
