"""Streaming segmentation (issue 14) and several objects per call (issue 16 §2).

A tiny random SVAC whose SAM-2 keeps the mask logits of "absent" objects
(``sam2.keep_absent_object_logits``) gives masks with both values on every frame, so equality
checks compare non-trivial masks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import scripted_generate, variant

QUERIES = ["the red square", "the dark background"]


@pytest.fixture(scope="module")
def model():
    from svac.config import load_config
    from svac.loading import build_from_config

    return build_from_config(load_config("tiny.yaml", ["sam2.keep_absent_object_logits=true"])).eval()


N = 9


@pytest.fixture(scope="module")
def video() -> np.ndarray:
    """9 frames (not a multiple of the chunk sizes used: the last chunk is short), 48x64, a square moving right."""
    frames = np.full((N, 48, 64, 3), 20, dtype=np.uint8)
    for t in range(N):
        frames[t, 16:32, 4 + 4 * t:20 + 4 * t] = (230, 40, 40)
    return frames


@pytest.fixture(scope="module")
def whole(model, video):
    """Both queries segmented with the masks held whole (``model.segment``)."""
    return model.segment(video, QUERIES, num_frames=6, clip_len=3)


class EncoderCounter:
    """Counts the frames SAM-2's image encoder sees (summed batch sizes of ``forward_image``)."""

    def __init__(self, monkeypatch, sam) -> None:
        self.frames = 0
        self.calls = 0
        real = sam.forward_image

        def counting(images):
            self.frames += int(images.shape[0])
            self.calls += 1
            return real(images)

        monkeypatch.setattr(sam, "forward_image", counting)


def test_streamed_chunks_equal_the_whole_video_result_bit_for_bit(model, video, whole):
    assert whole.masks.shape == (2, N, 48, 64)
    assert 0.05 < whole.masks.mean() < 0.95  # non-trivial masks
    for chunk_size in (2, N):
        stream = model.segment_stream(video, QUERIES, num_frames=6, clip_len=3, chunk_size=chunk_size)
        chunks = list(stream)
        assert [c.start for c in chunks] == list(range(0, N, chunk_size))
        assert all(c.frames is not None and np.array_equal(c.frames, video[c.start:c.stop]) for c in chunks)
        streamed = np.concatenate([c.masks for c in chunks], axis=1)
        assert np.array_equal(streamed, whole.masks), chunk_size
        # the scores average SAM-2's presence probabilities, computed by the image encoder on batches of chunk_size
        # frames: some CPUs' batched kernels round the last bit differently with the batch size (masks are unmoved)
        np.testing.assert_allclose(stream.scores, whole.scores, rtol=1e-6, atol=0)
        assert np.array_equal(stream.result().object_areas(), whole.object_areas())


def test_a_stream_is_read_once_and_its_result_keeps_no_masks(model, video):
    stream = model.segment_stream(video, "the red square", num_frames=6, clip_len=3)
    with pytest.raises(RuntimeError, match="not been read"):
        stream.result()
    for _ in stream:
        pass
    with pytest.raises(RuntimeError, match="read once"):
        list(stream)
    with pytest.raises(RuntimeError, match="streamed and not kept"):
        stream.result().read_masks(0, 1)
    assert stream.result().summary()["objects"][0]["name"] == "the red square"


def test_sam2_encodes_each_frame_once_whatever_the_number_of_queries(model, video, monkeypatch):
    counter = EncoderCounter(monkeypatch, model.grounding)
    one = model.segment(video, QUERIES[:1], num_frames=6, clip_len=3)
    assert counter.frames == N
    counter.frames = 0
    three = model.segment(video, [QUERIES[0], QUERIES[1], "a third thing"], num_frames=6, clip_len=3)
    assert counter.frames == N and three.masks.shape[0] == 3  # not 3 x N
    # the objects of the three queries were tracked in one SAM-2 batch; each matches its own run alone
    assert np.array_equal(three.masks[0], one.masks[0])


