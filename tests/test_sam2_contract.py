"""The members of the ``sam2`` package svac relies on, pinned in one place.

svac subclasses ``SAM2Base`` (:mod:`svac.grounding.sam2_model`), drives it frame by frame
(:mod:`svac.grounding.tracking`), trains its parts (:mod:`svac.training.params`) and builds it
from the package's Hydra configs (:mod:`svac.grounding.sam2_hydra`). Several of those members
are private. A ``sam2`` upgrade that renames, removes or re-signs one of them fails here, naming
it, instead of somewhere inside a video.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam2_base import SAM2Base

from svac.config import SAM2_CONFIG_NAMES, SAM2_HYDRA_PATHS
from svac.grounding.sam2_model import LanguagePromptedSAM2
from svac.grounding.tracking import MEMORY_KEYS, MemoryBank

#: ``SAM2Base`` methods svac overrides or calls, with their parameters (``self`` left out).
SAM2BASE_METHODS = {
    # overridden by LanguagePromptedSAM2
    "_forward_sam_heads": ("backbone_features", "point_inputs", "mask_inputs", "high_res_features",
                           "multimask_output"),
    "_use_multimask": ("is_init_cond_frame", "point_inputs"),
    "track_step": ("frame_idx", "is_init_cond_frame", "current_vision_feats", "current_vision_pos_embeds",
                   "feat_sizes", "point_inputs", "mask_inputs", "output_dict", "num_frames", "track_in_reverse",
                   "run_mem_encoder", "prev_sam_mask_logits"),
    # called by svac's track_step and encode_frames
    "_track_step": ("frame_idx", "is_init_cond_frame", "current_vision_feats", "current_vision_pos_embeds",
                    "feat_sizes", "point_inputs", "mask_inputs", "output_dict", "num_frames", "track_in_reverse",
                    "prev_sam_mask_logits"),
    "_encode_memory_in_output": ("current_vision_feats", "feat_sizes", "point_inputs", "run_mem_encoder",
                                 "high_res_masks", "object_score_logits", "current_out"),
    "forward_image": ("img_batch",),
    "_prepare_backbone_features": ("backbone_out",),
}
#: ``SAM2Base.__init__`` arguments svac's Hydra node sets besides the shipped config's.
SAM2BASE_INIT_ARGS = ("image_size", "max_cond_frames_in_attn", "sam_mask_decoder_extra_args")
#: Calls the ``[SEG]`` hooks sit on: the prompt encoder's output is extended, the decoder's read.
PROMPT_ENCODER_FORWARD = ("points", "boxes", "masks")
MASK_DECODER_FORWARD = ("image_embeddings", "image_pe", "sparse_prompt_embeddings", "dense_prompt_embeddings",
                        "multimask_output", "repeat_image", "high_res_features")
#: Attributes of a built SAM-2 svac reads (tracking horizon, trainable parts, hooks, sizes).
ATTRIBUTES = ("sam_prompt_encoder", "sam_mask_decoder", "image_encoder", "memory_attention", "memory_encoder",
              "obj_ptr_proj", "obj_ptr_tpos_proj", "maskmem_tpos_enc", "no_mem_embed", "no_mem_pos_enc",
              "hidden_dim", "image_size", "pred_obj_scores", "num_maskmem", "memory_temporal_stride_for_eval",
              "max_obj_ptrs_in_encoder")
#: Attributes svac reads only when the config has them (``getattr(..., None)``).
OPTIONAL_ATTRIBUTES = ("no_obj_ptr", "no_obj_embed_spatial", "mask_downsample")
#: What ``track_step`` puts in a frame's output that svac reads.
TRACK_STEP_OUTPUTS = ("pred_masks", "pred_masks_high_res", "obj_ptr", "maskmem_features", "maskmem_pos_enc")


def _params(function) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(function).parameters if p != "self")


@pytest.mark.parametrize("name", sorted(SAM2BASE_METHODS))
def test_sam2base_methods_svac_overrides_or_calls_keep_their_signature(name):
    assert hasattr(SAM2Base, name), f"sam2's SAM2Base has no {name} any more"
    assert _params(getattr(SAM2Base, name)) == SAM2BASE_METHODS[name], f"SAM2Base.{name} changed its parameters"


def test_overrides_take_the_parameters_of_the_method_they_replace():
    for name in ("_forward_sam_heads", "_use_multimask"):
        assert _params(getattr(LanguagePromptedSAM2, name)) == SAM2BASE_METHODS[name]
    ours = _params(LanguagePromptedSAM2.track_step)
    assert ours[:len(SAM2BASE_METHODS["track_step"])] == SAM2BASE_METHODS["track_step"]


def test_init_arguments_and_submodule_calls_svac_uses_exist():
    init = _params(SAM2Base.__init__)
    assert set(SAM2BASE_INIT_ARGS) <= set(init), sorted(set(SAM2BASE_INIT_ARGS) - set(init))
    assert _params(PromptEncoder.forward) == PROMPT_ENCODER_FORWARD
    assert _params(PromptEncoder.get_dense_pe) == ()
    assert _params(MaskDecoder.forward) == MASK_DECODER_FORWARD


def test_meta_file_table_names_exactly_the_configs_svac_accepts():
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    assert {config for config, _ in HF_MODEL_ID_TO_FILENAMES.values()} == set(SAM2_CONFIG_NAMES)


@pytest.mark.parametrize("config_name", SAM2_CONFIG_NAMES)
def test_every_hydra_path_svac_writes_is_a_setting_of_the_sam2_module_it_builds(config_name):
    """Each typed SAM-2 field lands at a path of the shipped config (``svac.config.SAM2_HYDRA_PATHS``): the
    node there must still build a ``sam2`` class taking that keyword (or already set it in its YAML)."""
    import sam2  # noqa: F401 -- the package's Hydra search path
    from hydra import compose
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    model = compose(config_name=config_name).model
    unknown = []
    for path in (p for paths in SAM2_HYDRA_PATHS.values() for p in paths):
        parent, _, key = path.rpartition(".")
        node = OmegaConf.select(model, parent) if parent else model
        if parent == "sam_mask_decoder_extra_args":  # a dict SAM2Base hands to sam2's MaskDecoder
            target, node = MaskDecoder, {}
        else:
            target = SAM2Base if not parent else get_class(node["_target_"])
        if key not in node and key not in inspect.signature(target.__init__).parameters:
            unknown.append(path)
    assert not unknown, f"{config_name}: no sam2 module takes {unknown}"


def test_built_model_has_the_attributes_svac_reads_and_track_step_its_outputs(tiny_model):
    sam = tiny_model.grounding  # SAM 2.1, which has every optional member too
    missing = [a for a in (*ATTRIBUTES, *OPTIONAL_ATTRIBUTES) if not hasattr(sam, a)]
    assert not missing, f"SAM2Base has no attribute(s) {missing}"
    with torch.inference_mode():
        feats = sam.encode_frames(torch.zeros(1, 3, sam.image_size, sam.image_size))[0]
        out = sam.track_step(0, True, feats.vision_feats, feats.vision_pos, feats.feat_sizes,
                             sam.text_point_inputs(torch.zeros(1, sam.hidden_dim)), None,
                             MemoryBank(horizon=4).output_dict, 1)
    assert set(TRACK_STEP_OUTPUTS) | set(MEMORY_KEYS) <= set(out), sorted(set(TRACK_STEP_OUTPUTS) - set(out))


def test_seg_tokens_reach_the_mask_decoder_after_the_padding_point(tiny_model):
    """``SAM2Base._forward_sam_heads`` must still make the sparse prompt with ``sam_prompt_encoder`` and hand it
    to ``sam_mask_decoder``: the hook then gives the decoder SAM-2's padding-point tokens, then [SEG], per object."""
    sam = tiny_model.grounding
    seen = []
    handle = sam.sam_mask_decoder.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(kwargs["sparse_prompt_embeddings"]), with_kwargs=True)
    prompts = torch.randn(2, sam.hidden_dim, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            frame = sam.encode_frames(torch.zeros(1, 3, sam.image_size, sam.image_size))[0]
            sam.track_step(0, True, [f.expand(-1, 2, -1) for f in frame.vision_feats],
                           [p.expand(-1, 2, -1) for p in frame.vision_pos], frame.feat_sizes,
                           sam.text_point_inputs(prompts), None, MemoryBank(horizon=4).output_dict, 1)
            padding, _ = sam.sam_prompt_encoder(points=(torch.zeros(2, 1, 2), -torch.ones(2, 1, dtype=torch.int32)),
                                                boxes=None, masks=None)
    finally:
        handle.remove()
    (sparse,) = seen
    assert sparse.shape == (2, padding.shape[1] + 1, sam.hidden_dim)
    torch.testing.assert_close(sparse[:, :-1], padding)  # SAM-2's own point prompt (padding point) first
    torch.testing.assert_close(sparse[:, -1], prompts)   # then the [SEG] prompt, unchanged
    assert sam._heads_call is None                            # nothing left behind for the next call


def test_members_the_inference_subclasses_rely_on_exist(tiny_model):
    """:mod:`svac.grounding.sam2_inference` overrides these methods and reads these members of sam2's modules."""
    from sam2.modeling.memory_attention import MemoryAttentionLayer
    from sam2.modeling.position_encoding import PositionEmbeddingSine
    from sam2.modeling.sam.transformer import Attention
    from sam2.modeling.sam2_utils import MLP

    assert _params(MemoryAttentionLayer._forward_sa) == ("tgt", "query_pos")
    assert _params(PositionEmbeddingSine._pe) == ("B", "device", "cache_key")
    assert _params(Attention.forward) == ("q", "k", "v") and _params(MLP.forward) == ("x",)
    sam = tiny_model.grounding
    encoder, decoder = sam.sam_prompt_encoder, sam.sam_mask_decoder
    assert isinstance(sam.image_encoder.neck.position_encoding.cache, dict)
    for name in ("positional_encoding_gaussian_matrix",):
        assert hasattr(encoder.pe_layer, name)
    assert all(hasattr(encoder, n) for n in ("point_embeddings", "not_a_point_embed", "no_mask_embed"))
    assert len(decoder.output_hypernetworks_mlps) == decoder.num_mask_tokens and decoder.num_mask_tokens > 1
    assert hasattr(decoder, "dynamic_multimask_via_stability")
    assert decoder.transformer.layers[0].skip_first_layer_pe
    assert sam.memory_attention.batch_first and hasattr(sam.memory_attention, "pos_enc_at_input")
