"""Benchmark runner on a tiny ``rvos`` dataset: metrics, resume, sharding (in-process and 2 real processes), errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.errors import AnnotationError, ConfigError, OutputExistsError
from svac.evaluation.predictions import read_binary_png
from svac.evaluation.runner import IncompleteRunError, merge_benchmark, run_benchmark
from svac.evaluation.sharding import Shard
from svac.metrics.mevis import mevis_scores
from svac.outputs import SegmentationResult, Timings
from svac.video.export import davis_palette
from svac.video.reader import open_video

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS, NUM_FRAMES, HEIGHT, WIDTH = 3, 6, 48, 64
EXPRESSIONS = {"0": ("the red square", "1"), "1": ("the green square", "2")}
COLORS = {1: (220, 40, 40), 2: (40, 200, 40)}


def draw_frame(v: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t of video v: ``(uint8 (48, 64, 3) image, uint8 (48, 64) object ids)``: a red square moving
    right (object 1) and a still green square (object 2) on dark noise."""
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[8 + v:24 + v, 4 + 4 * t:20 + 4 * t] = 1
    labels[30:44, 40 - v:54 - v] = 2
    image = np.random.default_rng([v, t]).integers(0, 40, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for obj, color in COLORS.items():
        image[labels == obj] = color
    return image, labels


def write_rvos_fixture(root: Path, split: str = "valid", *, with_masks: bool = True) -> Path:
    """A Ref-YouTube-VOS-layout split: 3 videos x 6 frames (48x64) drawn by :func:`draw_frame`, two
    expressions per video; frames named 00000, 00005, ..."""
    palette = davis_palette().reshape(-1).tolist()
    meta = {"videos": {}}
    for v in range(NUM_VIDEOS):
        vid = f"vid{v}"
        frames_dir = root / split / "JPEGImages" / vid
        frames_dir.mkdir(parents=True)
        names = [f"{5 * t:05d}" for t in range(NUM_FRAMES)]
        for t, name in enumerate(names):
            image, labels = draw_frame(v, t)
            Image.fromarray(image).save(frames_dir / f"{name}.png")
            if with_masks:
                mask_dir = root / split / "Annotations" / vid
                mask_dir.mkdir(parents=True, exist_ok=True)
                im = Image.fromarray(labels, mode="P")
                im.putpalette(palette)
                im.save(mask_dir / f"{name}.png")
        meta["videos"][vid] = {"frames": names, "expressions": {
            e: ({"exp": text, "obj_id": obj} if with_masks else {"exp": text})
            for e, (text, obj) in EXPRESSIONS.items()}}
    meta_dir = root / "meta_expressions" / split
    meta_dir.mkdir(parents=True)
    (meta_dir / "meta_expressions.json").write_text(json.dumps(meta))
    return root


class ColorModel:
    """A stand-in for SVAC: segments pixels of the colour the expression names, shifted 2 px right.

    Deterministic and imperfect (J < 1 on the moving square), so sharded and single runs can be
    compared on non-trivial numbers. ``calls`` counts segment calls; ``fail_after`` raises
    ``KeyboardInterrupt`` on the call after that many, to simulate an interruption.
    """

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def segment(self, video, expression, *, num_frames=None, clip_len=None, progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        source = open_video(video)
        frames = source.read(range(source.num_frames))
        channel = 0 if "red" in expression else 1
        masks = np.roll(frames[..., channel] > 150, 2, axis=2)[None]
        score = float(masks.mean())
        return SegmentationResult(
            text=f"Sure, <p>{expression}</p>[SEG].", masks=masks, scores=np.array([score], np.float32),
            frame_indices=np.arange(source.num_frames), clip_spans=[(0, source.num_frames)],
            frame_names=source.frame_names, video_name=source.name, fps=None, mode="astc", csa_mode="per_clip",
            num_visual_tokens=32, timings=Timings(total=0.01, sam2_encoder=0.004, llm_prefill=0.002))


@pytest.fixture(scope="module")
def rvos_root(tmp_path_factory) -> Path:
    return write_rvos_fixture(tmp_path_factory.mktemp("rvos"))


def read_metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_runner_writes_metrics_json_with_j_f(rvos_root, tmp_path):
    out = tmp_path / "run"
    result = run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=ColorModel(),
                           progress=False)
    metrics = read_metrics(out)
    scores = metrics["scores"]
    assert result.num_items == result.num_predicted == NUM_VIDEOS * len(EXPRESSIONS)
    assert scores["n_expressions"] == NUM_VIDEOS * len(EXPRESSIONS)
    assert 0.3 < scores["J"] < 1.0 and 0.3 < scores["F"] < 1.0
    assert scores["J&F"] == (scores["J"] + scores["F"]) / 2
    # Recompute from the written PNGs with the MeViS metric itself: the runner's numbers must match exactly.
    from svac.data.readers import load_dataset

    expressions = {}
    for sample in load_dataset(f"rvos:{rvos_root}", "valid"):
        folder = out / "predictions" / sample.video_id / sample.exp_id
        pred = np.stack([read_binary_png(folder / f"{name}.png") for name in sample.frame_names])
        expressions[f"{sample.video_id}/{sample.exp_id}"] = (pred, sample.load_masks())
    reference = mevis_scores(dict(sorted(expressions.items())))
    assert (scores["J"], scores["F"], scores["J&F"]) == (reference.j, reference.f, reference.jf)
    assert metrics["settings"]["benchmark"] == "rvos" and metrics["timing"]["n_items"] == 6
    rows = (out / "per_item.csv").read_text().splitlines()
    assert rows[0].startswith("key,J,F,J&F") and len(rows) == 1 + 6
    low, high = scores["J&F_ci95"]
    assert low <= scores["J&F"] <= high
    # each video's two expressions name different objects; the colour model gives them different masks
    assert scores["pair_identity"]["pairs"] == NUM_VIDEOS and scores["pair_identity"]["rate"] == 0.0
    assert "families" not in scores  # the fixture's expressions list no attribute families
    assert scores["restated"] == {"rate": 1.0, "restated": 6, "answers": 6}  # its answers name the expression


def test_families_and_pair_identity_of_a_model_that_ignores_the_expression(tmp_path):
    root = write_rvos_fixture(tmp_path / "data")
    meta_file = root / "meta_expressions" / "valid" / "meta_expressions.json"
    meta = json.loads(meta_file.read_text())
    for video in meta["videos"].values():
        video["expressions"]["0"]["families"] = ["color"]
        video["expressions"]["1"]["families"] = ["color", "motion"]
    meta_file.write_text(json.dumps(meta))

    class RedModel(ColorModel):  # segments the red square whatever it is asked
        def segment(self, video, expression, **kwargs):
            return super().segment(video, "red", **kwargs)

    out = tmp_path / "run"
    run_benchmark("rvos", data_root=root, model_spec="red", out_dir=out, model=RedModel(), progress=False)
    scores = read_metrics(out)["scores"]
    assert scores["pair_identity"]["rate"] == 1.0 and scores["pair_identity"]["identical"] == NUM_VIDEOS
    assert scores["restated"]["restated"] == 0 and scores["restated"]["answers"] == 2 * NUM_VIDEOS  # "<p>red</p>"
    families = scores["families"]
    assert families["color"]["n"] == 2 * NUM_VIDEOS and families["motion"]["n"] == NUM_VIDEOS
    assert families["motion"]["J&F"] < 0.2 < families["static"]["J&F"]  # the green square is never found
    assert families["static"]["n"] == families["dynamic"]["n"] == NUM_VIDEOS


def test_resume_skips_finished_items(rvos_root, tmp_path):
    out = tmp_path / "run"
    interrupted = ColorModel(fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=interrupted, progress=False)
    assert len(list((out / "items").glob("*.json"))) == 4 and not (out / "metrics.json").exists()
    resumed = ColorModel()
    result = run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=resumed, progress=False)
    assert resumed.calls == 2 and result.num_predicted == 2 and result.num_resumed == 4
    again = ColorModel()
    run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=again, progress=False)
    assert again.calls == 0
    fresh = tmp_path / "fresh"
    run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=fresh, model=ColorModel(), progress=False)
    assert read_metrics(out)["scores"] == read_metrics(fresh)["scores"]
    with pytest.raises(OutputExistsError, match="finished items"):
        run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=ColorModel(),
                      progress=False, resume=False)


