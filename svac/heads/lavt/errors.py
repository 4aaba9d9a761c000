"""The error the LAVT head raises on a malformed input tensor.

It derives from :class:`svac.errors.SVACError` (and ``ValueError``), so a
caller catching the library's own failures catches it too.
"""

from __future__ import annotations

from svac.errors import SVACError


class LAVTInputError(SVACError, ValueError):
    """A tensor given to the LAVT head has the wrong shape, dtype or content.

    The message names the argument, the expected shape/dtype and what was
    received (e.g. ``frames must be float (B, T, 3, H, W); got torch.uint8``).
    """
