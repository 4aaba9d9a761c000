"""The [SEG] prompt path of models trained from scratch: single-turn examples, the span skip path, click stage.

The headline test (issue 18): on a model trained a few updates with the default recipe's settings,
prompts of one expression asked at different conversation turns are close, and prompts of different
expressions of one video are not constant (the turn-index shortcut of multi-turn training is gone).
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from svac.config import SegPromptConfig, from_dict
from svac.loading import build_from_config
from svac.model import SVAC
from svac.span_prompt import SpanStates, span_bounds, span_states
from svac.training.config import DataConfig, LossConfig, TrainConfig, load_train_config
from svac.training.data import IGNORE_INDEX, ExampleBuilder, collate
from svac.training.params import configure_trainable

finetune = importlib.import_module("svac.recipes.finetune")

STAGES = ("train/svac_default_0_objects.yaml", "train/svac_default_1_image.yaml", "train/svac_default_2_encoder.yaml",
          "train/svac_default_3_video.yaml", "train/svac_default_4_clicks.yaml", "train/svac_default_5_refresh.yaml")
#: The stage that builds the model (its ``model`` section) and the image-level grounding stage.
MODEL_STAGE, IMAGE_STAGE = STAGES[0], STAGES[1]


class FirstTemplates:
    """A stand-in random generator that always picks the first question and answer template and frame 0."""

    def integers(self, high):
        return 0


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=4, seed=3, num_frames=(12, 14), size=(64, 64), progress=False)
    return root


@pytest.fixture(scope="module")
def samples(synth_root):
    from svac.data.readers import load_dataset

    return list(load_dataset(f"rvos:{synth_root}", "train"))


def _span_config(tiny_config, **seg):
    small = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))
    return dataclasses.replace(small, seg_prompt=SegPromptConfig(**{"span_skip": True, "zero_init_llm_branch": True,
                                                                    **seg}))


def _video_with(samples, count):
    groups = {}
    for s in samples:
        groups.setdefault(s.video_id, []).append(s)
    return next(g for g in groups.values() if len(g) >= count and len({x.object_ids for x in g}) >= 2)


def _prompts(model, example):
    """The projected [SEG] prompts (n, C) the training objective computes for ``example``."""
    from svac.training.objective import SVACObjective

    batch = collate([example], model.tokenizer.pad_token_id)
    with torch.no_grad():
        _, hidden = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values,
                                       image_index=batch.image_index)
        return SVACObjective(model, LossConfig())._seg_prompts(batch, hidden, 0)


# ---------------------------------------------------------------- span skip path

def test_span_bounds_find_the_phrase_before_each_seg():
    # tokens: 0 <p> 5 6 </p> S S 9 <p> </p> S
    o, c, s = 1, 2, 3
    ids = torch.tensor([0, o, 5, 6, c, s, s, 9, o, c, s])
    assert span_bounds(ids, torch.tensor([5, 6, 10]), o, c) == [(2, 4), (2, 4), None]  # an empty phrase is no span
    assert span_bounds(torch.tensor([s, o, 5, c]), torch.tensor([0]), o, c) == [None]  # no phrase before it


def test_zero_initialised_llm_branch_leaves_the_span_term_alone_at_first(tiny_config, samples):
    model = build_from_config(_span_config(tiny_config)).eval()
    last = model.text_hidden_fcs[2]
    assert last.weight.abs().sum() == 0 and last.bias.abs().sum() == 0
    group = _video_with(samples, 2)
    builder = ExampleBuilder.for_model(model)
    a = builder.build([group[0]], FirstTemplates())
    b = builder.build([group[1]], FirstTemplates())
    pa, pb = _prompts(model, a), _prompts(model, b)
    row = a.input_ids[0]
    positions = (row == model.seg_token_id).nonzero()[:, 0]
    with torch.no_grad():
        span = span_states(model, row, positions)
        assert span.present.all()
        torch.testing.assert_close(pa, model.span_prompt(span))  # the [SEG] branch adds exactly zero
    assert torch.nn.functional.cosine_similarity(pa[0], pb[0], dim=0) < 0.99  # the expression shows at step 0
    with pytest.raises(ValueError, match="span"):
        model.seg_prompts(torch.zeros(2, model.mllm.config.text_config.hidden_size))
    # a [SEG] without a phrase before it gets no span term
    none = SpanStates(torch.ones(1, span.states.shape[1]), torch.tensor([False]))
    assert model.span_prompt(none).abs().sum() == 0


def test_span_skip_is_saved_with_the_model_and_off_for_other_configs(tiny_config, tiny_model, tmp_path):
    model = build_from_config(_span_config(tiny_config, zero_init_llm_branch=False)).eval()
    model.save_pretrained(tmp_path / "ck")
    loaded = SVAC.from_pretrained(tmp_path / "ck")
    assert loaded.config.seg_prompt == SegPromptConfig(span_skip=True, zero_init_llm_branch=False)
    want, got = model.state_dict(), loaded.state_dict()
    assert any(k.startswith("span_prompt.") for k in want) and want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    video = np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    a, b = model.segment(video, "the red square"), loaded.segment(video, "the red square")
    assert np.array_equal(a.masks, b.masks)
    assert tiny_model.span_prompt is None and tiny_model.config.seg_prompt == SegPromptConfig()


def test_ablate_drops_one_prompt_term_and_needs_the_span_skip(tiny_config, tmp_path):
    from svac.errors import ConfigError
    from svac.loading import load_model

    model = build_from_config(_span_config(tiny_config, zero_init_llm_branch=False)).eval()
    model.save_pretrained(tmp_path / "ck")
    row = torch.tensor(model.tokenizer("<p>the red square</p>[SEG]")["input_ids"])
    positions = (row == model.seg_token_id).nonzero()[:, 0]
    hidden = torch.randn(len(positions), model.mllm.config.text_config.hidden_size, generator=torch.Generator().manual_seed(0))
    prompts = {}
    for ablate in ("none", "llm_branch", "span_skip"):
        loaded = load_model(tmp_path / "ck", overrides=[f"seg_prompt.ablate={ablate}"])
        assert loaded.config.seg_prompt.ablate == ablate
        with torch.no_grad():
            prompts[ablate] = loaded.seg_prompts(hidden, span_states(loaded, row, positions))
    with torch.no_grad():
        span_term = model.span_prompt(span_states(model, row, positions))
        seg_term = model.text_hidden_fcs(hidden)
    assert span_term.abs().sum() > 0 and seg_term.abs().sum() > 0
    torch.testing.assert_close(prompts["llm_branch"], span_term)
    torch.testing.assert_close(prompts["span_skip"], seg_term)
    torch.testing.assert_close(prompts["none"], span_term + seg_term)
    with pytest.raises(ConfigError, match="span skip"):
        build_from_config(dataclasses.replace(tiny_config, seg_prompt=SegPromptConfig(ablate="llm_branch")))
    with pytest.raises(ConfigError, match="ablate"):
        from_dict(SegPromptConfig, {"span_skip": True, "ablate": "both"})


def test_span_dropout_trains_rows_on_the_seg_branch_alone(tiny_config, samples):
    from svac.errors import ConfigError
    from svac.training.objective import SVACObjective

    model = build_from_config(_span_config(tiny_config, zero_init_llm_branch=False))
    builder = ExampleBuilder.for_model(model)
    batch = collate([builder.build(_video_with(samples, 2)[:2], FirstTemplates())], model.tokenizer.pad_token_id)
    with torch.no_grad():
        _, hidden = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values,
                                       image_index=batch.image_index)
        full = SVACObjective(model, LossConfig())._seg_prompts(batch, hidden, 0)
        dropped = SVACObjective(model, LossConfig(), span_dropout=1.0)._seg_prompts(batch, hidden, 0)
        kept = SVACObjective(model, LossConfig(), span_dropout=1.0).eval()._seg_prompts(batch, hidden, 0)
        states = torch.cat([hidden[r, (batch.input_ids[r] == model.seg_token_id).nonzero()[:, 0]]
                            for r in batch.rows_of(0)])
        branch = model.text_hidden_fcs(states)
        halves = [SVACObjective(model, LossConfig(), span_dropout=0.5, seed=s)._seg_prompts(batch, hidden, 0)
                  for s in range(12)]
    torch.testing.assert_close(dropped, branch)  # every row from the [SEG] branch alone
    torch.testing.assert_close(kept, full)  # eval mode never drops
    assert not torch.allclose(full, branch)
    rows = [[torch.allclose(h[i], branch[i]) for i in range(len(branch))] for h in halves]
    assert any(any(r) for r in rows) and any(not all(r) for r in rows)  # p = 0.5 drops some rows, not all
    with pytest.raises(ConfigError, match="span_dropout"):
        SVACObjective(build_from_config(tiny_config), LossConfig(), span_dropout=0.5)
    import svac

    base = {"init_from": str(Path(svac.__file__).parent / "default_model")}
    with pytest.raises(ConfigError, match="probability"):
        from_dict(TrainConfig, {**base, "span_dropout": 1.5})
    with pytest.raises(ConfigError, match="objective: clicks"):
        from_dict(TrainConfig, {**base, "span_dropout": 0.5, "objective": "clicks"})
    assert from_dict(TrainConfig, {**base, "span_dropout": 0.5}).span_dropout == 0.5


# ---------------------------------------------------------------- single-turn examples

def test_single_turn_examples_ask_every_expression_as_inference_does(tiny_config, samples):
    from svac.inference import encode_turns
    from svac.mllm.chat_template import Turn
    from svac.astc import plan_clips
    from svac.csa import seg_tokens

    model = build_from_config(_span_config(tiny_config))
    group = _video_with(samples, 3)[:3]
    example = ExampleBuilder.for_model(model).build(group, FirstTemplates())
    assert example.num_conversations == example.num_objects == 3
    plan = plan_clips(group[0].num_frames, model.config.astc)
    video_text = model.prompts.video_text(plan, model.tokens_per_image)
    for row, sample in enumerate(group):
        question = model.prompts.question(video_text, sample.expression)
        answer = model.prompts.answer(seg_tokens(plan.num_clips, model.config.csa), sample.expression)
        ids, start = encode_turns(model, [Turn(question, answer)])
        n = int(example.attention_mask[row].sum())
        assert example.input_ids[row, :n].tolist() == ids  # token for token the inference conversation
        assert (example.labels[row, :start] == IGNORE_INDEX).all() and (example.labels[row, start:n] != IGNORE_INDEX).all()
    multi = ExampleBuilder.for_model(model, conversation="multi_turn").build(group, FirstTemplates())
    assert multi.num_conversations == 1 and int((multi.input_ids == model.seg_token_id).sum()) == 3 * example.num_clips


def test_answer_phrase_dataset_restates_the_datasets_name_of_the_object(tiny_config, samples):
    """``data.answer_phrase: dataset``: the answer's <p>...</p> holds the dataset's phrase where it gives one."""
    from svac.astc import plan_clips
    from svac.csa import seg_tokens
    from svac.data.sample import ANSWER_PHRASE_KEY
    from svac.inference import encode_turns
    from svac.mllm.chat_template import Turn
    from svac.training.hooks import svac_example_builder

    model = build_from_config(_span_config(tiny_config))
    named = [s for s in samples if ANSWER_PHRASE_KEY in s.meta]
    plain = [s for s in samples if ANSWER_PHRASE_KEY not in s.meta]
    assert named and plain  # the synthetic benchmark names the objects of its video-only expressions
    builder = svac_example_builder(model, DataConfig(answer_phrase="dataset"))
    assert builder.answer_phrase == "dataset"
    for sample in (named[0], plain[0]):
        plan = plan_clips(sample.num_frames, model.config.astc)
        question = model.prompts.question(model.prompts.video_text(plan, model.tokens_per_image), sample.expression)
        seg = seg_tokens(plan.num_clips, model.config.csa)
        for mode, phrase in (("dataset", sample.meta.get(ANSWER_PHRASE_KEY, sample.expression)),
                             ("expression", sample.expression)):
            example = ExampleBuilder.for_model(model, answer_phrase=mode).build([sample], FirstTemplates())
            ids, _ = encode_turns(model, [Turn(question, model.prompts.answer(seg, phrase))])
            assert example.input_ids[0, :int(example.attention_mask[0].sum())].tolist() == ids, (mode, phrase)
    assert named[0].meta[ANSWER_PHRASE_KEY] != named[0].expression
    broken = dataclasses.replace(named[0], meta={**named[0].meta, ANSWER_PHRASE_KEY: "  "})
    with pytest.raises(ValueError, match="answer_phrase"):
        builder.build([broken], FirstTemplates())


def test_an_answer_only_objective_never_runs_sam2(tiny_config, samples, monkeypatch):
    """Mask terms and the contrast off: the answer's cross-entropy alone, SAM-2's encoder never called."""
    from svac.training.objective import SVACObjective

    model = build_from_config(_span_config(tiny_config))
    batch = collate([ExampleBuilder.for_model(model).build(_video_with(samples, 2)[:2], FirstTemplates())],
                    model.tokenizer.pad_token_id)

    def refuse(*args, **kwargs):
        raise AssertionError("SAM-2 encoded frames nobody uses")

    monkeypatch.setattr(model.grounding, "encode_frames", refuse)
    out = SVACObjective(model, LossConfig(ce=1.0, bce=0.0, dice=0.0, presence=0.0))(batch)
    assert out.ce.item() > 0 and out.loss.item() == pytest.approx(out.ce.item())
    with pytest.raises(AssertionError, match="nobody uses"):  # the contrast does read SAM-2's features
        SVACObjective(model, LossConfig(ce=1.0, bce=0.0, dice=0.0, presence=0.0, prompt_contrast=1.0))(batch)


def test_text_only_examples_ask_without_the_video_and_train_the_answer(tiny_config, samples, monkeypatch):
    """``data.frames: none``: inference's conversation minus the video, one [SEG] per clip of a T-frame video;
    the answer's cross-entropy trains with no image and no SAM-2 call."""
    from svac.astc import plan_clips
    from svac.csa import seg_tokens
    from svac.inference import encode_turns
    from svac.mllm.chat_template import Turn
    from svac.training.objective import SVACObjective

    model = build_from_config(_span_config(tiny_config))
    group = _video_with(samples, 2)[:2]
    example = ExampleBuilder.for_model(model, frames="none").build(group, FirstTemplates())
    assert example.pixel_values.shape[0] == 0 and example.sam_frames.shape[0] == 0 and example.masks.shape[:2] == (2, 0)
    clips = plan_clips(model.config.astc.num_frames, model.config.astc).num_clips
    assert example.num_clips == clips >= 2
    for row, sample in enumerate(group):
        turn = Turn(model.prompts.question("", sample.expression),
                    model.prompts.answer(seg_tokens(clips, model.config.csa), sample.expression))
        ids, start = encode_turns(model, [turn])
        n = int(example.attention_mask[row].sum())
        assert example.input_ids[row, :n].tolist() == ids and model.mllm.config.image_token_id not in ids
        assert (example.labels[row, :start] == IGNORE_INDEX).all() and (example.labels[row, start:n] != IGNORE_INDEX).all()

    def refuse(*args, **kwargs):
        raise AssertionError("no image and no frame to encode")

    monkeypatch.setattr(model.grounding, "encode_frames", refuse)
    monkeypatch.setattr(model.mllm, "get_image_features", refuse)
    batch = collate([example], model.tokenizer.pad_token_id)
    out = SVACObjective(model, LossConfig(ce=1.0, bce=0.0, dice=0.0, presence=0.0))(batch)
    out.loss.backward()
    layer = model.mllm.model.language_model.layers[0].self_attn.q_proj.weight
    assert out.ce.item() > 0 and layer.grad is not None and layer.grad.abs().sum() > 0
    with torch.no_grad():  # no images at all: the same pass
        _, without = model.mllm_forward(batch.input_ids, batch.attention_mask, None)
        _, empty = model.mllm_forward(batch.input_ids, batch.attention_mask, batch.pixel_values)
    assert torch.equal(without, empty)


