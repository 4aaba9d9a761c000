"""Ref-DAVIS17 (Khoreva et al., ACCV 2018): four DAVIS-2017 unsupervised evaluations, averaged.

Every object of a DAVIS-2017 video has four expressions: two annotators x (first-frame,
full-video). Each expression is segmented on its own (binary PNGs under
``predictions/<video>/<exp_id>/``); at the merge the expressions of one run
(``annotator<a>_<type>``) are painted into one DAVIS-2017 result PNG per frame
(``davis_runs/<run>/<video>/<frame>.png``, pixel = the expression's object id; where two
objects overlap the higher id wins), each run is scored with the DAVIS-2017
unsupervised protocol (:func:`svac.metrics.davis_eval.evaluate_davis_folders`, tables in
``davis_eval/<run>/``) and J, F, J&F are the means over the four runs
(:func:`svac.metrics.refdavis17.combine_refdavis17_runs`).

The run of an expression comes from its entry's ``annotator`` / ``annotation_type`` keys, or,
when the entries lack them, from the usual conversion order (ids ``"0".."n-1"``, per object
annotator 1 first-frame, annotator 1 full-video, annotator 2 first-frame, annotator 2 full-video).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from svac.data.readers import load_dataset
from svac.errors import AnnotationError
from svac.evaluation.predictions import read_binary_png, write_binary_pngs, write_indexed_pngs
from svac.evaluation.task import BenchmarkTask, EvalItem, MergedScores, Prediction
from svac.evaluation.video_tasks import expression_folder, items_from_samples
from svac.metrics.davis_eval import evaluate_davis_folders
from svac.metrics.refdavis17 import combine_refdavis17_runs

RUNS_DIR = "davis_runs"
EVAL_DIR = "davis_eval"
#: Largest object id a DAVIS-2017 palette PNG can hold.
MAX_OBJECT_ID = 255


def run_name(meta: dict) -> str:
    """``annotator<a>_<annotation_type>``, e.g. ``annotator1_first_frame``."""
    return f"annotator{meta['annotator']}_{meta['annotation_type']}"


class RefDAVIS17Task(BenchmarkTask):
    """Ref-DAVIS17: binary PNGs per expression, four DAVIS-2017 unsupervised runs merged.

    Raises:
        AnnotationError: wrong root / split (from the reader), a split without masks, an
            expression naming more than one object or an id above 255, or expressions without
            annotator information in an order the conversion rule cannot label.
    """

    def __init__(self, name: str, data_root: Path, split: str, *, skip_invalid: bool = False) -> None:
        super().__init__(name, data_root, split)
        dataset = load_dataset(f"davis17:{data_root}", split, skip_invalid=skip_invalid)
        if not all({"annotator", "annotation_type"} <= set(s.meta) for s in dataset):
            dataset = load_dataset(f"davis17:{data_root}", split, skip_invalid=skip_invalid, annotator_order=True)
        if dataset.layout.masks_dir is None:
            raise AnnotationError(f"{data_root}: Ref-DAVIS17 split {split!r} has no Annotations folder to score with")
        self.gt_dir = dataset.layout.masks_dir
        self.items = items_from_samples(dataset)
        if not self.items:
            raise AnnotationError(f"{data_root} split {split!r} holds no expressions to evaluate")
        for it in self.items:
            ids = it.sample.object_ids
            if len(ids) != 1 or not 1 <= ids[0] <= MAX_OBJECT_ID:
                raise AnnotationError(f"Ref-DAVIS17 expression {it.key}: expected one object id in "
                                      f"[1, {MAX_OBJECT_ID}], got {list(ids)}")
        self.skipped = [s.message for s in dataset.skip_report.skipped]

    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Binary PNGs ``<predictions_dir>/<video>/<exp_id>/<frame>.png``; the DAVIS runs are painted at the merge."""
        write_binary_pngs(prediction.masks, prediction.frame_names, expression_folder(predictions_dir, item),
                          overwrite=True)

    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """``{"run", "object_id", "frames"}`` -- scoring happens per run at the merge."""
        return {"run": run_name(item.sample.meta), "object_id": int(item.sample.object_ids[0]),
                "frames": [p.stem for p in item.sample.frame_paths]}

    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """Paint the four runs, evaluate each (unsupervised protocol), average them."""
        by_run: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in records:
            by_run[r["result"]["run"]][r["video_id"]].append(r)
        evaluations = {}
        for run in sorted(by_run):
            run_dir = out_dir / RUNS_DIR / run
            for video, members in sorted(by_run[run].items()):
                frames = members[0]["result"]["frames"]
                labels = None
                for r in sorted(members, key=lambda m: m["result"]["object_id"]):
                    folder = predictions_dir / r["video_id"] / r["exp_id"]
                    masks = np.stack([read_binary_png(folder / f"{name}.png") for name in frames])
                    labels = np.zeros(masks.shape, dtype=np.uint8) if labels is None else labels
                    labels[masks] = r["result"]["object_id"]
                write_indexed_pngs(labels, frames, run_dir / video, overwrite=True)
            evaluations[run] = evaluate_davis_folders(self.gt_dir, run_dir, out_dir / EVAL_DIR / run,
                                                      protocol="unsupervised", method=run,
                                                      sequences=sorted(by_run[run]), overwrite=True)
        combined = combine_refdavis17_runs([evaluations[run].global_scores for run in sorted(evaluations)])
        scores = {"J&F": combined.jf, "J": combined.j, "F": combined.f,
                  "runs": {run: {"J&F": e.global_scores.jf_mean, "J": e.global_scores.j_mean,
                                 "F": e.global_scores.f_mean, "n_objects": e.global_scores.n_objects}
                           for run, e in sorted(evaluations.items())}}
        rows = [{"key": r["key"], "run": r["result"]["run"], "object_id": r["result"]["object_id"],
                 "score": r["score"], "num_objects": r["num_objects"]} for r in records]
        files = {"davis_runs": str(out_dir / RUNS_DIR), "davis_eval": str(out_dir / EVAL_DIR)}
        notes = ["Ref-DAVIS17: mean over the 4 expression sets of the DAVIS-2017 unsupervised J&F, J, F "
                 "(all frames, Hungarian matching of predicted ids to objects)."]
        return MergedScores(scores=scores, per_item=rows, files=files, notes=notes)
