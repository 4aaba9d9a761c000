"""What the two terms of a span-skip model's ``[SEG]`` prompt carry (issue 18's diagnosis).

With ``seg_prompt.span_skip`` (:mod:`svac.span_prompt`) each ``[SEG]`` prompt is the sum of two
terms: the **LLM branch** (``text_hidden_fcs`` of the last-layer ``[SEG]`` state, which has read the
video) and the **span term** (the expression's ``<p>...</p>`` input embeddings: its words only). Two
probes tell what each one contributes:

* :func:`held_term` -- a context in which one term is replaced, for every ``[SEG]``, by the value it
  took on the first ``[SEG]`` the model projected: an evaluation under it measures what the *other*
  term alone tells apart (forward hooks on ``text_hidden_fcs`` / ``span_prompt``; nothing else of the
  model changes, and everything is restored on exit). ``hold`` runs ``svac eval``'s benchmark under it;
  compare with an ordinary run with ``svac metrics compare``.
* :func:`position_probe` -- ridge regressions from the ``[SEG]`` state, from the span states and from
  both, fitted on training videos, to the target object's mean centroid (x and y as fractions of the
  frame, over the frames it is on), scored (R^2) on held-out videos: overall and on the expressions
  that name only time, speed or motion, whose words cannot place the object while a state that read
  the video could.

* :func:`gradient_probe` -- where the mask loss's gradient goes: one backward of the mask terms (no
  cross-entropy) per batch of training videos, with backward hooks on both terms' modules; per
  ``[SEG]``, the gradient norm at the prompt term and at the term's input (the last-layer ``[SEG]``
  state for the LLM branch, the normalised span states for the span term), and their ratio (the
  term's *gain*): how much of what the masks ask reaches the LLM's state versus the words' embeddings.

Run::

    python -m svac.evaluation.prompt_probe hold MODEL --term llm|span --data-root DIR [--split valid] --out DIR
    python -m svac.evaluation.prompt_probe position MODEL --train-root DIR --test-root DIR [--train-videos 250]
        [--test-videos 40] [--out FILE]
    python -m svac.evaluation.prompt_probe gradient MODEL --data-root DIR [--split train] [--videos 48]
        [--batch-size 6] [--expressions 4] [--out FILE]

Source: svac's diagnosis for issue 18 (ablation of a model's input terms; linear probing of its states).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Literal, Sequence

import numpy as np
import torch

if TYPE_CHECKING:
    from svac.model import SVAC

#: Families whose words say nothing about where an object is or what it looks like.
VIDEO_ONLY_FAMILIES = frozenset({"time", "speed", "motion"})
#: Ridge penalty of :func:`ridge_r2` (on standardised features).
RIDGE = 100.0


@contextmanager
def held_term(model: "SVAC", term: Literal["llm", "span"]) -> Iterator[None]:
    """Within the context, one term of every ``[SEG]`` prompt is the value it took on the first ``[SEG]`` projected.

    Args:
        model: an SVAC model with the span skip path (``config.seg_prompt.span_skip``).
        term: ``llm`` holds the LLM branch (``text_hidden_fcs``: the span term alone tells expressions apart);
            ``span`` holds the span term (the LLM branch alone does).

    Raises:
        ValueError: when the model has no span skip path, or ``term`` is neither.
    """
    if model.span_prompt is None:
        raise ValueError("the model has no span skip path (config.seg_prompt.span_skip): its prompt has one term")
    modules = {"llm": model.text_hidden_fcs, "span": model.span_prompt}
    if term not in modules:
        raise ValueError(f"term must be 'llm' or 'span', got {term!r}")
    held: list[torch.Tensor] = []

    def hold(module, inputs, output):
        if not held:
            held.append(output[:1].detach().clone())  # (1, C): the first [SEG]'s value
        return held[0].to(output.dtype).expand_as(output)

    handle = modules[term].register_forward_hook(hold)
    try:
        yield
    finally:
        handle.remove()


@dataclass(frozen=True)
class PromptStates:
    """The states each expression's ``[SEG]`` prompt is made from, and where its target is.

    Attributes:
        seg: ``float32 (N, D)`` last-layer ``[SEG]`` states, averaged over the answer's ``[SEG]`` tokens.
        span: ``float32 (N, D)`` the span states (:class:`svac.span_prompt.SpanStates`), averaged likewise.
        centroid: ``float32 (N, 2)`` the target's centroid (x / width, y / height), averaged over its frames.
        video_only: ``bool (N,)`` whether the expression names only :data:`VIDEO_ONLY_FAMILIES`.
    """

    seg: np.ndarray
    span: np.ndarray
    centroid: np.ndarray
    video_only: np.ndarray


def collect(model: "SVAC", samples: Sequence, *, videos: int) -> PromptStates:
    """:class:`PromptStates` of the expressions of the first ``videos`` videos of ``samples``, as ``segment`` asks them.

    Expressions whose target never shows are skipped.

    Raises:
        ValueError: when the model has no span skip path or no expression has a visible target.
    """
    from svac.inference import answer_query, prepare_video
    from svac.video.reader import FramePathsVideo

    if model.span_prompt is None:
        raise ValueError("the model has no span skip path (config.seg_prompt.span_skip)")
    order: list[str] = []
    seg, span, centroid, video_only = [], [], [], []
    prepared = None  # the current video's, made at its first expression with a visible target
    for s in samples:
        if s.video_id not in order:
            order.append(s.video_id)
            prepared = None
        if len(order) > videos:
            break
        masks = s.load_masks()  # (N, H, W)
        on = masks.reshape(len(masks), -1).any(1)
        if not on.any():
            continue
        ys, xs = [], []
        for t in np.nonzero(on)[0]:
            yy, xx = np.nonzero(masks[t])
            ys.append(yy.mean() / masks.shape[1])
            xs.append(xx.mean() / masks.shape[2])
        with torch.inference_mode():
            if prepared is None:
                prepared = prepare_video(model, FramePathsVideo(s.frame_paths, name=s.video_id, check_sizes=False))
            answer = answer_query(model, prepared, s.expression)
        seg.append(answer.seg_hidden.float().mean(0).numpy())
        span.append(answer.seg_span.states.float().mean(0).numpy())
        centroid.append([float(np.mean(xs)), float(np.mean(ys))])
        video_only.append(names_only_video_families(s))
    if not seg:
        raise ValueError("no expression with a visible target to probe")
    return PromptStates(np.stack(seg).astype(np.float32), np.stack(span).astype(np.float32),
                        np.asarray(centroid, dtype=np.float32), np.asarray(video_only, dtype=bool))


def ridge_fit(x_train: np.ndarray, y_train: np.ndarray, *, ridge: float = RIDGE) -> Callable[[np.ndarray], np.ndarray]:
    """A ridge regression (standardised features, unshrunk intercept) of ``y`` ``(N, k)`` on ``x`` ``(N, D)``.

    Returns:
        The fitted map from ``(M, D)`` features to ``float64 (M, k)`` predictions.
    """
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    design = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    penalty = ridge * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    weights = np.linalg.solve(design.T @ design + penalty, design.T @ y_train)
    return lambda x: np.c_[(x - mu) / sd, np.ones(len(x))] @ weights


def ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
             ridge: float = RIDGE) -> float:
    """Held-out R^2 of :func:`ridge_fit` of ``y`` ``(N, k)`` on ``x`` ``(N, D)``.

    1 is a perfect prediction; 0 is the held-out mean's; below 0 is worse than that. ``nan`` when fewer than
    two test rows.
    """
    if len(x_test) < 2:
        return float("nan")
    return r2_score(ridge_fit(x_train, y_train, ridge=ridge)(x_test), y_test)


def r2_score(predicted: np.ndarray, target: np.ndarray) -> float:
    """R^2 of ``predicted`` against ``target`` (both ``(N, k)``), over all their entries: 1 is perfect, 0 is the
    target's own mean, below 0 is worse than that."""
    return float(1.0 - ((predicted - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())


def names_only_video_families(sample) -> bool:
    """Whether ``sample``'s expression names only :data:`VIDEO_ONLY_FAMILIES` (its dataset's ``families``)."""
    families = frozenset(sample.meta.get("families") or ())
    return bool(families) and families <= VIDEO_ONLY_FAMILIES


def position_probe(train: PromptStates, test: PromptStates) -> dict:
    """R^2 of the target's centroid from the ``[SEG]`` state, the span states and both: all held-out
    expressions, those naming only time / speed / motion, and the others."""
    features = {"seg_state": lambda p: p.seg, "span_states": lambda p: p.span,
                "both": lambda p: np.concatenate([p.seg, p.span], axis=1)}
    out: dict = {"n_train": len(train.seg), "n_test": len(test.seg), "n_test_video_only": int(test.video_only.sum())}
    for name, take in features.items():
        x_train, x_test = take(train), take(test)
        out[name] = {part: ridge_r2(x_train, train.centroid, x_test[rows], test.centroid[rows])
                     for part, rows in (("all", slice(None)), ("video_only", test.video_only),
                                        ("others", ~test.video_only))}
    return out


def gradient_probe(model: "SVAC", samples: Sequence, *, videos: int = 48, batch_size: int = 6,
                   expressions_per_video: int = 4, loss=None, seed: int = 0) -> dict:
    """Gradient norms of the mask loss at each term of the ``[SEG]`` prompts and at each term's input.

    The first ``videos`` videos of ``samples`` (in training's order, by dataset and video id), each
    with up to ``expressions_per_video`` expressions asked as in training
    (:class:`svac.training.data.VideoExpressionDataset` seeded with ``seed``: the same expression and
    template draws) go through :class:`svac.training.objective.SVACObjective` in
    batches of ``batch_size`` videos with ``loss`` (default: the recipe's mask weights ``bce`` 2,
    ``dice`` 0.5, ``presence`` 1 and no ``ce``, so only what the masks ask is measured), one backward
    each, every parameter of ``model`` requiring gradients (the model is left in that state and in
    train mode: probe a freshly loaded model). Backward hooks read, per ``[SEG]`` row, the L2 norm of
    the gradient at the output of ``text_hidden_fcs`` (the LLM branch) and of the span term's MLP, and
    at their inputs (the last-layer ``[SEG]`` state; the span states after the span path's LayerNorm).

    Returns:
        ``{"llm_branch": {...}, "span": {...}, "n_seg": N, "batches": B}``, each term with
        ``grad_at_term`` / ``grad_at_input`` (mean norms over the N ``[SEG]`` rows), ``gain`` (the mean
        of their per-row ratio) and ``last_layer_spectral_norm`` (of the term's last ``Linear``).

    Raises:
        ValueError: when the model has no span skip path, or ``samples`` hold no video.
    """
    from svac.training.config import LossConfig
    from svac.training.data import ExampleBuilder, VideoExpressionDataset, collate
    from svac.training.objective import SVACObjective

    if model.span_prompt is None:
        raise ValueError("the model has no span skip path (config.seg_prompt.span_skip): its prompt has one term")
    kept = set(sorted({(s.dataset, s.video_id) for s in samples})[:videos])
    if not kept:
        raise ValueError("no video to probe")
    dataset = VideoExpressionDataset([s for s in samples if (s.dataset, s.video_id) in kept],
                                     ExampleBuilder.for_model(model), expressions_per_video=expressions_per_video,
                                     seed=seed)
    loss = loss if loss is not None else LossConfig(ce=0.0, bce=2.0, dice=0.5, presence=1.0)
    model.train()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    objective = SVACObjective(model, loss)
    norms: dict[str, list[torch.Tensor]] = {}

    def recorder(name: str):
        def record(module, grad_input, grad_output):
            norms.setdefault(f"{name}/input", []).append(grad_input[0].detach().float().norm(dim=-1))
            norms.setdefault(f"{name}/term", []).append(grad_output[0].detach().float().norm(dim=-1))
        return record

    terms = {"llm_branch": model.text_hidden_fcs, "span": model.span_prompt.proj}
    handles = [module.register_full_backward_hook(recorder(name)) for name, module in terms.items()]
    starts = range(0, len(dataset), batch_size)
    try:
        for start in starts:
            examples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            model.zero_grad(set_to_none=True)
            objective(collate(examples, model.tokenizer.pad_token_id)).loss.backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
    out: dict = {"batches": len(starts)}
    for name, module in terms.items():
        at_input, at_term = torch.cat(norms[f"{name}/input"]), torch.cat(norms[f"{name}/term"])
        last = [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]
        out[name] = {"grad_at_term": float(at_term.mean()), "grad_at_input": float(at_input.mean()),
                     "gain": float((at_input / at_term.clamp_min(1e-30)).mean()),
                     "last_layer_spectral_norm": float(torch.linalg.matrix_norm(last.weight.detach().float(), 2))}
        out["n_seg"] = len(at_term)  # the same for both terms: one row per [SEG]
    return out


def add_probe_arguments(parser: argparse.ArgumentParser, *, train_videos: int) -> None:
    """The arguments of a probe fitted on one rvos dataset and scored on another: ``model``, ``--train-root``,
    ``--train-split``, ``--test-root``, ``--test-split``, ``--train-videos`` (default ``train_videos``),
    ``--test-videos`` (40) and ``--out`` (a JSON file that must not exist)."""
    parser.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    parser.add_argument("--train-root", required=True)
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-root", required=True)
    parser.add_argument("--test-split", default="valid")
    parser.add_argument("--train-videos", type=int, default=train_videos)
    parser.add_argument("--test-videos", type=int, default=40)
    parser.add_argument("--out", default=None, help="write the result as JSON to this file (must not exist)")


def refuse_existing_out(out: str | None) -> None:
    """Refuse a probe's ``--out`` JSON file that exists, before anything loads (``report_json`` checks again on writing).

    Raises:
        svac.errors.OutputExistsError: when ``out`` is given and exists.
    """
    from pathlib import Path

    from svac.errors import OutputExistsError

    if out and Path(out).exists():
        raise OutputExistsError(f"{out} exists; give a new --out file")


def run_probe(args: argparse.Namespace, collect_fn: Callable, score_fn: Callable[..., dict]) -> None:
    """Load ``args.model``, collect a probe's data on the training and test sets of ``args``
    (:func:`add_probe_arguments`) with ``collect_fn(model, samples, videos=n)``, score it with
    ``score_fn(train, test)`` and print it (and write it to ``args.out``) as JSON.

    Raises:
        svac.errors.OutputExistsError: when ``args.out`` exists (checked before anything loads, and again on writing).
    """
    from svac.data.readers import load_dataset
    from svac.metrics.output import report_json

    refuse_existing_out(args.out)
    from svac.loading import load_model

    model = load_model(args.model, device="cpu").eval()
    train = collect_fn(model, list(load_dataset(f"rvos:{args.train_root}", args.train_split)), videos=args.train_videos)
    test = collect_fn(model, list(load_dataset(f"rvos:{args.test_root}", args.test_split)), videos=args.test_videos)
    report_json({"model": args.model, "train": f"{args.train_root}:{args.train_split}",
                 "test": f"{args.test_root}:{args.test_split}", **score_fn(train, test)}, args.out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m svac.evaluation.prompt_probe hold|position|gradient MODEL ...`` (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m svac.evaluation.prompt_probe",
                                     description="what the two terms of a span-skip [SEG] prompt carry")
    sub = parser.add_subparsers(dest="command", required=True)
    hold = sub.add_parser("hold", help="evaluate with one prompt term held at one value")
    hold.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    hold.add_argument("--term", required=True, choices=("llm", "span"))
    hold.add_argument("--data-root", required=True, help="rvos dataset root")
    hold.add_argument("--split", default="valid")
    hold.add_argument("--out", required=True, help="the evaluation's run folder (as svac eval --out)")
    add_probe_arguments(sub.add_parser("position", help="ridge probe of the target's centroid from the prompt's states"),
                        train_videos=250)
    grad = sub.add_parser("gradient", help="where the mask loss's gradient goes: each prompt term's gain")
    grad.add_argument("model", help="a model folder, config YAML or Hub id (as svac --model)")
    grad.add_argument("--data-root", required=True, help="rvos dataset root (training videos)")
    grad.add_argument("--split", default="train")
    grad.add_argument("--videos", type=int, default=48)
    grad.add_argument("--batch-size", type=int, default=6)
    grad.add_argument("--expressions", type=int, default=4, help="expressions per video")
    grad.add_argument("--out", default=None, help="write the result as JSON to this file (must not exist)")
    args = parser.parse_args(argv)
    if args.command == "position":
        run_probe(args, collect, position_probe)
        return 0
    if args.command == "gradient":
        for name in ("videos", "batch_size", "expressions"):
            if getattr(args, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        return _gradient_command(args)
    from svac.evaluation.runner import run_benchmark
    from svac.loading import load_model
    from svac.metrics.output import report_json

    model = load_model(args.model, device="cpu").eval()
    with held_term(model, args.term):
        result = run_benchmark("rvos", data_root=args.data_root, split=args.split, out_dir=args.out,
                               model_spec=f"{args.model} (held: {args.term})", model=model)
    report_json(result.scores, None)
    return 0


def _gradient_command(args: argparse.Namespace) -> int:
    """``gradient``: :func:`gradient_probe` on ``args.data_root`` / ``args.split``, printed (and written) as JSON."""
    from svac.data.readers import load_dataset
    from svac.loading import load_model
    from svac.metrics.output import report_json

    refuse_existing_out(args.out)
    model = load_model(args.model, device="cpu")
    result = gradient_probe(model, list(load_dataset(f"rvos:{args.data_root}", args.split)), videos=args.videos,
                            batch_size=args.batch_size, expressions_per_video=args.expressions)
    report_json({"model": args.model, "data": f"{args.data_root}:{args.split}", **result}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
