"""Read and write the YOLO-seg layout that ultralytics trains on.

Layout: ``ROOT/{split}/images/NAME.jpg``, ``ROOT/{split}/labels/NAME.txt`` and ``ROOT/data.yaml``.
A label line is ``yolo_index x1 y1 x2 y2 ...`` with ``x / width`` and ``y / height`` (class index
from `xami.classes`, i.e. COCO id - 1); an image without objects has an empty label file.

Multi-polygon instances: YOLO-seg has one polygon per line and every line is an instance, so the
polygons of a multi-part annotation are bridged into one outline at their closest vertices
(`xami.data.polygons.merge_polygons`, as ultralytics' own COCO converter does): one line per
instance. Single polygons and every class survive COCO -> YOLO -> COCO exactly (``%.10g``); a
multi-part instance comes back as one instance whose outline is the bridged one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from xami.classes import BY_COCO_ID, BY_YOLO_INDEX, yolo_names
from xami.data.coco import frame_meta
from xami.data.files import join_inside, place_file
from xami.data.polygons import merge_polygons
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.errors import DatasetError
from xami.io.atomic import write_text_atomic
from xami.io.images import IMAGE_SUFFIXES

_YAML_KEYS = {"train": "train", "val": "valid", "test": "test"}  # data.yaml key -> split


# --------------------------------------------------------------------------- writing
def write_yolo(dataset: Dataset, root: str | os.PathLike[str]) -> None:
    """Write a dataset in the YOLO-seg layout, with a ``data.yaml`` ultralytics can train on.

    Parameters
    ----------
    dataset : Dataset
        Images (hard-linked, or copied, into ``ROOT/{split}/images``) and annotations.
    root : str or os.PathLike
        Output folder. ``data.yaml`` holds one key per split (``train``, ``val`` for ``valid``,
        ``test``) relative to its own folder, ``nc`` and ``names``; no ``path``, so that the
        folder can move and identical datasets give identical files (ultralytics then resolves
        the splits against the yaml's folder).

    Examples
    --------
    >>> write_yolo(load_dataset("xami_dataset.zip"), "xami_yolo")  # doctest: +SKIP
    """
    root = Path(root)
    for split, records in dataset.splits.items():
        for rec in records:
            place_file(dataset.image_path(split, rec),
                       join_inside(root, split, "images", rec.file_name))
            label = join_inside(root, split, "labels", rec.file_name).with_suffix(".txt")
            write_text_atomic(label, label_text(rec))
    write_text_atomic(root / "data.yaml", _data_yaml(list(dataset.splits)))


def label_text(record: ImageRecord) -> str:
    """The YOLO-seg label file of one image: one line per instance (empty without objects)."""
    scale = np.array([record.width, record.height], dtype=np.float64)
    lines = []
    for ann in record.annotations:
        index = BY_COCO_ID[ann.category_id].yolo_index
        coords = np.clip(merge_polygons(ann.polygons) / scale, 0.0, 1.0).reshape(-1)
        lines.append(" ".join([str(index), *(f"{v:.10g}" for v in coords)]))
    return "".join(f"{line}\n" for line in lines)


def _data_yaml(splits: list[str]) -> str:
    """``data.yaml`` text: split folders relative to the yaml's folder, as ultralytics resolves
    them when there is no ``path``."""
    keys = {split: key for key, split in _YAML_KEYS.items()}
    config: dict[str, Any] = {keys.get(split, split): f"{split}/images" for split in splits}
    config.update({"nc": len(yolo_names()), "names": yolo_names()})
    return yaml.safe_dump(config, sort_keys=False)


# --------------------------------------------------------------------------- reading
def read_yolo(root: str | os.PathLike[str]) -> Dataset:
    """Read a YOLO-seg dataset folder.

    Parameters
    ----------
    root : str or os.PathLike
        Folder with ``data.yaml`` and ``{split}/{images,labels}``. Each split key of the yaml
        (``train``, ``val``, ``test``) names its folder by the last path component before
        ``images``, so absolute paths from another machine and Roboflow's ``../train/images``
        both work. Image sizes are read from the image headers.

    Returns
    -------
    Dataset
        Splits named after their folders (``train``, ``valid``...), one instance per label line,
        polygons in pixels, classes as COCO ids.

    Raises
    ------
    DatasetError
        If ``data.yaml`` is missing or malformed, its class names are not the XAMI ones, a split
        folder is missing, or a label line is malformed (the message names the file and line).
    """
    root = Path(root)
    config = _read_data_yaml(root / "data.yaml")
    splits, dirs = {}, {}
    for key in _YAML_KEYS:
        if key in config:
            name = _split_folder(root / "data.yaml", key, config[key])
            dirs[name] = join_inside(root, name, "images", source=root / "data.yaml", what=key)
            if not dirs[name].is_dir():
                raise DatasetError(root / "data.yaml", f"{key}: folder {dirs[name]} not found")
            splits[name] = _read_split(root / name)
    return Dataset(splits, dirs)


def _read_data_yaml(path: Path) -> dict[str, Any]:
    """Parse ``data.yaml`` and check its class names."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except yaml.YAMLError as err:
        raise DatasetError(path, f"not a YAML file ({err})") from None
    if not isinstance(config, dict):
        raise DatasetError(path, "top level is not a mapping")
    names = config.get("names", yolo_names())
    if isinstance(names, list):
        names = dict(enumerate(names))
    if names != yolo_names():
        raise DatasetError(path, f"names {names!r} are not the XAMI classes {yolo_names()!r}")
    return config


def _split_folder(path: Path, key: str, value: Any) -> str:
    """Split folder name of a data.yaml entry (``.../valid/images`` -> ``valid``)."""
    if not isinstance(value, str) or not value:
        raise DatasetError(path, f"{key}: {value!r} is not a folder path")
    parts = Path(value).parts
    return parts[-2] if parts[-1] == "images" and len(parts) > 1 else parts[-1]


def _read_split(split_dir: Path) -> tuple[ImageRecord, ...]:
    """Records of one split folder, images in sorted order."""
    image_dir = split_dir / "images"
    files = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    records, next_id = [], 1
    for image_id, path in enumerate(files):
        rel = path.relative_to(image_dir)
        height, width = _image_size(path)
        label = split_dir / "labels" / rel.with_suffix(".txt")
        anns = _read_label(label, height, width, first_id=next_id)
        next_id += len(anns)
        records.append(ImageRecord(rel.as_posix(), height, width, anns, image_id,
                                   frame_meta(rel.name)))
    return tuple(records)


def _image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the image header (Pillow reads no pixels)."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except OSError as err:
        raise DatasetError(path, f"cannot read image header ({err})") from None


def _read_label(path: Path, height: int, width: int, *,
                first_id: int) -> tuple[Annotation, ...]:
    """Annotations of one label file (none when the file is missing, as in ultralytics)."""
    if not path.is_file():
        return ()
    lines = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    anns = []
    for number, parts in enumerate(lines, start=1):
        if parts:
            category, polygon = _parse_line(path, number, parts, height, width)
            anns.append(Annotation(category, (polygon,), first_id + len(anns)))
    return tuple(anns)


def _parse_line(path: Path, number: int, parts: list[str], height: int,
                width: int) -> tuple[int, np.ndarray]:
    """COCO id and pixel polygon of one label line."""
    where = f"line {number}"
    if not parts[0].isdigit() or int(parts[0]) not in BY_YOLO_INDEX:
        raise DatasetError(path, f"{where}: class {parts[0]!r} is not a YOLO index "
                                 f"{sorted(BY_YOLO_INDEX)}")
    try:
        coords = [float(v) for v in parts[1:]]
    except ValueError:
        raise DatasetError(path, f"{where}: coordinates are not numbers") from None
    if len(coords) % 2 or len(coords) < 6:
        raise DatasetError(path, f"{where}: {len(coords)} coordinates; a polygon needs an even "
                                 "number, at least 3 points")
    if not all(math.isfinite(v) for v in coords):
        raise DatasetError(path, f"{where}: non-finite coordinate")
    polygon = np.asarray(coords, dtype=np.float64).reshape(-1, 2) * (width, height)
    return BY_YOLO_INDEX[int(parts[0])].coco_id, polygon

