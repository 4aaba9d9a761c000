"""Lazy public names of a package: a fixed name -> module table read on first attribute access (PEP 562).

Used by ``svac`` and ``svac.checkpoints`` so that importing them imports neither torch nor
transformers; the table is written in the code, never read from a file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``exports[name]`` and returns its attribute ``name``.

    Args:
        package: the dotted name of the package that uses it (for the error message).
        exports: public name -> dotted module defining it.

    Raises:
        AttributeError: (from the returned function) for a name not in ``exports``.
    """

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
