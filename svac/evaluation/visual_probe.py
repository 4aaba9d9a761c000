"""What the MLLM's visual tokens hold, and whether its ``[SEG]`` token looks at the target (issue 18's diagnosis).

:mod:`svac.evaluation.prompt_probe` measured that the default model's ``[SEG]`` prompt carries the expression's
words and not the target's place. This module asks where that breaks, on the anchor frame of every clip (the frame
a clip's visual tokens show whole, ASTC, SVAC §3.3):

* **cell probes** -- each visual token of an anchor covers one cell of a ``g x g`` grid over the frame
  (``g = sqrt(tokens_per_image)``). Ridge readouts fitted on training videos tell, on held-out videos, whether an
  object covers the cell (balanced accuracy), that object's mean colour (R^2), and where the cell is (its row and
  column as fractions of the grid, R^2), from the token's state at each LLM layer (layer 0 = the projector's
  output, the LLM's input) and, as a baseline, from the cell's pixels. A ``[SEG]`` state can only report where
  the target is if the tokens it reads carry their place.
* **word probe** -- from the ``[SEG]`` state at each layer, which value of a family the expression names (its
  ``color`` or ``shape`` word, from the dataset's ``attributes``): accuracy against the majority value.
* **attention lift** -- at each LLM layer, the ``[SEG]`` token's attention (mean over heads) on its clip's anchor
  tokens whose cell the target covers, as a share of its attention on that anchor, divided by the share of such
  tokens: 1 means the token does not prefer the target's cells to the others. The **object lift** is the same
  among the cells any object covers: 1 means the token looks at objects but not at its own more than at the
  others.
* **matcher** -- can the target be picked among the objects of an anchor from a query, given each object's token
  states (mean over its cells) at a layer? A ridge map, fitted on the training videos, from the query to the
  target's pooled state; on held-out anchors the object whose pooled state is nearest (cosine, about the training
  targets' mean) is the pick. Three queries: the ``[SEG]`` token's own state at that layer, the mean state of
  the answer's ``<p>...</p>`` phrase tokens before it at that layer, and the expression's bag of words (an oracle
  that holds exactly the words). Accuracy against chance (one over the number of objects),
  separately for expressions with a static word and for those naming only time, speed or motion.

Run::

    python -m svac.evaluation.visual_probe MODEL --train-root DIR --test-root DIR [--train-videos 150]
        [--test-videos 40] [--out FILE]

Source: svac's diagnosis for issue 18 (linear probing of a model's states; attention read-out).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from svac.evaluation.prompt_probe import (add_probe_arguments, names_only_video_families, r2_score, ridge_fit,
                                         run_probe)
from svac.mllm.internvl import eager_attention, token_grid_side
from svac.span_prompt import phrase_bounds

if TYPE_CHECKING:
    from svac.inference import PreparedVideo
    from svac.model import SVAC

#: A cell belongs to an object when the object covers more than this fraction of it.
COVER = 0.3
#: Side of the average-pooled pixel patch of a cell used as the pixel baseline (pixels per side after pooling).
PIXEL_POOL = 4
#: Families whose value the word probe reads from the ``[SEG]`` state.
WORD_FAMILIES = ("color", "shape")


def cell_coverage(mask: np.ndarray, grid: int) -> np.ndarray:
    """Fraction of each cell of a ``grid x grid`` partition of ``mask`` that is on.

    Args:
        mask: ``bool (H, W)``, ``H, W >= grid`` (pixels).
        grid: cells per side; cell ``(i, j)`` spans rows ``i*H//grid .. (i+1)*H//grid`` and the same for columns.

    Returns:
        ``float64 (grid, grid)`` in ``[0, 1]``.

    Raises:
        ValueError: when ``mask`` is not 2-D or smaller than ``grid`` on a side.
    """
    if mask.ndim != 2 or min(mask.shape) < grid:
        raise ValueError(f"expected a 2-D mask of at least {grid}x{grid} pixels, got shape {mask.shape}")
    rows = np.arange(grid + 1) * mask.shape[0] // grid
    cols = np.arange(grid + 1) * mask.shape[1] // grid
    sums = np.add.reduceat(np.add.reduceat(mask.astype(np.float64), rows[:-1], axis=0), cols[:-1], axis=1)
    return sums / np.outer(np.diff(rows), np.diff(cols))


def anchor_token_positions(model: "SVAC", input_ids: torch.Tensor, prepared: "PreparedVideo") -> torch.Tensor:
    """Positions in ``input_ids`` of each clip's anchor-image tokens, row-major over the cell grid.

    Returns:
        ``long (num_clips, tokens_per_image)``: row ``k`` holds clip ``k``'s first image's tokens (its anchor under
        ASTC, its first frame otherwise); token ``i * g + j`` covers cell ``(i, j)``.

    Raises:
        ValueError: when the ids hold a different number of ``<IMG_CONTEXT>`` tokens than the plan's images.
    """
    per_image = model.tokens_per_image
    image_tokens = (input_ids == model.mllm.config.image_token_id).nonzero()[:, 0]
    if len(image_tokens) != prepared.plan.num_images * per_image:
        raise ValueError(f"{len(image_tokens)} image tokens for {prepared.plan.num_images} images of {per_image}")
    return torch.stack([image_tokens[i * per_image:(i + 1) * per_image] for i in _anchor_images(prepared)])


def _anchor_images(prepared: "PreparedVideo") -> list[int]:
    """Index, among the MLLM images, of each clip's first image (its anchor under ASTC)."""
    return [prepared.plan.image_clips.index(k) for k in range(prepared.plan.num_clips)]