def test_text_only_training_refuses_mask_terms(tiny_config):
    from svac.errors import ConfigError

    base = {"model": tiny_config.to_dict(), "data": {"frames": "none"}, "loss": {"bce": 0.0, "dice": 0.0,
                                                                                   "presence": 0.0}}
    assert from_dict(TrainConfig, base).data.frames == "none"
    with pytest.raises(ConfigError, match="loss.dice"):
        from_dict(TrainConfig, {**base, "loss": {"bce": 0.0, "presence": 0.0}})
    with pytest.raises(ConfigError, match="objective: clicks"):
        from_dict(TrainConfig, {**base, "objective": "clicks"})


def test_llm_blocks_leave_the_embeddings_the_span_path_reads(tiny_config):
    model = build_from_config(_span_config(tiny_config))
    summary = configure_trainable(model, ["llm_blocks"])
    lm = model.mllm.model.language_model
    assert not model.mllm.get_input_embeddings().weight.requires_grad
    assert all(p.requires_grad for p in lm.layers.parameters()) and all(p.requires_grad for p in lm.norm.parameters())
    embeddings = model.mllm.get_input_embeddings().weight.numel()
    assert summary.parts["llm_blocks"] == sum(p.numel() for p in lm.parameters()) - embeddings


def test_single_frame_examples_are_one_frame_videos(tiny_config, samples):
    model = build_from_config(_span_config(tiny_config))
    group = _video_with(samples, 2)[:2]
    rng = np.random.default_rng(1)
    example = ExampleBuilder.for_model(model, frames="single_frame").build(group, rng)
    chosen = int(np.random.default_rng(1).integers(group[0].num_frames))
    assert example.num_clips == 1 and example.sam_frames.shape[0] == 1 and example.pixel_values.shape[0] == 2
    assert int((example.input_ids[0] == model.seg_token_id).sum()) == 1
    gt = torch.from_numpy(group[1].load_masks([chosen])[0]).float()[None, None]
    size = model.sam2_image_size
    gt = torch.nn.functional.interpolate(gt, size=(size, size), mode="bilinear", antialias=True)[0, 0] > 0.5
    assert torch.equal(example.masks[1, 0], gt)


