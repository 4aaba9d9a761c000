"""The benchmarks ``svac eval`` knows: a plain table from name to what each one needs.

=========  ==========  =============  ===========================  =========================================
name       reader      default split  predictions                  numbers (``metrics.json``)
=========  ==========  =============  ===========================  =========================================
rvos       rvos        valid          binary PNGs                  MeViS J, F, J&F (+ DAVIS recall / decay)
refytvos   refytvos    valid          binary PNGs + submission zip J, F, J&F when the split has masks
mevis      mevis       valid_u        binary PNGs (+ zip w/o GT)   MeViS J, F, J&F
revos      revos       valid          binary PNGs                  ReVOS J, F, J&F, A, R per type + overall
davis17    davis17     valid          DAVIS-2017 PNGs, 4 runs      Ref-DAVIS17 J, F, J&F (mean of 4 runs)
a2d        a2d         test           RLE JSON (COCO results)      P@0.5..0.9, overall / mean IoU, mAP
jhmdb      jhmdb       test           RLE JSON (COCO results)      P@0.5..0.9, overall / mean IoU, mAP
refcoco    refcoco     val            RLE JSON                     cIoU, gIoU (also refcoco+ / refcocog)
=========  ==========  =============  ===========================  =========================================

``rvos`` is any dataset in the Ref-YouTube-VOS layout *with* masks, e.g. the synthetic
benchmark written by :func:`svac.data.synthetic.write_benchmark`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping

from svac.evaluation.a2d_readers import A2D_LAYOUT, JHMDB_LAYOUT
from svac.evaluation.predictions import MEVIS_ZIP_PREFIX, YTVOS_ZIP_PREFIX

if TYPE_CHECKING:
    from svac.evaluation.task import BenchmarkTask

YTVOS_LAYOUT = ("a Ref-YouTube-VOS-layout root: meta_expressions/<split>/meta_expressions.json, "
                "<split>/JPEGImages/<video>/<frame>.jpg and <split>/Annotations/<video>/<frame>.png")


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark.

    Attributes:
        reader: dataset reader name (:data:`svac.data.readers.READERS`, or the A2D / JHMDB readers
            of :mod:`svac.evaluation.a2d_readers`).
        default_split: the split evaluated when none is given.
        prediction_format: ``png`` (binary PNG per frame), ``davis`` (DAVIS-2017 indexed PNGs per
            run) or ``rle_json`` (COCO RLE results file).
        metrics: what ``metrics.json`` reports.
        layout: the expected dataset layout, quoted in errors about a wrong data root.
        source: the benchmark's paper / protocol.
        factory: ``factory(name, root, split, skip_invalid=...) -> BenchmarkTask``.
    """

    reader: str
    default_split: str
    prediction_format: str
    metrics: str
    layout: str
    source: str
    factory: Callable[..., "BenchmarkTask"]