@dataclass(frozen=True)
class MatchItem:
    """One ``[SEG]`` token and the objects of its clip's anchor.

    Attributes:
        expression: index of the expression in :attr:`VisualProbeData.expressions`.
        seg: ``float32 (L + 1, D)`` the ``[SEG]`` token's state after each layer.
        span: ``float32 (L + 1, D)`` the mean state of the ``<p>...</p>`` phrase's tokens before it, after each layer.
        objects: ``float32 (L + 1, n, D)`` each object's token states averaged over the cells it covers.
        target: index of the expression's object among the ``n``.
    """

    expression: int
    seg: np.ndarray
    span: np.ndarray
    objects: np.ndarray
    target: int


@dataclass(frozen=True)
class VisualProbeData:
    """States and labels of the anchor cells and ``[SEG]`` tokens of a set of videos.

    Attributes:
        cell_states: ``float32 (L + 1, M, D)`` each anchor cell's token state after each LLM layer (0 = input).
        cell_pixels: ``float32 (M, 3 * PIXEL_POOL**2)`` the cell's MLLM-image pixels, average-pooled.
        cell_object: ``bool (M,)`` whether an object covers more than :data:`COVER` of the cell.
        cell_colour: ``float32 (M, 3)`` that object's mean RGB on the frame (0..1); ``nan`` where none.
        cell_place: ``float32 (M, 2)`` the cell's row and column, as fractions ``(i + 0.5) / g``.
        seg_states: ``float32 (L + 1, N, D)`` each expression's first ``[SEG]`` state after each layer.
        words: per family of :data:`WORD_FAMILIES`, the value each expression names (``None`` when it names none).
        lift: ``float32 (N, L)`` attention lift of each expression's ``[SEG]`` tokens at each layer (averaged over
            its clips whose anchor shows the target; ``nan`` when none does).
        object_lift: ``float32 (N, L)`` the same among the anchor cells some object covers (``nan`` for clips
            where only the target covers cells).
        phrase_object_lift: ``float32 (N, L)`` the object lift of the ``</p>`` token closing the answer's phrase
            before each ``[SEG]`` (the query ``loss.seg_attention_query: phrase_end`` supervises).
        video_only: ``bool (N,)`` the expression names only families a single frame cannot tell
            (:data:`svac.evaluation.prompt_probe.VIDEO_ONLY_FAMILIES`).
        expressions: the N expressions' text.
        matches: one :class:`MatchItem` per (expression, clip) whose anchor shows the target and another object.
    """

    cell_states: np.ndarray
    cell_pixels: np.ndarray
    cell_object: np.ndarray
    cell_colour: np.ndarray
    cell_place: np.ndarray
    seg_states: np.ndarray
    words: dict[str, list]
    lift: np.ndarray
    object_lift: np.ndarray
    phrase_object_lift: np.ndarray
    video_only: np.ndarray
    expressions: list[str]
    matches: list["MatchItem"]


def _family_value(sample, family: str):
    for attribute in sample.meta.get("attributes") or ():
        if attribute.get("family") == family:
            return attribute.get("value")
    return None


