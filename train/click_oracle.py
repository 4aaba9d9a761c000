"""Diagnostic recipe: train only the SAM-2 side of an SVAC config, prompted by oracle clicks.

Question it answers: *can the grounding model of this config learn to segment the referred objects
within the training budget at all, when the prompt is perfect?* The MLLM is not used. Each object
on each sampled frame is prompted with one positive click (SAM 2 §3 "prompts") at a pixel drawn
uniformly from its ground-truth mask (a padding point when the object is absent), on the same
data, frames, losses (2.0 BCE + 0.5 Dice + presence, ``cfg.loss``) and optimizer settings
(AdamW, ``cfg.optim.lr``, constant, clipped at ``cfg.optim.max_grad_norm``) as ``svac train``,
every frame on its own (no memory). Compare its mask Dice per update with the ``dice`` column
of the full run's ``train_log.jsonl``: when even clicked SAM-2 stays at the same Dice, the
bottleneck is SAM-2 learning from scratch, not the language path.

Run::

    python -m svac.recipes.click_oracle configs/train/svac_default_1_image.yaml --steps 150 --out runs/click-oracle

It writes ``OUT/oracle_log.jsonl`` (one record per update), ``OUT/oracle_result.json`` and
``OUT/sam2.pt``: the trained SAM-2 as a Meta-format checkpoint (``{"model": state_dict}``), which
a training config can start from with ``model.sam2.checkpoint=OUT/sam2.pt`` (a click curriculum).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from svac.atomic_folder import staged_folder
from svac.training.frame_objectives import NO_POINT as NO_CLICK
from svac.training.frame_objectives import POSITIVE_CLICK, oracle_clicks
from svac.training.config import TrainConfig, load_train_config
from svac.training.data import TrainingExample
from svac.training.losses import mask_losses

LOG_FILE = "oracle_log.jsonl"
RESULT_FILE = "oracle_result.json"
SAM2_FILE = "sam2.pt"
__all__ = ["NO_CLICK", "POSITIVE_CLICK", "oracle_clicks", "clicked_logits", "run", "main"]


@dataclass
class OracleRecord:
    """Mean losses of one update (over every object and frame of the batch)."""

    step: int
    loss: float
    bce: float
    dice: float
    presence: float
    seconds: float


def clicked_logits(sam, example: TrainingExample, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM-2's predictions for every object and frame of ``example`` under oracle clicks, no memory.

    Returns:
        mask logits ``float (K * T, S/4, S/4)`` and presence logits ``float (K * T,)``, ordered
        object by object, frame by frame (the order of ``example.masks.flatten(0, 1)``).
    """
    feats = sam.encode_frames(example.sam_frames.to(next(sam.parameters()).dtype))
    num_frames = example.sam_frames.shape[0]
    k = example.num_objects
    logits, presence = [], []
    for t, f in enumerate(feats):
        out = sam.track_step(frame_idx=t, is_init_cond_frame=True,
                             current_vision_feats=[x.expand(-1, k, -1) for x in f.vision_feats],
                             current_vision_pos_embeds=[x.expand(-1, k, -1) for x in f.vision_pos],
                             feat_sizes=f.feat_sizes, point_inputs=oracle_clicks(example.masks[:, t], generator),
                             mask_inputs=None, output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                             num_frames=num_frames, run_mem_encoder=False)
        logits.append(out["pred_masks"][:, 0])
        presence.append(out["object_score_logits"][:, 0])
    return torch.stack(logits, 1).flatten(0, 1), torch.stack(presence, 1).flatten()


def run(cfg: TrainConfig, *, steps: int, out: str | Path, log_every: int = 10) -> list[OracleRecord]:
    """Train ``cfg``'s SAM-2 alone under oracle clicks for ``steps`` updates; write the log to ``out``.

    Raises:
        FileExistsError: when ``out`` already exists (nothing is overwritten).
        ValueError: when ``steps`` < 1 or the config's head is not SVAC.
    """
    from svac.recipes.finetune import build_model, training_data, training_samples

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if cfg.model is not None and cfg.model.head != "svac":
        raise ValueError(f"the click oracle trains SVAC's SAM-2; this config's head is {cfg.model.head!r}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out")
    torch.manual_seed(cfg.seed)
    samples = training_samples(cfg)
    model = build_model(cfg, samples)
    sam = model.grounding
    params = list(sam.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    dataset, loader = training_data(cfg, model, samples)
    optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=cfg.optim.betas,
                                  weight_decay=cfg.optim.weight_decay)
    clicks = torch.Generator().manual_seed(cfg.seed)
    w = cfg.loss
    records: list[OracleRecord] = []
    t0 = time.perf_counter()
    sam.train()
    epoch = 0
    while len(records) < steps:
        dataset.set_epoch(epoch)  # new expressions and templates per video each epoch, as in `svac train`
        epoch += 1
        for batch in loader:
            logits, presence, targets = [], [], []
            for example in batch.examples:
                lg, pr = clicked_logits(sam, example, clicks)
                logits.append(lg)
                presence.append(pr)
                targets.append(example.masks.flatten(0, 1))
            terms = mask_losses(torch.cat(logits), torch.cat(presence), torch.cat(targets), w)
            loss = w.bce * terms.bce + w.dice * terms.dice + w.presence * terms.presence
            optimizer.zero_grad()
            loss.backward()
            if cfg.optim.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.max_grad_norm)
            optimizer.step()
            records.append(OracleRecord(step=len(records) + 1, loss=float(loss.detach()), bce=float(terms.bce.detach()),
                                        dice=float(terms.dice.detach()), presence=float(terms.presence.detach()),
                                        seconds=time.perf_counter() - t0))
            if records[-1].step % log_every == 0:
                print(json.dumps(asdict(records[-1])), flush=True)
            if len(records) >= steps:
                break
    with staged_folder(out) as staging:
        (staging / LOG_FILE).write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
        tail = records[-min(len(records), log_every):]
        (staging / RESULT_FILE).write_text(json.dumps(
            {"steps": len(records), "final_dice_mean_last_window": sum(r.dice for r in tail) / len(tail),
             "wall_seconds": records[-1].seconds, "config": cfg.to_dict()}, indent=2))
        torch.save({"model": sam.state_dict()}, staging / SAM2_FILE)
    return records


def main(argv: list[str] | None = None) -> int:
    """``python -m svac.recipes.click_oracle CONFIG [key=value ...] --steps N --out DIR``."""
    parser = argparse.ArgumentParser(description="Train an SVAC config's SAM-2 alone under oracle clicks")
    parser.add_argument("config", help="training config YAML (a path such as configs/train/svac_default_1_image.yaml, or a bare name in configs/train/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the training config")
    parser.add_argument("--steps", type=int, required=True, help="optimizer updates")
    parser.add_argument("--out", required=True, help="new output folder")
    parser.add_argument("--log-every", type=int, default=10)
    args = parser.parse_args(argv)
    cfg = load_train_config(args.config, args.overrides)
    run(cfg, steps=args.steps, out=args.out, log_every=args.log_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
