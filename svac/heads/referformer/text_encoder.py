"""Frozen linguistic encoder of ReferFormer: word features and a sentence feature.

ReferFormer (Wu et al., CVPR 2022, §3.1 "Linguistic encoder") encodes the
expression with a frozen RoBERTa, giving word features ``F_e`` (L x C) and a
sentence feature ``f_s`` (C) obtained by pooling. Here the pooling is the
masked mean of the projected word features (the paper does not fix the
pooling operator; the RoBERTa pooler is not pretrained, so it is not used).

The caller tokenizes: use the tokenizer of the same checkpoint
(``RobertaTokenizerFast.from_pretrained("FacebookAI/roberta-base")`` for the
paper's encoder, ``BertTokenizerFast`` for BERT checkpoints), with padding and
an attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from svac.errors import CheckpointError, ConfigError

from svac.baseline_config import ReferFormerConfig


@dataclass
class TextFeatures:
    """Projected text features.

    Attributes:
        words: float ``(B, L, C)`` word features projected to the transformer width.
        padding_mask: bool ``(B, L)``, True at padding tokens.
        sentence: float ``(B, C)`` masked mean of ``words`` over real tokens.
    """

    words: torch.Tensor
    padding_mask: torch.Tensor
    sentence: torch.Tensor


class FrozenTextEncoder(nn.Module):
    """RoBERTa/BERT kept frozen (no gradients, always in eval mode) plus a trainable projection to C.

    The projection is ReferFormer's feature resizer: Linear → LayerNorm → Dropout.
    """

    def __init__(self, cfg: ReferFormerConfig) -> None:
        super().__init__()
        self.encoder = _build_text_model(cfg)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        width = self.encoder.config.hidden_size
        self.project = nn.Sequential(
            nn.Linear(width, cfg.hidden_dim), nn.LayerNorm(cfg.hidden_dim), nn.Dropout(cfg.dropout)
        )

    def train(self, mode: bool = True) -> FrozenTextEncoder:
        """Set train mode of the projection only; the frozen encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> TextFeatures:
        """Encode token ids.

        Args:
            input_ids: long ``(B, L)`` token ids of the matching tokenizer.
            attention_mask: long or bool ``(B, L)``, 1 at real tokens, 0 at padding.

        Raises:
            ConfigError: wrong shapes/dtypes, or an expression without any real token.
        """
        if input_ids.ndim != 2 or input_ids.dtype != torch.long:
            raise ConfigError(f"input_ids must be a long tensor (B, L), got {input_ids.dtype} {tuple(input_ids.shape)}")
        if attention_mask.shape != input_ids.shape:
            raise ConfigError(
                f"attention_mask shape {tuple(attention_mask.shape)} differs from input_ids {tuple(input_ids.shape)}"
            )
        valid = attention_mask.bool()
        if not bool(valid.any(dim=1).all()):
            raise ConfigError("every expression needs at least one real token (attention_mask row of zeros)")
        with torch.no_grad():
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state
        words = self.project(hidden)
        weights = valid.to(words.dtype).unsqueeze(-1)
        sentence = (words * weights).sum(dim=1) / weights.sum(dim=1)
        return TextFeatures(words=words, padding_mask=~valid, sentence=sentence)


def _build_text_model(cfg: ReferFormerConfig) -> nn.Module:
    """Load (or build randomly, when ``text_encoder_init_config`` is set) the transformers encoder."""
    from transformers import BertModel, RobertaModel

    config_class = cfg.text_config_class()
    model_class = {"roberta": RobertaModel, "bert": BertModel}[cfg.text_encoder_family]
    if cfg.text_encoder_init_config is not None:
        try:
            config = config_class(**cfg.text_encoder_init_config)
        except TypeError as error:
            raise ConfigError(f"text_encoder_init_config is not valid for {config_class.__name__}: {error}") from error
        return model_class(config, add_pooling_layer=False)
    try:
        return model_class.from_pretrained(
            cfg.text_encoder, add_pooling_layer=False, local_files_only=cfg.local_files_only
        )
    except OSError as error:
        raise CheckpointError(
            f"cannot load text encoder {cfg.text_encoder!r} (local_files_only={cfg.local_files_only}): {error}"
        ) from error
