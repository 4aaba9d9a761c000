"""Tiny synthetic Sa2VA-layout checkpoints (real key names and config fields, toy shapes, random values).

The builders below write what a Sa2VA release folder holds -- ``config.json`` with
``auto_map``, sharded safetensors with an index, the tokenizer with ``added_tokens.json`` --
following Sa2VA's module definitions (InternViT ``vision_model.*``, ``mlp1.{0,1,3}``,
``language_model.*``, ``grounding_encoder.sam2_model.*``, ``text_hidden_fcs.{0,2}``).
The InternViT, ``mlp1``, InternLM2 and projector tensors are listed by hand from those
definitions, independently of svac's key maps; the native LLM tensors are whatever the
transformers class saves (Sa2VA's language model is that class). The SAM 2 sizes are
shrunk and told to the loader through the optional ``svac_sam2`` config field.

Other checkpoint tests import these builders; the tests here check the layout itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

#: Tiny InternViT-300M-style tower (layer_norm, qkv bias, no q/k norm): 32 px images, 8 px patches.
VIT_300M = {
    "architectures": ["InternVisionModel"], "attention_dropout": 0.0, "drop_path_rate": 0.1, "dropout": 0.0,
    "hidden_act": "gelu", "hidden_size": 32, "image_size": 32, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 64, "layer_norm_eps": 1e-6, "model_type": "intern_vit_6b",
    "norm_type": "layer_norm", "num_attention_heads": 4, "num_channels": 3, "num_hidden_layers": 2,
    "patch_size": 8, "qk_normalization": False, "qkv_bias": True, "torch_dtype": "bfloat16", "use_flash_attn": True,
}
#: Tiny InternViT-6B-style tower (rms_norm, q/k RMS norm, no qkv bias), as in Sa2VA-26B.
VIT_6B = {**VIT_300M, "norm_type": "rms_norm", "qk_normalization": True, "qkv_bias": False}

#: LLM width of the synthetic checkpoints.
LLM_DIM = 48
_LLM_COMMON = {"hidden_size": LLM_DIM, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6,
               "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16",
               "_name_or_path": "./pretrained/InternVL2_5", "use_bfloat16": True, "transformers_version": "4.42.3"}
LLM_CONFIGS = {
    "qwen2": {**_LLM_COMMON, "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "rope_theta": 1000000.0,
              "rope_scaling": None, "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 21,
              "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 1},
    "qwen3": {**_LLM_COMMON, "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "rope_theta": 1000000.0,
              "head_dim": 16, "attention_bias": False, "bos_token_id": 0, "eos_token_id": 1},
    "llama": {**_LLM_COMMON, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "rope_theta": 500000.0,
              "attention_bias": False, "mlp_bias": False, "bos_token_id": 0, "eos_token_id": 1},
    "phi3": {**_LLM_COMMON, "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "rope_theta": 10000.0,
             "rope_scaling": None, "sliding_window": 2047, "original_max_position_embeddings": 4096,
             "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
    "internlm2": {**_LLM_COMMON, "architectures": ["InternLM2ForCausalLM"], "model_type": "internlm2",
                  "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                               "AutoModel": "modeling_internlm2.InternLM2ForCausalLM",
                               "AutoModelForCausalLM": "modeling_internlm2.InternLM2ForCausalLM"},
                  "attn_implementation": "eager", "bias": False, "rope_theta": 1000000.0,
                  "rope_scaling": {"type": "dynamic", "factor": 2.0}, "bos_token_id": 0, "eos_token_id": 1},
}
#: Chat template of each family's checkpoint (Sa2VA-1B: qwen_chat, -4B: phi3_chat, -8B/26B: internlm2_chat).
TEMPLATES = {"qwen2": "qwen_chat", "qwen3": "qwen_chat", "llama": "qwen_chat", "phi3": "phi3_chat",
             "internlm2": "internlm2_chat"}

#: SAM 2.0 hiera-L (Sa2VA's SAM 2) shrunk to toy sizes with the same module names (a ``svac_sam2`` field).
TINY_SAM2 = {
    "config_name": "configs/sam2/sam2_hiera_l.yaml",
    "image_size": 128,
    "mask_decoder": {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_delta": 0.05,
                     "dynamic_multimask_stability_thresh": 0.98},
    "trunk": {"embed_dim": 16, "num_heads": 1, "stages": [1, 1, 1, 1], "global_att_blocks": [],
              "window_spec": [8, 4, 8, 4], "window_pos_embed_bkg_spatial_size": [8, 8]},
    "neck": {"d_model": 32, "backbone_channel_list": [128, 64, 32, 16], "num_pos_feats": 32},
    "memory_attention": {"d_model": 32, "num_layers": 1, "dim_feedforward": 64, "feat_sizes": [8, 8],
                         "kv_in_dim": 16},
    "memory_encoder": {"out_dim": 16, "in_dim": 32, "num_pos_feats": 16, "mask_downsampler_embed_dim": 32,
                       "fuser_dim": 32, "fuser_num_layers": 1},
}
#: Width of the tiny SAM 2 prompts (``text_hidden_fcs`` output).
SAM2_DIM = 32
#: Tensors per shard of the synthetic checkpoints (several shards per checkpoint).
TENSORS_PER_SHARD = 60


def _svac_tokenizer(template: str):
    """Sa2VA's tokenizer stand-in: svac's byte tokenizer for ``template`` with Sa2VA's added tokens."""
    from svac.mllm.chat_template import load_chat_template
    from svac.mllm.tokenizer import add_svac_tokens, build_byte_tokenizer

    names = {"qwen_chat": "qwen", "phi3_chat": "phi3", "internlm2_chat": "internlm2", "internvl2_5": "qwen"}
    tok = build_byte_tokenizer(load_chat_template(names[template]))
    add_svac_tokens(tok)
    return tok


