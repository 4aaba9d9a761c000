"""BERT language encoder of LAVT.

Source: LAVT (CVPR 2022) Sec. 3.1: word features are the last hidden layer of
BERT, fine-tuned jointly with the rest of the network. Built with Hugging Face
``transformers`` (imported when the encoder is constructed). A checkpoint is
read from a local folder only; without one, a randomly initialised BERT of the
configured size is built (tests, or training from scratch).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from svac.errors import CheckpointError, ConfigError
from svac.baseline_config import LAVTConfig
from svac.heads.lavt.errors import LAVTInputError


class TextEncoder(nn.Module):
    """BERT word encoder: token ids ``(B, L)`` -> word features ``(B, L, C_l)``.

    Args:
        cfg: the head configuration; uses ``text_encoder_path``, the
            ``text_*`` sizes and ``freeze_text_encoder``.

    Attributes:
        bert: the ``transformers.BertModel`` (no pooling layer).
        hidden_size: ``C_l``.
        frozen: whether BERT is kept fixed (no gradients, always eval mode).

    Raises:
        svac.errors.CheckpointError: ``text_encoder_path`` is not a readable
            local BERT checkpoint folder.
        svac.errors.ConfigError: neither ``text_encoder_path`` nor ``text_vocab_size`` is set.
    """

    def __init__(self, cfg: LAVTConfig):
        super().__init__()
        from transformers import BertConfig, BertModel

        if cfg.text_encoder_path is not None:
            path = Path(cfg.text_encoder_path)
            if not path.is_dir():
                raise CheckpointError(f"text encoder folder not found: {path}")
            try:
                self.bert = BertModel.from_pretrained(str(path), add_pooling_layer=False, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"cannot load a BERT checkpoint from {path}: {exc}") from exc
        else:
            if cfg.text_vocab_size is None:
                raise ConfigError("LAVTConfig.text_vocab_size is None: a BERT built from scratch needs the vocabulary "
                                  "size of its tokenizer (svac fills it in when it builds the head from a config)")
            bert_config = BertConfig(
                vocab_size=cfg.text_vocab_size,
                hidden_size=cfg.text_hidden_size,
                num_hidden_layers=cfg.text_num_layers,
                num_attention_heads=cfg.text_num_heads,
                intermediate_size=cfg.text_intermediate_size,
                max_position_embeddings=cfg.text_max_positions,
            )
            self.bert = BertModel(bert_config, add_pooling_layer=False)
        self.hidden_size = int(self.bert.config.hidden_size)
        self.vocab_size = int(self.bert.config.vocab_size)
        self.max_positions = int(self.bert.config.max_position_embeddings)
        self.frozen = bool(cfg.freeze_text_encoder)
        if self.frozen:
            self.bert.requires_grad_(False)
            self.bert.eval()

    def train(self, mode: bool = True) -> "TextEncoder":
        """Set training mode; a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.bert.eval()
        return self

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Encode token ids.

        Args:
            input_ids: int64 ``(B, L)`` BERT token ids.
            attention_mask: ``(B, L)`` bool or integer 0/1, 1 on real tokens.

        Returns:
            float ``(B, L, C_l)`` last-layer word features.

        Raises:
            LAVTInputError: bad dtypes/shapes, ids outside the vocabulary, or
                more tokens than BERT's position table.
        """
        if input_ids.dim() != 2 or input_ids.dtype != torch.long:
            raise LAVTInputError(f"input_ids must be int64 (B, L); got {input_ids.dtype} {tuple(input_ids.shape)}")
        if attention_mask.shape != input_ids.shape:
            raise LAVTInputError(
                f"attention_mask must match input_ids {tuple(input_ids.shape)}; got {tuple(attention_mask.shape)}"
            )
        if input_ids.shape[1] > self.max_positions:
            raise LAVTInputError(f"{input_ids.shape[1]} tokens exceed BERT's {self.max_positions} positions")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= self.vocab_size):
            raise LAVTInputError(f"input_ids must lie in [0, {self.vocab_size}); got values outside")
        mask = attention_mask.to(torch.long)
        if self.frozen:
            with torch.no_grad():
                return self.bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return self.bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
