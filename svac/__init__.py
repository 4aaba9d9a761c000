"""svac: MLLM-based referring video object segmentation (SVAC: ASTC + CSA on an InternVL-style MLLM with SAM-2).

The names a user starts from, imported lazily (``import svac`` imports neither torch nor
transformers; the first use of a name imports its module):

* :class:`svac.SVAC` (``svac.model``) -- the model: ``SVAC.from_pretrained(folder or Hub id)``,
  ``model.segment(video, query)``, ``model.chat(...)``;
* :func:`svac.load_model` (``svac.loading``) -- the CLI's way to get a model: the bundled default
  model, a folder, a Hub id or a YAML config;
* :class:`svac.SVACConfig` (``svac.config``) -- the typed model configuration;
* :class:`svac.SegmentationResult` (``svac.outputs``) -- what ``segment`` returns.

Raises:
    AttributeError: for a name that is not one of the above.
"""

from __future__ import annotations

from svac.lazy_exports import lazy_getattr

#: Public name -> the module that defines it (a fixed table; nothing read from a file chooses code).
_EXPORTS = {
    "SVAC": "svac.model",
    "SVACConfig": "svac.config",
    "load_model": "svac.loading",
    "SegmentationResult": "svac.outputs",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    """The module's attributes and the lazily imported public names."""
    return sorted(set(globals()) | set(_EXPORTS))