# ---------------------------------------------------------------- the turn-index shortcut is gone

def _recipe(cfg_name, model_config, root, out, **extra):
    stage = load_train_config(cfg_name).to_dict()
    start = {"init_from": extra.pop("init_from")} if "init_from" in extra else {"model": model_config.to_dict()}
    data = {**start, "lora": stage["lora"], "trainable": stage["trainable"],
            "loss": stage["loss"], "optim": {**stage["optim"], "warmup_ratio": 0.0},
            "data": {**stage["data"], "train": [f"rvos:{root}"]}, "objective": stage["objective"],
            "output_dir": str(out), "batch_size": 2, "grad_accum": 1, "max_steps": 4, "precision": "fp32",
            "log_every": 1, "save_every": 4, "seed": 0, **extra}
    return from_dict(TrainConfig, data)


def test_prompts_follow_the_expression_not_the_turn_after_a_few_updates(tiny_config, synth_root, samples, tmp_path):
    """The default recipe's image and video stages, 4 updates each, on a tiny model (the issue's shortcut test).

    Prompts of one expression asked at turn 0 (as inference asks) and at turn 3 of a multi-turn chat
    about the same video stay close; prompts of different expressions of one video differ. Main's
    recipe before this change (multi-turn training with prompt_separation, no span path) fails both:
    its prompts encode the turn, and all expressions asked at turn 0 get one prompt.
    """
    stage = load_train_config(MODEL_STAGE)
    config = dataclasses.replace(tiny_config, mllm=dataclasses.replace(tiny_config.mllm, text={
        **tiny_config.mllm.text, **{k: v for k, v in stage.model.mllm.text.items() if k != "hidden_size"}}),
        seg_prompt=stage.model.seg_prompt)
    config = dataclasses.replace(config, astc=dataclasses.replace(config.astc, num_frames=6, clip_len=3))
    finetune.run(_recipe(IMAGE_STAGE, config, synth_root, tmp_path / "image"), progress=False)
    finetune.run(_recipe(STAGES[3], config, synth_root, tmp_path / "video", init_from=str(tmp_path / "image/model")),
                 progress=False)
    from svac.loading import load_model

    model = load_model(str(tmp_path / "video/model"), device="cpu")
    assert model.text_hidden_fcs[2].weight.abs().sum() > 0  # the [SEG] branch has started to learn
    group = _video_with(samples, 4)[:4]
    single = ExampleBuilder.for_model(model)
    multi = ExampleBuilder.for_model(model, conversation="multi_turn")
    cos = torch.nn.functional.cosine_similarity
    n = single.build([group[0]], FirstTemplates()).num_clips
    same_turns, different = [], []
    for k in range(len(group)):
        first = _prompts(model, single.build([group[k]], FirstTemplates()))
        order = [g for g in group if g is not group[k]][:3] + [group[k]]  # expression k asked at turn 3
        later = _prompts(model, multi.build(order, FirstTemplates()))[-n:]
        same_turns.append(float(cos(first, later, dim=-1).mean()))
        for j in range(k):
            if group[j].object_ids != group[k].object_ids and group[j].expression != group[k].expression:
                other = _prompts(model, single.build([group[j]], FirstTemplates()))
                different.append(float(cos(first, other, dim=-1).mean()))
    assert min(same_turns) > 0.95, same_turns
    assert different and max(different) < 0.95, different


