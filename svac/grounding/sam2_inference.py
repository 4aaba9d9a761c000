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

Measured on the default model (SAM-2 input 128 px, one thread): prompt encoder + dense
encoding 0.37 ms per tracked frame, neck positional encodings 0.43 ms per encoded frame
(``eval/README.md``, issue 14).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from sam2.modeling.memory_attention import MemoryAttentionLayer
from sam2.modeling.position_encoding import PositionEmbeddingSine, apply_rotary_enc
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import RoPEAttention


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
    in-place version counters of the module's parameters and buffers. Any other call (boxes,
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
            if c.shape == coords.shape and l.shape == labels.shape and torch.equal(c, coords) and torch.equal(l, labels):
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
        """The cache of the current parameters (emptied when a parameter or buffer changed since it was filled)."""
        versions = tuple((t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))
        cache = self.__dict__.get("_svac_cache")
        if cache is None or cache["versions"] != versions:
            cache = {"versions": versions}
            self.__dict__["_svac_cache"] = cache
        return cache


class CachedMemoryAttentionLayer(MemoryAttentionLayer):
    """``MemoryAttentionLayer`` that, under ``torch.inference_mode``, projects each memory frame once.

    SAM-2's memory bank changes by one frame per tracked frame, but its cross-attention projects
    every memory token again on every frame: keys ``k_proj(memory + pos)`` with rotary encoding,
    values ``v_proj(memory)``. Keys are linear in their input, so this layer keeps, per memory
    frame (a block of ``h * w`` tokens), ``rope(k_proj(memory))`` and ``v_proj(memory)``, and per
    distinct positional block (spatial encoding plus one of SAM-2's temporal encodings: at most
    ``num_maskmem`` of them) ``rope(W_k pos)``; a frame's keys are their sum. Blocks are recognised
    by value (compared exactly), so nothing relies on SAM-2's memory selection. The object-pointer
    tokens (no rotary encoding) are projected as SAM-2 does. Equal to SAM-2's layer up to float
    rounding (the sum is taken after the projection instead of before).

    It also takes a self-attention result computed ahead (:meth:`precompute_self_attention`,
    handed over by :meth:`using_self_attention` for one call): in the first layer the
    self-attention reads only the current frame's features, so svac computes it for a whole
    chunk of frames in one batch.

    Any other case (gradients, autocast, non-float32 memory, keys without positional encoding)
    runs SAM-2's own code.

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

    def _forward_ca(self, tgt, memory, query_pos, pos, num_k_exclude_rope=0):
        attn = self.cross_attn_image
        usable = (torch.is_inference_mode_enabled() and not torch.is_autocast_enabled() and isinstance(attn, RoPEAttention)
                  and attn.rope_k_repeat and self.pos_enc_at_cross_attn_keys and pos is not None
                  and memory.dtype == torch.float32 and pos.dtype == torch.float32)
        hw = tgt.shape[1]
        num_spatial = memory.shape[1] - num_k_exclude_rope
        if not usable or num_spatial <= 0 or num_spatial % hw:
            return super()._forward_ca(tgt, memory, query_pos, pos, num_k_exclude_rope)
        if attn.freqs_cis.shape[0] != hw:  # as RoPEAttention.forward: tables for this feature size
            side = math.sqrt(hw)
            attn.freqs_cis = attn.compute_cis(end_x=side, end_y=side)
        attn.freqs_cis = attn.freqs_cis.to(tgt.device)
        keys, values = self._memory_keys_values(memory[:, :num_spatial], pos[:, :num_spatial], hw)
        if num_k_exclude_rope:  # object pointers: no rotary encoding, projected as SAM-2 does
            ptr, ptr_pos = memory[:, num_spatial:], pos[:, num_spatial:]
            keys.append(attn._separate_heads(attn.k_proj(ptr + ptr_pos), attn.num_heads))
            values.append(attn._separate_heads(attn.v_proj(ptr), attn.num_heads))
        tgt2 = self.norm2(tgt)
        q = attn._separate_heads(attn.q_proj(tgt2 + query_pos if self.pos_enc_at_cross_attn_queries else tgt2),
                                 attn.num_heads)
        q = _rotate(q, attn.freqs_cis)
        out = F.scaled_dot_product_attention(q, torch.cat(keys, dim=2), torch.cat(values, dim=2))
        tgt2 = attn.out_proj(attn._recombine_heads(out))
        return tgt + self.dropout2(tgt2)

    def _memory_keys_values(self, memory: torch.Tensor, pos: torch.Tensor, hw: int
                            ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per memory frame (blocks of ``hw`` tokens): rotated keys and values ``(B, heads, hw, c)``, from the cache."""
        attn = self.cross_attn_image
        cache = self._projection_cache()
        mem_seen, pos_seen = {}, {}
        keys, values = [], []
        for start in range(0, memory.shape[1], hw):
            block, pblock = memory[:, start:start + hw], pos[:, start:start + hw]
            key_mem, val = _lookup(cache["memory"], mem_seen, block, lambda b: (
                _rotate(attn._separate_heads(attn.k_proj(b), attn.num_heads), attn.freqs_cis),
                attn._separate_heads(attn.v_proj(b), attn.num_heads)))
            (key_pos,) = _lookup(cache["pos"], pos_seen, pblock, lambda p: (
                _rotate(attn._separate_heads(F.linear(p, attn.k_proj.weight), attn.num_heads), attn.freqs_cis),))
            keys.append(key_mem + key_pos)
            values.append(val)
        cache["memory"], cache["pos"] = mem_seen, pos_seen  # forget the frames that left the memory bank
        return keys, values

    def _projection_cache(self) -> dict:
        """The projections of the current weights (emptied when a parameter changed since they were made)."""
        versions = tuple((t.data_ptr(), t._version) for t in self.cross_attn_image.parameters())
        cache = self.__dict__.get("_svac_kv")
        if cache is None or cache["versions"] != versions:
            cache = {"versions": versions, "memory": {}, "pos": {}}
            self.__dict__["_svac_kv"] = cache
        return cache


def _lookup(cache: dict, seen: dict, block: torch.Tensor, make) -> tuple:
    """``make(block)`` from ``cache`` when a block equal to ``block`` is there (checked exactly), else computed; the
    entry is also put into ``seen``."""
    key = (tuple(block.shape), tuple(block[:, 0, :4].flatten().tolist()), tuple(block[:, -1, -4:].flatten().tolist()))
    for stored, value in cache.get(key, ()):
        if torch.equal(stored, block):
            break
    else:
        stored, value = block, make(block)
    seen.setdefault(key, []).append((stored, value))
    return value


def _rotate(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """SAM-2's rotary encoding (``apply_rotary_enc``) of ``x`` ``(B, heads, n, c)``, n = the rows of ``freqs_cis``."""
    rotated, _ = apply_rotary_enc(x, x[..., :0, :], freqs_cis=freqs_cis)
    return rotated
