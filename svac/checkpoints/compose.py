"""Starting an SVAC model from InternVL and SAM 2 weights that were never trained together.

:func:`compose_from_pretrained` takes

* an InternVL checkpoint -- OpenGVLab's InternVL-chat layout (``OpenGVLab/InternVL2_5-1B``,
  ``OpenGVLab/InternVL3-2B`` ...: ``vision_model.*``, ``mlp1.*``, ``language_model.*``, read
  with the same strict key maps as Sa2VA) or transformers' native InternVL
  (``OpenGVLab/InternVL3-1B-hf`` ..., loaded by transformers itself);
* a Meta SAM 2 / SAM 2.1 checkpoint (``sam2.1_hiera_large.pt`` ...);

and returns an SVAC whose ``[SEG]`` projector (``text_hidden_fcs``) is freshly initialised
(reproducibly, from ``seed``). The tokenizer gains svac's tokens (``[SEG]``, ``<p>`` ...);
embedding rows added for them are initialised to the mean of the existing rows (InternVL
checkpoints usually already have spare rows, then nothing is added). The model is marked
untrained: fine-tune it before use.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from svac.checkpoints.loader import LoadedModel, finish_loading
from svac.checkpoints.materialize import Conversion, LoadPlan, LoadReport
from svac.checkpoints.placement import cast_weights
from svac.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from svac.config import SAM2Config
    from svac.model import SVAC

#: Seed of the fresh ``text_hidden_fcs`` (the same as untrained models built from a config).
DEFAULT_SEED = 0
#: Chat template of a native InternVL's LLM, by transformers ``model_type``.
NATIVE_TEMPLATES = {"qwen2": "qwen", "qwen3": "qwen", "phi3": "phi3"}


def compose_from_pretrained(internvl: str | Path, sam2_checkpoint: "str | Path | SAM2Config", *,
                            model_class: "type[SVAC]", torch_dtype: torch.dtype | str | None = None,
                            device_map: Any = None,
                            chat_template: str | None = None, seed: int = DEFAULT_SEED, revision: str | None = None,
                            cache_dir: str | Path | None = None, local_files_only: bool = False,
                            tokenizer: str | Path | None = None) -> LoadedModel:
    """Build an untrained SVAC from an InternVL checkpoint and a Meta SAM 2 checkpoint.

    Args:
        internvl: folder or Hub id of an InternVL-chat or transformers-native InternVL checkpoint.
        sam2_checkpoint: a Meta ``.pt`` (config from its file name: ``sam2.1_hiera_large.pt`` ->
            ``configs/sam2.1/sam2.1_hiera_l.yaml``) or a :class:`~svac.config.SAM2Config` with
            ``checkpoint`` set.
        model_class: the model class to build, :class:`svac.SVAC` (handed in: loading never
            imports the model module).
        torch_dtype: dtype of the floating weights (default: the InternVL checkpoint's).
        device_map: as in :meth:`svac.SVAC.from_pretrained` (a single device for native InternVL).
        chat_template: svac chat template; default from the checkpoint (``template`` field, or
            the LLM type for native InternVL).
        seed: seed of the new ``text_hidden_fcs`` weights.
        revision, cache_dir, local_files_only, tokenizer: as in :meth:`svac.SVAC.from_pretrained`.

    Returns:
        A :class:`~svac.checkpoints.loader.LoadedModel` (``report.kind`` is ``internvl_chat`` or ``internvl``).

    Raises:
        CheckpointError: when a checkpoint is missing, unreadable, not InternVL / SAM 2, or does
            not match strictly.
        svac.errors.ConfigError: for an unknown chat template or an unsupported device map.
    """
    from svac.checkpoints.hub import resolve_checkpoint
    from svac.checkpoints.sa2va import classify
    from svac.checkpoints.svac_format import read_config_document

    folder = resolve_checkpoint(internvl, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    document = read_config_document(folder)
    kind = classify(document, where=str(folder))
    if kind == "internvl_chat":
        return _compose_chat(folder, document, sam2_checkpoint, model_class=model_class, torch_dtype=torch_dtype,
                             device_map=device_map, chat_template=chat_template, seed=seed, tokenizer=tokenizer)
    if kind == "internvl":
        return _compose_native(folder, sam2_checkpoint, model_class=model_class, torch_dtype=torch_dtype,
                               device_map=device_map, chat_template=chat_template, seed=seed, tokenizer=tokenizer)
    raise CheckpointError(f"{folder} is a {kind} checkpoint, not a bare InternVL; load it with SVAC.from_pretrained")


def _compose_chat(folder: Path, document, sam2_checkpoint, *, model_class, torch_dtype, device_map, chat_template,
                  seed, tokenizer) -> LoadedModel:
    from svac.checkpoints.building import build_skeleton, load_tokenizer
    from svac.checkpoints.keymaps import DECODER, FCS, GROUNDING, LM_HEAD, CheckpointLayout, internvl_plan
    from svac.checkpoints.sam2_meta import meta_grounding
    from svac.checkpoints.sa2va import embedding_rows, internvl_chat_config
    from svac.checkpoints.shards import read_weights
    from svac.mllm.chat_template import load_chat_template
    from svac.seg_projector import build_text_hidden_fcs

    config, family = internvl_chat_config(document, folder, kind="internvl_chat")
    if chat_template is not None:
        load_chat_template(chat_template)
        config = dataclasses.replace(config, mllm=dataclasses.replace(config.mllm, chat_template=chat_template))
    tok = load_tokenizer(tokenizer if tokenizer is not None else folder, model_name=folder.name)
    weights = read_weights(folder)
    stored_rows = embedding_rows(weights.tensors, where=str(folder))
    rows = max(stored_rows, len(tok))
    config, grounding = meta_grounding(config, sam2_checkpoint)
    fcs = _fresh_fcs(int(family.text["hidden_size"]), grounding.hidden_dim, seed, build_text_hidden_fcs)
    plan = internvl_plan(weights.tensors, CheckpointLayout(llm=family.conversion, with_grounding=False))
    if rows > stored_rows:
        plan = _pad_vocabulary(plan, rows, {f"{DECODER}.embed_tokens.weight", LM_HEAD})
    model = build_skeleton(config, tok, model_class=model_class, vocab_size=rows, grounding=grounding,
                           text_hidden_fcs=fcs)
    return finish_loading(model, weights, plan, kind="internvl_chat", torch_dtype=torch_dtype, device_map=device_map,
                          provided=(GROUNDING, FCS), load_adapter=False)


def _compose_native(folder: Path, sam2_checkpoint, *, model_class, torch_dtype, device_map, chat_template, seed,
                    tokenizer) -> LoadedModel:
    from transformers import InternVLForConditionalGeneration

    from svac.checkpoints.building import load_tokenizer
    from svac.checkpoints.llm_families import native_text_kwargs
    from svac.checkpoints.placement import CANONICAL, resolve_dtype
    from svac.checkpoints.sam2_meta import meta_grounding
    from svac.checkpoints.svac_format import read_config_document
    from svac.config import InferenceConfig, MLLMConfig, SVACConfig
    from svac.config_values import library_config_fields
    from svac.mllm.chat_template import load_chat_template
    from svac.mllm.tokenizer import token_id
    from svac.mllm.tokens import IMG_CONTEXT
    from svac.seg_projector import build_text_hidden_fcs

    from svac.checkpoints.placement import AUTO_MAPS

    single = device_map is None or isinstance(device_map, torch.device) or (
        isinstance(device_map, str) and device_map not in AUTO_MAPS)
    if not single:
        raise ConfigError("a native InternVL checkpoint is composed on one device; pass device_map=None or a device")
    device = torch.device(device_map) if device_map is not None else torch.device("cpu")
    stored = (read_config_document(folder).get("text_config") or {}).get("dtype") or "float32"
    dtype = resolve_dtype(torch_dtype, stored if stored in CANONICAL.values() else "float32")
    try:
        mllm = InternVLForConditionalGeneration.from_pretrained(str(folder), dtype=dtype, trust_remote_code=False,
                                                                use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"transformers cannot load the InternVL checkpoint {folder}: {exc}") from exc
    tok = load_tokenizer(tokenizer if tokenizer is not None else folder, model_name=folder.name)
    if len(tok) > mllm.get_input_embeddings().weight.shape[0]:
        mllm.resize_token_embeddings(len(tok), mean_resizing=True)
    if mllm.config.image_token_id != token_id(tok, IMG_CONTEXT):
        raise CheckpointError(f"{folder}: the model's image_token_id {mllm.config.image_token_id} is not the "
                              f"tokenizer's {IMG_CONTEXT} id")
    if mllm.config.vision_feature_layer != -1 or mllm.config.vision_feature_select_strategy != "default":
        raise CheckpointError(f"{folder}: vision_feature_layer={mllm.config.vision_feature_layer} / strategy "
                              f"{mllm.config.vision_feature_select_strategy!r} are not supported yet (-1 / default)")
    text_config = mllm.config.text_config
    template = chat_template or NATIVE_TEMPLATES.get(text_config.model_type)
    if template is None:
        raise ConfigError(f"no chat template known for a {text_config.model_type} LLM; pass chat_template=")
    load_chat_template(template)
    # every field of the vision config (not only those that differ from transformers' defaults): an svac
    # config gives all sizes (svac.config.REQUIRED_VISION_KEYS)
    own = library_config_fields(type(mllm.config.vision_config))
    vision = {k: v for k, v in mllm.config.vision_config.to_dict().items() if k in own}
    mllm_config = MLLMConfig(vision=vision, text_model_type=text_config.model_type,
                             text=native_text_kwargs(text_config.model_type, text_config.to_dict()),
                             downsample_ratio=float(mllm.config.downsample_ratio),
                             projector_hidden_act=mllm.config.projector_hidden_act, chat_template=template,
                             tokenizer=str(folder))
    config = SVACConfig(name=folder.name, trained=False, mllm=mllm_config,
                        inference=InferenceConfig(dtype=CANONICAL[dtype]))
    config, grounding = meta_grounding(config, sam2_checkpoint)
    fcs = _fresh_fcs(text_config.hidden_size, grounding.hidden_dim, seed, build_text_hidden_fcs)
    model = model_class(config, mllm=mllm, tokenizer=tok, grounding=grounding, text_hidden_fcs=fcs)
    model = cast_weights(model.to(device=device), dtype).eval()
    report = LoadReport(source=str(folder), kind="internvl", files=(), num_tensors=len(mllm.state_dict()),
                        ignored={}, dtype=CANONICAL[dtype], devices=(str(device),))
    return LoadedModel(model=model, report=report, folder=folder)


def _fresh_fcs(llm_dim: int, prompt_dim: int, seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(llm_dim, prompt_dim)


def _pad_vocabulary(plan: LoadPlan, rows: int, targets: set[str]) -> LoadPlan:
    """Give the embedding / output matrices ``rows`` rows; added rows are the mean of the stored ones."""
    conversions, ignored = [], dict(plan.ignored)
    for conv in plan.conversions:
        if conv.equal_to in targets:
            ignored[conv.source] = "tied copy of the input embeddings (rows were added for svac's tokens)"
        elif set(conv.targets) & targets:
            conversions.append(_padded(conv, rows))
        else:
            conversions.append(conv)
    return LoadPlan(conversions=conversions, unexpected=list(plan.unexpected), ignored=ignored)


def _padded(conv: Conversion, rows: int) -> Conversion:
    def convert(t: torch.Tensor):
        (out,) = conv.convert(t)
        mean = out.float().mean(dim=0, keepdim=True).to(out.dtype)
        return (torch.cat([out, mean.expand(rows - out.shape[0], *out.shape[1:])], dim=0),)

    def shapes(s):
        (shape,) = conv.shapes(s)
        if shape[0] > rows:
            raise ValueError(f"{shape[0]} stored rows exceed the {rows} needed")
        return ((rows, *shape[1:]),)

    return Conversion(conv.source, conv.targets, convert, shapes)
