"""The classic R-VOS baselines as svac models: same ``segment`` and checkpoints as SVAC, trained by the same recipe.

:class:`RVOSBaseline` wraps a baseline head module (ReferFormer, LAVT) with its
text tokenizer and the :class:`~svac.config.SVACConfig` that selected it
(``head: referformer | lavt``, section ``baseline``). It gives the head what
:class:`svac.SVAC` offers, so ``svac segment``, ``svac eval`` and ``svac train``
run it unchanged:

* :meth:`RVOSBaseline.segment` -- every frame of the video, in consecutive
  non-overlapping windows of ``baseline.window`` frames resized to
  ``baseline.input_size``; mask logits are upsampled to the original frame size
  and thresholded at ``inference.mask_threshold`` (a logit: 0 = probability 0.5);
* :meth:`RVOSBaseline.save_pretrained` / :meth:`RVOSBaseline.from_pretrained`
  (:mod:`svac.heads.rvos_checkpoint`);
* what the recipe's training hooks for baselines use (:data:`svac.training.hooks.TRAINING_HOOKS`):
  :meth:`frozen_modules` and :meth:`objective`.

Subclasses (:class:`svac.heads.referformer_rvos.ReferFormerRVOS`,
:class:`svac.heads.lavt_rvos.LAVTRVOS`) build the head and turn its output on
one window into per-frame object logits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from svac.config import SVACConfig
from svac.errors import ConfigError
from svac.outputs import SegmentationResult, Timings
from svac.progress import Progress, progress_iter

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from svac.checkpoints.svac_format import SavedCheckpoint

#: ``SegmentationResult.mode`` of a baseline: the video is read in consecutive windows.
RESULT_MODE = "window"
#: ``SegmentationResult.csa_mode`` of a baseline (no [SEG] tokens, no clip-specific allocation).
RESULT_CSA_MODE = "none"
#: ``SegmentationResult.text`` of a baseline: it answers with masks only, no text.
RESULT_TEXT = ""


@dataclass
class WindowPrediction:
    """A head's prediction on one window of T frames.

    Attributes:
        logits: ``float (T, h, w)`` object log-odds per frame at the head's mask resolution
            (``> 0`` means object probability above 0.5).
        frame_scores: ``float (T,)`` per-frame confidence in [0, 1] from a score head, or ``None``
            when the head has none (then the score is the mean object probability inside the mask).
    """

    logits: torch.Tensor
    frame_scores: torch.Tensor | None = None


class RVOSBaseline(nn.Module):
    """A baseline head with its tokenizer and config, usable wherever svac uses a model.

    Args:
        config: the model's config (``head`` names this class's head).
        head: the head module (``forward(frames (B, T, 3, H, W), input_ids, attention_mask)``).
        head_config: the head's typed config.
        tokenizer: the text tokenizer matching the head's text encoder.

    Raises:
        ConfigError: when ``config.head`` is not this class's head, or the tokenizer's vocabulary
            is larger than the text encoder's embedding table.
    """

    #: The ``head`` name this class implements.
    head_name: ClassVar[str] = ""

    def __init__(self, config: SVACConfig, *, head: nn.Module, head_config: Any,
                 tokenizer: "PreTrainedTokenizerBase") -> None:
        super().__init__()
        if config.head != self.head_name:
            raise ConfigError(f"{type(self).__name__} implements head {self.head_name!r}, the config names "
                              f"{config.head!r}")
        self.config = config
        self.head = head
        self.head_config = head_config
        self.tokenizer = tokenizer
        rows = int(self.text_encoder_module().config.vocab_size)
        if len(tokenizer) > rows:
            raise ConfigError(f"the text tokenizer has {len(tokenizer)} tokens but the {self.head_name} text encoder "
                              f"embeds {rows}; use the encoder's own tokenizer (baseline.text_tokenizer)")

    # ------------------------------------------------------------------ to implement per head

    @classmethod
    def build_head(cls, head_config: Any) -> nn.Module:
        """The head module for ``head_config`` (random or configured pretrained weights)."""
        raise NotImplementedError

    def text_encoder_module(self) -> nn.Module:
        """The transformers text encoder inside the head (its ``config`` is saved with checkpoints)."""
        raise NotImplementedError

    def predict_window(self, frames: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor) -> WindowPrediction:
        """The head's prediction on one window: ``frames (1, T, 3, H, W)``, ids and mask ``(1, L)``."""
        raise NotImplementedError

    def frozen_modules(self) -> dict[str, nn.Module]:
        """Parts of the head that do not train, by name (the paper's choice and the head config's)."""
        raise NotImplementedError

    def objective(self) -> nn.Module:
        """The module computing :class:`~svac.heads.rvos_training.HeadLosses` of a batch."""
        raise NotImplementedError

    # ------------------------------------------------------------------ building and checkpoints

    @classmethod
    def from_config(cls, config: SVACConfig, *, tokenizer: "PreTrainedTokenizerBase | None" = None) -> "RVOSBaseline":
        """Build the model of ``config`` (random weights, or the pretrained backbone / text encoder it names).

        The tokenizer is ``tokenizer`` when given, else ``baseline.text_tokenizer``, else the
        pretrained text encoder's own, else svac's byte-level tokenizer (:mod:`svac.heads.text`).
        A text encoder built from scratch gets the tokenizer's vocabulary size and special ids.

        Raises:
            ConfigError: on an invalid ``baseline`` section, or a tokenizer given for a pretrained
                text encoder (its vocabulary is fixed).
            svac.errors.CheckpointError: when a configured pretrained file cannot be read.
        """
        from svac.heads.head_configs import head_config, pretrained_text_encoder, text_encoder_from_scratch
        from svac.heads.text import build_expression_byte_tokenizer, load_expression_tokenizer

        scratch = text_encoder_from_scratch(config)
        if tokenizer is not None and not scratch:
            raise ConfigError(f"a replacement tokenizer (e.g. bpe_vocab_size) needs a {cls.head_name} text encoder "
                              "built from scratch; this config loads a pretrained one")
        if tokenizer is None:
            if config.baseline.text_tokenizer is not None:
                tokenizer = load_expression_tokenizer(config.baseline.text_tokenizer)
            elif not scratch:
                name, local_only = pretrained_text_encoder(config)
                tokenizer = load_expression_tokenizer(name, local_files_only=local_only)
            else:
                tokenizer = build_expression_byte_tokenizer()
        typed = head_config(config, tokenizer=tokenizer)
        return cls(config, head=cls.build_head(typed), head_config=typed, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, source, *, torch_dtype: torch.dtype | str | None = None, device_map: Any = None,
                        overrides: Sequence[str] = (), revision: str | None = None, cache_dir=None,
                        local_files_only: bool = False) -> "RVOSBaseline":
        """Load a model saved by :meth:`save_pretrained` from a folder or Hugging Face Hub id.

        The model is rebuilt from the stored config, text-encoder config and tokenizer (no other
        file is read) with empty weights, then every tensor is loaded strictly
        (:func:`svac.heads.rvos_checkpoint.load_baseline`).

        Args:
            source: a checkpoint folder or Hub id.
            torch_dtype: dtype of the floating weights; ``None``: ``config.inference.dtype``.
            device_map: where to put the model, as for :meth:`svac.SVAC.from_pretrained` but on one
                device: ``None`` (the CPU), a device, a dict naming one device, or ``"auto"``.
            overrides: ``key.sub=value`` config overrides (``baseline.window=8`` ...).
            revision, cache_dir, local_files_only: Hub options.

        Returns:
            The model in eval mode.

        Raises:
            svac.errors.CheckpointError: a missing or incomplete checkpoint, another head's
                checkpoint, or weights that do not match (listed).
            ConfigError: a ``device_map`` that spreads the model over several devices.
        """
        from svac.heads.rvos_checkpoint import load_baseline

        return load_baseline(cls, source, torch_dtype=torch_dtype, device_map=device_map, overrides=overrides,
                             revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)

    def save_pretrained(self, directory, *, overwrite: bool = False, max_shard_size: int | None = None,
                        weights_dtype: torch.dtype | None = None) -> "SavedCheckpoint":
        """Save the model (config, safetensors weights, text-encoder config, tokenizer), atomically.

        See :func:`svac.heads.rvos_checkpoint.save_baseline` for the layout, ``weights_dtype`` and errors.
        """
        from svac.heads.rvos_checkpoint import save_baseline

        return save_baseline(self, directory, overwrite=overwrite, max_shard_bytes=max_shard_size,
                             weights_dtype=weights_dtype)

    def text_encoder_config(self) -> dict[str, Any]:
        """The text encoder's transformers config as plain data (stored in checkpoints)."""
        return self.text_encoder_module().config.to_dict()

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model's parameters."""
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    @property
    def max_text_length(self) -> int:
        """Most tokens per expression the text encoder accepts (its position table; RoBERTa reserves
        ``pad_token_id + 1`` positions)."""
        cfg = self.text_encoder_module().config
        reserved = cfg.pad_token_id + 1 if cfg.model_type == "roberta" and cfg.pad_token_id is not None else 0
        return int(cfg.max_position_embeddings) - reserved

    # ------------------------------------------------------------------ inference

    def segment(self, video, expression: str, *, num_frames: int | None = None, clip_len: int | None = None,
                progress: Progress = False) -> SegmentationResult:
        """Segment what ``expression`` refers to in every frame of ``video``.

        The video is read in consecutive, non-overlapping windows of ``baseline.window`` frames
        (the last may be shorter); each window is resized to ``baseline.input_size``,
        ImageNet-normalised and segmented in one forward pass with the expression (ReferFormer
        §3.5 picks the best query per window; LAVT segments every frame). Mask logits are
        upsampled bilinearly to the original frame size and thresholded at
        ``inference.mask_threshold``. The model runs in eval mode (its mode is restored after).

        Args:
            video: anything :func:`svac.video.reader.open_video` accepts.
            expression: the referring expression (non-empty).
            num_frames: must be ``None``: a baseline reads every frame (it is SVAC's MLLM frame count).
            clip_len: frames per window, overriding ``baseline.window``.
            progress: a progress bar over windows: bool or callback (:mod:`svac.progress`).

        Returns:
            A :class:`~svac.outputs.SegmentationResult` with ``masks bool (1, N, H, W)`` over every
            frame at the original size; ``scores float32 (1,)``; ``text`` empty (a baseline gives no
            answer); ``frame_indices`` every frame (``0..N-1``); ``clip_spans`` the windows;
            ``mode`` ``"window"``, ``csa_mode`` ``"none"``, no visual tokens; ``timings.video_decode``
            (decoding and resizing) and ``timings.total`` (seconds).

        Raises:
            ValueError: when ``expression`` is empty.
            ConfigError: when ``num_frames`` is given or ``clip_len`` is below 1.
            svac.errors.VideoReadError: when the video cannot be read.
        """
        from svac.heads.rvos_training import preprocess_frames
        from svac.heads.text import encode_expressions
        from svac.video.reader import open_video

        if not expression or not expression.strip():
            raise ValueError("the query is empty: give a referring expression such as 'the dog jumping over the fence'")
        if num_frames is not None:
            raise ConfigError(f"num_frames is the number of frames SVAC's MLLM samples; the {self.head_name} baseline "
                              "reads every frame in windows (use clip_len to change the window length)")
        window = self.config.baseline.window if clip_len is None else clip_len
        if window < 1:
            raise ConfigError(f"clip_len (the baseline window) must be >= 1, got {window}")
        t0 = time.perf_counter()
        source = open_video(video)
        n, h, w = source.num_frames, source.height, source.width
        device, dtype = self.device, self.dtype
        threshold = self.config.inference.mask_threshold
        masks = np.zeros((1, n, h, w), dtype=bool)
        inside = np.zeros(n, dtype=np.float64)  # summed object probability inside the mask, per frame
        frame_scores = np.zeros(n, dtype=np.float64)
        has_score_head = False
        decode_seconds = 0.0
        ids, attention = encode_expressions(self.tokenizer, [expression.strip()], self.max_text_length)
        ids, attention = ids.to(device), attention.to(device)
        spans = [(s, min(s + window, n)) for s in range(0, n, window)]
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                windows = progress_iter(spans, progress, total=len(spans), desc=self.head_name, unit="window")
                for start, stop in windows:
                    t_read = time.perf_counter()
                    frames = preprocess_frames(source.read(range(start, stop)), self.config.baseline.input_size,
                                               device=device, dtype=dtype)
                    decode_seconds += time.perf_counter() - t_read
                    pred = self.predict_window(frames[None], ids, attention)
                    logits = F.interpolate(pred.logits.float()[:, None], size=(h, w), mode="bilinear",
                                           align_corners=False)[:, 0]
                    chunk = logits > threshold
                    masks[0, start:stop] = chunk.cpu().numpy()
                    inside[start:stop] = (torch.sigmoid(logits) * chunk).flatten(1).sum(1).double().cpu().numpy()
                    if pred.frame_scores is not None:
                        has_score_head = True
                        frame_scores[start:stop] = pred.frame_scores.double().cpu().numpy()
        finally:
            self.train(was_training)
        if has_score_head:
            score = float(frame_scores.mean())
        else:  # LAVT's convention: mean object probability inside the predicted masks, 0 when all are empty
            area = int(masks.sum())
            score = float(inside.sum() / area) if area else 0.0
        timings = Timings(video_decode=decode_seconds, total=time.perf_counter() - t0)
        return SegmentationResult(
            text=RESULT_TEXT, masks=masks, scores=np.array([score], dtype=np.float32),
            frame_indices=np.arange(n, dtype=np.int64), clip_spans=spans, frame_names=source.frame_names,
            video_name=source.name, fps=source.fps, mode=RESULT_MODE, csa_mode=RESULT_CSA_MODE, num_visual_tokens=0,
            model_name=self.config.name, timings=timings)

    def start_chat(self, video, **_) -> None:
        """Baselines answer with masks only; chat is SVAC's.

        Raises:
            ConfigError: always (use :meth:`segment`).
        """
        raise ConfigError(f"the {self.head_name} head segments but cannot chat (it has no language model); "
                          "use svac segment, or an SVAC model for chat")

    def chat(self, video, message: str, **_) -> None:
        """Baselines answer with masks only; chat is SVAC's.

        Raises:
            ConfigError: always (use :meth:`segment`).
        """
        self.start_chat(video)
