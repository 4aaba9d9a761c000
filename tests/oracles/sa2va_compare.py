"""Stage-by-stage comparison of svac with the Sa2VA reference outputs stored in a fixture folder (issue 13).

:func:`compare` loads a fixture folder made by :mod:`make_sa2va_fixture` through svac's normal
loading path, runs ``segment`` on the fixture's frames and expression with the fixture's answer
read as a template answer, records svac's intermediates with read-only hooks, and measures
each stage against the reference's. ``tests/test_sa2va_oracle.py`` asserts on the result; run as
a script it prints the table::

    python tests/oracles/sa2va_compare.py tests/fixtures/sa2va_tiny/sa2va_1b [--rename-g-weight]

``--rename-g-weight`` copies the folder with the memory fuser's ``g_weight`` keys renamed to
``gamma`` first, for measuring an svac that cannot load Sa2VA's key name (the state before the fix).
It uses only public svac entry points, so it runs against older svac checkouts too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from sa2va_frames import EXPRESSION, frames_sha256, load_frames, shared_davis16  # noqa: E402

#: Targets of issue 13.
SEG_PROMPT_TOL = 1e-4
LOW_RES_TOL = 1e-3
MIN_IOU = 0.99


@dataclass
class StageReport:
    """svac versus the reference, stage by stage (see :func:`compare`).

    Attributes:
        load_error: the loading error, or ``None`` when the folder loaded strictly.
        pipeline: the svac pipeline the checkpoint selected (``config.pipeline``; ``None`` if svac has none).
        ids_equal: svac's LLM input ids equal the reference's prompt and fed answer ids.
        ids_detail: lengths and first differing position.
        mllm_pixels: max abs difference of the MLLM's preprocessed images at the sampled positions.
        sam2_pixels: same for SAM-2's preprocessed frames.
        seg_hidden: max abs difference of the ``[SEG]`` hidden state.
        seg_prompt: max abs difference of the projected ``[SEG]`` prompt.
        prompted_frames: frames svac prompted with ``[SEG]`` (the reference's are in ``reference_prompted``).
        low_res: per frame, max abs difference of the low-resolution mask logits (stored grid).
        object_scores: per frame, absolute difference of the object-score logits.
        iou: per frame, IoU of the final masks.
        notes: free text (e.g. what was renamed).
    """

    load_error: str | None = None
    pipeline: str | None = None
    ids_equal: bool = False
    ids_detail: str = ""
    mllm_pixels: float = float("nan")
    sam2_pixels: float = float("nan")
    seg_hidden: float = float("nan")
    seg_prompt: float = float("nan")
    prompted_frames: list[int] = field(default_factory=list)
    reference_prompted: list[int] = field(default_factory=list)
    low_res: list[float] = field(default_factory=list)
    object_scores: list[float] = field(default_factory=list)
    iou: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, name: str) -> str:
        """A markdown table of the stages."""
        def f(x):
            return "n/a" if x != x else f"{x:.2e}"

        def many(xs, fmt):
            return "[" + ", ".join(fmt(x) for x in xs) + "]" if xs else "n/a"

        rows = [
            ("load (missing/unexpected keys)", "ok" if self.load_error is None else self.load_error),
            ("pipeline chosen from config.json", str(self.pipeline)),
            ("LLM input ids identical", f"{self.ids_equal} ({self.ids_detail})"),
            ("MLLM pixels, max abs diff", f(self.mllm_pixels)),
            ("SAM-2 pixels, max abs diff", f(self.sam2_pixels)),
            ("[SEG] hidden state, max abs diff", f(self.seg_hidden)),
            (f"[SEG] prompt, max abs diff (target <= {SEG_PROMPT_TOL:g})", f(self.seg_prompt)),
            ("frames prompted by [SEG] (svac / reference)", f"{self.prompted_frames} / {self.reference_prompted}"),
            (f"low-res logits, max abs diff per frame (target <= {LOW_RES_TOL:g})", many(self.low_res, f)),
            ("object-score logits, abs diff per frame", many(self.object_scores, f)),
            (f"final mask IoU per frame (target >= {MIN_IOU})", many(self.iou, lambda x: f"{x:.3f}")),
        ]
        lines = [f"#### {name}", "", "| stage | svac vs reference |", "|---|---|"]
        lines += [f"| {a} | {b} |" for a, b in rows]
        lines += [f"\n{n}" for n in self.notes]
        return "\n".join(lines)


def reference_outputs(folder: Path) -> tuple[dict, dict]:
    """``(tensors, metadata)`` the harness stored in ``folder``."""
    from safetensors.torch import load_file

    return load_file(str(folder / "reference.safetensors")), json.loads((folder / "reference.json").read_text())


def reference_masks(tensors: dict, meta: dict) -> np.ndarray:
    """The reference's final masks, ``bool (N, H, W)``."""
    shape = meta["mask_shape"]
    bits = np.unpackbits(tensors["masks_packed"].numpy())[: int(np.prod(shape))]
    return bits.reshape(shape).astype(bool)


def renamed_copy(folder: Path, out: Path) -> Path:
    """A copy of ``folder`` whose ``.g_weight`` tensors are named ``.gamma`` (Meta SAM 2's name)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, out)
    tensors = load_file(str(folder / "model.safetensors"))
    save_file({k.replace(".g_weight", ".gamma"): v for k, v in tensors.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    return out


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("nan")
    return float((a.float() - b.float()).abs().max())


def _sampled(pixels: torch.Tensor, seed: int, count: int) -> torch.Tensor:
    flat = pixels.detach().float().reshape(pixels.shape[0], -1)
    idx = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(seed))[:count]
    return flat[:, idx]


class _Recorder:
    """Read-only hooks on an svac model: LLM input ids and images, SAM-2 frames, ``[SEG]`` states, per-frame outputs."""

    def __init__(self, model):
        self.model = model
        self.ids: list[torch.Tensor] = []
        self.mllm_pixels: list[torch.Tensor] = []
        self.sam2_pixels: list[torch.Tensor] = []
        self.seg_hidden: torch.Tensor | None = None
        self.seg_prompt: torch.Tensor | None = None
        self.frames: dict[int, dict] = {}
        self._handles = []
        self._restore = []

    def __enter__(self):
        model = self.model

        def mllm_pre(module, args, kwargs):
            self.ids.append(kwargs["input_ids"].detach().clone())
            self.mllm_pixels.append(kwargs["pixel_values"].detach().clone())

        def fcs_post(module, args, output):
            self.seg_hidden, self.seg_prompt = args[0].detach().clone(), output.detach().clone()

        self._handles = [model.mllm.register_forward_pre_hook(mllm_pre, with_kwargs=True),
                         model.text_hidden_fcs.register_forward_hook(fcs_post)]
        sam = model.grounding
        forward_image, track_step = sam.forward_image, sam.track_step

        def recording_forward_image(images):
            self.sam2_pixels.append(images.detach().clone())
            return forward_image(images)

        def recording_track_step(*args, **kwargs):
            out = track_step(*args, **kwargs)
            points = kwargs.get("point_inputs")
            self.frames[int(kwargs["frame_idx"])] = {
                "low_res": out["pred_masks"].detach().float().clone(),
                "object_score": out["object_score_logits"].detach().float().clone(),
                "prompted": points is not None and "text_prompt" in points,
            }
            return out

        sam.forward_image, sam.track_step = recording_forward_image, recording_track_step
        self._restore = [(sam, "forward_image"), (sam, "track_step")]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        for obj, name in self._restore:
            delattr(obj, name)


def _load(folder: Path, report: StageReport, *, rename_g_weight: bool, scratch: Path):
    from svac.checkpoints.loader import load_checkpoint
    from svac.model import SVAC
    from svac.errors import CheckpointError

    try:
        return load_checkpoint(folder, model_class=SVAC, torch_dtype=torch.float32).model
    except CheckpointError as exc:
        report.load_error = " ".join(str(exc).split())[:300]
        if not rename_g_weight:
            return None
    report.notes.append("measured after renaming the memory fuser's g_weight keys to gamma in a copy of the folder")
    return load_checkpoint(renamed_copy(folder, scratch / folder.name), model_class=SVAC,
                           torch_dtype=torch.float32).model


def compare(folder: Path, *, rename_g_weight: bool = False, frames: np.ndarray | None = None) -> StageReport:
    """Load ``folder`` with svac, segment the fixture's frames, and measure every stage against the reference.

    svac reads the reference's answer as a template answer (``inference.answer_mode=template``;
    the answer text is the one the reference was forced to give), so both sides condition on the
    same tokens. Runs on the CPU in float32.

    Raises:
        AssertionError: when the frames are not the ones the fixture was made with.
    """
    ref, meta = reference_outputs(folder)
    report = StageReport(reference_prompted=list(meta["prompted_frames"]))
    if frames is None:
        frames = load_frames(shared_davis16(REPO_ROOT))
    assert frames_sha256(frames) == meta["frames"]["sha256"], (
        "the frames differ from the fixture's (JPEG decoder or resampler changed?): regenerate the fixture")
    with tempfile.TemporaryDirectory() as scratch:
        model = _load(folder, report, rename_g_weight=rename_g_weight, scratch=Path(scratch))
        if model is None:
            return report
        report.pipeline = getattr(model.config, "pipeline", None)
        _set_template_answer(model, meta)
        with _Recorder(model) as rec, torch.inference_mode():
            result = model.segment(frames, EXPRESSION)
    _measure(report, rec, result, ref, meta)
    return report


def _set_template_answer(model, meta: dict) -> None:
    """Make ``segment`` read a template answer (the reference was forced to give one)."""
    import dataclasses

    model.config = dataclasses.replace(model.config, inference=dataclasses.replace(model.config.inference,
                                                                                   answer_mode="template"))


def _measure(report: StageReport, rec: _Recorder, result, ref: dict, meta: dict) -> None:
    fed = ref["fed_ids"]
    ids = rec.ids[-1][0].cpu() if rec.ids else torch.zeros(0, dtype=torch.long)
    n = min(len(ids), len(fed))
    diff = (ids[:n] != fed[:n]).nonzero()
    first = int(diff[0]) if len(diff) else None
    report.ids_equal = first is None and len(ids) >= len(fed)
    report.ids_detail = (f"svac {len(ids)} ids, reference {len(fed)} fed ids (prompt {len(ref['prompt_ids'])})"
                         + ("" if first is None else f", first difference at {first}"))
    samples = meta["pixel_samples_per_image"]
    seeds = meta["pixel_sample_seeds"]
    if rec.mllm_pixels:
        report.mllm_pixels = _max_abs(_sampled(rec.mllm_pixels[-1].cpu(), seeds["mllm"], samples),
                                      ref["mllm_pixel_samples"])
    if rec.sam2_pixels:
        sam_pixels = torch.cat([p.cpu() for p in rec.sam2_pixels])
        report.sam2_pixels = _max_abs(_sampled(sam_pixels, seeds["sam2"], samples), ref["sam2_pixel_samples"])
    if rec.seg_hidden is not None:
        report.seg_hidden = _max_abs(rec.seg_hidden.cpu(), ref["seg_hidden"])
        report.seg_prompt = _max_abs(rec.seg_prompt.cpu(), ref["seg_prompt"])
    stride = meta["low_res_stride"]
    masks = reference_masks(ref, meta)
    for t in range(masks.shape[0]):
        out = rec.frames.get(t)
        if out is None:
            continue
        if out["prompted"]:
            report.prompted_frames.append(t)
        low = out["low_res"][0, 0, ::stride, ::stride].cpu()
        report.low_res.append(_max_abs(low, ref["low_res_logits"][t]))
        report.object_scores.append(abs(float(out["object_score"].reshape(-1)[0]) -
                                        float(ref["object_score_logits"][t])))
    svac_masks = np.asarray(result.masks[0]) if result.masks.shape[0] else np.zeros_like(masks)
    for a, b in zip(svac_masks, masks):
        union = np.logical_or(a, b).sum()
        report.iou.append(1.0 if union == 0 else float(np.logical_and(a, b).sum() / union))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="svac versus the Sa2VA reference, stage by stage")
    parser.add_argument("folders", nargs="+", type=Path, help="fixture folders (tests/fixtures/sa2va_tiny/<variant>)")
    parser.add_argument("--rename-g-weight", action="store_true",
                        help="measure after renaming g_weight -> gamma when svac cannot load the folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for folder in args.folders:
        print(compare(folder, rename_g_weight=args.rename_g_weight).table(folder.name), "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
