"""Building transformers' InternVL (vision tower + MLP projector + LLM) and preparing its images."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig

from svac.config import MLLMConfig


def vision_image_size(cfg: MLLMConfig) -> int:
    """Side of the square MLLM input image (pixels), from ``cfg.vision['image_size']`` (InternVL: 448)."""
    size = cfg.vision.get("image_size", InternVLVisionConfig().image_size)
    size = size if isinstance(size, (list, tuple)) else (size, size)
    if size[0] != size[1]:
        raise ValueError(f"svac expects a square MLLM image size, got {size}")
    return int(size[0])


def tokens_per_image(cfg: MLLMConfig) -> int:
    """Visual tokens one MLLM image becomes: ``(S / patch)^2 * downsample_ratio^2`` (InternVL: 256).

    Raises:
        ValueError: as :func:`token_grid_side`.
    """
    return token_grid_side(cfg) ** 2


def token_grid_side(cfg: MLLMConfig) -> int:
    """Visual tokens per side of one MLLM image: ``S / patch * downsample_ratio`` (InternVL: 16); token
    ``i * side + j`` covers cell ``(i, j)`` of the image.

    Raises:
        ValueError: when the image size is not a multiple of the patch size, or the patch grid
            cannot be pixel-shuffled by ``downsample_ratio``.
    """
    size = vision_image_size(cfg)
    patch = cfg.vision.get("patch_size", InternVLVisionConfig().patch_size)
    patch = int(patch[0] if isinstance(patch, (list, tuple)) else patch)
    if size % patch:
        raise ValueError(f"MLLM image size {size} is not a multiple of the patch size {patch}")
    grid = size // patch
    scaled = grid * cfg.downsample_ratio
    if scaled != int(scaled):
        raise ValueError(f"patch grid {grid} cannot be pixel-shuffled by ratio {cfg.downsample_ratio}")
    return int(scaled)


def build_internvl_config(cfg: MLLMConfig, *, vocab_size: int, image_token_id: int,
                          pad_token_id: int | None = None) -> InternVLConfig:
    """transformers' ``InternVLConfig`` for ``cfg`` with the tokenizer's vocabulary size and image token id."""
    text = AutoConfig.for_model(cfg.text_model_type, vocab_size=vocab_size, pad_token_id=pad_token_id, **cfg.text)
    vision = InternVLVisionConfig(**cfg.vision)
    return InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=tokens_per_image(cfg),
        downsample_ratio=cfg.downsample_ratio,
        projector_hidden_act=cfg.projector_hidden_act,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=bool(getattr(text, "tie_word_embeddings", False)),
    )


def build_internvl(cfg: MLLMConfig, *, vocab_size: int, image_token_id: int,
                   pad_token_id: int | None = None) -> InternVLForConditionalGeneration:
    """A randomly initialised ``InternVLForConditionalGeneration`` for ``cfg`` (weights are loaded separately).

    transformers' initialisation is kept except for the vision tower's position embeddings, which get a fixed
    2-D sine-cosine table instead of zeros (:mod:`svac.mllm.vision_positions`): a model trained from these
    weights with its vision tower frozen still sees where each visual token is. Loaded weights replace them.
    """
    from svac.mllm.vision_positions import init_vision_positions

    config = build_internvl_config(cfg, vocab_size=vocab_size, image_token_id=image_token_id,
                                   pad_token_id=pad_token_id)
    config._attn_implementation = cfg.attn_implementation
    model = InternVLForConditionalGeneration(config)
    init_vision_positions(model.model.vision_tower.embeddings)
    return model


def preprocess_images(images: np.ndarray, cfg: MLLMConfig, *, device: torch.device | str = "cpu",
                      dtype: torch.dtype = torch.float32, resample: Literal["torch", "pil"] = "torch") -> torch.Tensor:
    """MLLM pixel values of RGB images: bicubic resize to S x S, scale to [0, 1], normalise.

    Args:
        images: ``uint8 (N, H, W, 3)`` RGB images (anchors, composites or frames).
        cfg: gives S (``vision.image_size``) and the normalisation statistics.
        resample: ``torch`` -- antialiased bicubic on [0, 1] floats (svac's pipeline); ``pil`` --
            PIL's bicubic filter on the ``uint8`` images, as Sa2VA's transform does
            (:func:`svac.sa2va_pipeline.resize_bicubic_pil`).

    Returns:
        ``float (N, 3, S, S)`` on ``device`` in ``dtype``.

    Raises:
        ValueError: when ``images`` is not ``uint8 (N, H, W, 3)``.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    size = vision_image_size(cfg)
    if resample == "pil":
        from svac.sa2va_pipeline import resize_bicubic_pil

        images = resize_bicubic_pil(images, size)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp_(0.0, 1.0)
    mean = torch.tensor(cfg.image_mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.image_std, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


@contextmanager
def eager_attention(mllm: InternVLForConditionalGeneration) -> Iterator[None]:
    """Within the context ``mllm``'s LLM computes its attention weights explicitly (transformers' ``eager``
    implementation), so ``output_attentions=True`` returns them; the previous implementation is restored after.

    Raises:
        ValueError: (from transformers) when the model cannot switch implementation.
    """
    before = mllm.config.text_config._attn_implementation
    mllm.set_attn_implementation("eager")
    try:
        yield
    finally:
        mllm.set_attn_implementation(before)
