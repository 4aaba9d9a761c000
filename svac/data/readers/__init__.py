"""Dataset readers: benchmark formats and the custom format, behind one registry.

``load_dataset("mevis:/data/mevis", "valid_u")`` returns a reader — a
sequence of :class:`~svac.data.sample.ReferringSample` — for the named
format. :data:`READERS` maps each name to its reader class or factory; all
are called as ``factory(root, split, **options)``.

=========  =================================================================
name       format
=========  =================================================================
refytvos   Ref-YouTube-VOS (:class:`RefYouTubeVOSReader`)
davis17    Ref-DAVIS17 in the meta_expressions layout (:class:`RefDAVISReader`)
mevis      MeViS (:class:`MeViSReader`)
revos      ReVOS (:class:`ReVOSReader`)
refcoco    RefCOCO (:class:`RefCOCOReader`)
refcoco+   RefCOCO+ (:class:`RefCOCOReader`)
refcocog   RefCOCOg (:class:`RefCOCOReader`)
custom     the svac custom format (:class:`CustomReader`, ``docs/custom_data.md``)
rvos       any Ref-YouTube-VOS-layout dataset *with* masks, e.g. the synthetic benchmark
=========  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from svac.data.readers.base import (
    InvalidAnnotation,
    ReferringDataset,
    SkippedAnnotationsWarning,
    SkippedExpression,
    SkipReport,
)
from svac.data.readers.custom import CustomReader
from svac.data.readers.mevis import MeViSReader, ReVOSReader
from svac.data.readers.refcoco import RefCOCOReader
from svac.data.readers.refytvos import RefDAVISReader, RefYouTubeVOSReader
from svac.errors import ConfigError

#: ``factory(root, split, **options) -> ReferringDataset``.
ReaderFactory = Callable[..., ReferringDataset]

#: Registry name → reader class or factory (read-only).
READERS: Mapping[str, ReaderFactory] = MappingProxyType(
    {
        "refytvos": RefYouTubeVOSReader,
        "davis17": RefDAVISReader,
        "mevis": MeViSReader,
        "revos": ReVOSReader,
        "refcoco": partial(RefCOCOReader, name="refcoco"),
        "refcoco+": partial(RefCOCOReader, name="refcoco+"),
        "refcocog": partial(RefCOCOReader, name="refcocog"),
        "custom": CustomReader,
        "rvos": partial(RefYouTubeVOSReader, name="rvos", require_masks=True, exclude_test_videos=False),
    }
)

SPEC_SEPARATOR = ":"


def parse_spec(spec: str) -> tuple[str, Path]:
    """Split a dataset spec ``"name:/path/to/root"`` into (name, root).

    Raises:
        ConfigError: no ``:``, an empty name or path, or a name not in :data:`READERS`.
    """
    if not isinstance(spec, str) or SPEC_SEPARATOR not in spec:
        raise ConfigError(f"dataset spec {spec!r} must look like 'name:/path/to/root' (names: {', '.join(READERS)})")
    name, _, root = spec.partition(SPEC_SEPARATOR)
    name = name.strip()
    if name not in READERS:
        raise ConfigError(f"unknown dataset {name!r} in spec {spec!r}; known: {', '.join(READERS)}")
    if not root.strip():
        raise ConfigError(f"dataset spec {spec!r} has no path after {SPEC_SEPARATOR!r}")
    return name, Path(root).expanduser()


def load_dataset(spec: str, split: str, **kw: Any) -> ReferringDataset:
    """Open one split of a dataset given as ``"name:/path/to/root"``.

    Args:
        spec: registry name and dataset root, e.g. ``"custom:/data/my_videos"``.
        split: split to read (``"train"``, ``"valid"``, ``"valid_u"``, ``"val"`` ...).
        **kw: reader options, e.g. ``skip_invalid=True``, ``check_sizes=False``,
            RefCOCO's ``image_dir=``.

    Returns:
        The reader: ``len()``, iteration and indexing give ``ReferringSample``.

    Raises:
        ConfigError: malformed spec or unknown name.
        AnnotationError: wrong root or invalid annotations (see each reader).
    """
    name, root = parse_spec(spec)
    return READERS[name](root, split, **kw)


__all__ = [
    "READERS",
    "CustomReader",
    "InvalidAnnotation",
    "MeViSReader",
    "ReVOSReader",
    "RefCOCOReader",
    "RefDAVISReader",
    "RefYouTubeVOSReader",
    "ReferringDataset",
    "SkipReport",
    "SkippedAnnotationsWarning",
    "SkippedExpression",
    "load_dataset",
    "parse_spec",
]
