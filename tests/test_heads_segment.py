"""Baseline heads through svac's inference path: ``load_model`` -> ``segment`` -> ``export_result``, checkpoints, CLI."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from svac.errors import CheckpointError, ConfigError, OutputExistsError

REPO = Path(__file__).resolve().parents[1]
BLACKSWAN = REPO / "examples" / "blackswan.mp4"
BLACKSWAN_FRAMES = 50
YAMLS = {"referformer": "referformer_tiny.yaml", "lavt": "lavt_tiny.yaml"}
CLASSES = {"referformer": "ReferFormerRVOS", "lavt": "LAVTRVOS"}
EXPRESSION = "the red square moving right"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Run this module's toy models on one thread (on a shared 2-core CPU a second one mostly waits), then restore."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _load(spec, **kw):
    from svac.loading import UntrainedModelWarning, load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedModelWarning)
        return load_model(spec, device="cpu", **kw)


@pytest.fixture(scope="module", params=sorted(YAMLS))
def baseline(request):
    """A tiny random baseline built from its shipped YAML (shared: do not mutate)."""
    return _load(YAMLS[request.param])


def test_load_model_builds_the_head_the_yaml_names(baseline):
    assert type(baseline).__name__ == CLASSES[baseline.config.head]
    assert not baseline.training and baseline.device == torch.device("cpu")
    again = _load(YAMLS[baseline.config.head])
    a, b = baseline.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # seeded: reproducible weights


def test_segment_covers_every_frame_at_the_original_size(baseline, small_video):
    result = baseline.segment(small_video, EXPRESSION)
    n, h, w = small_video.shape[:3]
    assert result.masks.shape == (1, n, h, w) and result.masks.dtype == bool
    assert np.array_equal(result.frame_indices, np.arange(n))
    assert result.clip_spans == [(0, 5), (5, 10), (10, 12)]  # windows of baseline.window = 5
    assert result.scores.shape == (1,) and 0.0 <= float(result.scores[0]) <= 1.0
    assert result.text == "" and result.mode == "window" and result.num_visual_tokens == 0
    assert result.model_name == baseline.config.name
    assert result.timings.total >= result.timings.video_decode > 0
    shorter = baseline.segment(small_video, EXPRESSION, clip_len=4)
    assert shorter.clip_spans == [(0, 4), (4, 8), (8, 12)] and shorter.masks.shape == result.masks.shape
    with pytest.raises(ConfigError, match="num_frames"):
        baseline.segment(small_video, EXPRESSION, num_frames=8)
    with pytest.raises(ValueError, match="empty"):
        baseline.segment(small_video, "  ")


def test_segment_matches_the_heads_own_prediction(baseline):
    """On a one-window video at the input size, masks and score equal the head's own ``predict`` (no resizing).

    The threshold is set to the median object probability so that the masks are neither empty nor full.
    """
    import copy
    import dataclasses

    from svac.heads.rvos_training import preprocess_frames
    from svac.heads.text import encode_expressions

    h, w = baseline.config.baseline.input_size
    frames = np.random.default_rng(0).integers(0, 256, size=(baseline.config.baseline.window, h, w, 3),
                                               dtype=np.uint8)
    x = preprocess_frames(frames, (h, w))[None]
    ids, mask = encode_expressions(baseline.tokenizer, [EXPRESSION], baseline.max_text_length)
    with torch.no_grad():
        logits = torch.nn.functional.interpolate(baseline.predict_window(x, ids, mask).logits[:, None], size=(h, w),
                                                 mode="bilinear", align_corners=False)
        threshold = float(logits.median())
        pred = baseline.head.predict(x, ids, mask, threshold=float(torch.sigmoid(torch.tensor(threshold))))
    model = copy.copy(baseline)
    model.config = dataclasses.replace(baseline.config, inference=dataclasses.replace(
        baseline.config.inference, mask_threshold=threshold))
    result = model.segment(frames, EXPRESSION)
    expected = pred.masks[0].numpy()
    assert 0.3 < expected.mean() < 0.7  # the median threshold splits the pixels
    assert np.mean(result.masks[0] != expected) < 1e-3  # probability > p vs logit > logit(p): rounding ties only
    assert float(result.scores[0]) == pytest.approx(float(pred.scores[0]), abs=1e-4)


def test_export_writes_the_same_files_as_svac(baseline, tiny_model, small_video, tmp_path):
    from svac.video.export import export_result
    from svac.video.reader import open_video

    source = open_video(small_video)
    files = {}
    for name, model in (("svac", tiny_model), ("baseline", baseline)):
        result = model.segment(source, EXPRESSION)
        export_result(result, source, tmp_path / name)
        files[name] = sorted(str(p.relative_to(tmp_path / name)) for p in (tmp_path / name).rglob("*") if p.is_file())
    assert files["baseline"] == files["svac"]
    assert sum(f.endswith(".png") for f in files["baseline"]) == small_video.shape[0]
    assert {"overlay.mp4", "result.json"} <= set(files["baseline"])


def test_save_load_round_trip_gives_identical_segmentation(baseline, small_video, tmp_path):
    from svac.heads.rvos_checkpoint import TEXT_ENCODER_CONFIG

    folder = tmp_path / "ckpt"
    saved = baseline.save_pretrained(folder)
    assert saved.num_tensors == len(baseline.state_dict()) and (folder / TEXT_ENCODER_CONFIG).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    loaded = _load(str(folder))
    assert type(loaded) is type(baseline) and loaded.config == baseline.config
    a = baseline.segment(small_video, EXPRESSION)
    b = loaded.segment(small_video, EXPRESSION)
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        baseline.save_pretrained(folder)
    baseline.save_pretrained(folder, overwrite=True)
    longer = _load(str(folder), overrides=["baseline.window=6"])
    assert longer.segment(small_video, EXPRESSION).clip_spans == [(0, 6), (6, 12)]


def test_loaded_weights_take_torch_dtype(baseline, tmp_path):
    folder = baseline.save_pretrained(tmp_path / "ckpt").path
    loaded = type(baseline).from_pretrained(folder, torch_dtype="bfloat16")
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16} and loaded.config.inference.dtype == "bfloat16"
    saved = baseline.state_dict()
    assert all(torch.equal(v, saved[k].to(v.dtype)) for k, v in loaded.state_dict().items())


def test_weights_stored_in_half_precision_load_as_the_rounded_weights(baseline, tmp_path):
    """``save_pretrained(weights_dtype=torch.float16)``: the file holds float16 floats (integers untouched) and a
    float32 load gives the weights rounded to float16; a non-floating dtype is refused before anything is written."""
    folder = baseline.save_pretrained(tmp_path / "half", weights_dtype=torch.float16).path
    loaded = type(baseline).from_pretrained(folder)
    saved = baseline.state_dict()
    for k, v in loaded.state_dict().items():
        expected = saved[k].to(torch.float16).to(saved[k].dtype) if saved[k].is_floating_point() else saved[k]
        assert v.dtype == saved[k].dtype and torch.equal(v, expected), k
    with pytest.raises(ValueError, match="floating-point"):
        baseline.save_pretrained(tmp_path / "int", weights_dtype=torch.int8)
    assert not (tmp_path / "int").exists()


def test_loading_is_strict_and_checks_the_head(baseline, tmp_path):
    from svac.heads import head_class

    folder = tmp_path / "ckpt"
    baseline.save_pretrained(folder)
    head = baseline.config.head
    key = "baseline.referformer.hidden_dim=64" if head == "referformer" else "baseline.lavt.decoder_dim=32"
    with pytest.raises(CheckpointError, match="shape mismatch"):
        _load(str(folder), overrides=[key])
    other = head_class("lavt" if head == "referformer" else "referformer")
    with pytest.raises(CheckpointError, match=f"holds a '{head}' model"):
        other.from_pretrained(folder)


@pytest.mark.parametrize("head", sorted(YAMLS))
def test_cli_segments_blackswan_with_a_baseline(head, tmp_path, capsys):
    from svac.cli import main

    assert BLACKSWAN.is_file(), f"the example video is missing: {BLACKSWAN}"
    out = tmp_path / "out"
    code = main(["segment", str(BLACKSWAN), "a black swan swimming on the pond", "--model",
                 str(REPO / "configs" / YAMLS[head]), "--out", str(out), "--quiet"])
    assert code == 0
    pngs = sorted((out / "masks").rglob("*.png"))
    assert len(pngs) == BLACKSWAN_FRAMES and (out / "overlay.mp4").is_file() and (out / "result.json").is_file()
    assert "UNTRAINED" in capsys.readouterr().err


def test_chat_is_refused_with_a_clear_error(capsys):
    from svac.cli import main

    code = main(["chat", str(BLACKSWAN), "--model", str(REPO / "configs" / YAMLS["lavt"])])
    assert code == 2 and "the lavt head segments but cannot chat" in capsys.readouterr().err
