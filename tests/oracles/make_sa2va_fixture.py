"""Build the Sa2VA oracle fixture with Sa2VA's OWN code (issue 13): tiny releases and the reference's outputs.

What it does, for each variant of :data:`VARIANTS`:

1. builds a tiny Sa2VA with the reference's classes (``Sa2VAChatConfig``, ``Sa2VAChatModel``,
   its InternViT, LLM and SAM-2 modules), random weights drawn from a fixed seed and rounded to
   bfloat16, and saves it in the release layout with the reference's own ``save_pretrained``:
   ``model.safetensors`` (bfloat16), ``config.json`` (with ``auto_map``, as Sa2VA's
   ``tools/convert_to_hf.py`` writes it) and the tokenizer files;
2. loads that folder back with the reference's ``from_pretrained`` (float32) and checks that no
   key is missing or unexpected;
3. runs the reference's ``predict_forward`` -- the call Sa2VA's referring-VOS evaluation
   (``projects/sa2va/evaluation/sa2va_eval_ref_vos.py``) makes -- on the 8 frames of
   :mod:`sa2va_frames` with the evaluation's prompt ``"<image>\\nPlease segment the swan."`` and
   a forced answer ``"Sure, [SEG]."`` (Sa2VA's training answer without ``<p>``);
4. saves what the reference computed: ``reference.safetensors`` (input ids, ``[SEG]`` hidden
   state and SAM-2 prompt, low-resolution mask logits of every frame, object-score logits,
   predicted IoUs, samples of the preprocessed pixels, final masks bit-packed) and
   ``reference.json`` (texts, frame checksum, versions, reference commit, the patches below).

``tests/test_sa2va_oracle.py`` then loads each folder through svac's normal loading path and
compares stage by stage. Nothing of the reference is copied into this repository: its code is
imported from the checkout given on the command line, and only weights it saved and numbers it
computed are committed.

Usage (the reference needs transformers 4.x; svac's venv has 5.x)::

    git clone <Sa2VA> /work/ref/Sa2VA && git -C /work/ref/Sa2VA checkout 9832e1a80e74ed513e8072bf882a09bdd80566c4
    for pin in "legacy 4.49.0 0.11.1 0.21.4" "latest 4.57.1 0.17.1 0.22.1"; do set -- $pin
        python3 -m venv /work/ref/venv-$1
        echo /work/main/.venv/lib/python3.11/site-packages > /work/ref/venv-$1/lib/python3.11/site-packages/zz-main.pth
        /work/ref/venv-$1/bin/pip install --no-deps transformers==$2 peft==$3 tokenizers==$4 timm==1.0.17 einops \\
            huggingface_hub==0.36.0 requests urllib3 idna charset_normalizer certifi
        /work/ref/venv-$1/bin/python tests/oracles/make_sa2va_fixture.py --reference /work/ref/Sa2VA
    done

(torch, torchvision, numpy, Pillow, safetensors come from svac's venv through the ``.pth`` line.) The reference checkout is Sa2VA's public repository
(``bytedance/Sa2VA``, formerly ``magic-research/Sa2VA``) at :data:`REFERENCE_COMMIT`; its HF export
is ``projects/sa2va/hf/models/``. Rerunning the script rewrites ``tests/fixtures/sa2va_tiny/``.

Harness patches (everything the harness changes in, or around, the reference's behaviour):

1. **SAM-2 size.** The reference's ``SAM2`` hard-codes hiera-L (embed 144, 48 blocks, 256-channel
   memory). :class:`TinySAM2` subclasses it and overrides only its three builders
   (``build_image_encoder``, ``build_memory_attention``, ``build_memory_encoder``) to build the
   same reference classes with the sizes of :data:`SAM2_SIZES`; ``modeling_sa2va_chat.SAM2`` is
   pointed at it. Everything else of SAM-2 (image size 1024, 7 memories, multimask, object
   scores, the mask decoder with its fixed 2048-wide MLP ...) is the reference's.
2. **Device.** The reference calls ``.cuda()`` (``predict_forward``, ``_get_image_feature``,
   ``_prepare_memory_conditioned_features``, ``add_language_embd``) and its ``init_state`` puts
   the inference state on ``torch.device("cuda")``. The harness runs on the CPU:
   ``torch.Tensor.cuda`` returns the tensor unchanged, and ``init_state`` is wrapped to set the
   state's ``device`` / ``storage_device`` to the CPU.
3. **dtype.** ``preparing_for_generation(tokenizer, torch_dtype=torch.float32)`` is called before
   ``predict_forward`` (its default is bfloat16, the model is loaded in float32): the whole run is
   float32. The reference's own bfloat16 steps stay: SAM-2's ImageNet mean/std are bfloat16
   tensors (``SAM2.preprocess_image``) and memory features are stored in bfloat16 by the video
   predictor. ``torch.autocast("cuda", bfloat16)`` around SAM-2 is inactive on the CPU (as it
   is for any CPU tensor), so the fixture does not cover GPU autocast.
4. **Forced answer.** A random LLM does not say ``[SEG]``: the reference's call to
   ``language_model.generate`` is given one extra logits processor that allows only the next
   token of ``"Sure, [SEG].<|im_end|>"``. Everything else of generation (greedy, stop words,
   hidden states read from the generation output) is the reference's.
5. **Recording.** Read-only hooks: the arguments of ``Sa2VAChatModel.generate`` (input ids,
   pixel values), the input and output of ``text_hidden_fcs``, the inference state returned by
   ``get_sam2_embeddings`` (low-resolution logits of every frame), and the outputs of
   ``_forward_sam_heads`` (object scores, IoUs). They change no value.
6. **Versions.** Two venvs outside the repository, as the reference's README prescribes: its
   "legacy" pin (transformers 4.49.0, peft 0.11.1) for the InternVL2.5-based variants -- under
   4.57 its InternLM2 model has no ``generation_config`` and cannot generate -- and its "latest"
   pin (4.57.0, withdrawn from PyPI: 4.57.1, peft 0.17.1) for InternVL3; timm 1.0.17 in both. Each
   variant records the release it was made with; the script builds the variants of the running
   venv. No shim of the reference's code was needed.
7. **Weights.** Random, not trained: every floating parameter is redrawn from a seeded normal
   (:func:`randomize`) and rounded to bfloat16, so that every module -- the memory fuser's
   ``g_weight`` layer scales included -- changes the output; the single-mask token's
   hypernetwork is drawn 30x larger (:data:`SCALED`) so that multimask output matters. Each
   variant's seed was picked among the first few so that the object scores do not all have the
   same sign across the fixture and the best of the 3 masks is not always the first.
8. **Saving.** ``model.safetensors`` is written from the whole state dict with safetensors'
   ``save_file``, a tied ``lm_head`` included: ``save_pretrained`` drops tied tensors, and the
   reference's ``from_pretrained`` under the legacy pin then re-initialises ``lm_head`` at random
   (the outer ``Sa2VAChatConfig`` says ``tie_word_embeddings=False``). ``config.json`` is written by
   the reference's ``Sa2VAChatConfig.save_pretrained``, with ``auto_map`` as its
   ``tools/convert_to_hf.py`` sets it, plus svac's ``svac_sam2`` field (the shrunk SAM-2 sizes,
   which released folders do not need: they are hiera-L); the reference ignores that field.

Variants (:data:`VARIANTS`) and what they stand for:

* ``sa2va_1b`` -- Sa2VA-1B: InternViT-300M style tower (LayerNorm, qkv bias), Qwen2 LLM with tied
  embeddings (``lm_head`` stored), ``qwen_chat`` template;
* ``sa2va_4b`` -- Sa2VA-4B: the same layout with the ``phi3_chat`` template its config names, read
  by a Qwen tokenizer that has no ``<|user|>`` / ``<|end|>`` tokens (they are plain text);
* ``sa2va_26b`` -- Sa2VA-8B / Sa2VA-26B: InternLM2 LLM (the reference's ``modeling_internlm2``,
  fused grouped ``wqkv``, dynamic rope scaling) and an InternViT-6B style tower (RMSNorm, q/k
  norm, no qkv bias), ``internlm2_chat`` template. The releases ship InternLM2's sentencepiece
  tokenizer (remote code, which svac never runs); the fixture uses a byte-level fast tokenizer
  that adds ``<s>`` as ``encode`` does there, since the LLM key layout is what is covered;
* ``sa2va_internvl3`` -- Sa2VA-InternVL3-2B/8B/14B: the same code path with a Qwen2.5 LLM (untied
  embeddings), saved by the "latest" transformers (``dtype`` instead of ``torch_dtype`` in
  ``config.json``).

Not built: a Phi-3 LLM key layout (``Phi3ForCausalLM``, fused ``qkv_proj`` / ``gate_up_proj``).
At the pinned commit the reference's ``Sa2VAChatConfig`` refuses it ("Unsupported architecture:
Phi3ForCausalLM"; its Phi-3 branch was removed in "codebase v2"), and no Sa2VA release has a
Phi-3 LLM (Sa2VA-4B is a Qwen2.5-3B with the ``phi3_chat`` template, covered by ``sa2va_4b``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from sa2va_frames import EXPRESSION, FRAME_SIZE, NUM_FRAMES, frames_sha256, load_frames, shared_davis16  # noqa: E402

#: The reference commit the fixture was made with (bytedance/Sa2VA, "Update README.md", 2025-10-24).
REFERENCE_COMMIT = "9832e1a80e74ed513e8072bf882a09bdd80566c4"
#: Where the HF export lives in the reference checkout (as a Python package path).
REFERENCE_PACKAGE = "projects.sa2va.hf.models"
#: Default output folder.
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "sa2va_tiny"
#: Sa2VA's referring-VOS prompt (``projects/sa2va/evaluation/dataset/refVOS.py``, ``SEG_PROMPT``).
SEG_PROMPT = "<image>\nPlease segment {}."
#: The forced answer (without the end-of-turn token, which is added per template).
ANSWER = "Sure, [SEG]."
#: Pixel positions sampled from the preprocessed images, per image (a compact fingerprint of preprocessing).
PIXEL_SAMPLES = 1024
#: The low-resolution (256 x 256) mask logits are stored at every LOW_RES_STRIDE-th row and column: one
#: value per cell of SAM-2's 64 x 64 feature map, which the mask decoder upsamples 4x (keeps the fixture small).
LOW_RES_STRIDE = 4

#: Parameters drawn at a larger scale (harness patch 7): the hypernetwork of SAM-2's single-mask token
#: (mask token 0), so that its mask is stable (stability score >= 0.98) and a decoder run without
#: multimask output would keep it instead of falling back to the best of the 3 masks -- without
#: this, single- and multi-mask runs agree and the fixture could not tell them apart.
SCALED = {"grounding_encoder.sam2_model.sam_mask_decoder.output_hypernetworks_mlps.0.layers.2.weight": 30.0}

#: The shrunk SAM-2 (harness patch 1). Hidden width C = 32 (hiera-L: 256), memory width 16 (64).
SAM2_SIZES = {
    "trunk_embed_dim": 8, "trunk_num_heads": 1, "trunk_stages": [1, 1, 2, 1], "trunk_global_att_blocks": [3],
    "trunk_window_spec": [8, 4, 16, 8], "trunk_window_pos_embed_bkg_spatial_size": [7, 7],
    "d_model": 32, "backbone_channel_list": [64, 32, 16, 8],
    "memory_attention_layers": 1, "memory_attention_ffn": 64,
    "mem_dim": 16, "fuser_layers": 2,
}

#: InternViT towers at tiny width. image_size / patch_size must stay 448 / 14: Sa2VA's
#: ``preparing_for_generation`` hard-codes them (256 tokens per frame).
VIT_300M_STYLE = {"architectures": ["InternVisionModel"], "image_size": 448, "patch_size": 14, "hidden_size": 16,
                  "num_attention_heads": 2, "intermediate_size": 32, "num_hidden_layers": 2, "qkv_bias": True,
                  "qk_normalization": False, "norm_type": "layer_norm", "layer_norm_eps": 1e-6, "hidden_act": "gelu",
                  "drop_path_rate": 0.0, "use_flash_attn": False}
VIT_6B_STYLE = {**VIT_300M_STYLE, "qkv_bias": False, "qk_normalization": True, "norm_type": "rms_norm"}

_QWEN2 = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32,
          "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
          "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu",
          "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 2, "attention_dropout": 0.0}

#: The variants: vision tower, LLM config (vocab_size is added), Sa2VA template, tokenizer layout, the
#: transformers release the reference runs them with (its README: the "legacy" pin, 4.49, for Sa2VA
#: based on InternVL2/2.5; the "latest" pin, 4.57, for InternVL3), and the seed of the random weights
#: (chosen so that the object-score sign and the best of the 3 masks are not the same on every frame,
#: see :func:`main`'s ``--seed``).
VARIANTS = {
    "sa2va_1b": {"vision": VIT_300M_STYLE, "llm": {**_QWEN2, "tie_word_embeddings": True},
                 "template": "qwen_chat", "tokenizer": "qwen", "transformers": "4.49.0", "seed": 1},
    "sa2va_4b": {"vision": VIT_300M_STYLE, "llm": {**_QWEN2, "tie_word_embeddings": True},
                 "template": "phi3_chat", "tokenizer": "qwen", "transformers": "4.49.0", "seed": 2},
    "sa2va_26b": {"vision": VIT_6B_STYLE,
                  "llm": {"architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2", "hidden_size": 32,
                          "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                          "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
                          "rope_theta": 1000000, "rope_scaling": {"type": "dynamic", "factor": 2.0},
                          "bias": False, "hidden_act": "silu", "tie_word_embeddings": False,
                          "attn_implementation": "eager"},
                  "template": "internlm2_chat", "tokenizer": "internlm2", "transformers": "4.49.0", "seed": 3},
    "sa2va_internvl3": {"vision": VIT_300M_STYLE,
                        "llm": {**_QWEN2, "tie_word_embeddings": False, "max_window_layers": 1, "rope_scaling": None},
                        "template": "qwen_chat", "tokenizer": "qwen", "transformers": "4.57.1", "seed": 4},
}

#: Special tokens per tokenizer layout: (chat tokens, eos, pad, bos that ``encode`` adds).
TOKENIZER_LAYOUTS = {
    "qwen": (["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", "<|endoftext|>", None),
    "internlm2": (["<s>", "</s>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", "</s>", "<s>"),
}
#: End of an assistant turn per Sa2VA template (``templates.py``: ``SUFFIX``).
END_OF_TURN = {"qwen_chat": "<|im_end|>", "internlm2_chat": "<|im_end|>", "phi3_chat": "<|end|>"}
#: InternVL's image tokens and Sa2VA's added tokens (``[SEG]``, ``<p>``, ``<vp>`` ...), in the releases' order.
ADDED_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>",
                "[SEG]", "<p>", "</p>", "<vp>", "</vp>"]


def svac_sam2_field() -> dict:
    """svac's ``svac_sam2`` config.json field for :data:`SAM2_SIZES` (releases omit it: they are hiera-L).

    svac reads it (typed :class:`svac.config.SAM2Config` fields) to build the same shrunk SAM-2 from
    the ``sam2`` package's hiera-L config. It holds sizes and the mask-decoder options of Sa2VA's
    SAM-2 build only, plus every conditioning frame attended to as svac has always set for released
    folders; Sa2VA's behaviour (multimask output, logits kept for absent objects) is not written
    here: svac must derive it from the release itself.
    """
    s = SAM2_SIZES
    c, m = s["d_model"], s["mem_dim"]
    return {
        "config_name": "configs/sam2/sam2_hiera_l.yaml",
        "trunk": {"embed_dim": s["trunk_embed_dim"], "num_heads": s["trunk_num_heads"], "stages": s["trunk_stages"],
                  "global_att_blocks": s["trunk_global_att_blocks"], "window_spec": s["trunk_window_spec"],
                  "window_pos_embed_bkg_spatial_size": s["trunk_window_pos_embed_bkg_spatial_size"]},
        "neck": {"d_model": c, "backbone_channel_list": s["backbone_channel_list"], "num_pos_feats": c},
        "memory_attention": {"d_model": c, "num_layers": s["memory_attention_layers"],
                             "dim_feedforward": s["memory_attention_ffn"], "kv_in_dim": m},
        "memory_encoder": {"out_dim": m, "in_dim": c, "num_pos_feats": m, "mask_downsampler_embed_dim": c,
                           "fuser_dim": c, "fuser_num_layers": s["fuser_layers"]},
        "mask_decoder": {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                         "dynamic_multimask_stability_thresh": 0.98},
        "max_cond_frames_in_attn": -1,
    }


# --------------------------------------------------------------------------- reference import and patches


def import_reference(checkout: Path):
    """Import the reference's HF export from ``checkout`` and return its modules (modeling, sam2, config)."""
    if not (checkout / REFERENCE_PACKAGE.replace(".", "/") / "modeling_sa2va_chat.py").is_file():
        raise SystemExit(f"{checkout} is not a Sa2VA checkout with {REFERENCE_PACKAGE.replace('.', '/')}/")
    sys.path.insert(0, str(checkout))
    modeling = importlib.import_module(f"{REFERENCE_PACKAGE}.modeling_sa2va_chat")
    sam2 = importlib.import_module(f"{REFERENCE_PACKAGE}.sam2")
    config = importlib.import_module(f"{REFERENCE_PACKAGE}.configuration_sa2va_chat")
    return modeling, sam2, config