def single_object_videos(samples: Sequence, videos: int) -> dict[str, list]:
    """The expressions of ``samples`` that name one object and have ground truth, grouped by video id, for the
    first ``videos`` videos holding such an expression (in the order they first appear).

    Raises:
        ValueError: when no expression names a single object with ground truth.
    """
    by_video: dict[str, list] = {}
    for s in samples:
        if len(s.object_ids) == 1 and s.mask_loader is not None:
            if s.video_id not in by_video and len(by_video) == videos:
                break
            by_video.setdefault(s.video_id, []).append(s)
    if not by_video:
        raise ValueError("no expression names a single object with ground truth")
    return by_video


def collect(model: "SVAC", samples: Sequence, *, videos: int) -> VisualProbeData:
    """:class:`VisualProbeData` of the first ``videos`` videos of ``samples`` (their single-object expressions).

    An object's cells and colour come from the masks of the expressions naming it alone, on each clip's anchor frame.

    Raises:
        ValueError: when no expression names a single object with ground truth.
    """
    from PIL import Image

    from svac.inference import encode_turns, prepare_video, referring_turn
    from svac.video.reader import FramePathsVideo

    grid = token_grid_side(model.config.mllm)
    by_video = single_object_videos(samples, videos)
    cell_states, cell_pixels, cell_object, cell_colour = [], [], [], []
    seg_states, lifts, object_lifts, phrase_lifts, video_only, expressions, matches = [], [], [], [], [], [], []
    words: dict[str, list] = {f: [] for f in WORD_FAMILIES}
    with torch.inference_mode(), eager_attention(model.mllm):
        for video_samples in by_video.values():
            first = video_samples[0]
            prepared = prepare_video(model, FramePathsVideo(first.frame_paths, name=first.video_id, check_sizes=False))
            anchors = [clip.anchor_frame for clip in prepared.plan.clips]
            covers: list[dict] = [{} for _ in anchors]
            colours: list[dict] = [{} for _ in anchors]
            frames = [np.asarray(Image.open(first.frame_paths[a]).convert("RGB"), dtype=np.float32) / 255
                      for a in anchors]
            for s in video_samples:
                oid = s.object_ids[0]
                if oid in covers[0]:
                    continue
                masks = s.load_masks(anchors)
                for k, frame in enumerate(frames):
                    covers[k][oid] = cell_coverage(masks[k], grid)
                    colours[k][oid] = frame[masks[k]].mean(0) if masks[k].any() else np.full(3, np.nan)
            for n, s in enumerate(video_samples):
                ids, start = encode_turns(model, [referring_turn(model, prepared, s.expression)])
                input_ids = torch.tensor([ids], device=model.device)
                out = model.mllm(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                 pixel_values=prepared.pixel_values, output_hidden_states=True,
                                 output_attentions=True, return_dict=True, logits_to_keep=1)
                hidden = torch.stack([h[0] for h in out.hidden_states]).float().cpu()  # (L + 1, len, D)
                anchor_tokens = anchor_token_positions(model, input_ids[0], prepared)
                seg_positions = model.seg_positions(input_ids[0], start)
                if n == 0:
                    _add_cells(prepared, anchor_tokens.cpu(), hidden, covers, colours, grid,
                               cell_states, cell_pixels, cell_object, cell_colour)
                seg_states.append(hidden[:, seg_positions[0]].numpy())
                lifts.append(_lift(out.attentions, seg_positions, anchor_tokens, covers, s.object_ids[0]))
                object_lifts.append(_lift(out.attentions, seg_positions, anchor_tokens, covers, s.object_ids[0],
                                          among_objects=True))
                phrases = phrase_bounds(model, input_ids[0].cpu(), seg_positions.cpu())
                phrase_lifts.append(np.full(len(out.attentions), np.nan) if None in phrases else
                                    _lift(out.attentions, torch.tensor([b[1] for b in phrases]), anchor_tokens,
                                          covers, s.object_ids[0], among_objects=True))
                video_only.append(names_only_video_families(s))
                matches += _match_items(len(expressions), hidden, seg_positions, anchor_tokens.cpu(), covers,
                                        s.object_ids[0], phrases)
                expressions.append(s.expression)
                for family in WORD_FAMILIES:
                    words[family].append(_family_value(s, family))
    return VisualProbeData(np.concatenate(cell_states, axis=1).astype(np.float32),
                           np.concatenate(cell_pixels).astype(np.float32), np.concatenate(cell_object),
                           np.concatenate(cell_colour).astype(np.float32),
                           np.tile(_grid_places(grid), (len(cell_pixels), 1)),
                           np.stack(seg_states, axis=1).astype(np.float32), words,
                           np.stack(lifts).astype(np.float32), np.stack(object_lifts).astype(np.float32),
                           np.stack(phrase_lifts).astype(np.float32), np.array(video_only, dtype=bool), expressions,
                           matches)


