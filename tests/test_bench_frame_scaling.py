"""The frame-scaling study (``eval/frame_scaling.py``) on a tiny setting, its memory sampler and its per-stage profile."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from svac.errors import ConfigError, OutputExistsError

EVAL_DIR = Path(__file__).resolve().parents[1] / "eval"
sys.path.insert(0, str(EVAL_DIR))  # the studies are scripts in eval/, importing their siblings by name
from frame_scaling import OVERHEAD_TARGET, Variant, expected_token_ratio, run_frame_scaling  # noqa: E402
from peak_memory import PeakMemory  # noqa: E402
from pipeline_profile import profile_segment  # noqa: E402
from scaling_report import OUTPUT_FILES  # noqa: E402

PLOTS = ("tokens_plot", "seconds_plot", "memory_plot", "jf_plot")


@pytest.fixture(scope="module")
def study(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("frame_scaling")
    result = run_frame_scaling(model=tiny_model, out_dir=out, frames=(10, 20), clip_lens=(5, 10), num_videos=1,
                               repeats=1, k_objects=(1, 2), progress=False)
    return result, out


def test_study_writes_csv_markdown_and_four_plots(study):
    result, out = study
    assert set(result.files) == set(OUTPUT_FILES)
    for role in PLOTS:
        with Image.open(result.files[role]) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    with open(result.files["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["num_frames"]) for r in rows] == [
        (v, t) for v in ("astc m=5", "astc m=10", "uncompressed", "first_k (Sa2VA)") for t in ("10", "20")]
    markdown = result.files["markdown"].read_text()
    assert "| astc m=10 | 20 | " in markdown and "Overhead ratio" in markdown and "Encoder vs K" in markdown
    with pytest.raises(OutputExistsError):
        run_frame_scaling(out_dir=out, frames=(10,), model=object())


def test_astc_tokens_are_exactly_two_over_m_of_uncompressed(study):
    result, _ = study
    uncompressed = {r.num_frames: r.visual_tokens for r in result.rows if r.mode == "uncompressed"}
    astc = [r for r in result.rows if r.mode == "astc"]
    assert len(astc) == 4
    for r in astc:
        assert r.visual_tokens * r.clip_len == 2 * uncompressed[r.num_frames]
        assert r.token_ratio == 2 / r.clip_len and r.tokens_exact
    first_k = [r for r in result.rows if r.mode == "first_k"]
    assert {r.visual_tokens for r in first_k} == {uncompressed[10] // 2}
    assert not result.token_mismatches


def test_overhead_ratio_is_end_to_end_over_encoder_plus_prefill_per_run(study):
    result, _ = study
    assert len(result.runs) == 8
    for run in result.runs:
        assert run.overhead_ratio == run.total_s / (run.sam2_encoder_s + run.llm_prefill_s) > 1.0
        assert run.peak_rss_mib > 0 and run.cuda_peak_mib is None
        assert run.jf is not None and 0.0 <= run.jf <= 1.0
    assert result.overhead_target_met == (result.max_overhead_ratio <= OVERHEAD_TARGET)
    assert [k.num_objects for k in result.k_objects] == [1, 2]
    assert all(k.encoder_s > 0 and k.video_frames == 20 for k in result.k_objects)


def test_profile_stages_add_up_to_the_end_to_end_time(tiny_model, small_video):
    profile = profile_segment(tiny_model, small_video, "the red square", num_frames=8, clip_len=4)
    assert sum(s.seconds for s in profile.stages) == pytest.approx(profile.total_seconds, rel=1e-9)
    names = [s.name for s in profile.stages]
    assert names[:2] == ["SAM-2 image encoder", "LLM prefill"] and "SAM-2 memory attention" in names
    hooked = {s.name: s.seconds for s in profile.stages}
    assert hooked["SAM-2 prompt encoder + mask decoder"] > 0 and hooked["SAM-2 memory encoder"] > 0
    assert profile.overhead_ratio == profile.total_seconds / profile.floor_seconds


def test_peak_memory_is_per_run_not_process_lifetime():
    with PeakMemory(interval=0.001) as big:
        block = np.ones(200 * 1024 * 1024 // 8)  # 200 MiB, touched
        block.sum()
        del block
    with PeakMemory(interval=0.001) as small:
        np.ones(1024).sum()
    assert big.result.rss_increase_mib > 150
    assert small.result.rss_increase_mib < 50 and small.result.peak_rss_mib < big.result.peak_rss_mib
    assert big.result.cuda_peak_mib is None and big.result.samples >= 2


def test_expected_ratios_and_argument_checks(tmp_path):
    assert expected_token_ratio(Variant("astc", 4), 10, 5) == 2 * 3 / 10
    assert expected_token_ratio(Variant("first_k"), 20, 5) == 0.25
    with pytest.raises(ConfigError, match="frames must be distinct integers"):
        run_frame_scaling(out_dir=tmp_path, frames=(5, 5), model=object())
    with pytest.raises(ConfigError, match="modes must be a non-empty subset"):
        run_frame_scaling(out_dir=tmp_path, modes=("sa2va",), model=object())


def test_svac_bench_frames_runs_the_eval_script():
    """``svac bench frames`` hands its arguments to ``eval/frame_scaling.py`` (here: its help and a bad value)."""
    from svac.cli import main

    shown = subprocess.run([sys.executable, "-m", "svac.cli", "bench", "frames", "--help"], capture_output=True,
                           text=True, check=True)
    assert "--clip-lens" in shown.stdout and "svac bench frames" in shown.stdout
    bad = subprocess.run([sys.executable, str(EVAL_DIR / "frame_scaling.py"), "--frames", "0"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--frames" in bad.stderr
    assert main(["bench", "frames", "--frames", "0"]) == 2
