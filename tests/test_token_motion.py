"""svac.evaluation.token_motion: how far objects move between the MLLM's images, in visual tokens (issue 18)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

SIZE, SIDE, SPEED = 64, 8, 3  # frame pixels (square), object side (pixels), the mover's pixels per frame


@dataclass
class _Sample:
    """The fields token_motion reads of a ReferringSample: object 1 moves SPEED px/frame to the right, 2 stays."""

    video_id: str
    object_ids: tuple[int, ...]
    meta: dict = field(default_factory=dict)
    num_frames: int = 40

    def mask_loader(self, positions):  # pragma: no cover - only its presence is read
        raise AssertionError

    def load_masks(self, positions):
        masks = np.zeros((len(positions), SIZE, SIZE), bool)
        for n, t in enumerate(positions):
            x = 2 + SPEED * t if self.object_ids[0] == 1 else 40
            y = 10 if self.object_ids[0] == 1 else 40
            masks[n, y:y + SIDE, x % (SIZE - SIDE):x % (SIZE - SIDE) + SIDE] = True
        return masks


def test_travel_is_the_centroid_shift_in_token_widths_of_each_image(tiny_model):
    from svac.astc import composite_grid_size, plan_clips
    from svac.evaluation.token_motion import frame_pairs, summarise, travels
    from svac.mllm.internvl import token_grid_side

    samples = [_Sample("v", (1,), {"families": ["speed"]}), _Sample("v", (2,), {"families": ["colour"]}),
               _Sample("v", (1,), {"families": ["motion", "speed"]})]
    rows = travels(tiny_model, samples, videos=1)
    plan = plan_clips(40, tiny_model.config.astc)
    pairs = frame_pairs(plan)
    grid = token_grid_side(tiny_model.config.mllm)
    assert pairs["across_anchors"] == [(a, b, 1) for a, b in zip(plan.anchor_frames(), plan.anchor_frames()[1:])]
    assert all(a == c.frame_indices[1] and b == c.frame_indices[-1] and tiles == composite_grid_size(len(c.frame_indices) - 1)
               for (a, b, tiles), c in zip(pairs["within_clip"], plan.clips))
    # the two expressions naming only video families, each on every pair (the mover wraps at the right edge)
    expected = []
    for measure, measure_pairs in pairs.items():
        for a, b, tiles in measure_pairs:
            xa, xb = (2 + SPEED * a) % (SIZE - SIDE), (2 + SPEED * b) % (SIZE - SIDE)
            expected.append((measure, abs(xb - xa) / (SIZE / grid * tiles)))
    assert len(rows) == 2 * len(expected)
    for row, (measure, travel) in zip(rows, expected * 2):
        assert row["measure"] == measure and row["travel"] == pytest.approx(travel)
        assert row["gap"] == pytest.approx(travel)  # the other object does not move
    summary = summarise(rows)
    assert summary["within_clip"]["speed"]["n"] == 2 * len(pairs["within_clip"])
    assert summary["within_clip"]["motion"]["n"] == len(pairs["within_clip"]) and summary["within_clip"]["time"]["n"] == 0
    assert summary["across_anchors"]["all"]["travel_median"] == pytest.approx(
        np.median([t for m, t in expected if m == "across_anchors"]))


def test_only_astc_plans_are_measured(tiny_model):
    from svac.astc import plan_clips
    from svac.config import ASTCConfig
    from svac.evaluation.token_motion import frame_pairs

    with pytest.raises(ValueError, match="first_k"):
        frame_pairs(plan_clips(40, ASTCConfig(mode="first_k", num_frames=10, clip_len=5, first_k=5)))


def test_the_command_writes_both_measures_and_refuses_an_existing_out(tmp_path, probe_bench_root, tiny_model):
    from svac.errors import OutputExistsError
    from svac.evaluation.token_motion import MEASURES, main

    model_dir = tiny_model.save_pretrained(tmp_path / "model").path
    out = tmp_path / "motion.json"
    args = [str(model_dir), "--data-root", str(probe_bench_root), "--split", "train", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert set(MEASURES) <= set(result) and result["token_grid"] == 4 and result["clip_len"] == 5
    assert set(result["within_clip"]) == {"motion", "speed", "time", "all"}
    out.write_text("keep me")
    with pytest.raises(OutputExistsError, match="exists"):
        main(args)
    assert out.read_text() == "keep me"
