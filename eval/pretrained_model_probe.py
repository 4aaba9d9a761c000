"""Probe: what would break if SVAC were a transformers ``PreTrainedModel`` (and its config a ``PreTrainedConfig``).

svac keeps :class:`svac.SVAC` an ``nn.Module`` composed by injection, with its own typed config
and strict loader built on huggingface_hub / accelerate calls (:mod:`svac.checkpoints`). This
script measures the alternative instead of arguing about it: it wraps svac's parts in a minimal
``PreTrainedModel`` registered with ``AutoConfig`` / ``AutoModel`` (nothing of it is svac code),
saves a tiny random SVAC, and loads it both ways. It prints, for the transformers route:

1. whether ``from_pretrained`` loads the same tensors and whether SAM-2 then runs
   (transformers builds the model under ``torch.device("meta")``; SAM-2's RoPE tables are plain
   tensors computed in ``__init__``, not parameters or buffers);
2. what a checkpoint with a missing, an unexpected and a mis-shaped tensor does;
3. the weights' dtypes with ``dtype=torch.bfloat16`` and ``_keep_in_fp32_modules_strict``;
4. whether a transformers config accepts and saves keys its class does not define (``_target_`` ...);
5. the cost of building SAM 2 hiera-L for real instead of with empty weights (the way around 1);
6. accelerate's ``load_checkpoint_in_model`` (what ``load_checkpoint_and_dispatch`` runs) on the
   same svac checkpoint: the tensors, their alignment in memory (svac gives every loaded tensor
   fresh storage: views into the read buffer made CPU kernels give last-bit different results),
   and a missing tensor.

Run (CPU, about a minute)::

    python eval/pretrained_model_probe.py
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch


def _hf_classes():
    """A minimal PreTrainedConfig / PreTrainedModel around svac's parts, registered with the Auto classes."""
    from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

    from svac.config import SVACConfig, from_dict
    from svac.grounding.sam2_model import build_sam2_model
    from svac.mllm.internvl import build_internvl
    from svac.model import build_text_hidden_fcs

    class ProbeConfig(PreTrainedConfig):
        model_type = "svac_probe"

        def __init__(self, svac: dict | None = None, vocab_size: int = 0, image_token_id: int = 0,
                     pad_token_id: int | None = None, **kwargs):
            self.svac = svac or {}
            self.vocab_size = vocab_size
            self.image_token_id = image_token_id
            super().__init__(pad_token_id=pad_token_id, **kwargs)

    class ProbeModel(PreTrainedModel):
        config_class = ProbeConfig
        _keep_in_fp32_modules_strict = ["grounding"]

        def __init__(self, config: ProbeConfig):
            super().__init__(config)
            cfg = from_dict(SVACConfig, config.svac)
            self.mllm = build_internvl(cfg.mllm, vocab_size=config.vocab_size, image_token_id=config.image_token_id,
                                       pad_token_id=config.pad_token_id)
            self.grounding = build_sam2_model(dataclasses.replace(cfg.sam2, checkpoint=None))
            self.text_hidden_fcs = build_text_hidden_fcs(self.mllm.config.text_config.hidden_size,
                                                         self.grounding.hidden_dim)
            self.post_init()

        def _init_weights(self, module):
            pass

    AutoConfig.register(ProbeConfig.model_type, ProbeConfig)
    AutoModel.register(ProbeConfig, ProbeModel)
    return ProbeConfig, AutoModel


def _as_transformers_folder(model, folder: Path, out: Path, config_class) -> None:
    """An svac checkpoint folder's weights with a transformers ``config.json``."""
    from svac.mllm.tokenizer import token_id
    from svac.mllm.tokens import IMG_CONTEXT

    out.mkdir(parents=True)
    for file in folder.glob("model*.safetensors*"):
        shutil.copy(file, out / file.name)
    rows = model.mllm.get_input_embeddings().weight.shape[0]
    config_class(svac=model.config.to_dict(), vocab_size=rows, image_token_id=token_id(model.tokenizer, IMG_CONTEXT),
                 pad_token_id=model.tokenizer.pad_token_id).save_pretrained(out)


def _tracked(grounding) -> torch.Tensor:
    """SAM-2's mask logits over 3 random frames prompted by one random [SEG] prompt."""
    from svac.grounding.tracking import track

    gen = torch.Generator().manual_seed(0)
    frames = torch.randn(3, 3, grounding.image_size, grounding.image_size, generator=gen)
    prompt = torch.randn(1, grounding.hidden_dim, generator=gen)
    with torch.inference_mode():
        feats = grounding.encode_frames(frames)
        return torch.cat([o.mask_logits.flatten() for o in track(grounding, enumerate(feats), lambda t: prompt,
                                                                   num_frames=3)])


