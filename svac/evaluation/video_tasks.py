"""Video benchmarks scored per expression over every frame: ``rvos``, Ref-YouTube-VOS, MeViS, ReVOS.

* **rvos / refytvos / mevis** -- predictions are binary PNGs
  ``predictions/<video>/<exp_id>/<frame>.png``. With ground truth, each expression scores
  MeViS J and F (mean over every listed frame of DAVIS region similarity and contour
  accuracy, :mod:`svac.metrics.mevis`); the dataset J, F, J&F are means over expressions,
  J&F = (J + F) / 2, with a bootstrap interval over expressions. The per-frame values also
  give DAVIS statistics per expression (recall, decay; :func:`svac.metrics.stats.mean_recall_decay`),
  averaged over expressions. Datasets listing attribute ``families`` per expression (the
  synthetic benchmark) get J, F, J&F per family, and every run the pair-identity rate
  (:mod:`svac.evaluation.expression_stats`).
  Without ground truth (the Ref-YouTube-VOS and MeViS ``valid`` splits) the predictions are
  zipped in the server's submission layout (:mod:`svac.evaluation.predictions`).
* **revos** -- as above, scored with ReVOS J, F, A, R by expression type
  (:mod:`svac.metrics.revos`; overall = mean of the referring and reasoning groups); the
  PNGs hold grey levels 0 / 1, what the official script's A and R expect, and no-target
  expressions (``type_id`` 2, empty ``anno_id``) are scored against an empty ground truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from svac.data.readers import load_dataset
from svac.data.sample import ReferringSample
from svac.errors import AnnotationError
from svac.evaluation.expression_stats import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    FAMILY_SEPARATOR,
    PAIR_IDENTITY_IOU,
    bootstrap_mean,
    family_scores,
    pair_identity,
    read_binary_pngs,
    restated,
)
from svac.evaluation.predictions import REVOS_FOREGROUND_VALUE, write_binary_pngs, write_submission_zip
from svac.evaluation.task import BenchmarkTask, EvalItem, MergedScores, Prediction
from svac.evaluation.video_sources import FrameListVideo
from svac.metrics.davis import DAVIS_BOUNDARY_TOLERANCE, contour_accuracy, region_similarity
from svac.metrics.mevis import ExpressionScore, aggregate_mevis
from svac.metrics.revos import (
    REVOS_TYPE_BY_ID,
    RevosExpression,
    RevosExpressionScore,
    RevosGroupScores,
    aggregate_revos,
    score_revos_expression,
)
from svac.metrics.stats import mean_recall_decay

#: Separator of the video id and the expression id in item keys.
KEY_SEPARATOR = "/"


def item_key(video_id: str, exp_id: str) -> str:
    """The item key ``"<video_id>/<exp_id>"``."""
    return f"{video_id}{KEY_SEPARATOR}{exp_id}"


def items_from_samples(samples) -> list[EvalItem]:
    """One :class:`EvalItem` per :class:`~svac.data.sample.ReferringSample`, sorted by key.

    The video of an item is its sample's listed frames (:class:`FrameListVideo`).
    """
    items = []
    for sample in samples:
        def opener(s: ReferringSample = sample) -> FrameListVideo:
            return FrameListVideo(s.frame_paths, name=s.video_id)

        items.append(EvalItem(key=item_key(sample.video_id, sample.exp_id), video_id=sample.video_id,
                              exp_id=sample.exp_id, expression=sample.expression, open_video=opener, sample=sample))
    return sorted(items, key=lambda it: it.key)


def expression_folder(predictions_dir: Path, item: EvalItem) -> Path:
    """Folder of an expression's binary PNGs: ``<predictions_dir>/<video_id>/<exp_id>``."""
    return predictions_dir / item.video_id / item.exp_id


