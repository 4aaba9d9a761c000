"""The memory tracker (sam2.memory_tracker): a second memory attention, prompt encoder and mask decoder that decode
the frames tracked from memory alone, leaving the [SEG], click and mask-prompted frames to SAM-2's own modules."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from svac.errors import ConfigError
from svac.grounding.memory_tracker import TRACKER_PARTS, MemoryTracker, attach_memory_tracker
from svac.loading import build_from_config

N = 12


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    """``uint8 (12, 48, 64, 3)``: a red square moving right and a still blue square."""
    frames = np.full((N, 48, 64, 3), 20, dtype=np.uint8)
    frames[:, 30:42, 44:56] = (40, 40, 230)
    for t in range(N):
        frames[t, 8:20, 2 + 3 * t:14 + 3 * t] = (230, 40, 40)
    return frames


@pytest.fixture(scope="module")
def models(tiny_config):
    """(a tiny model without a tracker, the same model with a tracker copied from its SAM-2), eval mode."""
    config = dataclasses.replace(tiny_config, astc=dataclasses.replace(tiny_config.astc, num_frames=6, clip_len=3))
    plain = build_from_config(config).eval()
    tracked = copy.deepcopy(plain)
    attach_memory_tracker(tracked)
    return plain, tracked


def test_a_model_built_with_a_tracker_starts_from_sam2s_weights(tiny_config):
    """SVAC.from_config with sam2.memory_tracker: the tracker's modules are SAM-2's, copied (not shared)."""
    config = dataclasses.replace(tiny_config, sam2=dataclasses.replace(tiny_config.sam2, memory_tracker=True))
    model = build_from_config(config)
    for name in TRACKER_PARTS:
        ours, sams = getattr(model.memory_tracker, name), getattr(model.grounding, name)
        assert ours is not sams
        for (key, a), (_, b) in zip(ours.state_dict().items(), sams.state_dict().items()):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), key
    with pytest.raises(ConfigError, match="sam2.memory_tracker is True but the model was given no memory_tracker"):
        type(model)(config, mllm=model.mllm, tokenizer=model.tokenizer, grounding=model.grounding,
                    text_hidden_fcs=model.text_hidden_fcs, span_prompt=model.span_prompt)


def _perturbed(model):
    """A copy of ``model`` whose tracker weights are moved off SAM-2's (seeded)."""
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in other.memory_tracker.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen) * (p.std() if p.numel() > 1 else 1.0))
    return other


def test_a_tracker_copied_from_sam2_tracks_exactly_as_sam2(models, video):
    """Swapping the three modules is all the tracker does: copied weights give SAM-2's own masks, bit for bit."""
    plain, tracked = models
    assert tracked.config.sam2.memory_tracker and plain.memory_tracker is None
    for name in TRACKER_PARTS:  # its own modules, not SAM-2's
        assert getattr(tracked.memory_tracker, name) is not getattr(tracked.grounding, name)
    a = plain.segment(video, "the red square")
    b = tracked.segment(video, "the red square")
    assert np.array_equal(a.masks, b.masks)
    # a result replays its corrections from memory by default only when its model has a tracker
    assert (a.after_correction, b.after_correction) == ("seg", "memory")
    ra = a.refine(frame=4, points=[(12.0, 14.0)], labels=[1], after_correction="memory")
    rb = b.refine(frame=4, points=[(12.0, 14.0)], labels=[1], after_correction="memory")
    assert np.array_equal(ra.masks, rb.masks)


