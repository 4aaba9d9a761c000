"""Tokenizers: svac's special tokens, and a byte-level tokenizer for tiny models.

Real models use their own tokenizer (loaded from the checkpoint folder with
``AutoTokenizer``, never with remote code). Tiny test/demo models, which have no
checkpoint to take a tokenizer from, use :func:`build_byte_tokenizer`: a
byte-level BPE with no merges (every UTF-8 byte is a token), built offline and
deterministically with the ``tokenizers`` library.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from svac.mllm.chat_template import ChatTemplate
from svac.mllm.tokens import IMAGE_TOKENS, SEG_TOKEN, SVAC_SPECIAL_TOKENS


def build_byte_tokenizer(template: ChatTemplate) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer knowing ``template``'s special tokens and InternVL's image tokens.

    The vocabulary is the 256 byte symbols, then the template's special tokens, then
    ``<img>``, ``</img>``, ``<IMG_CONTEXT>`` (in that order, so ids are reproducible).
    svac's own tokens are added afterwards by :func:`add_svac_tokens`.

    Returns:
        A ``PreTrainedTokenizerFast`` whose ``eos_token`` is the template's end-of-answer token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
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
