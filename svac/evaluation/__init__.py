"""Benchmark runners (nothing is imported at package import time).

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
* :mod:`~svac.evaluation.cli_args` -- ``svac eval`` arguments (also ``python -m svac.evaluation``).

The studies (frame scaling, pipeline profile, peak memory) are not library: they are scripts in
the top-level ``eval/`` folder, run by ``svac bench ...`` or ``python eval/<study>.py``.
"""
