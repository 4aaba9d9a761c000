"""The LAVT referring-segmentation model (image and video variants).

Source: Yang et al., LAVT, CVPR 2022 (Fig. 2, Sec. 3) and its TPAMI 2024
extension (video LAVT). Pipeline per stage ``i = 1..4``:

1. ``V_i`` = Swin stage ``i`` applied to ``E_{i-1}`` (stage 1: the frames);
2. ``F_i`` = PWAM(``V_i``, words) (Eqs. 1-7; 3D PWAM for video);
3. ``E_i = S_i * F_i + V_i`` with the language gate (Eqs. 8-9), fed to
   stage ``i + 1``; Fig. 2 gates ``E_1..E_3`` only, since ``E_4`` feeds nothing;
4. the mask predictor decodes ``F_4..F_1`` into two-class logits at 1/4
   resolution (Eq. 10).

The image variant folds the frames into the batch (each frame is an image);
the video variant runs Video Swin and the 3D PWAM over the whole clip and
decodes every frame's ``F_i`` with the same 2D mask predictor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from svac.heads.lavt.backbone import build_stages
from svac.baseline_config import NUM_CLASSES, NUM_STAGES, LAVTConfig
from svac.heads.lavt.decoder import MaskDecoder
from svac.heads.lavt.errors import LAVTInputError
from svac.heads.lavt.outputs import LAVTOutput, LAVTPrediction
from svac.heads.lavt.pwam import PWAM, LanguageGate
from svac.heads.lavt.pwam3d import PWAM3D
from svac.heads.lavt.text import TextEncoder

RGB_CHANNELS = 3
OBJECT_CLASS = 1
DEFAULT_THRESHOLD = 0.5
"""Object-probability threshold of :meth:`LAVT.predict`; 0.5 equals the arg-max over the two classes."""
MIN_COARSEST_SIDE = 2
"""The coarsest stage must be at least 2x2: instance norm needs more than one position per map."""


class LAVT(nn.Module):
    """Language-Aware Vision Transformer for referring image / video segmentation.

    Args:
        cfg: the head configuration (:class:`LAVTConfig`); ``cfg.variant``
            selects 2D Swin + PWAM (``"image"``) or Video Swin + 3D PWAM
            (``"video"``).

    Attributes:
        text_encoder: BERT word encoder.
        backbone: Swin stages (:class:`~svac.heads.lavt.backbone.ImageSwinStages`
            or :class:`~svac.heads.lavt.backbone.VideoSwinStages`).
        fusions: one PWAM (or PWAM3D) per stage.
        gates: language gates after stages 1-3.
        decoder: the mask predictor.

    Raises:
        svac.errors.CheckpointError: configured weights cannot be read.
    """

    def __init__(self, cfg: LAVTConfig):
        super().__init__()
        self.cfg = cfg
        self.text_encoder = TextEncoder(cfg)
        self.backbone = build_stages(cfg)
        language_dim = self.text_encoder.hidden_size
        dims = cfg.stage_dims
        if cfg.variant == "image":
            self.fusions = nn.ModuleList(PWAM(dim, language_dim) for dim in dims)
            spatial_dims = 2
        else:
            self.fusions = nn.ModuleList(PWAM3D(dim, language_dim, cfg.pwam3d_kernels) for dim in dims)
            spatial_dims = 3
        self.gates = nn.ModuleList(
            LanguageGate(dim, spatial_dims=spatial_dims, zero_init=cfg.gate_zero_init) for dim in dims[:-1]
        )
        self.decoder = MaskDecoder(dims, cfg.decoder_dim, NUM_CLASSES)

    def _check_inputs(self, frames: Tensor, input_ids: Tensor, attention_mask: Tensor) -> None:
        if frames.dim() != 5 or frames.shape[2] != RGB_CHANNELS or not torch.is_floating_point(frames):
            raise LAVTInputError(
                f"frames must be float (B, T, 3, H, W); got {frames.dtype} {tuple(frames.shape)}"
            )
        batch, num_frames, _, height, width = frames.shape
        if batch == 0 or num_frames == 0:
            raise LAVTInputError(f"frames must hold at least one clip and one frame; got {tuple(frames.shape)}")
        stride = self.cfg.output_stride
        min_side = self.cfg.total_stride * (MIN_COARSEST_SIDE - 1) + 1
        if height % stride or width % stride or height < min_side or width < min_side:
            raise LAVTInputError(
                f"frame height and width must be multiples of {stride} pixels and at least {min_side}; "
                f"got {height}x{width}"
            )
        if input_ids.dim() != 2 or input_ids.shape[0] != batch:
            raise LAVTInputError(f"input_ids must be (B={batch}, L); got {tuple(input_ids.shape)}")
        if attention_mask.shape != input_ids.shape:
            raise LAVTInputError(
                f"attention_mask must match input_ids {tuple(input_ids.shape)}; got {tuple(attention_mask.shape)}"
            )
        if attention_mask.dtype != torch.bool and (attention_mask.dtype.is_floating_point or
                                                   bool(((attention_mask != 0) & (attention_mask != 1)).any())):
            raise LAVTInputError("attention_mask must be bool or an integer tensor of 0/1 values")

    def forward(self, frames: Tensor, input_ids: Tensor, attention_mask: Tensor) -> LAVTOutput:
        """Segment the referred object in every frame.

        Args:
            frames: float ``(B, T, 3, H, W)`` RGB frames normalised with the
                ImageNet mean/std; ``H``, ``W`` multiples of 4 pixels and at
                least 33 (the coarsest map must be >= 2x2).
            input_ids: int64 ``(B, L)`` BERT token ids of the expressions.
            attention_mask: ``(B, L)`` bool or 0/1 ints, 1 on real tokens
                (at least one per expression).

        Returns:
            :class:`LAVTOutput` with logits float ``(B, T, 2, H/4, W/4)``.

        Raises:
            LAVTInputError: malformed inputs.
        """
        self._check_inputs(frames, input_ids, attention_mask)
        word_mask = attention_mask.to(torch.bool)
        if not bool(word_mask.any(dim=1).all()):
            raise LAVTInputError("every expression needs at least one valid token in attention_mask")
        words = self.text_encoder(input_ids, attention_mask)  # (B, L, C_l)
        batch, num_frames = frames.shape[:2]
        if self.cfg.variant == "image":
            fused = self._encode_images(frames, words, word_mask)
        else:
            fused = self._encode_clip(frames, words, word_mask)
        logits = self.decoder(fused)  # (B*T, 2, H/4, W/4)
        return LAVTOutput(logits=logits.reshape(batch, num_frames, *logits.shape[1:]))

    def _encode_images(self, frames: Tensor, words: Tensor, word_mask: Tensor) -> list[Tensor]:
        batch, num_frames = frames.shape[:2]
        x = frames.reshape(batch * num_frames, *frames.shape[2:])
        words = words.repeat_interleave(num_frames, dim=0)
        word_mask = word_mask.repeat_interleave(num_frames, dim=0)
        fused: list[Tensor] = []
        for index in range(NUM_STAGES):
            x = self.backbone.run_stage(index, x)  # (N, H_i, W_i, C_i)
            visual = x.permute(0, 3, 1, 2)  # V_i: (N, C_i, H_i, W_i)
            f = self.fusions[index](visual, words, word_mask)  # F_i, Eqs. 1-7
            fused.append(f)
            if index < NUM_STAGES - 1:
                e = self.gates[index](f, visual)  # E_i, Eqs. 8-9
                x = e.permute(0, 2, 3, 1)
        return fused

    def _encode_clip(self, frames: Tensor, words: Tensor, word_mask: Tensor) -> list[Tensor]:
        batch, num_frames = frames.shape[:2]
        x = frames.permute(0, 2, 1, 3, 4)  # (B, 3, T, H, W)
        fused: list[Tensor] = []
        for index in range(NUM_STAGES):
            x = self.backbone.run_stage(index, x)  # (B, T, H_i, W_i, C_i)
            visual = x.permute(0, 4, 1, 2, 3)  # V_i: (B, C_i, T, H_i, W_i)
            f = self.fusions[index](visual, words, word_mask)  # F_i, 3D Eqs. 1-7
            per_frame = f.permute(0, 2, 1, 3, 4)
            fused.append(per_frame.reshape(batch * num_frames, *per_frame.shape[2:]))
            if index < NUM_STAGES - 1:
                e = self.gates[index](f, visual)  # E_i, Eqs. 8-9
                x = e.permute(0, 2, 3, 4, 1)
        return fused

    def predict(
        self,
        frames: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> LAVTPrediction:
        """Masks at input size and a confidence per expression.

        Runs in eval mode without gradients (the previous train/eval mode is
        restored afterwards). Logits are bilinearly upsampled to ``(H, W)``,
        turned into object probabilities with a softmax over the two classes
        and thresholded.

        Args:
            frames, input_ids, attention_mask: as in :meth:`forward`.
            threshold: object-probability threshold in ``(0, 1)``.

        Returns:
            :class:`LAVTPrediction`: masks bool ``(B, T, H, W)``, scores float ``(B,)``.

        Raises:
            LAVTInputError: malformed inputs or a threshold outside ``(0, 1)``.
        """
        if not 0.0 < threshold < 1.0:
            raise LAVTInputError(f"threshold must lie in (0, 1); got {threshold}")
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                logits = self.forward(frames, input_ids, attention_mask).logits
        finally:
            self.train(was_training)
        batch, num_frames = logits.shape[:2]
        height, width = frames.shape[-2:]
        flat = logits.reshape(batch * num_frames, *logits.shape[2:])
        flat = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False)
        probs = torch.softmax(flat, dim=1)[:, OBJECT_CLASS].reshape(batch, num_frames, height, width)
        masks = probs > threshold
        inside = (probs * masks).flatten(1).sum(dim=1)
        count = masks.flatten(1).sum(dim=1)
        scores = torch.where(count > 0, inside / count.clamp(min=1), torch.zeros_like(inside))
        return LAVTPrediction(masks=masks, scores=scores)
