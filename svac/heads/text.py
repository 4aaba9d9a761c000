"""Tokenizers and expression encoding for the baseline heads (ReferFormer, LAVT).

The papers tokenize with the tokenizer of their pretrained text encoder
(RoBERTa for ReferFormer §3.1, BERT for LAVT §3.1). When svac builds the text
encoder from scratch (tiny models, or training on a narrow synthetic domain),
it needs a tokenizer that exists offline and is the same on every machine:

* :func:`build_expression_byte_tokenizer` -- every UTF-8 byte is a token (no merges);
* :func:`train_expression_tokenizer` -- a byte-level BPE learnt from the training
  expressions (frequent words become single tokens; unseen text falls back to bytes).

Both put ``<pad>``, ``<s>``, ``</s>``, ``<unk>`` at ids 0-3 and wrap every
expression as ``<s> ... </s>`` (the RoBERTa / BERT ``[CLS] ... [SEP]`` layout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from svac.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

#: Special tokens of svac's expression tokenizers, in id order (ids 0, 1, 2, 3).
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)

def _wrap(tokenizer_object) -> "PreTrainedTokenizerFast":
    """Add the ``<s> $A </s>`` post-processor and wrap as a transformers fast tokenizer."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    tokenizer_object.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}",
        special_tokens=[(BOS, tokenizer_object.token_to_id(BOS)), (EOS, tokenizer_object.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer_object, pad_token=PAD, bos_token=BOS, eos_token=EOS,
                                   unk_token=UNK)


def build_expression_byte_tokenizer() -> "PreTrainedTokenizerFast":
    """svac's offline byte-level expression tokenizer: 4 special tokens then the 256 byte symbols.

    Deterministic (no training, no files; :func:`svac.byte_tokenizer.byte_level_bpe`); 260 ids.
    Expressions are encoded as ``<s> bytes </s>``.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``pad_token_id == 0``.
    """
    from svac.byte_tokenizer import byte_level_bpe

    return _wrap(byte_level_bpe(leading_tokens=SPECIAL_TOKENS, unk_token=UNK))


def train_expression_tokenizer(texts: Sequence[str], vocab_size: int) -> "PreTrainedTokenizerFast":
    """A byte-level BPE learnt from ``texts`` (deterministic for equal inputs: they are sorted first).

    Args:
        texts: training expressions.
        vocab_size: vocabulary size including the 4 special tokens and the 256 bytes (>= 260).

    Raises:
        ConfigError: when ``vocab_size`` cannot hold the specials and the byte alphabet.
    """
    from svac.byte_tokenizer import BYTE_ALPHABET_SIZE, byte_level_bpe

    minimum = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE
    if vocab_size < minimum:
        raise ConfigError(f"bpe_vocab_size must be >= {minimum} (special tokens + byte alphabet), got {vocab_size}")
    return _wrap(byte_level_bpe(texts=texts, vocab_size=vocab_size, leading_tokens=SPECIAL_TOKENS, unk_token=UNK))


def load_expression_tokenizer(source: str, *, local_files_only: bool = True) -> "PreTrainedTokenizerBase":
    """Load a tokenizer folder (or, when ``local_files_only`` is false, a Hub id) without remote code.

    The folder's ``config.json`` (an svac checkpoint document, not a transformers config) is
    not consulted: the tokenizer class comes from ``tokenizer_config.json``.

    Raises:
        ConfigError: when the tokenizer cannot be loaded (the message names ``source``).
    """
    from transformers import AutoTokenizer, PreTrainedConfig

    try:
        return AutoTokenizer.from_pretrained(str(source), trust_remote_code=False, config=PreTrainedConfig(),
                                             local_files_only=local_files_only)
    except (ValueError, OSError, KeyError, TypeError, ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the text tokenizer {source!r} (local files only: {local_files_only}): "
                          f"{exc}") from exc


def encode_expressions(tokenizer: "PreTrainedTokenizerBase", expressions: Sequence[str],
                       max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize expressions with the tokenizer's special tokens, right-padded and truncated.

    Special tokens typed inside an expression are split into ordinary tokens (user text is text);
    the tokenizer's own start/end tokens are still added around it.

    Args:
        tokenizer: the model's text tokenizer (needs a pad token).
        expressions: B referring expressions.
        max_length: most tokens per expression, specials included (the text encoder's positions).

    Returns:
        ``(input_ids, attention_mask)``, both ``long (B, L)`` with ``L <= max_length``.

    Raises:
        ConfigError: when the tokenizer has no pad token or an expression yields no token.
    """
    if tokenizer.pad_token_id is None:
        raise ConfigError("the text tokenizer has no pad token; give baseline.text_tokenizer a tokenizer with one")
    # the expression is user text: a typed "</s>" or "<mask>" is characters, not the encoder's control token
    enc = tokenizer(list(expressions), padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                    split_special_tokens=True)
    mask = enc["attention_mask"].long()
    if not bool(mask.any(dim=1).all()):
        raise ConfigError("an expression was tokenized to no token at all")
    return enc["input_ids"].long(), mask
