"""The other benchmark tasks end to end on tiny fixtures: ReVOS, Ref-DAVIS17, RefCOCO, JHMDB- and A2D-Sentences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from svac.errors import AnnotationError
from svac.evaluation import a2d_readers
from svac.evaluation.predictions import decode_rle, encode_rle, read_binary_png
from svac.evaluation.runner import run_benchmark
from svac.metrics.a2d import A2DSample, ScoredMask, a2d_sentences_scores
from svac.metrics.refcoco import refcoco_scores
from svac.metrics.revos import RevosExpression, revos_scores
from svac.video.export import davis_palette

from test_eval_runner import HEIGHT, NUM_FRAMES, WIDTH, ColorModel, draw_frame

TEXTS = {1: "the red square", 2: "the green square"}


def _save_frames(folder: Path, v: int, names: list[str]) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for t, name in enumerate(names):
        image, lab = draw_frame(v, t)
        Image.fromarray(image).save(folder / f"{name}.png")
        labels.append(lab)
    return labels


def _run(name: str, root: Path, out: Path, **kw):
    return run_benchmark(name, data_root=root, model_spec="color", out_dir=out, model=ColorModel(), progress=False,
                         **kw)


def test_revos_scores_by_type_match_the_metric_on_the_written_pngs(tmp_path):
    root = tmp_path / "revos"
    names = [f"{t:05d}" for t in range(NUM_FRAMES)]
    meta, mask_dict, foreground = {"videos": {}}, {}, {}
    for v in range(2):
        vid = f"set/v{v}"  # ReVOS video ids contain a slash
        labels = _save_frames(root / "JPEGImages" / vid, v, names)
        for obj in (1, 2):
            mask_dict[f"{v}-{obj}"] = [encode_rle(lab == obj) for lab in labels]
        foreground[vid] = {"masks_rle": [encode_rle(lab > 0) for lab in labels]}
        meta["videos"][vid] = {"frames": names, "expressions": {
            str(obj - 1): {"exp": TEXTS[obj], "obj_id": [obj], "anno_id": [f"{v}-{obj}"], "type_id": obj - 1}
            for obj in (1, 2)}}
    (root / "meta_expressions_valid_.json").write_text(json.dumps(meta))
    (root / "mask_dict.json").write_text(json.dumps(mask_dict))
    (root / "mask_dict_foreground.json").write_text(json.dumps(foreground))
    out = tmp_path / "run"
    result = _run("revos", root, out)
    expressions = {}
    for v in range(2):
        labels = [draw_frame(v, t)[1] for t in range(NUM_FRAMES)]
        for obj in (1, 2):
            folder = out / "predictions" / f"set/v{v}" / str(obj - 1)
            pred = np.stack([read_binary_png(folder / f"{n}.png") for n in names])
            expressions[f"set/v{v}/{obj - 1}"] = RevosExpression(
                ("referring", "reasoning")[obj - 1], pred, np.stack(labels) == obj, np.stack(labels) > 0)
    reference = revos_scores(dict(sorted(expressions.items())))
    assert result.scores["overall"]["J&F"] == reference.overall.jf
    assert result.scores["referring"]["R"] == reference.referring.r
    assert result.scores["reasoning"]["n_expressions"] == 2 and result.scores["no_target"] is None
    assert 0.0 < reference.overall.jf < 1.0


REVOS_T, REVOS_H, REVOS_W = 2, 4, 6


def _cells(rows: slice, cols: slice, *extra: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((REVOS_H, REVOS_W), dtype=bool)
    mask[rows, cols] = True
    for y, x in extra:
        mask[y, x] = True
    return mask


NOTHING = _cells(slice(0, 0), slice(0, 0))
# two objects on a 2-frame 4x6 video; object "b" is absent on frame 1 (null RLE)
REVOS_OBJECTS = {"a": [_cells(slice(0, 2), slice(0, 3)), _cells(slice(1, 3), slice(1, 4))],
                 "b": [_cells(slice(2, 4), slice(3, 6)), None]}
# exp id -> (referred objects, type_id, predicted mask per frame)
REVOS_EXPRESSIONS = {
    "0": (["a"], 0, [_cells(slice(0, 2), slice(0, 2), (3, 0)), REVOS_OBJECTS["a"][1]]),
    "1": (["b"], 1, [_cells(slice(2, 4), slice(3, 5)), _cells(slice(0, 2), slice(5, 6))]),
    "2": ([], 2, [NOTHING, _cells(slice(3, 4), slice(5, 6))]),  # no target, one hallucinated pixel
    "3": ([], 2, [NOTHING, NOTHING]),  # no target, nothing predicted
}


class HandMadeModel:
    """A stand-in for SVAC that answers each ReVOS expression with its hand-made masks."""

    def segment(self, video, expression, *, num_frames=None, clip_len=None, progress=False):
        from svac.outputs import SegmentationResult, Timings
        from svac.video.reader import open_video

        source = open_video(video)
        exp_id = expression.rsplit(" ", 1)[1]
        masks = np.stack(REVOS_EXPRESSIONS[exp_id][2])[None]
        return SegmentationResult(
            text="[SEG]", masks=masks, scores=np.array([0.5], np.float32), frame_indices=np.arange(source.num_frames),
            clip_spans=[(0, source.num_frames)], frame_names=source.frame_names, video_name=source.name, fps=None,
            mode="astc", csa_mode="per_clip", num_visual_tokens=1, timings=Timings(total=0.0))


def _write_hand_made_revos(root: Path) -> None:
    names = [f"{t:05d}" for t in range(REVOS_T)]
    (root / "JPEGImages" / "set" / "vid").mkdir(parents=True)
    for name in names:
        Image.fromarray(np.full((REVOS_H, REVOS_W, 3), 90, np.uint8)).save(root / "JPEGImages" / "set" / "vid" /
                                                                         f"{name}.jpg")
    mask_dict = {obj: [None if m is None else encode_rle(m) for m in frames] for obj, frames in REVOS_OBJECTS.items()}
    union = [REVOS_OBJECTS["a"][t] | (REVOS_OBJECTS["b"][t] if REVOS_OBJECTS["b"][t] is not None else NOTHING)
             for t in range(REVOS_T)]
    expressions = {e: {"exp": f"expression {e}", "obj_id": list(range(len(objs))), "anno_id": objs, "type_id": kind}
                   for e, (objs, kind, _) in REVOS_EXPRESSIONS.items()}
    (root / "meta_expressions_valid_.json").write_text(
        json.dumps({"videos": {"set/vid": {"frames": names, "expressions": expressions}}}))
    (root / "mask_dict.json").write_text(json.dumps(mask_dict))
    (root / "mask_dict_foreground.json").write_text(
        json.dumps({"set/vid": {"masks_rle": [encode_rle(m) for m in union]}}))


def _official_revos_a_r(root: Path, folder: Path, exp_id: str) -> tuple[float, float]:
    """A and R of one expression restated from VISA ``tools/eval_revos.py`` + ``tools/metrics.py``.

    Ground truth: uint8 sum of the referred objects' decoded RLEs; prediction: the PNG's raw grey
    level (``cv2.imread(..., IMREAD_GRAYSCALE)``); A = mean over frames of ``mean(gt == pred)``;
    R = mean over frames of ``max(1 - ((1 - gt) * pred).sum() / (foreground.sum() + 1e-6), 0)``.
    """
    meta = json.loads((root / "meta_expressions_valid_.json").read_text())["videos"]["set/vid"]
    mask_dict = json.loads((root / "mask_dict.json").read_text())
    foreground = json.loads((root / "mask_dict_foreground.json").read_text())["set/vid"]["masks_rle"]
    accuracy, robustness = [], []
    for t, name in enumerate(meta["frames"]):
        gt = np.zeros((REVOS_H, REVOS_W), np.uint8)
        for anno in meta["expressions"][exp_id]["anno_id"]:
            if mask_dict[anno][t]:
                gt += decode_rle(mask_dict[anno][t]).astype(np.uint8)
        pred = np.asarray(Image.open(folder / f"{name}.png"), dtype=np.uint8)
        fg = decode_rle(foreground[t]).astype(np.uint8)
        accuracy.append(np.mean(gt == pred))
        robustness.append(max(1 - ((1 - gt) * pred).sum() / (fg.sum() + 1e-6), 0.0))
    return float(np.mean(accuracy)), float(np.mean(robustness))


def test_revos_prediction_pngs_score_the_same_under_the_official_arithmetic(tmp_path):
    """ReVOS PNGs hold grey levels 0 / 1, so the official script's A and R on them equal svac's."""
    import csv

    root = tmp_path / "revos"
    _write_hand_made_revos(root)
    out = tmp_path / "run"
    result = run_benchmark("revos", data_root=root, model_spec="hand-made", out_dir=out, model=HandMadeModel(),
                           progress=False)
    with (out / "per_item.csv").open() as handle:
        rows = {r["key"]: r for r in csv.DictReader(handle)}
    # VISA tools/eval_revos.py (cilinyan/VISA ec158fde) run on this prediction folder, per expression
    # (percent, rounded to 2 decimals as the script writes them): (J, F, A, R)
    official = {"0": (78.57, 94.44, 93.75, 95.83), "1": (33.33, 46.15, 91.67, 83.33),
                "2": (50.0, 50.0, 97.92, 91.67), "3": (100.0, 100.0, 100.0, 100.0)}
    for exp_id, (j, f, a, r) in official.items():
        folder = out / "predictions" / "set" / "vid" / exp_id
        grey_levels = set(np.unique(np.concatenate([np.asarray(Image.open(p)).ravel()
                                                    for p in sorted(folder.glob("*.png"))])).tolist())
        assert grey_levels <= {0, 1}
        row = rows[f"set/vid/{exp_id}"]
        svac_a, svac_r = float(row["A"]), float(row["R"])
        restated_a, restated_r = _official_revos_a_r(root, folder, exp_id)
        assert svac_a == pytest.approx(restated_a, abs=1e-12) and svac_r == pytest.approx(restated_r, abs=1e-12)
        ours = tuple(round(100 * float(row[k]), 2) for k in ("J", "F", "A", "R"))
        assert ours == (j, f, a, r)
    no_target = result.scores["no_target"]
    assert no_target["n_expressions"] == 2 and no_target["J"] == 0.75  # (0.5 + 1) / 2: empty ground truth


def test_refdavis17_merges_four_runs_of_davis2017_unsupervised_scores(tmp_path):
    root = tmp_path / "davis"
    names = [f"{t:05d}" for t in range(NUM_FRAMES)]
    palette = davis_palette().reshape(-1).tolist()
    meta = {"videos": {}}
    for v in range(2):
        labels = _save_frames(root / "valid" / "JPEGImages" / f"seq{v}", v, names)
        (root / "valid" / "Annotations" / f"seq{v}").mkdir(parents=True)
        for name, lab in zip(names, labels):
            im = Image.fromarray(lab, mode="P")
            im.putpalette(palette)
            im.save(root / "valid" / "Annotations" / f"seq{v}" / f"{name}.png")
        # Conversion order: per object, 4 expressions (2 annotators x first-frame / full-video).
        meta["videos"][f"seq{v}"] = {"frames": names, "expressions": {
            str(4 * (obj - 1) + k): {"exp": TEXTS[obj], "obj_id": str(obj)} for obj in (1, 2) for k in range(4)}}
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    out = tmp_path / "run"
    result = _run("davis17", root, out)
    runs = result.scores["runs"]
    assert sorted(runs) == ["annotator1_first_frame", "annotator1_full_video", "annotator2_first_frame",
                            "annotator2_full_video"]
    assert all(r["n_objects"] == 4 for r in runs.values())
    assert result.scores["J&F"] == pytest.approx(np.mean([r["J&F"] for r in runs.values()]), abs=1e-15)
    assert 0.0 < result.scores["J&F"] < 1.0
    painted = np.asarray(Image.open(out / "davis_runs" / "annotator1_full_video" / "seq0" / "00002.png"))
    assert set(np.unique(painted)) == {0, 1, 2}
    assert (out / "davis_eval" / "annotator2_first_frame" / "global.json").is_file()


def test_refcoco_ciou_giou_and_rle_predictions(tmp_path):
    root = tmp_path / "refcoco"
    (root / "images").mkdir(parents=True)
    images, annotations, refs = [], [], []
    for v in range(3):
        image, labels = draw_frame(v, v)
        Image.fromarray(image).save(root / "images" / f"img{v}.png")
        images.append({"id": v + 1, "file_name": f"img{v}.png", "height": HEIGHT, "width": WIDTH})
        for obj in (1, 2):
            ys, xs = np.nonzero(labels == obj)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            annotations.append({"id": 10 * v + obj, "image_id": v + 1, "category_id": 1,
                                "segmentation": [[float(c) for c in (x0, y0, x1, y0, x1, y1, x0, y1)]]})
            refs.append({"ref_id": 10 * v + obj, "ann_id": 10 * v + obj, "image_id": v + 1, "split": "val",
                         "category_id": 1, "sentences": [{"sent": TEXTS[obj], "sent_id": 100 * v + obj}]})
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": annotations}))
    (root / "refs(unc).json").write_text(json.dumps(refs))
    out = tmp_path / "run"
    result = _run("refcoco", root, out)
    entries = json.loads((out / "predictions.json").read_text())
    assert len(entries) == result.scores["n_samples"] == 6
    from svac.data.readers import load_dataset

    samples = {f"{s.video_id}/{s.exp_id}": s for s in load_dataset(f"refcoco:{root}", "val")}
    pairs = [(decode_rle(e["segmentation"]), samples[e["key"]].load_masks([0])[0]) for e in entries]
    for e, (pred, _) in zip(entries, pairs):  # the RLE is the model's mask: ColorModel's colour rule
        image = np.asarray(Image.open(samples[e["key"]].frame_paths[0]).convert("RGB"))
        channel = 0 if "red" in samples[e["key"]].expression else 1
        assert np.array_equal(pred, np.roll(image[..., channel] > 150, 2, axis=1))
    reference = refcoco_scores(pairs)
    assert (result.scores["cIoU"], result.scores["gIoU"]) == (reference.ciou, reference.giou)
    assert 0.3 < reference.giou < 1.0


def test_jhmdb_scores_every_frame_that_has_a_puppet_mask(tmp_path):
    root = tmp_path / "jhmdb"
    rows = ["video_id,query"]
    for v in range(2):
        vid = f"clip_{v}"
        names = [f"{t + 1:05d}" for t in range(NUM_FRAMES)]
        labels = _save_frames(root / "Rename_Images" / "wave" / vid, v, names)
        (root / "puppet_mask" / "wave" / vid).mkdir(parents=True)
        part = np.stack([lab == 1 for lab in labels[:-1]], axis=2).astype(np.uint8)  # last frame has no mask
        scipy.io.savemat(root / "puppet_mask" / "wave" / vid / "puppet_mask.mat", {"part_mask": part})
        rows.append(f"{vid},The  RED square")
    (root / "jhmdb_annotation.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    result = _run("jhmdb", root, out)
    assert result.scores["n_samples"] == 2 * (NUM_FRAMES - 1)
    entries = json.loads((out / "predictions.json").read_text())
    assert entries[0]["image_id"] == "v_clip_0_f_1_i_0" and entries[0]["category_id"] == 1
    samples = []
    for e in entries:
        v, t = int(e["key"].split("/")[0][-1]), int(e["image_id"].split("_f_")[1].split("_")[0]) - 1
        samples.append(A2DSample(e["image_id"], draw_frame(v, t)[1] == 1,
                                 (ScoredMask(decode_rle(e["segmentation"]), e["score"]),)))
    reference = a2d_sentences_scores(samples)
    assert result.scores["mean_IoU"] == reference.mean_iou and result.scores["mAP"] == reference.map_50_95
    assert result.scores["P@0.5"] == reference.precision(0.5) and 0.0 < reference.mean_iou < 1.0


def _write_a2d(root: Path) -> None:
    """A2D layout with annotation files in numpy's npz format standing in for HDF5 (h5py is not installed)."""
    import av

    (root / "Release" / "clips320H").mkdir(parents=True)
    (root / "text_annotations" / "a2d_annotation_with_instances").mkdir(parents=True)
    (root / "Release" / "videoset.csv").write_text(
        "vidA,11,0,1,48,64,6,2,1\nvidB,11,0,1,48,64,6,2,1\nvidT,11,0,1,48,64,6,2,0\n")
    (root / "text_annotations" / "a2d_missed_videos.txt").write_text("vidB\n")
    (root / "text_annotations" / "a2d_annotation.txt").write_text(
        "video_id,instance_id,query\nvidA,1,the red square\nvidA,2,the green square\nvidA,1 (copy),x\n"
        "vidB,1,the red square\nvidT,1,the red square\n")
    with av.open(str(root / "Release" / "clips320H" / "vidA.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "0"}
        for t in range(NUM_FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(draw_frame(0, t)[0], format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    folder = root / "text_annotations" / "a2d_annotation_with_instances" / "vidA"
    folder.mkdir()
    for number, present in ((2, [1, 2]), (5, [2])):  # 1-based frame numbers
        labels = draw_frame(0, number - 1)[1]
        with open(folder / f"{number:05d}.h5", "wb") as handle:
            np.savez(handle, instance=np.array(present), masks=np.stack([labels == i for i in present]))


def _npz_reader(path: Path):
    data = np.load(path)
    return [int(i) for i in data["instance"]], data["masks"]


def test_a2d_scores_each_instance_on_the_frames_where_it_is_annotated(tmp_path, monkeypatch):
    root = tmp_path / "a2d"
    _write_a2d(root)
    monkeypatch.setattr(a2d_readers, "read_a2d_h5", _npz_reader)
    out = tmp_path / "run"
    result = _run("a2d", root, out)
    assert result.num_items == 2 and result.scores["n_samples"] == 3  # instance 1: frame 2; instance 2: frames 2, 5
    entries = json.loads((out / "predictions.json").read_text())
    assert [e["image_id"] for e in entries] == ["v_vidA_f_2_i_1", "v_vidA_f_2_i_2", "v_vidA_f_5_i_2"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert any("'1 (copy)' is not an integer" in s for s in metrics["skipped_annotations"])
    assert 0.0 < result.scores["mean_IoU"] <= 1.0


def test_a2d_without_h5py_says_how_to_get_it(tmp_path, monkeypatch):
    root = tmp_path / "a2d"
    _write_a2d(root)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(AnnotationError, match="needs the h5py package: pip install h5py"):
        _run("a2d", root, tmp_path / "run")
    with pytest.raises(AnnotationError, match=r"videoset\.csv not found; expected an A2D-Sentences root"):
        _run("a2d", tmp_path, tmp_path / "run2")
