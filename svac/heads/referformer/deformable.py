"""Deformable transformer of ReferFormer (encoder, conditional-query decoder with box refinement).

Architecture from Deformable DETR (Zhu et al., ICLR 2021, §4.1 and App. A.4
"iterative bounding box refinement") as used by ReferFormer (Wu et al., CVPR
2022, §3.2): post-norm encoder layers of multi-scale deformable
self-attention + FFN over the flattened multi-level map of each frame, and
decoder layers of query self-attention, multi-scale deformable
cross-attention and FFN. Frames run in the batch dimension, so queries with
the same index in different frames share all weights.

The multi-scale deformable attention itself is reused from transformers
(``DeformableDetrMultiscaleDeformableAttention``, pure-PyTorch
``grid_sample`` path); it is imported when a layer is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from svac.baseline_config import ReferFormerConfig

#: Feature levels seen by the deformable transformer: strides 8, 16, 32 and an extra 64.
NUM_TRANSFORMER_LEVELS = 4
#: Clamp used when inverting the sigmoid of reference boxes (Deformable DETR).
INVERSE_SIGMOID_EPS = 1e-5
#: Initial bias of the box head's width/height logits (boxes start small; Deformable DETR).
BOX_SIZE_BIAS_INIT = -2.0


class MLP(nn.Module):
    """Stack of ``num_layers`` linear layers with ReLU in between (DETR's FFN prediction head)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to the last dimension of ``x``: ``(..., in_dim)`` → ``(..., out_dim)``."""
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.relu(x)
        return x


def inverse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logit of ``x`` clamped to ``[eps, 1 - eps]`` (Deformable DETR box refinement)."""
    return torch.logit(x.clamp(0.0, 1.0), eps=INVERSE_SIGMOID_EPS)


def build_deformable_attention(cfg: ReferFormerConfig) -> nn.Module:
    """transformers' multi-scale deformable attention for width ``cfg.hidden_dim``, initialised as in Deformable DETR.

    Initialisation (Zhu et al., ICLR 2021, released defaults): sampling offsets
    start on rays in ``nheads`` directions, the k-th point k units out;
    attention logits start at zero; value/output projections Xavier-uniform.
    """
    from transformers import DeformableDetrConfig
    from transformers.models.deformable_detr.modeling_deformable_detr import (
        DeformableDetrMultiscaleDeformableAttention,
    )

    attn_config = DeformableDetrConfig(
        d_model=cfg.hidden_dim, num_feature_levels=NUM_TRANSFORMER_LEVELS, disable_custom_kernels=True
    )
    module = DeformableDetrMultiscaleDeformableAttention(attn_config, num_heads=cfg.nheads, n_points=cfg.n_points)
    with torch.no_grad():
        nn.init.zeros_(module.sampling_offsets.weight)
        thetas = torch.arange(cfg.nheads, dtype=torch.float32) * (2.0 * math.pi / cfg.nheads)
        grid = torch.stack([thetas.cos(), thetas.sin()], dim=-1)
        grid = grid / grid.abs().max(dim=-1, keepdim=True).values
        grid = grid.view(cfg.nheads, 1, 1, 2).repeat(1, NUM_TRANSFORMER_LEVELS, cfg.n_points, 1)
        grid = grid * torch.arange(1, cfg.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        module.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(module.attention_weights.weight)
        nn.init.zeros_(module.attention_weights.bias)
        nn.init.xavier_uniform_(module.value_proj.weight)
        nn.init.zeros_(module.value_proj.bias)
        nn.init.xavier_uniform_(module.output_proj.weight)
        nn.init.zeros_(module.output_proj.bias)
    return module


@dataclass
class LevelLayout:
    """Geometry of the flattened multi-level map.

    Attributes:
        shapes: ``(h_l, w_l)`` of each level.
        spatial_shapes: long ``(L, 2)`` tensor of ``shapes``.
        level_start_index: long ``(L,)`` offset of each level in the flat sequence.
    """

    shapes: list[tuple[int, int]]
    spatial_shapes: torch.Tensor
    level_start_index: torch.Tensor

    @classmethod
    def of(cls, maps: list[torch.Tensor]) -> LevelLayout:
        """Layout of maps ``(N, C, h_l, w_l)``."""
        shapes = [(int(m.shape[-2]), int(m.shape[-1])) for m in maps]
        device = maps[0].device
        spatial = torch.tensor(shapes, dtype=torch.long, device=device)
        sizes = spatial[:, 0] * spatial[:, 1]
        start = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        return cls(shapes=shapes, spatial_shapes=spatial, level_start_index=start)

    def attention_kwargs(self) -> dict:
        """Keyword arguments describing the layout for the deformable attention."""
        return {
            "spatial_shapes": self.spatial_shapes,
            "spatial_shapes_list": self.shapes,
            "level_start_index": self.level_start_index,
        }


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention + FFN (Deformable DETR §4.1)."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.self_attn = build_deformable_attention(cfg)
        self.norm1 = nn.LayerNorm(cfg.hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.hidden_dim, cfg.dim_feedforward),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dim_feedforward, cfg.hidden_dim),
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.hidden_dim)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor, layout: LevelLayout
    ) -> torch.Tensor:
        """``src``/``pos`` float ``(N, S, C)``, ``reference_points`` ``(N, S, L, 2)`` → ``(N, S, C)``."""
        attended, _ = self.self_attn(
            hidden_states=src,
            position_embeddings=pos,
            encoder_hidden_states=src,
            reference_points=reference_points,
            **layout.attention_kwargs(),
        )
        src = self.norm1(src + self.dropout(attended))
        return self.norm2(src + self.dropout(self.ffn(src)))


class DeformableDecoderLayer(nn.Module):
    """Post-norm decoder layer: query self-attention, deformable cross-attention, FFN (Deformable DETR §4.1)."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(cfg.hidden_dim, cfg.nheads, dropout=cfg.dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(cfg.hidden_dim)
        self.cross_attn = build_deformable_attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden_dim)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.hidden_dim, cfg.dim_feedforward),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dim_feedforward, cfg.hidden_dim),
        )
        self.norm3 = nn.LayerNorm(cfg.hidden_dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        query_pos: torch.Tensor,
        reference_points: torch.Tensor,
        memory: torch.Tensor,
        layout: LevelLayout,
    ) -> torch.Tensor:
        """``tgt``/``query_pos`` ``(N, Q, C)``, refs ``(N, Q, L, 2|4)``, ``memory`` ``(N, S, C)`` → ``(N, Q, C)``."""
        q = k = tgt + query_pos
        attended, _ = self.self_attn(q, k, tgt, need_weights=False)
        tgt = self.norm1(tgt + self.dropout(attended))
        attended, _ = self.cross_attn(
            hidden_states=tgt,
            position_embeddings=query_pos,
            encoder_hidden_states=memory,
            reference_points=reference_points,
            **layout.attention_kwargs(),
        )
        tgt = self.norm2(tgt + self.dropout(attended))
        return self.norm3(tgt + self.dropout(self.ffn(tgt)))