def _video_task(reader: str, zip_prefix: str | None):
    def factory(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
        from svac.evaluation.video_tasks import ReferringVideoTask

        return ReferringVideoTask(name, root, split, reader=reader, zip_prefix=zip_prefix, skip_invalid=skip_invalid)
    return factory


def _revos_task(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
    from svac.evaluation.video_tasks import ReVOSTask

    return ReVOSTask(name, root, split, skip_invalid=skip_invalid)


def _davis17_task(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
    from svac.evaluation.davis17_task import RefDAVIS17Task

    return RefDAVIS17Task(name, root, split, skip_invalid=skip_invalid)


def _refcoco_task(reader: str):
    def factory(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
        from svac.evaluation.frame_tasks import RefCOCOTask

        return RefCOCOTask(name, root, split, reader=reader, skip_invalid=skip_invalid)
    return factory


def _a2d_task(reader: str):
    def factory(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
        from svac.evaluation.frame_tasks import A2DTask

        return A2DTask(name, root, split, reader=reader, skip_invalid=skip_invalid)
    return factory


_REFCOCO_LAYOUT = ("a RefCOCO root holding instances.json, a refs JSON file (e.g. 'refs(unc).json') and the COCO "
                   "train2014 images under images/ or train2014/")
_REFCOCO_SOURCE = "Yu et al. ECCV 2016 / Mao et al. CVPR 2016; cIoU and gIoU as reported by LISA (CVPR 2024)"

#: Benchmark name -> :class:`BenchmarkSpec` (read-only).
BENCHMARKS: Mapping[str, BenchmarkSpec] = MappingProxyType({
    "rvos": BenchmarkSpec(
        reader="rvos", default_split="valid", prediction_format="png", metrics="MeViS J, F, J&F; DAVIS recall/decay",
        layout=YTVOS_LAYOUT + " (masks required)",
        source="any Ref-YouTube-VOS-layout dataset with masks; MeViS protocol (Ding et al., ICCV 2023)",
        factory=_video_task("rvos", None)),
    "refytvos": BenchmarkSpec(
        reader="refytvos", default_split="valid", prediction_format="png",
        metrics="server-scored on valid (submission.zip); J, F, J&F on splits with masks",
        layout="a Ref-YouTube-VOS-layout root: meta_expressions/<split>/meta_expressions.json, "
               "<split>/JPEGImages/<video>/<frame>.jpg (and, for splits with masks, "
               "<split>/Annotations/<video>/<frame>.png)",
        source="Seo et al., ECCV 2020 (URVOS); CodaLab submission Annotations/<video>/<exp_id>/<frame>.png",
        factory=_video_task("refytvos", YTVOS_ZIP_PREFIX)),
    "mevis": BenchmarkSpec(
        reader="mevis", default_split="valid_u", prediction_format="png",
        metrics="MeViS J, F, J&F on valid_u; server-scored on valid (submission.zip)",
        layout="a MeViS root: <split>/meta_expressions.json, <split>/JPEGImages/<video>/<frame>.jpg "
               "(+ <split>/mask_dict.json for valid_u / train)",
        source="Ding et al., ICCV 2023; CodaLab submission <video>/<exp_id>/<frame>.png",
        factory=_video_task("mevis", MEVIS_ZIP_PREFIX)),
    "revos": BenchmarkSpec(
        reader="revos", default_split="valid", prediction_format="png",
        metrics="ReVOS J, F, J&F, A, R per type (referring, reasoning, no-target) and overall",
        layout="a ReVOS root: JPEGImages/<video>/<frame>.jpg, meta_expressions_<split>_.json, mask_dict.json, "
               "mask_dict_foreground.json",
        source="Yan et al., ECCV 2024 (VISA); R from Li et al., ICCV 2023 (R2-VOS)",
        factory=_revos_task),
    "davis17": BenchmarkSpec(
        reader="davis17", default_split="valid", prediction_format="davis",
        metrics="Ref-DAVIS17 J, F, J&F: mean of the 4 DAVIS-2017 unsupervised evaluations",
        layout="a Ref-DAVIS17 root: meta_expressions/<split>/meta_expressions.json (4 expressions per object, "
               "annotator-ordered), <split>/JPEGImages, <split>/Annotations (or DAVIS JPEGImages/480p, "
               "Annotations/480p)",
        source="Khoreva et al., ACCV 2018; DAVIS-2017 unsupervised evaluation (Caelles et al., 2019)",
        factory=_davis17_task),
    "a2d": BenchmarkSpec(
        reader="a2d", default_split="test", prediction_format="rle_json",
        metrics="P@0.5:0.9, overall IoU, mean IoU, COCO mAP 0.5:0.95",
        layout=A2D_LAYOUT,
        source="Gavrilyuk et al., CVPR 2018; mAP as in MTTR (Botach et al., CVPR 2022)",
        factory=_a2d_task("a2d")),
    "jhmdb": BenchmarkSpec(
        reader="jhmdb", default_split="test", prediction_format="rle_json",
        metrics="P@0.5:0.9, overall IoU, mean IoU, COCO mAP 0.5:0.95",
        layout=JHMDB_LAYOUT,
        source="Gavrilyuk et al., CVPR 2018; mAP as in MTTR (Botach et al., CVPR 2022)",
        factory=_a2d_task("jhmdb")),
    "refcoco": BenchmarkSpec(reader="refcoco", default_split="val", prediction_format="rle_json",
                             metrics="cIoU, gIoU", layout=_REFCOCO_LAYOUT, source=_REFCOCO_SOURCE,
                             factory=_refcoco_task("refcoco")),
    "refcoco+": BenchmarkSpec(reader="refcoco+", default_split="val", prediction_format="rle_json",
                              metrics="cIoU, gIoU", layout=_REFCOCO_LAYOUT, source=_REFCOCO_SOURCE,
                              factory=_refcoco_task("refcoco+")),
    "refcocog": BenchmarkSpec(reader="refcocog", default_split="val", prediction_format="rle_json",
                              metrics="cIoU, gIoU", layout=_REFCOCO_LAYOUT.replace("refs(unc)", "refs(umd)"),
                              source=_REFCOCO_SOURCE, factory=_refcoco_task("refcocog")),
})


def build_task(name: str, root: Path, split: str, *, skip_invalid: bool = False) -> "BenchmarkTask":
    """Open one split of benchmark ``name`` as a :class:`~svac.evaluation.task.BenchmarkTask`.

    Raises:
        KeyError: for a name not in :data:`BENCHMARKS`.
        svac.errors.AnnotationError: when ``root`` is not in the benchmark's layout.
    """
    return BENCHMARKS[name].factory(name, root, split, skip_invalid=skip_invalid)