def make_tiny_sam2(ref_sam2):
    """Harness patch 1: the reference ``SAM2`` with its three builders at :data:`SAM2_SIZES`."""
    s = SAM2_SIZES
    c, m = s["d_model"], s["mem_dim"]

    class TinySAM2(ref_sam2.SAM2):
        def build_image_encoder(self):
            trunk = ref_sam2.Hiera(embed_dim=s["trunk_embed_dim"], num_heads=s["trunk_num_heads"],
                                   stages=s["trunk_stages"], global_att_blocks=s["trunk_global_att_blocks"],
                                   window_pos_embed_bkg_spatial_size=s["trunk_window_pos_embed_bkg_spatial_size"],
                                   window_spec=s["trunk_window_spec"])
            neck = ref_sam2.FpnNeck(d_model=c, backbone_channel_list=s["backbone_channel_list"],
                                    fpn_top_down_levels=[2, 3], fpn_interp_model="nearest",
                                    position_encoding=ref_sam2.PositionEmbeddingSine(
                                        num_pos_feats=c, normalize=True, scale=None, temperature=10000))
            return ref_sam2.ImageEncoder(scalp=1, trunk=trunk, neck=neck)

        def build_memory_attention(self):
            def rope(**extra):
                return ref_sam2.RoPEAttention(rope_theta=10000.0, feat_sizes=[32, 32], embedding_dim=c, num_heads=1,
                                              downsample_rate=1, dropout=0.1, **extra)

            layer = ref_sam2.MemoryAttentionLayer(
                activation="relu", dim_feedforward=s["memory_attention_ffn"], dropout=0.1, pos_enc_at_attn=False,
                d_model=c, pos_enc_at_cross_attn_queries=False, pos_enc_at_cross_attn_keys=True,
                self_attention=rope(), cross_attention=rope(rope_k_repeat=True, kv_in_dim=m))
            return ref_sam2.MemoryAttention(d_model=c, pos_enc_at_input=True, num_layers=s["memory_attention_layers"],
                                            layer=layer)

        def build_memory_encoder(self):
            fuser = ref_sam2.Fuser(layer=ref_sam2.CXBlock(dim=c, kernel_size=7, padding=3, layer_scale_init_value=1e-6,
                                                          use_dwconv=True),
                                   num_layers=s["fuser_layers"])
            return ref_sam2.MemoryEncoder(
                out_dim=m, in_dim=c, fuser=fuser,
                position_encoding=ref_sam2.PositionEmbeddingSine(num_pos_feats=m, normalize=True, scale=None,
                                                                 temperature=10000),
                mask_downsampler=ref_sam2.MaskDownSampler(embed_dim=c, kernel_size=3, stride=2, padding=1))

    return TinySAM2