def test_sharded_run_equals_single_process(rvos_root, tmp_path):
    single = tmp_path / "single"
    run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=single, model=ColorModel(), progress=False)
    sharded = tmp_path / "sharded"
    models = [ColorModel(), ColorModel()]
    for rank in (1, 0):  # rank 0 last: with merge=False it does not wait for rank 1
        r = run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=sharded, model=models[rank],
                          progress=False, shard=Shard(rank, 2), merge=False)
        assert r.metrics_path is None
    assert [m.calls for m in models] == [3, 3]
    merged = merge_benchmark("rvos", data_root=rvos_root, out_dir=sharded)
    assert merged.scores == read_metrics(single)["scores"]
    assert (sharded / "per_item.csv").read_text() == (single / "per_item.csv").read_text()


def test_merge_of_an_unfinished_run_says_what_is_missing(rvos_root, tmp_path):
    out = tmp_path / "half"
    run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=ColorModel(), progress=False,
                  shard=Shard(0, 2), merge=False)
    with pytest.raises(IncompleteRunError, match="3 of 6 items"):
        merge_benchmark("rvos", data_root=rvos_root, out_dir=out)


def test_resume_with_other_settings_is_refused(rvos_root, tmp_path):
    out = tmp_path / "run"
    run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=ColorModel(), progress=False,
                  num_frames=4)
    with pytest.raises(ConfigError, match="num_frames: 4 there, 8 now"):
        run_benchmark("rvos", data_root=rvos_root, model_spec="color", out_dir=out, model=ColorModel(),
                      progress=False, num_frames=8)


