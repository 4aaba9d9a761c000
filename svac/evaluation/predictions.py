"""Writing predictions the way benchmarks and their servers read them.

Formats:

* **binary PNG** -- one 8-bit greyscale PNG per frame, 0 on the background and one
  foreground grey level on the object, named like the source frame: ``<folder>/<frame>.png``.
  255 for Ref-YouTube-VOS and MeViS (their servers / scripts treat any non-zero pixel as
  foreground); 1 for ReVOS, whose official script (VISA ``tools/eval_revos.py``) compares the
  raw grey level with its 0/1 ground truth for the A and R scores.
* **indexed PNG** -- DAVIS-2017 result PNGs: palette images whose pixel index is the object
  id (0 = background), DAVIS palette; one PNG per frame holds every object of a video.
* **RLE JSON** -- COCO run-length encoding (``pycocotools.mask.encode``, column-major),
  ``{"size": [H, W], "counts": "<ascii>"}``, as COCO-style results files use
  (A2D-Sentences / JHMDB-Sentences mAP, RefCOCO).
* **submission zip** -- the binary PNGs of every expression in the layout an evaluation
  server expects: ``<prefix><video>/<exp_id>/<frame>.png`` with prefix ``Annotations/`` for
  Ref-YouTube-VOS (CodaLab) and no prefix for MeViS (CodaLab).

Every writer stages its output next to the target and moves it into place with
``os.replace``, so an interrupted run never leaves a half-written folder, PNG or zip.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from svac.atomic_folder import staged_file, staged_folder
from svac.data.readers.masks import decode_rle  # noqa: F401 -- the one COCO RLE decoder; results are read back with it
from svac.errors import OutputExistsError, SVACError
from svac.metrics.output import write_text_atomic

#: Value of foreground pixels in binary prediction PNGs (Ref-YouTube-VOS, MeViS, DAVIS binary).
FOREGROUND_VALUE = 255
#: Value of foreground pixels in ReVOS prediction PNGs: the official ``tools/eval_revos.py`` scores
#: accuracy (``gt == pred``) and robustness (``(1 - gt) * pred``) on the raw grey level against 0/1 ground truth.
REVOS_FOREGROUND_VALUE = 1
#: Suffix of mask files.
PNG_SUFFIX = ".png"
#: Zip path prefix of the Ref-YouTube-VOS CodaLab submission (``Annotations/<video>/<exp_id>/<frame>.png``).
YTVOS_ZIP_PREFIX = "Annotations/"
#: Zip path prefix of the MeViS CodaLab submission (``<video>/<exp_id>/<frame>.png`` at the zip root).
MEVIS_ZIP_PREFIX = ""


def _check_masks(masks: np.ndarray, frame_names: Sequence[str], what: str) -> None:
    if not isinstance(masks, np.ndarray) or masks.ndim != 3:
        raise ValueError(f"{what}: expected masks of shape (N, H, W), got {getattr(masks, 'shape', type(masks))}")
    if masks.shape[0] != len(frame_names):
        raise ValueError(f"{what}: {masks.shape[0]} masks for {len(frame_names)} frame names")


def write_binary_pngs(masks: np.ndarray, frame_names: Sequence[str], folder: str | Path, *,
                      overwrite: bool = False, foreground_value: int = FOREGROUND_VALUE) -> list[Path]:
    """Write one binary PNG (mode ``L``: 0 and ``foreground_value``) per frame into ``folder``, atomically.

    Args:
        masks: ``bool (N, H, W)``, one mask per frame.
        frame_names: N file stems (``"00000"`` ...); file ``k`` is ``<folder>/<frame_names[k]>.png``.
        folder: destination folder; it is written in a staging folder and renamed into place.
        overwrite: replace an existing ``folder`` (its previous content is removed).
        foreground_value: grey level of foreground pixels, an int in 1..255 (255 by default;
            :data:`REVOS_FOREGROUND_VALUE` = 1 for ReVOS).

    Returns:
        The written files, in frame order.

    Raises:
        ValueError: when ``masks`` is not ``bool (N, H, W)``, names and masks differ in number,
            or ``foreground_value`` is not an int in 1..255.
        svac.errors.OutputExistsError: when ``folder`` exists and ``overwrite`` is False.
    """
    _check_masks(masks, frame_names, str(folder))
    if masks.dtype != np.bool_:
        raise ValueError(f"{folder}: masks must be bool, got {masks.dtype}")
    if isinstance(foreground_value, bool) or not isinstance(foreground_value, int) or not 1 <= foreground_value <= 255:
        raise ValueError(f"{folder}: foreground_value must be an int in 1..255, got {foreground_value!r}")
    labels = masks.astype(np.uint8) * np.uint8(foreground_value)
    return _write_png_folder(folder, frame_names, lambda k: Image.fromarray(labels[k], mode="L"), overwrite)


def write_indexed_pngs(labels: np.ndarray, frame_names: Sequence[str], folder: str | Path, *,
                       overwrite: bool = False) -> list[Path]:
    """Write DAVIS-2017 result PNGs (palette mode ``P``, pixel = object id, DAVIS palette) into ``folder``.

    Args:
        labels: ``uint8 (N, H, W)`` object ids, 0 = background.
        frame_names: N file stems.
        folder: destination folder (staged, then renamed into place).
        overwrite: replace an existing ``folder``.

    Raises:
        ValueError: when ``labels`` is not ``uint8 (N, H, W)`` or names and frames differ in number.
        svac.errors.OutputExistsError: when ``folder`` exists and ``overwrite`` is False.
    """
    from svac.video.overlay import davis_palette

    _check_masks(labels, frame_names, str(folder))
    if labels.dtype != np.uint8:
        raise ValueError(f"{folder}: object-id labels must be uint8, got {labels.dtype}")
    palette = davis_palette().reshape(-1).tolist()

    def image(k: int) -> Image.Image:
        im = Image.fromarray(labels[k], mode="P")
        im.putpalette(palette)
        return im

    return _write_png_folder(folder, frame_names, image, overwrite)


def _write_png_folder(folder: str | Path, frame_names: Sequence[str], image_of, overwrite: bool) -> list[Path]:
    target = Path(folder)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists; not overwritten")
    with staged_folder(target, overwrite=overwrite, what="predictions") as staging:
        for k, name in enumerate(frame_names):
            image_of(k).save(staging / f"{name}{PNG_SUFFIX}")
    return [target / f"{name}{PNG_SUFFIX}" for name in frame_names]


def read_binary_png(path: str | Path) -> np.ndarray:
    """A prediction PNG as ``bool (H, W)``: any non-zero pixel is foreground.

    Raises:
        SVACError: when the file is missing or not a readable single-channel image.
    """
    try:
        with Image.open(path) as im:
            if im.mode not in ("1", "L", "P"):
                raise SVACError(f"{path}: expected a single-channel PNG (mode 1, L or P), got mode {im.mode}")
            return np.asarray(im) != 0
    except (FileNotFoundError, OSError) as exc:
        raise SVACError(f"cannot read prediction {path}: {exc}") from exc


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of one mask: ``{"size": [H, W], "counts": str}`` (``pycocotools.mask.encode``, column-major).

    :func:`svac.data.readers.masks.decode_rle` (importable from here too) decodes it back.

    Args:
        mask: ``bool (H, W)``.

    Raises:
        ValueError: when ``mask`` is not a 2-D bool array.
    """
    from pycocotools import mask as mask_utils

    if not isinstance(mask, np.ndarray) or mask.ndim != 2 or mask.dtype != np.bool_:
        raise ValueError(f"encode_rle needs a bool (H, W) mask, got {getattr(mask, 'dtype', type(mask))} "
                         f"{getattr(mask, 'shape', '')}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}



def write_json_atomic(path: str | Path, payload, *, overwrite: bool = True) -> Path:
    """Write ``payload`` as indented JSON through a temporary file and ``os.replace``.

    Raises:
        svac.errors.OutputExistsError: when ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=False) + "\n", overwrite=overwrite)
    return path


def write_submission_zip(zip_path: str | Path, folders: Iterable[tuple[str, Path]], *, prefix: str,
                         overwrite: bool = True) -> int:
    """Zip prediction folders for an evaluation server.

    Args:
        zip_path: the zip to write (staged, then renamed into place).
        folders: ``(archive folder, local folder)`` pairs, e.g. ``("vid/0", Path(".../vid/0"))``;
            every ``*.png`` of the local folder goes to ``<prefix><archive folder>/<name>.png``.
        prefix: archive path prefix (``"Annotations/"`` for Ref-YouTube-VOS, ``""`` for MeViS).
        overwrite: replace an existing zip.

    Returns:
        The number of PNG files written.

    Raises:
        svac.errors.OutputExistsError: when the zip exists and ``overwrite`` is False.
        SVACError: when a folder is missing or holds no PNG.
    """
    zip_path = Path(zip_path)
    if zip_path.exists() and not overwrite:
        raise OutputExistsError(f"{zip_path} already exists; not overwritten")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with staged_file(zip_path) as tmp:  # renamed into place when complete; umask permissions
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for arc_folder, local in sorted(folders, key=lambda pair: pair[0]):
                files = sorted(Path(local).glob(f"*{PNG_SUFFIX}")) if Path(local).is_dir() else []
                if not files:
                    raise SVACError(f"no prediction PNGs in {local} (expected one per frame)")
                for f in files:
                    archive.write(f, f"{prefix}{arc_folder}/{f.name}")
                    count += 1
    return count