@contextmanager
def cpu_patches(ref_sam2):
    """Harness patch 2: ``Tensor.cuda`` is the identity and inference states live on the CPU."""
    original_cuda = torch.Tensor.cuda
    original_init_state = ref_sam2.SAM2VideoPredictor.init_state

    def init_state(self, images):
        state = original_init_state(self, images)
        state["device"] = state["storage_device"] = torch.device("cpu")
        return state

    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    ref_sam2.SAM2VideoPredictor.init_state = init_state
    try:
        yield
    finally:
        torch.Tensor.cuda = original_cuda
        ref_sam2.SAM2VideoPredictor.init_state = original_init_state


# --------------------------------------------------------------------------- building the release folder


def build_tokenizer(layout: str, folder: Path):
    """A byte-level BPE tokenizer (every UTF-8 byte one token) with the layout's special tokens, saved to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen2TokenizerFast

    chat, eos, pad, bos = TOKENIZER_LAYOUTS[layout]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    cls = Qwen2TokenizerFast if layout == "qwen" else PreTrainedTokenizerFast
    fast = cls(tokenizer_object=tok, eos_token=eos, pad_token=pad, bos_token=bos, unk_token=None,
               additional_special_tokens=[t for t in chat if t not in (eos, pad, bos)])
    fast.add_tokens(ADDED_TOKENS, special_tokens=True)
    if bos is not None:
        bos_id = fast.convert_tokens_to_ids(bos)
        fast.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)])
    fast.save_pretrained(str(folder))
    return fast


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Harness patch 7: redraw every floating parameter from a seeded normal, then round it to bfloat16.

    Norm weights ~ 1 + 0.1 N(0, 1); other vectors ~ 0.1 N(0, 1); matrices and kernels ~
    N(0, 1) / sqrt(fan_in), times :data:`SCALED` where listed. Parameters are visited in name
    order, so the draw is reproducible.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            is_norm = name.endswith(".weight") and p.ndim == 1 and any(
                key in name for key in ("norm", "ln", "layernorm", "LayerNorm"))
            if is_norm:
                value = 1.0 + 0.1 * noise
            elif p.ndim <= 1:
                value = 0.1 * noise
            else:
                fan_in = max(1, p.numel() // p.shape[0])
                value = noise / fan_in ** 0.5
            p.copy_((value * SCALED.get(name, 1.0)).to(torch.bfloat16).to(p.dtype))


def build_release(ref, variant: dict, folder: Path, seed: int):
    """Build the tiny Sa2VA with the reference classes, randomise it and save the release layout to ``folder``."""
    from safetensors.torch import save_file

    modeling, ref_sam2, ref_config = ref
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(variant["tokenizer"], folder)
    llm = {**variant["llm"], "vocab_size": len(tokenizer)}
    config = ref_config.Sa2VAChatConfig(
        vision_config=dict(variant["vision"]), llm_config=llm, template=variant["template"], ps_version="v2",
        select_layer=-1, force_image_size=448, downsample_ratio=0.5, dynamic_image_size=True, use_thumbnail=True,
        min_dynamic_patch=1, max_dynamic_patch=12, architectures=["Sa2VAChatModel"], torch_dtype="bfloat16",
        auto_map={"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfig",
                  "AutoModel": "modeling_sa2va_chat.Sa2VAChatModel",
                  "AutoModelForCausalLM": "modeling_sa2va_chat.Sa2VAChatModel"},
        svac_sam2=svac_sam2_field())
    model = modeling.Sa2VAChatModel(config, use_flash_attn=False)
    randomize(model, seed)
    # Harness patch 8: every tensor is written, a tied lm_head included (save_pretrained would drop it,
    # and the reference's from_pretrained under the legacy pin then re-initialises it at random).
    state = {k: v.detach().to(torch.bfloat16).contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(str(folder))
    return tokenizer


def load_release(ref, folder: Path):
    """Load ``folder`` with the reference's ``from_pretrained`` in float32; fail on missing or unexpected keys."""
    modeling = ref[0]
    model, info = modeling.Sa2VAChatModel.from_pretrained(str(folder), torch_dtype=torch.float32,
                                                           use_flash_attn=False, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad:
        raise SystemExit(f"{folder}: the reference does not load its own release cleanly: {bad}")
    return model.eval()


# --------------------------------------------------------------------------- running the reference


class ForcedAnswer:
    """Harness patch 4: a logits processor that allows only the next token of a fixed answer."""

    def __init__(self, ids: list[int]):
        self.ids = ids

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = min(input_ids.shape[1], len(self.ids) - 1)
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[step]] = 0.0
        return forced


