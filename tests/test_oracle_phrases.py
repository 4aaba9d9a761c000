"""``svac data oracle-phrases``: a synthetic split whose expressions that need the video name their object by what
one frame shows (issue 18's oracle-description probe, svac/data/synthetic/oracle_phrases.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from svac.cli import main
from svac.data.readers import load_dataset
from svac.data.synthetic import write_benchmark
from svac.data.synthetic.oracle_phrases import ORACLE_OF_KEY, write_oracle_phrases
from svac.errors import AnnotationError, OutputExistsError


def _meta(root) -> dict:
    return json.loads((root / "meta_expressions" / "valid" / "meta_expressions.json").read_text())["videos"]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    """A held-out synthetic split of 6 videos (the standard subset: about half its expressions need the video)."""
    root = tmp_path_factory.mktemp("synth") / "valid"
    write_benchmark(root, videos=6, seed=1000, split="valid", num_frames=(12, 12), size=(64, 64), progress=False)
    return root


def test_the_copy_replaces_exactly_the_expressions_with_an_answer_phrase(benchmark, tmp_path):
    copy = write_oracle_phrases(benchmark, tmp_path / "oracle")
    source, oracle = _meta(benchmark), _meta(tmp_path / "oracle")
    assert oracle.keys() == source.keys()
    replaced = kept = 0
    for vid, video in source.items():
        assert oracle[vid]["expressions"].keys() == video["expressions"].keys()
        for exp_id, expression in video["expressions"].items():
            new = oracle[vid]["expressions"][exp_id]
            if "answer_phrase" in expression:
                replaced += 1
                assert new["exp"] == expression["answer_phrase"] != expression["exp"]
                assert new[ORACLE_OF_KEY] == expression["exp"]
                assert {k: v for k, v in new.items() if k not in ("exp", ORACLE_OF_KEY)} == {
                    k: v for k, v in expression.items() if k != "exp"}
            else:
                kept += 1
                assert new == expression
    assert (copy.replaced, copy.kept) == (replaced, kept) and replaced > 0 and kept > 0


def test_the_copy_reads_as_the_same_videos_and_masks_with_the_new_texts(benchmark, tmp_path):
    write_oracle_phrases(benchmark, tmp_path / "oracle")
    source = {(s.video_id, s.exp_id): s for s in load_dataset(f"rvos:{benchmark}", "valid")}
    oracle = {(s.video_id, s.exp_id): s for s in load_dataset(f"rvos:{tmp_path / 'oracle'}", "valid")}
    assert oracle.keys() == source.keys()
    changed = 0
    for key, sample in oracle.items():
        original = source[key]
        assert sample.object_ids == original.object_ids
        assert [p.name for p in sample.frame_paths] == [p.name for p in original.frame_paths]
        assert np.array_equal(sample.load_masks([0, sample.num_frames - 1]),
                              original.load_masks([0, original.num_frames - 1]))
        changed += sample.expression != original.expression
    assert changed > 0


def test_a_benchmark_without_answer_phrases_is_refused_and_nothing_is_written(benchmark, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(benchmark, old)
    path = old / "meta_expressions" / "valid" / "meta_expressions.json"
    meta = json.loads(path.read_text())
    for video in meta["videos"].values():
        for expression in video["expressions"].values():
            expression.pop("answer_phrase", None)
    path.write_text(json.dumps(meta))
    with pytest.raises(AnnotationError, match="answer_phrase"):
        write_oracle_phrases(old, tmp_path / "oracle")
    assert not (tmp_path / "oracle").exists()
    with pytest.raises(FileNotFoundError, match="split"):
        write_oracle_phrases(benchmark, tmp_path / "oracle", split="train")


def test_an_existing_folder_is_not_overwritten_without_asking(benchmark, tmp_path):
    out = tmp_path / "oracle"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(OutputExistsError):
        write_oracle_phrases(benchmark, out)
    assert (out / "mine.txt").read_text() == "keep"


def test_cli_writes_the_copy_and_says_how_many_it_replaced(benchmark, tmp_path, capsys):
    assert main(["data", "oracle-phrases", str(benchmark), "--out", str(tmp_path / "oracle")]) == 0
    replaced = sum("answer_phrase" in e for v in _meta(benchmark).values() for e in v["expressions"].values())
    assert f"{replaced} expressions replaced" in capsys.readouterr().out