def per_frame_j_f(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DAVIS J and F of every frame: two ``float64 (N,)`` arrays (the values MeViS averages).

    Args:
        pred, gt: ``bool (N, H, W)`` over every frame.

    Raises:
        svac.metrics.validation.MetricInputError: on non-bool masks or differing shapes.
    """
    j = region_similarity(pred, gt)
    f = contour_accuracy(pred, gt, None, DAVIS_BOUNDARY_TOLERANCE)
    return np.asarray(j, dtype=np.float64), np.asarray(f, dtype=np.float64)


class ReferringVideoTask(BenchmarkTask):
    """``rvos``, ``refytvos`` and ``mevis``: binary PNG predictions, MeViS J / F with ground truth.

    Args:
        name: benchmark name (``rvos``, ``refytvos`` or ``mevis``).
        data_root: dataset root.
        split: the split.
        reader: the dataset registry name (:mod:`svac.data.readers`).
        zip_prefix: archive prefix of the server submission (``None``: no submission zip).
        skip_invalid: let the reader drop invalid expressions (reported) instead of failing.

    Raises:
        AnnotationError: when the root or split is not in the expected layout (from the reader),
            or the split mixes expressions with and without ground truth.
    """

    def __init__(self, name: str, data_root: Path, split: str, *, reader: str, zip_prefix: str | None,
                 skip_invalid: bool = False) -> None:
        super().__init__(name, data_root, split)
        dataset = load_dataset(f"{reader}:{data_root}", split, skip_invalid=skip_invalid)
        self.zip_prefix = zip_prefix
        self.items = items_from_samples(dataset)
        if not self.items:
            raise AnnotationError(f"{data_root} split {split!r} holds no expressions to evaluate")
        with_masks = {it.sample.mask_loader is not None for it in self.items}
        if len(with_masks) > 1:
            raise AnnotationError(f"{data_root} split {split!r}: some expressions have ground-truth masks and some "
                                  "do not; cannot score part of a split")
        self.has_ground_truth = with_masks == {True}
        self.skipped = [s.message for s in dataset.skip_report.skipped]

    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Binary PNGs ``<predictions_dir>/<video>/<exp_id>/<frame>.png`` (0 / 255)."""
        write_binary_pngs(prediction.masks, prediction.frame_names, expression_folder(predictions_dir, item),
                          overwrite=True)

    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """``{"J", "F", "J_frames", "F_frames"}`` with ground truth, else ``{}``."""
        if not self.has_ground_truth:
            return {}
        gt = item.sample.load_masks()
        j, f = per_frame_j_f(prediction.masks, gt)
        return {"J": float(np.mean(j)), "F": float(np.mean(f)), "J_frames": j.tolist(), "F_frames": f.tolist()}

    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """MeViS J, F, J&F (+ DAVIS recall / decay) with ground truth; the submission zip without."""
        files: dict[str, str] = {}
        notes: list[str] = []
        if self.zip_prefix is not None and not self.has_ground_truth:
            zip_path = out_dir / "submission.zip"
            folders = [(item_key(r["video_id"], r["exp_id"]), predictions_dir / r["video_id"] / r["exp_id"])
                       for r in records]
            write_submission_zip(zip_path, folders, prefix=self.zip_prefix)
            files["submission"] = str(zip_path)
            notes.append(f"split {self.split!r} has no ground truth: upload {zip_path.name} to the {self.name} "
                         "evaluation server")
        if not self.has_ground_truth:
            rows = [{"key": r["key"], "score": r["score"], "num_objects": r["num_objects"]} for r in records]
            return MergedScores(scores=None, per_item=rows, files=files, notes=notes)
        result = aggregate_mevis(ExpressionScore(r["key"], r["result"]["J"], r["result"]["F"]) for r in records)
        j_stats = [mean_recall_decay(np.asarray(r["result"]["J_frames"])) for r in records]
        f_stats = [mean_recall_decay(np.asarray(r["result"]["F_frames"])) for r in records]
        jf = bootstrap_mean([(r["result"]["J"] + r["result"]["F"]) / 2 for r in records])
        scores = {
            "J&F": result.jf, "J": result.j, "F": result.f,
            "J&F_ci95": [jf.low, jf.high],
            "J-Recall": float(np.mean([s.recall for s in j_stats])),
            "J-Decay": float(np.mean([s.decay for s in j_stats])),
            "F-Recall": float(np.mean([s.recall for s in f_stats])),
            "F-Decay": float(np.mean([s.decay for s in f_stats])),
            "n_expressions": result.n_expressions,
        }
        by_key = {it.key: it for it in self.items}
        families = {k: list(by_key[k].sample.meta.get("families") or ()) for k in by_key}
        rows = [{"key": r["key"], "J": r["result"]["J"], "F": r["result"]["F"],
                 "J&F": (r["result"]["J"] + r["result"]["F"]) / 2, "score": r["score"],
                 "num_objects": r["num_objects"], "families": FAMILY_SEPARATOR.join(families[r["key"]])}
                for r in records]
        if any(families.values()):
            scores["families"] = family_scores(rows, families)
        identity = pair_identity([(r["key"], r["video_id"], by_key[r["key"]].sample.object_ids) for r in records],
                                 lambda key: read_binary_pngs(expression_folder(predictions_dir, by_key[key])))
        scores["pair_identity"] = identity.to_dict()
        scores["restated"] = restated([(r["text"], by_key[r["key"]].sample.expression) for r in records]).to_dict()
        notes.append("J, F: MeViS protocol (mean over every listed frame per expression, then over expressions); "
                     "J&F = (J + F) / 2. Recall / Decay: DAVIS statistics per expression, averaged over expressions. "
                     f"J&F_ci95 and families[*].ci95: {BOOTSTRAP_RESAMPLES}-resample percentile bootstrap over "
                     f"expressions (seed {BOOTSTRAP_SEED}). families: expressions naming each attribute family "
                     "(static = only color/shape/size/position). pair_identity: among pairs of expressions on one "
                     f"video naming different objects, the share whose predicted masks have IoU > {PAIR_IDENTITY_IOU} "
                     "over all frames. restated: answers whose first <p>...</p> phrase is the expression "
                     "(case and white space aside; always so for template answers).")
        return MergedScores(scores=scores, per_item=rows, files=files, notes=notes)


class ReVOSTask(BenchmarkTask):
    """ReVOS: binary PNG predictions; J, F, J&F, A, R by expression type (VISA, ECCV 2024).

    The expression type comes from the meta file's ``type_id`` (0 referring, 1 reasoning,
    2 no-target); R needs ``mask_dict_foreground.json``.

    Raises:
        AnnotationError: wrong root / split (from the reader), a split without masks, or an
            expression without a known ``type_id``.
    """

    def __init__(self, name: str, data_root: Path, split: str, *, skip_invalid: bool = False) -> None:
        super().__init__(name, data_root, split)
        self.dataset = load_dataset(f"revos:{data_root}", split, skip_invalid=skip_invalid)
        self.items = items_from_samples(self.dataset)
        if not self.items:
            raise AnnotationError(f"{data_root} split {split!r} holds no expressions to evaluate")
        if any(it.sample.mask_loader is None for it in self.items):
            raise AnnotationError(f"{data_root}: ReVOS split {split!r} has no mask_dict.json; it cannot be scored")
        for it in self.items:
            self._type(it)
        self.skipped = [s.message for s in self.dataset.skip_report.skipped]

    @staticmethod
    def _type(item: EvalItem) -> str:
        raw = item.sample.meta.get("type_id")
        try:
            return REVOS_TYPE_BY_ID[int(raw)]
        except (TypeError, ValueError, KeyError):
            raise AnnotationError(f"ReVOS expression {item.key}: type_id must be one of {sorted(REVOS_TYPE_BY_ID)}, "
                                  f"got {raw!r}") from None

    def write_predictions(self, item: EvalItem, prediction: Prediction, predictions_dir: Path) -> None:
        """Binary PNGs ``<predictions_dir>/<video>/<exp_id>/<frame>.png`` with grey levels 0 / 1.

        The official ReVOS script (VISA ``tools/eval_revos.py``) compares the raw grey level with
        its 0/1 ground truth for A and R, so the folder scores the same there as here.
        """
        write_binary_pngs(prediction.masks, prediction.frame_names, expression_folder(predictions_dir, item),
                          overwrite=True, foreground_value=REVOS_FOREGROUND_VALUE)

    def score(self, item: EvalItem, prediction: Prediction) -> dict:
        """``{"type", "J", "F", "A", "R"}`` of the expression."""
        sample = item.sample
        expression = RevosExpression(expression_type=self._type(item), pred=prediction.masks,
                                     gt=sample.load_masks(),
                                     foreground=self.dataset.foreground_loader(sample)(range(sample.num_frames)))
        s = score_revos_expression(item.key, expression)
        return {"type": s.expression_type, "J": s.j, "F": s.f, "A": s.a, "R": s.r}

    def merge(self, records: list[dict], out_dir: Path, predictions_dir: Path) -> MergedScores:
        """ReVOS group and overall scores."""
        result = aggregate_revos(RevosExpressionScore(r["key"], r["result"]["type"], r["result"]["J"],
                                                      r["result"]["F"], r["result"]["A"], r["result"]["R"])
                                 for r in records)

        def group(g: RevosGroupScores | None) -> dict | None:
            return None if g is None else {"J&F": g.jf, "J": g.j, "F": g.f, "A": g.a, "R": g.r,
                                           "n_expressions": g.n_expressions}

        scores = {"overall": group(result.overall), "referring": group(result.referring),
                  "reasoning": group(result.reasoning), "no_target": group(result.no_target)}
        rows = [{"key": r["key"], "type": r["result"]["type"], "J": r["result"]["J"], "F": r["result"]["F"],
                 "A": r["result"]["A"], "R": r["result"]["R"], "score": r["score"]} for r in records]
        notes = ["ReVOS protocol: per-expression means over every frame; overall = mean of the referring and "
                 "reasoning groups; no-target expressions are reported apart."]
        return MergedScores(scores=scores, per_item=rows, files={}, notes=notes)
