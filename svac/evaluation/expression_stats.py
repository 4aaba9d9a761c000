"""Per-expression statistics of a referring benchmark run: families, intervals, pair identity, paired comparisons.

* **Bootstrap intervals** over expressions: the dataset J&F is a mean over expressions, so its
  uncertainty is estimated by resampling expressions with replacement (Efron & Tibshirani,
  *An Introduction to the Bootstrap*, 1993, ch. 13: percentile intervals), with a fixed seed so a
  run's numbers are reproducible.
* **Per-family scores**: for datasets whose expressions list the attribute ``families`` they use
  (svac's synthetic benchmark: ``color``, ``shape``, ``size``, ``position``, ``motion``, ``speed``,
  ``time``, ``turns``, ``stays``, ``starts``), the J, F, J&F of the expressions naming each family.
* **Pair identity**: among pairs of expressions on one video that name *different* objects, the
  fraction whose predicted masks are near-identical (IoU over all frames above
  :data:`PAIR_IDENTITY_IOU`). A model that ignores the expression scores 1.0.
* **Restated**: the share of answers whose first ``<p>...</p>`` phrase is the expression itself (case and
  white space aside) -- whether a model that writes its own answer (``inference.answer_mode: generate``, as a
  chat does) names what was asked; an answer fed from a template always does.
* **Paired comparison** of two runs on the same items (:func:`compare_runs`): the mean difference
  of J&F with a paired bootstrap interval (the same resampled expressions in both runs).

Source: svac's evaluation of the paper's claims on the synthetic benchmark (issue 18).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: Bootstrap resamples and seed (fixed: the same run always reports the same interval).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
#: Confidence level of the intervals.
CONFIDENCE = 0.95
#: Two masks whose IoU over all frames exceeds this are "near-identical".
PAIR_IDENTITY_IOU = 0.95
#: Separator of the family names of one expression in ``per_item.csv`` ("color+shape").
FAMILY_SEPARATOR = "+"
#: Families the synthetic benchmark regards as static (one frame shows them).
STATIC_FAMILY_NAMES = ("color", "shape", "size", "position")


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap percentile interval.

    Attributes:
        mean: the statistic on the data.
        low, high: the interval's bounds at level :data:`CONFIDENCE`.
        n: the number of values (expressions).
    """

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        """``{"mean", "ci95": [low, high], "n"}``."""
        return {"mean": self.mean, "ci95": [self.low, self.high], "n": self.n}


