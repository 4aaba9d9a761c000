"""Baseline heads in svac's config: the ``head`` switch, the ``baseline`` section, the registry, the tokenizers."""

from __future__ import annotations

import typing

import pytest
import torch

from svac.config import SVACConfig, from_dict, load_config
from svac.errors import ConfigError
from svac.heads import HEADS, head_class

BASELINE_YAMLS = {"referformer": "referformer_tiny.yaml", "lavt": "lavt_tiny.yaml"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module's toy models on one thread (on a shared 2-core CPU a second one mostly waits), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("head", sorted(BASELINE_YAMLS))
def test_tiny_baseline_yaml_loads_and_names_its_head(head):
    cfg = load_config(BASELINE_YAMLS[head])
    assert cfg.head == head and cfg.trained is False
    assert cfg.baseline.input_size == (96, 160) and cfg.baseline.window == 5
    assert from_dict(SVACConfig, cfg.to_dict()) == cfg  # plain-data round trip (lists back to tuples)


def test_baseline_sections_are_typed_and_configs_with_untyped_ones_still_load():
    from svac.baseline_config import LAVTConfig, ReferFormerConfig

    assert isinstance(load_config("lavt_tiny.yaml").baseline.lavt, LAVTConfig)
    assert isinstance(load_config("referformer_tiny.yaml").baseline.referformer, ReferFormerConfig)
    old = load_config("tiny.yaml").to_dict()
    old["baseline"].update(referformer={}, lavt={})  # how an unused section was stored before it was typed
    cfg = from_dict(SVACConfig, old)
    assert cfg.baseline.referformer is None and cfg.baseline.lavt is None
    with pytest.raises(ConfigError, match="has no baseline.lavt section"):
        from_dict(SVACConfig, {**old, "head": "lavt"})


def test_registry_covers_every_head_the_config_accepts():
    heads = typing.get_args(typing.get_type_hints(SVACConfig)["head"])
    assert set(heads) == set(HEADS)
    for name in heads:
        cls = head_class(name)
        assert callable(getattr(cls, "from_config")) and callable(getattr(cls, "from_pretrained"))
    with pytest.raises(ConfigError, match="unknown head 'maskformer'"):
        head_class("maskformer")


@pytest.mark.parametrize("override, message", [
    ("head=maskformer", "head"),
    ("baseline.input_size=[100, 160]", "baseline.input_size height must be a positive multiple of 32"),
    ("baseline.input_size=[96, 0]", "baseline.input_size width"),
    ("baseline.window=0", "baseline.window must be >= 1"),
    ("baseline.train_frames=random", "baseline.train_frames"),
    ("baseline.referformer.hidden_size=64", "baseline.referformer.hidden_size"),
    ("baseline.referformer.hidden_dim=48", "baseline.referformer: ReferFormerConfig.hidden_dim"),
    ("baseline.referformer.text_encoder_init_config.vocab_size=300", "text_encoder_init_config.vocab_size is set "
                                                                       "from the tokenizer"),
])
def test_bad_referformer_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("referformer_tiny.yaml", [override])


@pytest.mark.parametrize("override, message", [
    ("baseline.lavt.variant=audio", "baseline.lavt: LAVTConfig.variant"),
    ("baseline.lavt.text_vocab_size=300", "baseline.lavt.text_vocab_size is set from the tokenizer"),
    ("baseline.lavt.depth=[1, 1, 1, 1]", "baseline.lavt.depth"),
])
def test_bad_lavt_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("lavt_tiny.yaml", [override])


def test_svac_config_keeps_but_validates_an_unused_baseline_section(tiny_config):
    # an unused section is kept (``--set head=lavt`` switches to it) and checked like a used one, so
    # that nothing unchecked rides along in a config
    assert tiny_config.head == "svac"
    cfg = load_config("tiny.yaml", ["baseline.lavt.variant=video", "baseline.lavt.patch_size=[1,4,4]",
                                    "baseline.lavt.window_size=[2,4,4]"])
    assert cfg.head == "svac" and cfg.baseline.lavt.variant == "video"
    with pytest.raises(ConfigError, match="LAVTConfig.variant"):
        load_config("tiny.yaml", ["baseline.lavt.variant=audio"])


def test_head_config_takes_the_vocabulary_from_the_tokenizer():
    from svac.heads.head_configs import head_config
    from svac.heads.text import build_expression_byte_tokenizer

    tok = build_expression_byte_tokenizer()
    rf = head_config(load_config("referformer_tiny.yaml"), tokenizer=tok)
    assert rf.text_encoder_init_config["vocab_size"] == len(tok)
    assert rf.text_encoder_init_config["pad_token_id"] == tok.pad_token_id
    lavt = head_config(load_config("lavt_tiny.yaml"), tokenizer=tok)
    assert lavt.text_vocab_size == len(tok) and lavt.variant == "video" and lavt.window_size == (2, 4, 4)


def test_byte_tokenizer_wraps_expressions_and_pads_with_zero():
    from svac.heads.text import BOS, EOS, build_expression_byte_tokenizer, encode_expressions

    tok = build_expression_byte_tokenizer()
    assert len(tok) == 260 and tok.pad_token_id == 0
    ids, mask = encode_expressions(tok, ["a swan", "the black swan on the left"], max_length=64)
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert int(mask[0].sum()) == len("a swan") + 2 and int(mask[1].sum()) == len("the black swan on the left") + 2
    assert (ids[0, int(mask[0].sum()):] == 0).all()  # right padding with <pad>
    first = tok.convert_ids_to_tokens(ids[1, [0, int(mask[1].sum()) - 1]].tolist())
    assert first == [BOS, EOS]
    short, short_mask = encode_expressions(tok, ["the black swan on the left"], max_length=8)
    assert short.shape[1] == 8 and tok.convert_ids_to_tokens([int(short[0, -1])]) == [EOS]


def test_bpe_tokenizer_is_deterministic_and_learns_words():
    from svac.heads.text import train_expression_tokenizer

    texts = ["the red square moving left", "the blue circle", "the fastest square", "the red circle"] * 5
    a = train_expression_tokenizer(texts, 300)
    b = train_expression_tokenizer(list(reversed(texts)), 300)
    assert a.get_vocab() == b.get_vocab()
    assert len(a("the red square").input_ids) < len("the red square") + 2  # merges shorten known words
    assert len(a("zebra xylophone").input_ids) > 2  # unseen words still tokenize (bytes)
    with pytest.raises(ConfigError, match="bpe_vocab_size must be >= 260"):
        train_expression_tokenizer(texts, 100)
