"""svac.evaluation.pointer_probe: the tokens and targets it collects, and a pointer that finds a planted target (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


def test_collect_gives_the_llm_input_tokens_and_the_targets_cells(tiny_model, probe_bench_root):
    from svac.data.readers import load_dataset
    from svac.evaluation.pointer_probe import GROUPS, collect
    from svac.inference import prepare_video
    from svac.video.reader import FramePathsVideo

    samples = list(load_dataset(f"rvos:{probe_bench_root}", "train"))
    data = collect(tiny_model, samples, videos=2)
    first = next(s for s in samples if len(s.object_ids) == 1)
    with torch.inference_mode():
        prepared = prepare_video(tiny_model, FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False))
        features = tiny_model.mllm.get_image_features(pixel_values=prepared.pixel_values, return_dict=True).pooler_output
    images, cells = prepared.plan.num_images, tiny_model.tokens_per_image
    assert data.tokens.shape[1:] == (images, cells, tiny_model.mllm.config.text_config.hidden_size)
    assert len(data.tokens) == 2 and data.tokens.dtype == torch.float16
    assert torch.allclose(data.tokens[0].float(), features.reshape(images, cells, -1).float(), atol=1e-2)
    assert data.anchor_images == tuple(prepared.plan.image_clips.index(k) for k in range(prepared.plan.num_clips))
    assert {i.group for i in data.items} <= set(GROUPS)
    shown = 0
    for item in data.items:
        rows = item.target.sum(1)
        assert np.allclose(rows[rows > 0], 1.0)  # a distribution over an anchor's cells ...
        assert set(np.flatnonzero(rows > 0)) <= set(data.anchor_images)  # ... and only on anchors
        for k, (objects, target) in enumerate(item.objects):
            assert (rows[data.anchor_images[k]] > 0) == (target >= 0)
            if target >= 0:
                shown += 1
                mine = objects[target] / objects[target].sum()
                assert np.allclose(mine, item.target[data.anchor_images[k]])
    assert shown > 0
    with pytest.raises(ValueError, match="single object"):
        collect(tiny_model, [s for s in samples if len(s.object_ids) != 1], videos=2)


def _planted(videos: int, seed: int, *, informative: bool):
    """Two objects per anchor on random cells; expression [1] names object 0, [2] object 1. Each object's cell carries
    its own feature spike when ``informative``; otherwise the tokens are noise and nothing tells the objects apart."""
    from svac.evaluation.pointer_probe import PointerData, PointerItem

    rng = np.random.default_rng(seed)
    images, cells, dim = 4, 16, 8
    tokens = rng.normal(size=(videos, images, cells, dim)).astype(np.float32)
    items = []
    for v in range(videos):
        per_anchor, placed = [], {}
        for k, image in enumerate((0, 2)):
            a, b = rng.choice(cells, size=2, replace=False)
            if informative:
                tokens[v, image, a, 0] += 4.0
                tokens[v, image, b, 1] += 4.0
            objects = np.zeros((2, cells), np.float32)
            objects[0, a] = objects[1, b] = 1.0
            per_anchor.append(objects)
            placed[image] = objects
        for which in (0, 1):
            target = np.zeros((images, cells), np.float32)
            for image, objects in placed.items():
                target[image] = objects[which]
            items.append(PointerItem(v, np.array([1 + which]), target,
                                     tuple((objects, which) for objects in per_anchor), "static"))
    return PointerData(torch.from_numpy(tokens).half(), (0, 2), items)


def test_a_trained_pointer_finds_a_planted_target_and_is_at_chance_without_one():
    from svac.evaluation.pointer_probe import score, train_pointer

    logged = []
    small = {"width": 32, "layers": 1}
    pointer = train_pointer(_planted(64, 0, informative=True), steps=150, cell_index=False, **small,
                            log=lambda step, loss: logged.append((step, loss)))
    held_out = score(pointer, _planted(32, 1, informative=True))
    assert held_out["static"]["chance"] == pytest.approx(0.5) and held_out["static"]["n"] == 128
    assert held_out["all"] == held_out["static"] and held_out["video_only"]["n"] == 0
    assert held_out["static"]["accuracy"] > 0.9
    assert logged and logged[-1][0] == 150
    causal = score(train_pointer(_planted(64, 0, informative=True), steps=150, cell_index=False, causal=True, **small),
                   _planted(32, 1, informative=True))
    assert causal["static"]["accuracy"] > 0.9  # reading as the LLM does, the expression's last token finds it too
    blind = score(train_pointer(_planted(64, 0, informative=False), steps=150, cell_index=False, **small),
                  _planted(32, 1, informative=False))
    assert abs(blind["static"]["accuracy"] - 0.5) < 0.15


def test_twenty_updates_train():
    """torch's one-cycle schedule divides by zero when the warm-up is one update (5 % of 20)."""
    from svac.evaluation.pointer_probe import train_pointer

    logged = []
    train_pointer(_planted(4, 0, informative=True), steps=20, cell_index=False, width=16, layers=1,
                  log=lambda step, loss: logged.append(step))
    assert logged == [20]


