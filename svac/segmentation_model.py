"""What inference and evaluation need of a model: the :class:`SegmentationModel` protocol.

Every head satisfies it -- :class:`svac.SVAC` and the baselines
(:class:`svac.heads.referformer_rvos.ReferFormerRVOS`, :class:`svac.heads.lavt_rvos.LAVTRVOS`) --
so :func:`svac.loading.load_model`, ``svac segment``, ``svac eval`` and the demo call any of them
the same way. Structural (``typing.Protocol``): nothing inherits from it; ``isinstance`` checks
that the members exist (``runtime_checkable``), the tests check the signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import torch

    from svac.config import SVACConfig
    from svac.outputs import SegmentationResult
    from svac.progress import Progress


@runtime_checkable
class SegmentationModel(Protocol):
    """A referring video object segmentation model, as inference and evaluation use it.

    Attributes:
        config: the model's :class:`~svac.config.SVACConfig` (``head`` names its class).
        device: device of its parameters.
        dtype: floating dtype of its parameters.
    """

    config: "SVACConfig"

    @property
    def device(self) -> "torch.device":
        """Device of the model's parameters."""

    @property
    def dtype(self) -> "torch.dtype":
        """Floating dtype of the model's parameters."""

    @classmethod
    def from_config(cls, config: "SVACConfig", *, tokenizer: Any = None) -> "SegmentationModel":
        """The model of ``config`` with random (or configured pretrained) weights."""

    @classmethod
    def from_pretrained(cls, source, *, torch_dtype: "torch.dtype | str | None" = None, device_map: Any = None,
                        overrides: Sequence[str] = (), revision: str | None = None, cache_dir=None,
                        local_files_only: bool = False) -> "SegmentationModel":
        """The model saved in ``source`` (a folder or Hub id), in eval mode on ``device_map``."""

    def save_pretrained(self, directory, *, max_shard_size: int | None = None, overwrite: bool = False,
                        weights_dtype: Any = None) -> Any:
        """Write the model into ``directory`` (svac's checkpoint format, atomically; floating-point weights stored in
        ``weights_dtype``, a ``torch.dtype``, when given)."""

    def segment(self, video, query: str, /, *, num_frames: int | None = None, clip_len: int | None = None,
                progress: "Progress" = False) -> "SegmentationResult":
        """Segment what ``query`` (a referring expression) refers to in every frame of ``video``."""
