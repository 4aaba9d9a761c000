"""Byte-level BPE tokenizers built offline, for models that have no pretrained tokenizer.

Tiny test and demo models, and models trained from scratch on a narrow domain (the synthetic
benchmark), need a tokenizer that exists without any download and is the same on every
machine. :func:`byte_level_bpe` builds it with the ``tokenizers`` library, in one of two ways:

* without ``texts``: every UTF-8 byte is a token (the 256 symbols of the byte-level alphabet,
  no merges);
* with ``texts``: a byte-level BPE whose merges are learnt from them (frequent words become
  single tokens; unseen text still falls back to bytes). The texts are sorted first, so equal
  inputs give equal tokenizers.

Both the MLLM's tokenizer (:mod:`svac.mllm.tokenizer`) and the baseline heads' expression
tokenizer (:mod:`svac.heads.text`) are made here; each wraps the result as a transformers
``PreTrainedTokenizerFast`` with its own special tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: Symbols of the byte-level alphabet (every UTF-8 byte is one).
BYTE_ALPHABET_SIZE = 256


def byte_level_bpe(*, texts: Sequence[str] | None = None, vocab_size: int | None = None,
                   leading_tokens: Sequence[str] = (), unk_token: str | None = None) -> "Tokenizer":
    """A byte-level BPE ``tokenizers.Tokenizer`` with a byte-level decoder.

    Args:
        texts: training text; ``None`` builds the byte tokenizer (no merges).
        vocab_size: with ``texts``, the vocabulary size to learn, ``leading_tokens`` included
            (at least ``len(leading_tokens) + 256``); ignored without ``texts``.
        leading_tokens: tokens given the first ids (0, 1, ...) before the byte symbols
            (e.g. ``<pad>``, ``<s>``, ``</s>``, ``<unk>``).
        unk_token: the token unknown symbols map to (one of ``leading_tokens``), or ``None``.

    Returns:
        The tokenizer; ids are ``leading_tokens``, then the 256 byte symbols in sorted order,
        then the learnt merges.

    Raises:
        ValueError: when ``texts`` is given and ``vocab_size`` cannot hold ``leading_tokens``
            and the byte alphabet.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if texts is None:
        vocab = {token: i for i, token in enumerate(leading_tokens)}
        vocab.update({ch: len(vocab) + i for i, ch in enumerate(sorted(alphabet))})
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=unk_token))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    else:
        minimum = len(leading_tokens) + BYTE_ALPHABET_SIZE
        if vocab_size is None or vocab_size < minimum:
            raise ValueError(f"a byte-level BPE with {len(leading_tokens)} leading tokens needs vocab_size >= "
                             f"{minimum}, got {vocab_size}")
        tok = Tokenizer(models.BPE(unk_token=unk_token))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False,
                                      special_tokens=list(leading_tokens))
        tok.train_from_iterator(sorted(texts), trainer=trainer)
    tok.decoder = decoders.ByteLevel()
    return tok
