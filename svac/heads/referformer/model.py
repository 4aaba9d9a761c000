"""The ReferFormer model (Wu et al., "Language as Queries for Referring Video Object Segmentation", CVPR 2022).

Pipeline (§3): backbone features at strides 4..32 for every frame; a frozen
RoBERTa gives word and sentence features; the stride-8/16/32 maps plus an
extra stride-64 map are projected to C channels, fused with the text
(multiplication, or SgMg's spectral fusion) and encoded by a deformable
encoder; N conditional queries — the sentence feature repeated N times as
content, learnable embeddings as positions — are decoded in every frame with
shared weights, so query n is the same instance in every frame; each
decoder output predicts a class logit, a refined box and the parameters of
a dynamic mask kernel (or SgMg's conditional patch kernel) that segments the
CM-FPN mask features (or the stride-8 encoded features).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from svac.errors import ConfigError

from .backbone import build_backbone
from svac.baseline_config import GROUP_NORM_GROUPS, ReferFormerConfig
from .deformable import DeformableTransformer
from .fpn import CrossModalFPN
from .fusion import build_fusion
from .kernels import ConditionalPatchKernel, DynamicMaskHead
from .outputs import ReferFormerLayerOutput, ReferFormerOutput, ReferFormerPrediction
from .position import sine_position_encoding
from .postprocess import DEFAULT_MASK_THRESHOLD, postprocess
from .text_encoder import FrozenTextEncoder

#: Prior probability of the class head at initialisation (focal-loss detectors, Lin et al., ICCV 2017 §4.1).
CLASS_PRIOR_PROB = 0.01


class ReferFormer(nn.Module):
    """ReferFormer with the SgMg options selected by :class:`ReferFormerConfig`.

    Inputs are ImageNet-normalized frames whose height and width are
    multiples of 32 pixels, and tokenized expressions (see
    :mod:`svac.heads.referformer.text_encoder` for the tokenizer).
    """

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.hidden_dim
        self.backbone = build_backbone(cfg)
        self.text_encoder = FrozenTextEncoder(cfg)
        channels = self.backbone.channels
        self.input_proj = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(channels[level], dim, kernel_size=1), nn.GroupNorm(GROUP_NORM_GROUPS, dim))
                for level in (1, 2, 3)
            ]
            + [
                nn.Sequential(
                    nn.Conv2d(channels[3], dim, kernel_size=3, stride=2, padding=1),
                    nn.GroupNorm(GROUP_NORM_GROUPS, dim),
                )
            ]
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.fusion = build_fusion(cfg)
        self.transformer = DeformableTransformer(cfg)
        self.query_pos = nn.Embedding(cfg.num_queries, dim)
        # One class head per decoder layer when earlier layers are supervised
        # (Deformable DETR's box refinement convention), else only the last one.
        self.class_heads = nn.ModuleList(nn.Linear(dim, 1) for _ in range(cfg.dec_layers if cfg.aux_loss else 1))
        prior_bias = -math.log((1 - CLASS_PRIOR_PROB) / CLASS_PRIOR_PROB)
        for head in self.class_heads:
            nn.init.constant_(head.bias, prior_bias)
        self.mask_head: nn.Module
        if cfg.kernel == "conditional_patch":
            self.cpk_proj = nn.Conv2d(dim, cfg.mask_dim, kernel_size=1)
            self.mask_head = ConditionalPatchKernel(cfg)
        else:
            self.fpn = CrossModalFPN(cfg, channels[0])
            self.mask_head = DynamicMaskHead(cfg)

    def forward(
        self,
        frames: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        return_aux: bool | None = None,
    ) -> ReferFormerOutput:
        """Predict class, box and mask of every query in every frame.

        Args:
            frames: float ``(B, T, 3, H, W)``, ImageNet-normalized, H and W multiples of 32.
            input_ids: long ``(B, L)`` token ids.
            attention_mask: long ``(B, L)``, 1 at real tokens.
            return_aux: also return the earlier decoder layers; defaults to
                ``cfg.aux_loss`` and needs it (earlier layers have class heads
                only when ``cfg.aux_loss``).

        Returns:
            :class:`ReferFormerOutput` with ``pred_logits (B, T, N, 1)``,
            ``pred_boxes (B, T, N, 4)``, ``pred_masks (B, T, N, H/s, W/s)``.

        Raises:
            ConfigError: malformed inputs (shapes, dtypes, sizes, batch mismatch).
        """
        if frames.ndim != 5:
            raise ConfigError(f"frames must have shape (B, T, 3, H, W), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if input_ids.shape[0] != b:
            raise ConfigError(f"batch of input_ids ({input_ids.shape[0]}) differs from frames ({b})")
        aux = self.cfg.aux_loss if return_aux is None else return_aux
        if aux and not self.cfg.aux_loss:
            raise ConfigError("return_aux=True needs a model built with cfg.aux_loss=True")
        features = self.backbone(frames)
        text = self.text_encoder(input_ids, attention_mask)
        words = text.words.repeat_interleave(t, dim=0)
        padding = text.padding_mask.repeat_interleave(t, dim=0)
        sentence = text.sentence.repeat_interleave(t, dim=0)

        srcs, pos = [], []
        for proj, level_input in zip(self.input_proj, (features[1], features[2], features[3], features[3])):
            src = proj(level_input)
            level_pos = sine_position_encoding(
                src.shape[-2], src.shape[-1], src.shape[1], device=src.device, dtype=src.dtype
            )
            srcs.append(self.fusion(src, level_pos, words, padding, sentence))
            pos.append(level_pos)
        query_content = sentence[:, None, :].expand(-1, self.cfg.num_queries, -1)
        result = self.transformer(srcs, pos, query_content, self.query_pos.weight)

        if self.cfg.kernel == "conditional_patch":
            mask_features = self.cpk_proj(result.memory[0])
        else:
            mask_features = self.fpn([features[0], *result.memory[:3]], words, padding)

        layers = range(self.cfg.dec_layers) if aux else [self.cfg.dec_layers - 1]
        outputs = []
        for layer in layers:
            hidden = result.hidden[layer]
            boxes = result.boxes[layer]
            logits = self.class_heads[layer if self.cfg.aux_loss else 0](hidden)
            masks = self.mask_head(hidden, mask_features, boxes[..., :2].detach())
            outputs.append(
                ReferFormerLayerOutput(
                    pred_logits=logits.view(b, t, *logits.shape[1:]),
                    pred_boxes=boxes.view(b, t, *boxes.shape[1:]),
                    pred_masks=masks.view(b, t, *masks.shape[1:]),
                )
            )
        last = outputs[-1]
        return ReferFormerOutput(
            pred_logits=last.pred_logits,
            pred_boxes=last.pred_boxes,
            pred_masks=last.pred_masks,
            aux_outputs=tuple(outputs[:-1]),
            mask_stride=self.cfg.mask_stride,
            input_size=(int(frames.shape[-2]), int(frames.shape[-1])),
        )

    @torch.no_grad()
    def predict(
        self,
        frames: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        threshold: float = DEFAULT_MASK_THRESHOLD,
    ) -> ReferFormerPrediction:
        """Segment the referred object: best frame-averaged query, masks at the input size.

        Runs without gradients and in the module's current mode (call
        ``eval()`` first for inference). Arguments as :meth:`forward`;
        ``threshold`` is the mask probability threshold. See
        :func:`svac.heads.referformer.postprocess.postprocess`.
        """
        output = self.forward(frames, input_ids, attention_mask, return_aux=False)
        return postprocess(output, threshold)
