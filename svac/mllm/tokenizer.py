"""Tokenizers: svac's special tokens, and a byte-level tokenizer for tiny models.

Real models use their own tokenizer (loaded from the checkpoint folder with
``AutoTokenizer``, never with remote code). Tiny test/demo models, which have no
checkpoint to take a tokenizer from, use :func:`build_byte_tokenizer`: a
byte-level BPE with no merges (every UTF-8 byte is a token), built offline and
deterministically (:mod:`svac.byte_tokenizer`).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from svac.mllm.chat_template import ChatTemplate
from svac.mllm.tokens import IMAGE_TOKENS, SEG_TOKEN, SVAC_SPECIAL_TOKENS


def build_byte_tokenizer(template: ChatTemplate) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer knowing ``template``'s special tokens and InternVL's image tokens.

    The vocabulary is the 256 byte symbols (:func:`svac.byte_tokenizer.byte_level_bpe`, no
    merges), then the template's special tokens, then ``<img>``, ``</img>``, ``<IMG_CONTEXT>``
    (in that order, so ids are reproducible). svac's own tokens are added afterwards by
    :func:`add_svac_tokens`.

    Returns:
        A ``PreTrainedTokenizerFast`` whose ``eos_token`` is the template's end-of-answer token.
    """
    from svac.byte_tokenizer import byte_level_bpe

    return _with_template_tokens(byte_level_bpe(), template)


def train_bpe_tokenizer(template: ChatTemplate, texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer whose merges are learnt from ``texts`` (deterministic for equal inputs).

    For small models trained from scratch on a narrow domain (the synthetic benchmark): frequent
    words become single tokens, which the LLM learns much faster than byte sequences. Any text
    still tokenises (unseen words fall back to bytes). Special tokens follow as in
    :func:`build_byte_tokenizer`.

    Args:
        template: chat template whose special tokens the tokenizer keeps whole.
        texts: training text (expressions and prompt templates).
        vocab_size: target vocabulary size, special tokens excluded (>= 256).

    Raises:
        ValueError: when ``vocab_size < 256``.
    """
    from svac.byte_tokenizer import byte_level_bpe

    return _with_template_tokens(byte_level_bpe(texts=texts, vocab_size=vocab_size), template)


def _with_template_tokens(tok, template: ChatTemplate) -> PreTrainedTokenizerFast:
    """Wrap a ``tokenizers.Tokenizer`` for the MLLM: the template's special tokens, then the image tokens."""
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=template.end_of_answer,
                                   pad_token=template.end_of_answer)
    fast.add_special_tokens({"additional_special_tokens": list(template.special_tokens) + list(IMAGE_TOKENS)})
    return fast


def add_svac_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Add ``[SEG]``, ``<p>``, ``</p>``, ``<vp>``, ``</vp>`` (and InternVL's image tokens if missing).

    Tokens already present are left alone, so the call is idempotent.

    Returns:
        The number of tokens added (the caller resizes the model's embeddings to ``len(tokenizer)``).
    """
    missing = [t for t in (*IMAGE_TOKENS, *SVAC_SPECIAL_TOKENS) if t not in tokenizer.get_vocab()]
    if not missing:
        return 0
    return tokenizer.add_tokens(missing, special_tokens=True)


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """Id of a single special token.

    Raises:
        KeyError: when the tokenizer does not know the token as one piece.
    """
    ids = tokenizer.convert_tokens_to_ids([token])
    if ids[0] is None or ids[0] == tokenizer.unk_token_id or tokenizer.convert_ids_to_tokens(ids)[0] != token:
        raise KeyError(f"tokenizer has no single token {token!r}")
    return int(ids[0])


def seg_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """Id of ``[SEG]`` in ``tokenizer``."""
    return token_id(tokenizer, SEG_TOKEN)
