"""svac.mllm.vision_positions: a freshly built InternVL's visual tokens know where they are (issue 18)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


def test_sincos_table_rows_and_columns():
    from svac.mllm.vision_positions import sincos_position_table

    grid, dim = 5, 12
    table = sincos_position_table(grid, dim)
    assert table.shape == (grid * grid, dim) and table.dtype == torch.float32
    assert table.abs().max() <= 1.0
    # the first half depends only on the row, the second only on the column
    assert torch.equal(table[2 * grid + 1, :6], table[2 * grid + 4, :6])
    assert torch.equal(table[2 * grid + 1, 6:], table[0 * grid + 1, 6:])
    # channel 0 is sin(row * 1), channel 3 cos(row * 1), the lowest wavelength
    assert table[3 * grid, 0] == pytest.approx(math.sin(3.0))
    assert table[3 * grid, 3] == pytest.approx(math.cos(3.0))
    assert len({tuple(row.tolist()) for row in table}) == grid * grid  # every patch has its own code
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_position_table(3, 10)
    with pytest.raises(ValueError, match="grid"):
        sincos_position_table(0, 8)


def test_a_freshly_built_mllm_tells_the_cells_of_a_flat_image_apart(tiny_config):
    """With transformers' zero position embeddings every visual token of a flat image is the same vector, so no
    state of the LLM can say where anything is; svac's build gives each cell its own token."""
    from svac.mllm.internvl import build_internvl, preprocess_images
    from svac.mllm.vision_positions import sincos_position_table

    torch.manual_seed(0)
    mllm = build_internvl(tiny_config.mllm, vocab_size=300, image_token_id=299).eval()
    table = mllm.model.vision_tower.embeddings.position_embeddings[0]
    grid = math.isqrt(table.shape[0] - 1)
    assert torch.equal(table[0], torch.zeros_like(table[0]))
    assert torch.allclose(table[1:], sincos_position_table(grid, table.shape[1]))
    size = tiny_config.mllm.vision["image_size"]
    flat = preprocess_images(np.full((1, size, size, 3), 90, np.uint8), tiny_config.mllm)
    with torch.no_grad():
        tokens = mllm.get_image_features(pixel_values=flat, return_dict=True).pooler_output[0]
        distances = torch.cdist(tokens, tokens)
        assert distances[~torch.eye(len(tokens), dtype=torch.bool)].min() > 1e-3
        mllm.model.vision_tower.embeddings.position_embeddings.zero_()  # transformers' initialisation
        tokens = mllm.get_image_features(pixel_values=flat, return_dict=True).pooler_output[0]
        assert torch.allclose(tokens, tokens[:1].expand_as(tokens), atol=1e-5)


def test_modules_without_position_embeddings_are_left_alone():
    from svac.mllm.vision_positions import init_vision_positions

    module = torch.nn.Module()
    module.position_embeddings = None
    init_vision_positions(module)  # nothing to fill, no error
    module.position_embeddings = torch.nn.Parameter(torch.zeros(1, 1 + 6, 8))
    with pytest.raises(ValueError, match="square"):
        init_vision_positions(module)