def _match_items(index, hidden, seg_positions, anchor_tokens, covers, target, phrases) -> list[MatchItem]:
    items = []
    for k, position in enumerate(seg_positions.tolist()):
        present = [o for o, c in covers[k].items() if (c > COVER).any()]
        if target not in present or len(present) < 2 or phrases[k] is None:
            continue
        cells = hidden[:, anchor_tokens[k]]  # (L + 1, P, D)
        pooled = [cells[:, torch.from_numpy(covers[k][o].reshape(-1) > COVER)].mean(1) for o in present]
        start, stop = phrases[k]
        items.append(MatchItem(index, hidden[:, position].numpy().astype(np.float32),
                               hidden[:, start:stop].mean(1).numpy().astype(np.float32),
                               torch.stack(pooled, 1).numpy().astype(np.float32), present.index(target)))
    return items


def _grid_places(grid: int) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    return ((np.stack([rows.reshape(-1), cols.reshape(-1)], axis=1) + 0.5) / grid).astype(np.float32)


def _add_cells(prepared, anchor_tokens, hidden, covers, colours, grid, states, pixels, on, colour):
    size = prepared.pixel_values.shape[-1] // grid
    for k, first_image in enumerate(_anchor_images(prepared)):
        states.append(hidden[:, anchor_tokens[k]].numpy())  # (L + 1, g*g, D)
        image = prepared.pixel_values[first_image].float().cpu()
        cells = image.unfold(1, size, size).unfold(2, size, size)  # (3, g, g, size, size)
        pooled = torch.nn.functional.adaptive_avg_pool2d(cells.reshape(3, grid * grid, size, size), PIXEL_POOL)
        pixels.append(pooled.permute(1, 0, 2, 3).reshape(grid * grid, -1).numpy())
        stack = np.stack([c.reshape(-1) for c in covers[k].values()]) if covers[k] else np.zeros((1, grid * grid))
        best = stack.argmax(0)
        covered = stack.max(0) > COVER
        ids = list(covers[k])
        on.append(covered)
        colour.append(np.stack([colours[k][ids[b]] if c else np.full(3, np.nan) for b, c in zip(best, covered)]))


def _lift(attentions, seg_positions, anchor_tokens, covers, target, *, among_objects: bool = False) -> np.ndarray:
    """Per layer, the mean over clips of the target's share of the ``[SEG]`` token's anchor attention over its
    share of the cells -- among every cell, or (``among_objects``) among the cells some object covers."""
    out = np.full(len(attentions), np.nan)
    per_layer = []
    for k, position in enumerate(seg_positions.tolist()):
        on = torch.from_numpy(covers[k][target].reshape(-1) > COVER) if target in covers[k] else None
        pool = torch.ones_like(on) if on is not None else None
        if on is not None and among_objects:
            pool = torch.from_numpy(np.stack([c.reshape(-1) for c in covers[k].values()]).max(0) > COVER)
        if on is None or not on.any() or on[pool].all():
            continue
        per_layer.append([_share(layer[0, :, position].float().mean(0)[anchor_tokens[k]].cpu()[pool], on[pool])
                          for layer in attentions])
    if per_layer:
        out[:] = np.mean(per_layer, axis=0)
    return out


def _share(attention: torch.Tensor, on: torch.Tensor) -> float:
    total = float(attention.sum())
    return float(attention[on].sum()) / max(total, 1e-12) / float(on.float().mean())


def _cell_scores(x_train, x_test, train: VisualProbeData, test: VisualProbeData) -> dict:
    guess = ridge_fit(x_train, train.cell_object[:, None].astype(np.float64))(x_test)[:, 0] > 0.5
    truth = test.cell_object
    balanced = 0.5 * (guess[truth].mean() + (~guess[~truth]).mean()) if truth.any() and (~truth).any() else np.nan
    predicted = ridge_fit(x_train[train.cell_object], train.cell_colour[train.cell_object])(x_test[truth])
    place = ridge_fit(x_train, train.cell_place)(x_test)
    return {"object_balanced_accuracy": float(balanced), "colour_r2": r2_score(predicted, test.cell_colour[truth]),
            "place_r2": r2_score(place, test.cell_place)}


