"""Benchmarks scored on single frames, with RLE JSON predictions: RefCOCO/+/g, A2D-Sentences, JHMDB-Sentences.

* **refcoco / refcoco+ / refcocog** -- each sentence is a one-frame video; the record keeps
  the predicted and the ground-truth mask as COCO RLE; the merge decodes them and computes
  cIoU and gIoU (:func:`svac.metrics.refcoco.refcoco_scores`).
* **a2d / jhmdb** -- each expression is segmented over its whole video once; the record keeps
  the prediction and the ground truth on every scored frame as RLE; the merge computes
  P@0.5:0.9, overall and mean IoU and COCO mAP (:func:`svac.metrics.a2d.a2d_sentences_scores`),
  every frame's prediction scored by the answer's confidence.

Both write ``predictions.json`` at the merge: a COCO-style results list
``[{"image_id", "category_id": 1, "segmentation": RLE, "score", "key"}]``.
"""

from __future__ import annotations

from pathlib import Path

from svac.data.readers import load_dataset
from svac.errors import AnnotationError
from svac.evaluation.a2d_readers import FrameLevelDataset, read_a2d, read_jhmdb
from svac.evaluation.predictions import decode_rle, encode_rle, write_json_atomic
from svac.evaluation.task import BenchmarkTask, EvalItem, MergedScores, Prediction
from svac.evaluation.video_sources import FrameListVideo
from svac.evaluation.video_tasks import item_key, items_from_samples
from svac.metrics.a2d import A2DSample, ScoredMask, a2d_sentences_scores
from svac.metrics.refcoco import refcoco_scores
from svac.video.reader import open_video

PREDICTIONS_JSON = "predictions.json"
#: The single category of COCO-style results (referring segmentation is category-agnostic).
COCO_CATEGORY_ID = 1


def _write_results(out_dir: Path, entries: list[dict]) -> dict[str, str]:
    path = write_json_atomic(out_dir / PREDICTIONS_JSON, entries)
    return {"predictions": str(path)}