def main() -> None:
    """Run the probe on ``configs/tiny.yaml`` and print what each step shows."""
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2Config
    from transformers.utils import logging as hf_logging

    from svac.config import SAM2Config, load_config
    from svac.grounding.sam2_model import build_sam2_model
    from svac.loading import build_from_config
    from svac.model import SVAC

    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    config_class, auto_model = _hf_classes()
    tmp = Path(tempfile.mkdtemp())
    try:
        model = build_from_config(load_config("tiny.yaml")).eval()
        folder = model.save_pretrained(tmp / "svac").path
        _as_transformers_folder(model, folder, tmp / "hf", config_class)

        t0 = time.perf_counter()
        ours = SVAC.from_pretrained(folder)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs, info = auto_model.from_pretrained(tmp / "hf", output_loading_info=True)
        t_theirs = time.perf_counter() - t0
        a, b = ours.state_dict(), theirs.state_dict()
        same = set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
        meta = sorted(f"{name}.{attr}" for name, module in theirs.named_modules()
                      for attr, value in vars(module).items() if isinstance(value, torch.Tensor) and value.is_meta)
        print(f"1. load: svac {t_ours:.2f} s, transformers {t_theirs:.2f} s; same tensors: {same}; "
              f"problems reported: {sum(len(v) for v in info.values())}")
        print(f"   plain tensors left on the meta device: {len(meta)} ({', '.join(meta[:2])} ...)")
        try:
            equal = torch.equal(_tracked(ours.grounding), _tracked(theirs.grounding))
            print(f"   SAM-2 tracking after the transformers load: runs, equal to svac's: {equal}")
        except (NotImplementedError, RuntimeError) as exc:
            print(f"   SAM-2 tracking after the transformers load FAILS: {type(exc).__name__}: {exc}")

        bad = tmp / "hf_bad"
        shutil.copytree(tmp / "hf", bad)
        shard = next(bad.glob("model*.safetensors"))
        state = load_file(shard)
        missing = next(k for k in state if k.startswith("grounding."))
        del state[missing]
        state["grounding.not_in_the_model"] = torch.zeros(1)
        save_file(state, shard, metadata={"format": "pt"})
        index = bad / "model.safetensors.index.json"
        if index.exists():
            document = json.loads(index.read_text())
            document["weight_map"].pop(missing)
            document["weight_map"]["grounding.not_in_the_model"] = shard.name
            index.write_text(json.dumps(document))
        try:
            _, info = auto_model.from_pretrained(bad, output_loading_info=True)
            print(f"2. a missing ({missing}) and an unexpected tensor: LOADED without error; missing tensors are "
                  f"initialised instead ({sorted(info['missing_keys'])[:1]}, {sorted(info['unexpected_keys'])[:1]})")
        except Exception as exc:  # noqa: BLE001 -- the probe reports whatever transformers does
            print(f"2. a missing and an unexpected tensor: {type(exc).__name__}: {str(exc)[:120]}")
        fcs = next(k for k in state if k.startswith("text_hidden_fcs.") and k.endswith("weight"))
        state[fcs] = torch.zeros(3, 3)
        save_file(state, shard, metadata={"format": "pt"})
        try:
            auto_model.from_pretrained(bad)
            print("   ... and a mis-shaped tensor: LOADED")
        except Exception as exc:  # noqa: BLE001
            print(f"   ... and a mis-shaped tensor: {type(exc).__name__} (after the weights were read)")

        bf16 = auto_model.from_pretrained(tmp / "hf", dtype=torch.bfloat16)
        dtypes = {part: sorted({str(p.dtype).removeprefix('torch.') for p in getattr(bf16, part).parameters()})
                  for part in ("mllm", "grounding", "text_hidden_fcs")}
        print(f"3. dtype=bfloat16 with _keep_in_fp32_modules_strict=['grounding']: {dtypes}")

        config = Qwen2Config(hidden_size=64, _target_="builtins.open", not_a_field=1)
        config.save_pretrained(tmp / "qwen2")
        stored = json.loads((tmp / "qwen2" / "config.json").read_text())
        print(f"4. Qwen2Config(_target_=..., not_a_field=...) accepted; saved keys: "
              f"{sorted(k for k in stored if k in ('_target_', 'not_a_field'))}")

        from accelerate import init_empty_weights

        large = SAM2Config(config_name="configs/sam2/sam2_hiera_l.yaml")
        build_sam2_model(large)  # imports and Hydra set-up, not timed
        t0 = time.perf_counter()
        with init_empty_weights(include_buffers=False):
            build_sam2_model(large)
        t_empty = time.perf_counter() - t0
        t0 = time.perf_counter()
        real = build_sam2_model(large)
        t_real = time.perf_counter() - t0
        size = sum(p.numel() * p.element_size() for p in real.parameters()) / 2 ** 30
        print(f"5. SAM 2 hiera-L: empty weights {t_empty:.2f} s; real random weights {t_real:.2f} s and {size:.2f} GiB")

        from accelerate.utils import load_checkpoint_in_model

        from svac.checkpoints.building import build_skeleton

        def skeleton():
            rows = model.mllm.get_input_embeddings().num_embeddings
            return build_skeleton(model.config, model.tokenizer, model_class=type(model), vocab_size=rows)

        weights = next(folder.glob("model*.safetensors"))
        loaded = skeleton()
        load_checkpoint_in_model(loaded, str(weights), device_map={"": "cpu"}, strict=True)
        b = loaded.state_dict()
        unaligned = {name: sum(p.data_ptr() % 64 != 0 for p in m.parameters()) for name, m in (("accelerate", loaded),
                                                                                              ("svac", ours))}
        print(f"6. accelerate load_checkpoint_in_model: same tensors: {all(torch.equal(a[k], b[k]) for k in a)}; "
              f"parameters not 64-byte aligned: accelerate {unaligned['accelerate']}, svac {unaligned['svac']} "
              f"(of {len(list(ours.parameters()))})")
        state = load_file(weights)
        del state[missing]
        save_file(state, tmp / "missing.safetensors", metadata={"format": "pt"})
        try:
            partial = skeleton()
            load_checkpoint_in_model(partial, str(tmp / "missing.safetensors"), device_map={"": "cpu"}, strict=True)
            left = [n for n, t in [*partial.named_parameters(), *partial.named_buffers()] if t.is_meta]
            print(f"   a missing tensor (strict=True): no error; left without data on the meta device: {left}")
        except Exception as exc:  # noqa: BLE001
            print(f"   a missing tensor (strict=True): {type(exc).__name__}: {str(exc)[:60]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