def _word_scores(x_train, x_test, train: VisualProbeData, test: VisualProbeData) -> dict:
    out = {}
    for family in WORD_FAMILIES:
        rows = [i for i, w in enumerate(train.words[family]) if w is not None]
        rows_test = [i for i, w in enumerate(test.words[family]) if w is not None]
        values = sorted({train.words[family][i] for i in rows})
        if len(values) < 2 or not rows_test:
            continue
        y = np.eye(len(values))[[values.index(train.words[family][i]) for i in rows]]
        guess = ridge_fit(x_train[rows], y)(x_test[rows_test]).argmax(1)
        truth = [test.words[family][i] for i in rows_test]
        out[family] = {"accuracy": float(np.mean([values[g] == t for g, t in zip(guess, truth)])),
                       "majority": float(max(truth.count(v) for v in set(truth)) / len(truth)), "n_test": len(truth)}
    return out


def _bag_of_words(texts: list[str], vocabulary: list[str]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocabulary)}
    out = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        for word in text.lower().split():
            if word in index:
                out[row, index[word]] = 1.0
    return out


def _matcher_scores(train: VisualProbeData, test: VisualProbeData, layer: int) -> dict:
    """Held-out pick accuracy of the target among its anchor's objects, per query (see the module docstring)."""
    if not train.matches or not test.matches:
        return {}
    vocabulary = sorted({w for t in train.expressions for w in t.lower().split()})
    queries = {"seg": lambda data, items: np.stack([m.seg[layer] for m in items]),
               "span": lambda data, items: np.stack([m.span[layer] for m in items]),
               "words": lambda data, items: _bag_of_words([data.expressions[m.expression] for m in items], vocabulary)}
    targets = np.stack([m.objects[layer][m.target] for m in train.matches])
    centre = targets.mean(0)
    groups = {"static": [m for m in test.matches if not test.video_only[m.expression]],
              "video_only": [m for m in test.matches if test.video_only[m.expression]]}
    out: dict = {}
    for name, query in queries.items():
        readout = ridge_fit(query(train, train.matches), targets)
        for group, items in groups.items():
            if not items:
                continue
            predicted = readout(query(test, items)) - centre
            hits = []
            for m, guess in zip(items, predicted):
                objects = m.objects[layer] - centre
                cosine = objects @ guess / (np.linalg.norm(objects, axis=1) * np.linalg.norm(guess) + 1e-12)
                hits.append(int(cosine.argmax()) == m.target)
            out[f"{name}_{group}"] = float(np.mean(hits))
    for group, items in groups.items():
        if items:
            out[f"chance_{group}"] = float(np.mean([1.0 / m.objects.shape[1] for m in items]))
            out[f"n_{group}"] = len(items)
    return out


def probe(train: VisualProbeData, test: VisualProbeData) -> dict:
    """Cell probes per layer and for pixels, word probes per layer, and the mean attention lift per layer."""
    layers = train.cell_states.shape[0]
    return {
        "n_train_cells": int(train.cell_states.shape[1]), "n_test_cells": int(test.cell_states.shape[1]),
        "n_test_expressions": int(test.seg_states.shape[1]),
        "cells": {"pixels": _cell_scores(train.cell_pixels, test.cell_pixels, train, test),
                  **{f"layer_{i}": _cell_scores(train.cell_states[i], test.cell_states[i], train, test)
                     for i in range(layers)}},
        "seg_words": {f"layer_{i}": _word_scores(train.seg_states[i], test.seg_states[i], train, test)
                      for i in range(layers)},
        "seg_attention_lift": {f"layer_{i + 1}": float(np.nanmean(test.lift[:, i])) for i in range(test.lift.shape[1])},
        "seg_attention_lift_video_only": {f"layer_{i + 1}": _nanmean(test.lift[test.video_only, i])
                                          for i in range(test.lift.shape[1])},
        "seg_attention_object_lift": {f"layer_{i + 1}": _nanmean(test.object_lift[:, i])
                                      for i in range(test.lift.shape[1])},
        "seg_attention_object_lift_video_only": {f"layer_{i + 1}": _nanmean(test.object_lift[test.video_only, i])
                                                 for i in range(test.lift.shape[1])},
        "phrase_end_attention_object_lift": {f"layer_{i + 1}": _nanmean(test.phrase_object_lift[:, i])
                                             for i in range(test.lift.shape[1])},
        "matcher": {f"layer_{i}": _matcher_scores(train, test, i) for i in range(layers)},
    }


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.visual_probe MODEL ...`` (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.visual_probe",
                                     description="what the visual tokens hold and where [SEG] looks")
    add_probe_arguments(parser, train_videos=150)
    run_probe(parser.parse_args(argv), collect, probe)
    return 0

if __name__ == "__main__":
    sys.exit(main())
