"""svac.evaluation.visual_probe: cells of the anchor tokens, attention lift and the probes (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_cell_coverage_is_each_cells_on_fraction_also_when_the_grid_does_not_divide_the_mask():
    from svac.evaluation.visual_probe import cell_coverage

    rng = np.random.default_rng(0)
    mask = rng.random((30, 41)) > 0.6
    cover = cell_coverage(mask, 4)
    rows, cols = [0, 7, 15, 22, 30], [0, 10, 20, 30, 41]
    for i in range(4):
        for j in range(4):
            assert cover[i, j] == pytest.approx(mask[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean())
    with pytest.raises(ValueError, match="2-D mask"):
        cell_coverage(mask[None], 4)
    with pytest.raises(ValueError, match="at least 4x4"):
        cell_coverage(mask[:3], 4)


def test_token_i_g_plus_j_of_an_image_is_the_one_that_sees_cell_i_j(tiny_model):
    """The row-major cell order the probe assumes, checked on InternVL's own pixel shuffle: brightening one cell
    of a flat image changes that cell's token far more than any other."""
    from svac.mllm.internvl import preprocess_images

    grid = int(round(tiny_model.tokens_per_image ** 0.5))
    size = tiny_model.config.mllm.vision["image_size"]
    cell = size // grid
    flat = np.full((1, size, size, 3), 30, np.uint8)

    def tokens(image):
        with torch.no_grad():
            pixels = preprocess_images(image, tiny_model.config.mllm)
            return tiny_model.mllm.get_image_features(pixel_values=pixels, return_dict=True).pooler_output[0]

    before = tokens(flat)
    for i, j in [(0, grid - 1), (grid - 1, 0), (1, 2)]:
        bright = flat.copy()
        bright[0, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell] = (250, 250, 20)
        change = (tokens(bright) - before).norm(dim=-1)
        assert int(change.argmax()) == i * grid + j
        assert change.sort(descending=True).values[1] < 0.1 * change.max()


def test_anchor_token_positions_are_each_clips_first_image_and_are_checked(tiny_model, small_video):
    from svac.evaluation.visual_probe import anchor_token_positions
    from svac.inference import encode_turns, prepare_video, referring_turn

    prepared = prepare_video(tiny_model, small_video)
    ids = torch.tensor(encode_turns(tiny_model, [referring_turn(tiny_model, prepared, "the red square")])[0])
    positions = anchor_token_positions(tiny_model, ids, prepared)
    per_image = tiny_model.tokens_per_image
    image_tokens = (ids == tiny_model.mllm.config.image_token_id).nonzero()[:, 0]
    assert positions.shape == (prepared.plan.num_clips, per_image)
    for k in range(prepared.plan.num_clips):
        first = prepared.plan.image_clips.index(k)
        assert torch.equal(positions[k], image_tokens[first * per_image:(first + 1) * per_image])
    if prepared.plan.num_images > prepared.plan.num_clips:  # ASTC: the composites are left out
        assert not torch.equal(positions[-1], image_tokens[-per_image:])
    with pytest.raises(ValueError, match="image tokens"):
        anchor_token_positions(tiny_model, ids[per_image:], prepared)


def test_attention_share_is_one_for_uniform_attention_and_grows_when_it_prefers_the_target():
    from svac.evaluation.visual_probe import _share

    on = torch.tensor([True, False, False, False])
    assert _share(torch.full((4,), 0.25), on) == pytest.approx(1.0)
    assert _share(torch.tensor([0.7, 0.1, 0.1, 0.1]), on) == pytest.approx(2.8)
    assert _share(torch.tensor([0.0, 0.2, 0.2, 0.2]), on) == pytest.approx(0.0)


