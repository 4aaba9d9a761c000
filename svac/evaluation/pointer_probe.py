"""Can the target be found from the MLLM's visual tokens at all? A directly supervised pointer (issue 18's diagnosis).

:mod:`svac.evaluation.visual_probe` found that the default model's LLM does not look at the object its expression
names, for the expressions that need the video (time, speed, motion) as for the others. This probe asks whether
that is the LLM's learning or the tokens it reads: a *fresh* small transformer (the **pointer**), trained with the
most direct objective there is, reads the same visual tokens the LLM reads -- the video's ASTC images (anchor and
composite frames, SVAC §3.3) through the model's frozen vision tower and projector -- together with the
expression's token ids, and points at the target's cells on each clip's anchor frame.

* Input: the expression's tokens (a learnt embedding and position per token) followed by every MLLM image's
  ``g x g`` visual tokens (the projector's output, LayerNorm and a linear map; a learnt embedding per image slot,
  so the pointer knows which image of the video each token belongs to). ``--cell-index`` adds a learnt
  embedding per (image, cell): the pointer then knows where each token is even when the tokens do not say it.
  ``--causal`` reads as the LLM does: visual tokens first, each token attending only to those before it, so
  the visual tokens never see the expression and the expression's last token (where a ``[SEG]`` would be) must
  find the target by itself; by default every token sees every other (an easier reader).
* Output: for each anchor image, a softmax over its ``g x g`` cells (query: the mean of the expression's output
  states; keys: the tokens' output states).
* Loss: cross-entropy to the target's share of each cell (:func:`svac.evaluation.visual_probe.cell_coverage`),
  on the anchors that show it.
* Score: on held-out videos, for each (expression, anchor) whose anchor shows the target and at least one other
  object, each object's mean pointer probability over the cells it covers; accuracy of the argmax against chance
  (one over the objects shown), separately for expressions that name only time, speed or motion
  (``video_only``), for those that name one of them with a static word (``video_and_words``) and for the others
  (``static``).

Objects and their cells come, as in :mod:`svac.evaluation.visual_probe`, from the masks of the expressions that
name one object. ``--train-vision`` also trains a copy of the model's vision tower and projector with the pointer
(from the model's weights, at :data:`VISION_LR`; the tokens are computed from the ASTC images at every update): can a
vision tower of this size, trained for the objective, make the target readable where the model's frozen one does
not? ``--vision-positions sincos`` writes the fixed sine-cosine table
(:mod:`svac.mllm.vision_positions`) into the vision tower before the tokens are read, as for a model built by
this version of svac.

Run::

    python -m svac.evaluation.pointer_probe MODEL --train-root DIR [--train-root DIR ...] --test-root DIR
        [--test-root DIR ...] [--train-videos N] [--test-videos N] [--steps 3000] [--cell-index] [--causal]
        [--train-vision] [--vision-positions keep|sincos] [--seed 0] [--out FILE]

Source: svac's diagnosis for issue 18 (a supervised upper bound on what a reader of the tokens can find).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch
from torch import nn

from svac.evaluation.prompt_probe import VIDEO_ONLY_FAMILIES, names_only_video_families, refuse_existing_out
from svac.evaluation.visual_probe import cell_coverage, single_object_videos

if TYPE_CHECKING:
    from svac.model import SVAC

#: An object is shown on an anchor when it covers at least this many cells' worth of it (cells).
MIN_SHOWN_CELLS = 0.3
#: The pointer's width, layers, heads and longest expression (tokens).
POINTER_DIM, POINTER_LAYERS, POINTER_HEADS, MAX_TEXT_TOKENS = 128, 3, 4, 32
#: Training: expressions per update, peak learning rate (one cycle, 5 % warm-up), weight decay, gradient clip.
BATCH_SIZE, PEAK_LR, WEIGHT_DECAY, GRAD_CLIP = 32, 5e-4, 0.01, 1.0
#: Share of the updates the learning rate warms up over (one cycle).
WARM_UP_FRACTION = 0.05
#: ``--train-vision``: peak learning rate of the vision tower and projector (one cycle with the pointer's).
VISION_LR = 2e-4
#: ``--train-vision``: a batch is ``BATCH_SIZE // 2`` expressions, each with an expression of its video drawn at random
#: (itself when the video has one): the vision tower, the costly part of an update, encodes half as many videos.
VISION_EXPRESSIONS_PER_VIDEO = 2
#: Expression groups the score is split into (plus ``all``).
GROUPS = ("static", "video_and_words", "video_only")


@dataclass(frozen=True)
class PointerItem:
    """One expression of a :class:`PointerData` video.

    Attributes:
        video: index of its video in :attr:`PointerData.tokens`.
        text: ``int64 (W,)`` the expression's token ids (no special tokens).
        target: ``float32 (I, C)``: on each anchor image that shows the target, the target's share of each cell
            normalised to sum to 1; zero rows elsewhere (composite images, anchors without the target).
        objects: per anchor image (in clip order), ``float32 (n_k, C)`` the cells' coverage by each object shown
            there, and the index of the target among them (``-1`` when it is not shown).
        group: one of :data:`GROUPS`.
    """

    video: int
    text: np.ndarray
    target: np.ndarray
    objects: tuple[tuple[np.ndarray, int], ...]
    group: str


@dataclass(frozen=True)
class PointerData:
    """The visual tokens of a set of videos and their expressions.

    Attributes:
        tokens: ``float16 (V, I, C, D)``: per video, each MLLM image's ``C = g * g`` visual tokens (the projector's
            output, the LLM's input; ``I`` images in the order the LLM reads them).
        anchor_images: ``(K,)`` index among the ``I`` images of each clip's anchor (the same for every video:
            the model's ASTC plan has a fixed number of clips).
        items: the expressions.
        pixels: ``float16 (V, I, 3, S, S)``: the MLLM images themselves (normalised pixel values, ``S`` the
            vision tower's input size in pixels) when collected with ``keep_pixels``, else ``None``.
    """

    tokens: torch.Tensor
    anchor_images: tuple[int, ...]
    items: list[PointerItem]
    pixels: torch.Tensor | None = None


def expression_group(sample) -> str:
    """``video_only``, ``video_and_words`` or ``static``: which of :data:`GROUPS` ``sample``'s families put it in."""
    if not frozenset(sample.meta.get("families") or ()) & VIDEO_ONLY_FAMILIES:
        return "static"
    return "video_only" if names_only_video_families(sample) else "video_and_words"


def collect(model: "SVAC", samples: Sequence, *, videos: int, keep_pixels: bool = False) -> PointerData:
    """Visual tokens and pointer targets of the first ``videos`` videos of ``samples`` (single-object expressions);
    with ``keep_pixels`` the MLLM images too (:attr:`PointerData.pixels`, for :class:`TrainedVision`).

    Raises:
        ValueError: when no expression names a single object with ground truth, or when videos differ in their
            number of MLLM images or in where the anchors are.
    """
    from svac.inference import prepare_video
    from svac.mllm.internvl import token_grid_side
    from svac.video.reader import FramePathsVideo

    grid = token_grid_side(model.config.mllm)
    by_video = single_object_videos(samples, videos)
    tokens, pixels, items, anchor_images = [], [], [], None
    for v, video_samples in enumerate(by_video.values()):
        first = video_samples[0]
        with torch.inference_mode():
            prepared = prepare_video(model, FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False))
            features = model.mllm.get_image_features(pixel_values=prepared.pixel_values, return_dict=True).pooler_output
        images = [prepared.plan.image_clips.index(k) for k in range(prepared.plan.num_clips)]
        if anchor_images is None:
            anchor_images = tuple(images)
        elif tuple(images) != anchor_images or features.numel() != tokens[0].numel():
            raise ValueError(f"{first.video_id}: its ASTC plan differs from the first video's ({anchor_images})")
        tokens.append(features.reshape(prepared.plan.num_images, grid * grid, -1).half().cpu())
        if keep_pixels:
            pixels.append(prepared.pixel_values.half().cpu())
        anchors = [clip.anchor_frame for clip in prepared.plan.clips]
        covers: dict = {}
        for s in video_samples:
            if s.object_ids[0] not in covers:
                covers[s.object_ids[0]] = [cell_coverage(m, grid).reshape(-1).astype(np.float32)
                                           for m in s.load_masks(anchors)]
        # per anchor: the objects it shows and their cell coverage (n_k, C)
        shown = [[oid for oid, c in covers.items() if c[k].sum() >= MIN_SHOWN_CELLS] for k in range(len(anchors))]
        shown_cells = [np.stack([covers[o][k] for o in objects]) if objects else np.zeros((0, grid * grid), np.float32)
                       for k, objects in enumerate(shown)]
        for s in video_samples:
            target = np.zeros((prepared.plan.num_images, grid * grid), np.float32)
            per_anchor = []
            for k, image in enumerate(images):
                index = shown[k].index(s.object_ids[0]) if s.object_ids[0] in shown[k] else -1
                if index >= 0:
                    target[image] = shown_cells[k][index] / shown_cells[k][index].sum()
                per_anchor.append((shown_cells[k], index))
            ids = model.tokenizer(s.expression, add_special_tokens=False)["input_ids"][:MAX_TEXT_TOKENS]
            items.append(PointerItem(v, np.asarray(ids, np.int64), target, tuple(per_anchor), expression_group(s)))
    return PointerData(torch.stack(tokens), anchor_images, items, torch.stack(pixels) if keep_pixels else None)