# ---------------------------------------------------------------- promptable (click) stage

def test_oracle_prompts_are_a_click_inside_each_mask_and_a_padding_point():
    from svac.training.frame_objectives import NO_POINT, POSITIVE_CLICK, oracle_prompts

    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[0, 2:5, 10:13] = True
    masks[2, 8:12, 1:3] = True
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(30):
        p = oracle_prompts(masks, gen)
        assert p["point_labels"].tolist() == [[POSITIVE_CLICK, NO_POINT], [NO_POINT, NO_POINT], [POSITIVE_CLICK, NO_POINT]]
        for j in (0, 2):
            x, y = p["point_coords"][j, 0].tolist()
            assert masks[j, int(y), int(x)]
            seen.add((j, x, y))
    assert len(seen) > 10  # the click is drawn anew each time


def test_click_stage_trains_sam2_alone_and_a_finished_stage_resumes_as_a_no_op(tiny_config, synth_root, tmp_path):
    config = _span_config(tiny_config)
    cfg = _recipe(IMAGE_STAGE, config, synth_root, tmp_path / "clicks", max_steps=2, save_every=1, objective="clicks",
                  trainable=["sam2_mask_decoder", "sam2_prompt_encoder"], data={
                      "train": [f"rvos:{synth_root}"], "frames": "single_frame", "expressions_per_video": 2})
    result = finetune.run(cfg, progress=False)
    assert result.steps == 2 and set(result.history[-1]) >= {"bce", "dice", "presence", "seconds", "cpu_seconds"}
    from svac.loading import load_model

    before = build_from_config(config).state_dict()
    after = load_model(str(tmp_path / "clicks/model"), device="cpu").state_dict()
    changed = {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"sam_mask_decoder", "sam_prompt_encoder"}  # the MLLM and the span path are saved unchanged
    again = finetune.run(cfg, resume=True, progress=False)  # a chain of stages reruns with --resume
    assert again.steps == 2 and again.wall_seconds == 0.0


