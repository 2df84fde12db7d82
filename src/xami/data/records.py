"""The one internal dataset record format; COCO and YOLO-seg live only in their converters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xami.data.files import join_inside
from xami.data.polygons import polygons_to_mask


@dataclass(frozen=True)
class Annotation:
    """One annotated artefact instance.

    Parameters
    ----------
    category_id : int
        COCO category id (1..5, see `xami.classes`).
    polygons : tuple of numpy.ndarray
        Outline(s), each ``float64 [K, 2]`` of ``(x, y)`` vertices in pixels (COCO convention: pixel
        ``(r, c)`` covers ``x in [c, c+1)``); several polygons form one instance.
    ann_id : int
        Annotation id (unique within a dataset split; 0 when not yet assigned).
    iscrowd : bool
        COCO ``iscrowd``: an ignore region (several instances drawn as one), not an instance.
    """

    category_id: int
    polygons: tuple[np.ndarray, ...]
    ann_id: int = 0
    iscrowd: bool = False

    @property
    def bbox(self) -> np.ndarray:
        """Tight XYXY box of all vertices, ``float64 [4]``."""
        pts = np.concatenate(self.polygons, axis=0)
        return np.concatenate([pts.min(axis=0), pts.max(axis=0)])

    def mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise the polygons to a boolean ``[height, width]`` mask."""
        return polygons_to_mask(self.polygons, height, width)


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset and its annotations.

    Parameters
    ----------
    file_name : str
        Image file name relative to the split folder (``S0743200101_V.jpg``).
    height, width : int
        Image size in pixels.
    annotations : tuple of Annotation
        The image's instances (empty for a negative image).
    image_id : int
        COCO image id.
    meta : Mapping
        Facts about the image (``obs_id``, ``filter``, ``exposure``...), JSON-serialisable.
    source : pathlib.Path, optional
        Where the image file is when it is not ``image_dirs[split] / file_name`` (a re-split
        dataset pools images from several folders). Not written to any annotation file.
    """

    file_name: str
    height: int
    width: int
    annotations: tuple[Annotation, ...] = ()
    image_id: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    @property
    def stem(self) -> str:
        """File name without its extension."""
        return self.file_name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Dataset:
    """Images and annotations grouped in named splits (``train``, ``valid``, optionally ``test``).

    Parameters
    ----------
    splits : Mapping[str, tuple of ImageRecord]
        The records of each split.
    image_dirs : Mapping[str, pathlib.Path]
        The folder holding the image files of each split (``file_name`` is relative to it).
    """

    splits: Mapping[str, tuple[ImageRecord, ...]]
    image_dirs: Mapping[str, Path]

    def records(self) -> list[tuple[str, ImageRecord]]:
        """All ``(split, record)`` pairs, in split order."""
        return [(name, rec) for name, recs in self.splits.items() for rec in recs]

    def image_path(self, split: str, record: ImageRecord) -> Path:
        """Path of the image file of ``record`` in ``split``."""
        if record.source is not None:
            return Path(record.source)
        return join_inside(self.image_dirs[split], record.file_name)
