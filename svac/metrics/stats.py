"""Per-object statistics of per-frame scores: mean, recall and decay (DAVIS).

Definitions (Perazzi et al., CVPR 2016, the statistics mean, recall and decay
of its evaluation methodology; binning of the official DAVIS evaluation code):

* **mean**: arithmetic mean of the per-frame values.
* **recall**: fraction of frames whose value is strictly above 0.5.
* **decay**: quality loss over time. The N frames are split into four bins at
  the positions ``round(linspace(1, N, 5) + 1e-10) - 1`` (0-based; the
  ``1e-10`` makes halves round up instead of to even); bin ``i`` holds the
  frames from edge ``i`` to edge ``i + 1`` inclusive, so neighbouring bins share
  their edge frame. Decay is the mean of the first bin minus the mean of the
  last bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svac.metrics.validation import MetricInputError

RECALL_THRESHOLD = 0.5
"""A frame counts towards recall when its value is strictly above this (Perazzi et al., CVPR 2016)."""

DECAY_BINS = 4
"""Number of temporal bins of the decay statistic (Perazzi et al., CVPR 2016)."""

_HALF_ROUND_UP = 1e-10
"""Added before rounding the bin edges so that x.5 rounds up (official DAVIS binning)."""


@dataclass(frozen=True)
class SequenceStatistics:
    """Mean, recall and decay of one object's per-frame values (all unitless, in [0, 1] except decay in [-1, 1])."""

    mean: float
    recall: float
    decay: float


def decay_bin_edges(num_frames: int) -> np.ndarray:
    """0-based frame positions of the decay bin edges: ``round(linspace(1, N, 5) + 1e-10) - 1``.

    Args:
        num_frames: N, the number of evaluated frames (>= 1).

    Returns:
        int64 array of shape ``(DECAY_BINS + 1,)``, non-decreasing, from 0 to N - 1.

    Raises:
        MetricInputError: when ``num_frames`` < 1.
    """
    if num_frames < 1:
        raise MetricInputError(f"decay needs at least one frame, got {num_frames}")
    edges = np.round(np.linspace(1, num_frames, DECAY_BINS + 1) + _HALF_ROUND_UP) - 1
    return edges.astype(np.int64)


def mean_recall_decay(values: np.ndarray) -> SequenceStatistics:
    """Mean, recall (fraction of values > 0.5) and decay of one object's per-frame values.

    Args:
        values: float array of shape ``(N,)``, one value per evaluated frame in
            temporal order (e.g. J or F), N >= 1, no NaN.

    Returns:
        The :class:`SequenceStatistics`.

    Raises:
        MetricInputError: when ``values`` is not 1-D, is empty, or holds NaN.

    Note:
        The official code stores the bin edges as ``uint8``, which wraps for
        sequences longer than 256 frames; here they are int64, so long
        sequences get the intended bins.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise MetricInputError(f"values must be a non-empty 1-D array, got shape {values.shape}")
    if np.isnan(values).any():
        raise MetricInputError("values hold NaN; every evaluated frame needs a score")
    edges = decay_bin_edges(values.size)
    bins = [values[edges[i] : edges[i + 1] + 1] for i in range(DECAY_BINS)]
    return SequenceStatistics(
        mean=float(np.mean(values)),
        recall=float(np.mean(values > RECALL_THRESHOLD)),
        decay=float(np.mean(bins[0]) - np.mean(bins[-1])),
    )