class TrainedVision(nn.Module):
    """A trainable copy of a model's vision tower and projector: MLLM images to visual tokens (``--train-vision``).

    Args:
        model: the SVAC model whose ``mllm`` is copied (its vision tower and projector are trained; the copy's LLM
            is frozen and unused); the model itself is not changed.

    Forward: ``pixels float (N, 3, S, S)`` (normalised MLLM images) -> ``float32 (N, C, D)`` visual tokens, as
    ``model.mllm.get_image_features`` gives them (the LLM's input).
    """

    def __init__(self, model: "SVAC") -> None:
        super().__init__()
        self.mllm = copy.deepcopy(model.mllm).float().train()
        self.mllm.requires_grad_(False)
        self.trained = nn.ModuleList([self.mllm.model.vision_tower, self.mllm.model.multi_modal_projector])
        self.trained.requires_grad_(True)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.mllm.get_image_features(pixel_values=pixels.float(), return_dict=True).pooler_output
        return features.reshape(pixels.shape[0], -1, features.shape[-1]).float()


class Pointer(nn.Module):
    """A small transformer that reads an expression and a video's visual tokens and points at cells.

    Args:
        vocab_size: token ids are below this.
        token_dim: ``D`` of the visual tokens.
        images: ``I``, MLLM images per video; cells: ``C`` tokens per image.
        cell_index: add a learnt embedding per (image, cell) (the pointer then knows each token's place).
        causal: read as the LLM does -- the visual tokens first, then the expression, each token attending only
            to those before it, the query being the expression's last token (the place of an answer's ``[SEG]``);
            otherwise the expression comes first, every token attends to every other and the query is the mean
            of the expression's states.
        width, layers: the transformer's width and depth (:data:`POINTER_DIM`, :data:`POINTER_LAYERS`).

    Forward: ``text int64 (B, W)``, ``text_mask bool (B, W)`` (True on real tokens), ``tokens float (B, I, C, D)``
    -> logits ``float32 (B, I, C)`` over each image's cells.
    """

    def __init__(self, vocab_size: int, token_dim: int, images: int, cells: int, *, cell_index: bool,
                 causal: bool = False, width: int = POINTER_DIM, layers: int = POINTER_LAYERS) -> None:
        super().__init__()
        self.causal = causal
        self.word = nn.Embedding(vocab_size, width)
        self.word_position = nn.Embedding(MAX_TEXT_TOKENS, width)
        self.visual = nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, width))
        self.image_slot = nn.Embedding(images, width)
        self.cell = nn.Embedding(images * cells, width) if cell_index else None
        layer = nn.TransformerEncoderLayer(width, POINTER_HEADS, 4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        batch, images, cells, _ = tokens.shape
        words = self.word(text) + self.word_position.weight[:text.shape[1]]
        visual = self.visual(tokens.float()) + self.image_slot.weight[None, :, None]
        if self.cell is not None:
            visual = visual + self.cell.weight.reshape(1, images, cells, -1)
        visual = visual.reshape(batch, images * cells, -1)
        if self.causal:  # right-aligned expression so that its last token is the sequence's last
            width = text.shape[1]
            shift = (width - text_mask.sum(1))[:, None]
            order = (torch.arange(width)[None] - shift) % width
            words = torch.gather(words, 1, order[..., None].expand_as(words))
            pad = torch.gather(~text_mask, 1, order)
            length = images * cells + width
            hidden = self.encoder(torch.cat([visual, words], 1), is_causal=True,
                                  mask=torch.ones(length, length, dtype=torch.bool).triu(1),
                                  src_key_padding_mask=torch.cat([pad.new_zeros(batch, images * cells), pad], 1))
            query, keys = hidden[:, -1], self.key(hidden[:, :images * cells])
        else:
            hidden = self.encoder(torch.cat([words, visual], 1),
                                  src_key_padding_mask=torch.cat([~text_mask, text_mask.new_zeros(batch, images * cells)], 1))
            weights = text_mask[..., None].float()
            query = (hidden[:, :text.shape[1]] * weights).sum(1) / weights.sum(1)
            keys = self.key(hidden[:, text.shape[1]:])
        logits = torch.einsum("bd,bnd->bn", self.query(query), keys) / keys.shape[-1] ** 0.5
        return logits.reshape(batch, images, cells)


def _batch(data: PointerData, items: Sequence[PointerItem], vision: TrainedVision | None = None):
    width = max(1, max(len(i.text) for i in items))
    text = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.bool)
    for n, item in enumerate(items):
        text[n, :len(item.text)] = torch.from_numpy(item.text)
        mask[n, :len(item.text)] = True
    mask[:, 0] = True  # an empty expression still has one (padding) query token
    if vision is None:
        return text, mask, data.tokens[[i.video for i in items]].float()
    if data.pixels is None:
        raise ValueError("a trained vision tower needs the images: collect with keep_pixels=True")
    videos = sorted({i.video for i in items})
    images = data.pixels[videos]  # (U, I, 3, S, S)
    tokens = vision(images.flatten(0, 1)).reshape(len(videos), images.shape[1], *data.tokens.shape[2:3], -1)
    return text, mask, tokens[[videos.index(i.video) for i in items]]


