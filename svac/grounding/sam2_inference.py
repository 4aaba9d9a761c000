"""SAM-2 modules that skip per-frame work whose result does not change from frame to frame (inference only).

SAM-2's video tracking runs its prompt encoder, its dense positional encoding and its
sine positional encodings again on every frame, although for svac's prompts (a padding point
plus the ``[SEG]`` tokens appended by :class:`~svac.grounding.sam2_model.LanguagePromptedSAM2`)
and a fixed feature size their outputs are the same tensors every time. The subclasses here
return the values computed the first time instead. They are plain subclasses of the ``sam2``
package's modules (same parameters, same state-dict keys) and change nothing outside
``torch.inference_mode``: training and gradient computations run SAM-2's own code.

* :class:`SharedPositionEmbeddingSine` -- ``PositionEmbeddingSine`` returning its cached table
  expanded over the batch (a view) instead of a copy per image (``repeat``). Same values.
* :class:`CachedPromptEncoder` -- ``PromptEncoder`` whose point / no-mask embeddings and dense
  positional encoding are computed once per distinct prompt and reused while its parameters
  are unchanged (tracked by their in-place version counters, so loading weights or an
  optimiser step invalidates them). Same values.
* :class:`SingleMaskDecoder` (with :class:`SkippableMLP`) -- ``MaskDecoder`` that does not run the
  hypernetworks of the multimask outputs when the caller keeps only the first mask. Same values.
* :class:`TokenSelfAttention` -- the mask decoder's first self-attention (over its learned tokens
  and the prompt, the same on every frame) computed once per prompt. Same values.
* :class:`PrecomputedSelfAttentionLayer` -- ``MemoryAttentionLayer`` whose self-attention (in the
  first layer it reads only the current frame) svac computes for a chunk of frames at once and
  hands over frame by frame. Same values.

Measured on the default model (SAM-2 input 128 px, one thread; ``eval/README.md``, issue 14):
prompt encoder + dense encoding 0.37 ms per tracked frame, neck positional encodings 0.43 ms per
encoded frame, first-layer memory self-attention 0.45 ms per tracked frame, unused hypernetworks
0.2 ms and the decoder's token self-attention 0.15 ms per tracked frame.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from sam2.modeling.memory_attention import MemoryAttentionLayer
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import Attention
from sam2.modeling.sam2_utils import MLP


class SharedPositionEmbeddingSine(PositionEmbeddingSine):
    """``PositionEmbeddingSine`` whose output is the cached ``(C, H, W)`` table expanded to ``(B, C, H, W)``.

    SAM-2's module caches the table per feature size but returns ``table.repeat(B, 1, 1, 1)``, a
    copy of B tables on every call (the image encoder's neck calls it on every level of every
    batch; the memory encoder on every frame). Under ``torch.inference_mode`` this returns a
    read-only view of the same values instead; otherwise SAM-2's own ``forward``.

    Args: as ``sam2.modeling.position_encoding.PositionEmbeddingSine``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Positional encoding ``float32 (B, C, H, W)`` for features ``x`` of shape ``(B, ., H, W)``."""
        if not torch.is_inference_mode_enabled():
            return super().forward(x)
        key = (x.shape[-2], x.shape[-1])
        table = self.cache.get(key)
        if table is None or table.device != x.device:
            table = self._pe(1, x.device, *key)[0]  # fills SAM-2's cache with the (C, H, W) table
            self.cache[key] = table
        return table[None].expand(x.shape[0], -1, -1, -1)


class CachedPromptEncoder(PromptEncoder):
    """``PromptEncoder`` that, under ``torch.inference_mode``, reuses its outputs for a prompt it has already embedded.

    Keys: the point coordinates and labels (compared by value), no boxes and no mask, and the
    identity and in-place version counters of the parameters those embeddings read. Any other call (boxes,
    mask prompts, gradients enabled) runs SAM-2's ``forward``. The cached tensors are returned
    as they are; SAM-2 only reads them (it concatenates and adds, never writes in place).

    Args: as ``sam2.modeling.sam.prompt_encoder.PromptEncoder``.
    """

    #: Distinct prompts kept (a video's clips have their own ``[SEG]`` but share SAM-2's padding point).
    MAX_ENTRIES = 8

    def forward(self, points, boxes, masks):
        """As ``PromptEncoder.forward``: sparse ``(B, N, C)`` and dense ``(B, C, h, w)`` embeddings."""
        if not torch.is_inference_mode_enabled() or boxes is not None or masks is not None or points is None:
            return super().forward(points, boxes, masks)
        coords, labels = points
        cache = self._inference_cache()
        for c, l, out in cache.setdefault("prompts", []):
            if (c.shape == coords.shape and l.shape == labels.shape and torch.equal(c, coords)
                    and torch.equal(l, labels)):
                return out
        out = super().forward(points, boxes, masks)
        entries = cache["prompts"]
        entries.append((coords.clone(), labels.clone(), out))
        del entries[:-self.MAX_ENTRIES]
        return out

    def get_dense_pe(self) -> torch.Tensor:
        """As ``PromptEncoder.get_dense_pe``: ``(1, C, h, w)``, computed once per parameter version in inference."""
        if not torch.is_inference_mode_enabled():
            return super().get_dense_pe()
        cache = self._inference_cache()
        if "dense_pe" not in cache:
            cache["dense_pe"] = super().get_dense_pe()
        return cache["dense_pe"]

    def _inference_cache(self) -> dict:
        """The cache of the current parameters (emptied when one it reads changed since it was filled)."""
        used = (self.pe_layer.positional_encoding_gaussian_matrix, self.not_a_point_embed.weight,
                self.no_mask_embed.weight, *(e.weight for e in self.point_embeddings))
        versions = _versions(used)
        cache = self.__dict__.get("_svac_cache")
        if cache is None or cache["versions"] != versions:
            cache = {"versions": versions, "tensors": used}  # kept alive: their ids stay theirs
            self.__dict__["_svac_cache"] = cache
        return cache


def _versions(tensors) -> tuple:
    """Identity and in-place version counter of each tensor: any change of a parameter (a new tensor, weights
    loaded into it, an optimiser step) changes the tuple. (Listed by attribute: ``Module.parameters()``
    walks the module tree, 0.35 ms per frame here.) Parameters created under ``torch.inference_mode`` have
    no version counter: only their identity counts."""
    return tuple((id(t), -1 if t.is_inference() else t._version) for t in tensors)


class PrecomputedSelfAttentionLayer(MemoryAttentionLayer):
    """``MemoryAttentionLayer`` that can take its self-attention result computed ahead, in inference.

    In SAM-2's first memory-attention layer the self-attention reads only the current frame's
    image features (plus their positional encoding), not the memory, so svac computes it for a
    whole chunk of frames in one batch (:meth:`precompute_self_attention`) and hands each frame's
    result over for the one call that tracks it (:meth:`using_self_attention`). The values are
    SAM-2's own (bit for bit on the default model: the batched projections and attention give
    the same floats per frame). Without a handed result -- and always outside
    ``torch.inference_mode`` -- the layer is SAM-2's.

    (Caching the cross-attention's key/value projections per memory frame, keys being linear in
    their input, was measured too: 0.15 ms per frame slower on the default model, no faster with
    a 512-px SAM-2; see ``eval/README.md``.)

    Args: as ``sam2.modeling.memory_attention.MemoryAttentionLayer``.
    """

    def precompute_self_attention(self, curr: torch.Tensor, curr_pos: torch.Tensor, *, pos_enc_at_input: bool
                                  ) -> torch.Tensor:
        """This layer's self-attention step for frames whose features enter it directly (the first layer).

        Args:
            curr: ``float (h*w, n, C)`` image features of n frames (SAM-2's sequence-first layout).
            curr_pos: their positional encodings, same shape.
            pos_enc_at_input: ``MemoryAttention.pos_enc_at_input`` (0.1 x pos added to the input).

        Returns:
            ``float (n, h*w, C)``: what ``_forward_sa`` returns for each frame (batch first).
        """
        tgt = curr + 0.1 * curr_pos if pos_enc_at_input else curr
        return super()._forward_sa(tgt.transpose(0, 1), curr_pos.transpose(0, 1))

    @contextmanager
    def using_self_attention(self, result: torch.Tensor | None):
        """Within the block, ``_forward_sa`` returns ``result`` (``(1 or B, h*w, C)``, expanded to B) when its
        input has that shape; ``None`` hands nothing over."""
        self.__dict__["_svac_sa"] = result
        try:
            yield
        finally:
            self.__dict__["_svac_sa"] = None

    def _forward_sa(self, tgt, query_pos):
        handed = self.__dict__.get("_svac_sa")
        if handed is not None and torch.is_inference_mode_enabled():
            self.__dict__["_svac_sa"] = None  # one call only
            if handed.shape[1:] == tgt.shape[1:] and handed.shape[0] in (1, tgt.shape[0]):
                return handed.expand(tgt.shape[0], -1, -1)
        return super()._forward_sa(tgt, query_pos)


class SingleMaskDecoder(MaskDecoder):
    """``MaskDecoder`` that, in inference, skips the hypernetworks of masks its caller throws away.

    SAM-2's decoder predicts all its masks (1 + 3 multimask outputs) and then keeps only the first
    when ``multimask_output`` is false (and no stability-based choice is configured). Under
    ``torch.inference_mode`` this decoder makes the hypernetwork MLPs of the other masks
    (:class:`SkippableMLP`) return zeros for that call: the kept mask is the same matrix row of
    the same product, so its logits are unchanged; the IoU predictions and object pointer do not
    read those MLPs.

    Args: as ``sam2.modeling.sam.mask_decoder.MaskDecoder``.
    """

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                multimask_output, repeat_image, high_res_features=None):
        """As ``MaskDecoder.forward``."""
        single = (torch.is_inference_mode_enabled() and not multimask_output
                  and not (self.dynamic_multimask_via_stability and not self.training))
        skipped = [m for m in list(self.output_hypernetworks_mlps)[1:] if isinstance(m, SkippableMLP)] if single else []
        for mlp in skipped:
            mlp.__dict__["_svac_skip"] = True
        try:
            return super().forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                                   multimask_output, repeat_image, high_res_features)
        finally:
            for mlp in skipped:
                mlp.__dict__["_svac_skip"] = False


class SkippableMLP(MLP):
    """SAM-2's ``MLP``, returning zeros of its output size for a call its :class:`SingleMaskDecoder` marks as unused."""

    def forward(self, x):
        """As ``MLP.forward``: ``(..., input_dim)`` -> ``(..., output_dim)``."""
        if self.__dict__.get("_svac_skip"):
            return x.new_zeros(*x.shape[:-1], self.layers[-1].out_features)
        return super().forward(x)


class TokenSelfAttention(Attention):
    """SAM-2's ``Attention`` for the mask decoder's first self-attention, computed once per distinct input in inference.

    In the first two-way block the output tokens attend to themselves without positional
    encoding (``q = k = v``), and those tokens are the decoder's learned tokens followed by the
    prompt embeddings: the same tensor on every frame of a clip. Under ``torch.inference_mode``
    the result is kept for inputs equal by value (and unchanged parameters); otherwise SAM-2's
    ``forward``.

    Args: as ``sam2.modeling.sam.transformer.Attention``.
    """

    def forward(self, q, k, v):
        """As ``Attention.forward``."""
        if not (torch.is_inference_mode_enabled() and q is k and k is v):
            return super().forward(q, k, v)
        versions = _versions([t for m in (self.q_proj, self.k_proj, self.v_proj, self.out_proj)
                              for t in (m.weight, m.bias)])
        kept = self.__dict__.get("_svac_kept")
        if kept is not None and kept[0] == versions and kept[1].shape == q.shape and torch.equal(kept[1], q):
            return kept[2]
        out = super().forward(q, k, v)
        self.__dict__["_svac_kept"] = (versions, q.clone(), out, list(self.parameters()))  # ids kept alive
        return out


def use_inference_heads(prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
    """Make SAM-2's prompt encoder and mask decoder (built by ``SAM2Base._build_sam_heads``) svac's subclasses here.

    The subclasses add methods only (no parameters, no state to convert), so the modules'
    classes are switched in place; modules of another class than sam2's are left alone.
    """
    if type(prompt_encoder) is PromptEncoder:
        prompt_encoder.__class__ = CachedPromptEncoder
    if type(mask_decoder) is not MaskDecoder:
        return
    mask_decoder.__class__ = SingleMaskDecoder
    for mlp in list(mask_decoder.output_hypernetworks_mlps)[1:]:
        if type(mlp) is MLP:
            mlp.__class__ = SkippableMLP
    layers = getattr(mask_decoder.transformer, "layers", None)
    if layers and getattr(layers[0], "skip_first_layer_pe", False) and type(layers[0].self_attn) is Attention:
        layers[0].self_attn.__class__ = TokenSelfAttention
