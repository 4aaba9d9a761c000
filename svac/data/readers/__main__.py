"""``python -m svac.data.readers SPEC --split SPLIT``: check a dataset (see :mod:`svac.data.readers.check`)."""

from __future__ import annotations

import sys

from svac.data.readers.check import main

if __name__ == "__main__":
    sys.exit(main())
