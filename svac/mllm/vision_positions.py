"""Fixed 2-D sine-cosine position embeddings for a freshly built InternVL vision tower.

transformers initialises InternViT's absolute position embeddings (and its class token) to zeros, which is
right when pretrained weights are loaded over them. A model trained from scratch that keeps its vision
tower frozen -- svac's default model does -- would then see visual tokens that carry *no* information
about where in the image they are (a ViT without position embeddings treats its patches as a set), so
no ``[SEG]`` state could tell where an object is. :func:`init_vision_positions` writes a fixed 2-D
sine-cosine table there instead (measured in issue 18 with :mod:`svac.evaluation.visual_probe`).

Source: 2-D sine-cosine position embeddings (MAE, He et al. 2022, §A.1; Transformer, Vaswani et al. 2017, §3.5).
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Wavelength scale of the sine-cosine table (the Transformer's 10000).
MAX_WAVELENGTH = 10000.0


def sincos_position_table(grid: int, dim: int) -> torch.Tensor:
    """A fixed 2-D sine-cosine position table for a ``grid x grid`` patch grid, row-major.

    The first ``dim / 2`` channels encode the patch's row, the last ``dim / 2`` its column, each as
    sines then cosines of ``dim / 4`` geometrically spaced frequencies.

    Args:
        grid: patches per side.
        dim: channels, a positive multiple of 4.

    Returns:
        ``float32 (grid * grid, dim)`` with values in ``[-1, 1]``; row ``i * grid + j`` is patch ``(i, j)``.

    Raises:
        ValueError: when ``grid < 1`` or ``dim`` is not a positive multiple of 4.
    """
    if grid < 1:
        raise ValueError(f"grid must be >= 1, got {grid}")
    if dim < 4 or dim % 4:
        raise ValueError(f"dim must be a positive multiple of 4, got {dim}")
    quarter = dim // 4
    frequencies = torch.exp(-math.log(MAX_WAVELENGTH) * torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    parts = []
    for coordinate in (rows.reshape(-1), cols.reshape(-1)):
        angles = coordinate[:, None] * frequencies[None]
        parts += [torch.sin(angles), torch.cos(angles)]
    return torch.cat(parts, dim=1).float()


def init_vision_positions(embeddings: nn.Module) -> None:
    """Fill an InternViT embedding module's position embeddings with :func:`sincos_position_table`.

    The class token's position stays zero. Modules without absolute position embeddings are left alone.

    Args:
        embeddings: transformers' ``InternVLVisionEmbeddings`` (``position_embeddings``: ``(1, 1 + g*g, C)``).

    Raises:
        ValueError: when the number of patch positions is not a square or ``C`` not a multiple of 4.
    """
    table = getattr(embeddings, "position_embeddings", None)
    if table is None:
        return
    patches, dim = table.shape[1] - 1, table.shape[2]
    grid = math.isqrt(patches)
    if grid * grid != patches:
        raise ValueError(f"{patches} patch positions do not form a square grid")
    with torch.no_grad():
        table[0, 0].zero_()
        table[0, 1:].copy_(sincos_position_table(grid, dim).to(table.dtype))
