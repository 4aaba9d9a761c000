"""svac.evaluation.prompt_probe: holding one term of the [SEG] prompt, and the position probe (issue 18)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from svac.config import SegPromptConfig
from svac.loading import build_from_config
from svac.span_prompt import SpanStates


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=3, seed=5, num_frames=(12, 13), size=(64, 64), progress=False)
    return root


@pytest.fixture(scope="module")
def span_model(tiny_config):
    small = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=4, clip_len=2))
    torch.manual_seed(0)
    model = build_from_config(dataclasses.replace(small, seg_prompt=SegPromptConfig(span_skip=True))).eval()
    return model


def _inputs(model, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    dim = model.mllm.config.text_config.hidden_size
    return torch.randn(n, dim, generator=gen), SpanStates(torch.randn(n, dim, generator=gen), torch.ones(n, dtype=torch.bool))


def test_holding_a_term_leaves_the_other_one_to_tell_prompts_apart(span_model):
    from svac.evaluation.prompt_probe import held_term

    hidden_a, span_a = _inputs(span_model, 3, 0)
    hidden_b, span_b = _inputs(span_model, 3, 1)
    with torch.no_grad():
        free = span_model.seg_prompts(hidden_a, span_a)
        assert not torch.allclose(span_model.seg_prompts(hidden_b, span_a), free)  # both terms move the prompt
        assert not torch.allclose(span_model.seg_prompts(hidden_a, span_b), free)
        with held_term(span_model, "llm"):
            first = span_model.seg_prompts(hidden_a, span_a)
            # the LLM branch is its first row's value everywhere: other [SEG] states change nothing
            assert torch.allclose(span_model.seg_prompts(hidden_b, span_a), first)
            assert not torch.allclose(span_model.seg_prompts(hidden_a, span_b), first)
            llm_first = span_model.text_hidden_fcs(hidden_a[:1])
            assert torch.allclose(first, llm_first.expand(3, -1) + span_model.span_prompt(span_a), atol=1e-6)
        with held_term(span_model, "span"):
            first = span_model.seg_prompts(hidden_a, span_a)
            assert torch.allclose(span_model.seg_prompts(hidden_a, span_b), first)
            assert not torch.allclose(span_model.seg_prompts(hidden_b, span_a), first)
        assert torch.equal(span_model.seg_prompts(hidden_a, span_a), free)  # restored on exit


def test_holding_needs_a_span_model_and_a_known_term(tiny_model, span_model):
    from svac.evaluation.prompt_probe import held_term

    with pytest.raises(ValueError, match="span skip"):
        with held_term(tiny_model, "llm"):
            pass
    with pytest.raises(ValueError, match="term"):
        with held_term(span_model, "words"):
            pass


def test_ridge_r2_scores_a_linear_target_high_and_noise_at_most_zero():
    from svac.evaluation.prompt_probe import ridge_r2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12))
    y = np.c_[x[:, 0] - 0.5 * x[:, 3], x[:, 5]] + 0.05 * rng.normal(size=(400, 2))
    assert ridge_r2(x[:300], y[:300], x[300:], y[300:], ridge=1.0) > 0.95
    noise = rng.normal(size=(400, 2))
    assert ridge_r2(x[:300], noise[:300], x[300:], noise[300:]) < 0.05
    assert np.isnan(ridge_r2(x[:300], y[:300], x[300:301], y[300:301]))


def test_position_probe_collects_one_row_per_visible_target_and_scores_every_feature(span_model, synth_root):
    from svac.data.readers import load_dataset
    from svac.evaluation.prompt_probe import collect, position_probe

    samples = list(load_dataset(f"rvos:{synth_root}", "train"))
    states = collect(span_model, samples, videos=2)
    videos = list(dict.fromkeys(s.video_id for s in samples))[:2]
    visible = [s for s in samples if s.video_id in videos and s.load_masks().any()]
    assert len(states.seg) == len(visible) > 0
    dim = span_model.mllm.config.text_config.hidden_size
    assert states.seg.shape == states.span.shape == (len(states.seg), dim)
    assert states.centroid.shape == (len(states.seg), 2) and ((states.centroid >= 0) & (states.centroid <= 1)).all()
    assert states.video_only.dtype == bool
    result = position_probe(states, states)
    assert set(result) >= {"seg_state", "span_states", "both", "n_train", "n_test"}
    assert all(np.isfinite(result[f]["all"]) for f in ("seg_state", "span_states", "both"))


def test_report_json_prints_writes_and_never_overwrites(tmp_path, capsys):
    from svac.errors import OutputExistsError
    from svac.metrics.output import report_json

    out = tmp_path / "probe.json"
    text = report_json({"r2": -0.05}, out)
    assert capsys.readouterr().out.strip() == text and out.read_text() == text + "\n"
    with pytest.raises(OutputExistsError):
        report_json({"r2": 1.0}, out)
    assert capsys.readouterr().out == "" and out.read_text() == text + "\n"  # refused before printing, file kept
    report_json({"r2": 0.5}, None)
    assert '"r2": 0.5' in capsys.readouterr().out


def _fresh_span_model(tiny_config, *, zero_init: bool):
    small = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=4, clip_len=2))
    torch.manual_seed(0)
    return build_from_config(dataclasses.replace(
        small, seg_prompt=SegPromptConfig(span_skip=True, zero_init_llm_branch=zero_init)))


def test_gradient_probe_sees_a_zero_initialised_branch_pass_nothing_on(tiny_config, synth_root):
    from svac.data.readers import load_dataset
    from svac.evaluation.prompt_probe import gradient_probe

    samples = list(load_dataset(f"rvos:{synth_root}", "train"))
    gated = gradient_probe(_fresh_span_model(tiny_config, zero_init=True), samples, videos=2, batch_size=1,
                           expressions_per_video=2)
    open_ = gradient_probe(_fresh_span_model(tiny_config, zero_init=False), samples, videos=2, batch_size=1,
                           expressions_per_video=2)
    assert gated["batches"] == 2 and gated["n_seg"] > 0
    for result in (gated, open_):
        # both terms are summed into one prompt: the same gradient arrives at each of them
        assert result["llm_branch"]["grad_at_term"] == pytest.approx(result["span"]["grad_at_term"], rel=1e-5)
        assert result["span"]["grad_at_term"] > 0 and result["span"]["gain"] > 0
    # a last layer at zero passes no gradient back to the [SEG] state; a random one does
    assert gated["llm_branch"]["last_layer_spectral_norm"] == 0.0
    assert gated["llm_branch"]["grad_at_input"] == 0.0 and gated["llm_branch"]["gain"] == 0.0
    assert open_["llm_branch"]["grad_at_input"] > 0 and open_["llm_branch"]["gain"] > 0


def test_gradient_command_refuses_bad_arguments_before_loading(tmp_path, capsys):
    from svac.errors import OutputExistsError
    from svac.evaluation.prompt_probe import main

    with pytest.raises(SystemExit):
        main(["gradient", "no-such-model", "--data-root", str(tmp_path), "--videos", "0"])
    assert "--videos must be >= 1" in capsys.readouterr().err
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    with pytest.raises(OutputExistsError):
        main(["gradient", "no-such-model", "--data-root", str(tmp_path), "--out", str(taken)])
    assert taken.read_text() == "{}"
