"""Benchmark runners and the frame-scaling study (nothing is imported at package import time).

Modules:

* :mod:`~svac.evaluation.runner` -- :func:`run_benchmark` / :func:`merge_benchmark`: the resumable,
  shardable loop that predicts every item of a benchmark split, writes predictions and
  ``metrics.json``.
* :mod:`~svac.evaluation.benchmarks` -- the table of benchmarks (reader, split, prediction format, metrics).
* :mod:`~svac.evaluation.task` -- items, predictions and the per-benchmark task interface;
  :mod:`~svac.evaluation.video_tasks` (rvos, Ref-YouTube-VOS, MeViS, ReVOS),
  :mod:`~svac.evaluation.davis17_task` (Ref-DAVIS17), :mod:`~svac.evaluation.frame_tasks`
  (RefCOCO/+/g, A2D-Sentences, JHMDB-Sentences), :mod:`~svac.evaluation.a2d_readers`.
* :mod:`~svac.evaluation.predictions` -- PNG / RLE JSON writers and the submission zip.
* :mod:`~svac.evaluation.sharding` -- rank / world size and the disjoint item slices.
* :mod:`~svac.evaluation.video_sources` -- frame-list and looped videos.
* :mod:`~svac.evaluation.frame_scaling` -- :func:`run_frame_scaling`, the frame-scaling study;
  :mod:`~svac.evaluation.scaling_report` (its CSV, markdown and plots),
  :mod:`~svac.evaluation.memory` (peak RSS / CUDA memory of a run),
  :mod:`~svac.evaluation.pipeline_profile` (where the time of a run goes).
* :mod:`~svac.evaluation.cli_args` -- ``svac eval`` / ``svac bench frames`` arguments
  (also ``python -m svac.evaluation``).
"""