def pixel_samples(pixels: torch.Tensor, seed: int) -> tuple[torch.Tensor, str]:
    """``(values at PIXEL_SAMPLES fixed positions per image, sha256 of all float32 values)``."""
    flat = pixels.detach().float().reshape(pixels.shape[0], -1).contiguous()
    idx = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))[:PIXEL_SAMPLES]
    return flat[:, idx].clone(), hashlib.sha256(flat.numpy().tobytes()).hexdigest()


def run_reference(ref, model, tokenizer, frames: np.ndarray, template: str) -> tuple[dict, dict]:
    """Run ``predict_forward`` with the forced answer; return ``(tensors, metadata)`` of what the reference computed."""
    from PIL import Image
    from transformers import LogitsProcessorList

    _, ref_sam2, _ = ref
    eot = END_OF_TURN[template]
    answer_ids = tokenizer.encode(ANSWER + eot, add_special_tokens=False)
    record: dict = {"heads": []}

    model.preparing_for_generation(tokenizer=tokenizer, torch_dtype=torch.float32)  # harness patch 3
    llm_generate = model.language_model.generate

    def forced_generate(*args, **kwargs):  # harness patch 4
        kwargs["logits_processor"] = LogitsProcessorList([ForcedAnswer(answer_ids)])
        return llm_generate(*args, **kwargs)

    model.language_model.generate = forced_generate
    mm_generate = model.generate

    def recording_generate(*args, **kwargs):  # harness patch 5
        record["input_ids"] = kwargs["input_ids"].detach().clone()
        record["pixel_values"] = kwargs["pixel_values"].detach().clone()
        out = mm_generate(*args, **kwargs)
        record["sequence"] = out.sequences[0].detach().clone()
        return out

    model.generate = recording_generate
    fcs_hook = model.text_hidden_fcs.register_forward_hook(
        lambda module, args, output: record.update(seg_hidden=args[0].detach().clone(),
                                                   seg_prompt=output.detach().clone()))
    grounding = model.grounding_encoder
    get_states = grounding.get_sam2_embeddings

    def recording_states(images):
        record["g_pixel_values"] = images.detach().clone()
        state = get_states(images)
        record["state"] = state
        return state

    grounding.get_sam2_embeddings = recording_states
    heads = grounding.sam2_model._forward_sam_heads

    def recording_heads(*args, **kwargs):
        out = heads(*args, **kwargs)
        record["heads"].append((out[6].detach().float().clone(), out[2].detach().float().clone(),
                                kwargs.get("language_embd") is not None))
        return out

    grounding.sam2_model._forward_sam_heads = recording_heads
    video = [Image.fromarray(f) for f in frames]
    question = SEG_PROMPT.format(EXPRESSION)
    try:
        with cpu_patches(ref_sam2), torch.no_grad():
            result = model.predict_forward(video=video, text=question, tokenizer=tokenizer)
    finally:
        fcs_hook.remove()
    state = record["state"]
    outputs = state["output_dict"]
    low_res = []
    for t in range(len(frames)):
        out = outputs["cond_frame_outputs"].get(t) or outputs["non_cond_frame_outputs"][t]
        low_res.append(out["pred_masks"].float()[0, 0, ::LOW_RES_STRIDE, ::LOW_RES_STRIDE])
    masks = np.asarray(result["prediction_masks"][0], dtype=bool)
    mllm_samples, mllm_sha = pixel_samples(record["pixel_values"], 1)
    sam_samples, sam_sha = pixel_samples(record["g_pixel_values"], 2)
    generated = record["sequence"]
    fed = torch.cat([record["input_ids"][0], generated[:-1]])
    tensors = {
        "prompt_ids": record["input_ids"][0].to(torch.int64),
        "fed_ids": fed.to(torch.int64),
        "seg_hidden": record["seg_hidden"].float(),
        "seg_prompt": record["seg_prompt"].float(),
        "low_res_logits": torch.stack(low_res),
        "object_score_logits": torch.stack([h[0].reshape(-1)[0] for h in record["heads"]]),
        "ious": torch.stack([h[1].reshape(-1) for h in record["heads"]]),
        "mllm_pixel_samples": mllm_samples,
        "sam2_pixel_samples": sam_samples,
        "masks_packed": torch.from_numpy(np.packbits(masks.reshape(-1))),
    }
    meta = {
        "question": question, "forced_answer": ANSWER + eot, "prediction": result["prediction"],
        "mask_shape": list(masks.shape), "mask_fraction_per_frame": [round(float(m.mean()), 4) for m in masks],
        "prompted_frames": [i for i, h in enumerate(record["heads"]) if h[2]],
        "mllm_pixel_shape": list(record["pixel_values"].shape), "mllm_pixel_sha256": mllm_sha,
        "sam2_pixel_shape": list(record["g_pixel_values"].shape), "sam2_pixel_sha256": sam_sha,
        "pixel_sample_seeds": {"mllm": 1, "sam2": 2}, "pixel_samples_per_image": PIXEL_SAMPLES,
        "low_res_stride": LOW_RES_STRIDE,
    }
    return tensors, meta


