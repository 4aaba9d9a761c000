"""Per-expression statistics of svac eval runs: bootstrap intervals, families, pair identity, paired comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svac.evaluation.expression_stats import (
    PAIR_IDENTITY_IOU,
    bootstrap_mean,
    compare_runs,
    family_scores,
    mask_iou,
    pair_identity,
    phrase_restates,
    restated,
)


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_values():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(rng.normal(0.5, 0.1, 20))
    large = bootstrap_mean(rng.normal(0.5, 0.1, 2000))
    assert small.low < small.mean < small.high and large.low < large.mean < large.high
    assert (large.high - large.low) < 0.3 * (small.high - small.low)
    # the normal approximation of the mean's 95 % interval: +-1.96 sigma / sqrt(n)
    assert large.high - large.low == pytest.approx(2 * 1.96 * 0.1 / np.sqrt(2000), rel=0.15)
    constant = bootstrap_mean([0.3] * 5)
    assert (constant.mean, constant.low, constant.high, constant.n) == (0.3, 0.3, 0.3, 5)
    assert bootstrap_mean([1.0, 2.0]) == bootstrap_mean([1.0, 2.0])  # fixed seed: reproducible
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean([])


def test_family_scores_group_expressions_by_the_families_they_name():
    rows = [{"key": "a", "J": 0.8, "F": 1.0}, {"key": "b", "J": 0.2, "F": 0.4}, {"key": "c", "J": 0.5, "F": 0.5},
            {"key": "d", "J": 0.0, "F": 0.0}]
    families = {"a": ["color"], "b": ["color", "motion"], "c": ["shape", "position"], "d": []}
    got = family_scores(rows, families)
    assert set(got) == {"color", "motion", "shape", "position", "static", "dynamic"}  # d names none: left out
    assert got["color"]["J&F"] == pytest.approx((0.9 + 0.3) / 2) and got["color"]["n"] == 2
    assert got["color"]["J"] == pytest.approx(0.5) and got["color"]["F"] == pytest.approx(0.7)
    assert got["motion"]["J&F"] == pytest.approx(0.3) and got["dynamic"]["n"] == 1
    assert got["static"]["J&F"] == pytest.approx((0.9 + 0.5) / 2) and got["static"]["n"] == 2


def test_pair_identity_counts_near_identical_masks_of_different_objects_on_one_video():
    frames = np.zeros((2, 4, 4), bool)
    a = frames.copy()
    a[:, :2] = True
    b = a.copy()
    b[0, 3, 3] = True           # IoU 16/17 ~ 0.94: not identical
    c = a.copy()                # identical to a
    predictions = {"v/0": a, "v/1": b, "v/2": c, "v/3": a, "w/0": a, "w/1": ~a}
    items = [("v/0", "v", (1,)), ("v/1", "v", (2,)), ("v/2", "v", (3,)), ("v/3", "v", (1,)),  # v/3 names v/0's object
             ("w/0", "w", (1,)), ("w/1", "w", (2,))]
    got = pair_identity(items, predictions.__getitem__)
    # pairs naming different objects: v0-v1, v0-v2, v1-v2, v1-v3, v2-v3 and w0-w1; identical: v0-v2, v2-v3
    assert (got.pairs, got.identical) == (6, 2) and got.rate == pytest.approx(2 / 6)
    assert mask_iou(a, b) == pytest.approx(16 / 17) and mask_iou(a, b) < PAIR_IDENTITY_IOU
    assert mask_iou(frames, frames) == 1.0


def _write_run(folder, scores):
    folder.mkdir()
    lines = ["key,J,F,J&F,families"] + [f"{k},{j!r},{f!r},{(j + f) / 2!r},{fam}" for k, (j, f, fam) in scores.items()]
    (folder / "per_item.csv").write_text("\n".join(lines) + "\n")


def test_compare_runs_is_a_paired_difference_and_the_cli_writes_it(tmp_path, capsys):
    from svac.cli import main

    _write_run(tmp_path / "a", {"v/0": (0.5, 0.5, "color"), "v/1": (0.2, 0.4, "motion+color"), "v/2": (0.1, 0.1, "")})
    _write_run(tmp_path / "b", {"v/0": (0.6, 0.6, "color"), "v/1": (0.3, 0.5, "motion+color"), "x/9": (1.0, 1.0, "")})
    got = compare_runs(tmp_path / "a", tmp_path / "b")
    assert got.difference.n == 2 and got.difference.mean == pytest.approx(0.1)
    assert got.difference.low == pytest.approx(0.1) and got.difference.high == pytest.approx(0.1)  # paired: exact
    assert got.families["motion"]["b_minus_a"]["mean"] == pytest.approx(0.1)
    assert main(["metrics", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["b_minus_a"]["n"] == 2
    assert "B-A +0.1000" in capsys.readouterr().out
    assert main(["metrics", "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.json")]) == 2
    with pytest.raises(FileNotFoundError, match="per_item.csv"):
        compare_runs(tmp_path / "a", tmp_path / "nope")


def test_restated_counts_answers_whose_first_phrase_is_the_expression():
    assert phrase_restates("Sure, <p>The  Red square</p>[SEG].", "the red square")  # case and spaces aside
    assert not phrase_restates("Sure, <p>the red circle</p>[SEG].", "the red square")
    assert not phrase_restates("Sure, <p>the red square</p>[SEG].", "the red")  # the whole phrase, not a prefix
    assert not phrase_restates("Sure, the red square [SEG].", "the red square")  # no phrase
    assert not phrase_restates("Sure, <p>the red square", "the red square")  # never closed
    assert not phrase_restates("<p>a</p> and <p>the red square</p>", "the red square")  # the first phrase counts
    got = restated([("<p>x</p>[SEG]", "x"), ("<p>y</p>[SEG]", "x"), ("[SEG]", "x"), ("<p> X </p>", "x")])
    assert (got.restated, got.answers, got.rate) == (2, 4, 0.5)
    assert got.to_dict() == {"rate": 0.5, "restated": 2, "answers": 4}
    assert restated([]).to_dict() == {"rate": 0.0, "restated": 0, "answers": 0}
