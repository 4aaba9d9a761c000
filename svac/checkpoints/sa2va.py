"""Sa2VA (and bare InternVL-chat) checkpoint folders: detection and the svac config they map to.

A Sa2VA folder (``ByteDance/Sa2VA-1B`` ...) holds a ``config.json`` with
``"model_type": "sa2va_chat"`` and ``"architectures": ["Sa2VAChatModel"]`` -- its
``auto_map`` names remote code that svac never runs --, sharded safetensors, and the
tokenizer (with ``added_tokens.json``). The config fields svac reads:

==========================  ============================================================
``vision_config``           InternViT sizes -> ``mllm.vision`` (:func:`keymaps.internvit_vision_kwargs`)
``llm_config``              the LLM -> ``mllm.text_model_type`` / ``mllm.text`` (:mod:`.llm_families`)
``template``                chat template (``qwen_chat`` -> ``qwen``, ``phi3_chat`` -> ``phi3``,
                            ``internlm2_chat`` -> ``internlm2``)
``downsample_ratio``        pixel-shuffle ratio (0.5)
``ps_version``              must be ``v2`` (transformers' pixel shuffle)
``select_layer``            must be -1 (last ViT layer)
``force_image_size``        must equal ``vision_config.image_size`` when set
``torch_dtype`` / ``dtype``  default load dtype (``inference.dtype``); transformers >= 4.56
                            writes ``dtype``
``svac_sam2`` (optional)    svac-specific: a :class:`~svac.config.SAM2Config` mapping giving the
                            SAM 2 sizes (typed fields); absent in released Sa2VA folders, which are hiera-L
                            SAM 2.0 (:data:`SA2VA_SAM2_CONFIG` with Sa2VA's decoder options).
                            svac's tiny test checkpoints use it to shrink SAM 2.
==========================  ============================================================

A Sa2VA checkpoint loads in Sa2VA's pipeline (``pipeline="sa2va"``, see
:mod:`svac.sa2va_pipeline`): Sa2VA's MLLM input (``astc.mode="first_k"``, the first 5 frames),
one ``[SEG]`` (``csa.mode="single"``), a generated answer (``inference.answer_mode="generate"``, up
to 2048 new tokens),
and Sa2VA's SAM 2 behaviour whatever ``svac_sam2`` says about sizes: multimask output for the
``[SEG]`` prompt, mask logits kept when the object score is <= 0, every conditioning frame
attended to. To fine-tune one into SVAC, switch with config overrides
(``pipeline=svac``, ``astc.mode=astc``, ``csa.mode=per_clip``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from svac.checkpoints.keymaps import SUPPORTED_PS_VERSION, internvit_vision_kwargs
from svac.checkpoints.llm_families import LLMFamily, llm_family
from svac.config import (ASTCConfig, CSAConfig, InferenceConfig, MLLMConfig, SAM2Config, SAM2MaskDecoderConfig,
                         SVACConfig, from_dict)
from svac.errors import CheckpointError, ConfigError

SA2VA_MODEL_TYPE = "sa2va_chat"
SA2VA_ARCHITECTURE = "Sa2VAChatModel"
INTERNVL_CHAT_MODEL_TYPE = "internvl_chat"
#: Sa2VA's SAM 2: hiera-L SAM 2.0 (``projects/sa2va/hf/models/sam2.py`` in Sa2VA's repository).
SA2VA_SAM2_CONFIG = "configs/sam2/sam2_hiera_l.yaml"
#: SAM 2 mask-decoder options Sa2VA builds its SAM 2 with (as the ``sam2`` package's video predictor).
SA2VA_MASK_DECODER = SAM2MaskDecoderConfig(dynamic_multimask_via_stability=True,
                                           dynamic_multimask_stability_delta=0.05,
                                           dynamic_multimask_stability_thresh=0.98)
#: Conditioning frames Sa2VA's SAM 2 attends to (``SAM2Base`` default -1: all of them).
SA2VA_MAX_COND_FRAMES = -1
#: Optional svac-specific ``config.json`` field giving the SAM 2 config of a Sa2VA-layout folder.
SAM2_FIELD = "svac_sam2"
#: Frames Sa2VA gives its MLLM from a video (the first five).
SA2VA_FIRST_K = 5
#: Sa2VA's generation budget (``preparing_for_generation(max_new_tokens=2048)``), tokens.
SA2VA_MAX_NEW_TOKENS = 2048
#: Chat templates of Sa2VA / InternVL configs -> svac's templates (``prompts/chat_templates.yaml``).
#: InternVL's own ``internvl2_5`` template has the Qwen layout (its default system prompt is not used).
TEMPLATES = {
    "qwen_chat": "qwen",
    "internlm2_chat": "internlm2",
    "phi3_chat": "phi3",
    "internvl2_5": "qwen",
}
#: Names of the LLM's input-embedding tensor in the supported families.
EMBEDDING_NAMES = ("language_model.model.embed_tokens.weight", "language_model.model.tok_embeddings.weight")


def classify(data: Mapping[str, Any], *, where: str) -> str:
    """The kind of checkpoint a ``config.json`` describes: ``svac``, ``sa2va``, ``internvl_chat`` or ``internvl``.

    Raises:
        CheckpointError: for any other content, naming its ``model_type`` and architectures
            (Sa2VA variants built on Qwen-VL models are reported as not supported yet).
    """
    if data.get("format") == "svac":
        return "svac"
    model_type = data.get("model_type")
    archs = list(data.get("architectures") or [])
    if model_type == SA2VA_MODEL_TYPE:
        vision_archs = (data.get("vision_config") or {}).get("architectures") or []
        if archs == [SA2VA_ARCHITECTURE] and "llm_config" in data and "Qwen" not in "".join(vision_archs):
            return "sa2va"
        raise CheckpointError(f"{where}: the Sa2VA variant {archs or model_type} (vision {vision_archs}) is not "
                              "supported yet; svac reads the InternVL-based Sa2VA models (Sa2VAChatModel)")
    if model_type == INTERNVL_CHAT_MODEL_TYPE:
        return "internvl_chat"
    if model_type == "internvl":
        return "internvl"
    raise CheckpointError(f"{where} is not a checkpoint svac can read: config.json has model_type={model_type!r}, "
                          f"architectures={archs} (expected an svac, Sa2VA or InternVL checkpoint)")


def template_name(raw: str | None, *, model_name: str) -> str:
    """svac's chat template for a Sa2VA / InternVL ``template`` value (``-`` read as ``_``, as Sa2VA does).

    Raises:
        CheckpointError: for a template svac has no layout for.
    """
    key = (raw or "").replace("-", "_")
    if key not in TEMPLATES:
        raise CheckpointError(f"{model_name}: chat template {raw!r} is not supported yet (known: "
                              f"{', '.join(TEMPLATES)})")
    return TEMPLATES[key]


def sam2_config(data: Mapping[str, Any], *, where: str) -> SAM2Config:
    """The SAM 2 config of a Sa2VA folder: the sizes of the ``svac_sam2`` field if present, else Sa2VA's
    hiera-L SAM 2.0 (with its mask-decoder options); in both cases with Sa2VA's SAM 2 behaviour
    (``projects/sa2va/hf/models/sam2.py``): multimask output for the ``[SEG]`` prompt, mask logits
    kept when the object score is <= 0, every conditioning frame attended to.

    Raises:
        ConfigError: naming ``svac_sam2.<key>``, when ``svac_sam2`` is not a valid
            :class:`~svac.config.SAM2Config` mapping (old-format ``overrides`` lines are converted
            as :func:`svac.config.from_dict` converts them, or refused).
    """
    raw = data.get(SAM2_FIELD)
    if raw is None:
        sizes = SAM2Config(config_name=SA2VA_SAM2_CONFIG, mask_decoder=SA2VA_MASK_DECODER)
    else:
        try:
            sizes = from_dict(SAM2Config, raw, where=SAM2_FIELD)
        except ConfigError as exc:
            raise ConfigError(f"{where}/config.json: invalid {SAM2_FIELD}: {exc}") from exc
    return dataclasses.replace(sizes, multimask_output=True, keep_absent_object_logits=True,
                               max_cond_frames_in_attn=SA2VA_MAX_COND_FRAMES)


def internvl_chat_config(data: Mapping[str, Any], folder: Path, *, kind: str) -> tuple[SVACConfig, LLMFamily]:
    """The svac config (and LLM family) of a Sa2VA (``kind="sa2va"``) or bare InternVL-chat folder.

    A Sa2VA checkpoint is a trained model in Sa2VA's pipeline (``pipeline="sa2va"``,
    ``csa.mode="single"``, ``astc.mode="first_k"``, generated answers); a bare InternVL checkpoint
    gives only the MLLM of an untrained SVAC (SVAC's default pipeline and ASTC / per-clip modes).

    Raises:
        CheckpointError: when a field cannot be mapped exactly (unsupported LLM, template,
            pixel-shuffle version, ViT feature layer, image size or norm); the message names
            the model and the field.
    """
    name = folder.name
    for key in ("vision_config", "llm_config"):
        if not isinstance(data.get(key), Mapping):
            raise CheckpointError(f"{folder}/config.json has no {key}")
    ps_version = data.get("ps_version", "v1")
    if ps_version != SUPPORTED_PS_VERSION:
        raise CheckpointError(f"{name}: ps_version={ps_version!r} (pixel shuffle without the final transpose) is not "
                              f"supported yet; transformers' InternVL implements {SUPPORTED_PS_VERSION!r}")
    if int(data.get("select_layer", -1)) != -1:
        raise CheckpointError(f"{name}: select_layer={data['select_layer']} is not supported yet (only -1, the last "
                              "ViT layer)")
    vision = internvit_vision_kwargs(data["vision_config"], force_image_size=data.get("force_image_size"))
    family = llm_family(data["llm_config"], model_name=name)
    template = template_name(data.get("template"), model_name=name)
    stored = str(data.get("torch_dtype") or data.get("dtype") or data["llm_config"].get("torch_dtype")
                 or data["llm_config"].get("dtype") or "float32")
    dtype = stored if stored in ("float32", "bfloat16", "float16") else "float32"
    mllm = MLLMConfig(vision=vision, text_model_type=family.model_type, text=family.text,
                      downsample_ratio=float(data.get("downsample_ratio", 0.5)), projector_hidden_act="gelu",
                      chat_template=template, tokenizer=str(folder))
    if kind == "sa2va":
        config = SVACConfig(name=name, trained=True, mllm=mllm, pipeline="sa2va",
                            astc=ASTCConfig(mode="first_k", first_k=SA2VA_FIRST_K), csa=CSAConfig(mode="single"),
                            sam2=sam2_config(data, where=str(folder)),
                            inference=InferenceConfig(dtype=dtype, answer_mode="generate",
                                                      max_new_tokens=SA2VA_MAX_NEW_TOKENS))
    else:
        config = SVACConfig(name=name, trained=False, mllm=mllm, inference=InferenceConfig(dtype=dtype))
    return config, family


def embedding_rows(tensors: Mapping[str, Any], *, where: str) -> int:
    """Rows of the LLM input-embedding table stored in a Sa2VA / InternVL checkpoint.

    Raises:
        CheckpointError: when the checkpoint has no embedding table.
    """
    for key in EMBEDDING_NAMES:
        if key in tensors:
            return int(tensors[key].shape[0])
    raise CheckpointError(f"{where} has no LLM embedding table (one of {', '.join(EMBEDDING_NAMES)})")
