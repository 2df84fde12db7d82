"""Read and write COCO instance-segmentation files in the released XAMI (Roboflow export) form.

Conventions of the files xami writes:

- ``categories`` exactly as released (`xami.classes.coco_categories`, id 0 ``artefacts`` unused).
- ``bbox`` is ``[x, y, w, h]`` of the polygons' vertices (the file's own bbox is checked but not
  trusted on read: Roboflow exports are sometimes too wide).
- ``area`` is the rasterised area: the number of pixels pycocotools fills for the union of the
  polygons, i.e. ``Annotation.mask(h, w).sum()``, the same definition as `Instances.to_coco`.
- coordinates are rounded to 1e-6 pixel; ids are kept when unique, else renumbered (images from
  0, annotations from 1). Same records give a byte-identical file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from xami.classes import BY_COCO_ID, coco_categories
from xami.data.files import join_inside
from xami.data.polygons import mask_to_polygons
from xami.data.records import Annotation, ImageRecord
from xami.errors import DatasetError
from xami.instrument import parse_frame_name
from xami.io.atomic import write_text_atomic
from xami.structures import decode_rle, xyxy_to_xywh

COCO_FILE_NAME = "_annotations.coco.json"
"""Name of the per-split annotation file beside the images (Roboflow export)."""

_IMAGE_KEYS = ("id", "file_name", "height", "width")
_DIGITS = 6


# --------------------------------------------------------------------------- reading
def read_coco(json_path: str | os.PathLike[str], *,
              image_dir: str | os.PathLike[str] | None = None) -> tuple[ImageRecord, ...]:
    """Read and validate one COCO instance-segmentation file.

    Parameters
    ----------
    json_path : str or os.PathLike
        The ``_annotations.coco.json`` file (released XAMI form, or as written by `write_coco`).
    image_dir : str or os.PathLike, optional
        Folder of the images, used only to read the size of an image whose ``height`` or
        ``width`` is missing. Default: the folder of ``json_path``.

    Returns
    -------
    tuple of ImageRecord
        One record per entry of ``images``, in file order, with its annotations in file order.
        ``meta`` holds ``obs_id`` and ``filter`` parsed from the file name (when it is an XAMI
        name) and every extra image field (``license``, ``date_captured``, ``exposure``...).
        RLE segmentations are converted to exact polygon outlines.

    Raises
    ------
    DatasetError
        If the file is not JSON or anything in it is malformed; the message names the file and
        the image id, annotation id or field.

    Examples
    --------
    >>> records = read_coco("xami_dataset/valid/_annotations.coco.json")  # doctest: +SKIP
    >>> records[0].meta["filter"]  # doctest: +SKIP
    'U'
    """
    path = Path(json_path)
    data = _load_json(path)
    _check_categories(path, data["categories"])
    folder = path.parent if image_dir is None else Path(image_dir)
    images = _parse_images(path, data["images"], folder)
    by_image: dict[int, list[Annotation]] = {image_id: [] for image_id in images}
    seen: set[int] = set()
    for ann in _entries(path, data["annotations"], "annotations"):
        image_id, annotation = _parse_annotation(path, ann, images, seen)
        by_image[image_id].append(annotation)
    return tuple(
        ImageRecord(rec.file_name, rec.height, rec.width, tuple(by_image[image_id]),
                    image_id, rec.meta)
        for image_id, rec in images.items()
    )


def _fail(path: Path, problem: str) -> DatasetError:
    """The error for ``path`` (callers ``raise`` it so control flow stays visible)."""
    return DatasetError(path, problem)


def _load_json(path: Path) -> dict[str, Any]:
    """Parse the file and check the three top-level lists exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(path, f"not a JSON file ({err})") from None
    if not isinstance(data, dict):
        raise _fail(path, "top level is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _fail(path, f"missing or non-list '{key}'")
    return data


def _entries(path: Path, items: list[Any], what: str) -> Iterable[dict[str, Any]]:
    """Yield the entries of a top-level list, checking each is an object."""
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _fail(path, f"{what}[{i}] is not a JSON object")
        yield item


def _is_int(value: Any) -> bool:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_categories(path: Path, categories: list[Any]) -> None:
    """Every category must be one of the released ones, with its released name."""
    released = {c["id"]: c["name"] for c in coco_categories()}
    for cat in _entries(path, categories, "categories"):
        cat_id, name = cat.get("id"), cat.get("name")
        if not _is_int(cat_id) or cat_id not in released:
            raise _fail(path, f"category id {cat_id!r} is not a released XAMI category "
                              f"(ids {sorted(released)})")
        if name != released[cat_id]:
            raise _fail(path, f"category {cat_id} is named {name!r}, released name is "
                              f"{released[cat_id]!r}")


def _parse_images(path: Path, items: list[Any], folder: Path) -> dict[int, ImageRecord]:
    """Image records (no annotations yet) keyed by image id, in file order."""
    images: dict[int, ImageRecord] = {}
    for img in _entries(path, items, "images"):
        image_id = img.get("id")
        if not _is_int(image_id):
            raise _fail(path, f"image with file_name {img.get('file_name')!r}: id {image_id!r} "
                              "is not an integer")
        if image_id in images:
            raise _fail(path, f"duplicate image id {image_id}")
        file_name = img.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise _fail(path, f"image {image_id}: file_name {file_name!r} is not a file name")
        image_path = join_inside(folder, file_name, source=path,
                                 what=f"image {image_id}: file_name")
        height, width = _image_size(path, img, image_path)
        images[image_id] = ImageRecord(file_name, height, width, (), image_id,
                                       _image_meta(img))
    return images


def _image_size(path: Path, img: dict[str, Any], image_path: Path) -> tuple[int, int]:
    """``(height, width)`` from the entry, or from the image header when both are missing."""
    if "height" not in img and "width" not in img:
        try:
            with Image.open(image_path) as im:
                return im.height, im.width
        except OSError:
            raise _fail(path, f"image {img['id']}: no height/width and image file "
                              f"{image_path} cannot be read") from None
    for key in ("height", "width"):
        if not _is_int(img.get(key)) or img[key] <= 0:
            raise _fail(path, f"image {img['id']}: {key} {img.get(key)!r} is not a positive "
                              "integer")
    return img["height"], img["width"]


def frame_meta(file_name: str) -> dict[str, Any]:
    """``{"obs_id", "filter"}`` parsed from an XAMI frame name (empty for other names)."""
    parsed = parse_frame_name(file_name)
    return {} if parsed is None else {"obs_id": parsed[0], "filter": parsed[1]}


def _image_meta(img: dict[str, Any]) -> dict[str, Any]:
    """ObsID and filter from the file name, then every extra field of the entry."""
    meta = frame_meta(img["file_name"])
    meta.update({k: v for k, v in img.items() if k not in _IMAGE_KEYS})
    return meta


def _parse_annotation(path: Path, ann: dict[str, Any], images: Mapping[int, ImageRecord],
                      seen: set[int]) -> tuple[int, Annotation]:
    """Validate one annotation entry; returns its image id and the `Annotation`."""
    ann_id = ann.get("id")
    if not _is_int(ann_id):
        raise _fail(path, f"annotation id {ann_id!r} is not an integer")
    if ann_id in seen:
        raise _fail(path, f"duplicate annotation id {ann_id}")
    seen.add(ann_id)
    where = f"annotation {ann_id}"
    image_id = ann.get("image_id")
    if image_id not in images or not _is_int(image_id):
        raise _fail(path, f"{where}: image_id {image_id!r} is not an image of this file")
    category_id = ann.get("category_id")
    if not _is_int(category_id) or category_id not in BY_COCO_ID:
        raise _fail(path, f"{where}: unknown category_id {category_id!r} "
                          f"(artefact classes are {sorted(BY_COCO_ID)})")
    if "bbox" in ann:
        _check_numbers(path, f"{where}: bbox", ann["bbox"], length=4)
    image = images[image_id]
    polygons = _parse_segmentation(path, where, ann.get("segmentation"), image)
    return image_id, Annotation(category_id, polygons, ann_id, bool(ann.get("iscrowd", 0)))


def _check_numbers(path: Path, where: str, values: Any, *, length: int | None = None) -> None:
    """``values`` must be a list of finite numbers (of ``length`` items when given)."""
    if not isinstance(values, list) or (length is not None and len(values) != length):
        expected = "a list" if length is None else f"a list of {length} numbers"
        raise _fail(path, f"{where} is not {expected}: {values!r}"[:300])
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise _fail(path, f"{where} has a non-finite or non-numeric value {v!r}")


def _parse_segmentation(path: Path, where: str, seg: Any,
                        image: ImageRecord) -> tuple[np.ndarray, ...]:
    """Polygons of a polygon-list or RLE segmentation."""
    if isinstance(seg, dict):
        return _rle_to_polygons(path, where, seg, image)
    if not isinstance(seg, list) or not seg:
        raise _fail(path, f"{where}: segmentation is missing or empty")
    polygons = []
    for i, flat in enumerate(seg):
        _check_numbers(path, f"{where}: segmentation[{i}]", flat)
        if len(flat) % 2 or len(flat) < 6:
            raise _fail(path, f"{where}: segmentation[{i}] has {len(flat)} coordinates; a "
                              "polygon needs an even number, at least 3 points")
        polygons.append(np.asarray(flat, dtype=np.float64).reshape(-1, 2))
    return tuple(polygons)


def _rle_to_polygons(path: Path, where: str, seg: dict[str, Any],
                     image: ImageRecord) -> tuple[np.ndarray, ...]:
    """Exact outlines of an RLE (compressed or not) segmentation."""
    if seg.get("size") != [image.height, image.width] or "counts" not in seg:
        raise _fail(path, f"{where}: RLE segmentation needs 'counts' and size "
                          f"[{image.height}, {image.width}], got size {seg.get('size')!r}")
    try:
        mask = decode_rle(seg)
    except (TypeError, ValueError, UnicodeError) as err:
        raise _fail(path, f"{where}: RLE segmentation cannot be decoded ({err})") from None
    polygons = mask_to_polygons(mask)
    if not polygons:
        raise _fail(path, f"{where}: RLE segmentation is empty")
    return polygons


# --------------------------------------------------------------------------- writing
def write_coco(records: Iterable[ImageRecord], json_path: str | os.PathLike[str]) -> None:
    """Write records as a COCO instance-segmentation file in the released XAMI form.

    Parameters
    ----------
    records : iterable of ImageRecord
        The images of one split, written in this order.
    json_path : str or os.PathLike
        Output file (written atomically; folders are created).

    Raises
    ------
    ValueError
        If an annotation has no polygon.

    Notes
    -----
    Image and annotation ids are kept when they are unique, else renumbered (images from 0,
    annotations from 1, in order). ``meta`` is written as extra image fields. ``bbox`` comes
    from the polygons, ``area`` is the rasterised pixel count; coordinates are rounded to 1e-6
    pixel. The output is deterministic: the same records give a byte-identical file.

    Examples
    --------
    >>> write_coco(records, "out/train/_annotations.coco.json")  # doctest: +SKIP
    """
    records = list(records)
    image_ids = _ids([r.image_id for r in records], start=0)
    anns = [a for r in records for a in r.annotations]
    ann_ids = iter(_ids([a.ann_id for a in anns], start=1))
    images, annotations = [], []
    for rec, image_id in zip(records, image_ids, strict=True):
        images.append({"id": image_id, "file_name": rec.file_name, "height": rec.height,
                       "width": rec.width, **rec.meta})
        annotations += [_annotation_entry(a, next(ann_ids), image_id, rec) for a in
                        rec.annotations]
    write_text_atomic(json_path, _dumps(images, annotations))


def _ids(given: list[int], *, start: int) -> list[int]:
    """The given ids when unique, else ``start, start + 1, ...``."""
    if len(set(given)) == len(given):
        return [int(i) for i in given]
    return list(range(start, start + len(given)))


def _annotation_entry(ann: Annotation, ann_id: int, image_id: int,
                      rec: ImageRecord) -> dict[str, Any]:
    """The COCO entry of one annotation."""
    if not ann.polygons:
        raise ValueError(f"{rec.file_name}: annotation {ann_id} (category {ann.category_id}) "
                         "has no polygon")
    flat = [[round(float(v), _DIGITS) for v in p.reshape(-1)] for p in ann.polygons]
    rle = mask_utils.merge(mask_utils.frPyObjects(flat, rec.height, rec.width))
    bbox = xyxy_to_xywh(ann.bbox)[0]
    return {"id": ann_id, "image_id": image_id, "category_id": int(ann.category_id),
            "bbox": [round(float(v), _DIGITS) for v in bbox],
            "area": int(mask_utils.area(rle)), "segmentation": flat,
            "iscrowd": int(ann.iscrowd)}


def _dumps(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> str:
    """JSON text with one image / annotation / category per line (readable, diff-friendly)."""
    parts = []
    for key, items in (("images", images), ("annotations", annotations),
                       ("categories", coco_categories())):
        body = ",\n".join(json.dumps(item, separators=(",", ":"), default=_plain)
                           for item in items)
        parts.append(f'"{key}": [\n{body}\n]' if items else f'"{key}": []')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _plain(value: Any) -> Any:
    """JSON form of numpy scalars and arrays found in ``meta``."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"meta value {value!r} is not JSON-serialisable")