@dataclass
class TransformerResult:
    """Output of :class:`DeformableTransformer`.

    Attributes:
        hidden: float ``(D, N, Q, C)`` decoder output of every layer (D layers, N frames, Q queries).
        boxes: float ``(D, N, Q, 4)`` refined boxes (normalized cx, cy, w, h) of every layer.
        memory: encoder output per level, float ``(N, C, h_l, w_l)``.
    """

    hidden: torch.Tensor
    boxes: torch.Tensor
    memory: list[torch.Tensor]


class DeformableTransformer(nn.Module):
    """Deformable encoder + decoder with iterative box refinement (one box head per decoder layer)."""

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        dim = cfg.hidden_dim
        self.encoder_layers = nn.ModuleList(DeformableEncoderLayer(cfg) for _ in range(cfg.enc_layers))
        self.decoder_layers = nn.ModuleList(DeformableDecoderLayer(cfg) for _ in range(cfg.dec_layers))
        self.level_embed = nn.Parameter(torch.empty(NUM_TRANSFORMER_LEVELS, dim))
        nn.init.normal_(self.level_embed)
        self.reference_points = nn.Linear(dim, 2)
        nn.init.xavier_uniform_(self.reference_points.weight)
        nn.init.zeros_(self.reference_points.bias)
        self.box_heads = nn.ModuleList(MLP(dim, dim, 4, 3) for _ in range(cfg.dec_layers))
        for head in self.box_heads:
            last = head.layers[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            with torch.no_grad():
                last.bias[2:] = BOX_SIZE_BIAS_INIT

    def forward(
        self,
        srcs: list[torch.Tensor],
        pos: list[torch.Tensor],
        query_content: torch.Tensor,
        query_pos: torch.Tensor,
    ) -> TransformerResult:
        """Encode the levels and decode the queries.

        Args:
            srcs: ``L`` maps float ``(N, C, h_l, w_l)`` (already fused with text).
            pos: ``L`` position encodings float ``(C, h_l, w_l)``.
            query_content: float ``(N, Q, C)`` decoder input (the repeated sentence feature).
            query_pos: float ``(Q, C)`` learnable query positions, shared by all frames.
        """
        n = srcs[0].shape[0]
        layout = LevelLayout.of(srcs)
        flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], dim=1)
        flat_pos = torch.cat(
            [p.flatten(1).transpose(0, 1) + self.level_embed[level] for level, p in enumerate(pos)], dim=0
        ).unsqueeze(0).expand(n, -1, -1)
        enc_refs = _encoder_reference_points(layout.shapes, flat.device, flat.dtype)
        enc_refs = enc_refs[None, :, None, :].expand(n, -1, len(srcs), -1)
        memory = flat
        for layer in self.encoder_layers:
            memory = layer(memory, flat_pos, enc_refs, layout)

        query_pos_n = query_pos.unsqueeze(0).expand(n, -1, -1)
        reference = self.reference_points(query_pos_n).sigmoid()  # (N, Q, 2)
        tgt = query_content
        hidden, boxes = [], []
        for layer, box_head in zip(self.decoder_layers, self.box_heads):
            ref_input = reference[:, :, None, :].expand(-1, -1, len(srcs), -1)
            tgt = layer(tgt, query_pos_n, ref_input, memory, layout)
            delta = box_head(tgt)
            if reference.shape[-1] == 2:
                logits = torch.cat([delta[..., :2] + inverse_sigmoid(reference), delta[..., 2:]], dim=-1)
            else:
                logits = delta + inverse_sigmoid(reference)
            box = logits.sigmoid()
            hidden.append(tgt)
            boxes.append(box)
            reference = box.detach()

        sizes = [h * w for h, w in layout.shapes]
        memory_maps = [
            chunk.transpose(1, 2).reshape(n, -1, h, w)
            for chunk, (h, w) in zip(memory.split(sizes, dim=1), layout.shapes)
        ]
        return TransformerResult(hidden=torch.stack(hidden), boxes=torch.stack(boxes), memory=memory_maps)


def _encoder_reference_points(shapes: list[tuple[int, int]], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalized pixel centres ``(x, y)`` of every position of every level, float ``(S, 2)``."""
    points = []
    for h, w in shapes:
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([grid_x.flatten(), grid_y.flatten()], dim=-1))
    return torch.cat(points, dim=0)