def test_correction_clicks_are_drawn_from_the_error_with_its_sign():
    from svac.training.frame_objectives import NEGATIVE_CLICK, NO_POINT, POSITIVE_CLICK, correction_clicks

    targets = torch.zeros(3, 16, 16, dtype=torch.bool)
    targets[0, 2:6, 2:6] = True     # object 0: half missed, plus a false positive elsewhere
    targets[1, 8:12, 8:12] = True   # object 1: predicted exactly
    predicted = torch.zeros_like(targets)
    predicted[0, 2:6, 2:4] = True
    predicted[0, 12:14, 12:14] = True
    predicted[1] = targets[1]       # object 2: nothing to find, nothing predicted
    gen = torch.Generator().manual_seed(0)
    labels_seen = set()
    for _ in range(60):
        p = correction_clicks(predicted, targets, gen)
        (x0, y0), (x1, y1) = p["point_coords"][0, 0].tolist(), p["point_coords"][1, 0].tolist()
        label = int(p["point_labels"][0, 0])
        labels_seen.add(label)
        assert predicted[0, int(y0), int(x0)] != targets[0, int(y0), int(x0)]  # on the error
        assert label == (POSITIVE_CLICK if targets[0, int(y0), int(x0)] else NEGATIVE_CLICK)
        assert int(p["point_labels"][1, 0]) == POSITIVE_CLICK and targets[1, int(y1), int(x1)]  # no error: inside
        assert int(p["point_labels"][2, 0]) == NO_POINT
    assert labels_seen == {POSITIVE_CLICK, NEGATIVE_CLICK}


def test_missed_only_rows_get_a_positive_click_on_the_missed_pixels_and_the_other_rows_are_drawn_as_before():
    from svac.training.frame_objectives import NEGATIVE_CLICK, POSITIVE_CLICK, correction_clicks

    targets = torch.zeros(4, 16, 16, dtype=torch.bool)
    targets[:2, 2:6, 2:6] = True     # rows 0, 1: half missed, and a larger false positive elsewhere
    targets[2, 8:12, 8:12] = True    # row 2: covered, plus a false positive
    predicted = torch.zeros_like(targets)
    predicted[:2, 2:6, 2:4] = True
    predicted[:2, 9:15, 9:15] = True
    predicted[2, 7:13, 7:13] = True
    predicted[3, 0:3, 0:3] = True    # row 3: no target on the frame, a false positive
    only = torch.tensor([True, False, True, True])
    plain_gen, missed_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    labels_seen = set()
    for _ in range(40):
        plain = correction_clicks(predicted, targets, plain_gen)
        missed = correction_clicks(predicted, targets, missed_gen, missed_only=only)
        (x0, y0), (x2, y2) = missed["point_coords"][0, 0].tolist(), missed["point_coords"][2, 0].tolist()
        assert int(missed["point_labels"][0, 0]) == POSITIVE_CLICK
        assert targets[0, int(y0), int(x0)] and not predicted[0, int(y0), int(x0)]  # a missed pixel
        assert int(missed["point_labels"][2, 0]) == POSITIVE_CLICK and targets[2, int(y2), int(x2)]  # none missed
        assert int(missed["point_labels"][3, 0]) == NEGATIVE_CLICK  # no target: the error, as without the flag
        assert torch.equal(missed["point_coords"][1], plain["point_coords"][1])  # unflagged: the same draw
        assert torch.equal(missed["point_labels"][1], plain["point_labels"][1])
        labels_seen.add(int(plain["point_labels"][0, 0]))
    assert labels_seen == {POSITIVE_CLICK, NEGATIVE_CLICK}  # the same row unflagged gets negative clicks too
    assert torch.equal(plain_gen.get_state(), missed_gen.get_state())  # as many draws either way
    none = correction_clicks(predicted, targets, torch.Generator().manual_seed(1), missed_only=torch.zeros(4).bool())
    assert {k: v.tolist() for k, v in none.items()} == {
        k: v.tolist() for k, v in correction_clicks(predicted, targets, torch.Generator().manual_seed(1)).items()}
    with pytest.raises(ValueError, match="missed_only"):
        correction_clicks(predicted, targets, plain_gen, missed_only=torch.ones(3, dtype=torch.bool))


