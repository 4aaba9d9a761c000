"""Sa2VA's inference, reproduced step for step: svac's ``pipeline="sa2va"`` (issue 13).

Reference: Sa2VA's Hugging Face export (``bytedance/Sa2VA``, commit ``9832e1a``,
``projects/sa2va/hf/models/modeling_sa2va_chat.py`` ``Sa2VAChatModel.predict_forward`` and the
SAM 2 video predictor of ``sam2.py`` it drives), as called by Sa2VA's referring-VOS evaluation.
For a video of N frames and an expression it does, and svac's ``sa2va`` pipeline does too:

1. **MLLM frames** -- the first k = min(5, N) frames (``astc.mode=first_k``), one image each,
   resized to 448 x 448 with PIL's bicubic filter on the ``uint8`` frame, scaled to [0, 1] and
   normalised with the ImageNet mean/std in float32 (:func:`resize_bicubic_pil`).
2. **Prompt** -- each frame ``<img>`` + 256 ``<IMG_CONTEXT>`` + ``</img>``, the blocks joined by a
   newline (none after the last), then ``"\\nPlease segment {expression}."`` (or, when the
   expression holds ``?``, ``"\\n {expression} Please respond with a segmentation mask."``), in the
   chat template without a system prompt (``prompts/sa2va.yaml``).
3. **Answer** -- generated greedily (``inference.answer_mode=generate``); the template answer is
   ``"Sure, [SEG]."`` (Sa2VA's training answers have no ``<p>`` tags).
4. **``[SEG]`` prompt** -- the last layer's hidden state where ``[SEG]`` is the input token,
   projected by ``text_hidden_fcs``.
5. **SAM-2 frames** -- every frame resized to 1024 x 1024 with PIL's bicubic filter on ``uint8``,
   scaled to [0, 1], normalised with the ImageNet mean/std *rounded to bfloat16*
   (:data:`SAM2_STATS_DTYPE`; Sa2VA builds them as bfloat16 tensors, the arithmetic stays float32).
6. **Schedule** -- frames 0..k-1 are each decoded on their own with the ``[SEG]`` prompt as
   initial conditioning frames (no memory read), and become conditioning memories; frames
   k..N-1 are tracked by SAM-2's memory (every conditioning frame, the 6 latest frames and the
   object pointers) without any prompt (:func:`svac.grounding.tracking.track_sa2va`). Memory
   features are stored in bfloat16 (:data:`MEMORY_DTYPE`), as SAM 2's video predictor stores them.
7. **Mask decoder** -- 3 masks and the best predicted IoU on every frame; mask logits kept when
   the object score is <= 0 (``sam2.keep_absent_object_logits``; the object pointer is still gated).
8. **Output** -- 256 x 256 logits upsampled bilinearly to 1024 x 1024, then to the frame size
   (:func:`upsample_logits`), thresholded at 0 (Sa2VA: sigmoid > 0.5).

What SVAC's pipeline (``pipeline="svac"``) changes: ASTC anchors and composites from T frames
over the whole video, one ``[SEG]`` per clip (CSA) prompting every frame of its clip with SAM-2
memory running from frame 0, torch's antialiased bicubic resizing, direct upsampling to the
frame size, SAM 2's own object-score gating and single-mask output unless configured.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: dtype Sa2VA rounds SAM-2's ImageNet mean/std to (``SAM2.preprocess_image(dtype=torch.bfloat16)``).
SAM2_STATS_DTYPE = torch.bfloat16
#: dtype SAM 2's video predictor stores memory features in (``_run_single_frame_inference``).
MEMORY_DTYPE = torch.bfloat16


def resize_bicubic_pil(images: np.ndarray, size: int) -> np.ndarray:
    """Resize ``uint8 (N, H, W, 3)`` RGB images to ``size x size`` with PIL's bicubic filter (Sa2VA's resizing).

    Sa2VA resizes PIL images: its MLLM transform (``T.Resize((448, 448), BICUBIC)`` on a PIL
    image) and its SAM-2 ``DirectResize`` (``Image.resize((1024, 1024))``, bicubic by default for
    RGB) both run PIL's bicubic filter on ``uint8`` pixels, rounding the result to ``uint8``.

    Returns:
        ``uint8 (N, size, size, 3)``.

    Raises:
        ValueError: when ``images`` is not ``uint8 (N, H, W, 3)``.
    """
    from PIL import Image

    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(
        (size, size), Image.Resampling.BICUBIC)) for image in images])


def upsample_logits(logits: torch.Tensor, image_size: int, frame_size: tuple[int, int]) -> torch.Tensor:
    """Sa2VA's upsampling of low-resolution mask logits: bilinear to SAM-2's input side, then to the frame.

    Args:
        logits: ``float (K, n, h', w')`` low-resolution logits (256 x 256 for a 1024 SAM-2).
        image_size: SAM-2's input side S (pixels): the predictor's ``video_res_masks`` are S x S.
        frame_size: ``(H, W)`` of the video frames (pixels).

    Returns:
        ``float (K, n, H, W)`` logits.
    """
    logits = F.interpolate(logits, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return F.interpolate(logits, size=frame_size, mode="bilinear", align_corners=False)