# --------------------------------------------------------------------------- main


def versions() -> dict:
    import PIL
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "pillow": PIL.__version__}


def reference_commit(checkout: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_variant(ref, name: str, out: Path, frames: np.ndarray, frames_sha: str, checkout: Path,
                 seed: int | None) -> dict:
    from safetensors.torch import save_file

    variant = VARIANTS[name]
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    seed = variant["seed"] if seed is None else seed
    torch.manual_seed(seed)
    tokenizer = build_release(ref, variant, folder, seed)
    model = load_release(ref, folder)
    tensors, meta = run_reference(ref, model, tokenizer, frames, variant["template"])
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "reference.safetensors"))
    meta.update(variant=name, reference_commit=reference_commit(checkout), reference_package=REFERENCE_PACKAGE,
                expression=EXPRESSION, frames={"sequence": "davis16 blackswan", "count": NUM_FRAMES,
                                               "size_wh": list(FRAME_SIZE), "sha256": frames_sha},
                seed=seed, versions=versions(), harness="tests/oracles/make_sa2va_fixture.py (patches in its docstring)")
    (folder / "reference.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="Sa2VA checkout (at REFERENCE_COMMIT)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixture folder (rewritten)")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS),
                        help="variants to build (default: those pinned to the running transformers release)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random weights (default: the variant's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    commit = reference_commit(args.reference)
    if commit != REFERENCE_COMMIT:
        print(f"warning: {args.reference} is at {commit}, the fixture is pinned to {REFERENCE_COMMIT}", file=sys.stderr)
    ref = import_reference(args.reference)
    ref[0].SAM2 = make_tiny_sam2(ref[1])  # harness patch 1
    frames = load_frames(shared_davis16(REPO_ROOT))
    sha = frames_sha256(frames)
    import transformers

    names = args.variants or [n for n, v in VARIANTS.items() if v["transformers"] == transformers.__version__]
    skipped = [n for n in VARIANTS if n not in names]
    for name in names:
        pinned = VARIANTS[name]["transformers"]
        if pinned != transformers.__version__:
            raise SystemExit(f"{name} is pinned to transformers {pinned}, this venv has {transformers.__version__}")
    if skipped:
        print(f"not built here (other transformers pin): {', '.join(skipped)}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        meta = make_variant(ref, name, args.out, frames, sha, args.reference, args.seed)
        print(f"{name}: prediction {meta['prediction']!r}, prompted frames {meta['prompted_frames']}, "
              f"mask fraction {meta['mask_fraction_per_frame']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