def test_box_prompts_are_each_objects_box_jittered_within_the_noise():
    from svac.training.frame_objectives import NO_POINT, box_prompts

    masks = torch.zeros(3, 32, 32, dtype=torch.bool)
    masks[0, 4:10, 20:30] = True   # rows 4-9, columns 20-29: box (20, 4)-(30, 10)
    masks[1, 0:2, 0:1] = True      # a sliver in the corner (clipping)
    gen = torch.Generator().manual_seed(0)
    exact = box_prompts(masks, 0.0, gen)
    assert exact["point_coords"][0].tolist() == [[20.0, 4.0], [30.0, 10.0]]
    assert exact["point_labels"][0].tolist() == [2, 3] and exact["point_labels"][2].tolist() == [NO_POINT, NO_POINT]
    shifts = []
    for _ in range(50):
        p = box_prompts(masks, 0.2, gen)
        (x0, y0), (x1, y1) = p["point_coords"][0].tolist()
        assert abs(x0 - 20) <= 0.2 * 10 + 1e-6 and abs(x1 - 30) <= 0.2 * 10 + 1e-6  # within 0.2 of the width
        assert abs(y0 - 4) <= 0.2 * 6 + 1e-6 and abs(y1 - 10) <= 0.2 * 6 + 1e-6     # and of the height
        corner = p["point_coords"][1]
        assert (corner >= 0).all() and (corner <= 32).all() and (corner[0] <= corner[1]).all()  # clipped, ordered
        shifts.append(x0 - 20)
    assert np.std(shifts) > 0.3  # the noise is used


def test_box_passes_prompt_sam2_with_the_targets_box_with_and_without_the_seg_prompt(
        tiny_config, synth_root, tmp_path, monkeypatch):
    """Pass 5 decodes the box beside the [SEG] prompt with pass 1's logits (a box correction), pass 6 the box alone."""
    from svac.grounding.sam2_model import TEXT_PROMPT_KEY, LanguagePromptedSAM2

    calls = []
    track_step = LanguagePromptedSAM2.track_step

    def recording(self, *args, **kwargs):
        points = kwargs["point_inputs"]
        calls.append((set(points["point_labels"].flatten().tolist()), TEXT_PROMPT_KEY in points,
                      kwargs["prev_sam_mask_logits"] is not None))
        return track_step(self, *args, **kwargs)

    monkeypatch.setattr(LanguagePromptedSAM2, "track_step", recording)
    cfg = _recipe("train/svac_default_4_clicks.yaml", _span_config(tiny_config), synth_root, tmp_path / "box",
                  max_steps=1, save_every=1,
                  corrections={"wrong_prompt": 0.5, "later_frame": False, "clicks_alone": 0.0,
                               "box_correction": 1.0, "boxes_alone": 1.0},
                  data={"train": [f"rvos:{synth_root}"], "frames": "single_frame", "expressions_per_video": 2})
    result = finetune.run(cfg, progress=False)
    assert result.history[-1]["box_correction"] > 0 and result.history[-1]["boxes_alone"] > 0
    assert len(calls) == 4  # referring, click correction, box correction, box alone
    referring, click, box, alone = calls
    assert referring[1:] == (True, False)                  # the [SEG] prompt alone
    assert {2, 3} <= box[0] and box[1:] == (True, True)       # the box, the [SEG] prompt, the previous logits
    assert {2, 3} <= alone[0] and alone[1:] == (False, False)  # the box only
    assert not {2, 3} & click[0]


@pytest.mark.parametrize("later_frame", [False, True])
def test_corrections_stage_trains_sam2_on_referring_and_clicks_and_saves_the_rest_unchanged(
        tiny_config, synth_root, tmp_path, later_frame):
    config = _span_config(tiny_config)
    frames = "video" if later_frame else "single_frame"
    cfg = _recipe("train/svac_default_4_clicks.yaml", config, synth_root, tmp_path / "corr", max_steps=2,
                  save_every=1, corrections={"wrong_prompt": 1.0, "later_frame": later_frame, "propagation": 1.0,
                                             "clicks_alone": 1.0},
                  trainable=["sam2_mask_decoder", "sam2_prompt_encoder"] + (["sam2_memory"] if later_frame else []),
                  data={"train": [f"rvos:{synth_root}"], "frames": frames, "expressions_per_video": 2})
    assert cfg.objective == "corrections"
    result = finetune.run(cfg, progress=False)
    last = result.history[-1]
    assert result.steps == 2 and all(last[k] > 0 for k in ("referring", "correction", "clicks_alone"))
    assert (last["propagation"] > 0) == later_frame
    from svac.loading import load_model

    before = build_from_config(config).state_dict()
    after = load_model(str(tmp_path / "corr/model"), device="cpu").state_dict()
    changed = {k.split(".")[1] for k in before
               if k.startswith("grounding.") and not torch.equal(before[k], after[k])}
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("grounding."))  # MLLM, span path
    assert {"sam_mask_decoder", "sam_prompt_encoder"} <= changed and "image_encoder" not in changed
    assert ({"memory_attention", "memory_encoder"} <= changed) == later_frame
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="corrections.wrong_prompt"):
        load_train_config("train/svac_default_4_clicks.yaml", ["corrections.wrong_prompt=1.5"])


