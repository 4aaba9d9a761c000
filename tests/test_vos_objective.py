"""objective: vos -- SAM 2's semi-supervised VOS through memory (a mask on the first visible frame, the rest
from memory alone), beside SVAC's referring objective."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from svac.loading import build_from_config
from svac.training.config import LossConfig, VOSConfig, load_train_config
from svac.training.data import ExampleBuilder, VideoExpressionDataset, collate
from svac.training.params import configure_trainable
from svac.training.vos_objective import VOSObjective, VOSTrack, vos_tracks


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    from svac.data.synthetic import write_benchmark

    root = tmp_path_factory.mktemp("synth") / "bench"
    write_benchmark(root, videos=3, seed=5, num_frames=(12, 14), size=(64, 64),
                    progress=False)
    return root


@pytest.fixture
def vos_setup(tiny_config, synth_root):
    """A tiny model (SAM-2 memory and decoder trainable) and a batch of two videos with 3 expressions each."""
    from svac.data.readers import load_dataset

    config = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))
    model = build_from_config(config).train()
    configure_trainable(model, ["sam2_memory", "sam2_mask_decoder"])
    samples = list(load_dataset(f"rvos:{synth_root}", "train"))
    ds = VideoExpressionDataset(samples, ExampleBuilder.for_model(model), expressions_per_video=3, seed=0)
    return model, collate([ds[0], ds[1]], model.tokenizer.pad_token_id)


def _example(masks: torch.Tensor, object_ids: tuple) -> object:
    """The fields vos_tracks reads of a training example."""
    return type("E", (), {"masks": masks, "object_ids": object_ids, "num_objects": masks.shape[0]})()


def test_tracks_are_distinct_visible_targets_starting_where_each_first_appears():
    masks = torch.zeros(4, 5, 8, 8, dtype=torch.bool)
    masks[0, 1:, 2, 2] = True  # first visible on frame 1
    masks[1, :, 5, 5] = True  # object 7, frame 0 ...
    masks[2, :, 5, 5] = True  # ... named again by another expression: the same target
    masks[3, 4, 0, 0] = True  # visible on the last frame only: nothing to track
    tracks = vos_tracks([_example(masks, ((3,), (7,), (7,), (9,)))], 4, torch.Generator().manual_seed(0))
    assert tracks == [VOSTrack(example=0, row=0, start=1, prompt_row=0), VOSTrack(example=0, row=1, start=0, prompt_row=1)]
    assert len(vos_tracks([_example(masks, ((3,), (7,), (7,), (9,)))], 1, torch.Generator())) == 1


def test_vos_config_rejects_bad_values_naming_the_key():
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="vos.max_objects"):
        VOSConfig(max_objects=0)
    with pytest.raises(ConfigError, match="vos.referring"):
        VOSConfig(referring=-1.0)
    assert load_train_config("vos_memory_1_masks.yaml").vos.max_frames == 1
    assert load_train_config("vos_memory_2_referring.yaml").vos.referring == 1.0


def test_only_the_first_frame_of_a_track_is_prompted_with_its_ground_truth_mask(vos_setup, monkeypatch):
    model, batch = vos_setup
    sam = model.grounding
    calls = []
    original = type(sam).track_step

    def recording(self, frame_idx, is_init_cond_frame, *args, **kwargs):
        calls.append((frame_idx, is_init_cond_frame, kwargs["point_inputs"], kwargs["mask_inputs"]))
        return original(self, frame_idx, is_init_cond_frame, *args, **kwargs)

    monkeypatch.setattr(type(sam), "track_step", recording)
    objective = VOSObjective(model, LossConfig(), VOSConfig(referring=0.0))
    tracks = vos_tracks(batch.examples, 4, torch.Generator().manual_seed(0))
    objective.track_from_masks(batch.examples, tracks, objective._encode_videos(batch.examples))
    prompted = [c for c in calls if c[3] is not None]
    assert prompted and all(c[0] == 0 and c[1] and c[2] is None for c in prompted)
    assert all(c[2] is None and not c[1] for c in calls if c[3] is None)  # later frames: no prompt at all
    lengths = {batch.examples[tr.example].masks.shape[1] - tr.start for tr in tracks}  # one SAM-2 batch per length
    assert len(prompted) == len(lengths) and len(calls) == sum(lengths)
    first = prompted[0][3]  # the ground-truth masks of the first group, as SAM-2 mask prompts
    assert first.shape[1] == 1 and set(first.unique().tolist()) <= {0.0, 1.0} and first.sum() > 0


def test_objects_of_one_video_get_different_memories_from_their_masks(vos_setup, monkeypatch):
    model, batch = vos_setup
    sam = model.grounding.eval()  # no dropout: equal memories must give equal outputs
    seen = []
    handle = sam.memory_attention.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    objective = VOSObjective(model, LossConfig(), VOSConfig(referring=0.0))
    example = batch.examples[0]
    start = int(example.masks.flatten(2).any(-1).all(0).nonzero()[0])  # a frame where every target is visible
    distinct = [VOSTrack(example=0, row=k, start=start, prompt_row=k) for k in range(2)]
    assert not torch.equal(example.masks[0, start], example.masks[1, start])
    feats = objective._encode_videos(batch.examples)
    with torch.no_grad():
        objective.track_from_masks(batch.examples, distinct, feats)
        after_distinct = seen[0]  # (h*w, 2, C): frame start+1, the same image, two memories
        seen.clear()
        objective.track_from_masks(batch.examples, [distinct[0], distinct[0]], feats)
        after_same = seen[0]
    handle.remove()
    torch.testing.assert_close(after_same[:, 0], after_same[:, 1])  # the same mask: the same memory, same output
    assert (after_distinct[:, 0] - after_distinct[:, 1]).abs().max() > 1e-4


def test_vos_loss_reaches_memory_attention_memory_encoder_and_mask_decoder(vos_setup):
    model, batch = vos_setup
    sam = model.grounding
    out = VOSObjective(model, LossConfig(ce=0.0), VOSConfig(referring=0.0))(batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.vos > 0 and out.referring == 0
    for name in ("memory_attention", "memory_encoder", "sam_mask_decoder"):
        grads = [p.grad for p in getattr(sam, name).parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None for p in sam.image_encoder.parameters())
    assert all(p.grad is None for p in sam.sam_prompt_encoder.parameters())  # not trainable here


def test_referring_term_is_svac_objective_on_the_same_batch(vos_setup):
    model, batch = vos_setup
    model.eval()  # no dropout: the two runs must agree
    both = VOSObjective(model, LossConfig(), VOSConfig(vos=0.0, referring=1.0))(batch)
    from svac.training.objective import SVACObjective

    alone = SVACObjective(model, LossConfig())(batch)
    torch.testing.assert_close(both.loss, alone.loss)


def test_the_two_passes_encode_each_sampled_frame_once(vos_setup, monkeypatch):
    model, batch = vos_setup
    sam = model.grounding
    encoded = []
    original = type(sam).encode_frames

    def counting(self, images):
        encoded.append(images.shape[0])
        return original(self, images)

    monkeypatch.setattr(type(sam), "encode_frames", counting)
    VOSObjective(model, LossConfig(), VOSConfig(vos=1.0, referring=1.0))(batch)
    assert sum(encoded) == sum(e.sam_frames.shape[0] for e in batch.examples), encoded


def test_max_frames_limits_the_frames_decoded_after_each_mask(vos_setup, monkeypatch):
    model, batch = vos_setup
    sam = model.grounding
    steps = []
    original = type(sam).track_step

    def counting(self, frame_idx, *args, **kwargs):
        steps.append(frame_idx)
        return original(self, frame_idx, *args, **kwargs)

    monkeypatch.setattr(type(sam), "track_step", counting)
    objective = VOSObjective(model, LossConfig(), VOSConfig(referring=0.0, max_frames=1))
    tracks = vos_tracks(batch.examples, 4, torch.Generator().manual_seed(0))
    out = objective.track_from_masks(batch.examples, tracks, objective._encode_videos(batch.examples))
    assert steps == [0, 1] and torch.isfinite(out.loss)  # every track starts before the last frame: one group


def test_clicks_need_runs_of_three_frames_and_probabilities_in_range():
    from svac.errors import ConfigError

    with pytest.raises(ConfigError, match="vos.clicks needs runs of 3 frames"):
        VOSConfig(clicks=0.5, max_frames=1)
    with pytest.raises(ConfigError, match="vos.wrong_prompt"):
        VOSConfig(wrong_prompt=1.5)
    with pytest.raises(ConfigError, match="vos.corrections"):
        VOSConfig(corrections=-1.0)
    stage6 = load_train_config("vos_memory_3_clicks.yaml").vos
    assert stage6.clicks > 0 and stage6.wrong_prompt > 0 and stage6.referring > 0 and stage6.corrections > 0


def test_wrong_prompt_starts_a_track_from_another_visible_target_naming_other_objects():
    masks = torch.zeros(3, 4, 8, 8, dtype=torch.bool)
    masks[0, :, 1, 1] = True  # object 3
    masks[1, :, 5, 5] = True  # object 7
    masks[2, :, 1, 1] = True  # objects 3 and 9: shares object 3 with row 0
    tracks = vos_tracks([_example(masks, ((3,), (7,), (3, 9)))], 3, torch.Generator().manual_seed(0), wrong_prompt=1.0)
    assert {tr.row: tr.prompt_row for tr in tracks} == {0: 1, 1: 0, 2: 1} or \
        {tr.row: tr.prompt_row for tr in tracks} == {0: 1, 1: 2, 2: 1}
    masks[1, 0] = False  # object 7 not visible on the start frame: nothing else to start rows 0 and 2 from
    tracks = vos_tracks([_example(masks, ((3,), (7,), (3, 9)))], 3, torch.Generator().manual_seed(0), wrong_prompt=1.0)
    assert all(tr.prompt_row == tr.row for tr in tracks if tr.row != 1)
    assert all(tr.prompt_row == tr.row for tr in vos_tracks([_example(masks, ((3,), (7,), (3, 9)))], 3,
                                                            torch.Generator(), wrong_prompt=0.0))


def test_a_click_makes_its_frame_a_conditioning_frame_and_the_later_frames_follow_the_clicked_target(
        vos_setup, monkeypatch):
    """vos.clicks: one tracked frame decoded again with a click from its error and its previous logits; the
    frames after it decoded from memory alone (the click among the conditioning memories), supervised by the
    run's own target while the frames before follow the wrong start mask's target."""
    model, batch = vos_setup
    sam = model.grounding
    calls = []
    original = type(sam).track_step

    def recording(self, frame_idx, is_init_cond_frame, *args, **kwargs):
        out = original(self, frame_idx, is_init_cond_frame, *args, **kwargs)
        calls.append((frame_idx, kwargs["point_inputs"], kwargs.get("prev_sam_mask_logits"),
                      sorted(kwargs["output_dict"]["cond_frame_outputs"])))
        return out

    monkeypatch.setattr(type(sam), "track_step", recording)
    objective = VOSObjective(model, LossConfig(), VOSConfig(referring=0.0, max_frames=3, clicks=1.0, wrong_prompt=1.0))
    tracks = vos_tracks(batch.examples, 4, torch.Generator().manual_seed(0), wrong_prompt=1.0)
    assert any(tr.prompt_row != tr.row for tr in tracks)
    targets = []
    monkeypatch.setattr("svac.training.vos_objective._weighted", lambda out, t, w: targets.append(t) or t.sum())
    objective.track_from_masks(batch.examples, tracks, objective._encode_videos(batch.examples))
    clicked = [c for c in calls if c[1] is not None]
    assert len(clicked) == 1  # one group (every run 4 frames long), one click
    frame, inputs, prev, _ = clicked[0]
    assert 1 <= frame <= 2 and prev is not None and set(inputs["point_labels"].flatten().tolist()) <= {-1, 0, 1}
    assert [c[0] for c in calls] == [0, *range(1, frame + 1), frame, *range(frame + 1, 4)]
    after = [c for c in calls if c[0] > frame]
    assert after and all(c[1] is None and c[3] == [0, frame] for c in after)  # the click is a conditioning memory
    target = targets[0]  # (frames supervised * k, S, S): frames 1..c, c again after its click, then c+1..3
    k = len(tracks)

    def rows(attr: str, j: int) -> torch.Tensor:
        return torch.stack([batch.examples[tr.example].masks[getattr(tr, attr), tr.start + j] for tr in tracks])

    assert torch.equal(target[:k], rows("prompt_row", 1))
    assert torch.equal(target[frame * k:(frame + 1) * k], rows("row", frame))
    assert torch.equal(target[-k:], rows("row", 3))