def test_a_trained_vision_tower_learns_with_the_pointer_and_leaves_the_model_alone(tiny_model, probe_bench_root):
    from svac.data.readers import load_dataset
    from svac.evaluation.pointer_probe import PointerData, TrainedVision, collect, score, train_pointer

    samples = list(load_dataset(f"rvos:{probe_bench_root}", "train"))
    data = collect(tiny_model, samples, videos=2, keep_pixels=True)
    size = tiny_model.config.mllm.vision["image_size"]
    assert data.pixels.shape == (2, data.tokens.shape[1], 3, size, size) and data.pixels.dtype == torch.float16
    model_before = {k: v.clone() for k, v in tiny_model.mllm.state_dict().items()}
    vision = TrainedVision(tiny_model)
    with torch.no_grad():  # at the start it gives the tokens the model gives (up to float16 storage)
        assert torch.allclose(vision(data.pixels[0]), data.tokens[0].float(), atol=2e-2)
    tower = {k: v.clone() for k, v in vision.mllm.model.vision_tower.state_dict().items()}
    llm = {k: v.clone() for k, v in vision.mllm.model.language_model.state_dict().items()}
    pointer = train_pointer(data, steps=3, cell_index=True, width=16, layers=1, vision=vision)
    assert any(not torch.equal(v, vision.mllm.model.vision_tower.state_dict()[k]) for k, v in tower.items())
    assert all(torch.equal(v, vision.mllm.model.language_model.state_dict()[k]) for k, v in llm.items())
    assert all(torch.equal(v, tiny_model.mllm.state_dict()[k]) for k, v in model_before.items())
    assert set(score(pointer, data, vision)) == {"static", "video_and_words", "video_only", "all"}
    without = PointerData(data.tokens, data.anchor_images, data.items)
    with pytest.raises(ValueError, match="keep_pixels"):
        train_pointer(without, steps=3, cell_index=True, vision=vision)


def test_train_pointer_refuses_no_steps_and_no_shown_target():
    from svac.evaluation.pointer_probe import PointerData, train_pointer

    data = _planted(2, 0, informative=True)
    with pytest.raises(ValueError, match="steps"):
        train_pointer(data, steps=0, cell_index=False)
    empty = PointerData(data.tokens, data.anchor_images,
                        [type(i)(i.video, i.text, np.zeros_like(i.target), i.objects, i.group) for i in data.items])
    with pytest.raises(ValueError, match="shows its target"):
        train_pointer(empty, steps=1, cell_index=False)


def test_the_command_writes_every_group_and_refuses_an_existing_out(tmp_path, probe_bench_root, tiny_model):
    from svac.errors import OutputExistsError
    from svac.evaluation.pointer_probe import GROUPS, main

    model_dir = tiny_model.save_pretrained(tmp_path / "model").path
    out = tmp_path / "pointer.json"
    args = [str(model_dir), "--train-root", str(probe_bench_root), "--test-root", str(probe_bench_root), "--test-split", "train",
            "--steps", "2", "--cell-index", "--vision-positions", "sincos", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert set(result["held_out"]) == {*GROUPS, "all"} and result["cell_index"] and result["steps"] == 2
    assert result["vision_positions"] == "sincos" and result["n_train_expressions"] > 0
    assert not result["train_vision"]
    trained = tmp_path / "trained.json"
    assert main([*args[:-1], str(trained), "--train-vision"]) == 0
    assert json.loads(trained.read_text())["train_vision"]
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="exists"):
        main(args)
    assert out.read_text() == "keep me"