def test_missed_wrong_prompt_clicks_are_positive_on_wrong_prompt_rows_and_unchanged_on_own_prompt_rows(
        tiny_config, samples, monkeypatch):
    """corrections.wrong_prompt_clicks: ``missed`` clicks the target's missed pixels on the rows prompted with
    another expression's [SEG]; the rows with their own prompt get the clicks ``error`` gives them, and with no
    wrong prompt the two settings give the same losses step after step."""
    from svac.errors import ConfigError
    from svac.training import frame_objectives
    from svac.training.config import CorrectionConfig
    from svac.training.data import VideoExpressionDataset
    from svac.training.frame_objectives import NEGATIVE_CLICK, POSITIVE_CLICK, CorrectionObjective

    torch.manual_seed(0)
    model = build_from_config(_span_config(tiny_config)).eval()
    ds = VideoExpressionDataset(samples, ExampleBuilder.for_model(model), expressions_per_video=3, seed=0)
    batches = [collate([ds[i], ds[i + 1]], model.tokenizer.pad_token_id) for i in (0, 2)]
    calls = []
    pairing, clicks = frame_objectives.prompt_pairing, frame_objectives.correction_clicks
    monkeypatch.setattr(frame_objectives, "prompt_pairing", lambda *a: calls.append(pairing(*a)) or calls[-1])
    covering = lambda p: torch.ones_like(p)  # pass 1 as a model sure of the wrong object: the whole frame
    monkeypatch.setattr(frame_objectives, "correction_clicks", lambda p, t, g, **kw: calls.append(
        (covering(p), t, clicks(covering(p), t, g, **kw))) or calls[-1][2])

    def run(steps, **options):
        calls.clear()
        objective = CorrectionObjective(model, LossConfig(), CorrectionConfig(later_frame=False, **options), seed=1)
        with torch.no_grad():
            losses = [objective(batch) for batch in steps]
        pairs, (predicted, target, drawn) = calls[:2], calls[2]  # the first step's
        return losses, [j != k for pair in pairs for j, k in enumerate(pair)], predicted, target, drawn

    _, wrong, predicted, target, error = run(batches[:1], wrong_prompt=0.5)
    _, wrong_missed, _, _, missed = run(batches[:1], wrong_prompt=0.5, wrong_prompt_clicks="missed")
    assert wrong_missed == wrong and any(wrong) and not all(wrong)
    negative = 0  # wrong-prompt rows that "error" clicks negatively
    for j, is_wrong in enumerate(wrong):
        (x, y), label = missed["point_coords"][j, 0].long().tolist(), int(missed["point_labels"][j, 0])
        if is_wrong and target[j].any():
            region = target[j] & ~predicted[j] if (target[j] & ~predicted[j]).any() else target[j]
            assert label == POSITIVE_CLICK and region[y, x]
            negative += int(error["point_labels"][j, 0]) == NEGATIVE_CLICK
        elif not is_wrong:
            assert torch.equal(missed["point_coords"][j], error["point_coords"][j])
            assert int(error["point_labels"][j, 0]) == label
    assert negative  # what "missed" changes
    same, other = run(batches, wrong_prompt=0.0)[0], run(batches, wrong_prompt=0.0, wrong_prompt_clicks="missed")[0]
    for a, b in zip(same, other):  # no wrong prompt: the same draws, the same losses, step after step
        assert all(torch.equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    assert load_train_config("train/svac_default_4_clicks.yaml",
                             ["corrections.wrong_prompt_clicks=missed"]).corrections.wrong_prompt_clicks == "missed"
    assert CorrectionConfig().wrong_prompt_clicks == "error"
    with pytest.raises(ConfigError, match="corrections.wrong_prompt_clicks"):
        load_train_config("train/svac_default_4_clicks.yaml", ["corrections.wrong_prompt_clicks=sometimes"])
    with pytest.raises(ConfigError, match="corrections.wrong_prompt_clicks"):
        CorrectionConfig(wrong_prompt_clicks="positive")


def test_tracking_stage_decodes_frames_after_a_correction_from_memory_alone_and_trains_sam2_only(
        tiny_config, synth_root, tmp_path, monkeypatch):
    """objective: tracking (configs/train/tracking_from_memory.yaml): SVAC's schedule, a correction (clicks beside the
    [SEG] prompt) on one sampled frame, then the frames after it decoded with no prompt; only SAM-2's decoder, prompt
    encoder and memory move."""
    from svac.grounding.sam2_model import TEXT_PROMPT_KEY, LanguagePromptedSAM2

    config = _span_config(tiny_config)
    cfg = _recipe("train/tracking_from_memory.yaml", config, synth_root, tmp_path / "track", max_steps=2,
                  save_every=1, tracking={"wrong_prompt": 1.0},
                  data={"train": [f"rvos:{synth_root}"], "frames": "video", "expressions_per_video": 2})
    assert cfg.objective == "tracking"
    calls = []  # per SAM-2 step: (frame, kind of prompt)
    original = LanguagePromptedSAM2.track_step

    def spy(self, frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds, feat_sizes,
            point_inputs, *args, **kwargs):
        kind = ("none" if point_inputs is None else
                "clicks" if (point_inputs["point_labels"] >= 0).any() else
                "seg" if TEXT_PROMPT_KEY in point_inputs else "padding")
        calls.append((frame_idx, kind))
        return original(self, frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds,
                        feat_sizes, point_inputs, *args, **kwargs)

    monkeypatch.setattr(LanguagePromptedSAM2, "track_step", spy)
    result = finetune.run(cfg, progress=False)
    monkeypatch.undo()
    last = result.history[-1]
    assert result.steps == 2 and all(last[k] > 0 for k in ("referring", "correction", "tracking"))
    t = config.astc.num_frames
    anchors = set(range(0, t, config.astc.clip_len))
    starts = [n for n, call in enumerate(calls) if call == (0, "seg")]  # each group's pass 1 opens with frame 0
    first_step = calls[:starts[1]]
    assert [k for _, k in first_step[:t]] == ["seg"] * t  # pass 1: every frame with its clip's [SEG]
    c, kind = first_step[t]
    assert kind == "clicks" and 1 <= c <= t - 2  # pass 2: the correction, clicks beside the [SEG] prompt
    assert first_step[t + 1:] == [(f, "none") for f in range(c + 1, t) if f not in anchors]  # pass 3: memory alone
    from svac.loading import load_model

    before = build_from_config(config).state_dict()
    after = load_model(str(tmp_path / "track/model"), device="cpu").state_dict()
    changed = {k.split(".")[1] for k in before if k.startswith("grounding.") and not torch.equal(before[k], after[k])}
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("grounding."))  # MLLM, span path
    assert {"sam_mask_decoder", "memory_attention", "memory_encoder"} <= changed and "image_encoder" not in changed
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="tracking.wrong_prompt"):
        load_train_config("train/tracking_from_memory.yaml", ["tracking.wrong_prompt=-0.1"])


