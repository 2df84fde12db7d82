"""Read and validate COCO results (predictions) against the images of a ground-truth file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xami.classes import BY_COCO_ID
from xami.errors import DatasetError

_KEYS = ("image_id", "category_id", "score", "bbox", "segmentation")


def read_results(predictions: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
                 image_sizes: Mapping[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """Validate COCO results entries (a JSON file or a list) against the ground-truth images.

    Parameters
    ----------
    predictions : str, os.PathLike or sequence of dict
        A COCO results JSON file, or its entries: each with ``image_id``, ``category_id``
        (1..5), ``score`` (finite), ``bbox`` (``[x, y, w, h]``, pixels) and ``segmentation`` (RLE,
        compressed string or uncompressed list ``counts``, ``size`` ``[height, width]``).
    image_sizes : Mapping[int, tuple[int, int]]
        ``image_id -> (height, width)`` of the ground-truth images.

    Returns
    -------
    list of dict
        New entries holding only the five keys above, in input order (the caller's are not
        modified).

    Raises
    ------
    DatasetError
        If the file is not JSON, the top level is not a list, or an entry has a missing or
        malformed key, an ``image_id`` not in the ground truth, an unknown ``category_id``, or
        an RLE that does not describe a ``height x width`` mask. The message names the file
        (when there is one), the entry's index and the problem.

    Examples
    --------
    >>> entries = read_results("predictions.json", {0: (512, 512)})  # doctest: +SKIP
    """
    path = None if isinstance(predictions, list | tuple) else Path(predictions)
    items = predictions if path is None else _load_list(path)
    if not isinstance(items, list | tuple):
        raise DatasetError(path, f"results must be a list of objects, got {type(items).__name__}")
    return [_entry(path, i, item, image_sizes) for i, item in enumerate(items)]


def _load_list(path: Path) -> Any:
    """The parsed JSON of a results file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetError(path, f"not a JSON file ({err})") from None


def _entry(path: Path | None, index: int, item: Any,
           image_sizes: Mapping[int, tuple[int, int]]) -> dict[str, Any]:
    """One validated results entry."""
    where = f"result {index}"
    if not isinstance(item, Mapping):
        raise DatasetError(path, f"{where} is not a JSON object")
    missing = [key for key in _KEYS if key not in item]
    if missing:
        raise DatasetError(path, f"{where}: missing {', '.join(repr(k) for k in missing)}")
    image_id, category_id = item["image_id"], item["category_id"]
    if not _is_int(image_id) or image_id not in image_sizes:
        raise DatasetError(path, f"{where}: image_id {image_id!r} is not an image of the "
                                 "ground truth")
    if not _is_int(category_id) or category_id not in BY_COCO_ID:
        raise DatasetError(path, f"{where}: unknown category_id {category_id!r} (artefact "
                                 f"classes are {sorted(BY_COCO_ID)})")
    if not _is_number(item["score"]):
        raise DatasetError(path, f"{where}: score {item['score']!r} is not a finite number")
    bbox = item["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_is_number, bbox))
            and bbox[2] >= 0 and bbox[3] >= 0):
        raise DatasetError(path, f"{where}: bbox {bbox!r} is not [x, y, w, h] with w, h >= 0")
    problem = _rle_problem(item["segmentation"], image_sizes[image_id])
    if problem:
        raise DatasetError(path, f"{where} (image {image_id}): bad RLE segmentation: {problem}")
    return {key: item[key] for key in _KEYS}


def _is_int(value: Any) -> bool:
    """True for a JSON integer (bool excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """True for a finite JSON number (bool excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rle_problem(seg: Any, size: tuple[int, int]) -> str | None:
    """What is wrong with an RLE for an image of ``size``, or None.

    pycocotools' C decoder trusts its input (it writes ``sum(counts)`` pixels and reads past the
    end of a truncated string), so the run lengths are checked here before it sees them.
    """
    if not isinstance(seg, Mapping) or "counts" not in seg or "size" not in seg:
        return "expected an object with 'counts' and 'size'"
    if not isinstance(seg["size"], list | tuple) or list(seg["size"]) != list(size):
        return f"size {seg['size']!r} is not the image's [{size[0]}, {size[1]}]"
    counts = seg["counts"]
    if isinstance(counts, str):
        try:
            counts = _string_counts(counts)
        except ValueError as err:
            return str(err)
    elif not (isinstance(counts, list) and all(_is_int(c) for c in counts)):
        return "counts is neither a string nor a list of integers"
    if any(c < 0 for c in counts) or sum(counts) != size[0] * size[1]:
        return f"run lengths do not add up to {size[0]} x {size[1]} pixels"
    return None


def _string_counts(text: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (LEB128-like, 6 bits per character)."""
    counts: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            raise ValueError(f"character {char!r} is not in the compressed RLE alphabet")
        value |= (code & 0x1F) << shift
        shift += 5
        if code & 0x20:
            continue
        if code & 0x10:
            value -= 1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if shift:
        raise ValueError("compressed RLE string ends inside a number")
    return counts