def bootstrap_mean(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                   level: float = CONFIDENCE) -> Interval:
    """Mean of ``values`` with a percentile bootstrap interval (resampling the values with replacement).

    Raises:
        ValueError: when ``values`` is empty, ``resamples`` < 1 or ``level`` is not in (0, 1).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("bootstrap_mean needs a non-empty 1-D sequence of values")
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples} and {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(mean=float(x.mean()), low=float(low), high=float(high), n=int(x.size))


def family_scores(rows: Sequence[Mapping], families: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """J, F, J&F (with a bootstrap interval) of the expressions naming each family, plus ``static`` / ``dynamic``.

    Args:
        rows: per expression ``{"key", "J", "F"}``.
        families: the families each key's expression names (keys without families are left out).

    Returns:
        ``{family: {"J", "F", "J&F", "ci95", "n"}}`` for every family present, ``static``
        (expressions naming only :data:`STATIC_FAMILY_NAMES`) and ``dynamic`` (the others).
    """
    groups: dict[str, list[Mapping]] = {}
    for row in rows:
        names = list(families.get(row["key"], ()))
        if not names:
            continue
        for name in dict.fromkeys(names):
            groups.setdefault(name, []).append(row)
        group = "static" if all(n in STATIC_FAMILY_NAMES for n in names) else "dynamic"
        groups.setdefault(group, []).append(row)
    out = {}
    for name in sorted(groups):
        members = groups[name]
        jf = bootstrap_mean([(r["J"] + r["F"]) / 2 for r in members])
        out[name] = {"J&F": jf.mean, "J": float(np.mean([r["J"] for r in members])),
                     "F": float(np.mean([r["F"] for r in members])), "ci95": [jf.low, jf.high], "n": jf.n}
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``bool (N, H, W)`` mask stacks over all frames (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


@dataclass(frozen=True)
class PairIdentity:
    """Near-identical predictions for expressions naming different objects of one video.

    Attributes:
        rate: identical pairs / pairs (0 when there are no pairs).
        identical: pairs with IoU above :data:`PAIR_IDENTITY_IOU`.
        pairs: pairs of expressions on one video naming different objects.
        mean_iou: mean IoU of those pairs' predictions.
    """

    rate: float
    identical: int
    pairs: int
    mean_iou: float

    def to_dict(self) -> dict:
        """Plain numbers for ``metrics.json``."""
        return {"rate": self.rate, "identical": self.identical, "pairs": self.pairs, "mean_iou": self.mean_iou,
                "iou_threshold": PAIR_IDENTITY_IOU}


def pair_identity(items: Sequence[tuple[str, str, tuple[int, ...]]], load_prediction) -> PairIdentity:
    """Pair-identity rate of a run.

    Args:
        items: per expression ``(key, video_id, object_ids)``.
        load_prediction: ``key -> bool (N, H, W)`` the run's predicted masks of that expression.

    Returns:
        A :class:`PairIdentity`.
    """
    by_video: dict[str, list[tuple[str, frozenset]]] = {}
    for key, video, objects in items:
        by_video.setdefault(video, []).append((key, frozenset(objects)))
    ious = []
    for members in by_video.values():
        pairs = [(a, b) for a, b in combinations(members, 2) if a[1] != b[1]]
        if not pairs:
            continue
        cache = {key: load_prediction(key) for key in {k for pair in pairs for k, _ in pair}}
        ious += [mask_iou(cache[a[0]], cache[b[0]]) for a, b in pairs]
    identical = int(sum(i > PAIR_IDENTITY_IOU for i in ious))
    return PairIdentity(rate=identical / len(ious) if ious else 0.0, identical=identical, pairs=len(ious),
                        mean_iou=float(np.mean(ious)) if ious else 0.0)


@dataclass(frozen=True)
class Restated:
    """Answers that restate their expression.

    Attributes:
        rate: restated / answers (0 when there are none).
        restated: answers whose first ``<p>...</p>`` phrase equals the expression (:func:`phrase_restates`).
        answers: answers counted.
    """

    rate: float
    restated: int
    answers: int

    def to_dict(self) -> dict:
        """Plain numbers for ``metrics.json``."""
        return {"rate": self.rate, "restated": self.restated, "answers": self.answers}


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def phrase_restates(answer: str, expression: str) -> bool:
    """Whether ``answer``'s first ``<p>...</p>`` phrase is ``expression``, compared case-folded with runs of white
    space as one space (False when the answer holds no closed phrase).

    Source: Sa2VA's answer format "Sure, <p>{expression}</p>[SEG]." (Sa2VA §3.2).
    """
    from svac.mllm.tokens import PHRASE_END, PHRASE_START

    start = answer.find(PHRASE_START)
    end = answer.find(PHRASE_END, start + len(PHRASE_START)) if start >= 0 else -1
    return end >= 0 and _normalised(answer[start + len(PHRASE_START):end]) == _normalised(expression)


def restated(items: Sequence[tuple[str, str]]) -> Restated:
    """How many of ``items`` -- ``(answer text, expression)`` pairs -- restate their expression (:func:`phrase_restates`)."""
    hits = sum(phrase_restates(answer, expression) for answer, expression in items)
    return Restated(rate=hits / len(items) if items else 0.0, restated=int(hits), answers=len(items))


def read_binary_pngs(folder: Path) -> np.ndarray:
    """Every ``*.png`` of ``folder`` in name order as ``bool (N, H, W)`` (pixel > 0).

    Raises:
        FileNotFoundError: when the folder holds no PNG.
    """
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no prediction PNGs in {folder}")
    return np.stack([np.asarray(Image.open(f)) > 0 for f in files])


@dataclass(frozen=True)
class Comparison:
    """Run B minus run A on the expressions both scored.

    Attributes:
        a, b: each run's J&F with its bootstrap interval (over the shared expressions).
        difference: mean of (B - A) per expression, with a paired bootstrap interval.
        families: per family, ``{"a", "b", "difference"}`` intervals as dicts.
    """

    a: Interval
    b: Interval
    difference: Interval
    families: dict[str, dict]

    def to_dict(self) -> dict:
        """Plain numbers (``svac metrics compare`` writes this)."""
        return {"a": self.a.to_dict(), "b": self.b.to_dict(), "b_minus_a": self.difference.to_dict(),
                "families": self.families}


def run_rows(run_dir: str | Path) -> dict[str, dict]:
    """Per-expression ``{"J", "F", "families"}`` of a finished ``svac eval`` run (its ``per_item.csv``), by item key.

    Raises:
        FileNotFoundError: when ``run_dir`` holds no ``per_item.csv`` (the run is not merged).
    """
    import csv

    table = Path(run_dir) / "per_item.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{run_dir} holds no per_item.csv: finish (merge) the svac eval run first")
    rows = {}
    with open(table, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("J") and row.get("F"):
                names = [n for n in (row.get("families") or "").split(FAMILY_SEPARATOR) if n]
                rows[row["key"]] = {"J": float(row["J"]), "F": float(row["F"]), "families": names}
    return rows


def compare_runs(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Paired comparison of two ``svac eval`` runs of the same benchmark split (B - A).

    Raises:
        FileNotFoundError: when a run is not merged.
        ValueError: when the runs share no scored expression.
    """
    a, b = run_rows(run_a), run_rows(run_b)
    keys = sorted(set(a) & set(b))
    if not keys:
        raise ValueError(f"{run_a} and {run_b} share no scored expression")

    def jf(rows, k):
        return (rows[k]["J"] + rows[k]["F"]) / 2

    families: dict[str, list[str]] = {}
    for k in keys:
        names = a[k]["families"]
        for name in dict.fromkeys(names):
            families.setdefault(name, []).append(k)
        if names:
            families.setdefault("static" if all(n in STATIC_FAMILY_NAMES for n in names) else "dynamic", []).append(k)
    per_family = {name: {"a": bootstrap_mean([jf(a, k) for k in ks]).to_dict(),
                         "b": bootstrap_mean([jf(b, k) for k in ks]).to_dict(),
                         "b_minus_a": bootstrap_mean([jf(b, k) - jf(a, k) for k in ks]).to_dict()}
                  for name, ks in sorted(families.items())}
    return Comparison(a=bootstrap_mean([jf(a, k) for k in keys]), b=bootstrap_mean([jf(b, k) for k in keys]),
                      difference=bootstrap_mean([jf(b, k) - jf(a, k) for k in keys]), families=per_family)