def test_span_grounding_stage_trains_the_span_path_and_sam2_from_static_expressions(tiny_config, synth_root,
                                                                                     tmp_path, samples):
    config = _span_config(tiny_config)
    cfg = _recipe(IMAGE_STAGE, config, synth_root, tmp_path / "span", max_steps=2, save_every=2)
    dataset, _ = finetune.training_data(cfg, build_from_config(config), samples)
    static = {"color", "shape", "size", "position"}
    assert all(set(s.meta["families"]) <= static for group in dataset.videos for s in group)
    assert sum(len(g) for g in dataset.videos) < len(samples)  # the other expressions are left out
    finetune.run(cfg, progress=False)
    from svac.loading import load_model

    before = build_from_config(config).state_dict()
    after = load_model(str(tmp_path / "span/model"), device="cpu").state_dict()
    changed = {".".join(k.split(".")[:2]) for k in before if not torch.equal(before[k], after[k])}
    trained = {"span_prompt.norm", "span_prompt.proj", "grounding.sam_mask_decoder", "grounding.sam_prompt_encoder"}
    assert {"span_prompt.proj", "grounding.sam_mask_decoder"} <= changed <= trained  # no MLLM weight moved
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="span_layer"):
        finetune.run(_recipe(IMAGE_STAGE, _span_config(tiny_config, span_layer="last"), synth_root, tmp_path / "last"),
                     progress=False)
    with pytest.raises(ConfigError, match="families"):
        finetune.select_families([dataclasses.replace(samples[0], meta={})], ["color"])
    with pytest.raises(ConfigError, match="span skip path"):
        configure_trainable(build_from_config(tiny_config), ["span_prompt"])


def test_the_default_recipe_stages_chain_and_fix_the_shortcut():
    cfgs = [load_train_config(name) for name in STAGES]
    # stage 0 builds the model and pretrains SAM-2's image encoder on object attributes, with distillation
    assert cfgs[0].objective == "encoder_pretraining" and cfgs[0].init_from is None
    assert cfgs[0].model.seg_prompt.span_skip and cfgs[0].encoder_pretraining.distill > 0
    assert set(cfgs[0].trainable) == {"sam2_image_encoder", "sam2_high_res_convs"}
    assert "initializer_range" not in cfgs[0].model.mllm.text  # the LLM starts at transformers' 0.02
    for before, after in zip(cfgs, cfgs[1:]):
        assert after.model is None and after.init_from == f"{before.output_dir}/model"
    assert [c.objective for c in cfgs] == ["encoder_pretraining", "span_grounding", "span_grounding", "referring",
                                           "corrections", "referring"]
    for cfg in cfgs:
        assert cfg.data.conversation == "single_turn" and cfg.loss.prompt_separation == 0.0
        assert "vision_encoder" not in cfg.trainable  # the MLLM's random vision features stay intact
    # after stage 0, SAM-2's image encoder trains only in stage 2, once the span prompt already names one object
    assert ["sam2_image_encoder" in c.trainable for c in cfgs] == [True, False, True, False, False, False]
    assert cfgs[2].optim.lr < cfgs[1].optim.lr
    assert [c.data.frames for c in cfgs] == ["single_frame", "single_frame", "single_frame", "video", "single_frame",
                                             "video"]
    # the click stage and the video refresh after it train SAM-2's decoder and prompt encoder alone
    assert [set(c.trainable) for c in cfgs[4:]] == [{"sam2_mask_decoder", "sam2_prompt_encoder"}] * 2
    assert cfgs[4].corrections.wrong_prompt > 0 and not cfgs[4].corrections.later_frame
    assert DataConfig().conversation == "single_turn"


@pytest.mark.parametrize("layer", ["input", "last"])
def test_generated_and_template_answers_give_the_same_span_prompts(tiny_config, small_video, monkeypatch, layer):
    from helpers import scripted_generate

    from svac.inference import answer_by_generation, answer_with_template, prepare_video
    from svac.mllm.chat_template import Turn
    from svac.mllm.prompt_text import encode_prompt

    model = build_from_config(_span_config(tiny_config, span_layer=layer, zero_init_llm_branch=False)).eval()
    prepared = prepare_video(model, small_video)
    question = model.prompts.question(prepared.video_text, "the red square")
    answer = model.prompts.answer("[SEG]" * prepared.plan.num_clips, "the red square")
    tokens = encode_prompt(model.tokenizer, answer + model.chat_template.assistant_suffix)
    monkeypatch.setattr(model.mllm, "generate", scripted_generate(model.mllm, tokens))
    with torch.inference_mode():
        forced = answer_with_template(model, prepared, [Turn(question, answer)])
        generated = answer_by_generation(model, prepared, [Turn(question)])
        assert forced.seg_span.present.all() and forced.seg_span.states.shape[0] == prepared.plan.num_clips
        torch.testing.assert_close(generated.seg_span.states, forced.seg_span.states, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.seg_prompts(generated.seg_hidden, generated.seg_span),
                                   model.seg_prompts(forced.seg_hidden, forced.seg_span), rtol=1e-4, atol=1e-5)