def internvit_tensors(vit: dict, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """InternViT tensors named as InternVisionModel names them, under ``vision_model.``."""
    c, inter, p = vit["hidden_size"], vit["intermediate_size"], vit["patch_size"]
    n = (vit["image_size"] // p) ** 2
    r = lambda *shape: torch.randn(*shape, generator=gen) * 0.2  # noqa: E731
    out = {
        "vision_model.embeddings.class_embedding": r(1, 1, c),
        "vision_model.embeddings.patch_embedding.weight": r(c, 3, p, p),
        "vision_model.embeddings.patch_embedding.bias": r(c),
        "vision_model.embeddings.position_embedding": r(1, n + 1, c),
    }
    for i in range(vit["num_hidden_layers"]):
        pre = f"vision_model.encoder.layers.{i}."
        out[pre + "ls1"] = 1.0 + r(c)
        out[pre + "ls2"] = 1.0 + r(c)
        out[pre + "attn.qkv.weight"] = r(3 * c, c)
        if vit["qkv_bias"]:
            out[pre + "attn.qkv.bias"] = r(3 * c)
        if vit["qk_normalization"]:
            out[pre + "attn.q_norm.weight"] = 1.0 + r(c)
            out[pre + "attn.k_norm.weight"] = 1.0 + r(c)
        out[pre + "attn.proj.weight"] = r(c, c)
        out[pre + "attn.proj.bias"] = r(c)
        out[pre + "mlp.fc1.weight"] = r(inter, c)
        out[pre + "mlp.fc1.bias"] = r(inter)
        out[pre + "mlp.fc2.weight"] = r(c, inter)
        out[pre + "mlp.fc2.bias"] = r(c)
        for norm in ("norm1", "norm2"):
            out[pre + f"{norm}.weight"] = 1.0 + r(c)
            if vit["norm_type"] == "layer_norm":
                out[pre + f"{norm}.bias"] = r(c)
    return out


def mlp1_tensors(vit_dim: int, llm_dim: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``mlp1`` = LayerNorm(4C), Linear(4C, D), GELU, Linear(D, D)."""
    r = lambda *shape: torch.randn(*shape, generator=gen) * 0.2  # noqa: E731
    wide = 4 * vit_dim
    return {"mlp1.0.weight": 1.0 + r(wide), "mlp1.0.bias": r(wide), "mlp1.1.weight": r(llm_dim, wide),
            "mlp1.1.bias": r(llm_dim), "mlp1.3.weight": r(llm_dim, llm_dim), "mlp1.3.bias": r(llm_dim)}


def internlm2_tensors(cfg: dict, vocab: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """InternLM2ForCausalLM tensors (``model.tok_embeddings``, fused ``attention.wqkv`` ...) under ``language_model.``."""
    d, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // heads
    r = lambda *shape: torch.randn(*shape, generator=gen) * 0.2  # noqa: E731
    out = {"language_model.model.tok_embeddings.weight": r(vocab, d), "language_model.model.norm.weight": 1.0 + r(d),
           "language_model.output.weight": r(vocab, d)}
    for i in range(cfg["num_hidden_layers"]):
        pre = f"language_model.model.layers.{i}."
        out[pre + "attention.wqkv.weight"] = r((heads + 2 * kv) * hd, d)
        out[pre + "attention.wo.weight"] = r(d, heads * hd)
        out[pre + "feed_forward.w1.weight"] = r(inter, d)
        out[pre + "feed_forward.w3.weight"] = r(inter, d)
        out[pre + "feed_forward.w2.weight"] = r(d, inter)
        out[pre + "attention_norm.weight"] = 1.0 + r(d)
        out[pre + "ffn_norm.weight"] = 1.0 + r(d)
    return out


def native_llm_tensors(cfg: dict, vocab: int, seed: int) -> dict[str, torch.Tensor]:
    """The tensors transformers' own causal-LM class saves, under ``language_model.``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type", "torch_dtype", "_name_or_path",
                                                         "use_bfloat16", "transformers_version", "vocab_size")}
    config = AutoConfig.for_model(cfg["model_type"], vocab_size=vocab, **fields)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    gen = torch.Generator().manual_seed(seed)  # the same tensors whatever ran before (no global RNG)
    with torch.no_grad():  # make norms and biases non-trivial so a misplaced tensor shows
        for name, param in model.named_parameters():
            if param.ndim == 1:
                param.add_(torch.randn(param.shape, generator=gen) * 0.2)
    return {f"language_model.{k}": v.detach().clone() for k, v in model.state_dict().items()}


def sam2_tensors(seed: int) -> dict[str, torch.Tensor]:
    """A tiny hiera-L SAM 2.0's tensors (Meta's module names) under ``grounding_encoder.sam2_model.``."""
    from svac.config import SAM2Config, from_dict
    from svac.grounding.sam2_model import build_sam2_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam2 = build_sam2_model(from_dict(SAM2Config, TINY_SAM2))
        with torch.no_grad():
            for param in sam2.parameters():
                param.add_(torch.randn(param.shape) * 0.05)
    return {f"grounding_encoder.sam2_model.{k}": v.detach().clone() for k, v in sam2.state_dict().items()}


def write_sharded(folder: Path, tensors: dict[str, torch.Tensor], per_shard: int = TENSORS_PER_SHARD) -> list[str]:
    """Write ``tensors`` as ``model-0000X-of-0000N.safetensors`` + ``model.safetensors.index.json`` (HF layout)."""
    names = sorted(tensors)
    chunks = [names[i:i + per_shard] for i in range(0, len(names), per_shard)]
    weight_map, files = {}, []
    for i, chunk in enumerate(chunks, start=1):
        file = f"model-{i:05d}-of-{len(chunks):05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in chunk}, str(folder / file), metadata={"format": "pt"})
        weight_map.update({n: file for n in chunk})
        files.append(file)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return files


def write_sa2va_checkpoint(folder: Path, family: str = "qwen2", *, vit: dict | None = None, seed: int = 0,
                           model_type: str = "sa2va_chat", template: str | None = None,
                           llm_overrides: dict | None = None, mutate=None) -> dict[str, torch.Tensor]:
    """Write a tiny Sa2VA checkpoint of LLM ``family`` into ``folder``; return the tensors written.

    Args:
        vit: the vision_config (default: InternViT-300M style; InternLM2 checkpoints use the 6B style).
        model_type: ``sa2va_chat``, or ``internvl_chat`` for a bare InternVL checkpoint (no SAM 2,
            no ``text_hidden_fcs``).
        llm_overrides: fields replaced in the ``llm_config``.
        mutate: optional function editing the tensor dict before it is written (error tests).
    """
    folder.mkdir(parents=True, exist_ok=True)
    vit = vit or (VIT_6B if family == "internlm2" else VIT_300M)
    template = template or TEMPLATES[family]
    tok = _svac_tokenizer(template)
    vocab = len(tok)
    llm = {**LLM_CONFIGS[family], "vocab_size": vocab, **(llm_overrides or {})}
    gen = torch.Generator().manual_seed(seed)
    tensors = {**internvit_tensors(vit, gen), **mlp1_tensors(vit["hidden_size"], LLM_DIM, gen)}
    if family == "internlm2":
        tensors.update(internlm2_tensors(llm, vocab, gen))
    else:
        tensors.update(native_llm_tensors(llm, vocab, seed))
    if model_type == "sa2va_chat":
        tensors.update(sam2_tensors(seed))
        r = lambda *shape: torch.randn(*shape, generator=gen) * 0.2  # noqa: E731
        tensors.update({"text_hidden_fcs.0.weight": r(LLM_DIM, LLM_DIM), "text_hidden_fcs.0.bias": r(LLM_DIM),
                        "text_hidden_fcs.2.weight": r(SAM2_DIM, LLM_DIM), "text_hidden_fcs.2.bias": r(SAM2_DIM)})
    if mutate is not None:
        mutate(tensors)
    write_sharded(folder, tensors)
    config = {
        "architectures": ["Sa2VAChatModel" if model_type == "sa2va_chat" else "InternVLChatModel"],
        "auto_map": {"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfig",
                     "AutoModel": "modeling_sa2va_chat.Sa2VAChatModel",
                     "AutoModelForCausalLM": "modeling_sa2va_chat.Sa2VAChatModel"},
        "model_type": model_type, "downsample_ratio": 0.5, "dynamic_image_size": True,
        "force_image_size": vit["image_size"], "max_dynamic_patch": 12, "min_dynamic_patch": 1, "pad2square": False,
        "ps_version": "v2", "select_layer": -1, "template": template, "torch_dtype": "float32",
        "transformers_version": "4.42.3", "use_backbone_lora": 0, "use_llm_lora": 0, "use_thumbnail": True,
        "hidden_size": LLM_DIM, "tie_word_embeddings": False, "vision_config": vit, "llm_config": llm,
    }
    if model_type == "sa2va_chat":
        config["svac_sam2"] = TINY_SAM2
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tok.save_pretrained(str(folder))
    (folder / "added_tokens.json").write_text(json.dumps(tok.get_added_vocab(), indent=2))
    return tensors


# --------------------------------------------------------------------------- tests of the layout itself


def test_synthetic_checkpoint_has_sa2va_key_names_and_shards(tmp_path):
    tensors = write_sa2va_checkpoint(tmp_path / "ck", "qwen2")
    index = json.loads((tmp_path / "ck/model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) >= 3 and set(index["weight_map"]) == set(tensors)
    for name in ("vision_model.encoder.layers.0.attn.qkv.weight", "vision_model.encoder.layers.1.ls2",
                 "vision_model.embeddings.class_embedding", "mlp1.3.bias",
                 "language_model.model.layers.0.self_attn.q_proj.weight", "language_model.lm_head.weight",
                 "grounding_encoder.sam2_model.image_encoder.trunk.patch_embed.proj.weight",
                 "grounding_encoder.sam2_model.sam_mask_decoder.transformer.layers.0.self_attn.q_proj.weight",
                 "grounding_encoder.sam2_model.obj_ptr_proj.layers.0.weight",
                 "grounding_encoder.sam2_model.memory_encoder.out_proj.weight",
                 "grounding_encoder.sam2_model.no_mem_embed", "grounding_encoder.sam2_model.maskmem_tpos_enc",
                 "text_hidden_fcs.2.weight"):
        assert name in tensors, name
    # SAM 2.0 has no 2.1-only tensors
    assert not any(k.endswith("no_obj_embed_spatial") for k in tensors)
    file = index["weight_map"]["mlp1.1.weight"]
    with safe_open(str(tmp_path / "ck" / file), "pt") as f:
        assert torch.equal(f.get_tensor("mlp1.1.weight"), tensors["mlp1.1.weight"])
    config = json.loads((tmp_path / "ck/config.json").read_text())
    assert config["auto_map"]["AutoModel"].startswith("modeling_sa2va_chat")
    assert (tmp_path / "ck/added_tokens.json").is_file()