def test_wrong_data_root_or_layout_gives_a_clear_error(rvos_root, tmp_path):
    with pytest.raises(AnnotationError, match=r"does not exist; expected a Ref-YouTube-VOS-layout root"):
        run_benchmark("rvos", data_root=tmp_path / "missing", out_dir=tmp_path / "o", model=ColorModel())
    with pytest.raises(AnnotationError, match=r"meta_expressions\.json not found \(splits present: none\)"):
        run_benchmark("rvos", data_root=tmp_path, out_dir=tmp_path / "o", model=ColorModel())
    with pytest.raises(AnnotationError, match=r"splits present: \['valid'\]"):
        run_benchmark("rvos", data_root=rvos_root, split="test", out_dir=tmp_path / "o", model=ColorModel())
    with pytest.raises(ConfigError, match="unknown benchmark 'ytvos'"):
        run_benchmark("ytvos", data_root=rvos_root, out_dir=tmp_path / "o", model=ColorModel())
    assert not (tmp_path / "o").exists()


def _cli(args: list[str], *, launcher: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    return subprocess.run([*launcher, "-m", "svac.evaluation", "eval", "rvos", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_cli_tiny_model_two_processes_equal_one(rvos_root, tmp_path):
    """`eval rvos` with the real tiny model: a torchrun run over 2 processes (gloo-free, file-merged) equals
    a single-process run exactly, and both write metrics.json."""
    common = ["--data-root", str(rvos_root), "--model", "tiny.yaml", "--device", "cpu", "--frames", "4",
              "--clip-len", "2", "--quiet"]
    single = _cli([*common, "--out", str(tmp_path / "single")], launcher=[sys.executable])
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    sharded = _cli([*common, "--out", str(tmp_path / "sharded")], launcher=torchrun)
    assert sharded.returncode == 0, sharded.stderr
    assert "rank 0 of 2" in sharded.stdout and "rank 1 of 2" in sharded.stdout
    a, b = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "sharded")
    assert a["scores"] == b["scores"] and a["scores"]["n_expressions"] == 6
    # Masks, and so every J and F, are bit-exact. A presence score may differ in its last float32 bit: a rank
    # holds only some of a video's expressions, and this CPU's batched kernels round with the batch size.
    single_rows, sharded_rows = (list(csv.DictReader((tmp_path / run / "per_item.csv").open()))
                                 for run in ("single", "sharded"))
    assert [r["key"] for r in single_rows] == [r["key"] for r in sharded_rows] and len(single_rows) == 6
    for one, two in zip(single_rows, sharded_rows):
        assert float(one.pop("score")) == pytest.approx(float(two.pop("score")), rel=1e-6, abs=1e-7)
        assert one == two
    records = {p.name: json.loads(p.read_text()) for p in (tmp_path / "sharded" / "items").glob("*.json")}
    assert len(records) == 6
    for name, record in records.items():
        reference = json.loads((tmp_path / "single" / "items" / name).read_text())
        assert (record["result"], record["text"]) == (reference["result"], reference["text"])
        assert record["score"] == pytest.approx(reference["score"], rel=1e-6, abs=1e-7)
