"""Benchmark-exact segmentation metrics (pure functions over numpy bool masks, typed results).

Modules:

* :mod:`svac.metrics.davis`: DAVIS region similarity J and contour accuracy F
  (``region_similarity``, ``contour_accuracy``, ``boundary_map``,
  ``boundary_f_measure``, ``boundary_radius``, ``disk_structure``).
* :mod:`svac.metrics.stats`: per-object mean / recall / decay (``mean_recall_decay``).
* :mod:`svac.metrics.davis_eval`: DAVIS-2016/2017 folder evaluation, semi-supervised
  and unsupervised protocols, CSV/JSON tables (``evaluate_davis_folders``).
* :mod:`svac.metrics.mevis`: MeViS J, F, J&F (``mevis_scores``).
* :mod:`svac.metrics.revos`: ReVOS J, F, J&F, A, R by expression type (``revos_scores``).
* :mod:`svac.metrics.refdavis17`: Ref-DAVIS17, the mean of four unsupervised runs
  (``combine_refdavis17_runs``, ``evaluate_refdavis17``).
* :mod:`svac.metrics.a2d`: A2D-Sentences / JHMDB-Sentences P@K, overall and mean IoU,
  COCO mAP (``a2d_sentences_scores``).
* :mod:`svac.metrics.refcoco`: RefCOCO/+/g cIoU and gIoU (``refcoco_scores``).
* :mod:`svac.metrics.iou`: mask IoU helpers; :mod:`svac.metrics.validation`: input checks
  and :class:`~svac.metrics.validation.MetricInputError`.

Import the function you need from its module; this package imports nothing at import time.
"""