def test_the_tracker_decodes_only_the_frames_after_a_correction_in_memory_mode(models, video, monkeypatch):
    """Moved tracker weights change nothing but the memory-decoded frames after the correction: the referring
    masks, the "seg" refinement and the frames up to the corrected one stay SAM-2's; and the tracker is put back
    in SAM-2 after each frame (its modules are SAM-2's again once the refinement is done)."""
    plain, tracked = models
    moved = _perturbed(tracked)
    base, other = tracked.segment(video, "the red square"), moved.segment(video, "the red square")
    assert np.array_equal(base.masks, other.masks)
    i = 4
    seg_a = base.refine(frame=i, points=[(12.0, 14.0)], labels=[1])
    seg_b = other.refine(frame=i, points=[(12.0, 14.0)], labels=[1])
    assert np.array_equal(seg_a.masks, seg_b.masks)

    def recorded(model, result):
        """(frame, decoded by the tracker, low-res mask and object-score logits) of every SAM-2 step of a memory-mode refinement."""
        steps = []
        original = type(model.grounding).track_step

        def recording(self, frame_idx, *args, **kwargs):
            by_tracker = model.memory_tracker is not None and self.sam_mask_decoder is model.memory_tracker.sam_mask_decoder
            out = original(self, frame_idx, *args, **kwargs)
            steps.append((frame_idx, by_tracker, torch.cat([out["pred_masks"].flatten(), out["object_score_logits"].flatten()])))
            return out

        monkeypatch.setattr(type(model.grounding), "track_step", recording)
        refined = result.refine(frame=i, points=[(12.0, 14.0)], labels=[1], after_correction="memory")
        monkeypatch.undo()
        return refined, steps

    mem_a, steps_a = recorded(tracked, base)
    mem_b, steps_b = recorded(moved, other)
    assert sorted({t for t, used, _ in steps_b if used}) == list(range(i + 1, N))  # after the correction, only
    assert moved.grounding.sam_mask_decoder is not moved.memory_tracker.sam_mask_decoder  # put back
    assert np.array_equal(mem_a.masks[0, :i + 1], mem_b.masks[0, :i + 1])
    assert [t for t, _, _ in steps_a] == [t for t, _, _ in steps_b]
    correction = [n for n, (t, _, _) in enumerate(steps_b) if t == i][-1]  # after the replayed original run
    assert all(torch.equal(a, b) for (_, _, a), (_, _, b) in zip(steps_a[:correction + 1], steps_b[:correction + 1]))
    for (t, used, a), (_, _, b) in zip(steps_a[correction + 1:], steps_b[correction + 1:]):
        assert used == (t > i) and torch.equal(a, b) == (t < i), t  # the tracker's frames, and only they, change


def test_after_a_correction_memory_mode_reads_the_correction_not_the_seg_frames_before_it(models, video,
                                                                                         monkeypatch):
    """The frames after the correction read the corrected frame's memory and their own, not the [SEG]-decoded
    frames before it (the correction restarts the object's track); the frames before it keep their [SEG]."""
    _, tracked = models
    result = tracked.segment(video, "the red square")
    read = []
    original = type(tracked.grounding).track_step

    def recording(self, frame_idx, is_init_cond_frame, *args, **kwargs):
        memory = kwargs["output_dict"]
        read.append((frame_idx, sorted(memory["cond_frame_outputs"]), sorted(memory["non_cond_frame_outputs"])))
        return original(self, frame_idx, is_init_cond_frame, *args, **kwargs)

    i = 5
    monkeypatch.setattr(type(tracked.grounding), "track_step", recording)
    result.refine(frame=i, points=[(12.0, 14.0)], labels=[1], after_correction="memory")
    monkeypatch.undo()
    correction = [n for n, (t, _, _) in enumerate(read) if t == i][-1]
    forward = [r for r in read[correction + 1:] if r[0] > i]
    assert [t for t, _, _ in forward] == list(range(i + 1, N))
    for t, cond, non_cond in forward:
        assert cond == [i] and all(i < s < t for s in non_cond)