class RefCOCOTask(BenchmarkTask):
    """RefCOCO / RefCOCO+ / RefCOCOg: one image per sentence; cIoU and gIoU.

    Raises:
        AnnotationError: wrong root / split or missing files (from the reader), or a split without masks.
    """

    def __init__(self, name: str, data_root: Path, split: str, *, reader: str, skip_invalid: bool = False) -> None:
        super().__init__(name, data_root, split)
        dataset = load_dataset(f"{reader}:{data_root}", split, skip_invalid=skip_invalid)
        self.items = items_from_samples(dataset)
        if not self.items:
            raise AnnotationError(f"{data_root}: {reader} split {split!r} holds no sentences")
        self.skipped = [s.message for s in dataset.skip_report.skipped]

    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Nothing per item: the RLE is in the record and goes to ``predictions.json`` at the merge."""

    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """``{"pred", "gt", "image_id"}``: the predicted and ground-truth masks as RLE."""
        gt = item.sample.load_masks([0])[0]
        return {"pred": encode_rle(prediction.masks[0]), "gt": encode_rle(gt),
                "image_id": item.sample.meta.get("image_id")}

    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """cIoU and gIoU; ``predictions.json``."""
        result = refcoco_scores((decode_rle(r["result"]["pred"]), decode_rle(r["result"]["gt"])) for r in records)
        scores = {"cIoU": result.ciou, "gIoU": result.giou, "n_samples": result.n_samples}
        entries = [{"key": r["key"], "image_id": r["result"]["image_id"], "category_id": COCO_CATEGORY_ID,
                    "segmentation": r["result"]["pred"], "score": r["score"]} for r in records]
        rows = [{"key": r["key"], "score": r["score"], "num_objects": r["num_objects"]} for r in records]
        notes = ["cIoU = total intersection / total union; gIoU = mean per-sentence IoU (empty vs empty = 1)."]
        return MergedScores(scores=scores, per_item=rows, files=_write_results(out_dir, entries), notes=notes)


class A2DTask(BenchmarkTask):
    """A2D-Sentences / JHMDB-Sentences: each expression over its video, scored on its annotated frames.

    Raises:
        AnnotationError: wrong root / split or missing files (see :mod:`svac.evaluation.a2d_readers`).
    """

    def __init__(self, name: str, data_root: Path, split: str, *, reader: str, skip_invalid: bool = False) -> None:
        super().__init__(name, data_root, split)
        dataset: FrameLevelDataset = read_a2d(data_root, split) if reader == "a2d" else read_jhmdb(data_root, split)
        items = []
        for sample in dataset.samples:
            def opener(s=sample):
                return FrameListVideo(s.frame_paths, name=s.video_id) if s.frame_paths is not None \
                    else open_video(s.video)

            items.append(EvalItem(key=item_key(sample.video_id, sample.exp_id), video_id=sample.video_id,
                                  exp_id=sample.exp_id, expression=sample.expression, open_video=opener,
                                  sample=sample))
        self.items = sorted(items, key=lambda it: it.key)
        self.skipped = list(dataset.skipped)

    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Nothing per item: the RLEs are in the record and go to ``predictions.json`` at the merge."""

    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """``{"frames": [{"frame", "image_id", "pred", "gt"}]}`` over the scored frames.

        Raises:
            AnnotationError: when a scored frame is past the video's end or its mask has another size.
        """
        sample = item.sample
        frames = list(sample.annotated_frames)
        n = prediction.masks.shape[0]
        if frames and frames[-1] >= n:
            raise AnnotationError(f"{sample.dataset} {item.key}: annotated frame {frames[-1] + 1} is past the video's "
                                  f"{n} frames ({sample.video})")
        gts = sample.load_masks(frames)
        if gts.shape[1:] != prediction.masks.shape[1:]:
            raise AnnotationError(f"{sample.dataset} {item.key}: ground truth is {gts.shape[2]}x{gts.shape[1]} but "
                                  f"the video is {prediction.masks.shape[2]}x{prediction.masks.shape[1]} "
                                  "(width x height)")
        return {"frames": [{"frame": t, "image_id": image_id, "pred": encode_rle(prediction.masks[t]),
                            "gt": encode_rle(gt)}
                           for t, image_id, gt in zip(frames, sample.image_ids, gts)]}

    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """P@K, overall / mean IoU and mAP over every scored frame; ``predictions.json``."""
        samples = [A2DSample(sample_id=f["image_id"], gt=decode_rle(f["gt"]),
                             predictions=(ScoredMask(decode_rle(f["pred"]), r["score"]),))
                   for r in records for f in r["result"]["frames"]]
        result = a2d_sentences_scores(samples)
        scores = {**{f"P@{k}": v for k, v in result.precision_at}, "overall_IoU": result.overall_iou,
                  "mean_IoU": result.mean_iou, "mAP": result.map_50_95, "AP50": result.ap_50, "AP75": result.ap_75,
                  "AP_small": result.ap_small, "AP_medium": result.ap_medium, "AP_large": result.ap_large,
                  "n_samples": result.n_samples}
        entries = [{"key": r["key"], "image_id": f["image_id"], "category_id": COCO_CATEGORY_ID,
                    "segmentation": f["pred"], "score": r["score"]} for r in records for f in r["result"]["frames"]]
        rows = [{"key": r["key"], "frames": len(r["result"]["frames"]), "score": r["score"],
                 "num_objects": r["num_objects"]} for r in records]
        notes = ["One sample per (expression, annotated frame); P@K counts IoU > K; mAP: COCOeval segm, "
                 "category-agnostic, each frame's prediction scored by the answer's confidence."]
        return MergedScores(scores=scores, per_item=rows, files=_write_results(out_dir, entries), notes=notes)