def test_collect_and_probe_on_a_tiny_model(tiny_model, probe_bench_root):
    from svac.data.readers import load_dataset
    from svac.evaluation.visual_probe import PIXEL_POOL, collect, probe

    samples = list(load_dataset(f"rvos:{probe_bench_root}", "train"))
    before = tiny_model.mllm.config.text_config._attn_implementation
    data = collect(tiny_model, samples, videos=3)
    assert tiny_model.mllm.config.text_config._attn_implementation == before  # eager attention only inside
    layers = tiny_model.mllm.config.text_config.num_hidden_layers
    first_videos = list(dict.fromkeys(s.video_id for s in samples if len(s.object_ids) == 1))[:3]
    n_exp = sum(1 for s in samples if len(s.object_ids) == 1 and s.video_id in first_videos)
    dim = tiny_model.mllm.config.text_config.hidden_size
    cells = data.cell_states.shape[1]
    assert data.cell_states.shape == (layers + 1, cells, dim)
    assert cells % tiny_model.tokens_per_image == 0
    assert data.cell_pixels.shape == (cells, 3 * PIXEL_POOL ** 2)
    assert data.seg_states.shape == (layers + 1, n_exp, dim)
    assert data.lift.shape == (n_exp, layers)
    families = [set(x.meta.get("families") or ()) for x in samples
                if len(x.object_ids) == 1 and x.video_id in first_videos]
    assert data.video_only.dtype == bool
    assert data.video_only.tolist() == [bool(f) and f <= {"time", "speed", "motion"} for f in families]
    assert data.cell_object.any() and not data.cell_object.all()
    assert np.isnan(data.cell_colour[~data.cell_object]).all()
    assert ((data.cell_colour[data.cell_object] >= 0) & (data.cell_colour[data.cell_object] <= 1)).all()
    assert np.isfinite(data.lift).any()
    grid = int(round(tiny_model.tokens_per_image ** 0.5))
    assert data.cell_place.shape == (cells, 2)
    assert np.allclose(data.cell_place[grid + 2], [1.5 / grid, 2.5 / grid])  # row-major: cell (1, 2)
    words = data.words["color"]
    assert len(words) == n_exp and any(w is not None for w in words)
    result = probe(data, data)
    assert set(result["cells"]) == {"pixels", *(f"layer_{i}" for i in range(layers + 1))}
    assert set(result["seg_attention_lift"]) == {f"layer_{i + 1}" for i in range(layers)}
    assert set(result["seg_attention_lift_video_only"]) == set(result["seg_attention_lift"])
    assert set(result["phrase_end_attention_object_lift"]) == set(result["seg_attention_lift"])
    assert data.phrase_object_lift.shape == data.object_lift.shape and np.isfinite(data.phrase_object_lift).any()
    assert data.matches and len(data.expressions) == n_exp
    for m in data.matches:
        assert m.seg.shape == m.span.shape == (layers + 1, dim) and m.objects.shape[0::2] == (layers + 1, dim)
        assert not np.allclose(m.seg, m.span)
        assert 0 <= m.target < m.objects.shape[1] >= 2
    assert set(result["matcher"]) == {f"layer_{i}" for i in range(layers + 1)}
    # in-sample, the object's colour is a near-linear function of its cell's pixels
    assert result["cells"]["pixels"]["colour_r2"] > 0.5
    assert {"object_balanced_accuracy", "colour_r2", "place_r2"} <= set(result["cells"]["layer_0"])
    with pytest.raises(ValueError, match="single object"):
        collect(tiny_model, [s for s in samples if len(s.object_ids) != 1], videos=3)


def test_a_probe_refuses_an_existing_out_file_before_it_runs(tmp_path, probe_bench_root):
    from svac.errors import OutputExistsError
    from svac.evaluation.visual_probe import main

    out = tmp_path / "probe.json"
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="exists"):
        main(["configs/does-not-matter.yaml", "--train-root", str(probe_bench_root), "--test-root", str(probe_bench_root),
              "--test-split", "train", "--out", str(out)])
    assert out.read_text() == "keep me"


def test_matcher_picks_the_target_when_the_query_names_it_and_not_otherwise():
    """A [SEG] state that is a linear image of its target's pooled state finds it; a random one does not; the
    words find the object whose colour they name."""
    from svac.evaluation.visual_probe import MatchItem, VisualProbeData, _matcher_scores

    rng = np.random.default_rng(0)
    dim, colours = 12, ["red", "blue", "green", "cyan"]
    prototypes = rng.normal(size=(len(colours), dim))
    mix = rng.normal(size=(dim, dim))

    def data(n, informative):
        items, texts = [], []
        for i in range(n):
            chosen = rng.choice(len(colours), size=3, replace=False)
            objects = prototypes[chosen] + 0.1 * rng.normal(size=(3, dim))
            target = int(rng.integers(3))
            seg = objects[target] @ mix if informative else rng.normal(size=dim)
            texts.append(f"the {colours[chosen[target]]} object")
            items.append(MatchItem(i, np.stack([seg, seg]).astype(np.float32), np.stack([seg, seg]).astype(np.float32),
                                   np.stack([objects, objects]).astype(np.float32), target))
        empty = np.zeros((1, 1), dtype=np.float32)
        return VisualProbeData(empty, empty, np.zeros(1, bool), empty, empty, empty, {}, empty, empty, empty,
                               np.zeros(n, dtype=bool), texts, items)

    good = _matcher_scores(data(200, True), data(100, True), layer=1)
    assert good["seg_static"] > 0.95 and good["span_static"] > 0.95 and good["words_static"] > 0.95 and good["chance_static"] == pytest.approx(1 / 3)
    bad = _matcher_scores(data(200, False), data(300, False), layer=1)
    assert bad["seg_static"] < 0.5 and bad["words_static"] > 0.95 and "seg_video_only" not in bad
