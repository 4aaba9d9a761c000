"""Reader for RefCOCO, RefCOCO+ and RefCOCOg (image referring segmentation, used for pretraining).

RefCOCO / RefCOCO+ (Yu et al., ECCV 2016) and RefCOCOg (Mao et al., CVPR
2016) are distributed (github.com/lichengunc/refer) as a COCO
``instances.json`` (``images``, ``annotations`` with polygon or RLE
``segmentation``) plus a refs file: a list of
``{"ref_id", "ann_id", "image_id", "split", "category_id", "sentences": [{"sent", "sent_id", "raw", ...}]}``.
The release ships refs as Python pickles (``refs(unc).p``); svac never
unpickles (loading a pickle runs arbitrary code) and asks for a JSON copy,
see ``docs/custom_data.md``. Expected folder::

    root/instances.json
    root/refs(unc).json           # refcoco, refcoco+ (refcocog: refs(umd).json or refs(google).json)
    root/images/<file_name>       # or root/train2014/, or pass image_dir=

Each sentence becomes one single-frame :class:`ReferringSample` whose mask is
the referred annotation rasterised like the COCO API's ``annToMask``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svac.data.readers.base import (
    REASON_MALFORMED,
    REASON_MISSING_ANNO_ID,
    REASON_MISSING_FRAME,
    REASON_SIZE_MISMATCH,
    FolderIndex,
    InvalidAnnotation,
    ReferringDataset,
    SampleCollector,
    parse_text,
    read_json,
    require_dir,
)
from svac.data.readers.masks import CocoSegmentationMaskLoader, read_image_hw
from svac.data.sample import ReferringSample
from svac.errors import AnnotationError

INSTANCES_FILE = "instances.json"
PICKLE_SUFFIXES = frozenset({".p", ".pkl", ".pickle"})
#: Refs file looked for first, per dataset (the names of the official pickles, as JSON).
DEFAULT_REFS = {
    "refcoco": ("refs(unc).json",),
    "refcoco+": ("refs(unc).json",),
    "refcocog": ("refs(umd).json", "refs(google).json"),
}
REFS_GLOB = "refs*.json"
#: Image folders tried, relative to the root, when ``image_dir`` is not given.
IMAGE_DIR_CANDIDATES = ("images", "train2014", "../images/mscoco/images/train2014")
REF_KEYS = ("ref_id", "ann_id", "image_id", "split", "sentences")

EXPECTED = (
    "a RefCOCO root holding instances.json (COCO format), a refs JSON file (e.g. 'refs(unc).json') and the COCO "
    "train2014 images under images/ or train2014/ (or pass image_dir=)"
)


def pickle_refused(path: Path) -> AnnotationError:
    """The error raised for a pickled refs file: svac reads JSON only."""
    return AnnotationError(
        f"{path}: svac does not load pickle files (unpickling can run arbitrary code). Convert it to JSON once, "
        f"in a Python you trust: import pickle, json; refs = pickle.load(open({str(path)!r}, 'rb')); "
        f"json.dump(refs, open({str(path.with_suffix('.json'))!r}, 'w')) — see docs/custom_data.md"
    )


class RefCOCOReader(ReferringDataset):
    """RefCOCO / RefCOCO+ / RefCOCOg from COCO ``instances.json`` + a JSON refs file.

    Args:
        root: folder with ``instances.json`` and the refs JSON — or the refs
            JSON file itself (its folder is then the root).
        split: a ``split`` value of the refs (``train``, ``val``, ``testA``,
            ``testB``, ``test`` ...).
        name: ``"refcoco"``, ``"refcoco+"`` or ``"refcocog"``; picks the default refs file.
        refs_file: refs JSON (relative to ``root`` or absolute); default: the
            dataset's official name, or the only ``refs*.json`` in ``root``.
        instances_file: COCO instances JSON; default ``root/instances.json``.
        image_dir: folder of the COCO images; default the first of ``images``,
            ``train2014``, ``../images/mscoco/images/train2014`` under ``root``.
        skip_invalid: drop invalid sentences (see ``skip_report``) instead of raising.
        check_sizes: read each image header and compare with the COCO
            ``height``/``width``.

    Samples: one per sentence; ``video_id`` = image file stem, ``exp_id`` =
    ``str(sent_id)``, ``expression`` = ``sent``, ``frame_paths`` = the image,
    ``object_ids`` = ``(ann_id,)``; ``meta`` has ``ref_id``, ``image_id``,
    ``ann_id``, ``category_id``, ``raw``.

    Raises:
        AnnotationError: a pickle refs file (with conversion instructions),
            wrong root / missing files, malformed JSON, unknown split, or an
            invalid ref when ``skip_invalid`` is False.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        *,
        name: str = "refcoco",
        refs_file: str | Path | None = None,
        instances_file: str | Path | None = None,
        image_dir: str | Path | None = None,
        skip_invalid: bool = False,
        check_sizes: bool = True,
    ) -> None:
        root = Path(root)
        if root.suffix in PICKLE_SUFFIXES:
            raise pickle_refused(root)
        if root.is_file() and root.suffix == ".json":
            refs_file, root = root, root.parent
        super().__init__(name, root, split, skip_invalid=skip_invalid)
        require_dir(root, EXPECTED)
        self.refs_file = self._refs_path(refs_file)
        self.instances_file = Path(root / instances_file) if instances_file is not None else root / INSTANCES_FILE
        if not self.instances_file.is_file():
            raise AnnotationError(f"{self.instances_file} not found; expected {EXPECTED}")
        self.image_dir = self._image_dir(image_dir)
        self._check_sizes = check_sizes
        self._index = FolderIndex()

        refs = read_json(self.refs_file, "refs")
        if not isinstance(refs, list):
            raise AnnotationError(f"{self.refs_file}: expected a JSON list of refs")
        instances = read_json(self.instances_file, "COCO instances")
        images, annotations = self._index_instances(instances)
        splits = {ref.get("split") for ref in refs if isinstance(ref, dict)}
        if split not in splits:
            present = sorted(s for s in splits if isinstance(s, str))
            raise AnnotationError(f"{self.refs_file}: no refs of split {split!r} (splits present: {present})")
        collector = self._collector()
        for position, ref in enumerate(refs):
            if not isinstance(ref, dict) or not all(k in ref for k in REF_KEYS):
                error = InvalidAnnotation(
                    f"{self.refs_file}: ref #{position}: expected an object with keys {', '.join(REF_KEYS)}",
                    reason=REASON_MALFORMED,
                )
                collector.reject(error, f"ref #{position}", [None])
            elif ref["split"] == split:
                self._read_ref(collector, ref, images, annotations)
        self._seal(collector)

    def _refs_path(self, refs_file: str | Path | None) -> Path:
        if refs_file is not None:
            path = Path(self.root / refs_file)
            if path.suffix in PICKLE_SUFFIXES:
                raise pickle_refused(path)
            if not path.is_file():
                raise AnnotationError(f"{path}: refs file not found")
            return path
        for candidate in DEFAULT_REFS.get(self.name, ()):
            if (self.root / candidate).is_file():
                return self.root / candidate
        found = sorted(self.root.glob(REFS_GLOB))
        if len(found) == 1:
            return found[0]
        if found:
            raise AnnotationError(
                f"{self.root}: several refs files ({', '.join(p.name for p in found)}); pass refs_file= to choose one"
            )
        pickles = sorted(p for p in self.root.glob("refs*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise pickle_refused(pickles[0])
        raise AnnotationError(f"{self.root}: no refs JSON file ({REFS_GLOB}); expected {EXPECTED}")

    def _image_dir(self, image_dir: str | Path | None) -> Path:
        if image_dir is not None:
            return require_dir(Path(self.root / image_dir), "the folder of the COCO train2014 images")
        candidates = [self.root / c for c in IMAGE_DIR_CANDIDATES]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate
        raise AnnotationError(
            f"{self.root}: no image folder (looked for {', '.join(map(str, candidates))}); pass image_dir="
        )

    def _index_instances(self, instances: Any) -> tuple[dict[Any, dict], dict[Any, dict]]:
        source = self.instances_file
        if not isinstance(instances, dict) or not isinstance(instances.get("images"), list) or not isinstance(
            instances.get("annotations"), list
        ):
            raise AnnotationError(f"{source}: expected a COCO instances object with 'images' and 'annotations' lists")
        images = {im["id"]: im for im in instances["images"] if isinstance(im, dict) and "id" in im}
        annotations = {a["id"]: a for a in instances["annotations"] if isinstance(a, dict) and "id" in a}
        return images, annotations

    def _read_ref(self, collector: SampleCollector, ref: dict, images: dict, annotations: dict) -> None:
        sentences = ref["sentences"] if isinstance(ref["sentences"], list) else []
        exp_ids = [
            str(s["sent_id"]) if isinstance(s, dict) and isinstance(s.get("sent_id"), int) else f"{ref['ref_id']}.{k}"
            for k, s in enumerate(sentences)
        ]
        video_label = f"ref {ref['ref_id']!r}"
        try:
            if not sentences:
                raise InvalidAnnotation(
                    f"{self.refs_file}: {video_label}: 'sentences' must be a non-empty list", reason=REASON_MALFORMED
                )
            image, annotation = self._lookup(ref, images, annotations)
            image_path = self._image_path(ref, image)
            video_label = image_path.stem
        except InvalidAnnotation as error:
            collector.reject(error, video_label, exp_ids)
            return
        loader = CocoSegmentationMaskLoader(
            frame_paths=(image_path,),
            segmentation=annotation["segmentation"],
            height=int(image["height"]),
            width=int(image["width"]),
            source=self.instances_file,
            label=f"annotation {ref['ann_id']}",
        )
        for exp_id, sentence in zip(exp_ids, sentences):
            try:
                text = parse_text(
                    sentence.get("sent") if isinstance(sentence, dict) else None,
                    source=self.refs_file,
                    video_id=video_label,
                    exp_id=exp_id,
                    key="sent",
                )
            except InvalidAnnotation as error:
                collector.reject(error, video_label, [exp_id])
                continue
            meta = {
                "ref_id": ref["ref_id"],
                "image_id": ref["image_id"],
                "ann_id": ref["ann_id"],
                "category_id": ref.get("category_id"),
                "raw": sentence.get("raw", text),
            }
            collector.add(
                ReferringSample(
                    dataset=self.name,
                    video_id=video_label,
                    exp_id=exp_id,
                    expression=text,
                    frame_paths=(image_path,),
                    object_ids=(ref["ann_id"],),
                    mask_loader=loader,
                    meta=meta,
                )
            )

    def _lookup(self, ref: dict, images: dict, annotations: dict) -> tuple[dict, dict]:
        label = f"ref {ref['ref_id']!r}"
        annotation = annotations.get(ref["ann_id"])
        if annotation is None:
            raise InvalidAnnotation(
                f"{self.instances_file}: ann_id {ref['ann_id']!r} of {label} (in {self.refs_file}) is missing",
                reason=REASON_MISSING_ANNO_ID,
            )
        image = images.get(ref["image_id"])
        if image is None:
            raise InvalidAnnotation(
                f"{self.instances_file}: image_id {ref['image_id']!r} of {label} (in {self.refs_file}) is missing",
                reason=REASON_MALFORMED,
            )
        if annotation.get("image_id") != ref["image_id"]:
            raise InvalidAnnotation(
                f"{self.instances_file}: annotation {ref['ann_id']!r} belongs to image {annotation.get('image_id')!r}, "
                f"but {label} says image {ref['image_id']!r}",
                reason=REASON_MALFORMED,
            )
        dims_ok = all(isinstance(image.get(k), int) and image[k] > 0 for k in ("height", "width"))
        if not dims_ok or not isinstance(image.get("file_name"), str) or "segmentation" not in annotation:
            raise InvalidAnnotation(
                f"{self.instances_file}: image {ref['image_id']!r} needs file_name/height/width and annotation "
                f"{ref['ann_id']!r} a segmentation ({label})",
                reason=REASON_MALFORMED,
            )
        return image, annotation

    def _image_path(self, ref: dict, image: dict) -> Path:
        path = self.image_dir / image["file_name"]
        if not self._index.has_file(path):
            raise InvalidAnnotation(
                f"{path}: image of ref {ref['ref_id']!r} not found (refs file {self.refs_file})",
                reason=REASON_MISSING_FRAME,
            )
        if self._check_sizes:
            size = read_image_hw(path)
            expected = (image["height"], image["width"])
            if size != expected:
                raise InvalidAnnotation(
                    f"{path}: image is {size[0]}x{size[1]} but {self.instances_file} says {expected[0]}x{expected[1]} "
                    f"(height x width; ref {ref['ref_id']!r})",
                    reason=REASON_SIZE_MISMATCH,
                )
        return path