def test_the_tracker_is_saved_and_loaded_with_the_model(models, tmp_path):
    from safetensors import safe_open

    from svac.loading import UntrainedModelWarning, load_model

    _, tracked = models
    moved = _perturbed(tracked)
    moved.save_pretrained(tmp_path / "m")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("memory_tracker.sam_mask_decoder.") for k in keys)
    with pytest.warns(UntrainedModelWarning):  # the tiny model is random
        loaded = load_model(str(tmp_path / "m"))
    assert loaded.config.sam2.memory_tracker
    for (name, a), (_, b) in zip(moved.memory_tracker.state_dict().items(), loaded.memory_tracker.state_dict().items()):
        assert torch.equal(a, b), name


def test_bad_uses_of_the_tracker_are_refused_naming_the_problem(models, tiny_config):
    from svac.grounding.tracking import MemoryBank, _step
    from svac.training.config import TrainConfig
    from svac.training.params import configure_trainable

    plain, tracked = models
    with pytest.raises(ConfigError, match="already has a memory tracker"):
        attach_memory_tracker(copy.deepcopy(tracked))
    with pytest.raises(ConfigError, match="sam2_tracker: this model has no memory tracker"):
        configure_trainable(copy.deepcopy(plain), ["sam2_tracker"])
    with pytest.raises(ConfigError, match="add_memory_tracker needs init_from"):
        TrainConfig(model=tiny_config, add_memory_tracker=True)
    sam = tracked.grounding
    feats = sam.encode_frames(torch.zeros(1, 3, sam.image_size, sam.image_size))[0]
    with pytest.raises(ValueError, match="decodes frames without prompts only"):
        _step(sam, 1, feats, 1, MemoryBank(horizon=4), 2, point_inputs={"point_coords": torch.zeros(1, 1, 2)},
              tracker=tracked.memory_tracker)
    assert isinstance(tracked.memory_tracker, MemoryTracker)


def test_vos_training_of_the_tracker_moves_only_the_tracker(models, tmp_path):
    """objective: vos with trainable [sam2_tracker]: its memory-decoded frames go through the tracker, so the
    tracker learns and SAM-2 (whose modules decode the [SEG], click and mask-prompted frames) does not change."""
    from svac.data.readers import load_dataset
    from svac.data.synthetic import write_benchmark
    from svac.training.config import LossConfig, VOSConfig
    from svac.training.data import ExampleBuilder, VideoExpressionDataset, collate
    from svac.training.params import configure_trainable
    from svac.training.vos_objective import VOSObjective

    _, tracked = models
    model = copy.deepcopy(tracked).train()
    configure_trainable(model, ["sam2_tracker"])
    assert {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad} == {"memory_tracker"}
    root = tmp_path / "bench"
    write_benchmark(root, videos=2, seed=5, num_frames=(12, 14), size=(64, 64), progress=False)
    samples = list(load_dataset(f"rvos:{root}", "train"))
    ds = VideoExpressionDataset(samples, ExampleBuilder.for_model(model), expressions_per_video=3, seed=0)
    batch = collate([ds[0], ds[1]], model.tokenizer.pad_token_id)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = VOSObjective(model, LossConfig(ce=0.0), VOSConfig(referring=0.0, max_frames=2))(batch)
    out.loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    changed = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"memory_tracker"}
    moved = {n.split(".")[0] for n, p in model.memory_tracker.named_parameters()
             if not torch.equal(p, before[f"memory_tracker.{n}"])}
    assert {"memory_attention", "sam_mask_decoder"} <= moved


def test_the_click_benchmark_draws_the_videos_it_is_told_to():
    """``svac bench refine-clicks --objects/--frames`` (the README's harder click table): K or MIN-MAX objects,
    refused with the value named otherwise, and a clicked frame that leaves frames after it."""
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from refine_clicks import main, object_range

    assert object_range("3-4") == (3, 4) and object_range("2") == (2, 2)
    for bad in ("1", "4-3", "two", "2-3-4", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="--objects"):
            object_range(bad)
    with pytest.raises(SystemExit):
        main(["--frames", "8", "--frame", "7"])  # no frame after the clicked one