def train_pointer(train: PointerData, *, steps: int, cell_index: bool, causal: bool = False, seed: int = 0,
                  width: int = POINTER_DIM, layers: int = POINTER_LAYERS, vision: TrainedVision | None = None,
                  log=None) -> Pointer:
    """Train a :class:`Pointer` on ``train`` for ``steps`` updates of :data:`BATCH_SIZE` expressions (with ``vision``,
    :data:`VISION_EXPRESSIONS_PER_VIDEO` per video).

    Args:
        cell_index, causal, width, layers: the pointer's inputs, reading order and size (:class:`Pointer`).
        vision: trained with the pointer (at :data:`VISION_LR`), the tokens computed by it from ``train.pixels``
            at every update; ``None`` reads ``train.tokens``.
        log: called as ``log(step, loss)`` every 500 updates and at the end (optional).

    Raises:
        ValueError: when ``steps < 1``, no training expression shows its target on an anchor, or ``vision`` is
            given and ``train`` has no pixels.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    items = [i for i in train.items if i.target.any()]
    if not items:
        raise ValueError("no training expression shows its target on an anchor frame")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = 1 + max(int(i.text.max()) for i in items if len(i.text))
    _, images, cells, dim = train.tokens.shape
    pointer = Pointer(vocab, dim, images, cells, cell_index=cell_index, causal=causal, width=width, layers=layers)
    if vision is not None and train.pixels is None:
        raise ValueError("a trained vision tower needs the images: collect with keep_pixels=True")
    groups = [{"params": list(pointer.parameters()), "lr": PEAK_LR}]
    if vision is not None:
        groups.append({"params": [p for p in vision.parameters() if p.requires_grad], "lr": VISION_LR})
    optimiser = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)
    # torch's OneCycleLR divides by zero when the warm-up is exactly one update (steps = 20): two then
    warm_up = WARM_UP_FRACTION if steps * WARM_UP_FRACTION != 1 else 2 / steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=[g["lr"] for g in groups], total_steps=steps,
                                                   pct_start=warm_up)
    trained = [p for g in groups for p in g["params"]]
    per_video = VISION_EXPRESSIONS_PER_VIDEO if vision is not None else 1
    by_video: dict[int, list[int]] = {}
    for n, item in enumerate(items):
        by_video.setdefault(item.video, []).append(n)
    order: list[int] = []
    for step in range(1, steps + 1):
        if len(order) < BATCH_SIZE:
            order += list(rng.permutation(len(items)))
        batch = [items[order.pop()] for _ in range(min(BATCH_SIZE // per_video, len(items)))]
        if per_video > 1:  # each video's images are encoded once per update: another expression of each video
            batch += [items[int(rng.choice(by_video[i.video]))] for i in batch for _ in range(per_video - 1)]
        target = torch.from_numpy(np.stack([i.target for i in batch]))
        logits = pointer(*_batch(train, batch, vision))
        loss = -(target * torch.log_softmax(logits, -1)).sum() / (target.sum(-1) > 0).sum()
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(trained, GRAD_CLIP)
        optimiser.step()
        schedule.step()
        if log is not None and (step % 500 == 0 or step == steps):
            log(step, float(loss.detach()))
    return pointer


def score(pointer: Pointer, data: PointerData, vision: TrainedVision | None = None) -> dict:
    """Per group of :data:`GROUPS` and ``all``: ``accuracy`` of picking the target among the objects an anchor
    shows, ``chance`` (mean of one over their number) and ``n`` (expression-anchor pairs with two or more objects).
    Token ids the pointer never saw in training count as padding (id 0); with ``vision`` the tokens are computed
    from ``data.pixels`` by it."""
    vocab = pointer.word.num_embeddings
    hits: dict[str, list[tuple[bool, float]]] = {g: [] for g in (*GROUPS, "all")}
    pointer.eval()
    if vision is not None:
        vision.eval()
    with torch.no_grad():
        for start in range(0, len(data.items), 64):
            items = data.items[start:start + 64]
            text, mask, tokens = _batch(data, items, vision)
            probs = torch.softmax(pointer(text.masked_fill(text >= vocab, 0), mask, tokens), -1).numpy()
            for n, item in enumerate(items):
                for k, (objects, target) in enumerate(item.objects):
                    if target < 0 or len(objects) < 2:
                        continue
                    picked = int(np.argmax((objects * probs[n, data.anchor_images[k]]).sum(1) / objects.sum(1)))
                    for group in (item.group, "all"):
                        hits[group].append((picked == target, 1.0 / len(objects)))
    return {g: {"accuracy": float(np.mean([h for h, _ in v])) if v else float("nan"),
                "chance": float(np.mean([c for _, c in v])) if v else float("nan"), "n": len(v)}
            for g, v in hits.items()}


def _collect_roots(model, roots: Sequence[str], split: str, videos: int, keep_pixels: bool = False) -> PointerData:
    from svac.data.readers import load_dataset

    parts = [collect(model, list(load_dataset(f"rvos:{root}", split)), videos=videos, keep_pixels=keep_pixels)
             for root in roots]
    if len({p.anchor_images for p in parts}) > 1 or len({p.tokens.shape[1:] for p in parts}) > 1:
        raise ValueError(f"the datasets {list(roots)} give different ASTC plans")
    offsets = np.cumsum([0] + [len(p.tokens) for p in parts])
    items = [PointerItem(i.video + int(o), i.text, i.target, i.objects, i.group) for p, o in zip(parts, offsets)
             for i in p.items]
    return PointerData(torch.cat([p.tokens for p in parts]), parts[0].anchor_images, items,
                       torch.cat([p.pixels for p in parts]) if keep_pixels else None)


def run(model_path: str, *, train_roots: Sequence[str], test_roots: Sequence[str], train_split: str = "train",
        test_split: str = "valid", train_videos: int = 10_000, test_videos: int = 40, steps: int = 3000,
        cell_index: bool = False, causal: bool = False, vision_positions: Literal["keep", "sincos"] = "keep",
        train_vision: bool = False, seed: int = 0, log=print) -> dict:
    """Collect, train and score (module docstring); returns the JSON-ready result.

    Raises:
        ValueError: for an unknown ``vision_positions`` and as :func:`collect` and :func:`train_pointer`.
    """
    from svac.loading import load_model
    from svac.mllm.vision_positions import init_vision_positions

    if vision_positions not in ("keep", "sincos"):
        raise ValueError(f"vision_positions must be 'keep' or 'sincos', got {vision_positions!r}")
    model = load_model(model_path, device="cpu").eval()
    if vision_positions == "sincos":
        init_vision_positions(model.mllm.model.vision_tower.embeddings)
    started = time.perf_counter()
    train = _collect_roots(model, train_roots, train_split, train_videos, keep_pixels=train_vision)
    test = _collect_roots(model, test_roots, test_split, test_videos, keep_pixels=train_vision)
    collected = time.perf_counter()
    vision = TrainedVision(model) if train_vision else None
    pointer = train_pointer(train, steps=steps, cell_index=cell_index, causal=causal, seed=seed, vision=vision,
                            log=lambda step, loss: log(f"step {step}: loss {loss:.3f}"))
    trained = time.perf_counter()
    return {"model": model_path, "train": [f"{r}:{train_split}" for r in train_roots],
            "test": [f"{r}:{test_split}" for r in test_roots], "vision_positions": vision_positions,
            "cell_index": cell_index, "causal": causal, "train_vision": train_vision, "steps": steps, "seed": seed,
            "n_train_expressions": len(train.items), "n_test_expressions": len(test.items),
            "held_out": score(pointer, test, vision), "train_subset": score(pointer, PointerData(
                train.tokens, train.anchor_images, train.items[:2000], train.pixels), vision),
            "seconds": {"collect": collected - started, "train": trained - collected}}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.pointer_probe MODEL ...`` (module docstring)."""
    from svac.metrics.output import report_json

    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.pointer_probe",
                                     description="can a directly trained pointer find the target in the visual tokens")
    parser.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    parser.add_argument("--train-root", action="append", required=True, help="rvos dataset root (repeatable)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-root", action="append", required=True, help="rvos dataset root (repeatable)")
    parser.add_argument("--test-split", default="valid")
    parser.add_argument("--train-videos", type=int, default=10_000, help="videos per training root")
    parser.add_argument("--test-videos", type=int, default=40, help="videos per test root")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--cell-index", action="store_true", help="tell the pointer each token's place")
    parser.add_argument("--causal", action="store_true", help="visual tokens first, causal attention (as the LLM reads)")
    parser.add_argument("--vision-positions", choices=("keep", "sincos"), default="keep")
    parser.add_argument("--train-vision", action="store_true",
                        help="train a copy of the model's vision tower and projector with the pointer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the result as JSON to this file (must not exist)")
    args = parser.parse_args(argv)
    refuse_existing_out(args.out)
    result = run(args.model, train_roots=args.train_root, test_roots=args.test_root, train_split=args.train_split,
                 test_split=args.test_split, train_videos=args.train_videos, test_videos=args.test_videos,
                 steps=args.steps, cell_index=args.cell_index, causal=args.causal, vision_positions=args.vision_positions,
                 train_vision=args.train_vision, seed=args.seed, log=lambda line: print(line, file=sys.stderr, flush=True))
    report_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
