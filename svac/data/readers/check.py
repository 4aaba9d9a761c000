"""Check a dataset before training: parse it, optionally decode every mask, summarise.

Run as ``python -m svac.data.readers SPEC --split SPLIT [--decode] [--skip-invalid]``
(see ``docs/custom_data.md``), or call :func:`check_dataset` on a reader.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from svac.data.readers.base import ReferringDataset, SkippedAnnotationsWarning, SkipReport
from svac.errors import SVACError

EXIT_OK = 0
EXIT_INVALID = 1
#: How many problem lines the command line prints before summarising the rest.
MAX_LISTED = 20


@dataclass(frozen=True)
class DatasetCheck:
    """What :func:`check_dataset` found.

    Attributes:
        dataset: registry name.
        split: split checked.
        num_samples: expressions kept by the reader.
        num_videos: distinct videos among them.
        num_frames: frames over those videos (each video counted once).
        num_with_masks: samples that have a mask loader.
        skip_report: the reader's report of dropped expressions.
        decoded: whether every mask was decoded.
        empty_masks: ``(video_id, exp_id)`` of samples whose mask is empty on
            every frame (often a wrong object id); only when ``decoded``.
        decode_errors: messages of masks that failed to decode; only when ``decoded``.
    """

    dataset: str
    split: str
    num_samples: int
    num_videos: int
    num_frames: int
    num_with_masks: int
    skip_report: SkipReport
    decoded: bool
    empty_masks: tuple[tuple[str, str], ...] = ()
    decode_errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No expression dropped, no decode error."""
        return not self.skip_report.skipped and not self.decode_errors


def check_dataset(reader: ReferringDataset, *, decode_masks: bool = False) -> DatasetCheck:
    """Summarise a reader; with ``decode_masks`` decode every frame of every mask.

    Decoding costs one PNG / RLE decode per frame per expression; use it once
    on a new dataset. Samples whose mask refers to nothing on purpose
    (``meta["no_target"]``) are not listed as empty.
    """
    frames_per_video = {sample.video_id: sample.num_frames for sample in reader}
    empty: list[tuple[str, str]] = []
    errors: list[str] = []
    if decode_masks:
        for sample in reader:
            if sample.mask_loader is None:
                continue
            try:
                masks = sample.load_masks()
            except SVACError as exc:
                errors.append(str(exc))
                continue
            if not masks.any() and not sample.meta.get("no_target", False):
                empty.append((sample.video_id, sample.exp_id))
    return DatasetCheck(
        dataset=reader.name,
        split=reader.split,
        num_samples=len(reader),
        num_videos=len(frames_per_video),
        num_frames=sum(frames_per_video.values()),
        num_with_masks=sum(sample.mask_loader is not None for sample in reader),
        skip_report=reader.skip_report,
        decoded=decode_masks,
        empty_masks=tuple(empty),
        decode_errors=tuple(errors),
    )


def _print_list(title: str, lines: Sequence[str]) -> None:
    if not lines:
        return
    print(f"{title}:")
    for line in lines[:MAX_LISTED]:
        print(f"  {line}")
    if len(lines) > MAX_LISTED:
        print(f"  ... and {len(lines) - MAX_LISTED} more")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check one dataset split; exit 0 when clean, 1 otherwise."""
    from svac.data.readers import load_dataset

    parser = argparse.ArgumentParser(prog="python -m svac.data.readers", description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="dataset as name:/path/to/root, e.g. custom:/data/my_videos")
    parser.add_argument("--split", required=True, help="split to read, e.g. train")
    parser.add_argument("--decode", action="store_true", help="decode every mask (slow; finds corrupt/empty masks)")
    parser.add_argument("--skip-invalid", action="store_true", help="list all invalid expressions instead of stopping")
    parser.add_argument("--no-check-sizes", action="store_true", help="do not read frame/mask headers")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            # The skip summary is printed below; the warning would repeat it.
            warnings.simplefilter("ignore", SkippedAnnotationsWarning)
            reader = load_dataset(
                args.spec, args.split, skip_invalid=args.skip_invalid, check_sizes=not args.no_check_sizes
            )
        result = check_dataset(reader, decode_masks=args.decode)
    except SVACError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(
        f"{result.dataset} ({result.split}): {result.num_samples} expressions, {result.num_videos} videos, "
        f"{result.num_frames} frames, {result.num_with_masks} with masks"
    )
    print(result.skip_report.summary())
    _print_list("skipped", [f"[{s.reason}] {s.message}" for s in result.skip_report.skipped])
    _print_list("decode errors", list(result.decode_errors))
    _print_list("masks empty on every frame", [f"video {v!r} expression {e!r}" for v, e in result.empty_masks])
    return EXIT_OK if result.ok else EXIT_INVALID
