"""Input checks shared by the metric functions, and the error they raise.

Every metric in :mod:`svac.metrics` takes masks as numpy ``bool`` arrays. The
helpers here check the dtype, the number of dimensions and that paired masks
have the same size, and raise :class:`MetricInputError` with a message naming
the argument and the shapes when they do not.
"""

from __future__ import annotations

import numpy as np

from svac.errors import SVACError


class MetricInputError(SVACError, ValueError):
    """A metric received masks it cannot score: wrong dtype, wrong rank, or sizes that differ.

    The message names the argument(s) and their shapes. (Kept beside the
    metrics; it derives from :class:`svac.errors.SVACError` and ``ValueError``.)
    """


def check_bool_masks(name: str, masks: np.ndarray, *, ndims: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Check that ``masks`` is a numpy ``bool`` array with one of ``ndims`` dimensions.

    Args:
        name: the argument's name, used in the error message.
        masks: the array to check, ``(H, W)`` or ``(T, H, W)`` (pixels, frames).
        ndims: the accepted numbers of dimensions.

    Returns:
        ``masks`` itself (no copy, no conversion).

    Raises:
        MetricInputError: when ``masks`` is not an ``np.ndarray`` of dtype
            ``bool`` or has a number of dimensions outside ``ndims``.
    """
    if not isinstance(masks, np.ndarray):
        raise MetricInputError(f"{name} must be a numpy bool array, got {type(masks).__name__}")
    if masks.dtype != np.bool_:
        raise MetricInputError(
            f"{name} must have dtype bool (threshold or compare it first), got dtype {masks.dtype}"
        )
    if masks.ndim not in ndims:
        raise MetricInputError(
            f"{name} must have {' or '.join(str(n) for n in ndims)} dimensions, got shape {masks.shape}"
        )
    return masks


def check_same_shape(**arrays: np.ndarray | None) -> None:
    """Check that every non-``None`` array given by keyword has the same shape.

    Raises:
        MetricInputError: naming each argument and its shape when the shapes differ
            (e.g. a prediction at another resolution than the ground truth).
    """
    shapes = {name: a.shape for name, a in arrays.items() if a is not None}
    if len(set(shapes.values())) > 1:
        described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise MetricInputError(f"mask sizes differ: {described}; masks must have the same size")