def test_objects_are_numbered_and_named_in_query_order(model, video, whole, tmp_path):
    result = model.segment_stream(video, QUERIES, num_frames=6, clip_len=3).save(tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert [(o["id"], o["name"], o["query_index"], o["found"]) for o in summary["objects"]] == [
        (1, QUERIES[0], 0, True), (2, QUERIES[1], 1, True)]
    assert len(summary["answers"]) == 2 and summary["num_objects"] == 2
    for obj in (1, 2):  # palette PNGs: the object's id on the object, 0 elsewhere
        with Image.open(tmp_path / "run" / "masks" / str(obj) / "00004.png") as im:
            values = set(np.unique(np.asarray(im)).tolist())
            assert im.mode == "P" and values == {0, obj}
            assert im.getpalette()[3 * obj:3 * obj + 3] == ([128, 0, 0] if obj == 1 else [0, 128, 0])
    assert result.masks is None and np.array_equal(result.read_masks(3, 7), whole.masks[:, 3:7])


def test_a_query_answered_without_seg_gives_an_empty_flagged_object(model, video, monkeypatch):
    gen = variant(model, inference={"answer_mode": "generate"}, csa={"mode": "single"})
    tok, end = model.tokenizer, model.chat_template.assistant_suffix
    answers = iter(["I see no such thing.", "It is [SEG]."])

    def generate(**kwargs):
        ids = tok(next(answers) + end, add_special_tokens=False).input_ids
        return scripted_generate(model.mllm, ids)(**kwargs)

    monkeypatch.setattr(model.mllm, "generate", generate)
    result = gen.segment(video, ["a unicorn", "the red square"], num_frames=6, clip_len=3)
    assert [(o.id, o.name, o.found) for o in result.objects] == [(1, "a unicorn", False), (2, "the red square", True)]
    assert not result.masks[0].any() and result.masks[1].any() and result.scores[0] == 0.0
    assert result.answers == ["I see no such thing.", "It is [SEG]."]


def test_masks_written_chunk_by_chunk_equal_the_whole_result_files(model, video, whole, tmp_path):
    from svac.video.export import export_result

    export_result(whole, None, tmp_path / "whole", overlay=False)
    stream = model.segment_stream(video, QUERIES, num_frames=6, clip_len=3, chunk_size=4)
    stream.save(tmp_path / "streamed", overlay=False)
    files = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole" / "masks").rglob("*.png"))
    assert len(files) == 2 * N
    for rel in files:
        assert (tmp_path / "whole" / rel).read_bytes() == (tmp_path / "streamed" / rel).read_bytes(), rel


def test_davis_format_scores_with_svac_metrics_davis(model, video, tmp_path):
    from svac.cli import main
    from svac.metrics.davis import region_similarity

    names = [f"{t:05d}" for t in range(N)]
    src = tmp_path / "clip"
    src.mkdir()
    for t, name in enumerate(names):
        Image.fromarray(video[t]).save(src / f"{name}.png")
    gt = tmp_path / "gt" / "clip"  # ground truth: the drawn square (binary, as DAVIS-2016)
    gt.mkdir(parents=True)
    truth = (video[..., 0] > 200)
    for t, name in enumerate(names):
        Image.fromarray(truth[t].astype(np.uint8) * 255, mode="L").save(gt / f"{name}.png")
    stream = model.segment_stream(str(src), QUERIES[:1], num_frames=6, clip_len=3)
    result = stream.save(tmp_path / "pred", format="davis", overlay=False)
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["clip", "result.json"]
    with Image.open(tmp_path / "pred" / "clip" / "00000.png") as im:
        assert im.mode == "P" and set(np.unique(np.asarray(im)).tolist()) <= {0, 1}
    assert main(["metrics", "davis", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                 "--out", str(tmp_path / "scores")]) == 0
    scores = json.loads((tmp_path / "scores" / "global.json").read_text())
    masks = result.read_masks()[0]
    expected_j = float(np.mean(region_similarity(masks[1:-1], truth[1:-1])))  # semi-supervised: first/last dropped
    assert scores["J-Mean"] == pytest.approx(expected_j, abs=1e-12)


def test_coco_rle_format_round_trips_through_pycocotools(whole, tmp_path):
    from pycocotools import mask as mask_utils

    files = whole.save(tmp_path / "rle", format="coco-rle", overlay=False)
    doc = json.loads(files.masks_dir.read_text())
    assert doc["format"] == "coco-rle" and doc["frame_names"] == [f"{t:05d}" for t in range(N)]
    for k, obj in enumerate(doc["objects"]):
        assert obj["id"] == k + 1 and obj["name"] == QUERIES[k] and len(obj["segmentations"]) == N
        for t, rle in enumerate(obj["segmentations"]):
            decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
            assert np.array_equal(decoded.astype(bool), whole.masks[k, t])


def test_cli_takes_several_queries_and_writes_one_object_each(tmp_path, capsys):
    from svac.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for t in range(4):
        Image.fromarray(np.full((24, 32, 3), 40 * t, np.uint8)).save(frames / f"{t:05d}.png")
    out = tmp_path / "out"
    assert main(["segment", str(frames), "the cat", "--query", "the dog", "--model", "tiny.yaml", "--out", str(out),
                 "--quiet", "--format", "davis"]) == 0
    summary = json.loads((out / "result.json").read_text())
    assert [(o["id"], o["name"]) for o in summary["objects"]] == [(1, "the cat"), (2, "the dog")]
    assert summary["files"] == {"format": "davis", "masks": "frames/<frame>.png", "overlay": "overlay.mp4"}
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    other = tmp_path / "other"  # a second video into the same DAVIS results folder: its sequence is added
    other.mkdir()
    for t in range(3):
        Image.fromarray(np.full((24, 32, 3), 60 * t, np.uint8)).save(other / f"{t:05d}.png")
    assert main(["segment", str(other), "a cat", "--model", "tiny.yaml", "--out", str(out), "--quiet",
                 "--format", "davis", "--overwrite", "--no-overlay"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["frames", "other", "result.json"]
    assert main(["segment", str(frames), "--out", str(tmp_path / "none"), "--model", "tiny.yaml"]) == 2
    assert "no query given" in capsys.readouterr().err


def test_eval_encodes_each_frame_once_per_video(model, tmp_path, monkeypatch):
    from test_eval_runner import EXPRESSIONS, NUM_FRAMES, NUM_VIDEOS, write_rvos_fixture

    from svac.evaluation.runner import run_benchmark

    root = write_rvos_fixture(tmp_path / "data")
    counter = EncoderCounter(monkeypatch, model.grounding)
    result = run_benchmark("rvos", data_root=root, out_dir=tmp_path / "run", model=model, progress=False,
                           num_frames=4, clip_len=2)
    assert result.num_predicted == NUM_VIDEOS * len(EXPRESSIONS) and len(EXPRESSIONS) > 1
    assert counter.frames == NUM_VIDEOS * NUM_FRAMES  # not expressions x frames
    records = sorted((tmp_path / "run" / "items").glob("*.json"))
    assert len(records) == NUM_VIDEOS * len(EXPRESSIONS)
    # each expression's prediction equals segmenting it alone
    item = json.loads(records[0].read_text())
    alone = model.segment(str(root / "valid" / "JPEGImages" / item["video_id"]),
                          EXPRESSIONS[item["exp_id"]][0], num_frames=4, clip_len=2)
    folder = tmp_path / "run" / "predictions" / item["video_id"] / item["exp_id"]
    written = np.stack([np.asarray(Image.open(p)) > 0 for p in sorted(folder.glob("*.png"))])
    assert np.array_equal(written, alone.masks.any(axis=0))


def test_cli_help_and_argument_errors_import_neither_torch_nor_transformers():
    import subprocess
    import sys

    probe = ("import sys\nfrom svac.cli import main\n"
             "for argv in (['--help'], ['segment'], ['segment', 'v', 'q', '--frames', '0'], ['bench', '--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('torch', 'transformers', 'sam2') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_read_sorted_takes_the_same_frames_in_one_forward_pass(tmp_path):
    import av

    from svac.video.reader import open_video

    path = tmp_path / "v.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.options = {"g": "5"}  # a key frame every 5 frames: reading skips across several
    rng = np.random.default_rng(0)
    for t in range(23):
        frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    source = open_video(path)
    for indices in ([0], [3, 4, 11, 22], list(range(0, 23, 7)), list(range(23))):
        assert np.array_equal(source.read_sorted(indices), open_video(path).read(indices))
    with pytest.raises(ValueError, match="strictly increasing"):
        source.read_sorted([4, 2])
    assert np.array_equal(np.concatenate([f for _, f in source.iter_chunks(4)]), open_video(path).read(range(23)))


def test_overlay_outline_stays_visible_on_an_object_of_the_tint_colour():
    from svac.video.overlay import blend_chunk, mask_outline, object_colors

    frames = np.zeros((1, 20, 20, 3), np.uint8)
    frames[0, 5:15, 5:15] = (128, 0, 0)  # a red object, the colour of object 1's tint
    mask = np.zeros((1, 1, 20, 20), bool)
    mask[0, 0, 5:15, 5:15] = True
    out = blend_chunk(frames, mask, object_colors(1))
    edge = mask_outline(mask[0])
    assert (out[edge] == 255).all()  # a white border around the dark red object
    assert np.array_equal(out[~mask[0]], frames[~mask[0]])
    assert torch.equal(torch.from_numpy(out[0, 10, 10]), torch.tensor([128, 0, 0], dtype=torch.uint8))


def test_svac_bench_runs_the_checkout_studies_with_their_own_arguments(capsys):
    import subprocess
    import sys

    for name in ("peer", "memory", "costs"):
        out = subprocess.run([sys.executable, "-m", "svac.cli", "bench", name, "--help"], capture_output=True,
                             text=True)
        assert out.returncode == 0 and out.stdout.startswith(f"usage: svac bench {name}"), out.stderr
    bad = subprocess.run([sys.executable, "-m", "svac.cli", "bench", "memory", "--frames", "x"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "argument --frames" in bad.stderr


def test_sam2_exported_in_meta_format_loads_into_sam2s_own_video_predictor(tiny_model, tmp_path):
    """The peer study's premise: svac's SAM-2 and SAM2VideoPredictor built from the exported file are the same network."""
    import dataclasses
    import sys
    from pathlib import Path

    from svac.checkpoints.sam2_meta import save_meta_checkpoint
    from svac.grounding.sam2_model import build_sam2_model, load_sam2_checkpoint

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from bench_worker import build_predictor

    pt = save_meta_checkpoint(tiny_model.grounding, tmp_path / "sam2.pt")
    cfg = tmp_path / "sam2.json"
    cfg.write_text(json.dumps(dataclasses.asdict(tiny_model.config.sam2)))
    predictor = build_predictor(str(cfg), str(pt))
    again = build_sam2_model(tiny_model.config.sam2)
    load_sam2_checkpoint(again, str(pt))  # strict: same keys and shapes
    image = torch.randn(1, 3, tiny_model.sam2_image_size, tiny_model.sam2_image_size)
    with torch.inference_mode():
        ours = tiny_model.grounding.forward_image(image)
        theirs = predictor.forward_image(image)
    for a, b in zip(ours["backbone_fpn"], theirs["backbone_fpn"]):
        assert torch.equal(a, b)
    assert type(predictor).__name__ == "SAM2VideoPredictor" and predictor.fill_hole_area == 0


def test_reading_a_stream_keeps_no_state_that_grows_with_the_video(model, video, tmp_path):
    """Peak Python-side memory (numpy arrays included) while a stream is iterated or saved: the same at 9 and 36 frames."""
    import tracemalloc

    longer = np.concatenate([video] * 4)  # 36 frames
    peaks = {}
    for name, frames in (("warm-up", video), ("short", video), ("long", longer)):  # warm-up: lazy imports, caches
        for how in ("iterate", "save"):
            stream = model.segment_stream(frames, QUERIES, num_frames=6, clip_len=3, chunk_size=3)
            tracemalloc.start()
            if how == "iterate":
                for _ in stream:
                    pass
            else:
                stream.save(tmp_path / f"{name}-{how}", overlay=True)
            peaks[name, how] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    one_frame = 2 * 48 * 64 + 48 * 64 * 3  # two objects' masks and the RGB frame (bytes)
    for how in ("iterate", "save"):
        grown = peaks["long", how] - peaks["short", how]
        assert grown < 3 * one_frame, (how, peaks)  # 27 more frames kept would be 27 x one_frame


def test_a_video_file_is_not_decoded_ahead_of_its_reader(tmp_path):
    """decord decodes ahead of the frames asked for, unbounded; svac's reader must not leave it doing so."""
    import time

    import av

    from svac.video.reader import open_video

    path = tmp_path / "long.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 480, 270, "yuv420p"
    stream.options = {"preset": "ultrafast"}
    frame = np.zeros((270, 480, 3), dtype=np.uint8)
    for t in range(150):  # 150 RGB frames of 480x270: 58 MB if all were decoded and held
        frame[:, :, 0] = t
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    def resident_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    source = open_video(path)
    before = resident_mib()
    source.read([0, 10])  # random access (the MLLM's frames)
    chunks = source.iter_chunks(4)  # the sequential pass, read slowly
    next(chunks)
    time.sleep(1.0)  # decoding all 150 frames takes ~0.2 s
    assert resident_mib() - before < 25
    assert sum(len(f) for _, f in chunks) == 146
