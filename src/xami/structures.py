"""Instances (the result of every model) and the one place where box formats are converted.

Conventions, stated once for the whole package:

- Images are arrays indexed ``(row, col)``; row 0 is the top of the frame as displayed (the
  released XAMI frames; FITS data, whose row 0 is the bottom, are flipped by preprocessing).
- Pixel ``(r, c)`` covers ``x in [c, c + 1)``, ``y in [r, r + 1)``; its centre is
  ``(c + 0.5, r + 0.5)`` (the COCO convention).
- Boxes are ``XYXY`` in absolute pixels of the image they refer to; the tight box of a mask that
  spans columns ``c0..c1`` and rows ``r0..r1`` is ``(c0, r0, c1 + 1, r1 + 1)``.
- COCO ``[x, y, w, h]`` and YOLO normalised coordinates appear only in the converters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Convert ``[N, 4]`` XYXY boxes to COCO ``[x, y, w, h]``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``[N, 4]`` COCO ``[x, y, w, h]`` boxes to XYXY."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight XYXY boxes ``[N, 4]`` of boolean masks ``[N, H, W]`` (all zeros for an empty mask)."""
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((len(masks), 4), dtype=np.float64)
    for i, m in enumerate(masks):
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if rows.size:
            boxes[i] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def decode_rle(segmentation: Mapping[str, Any]) -> np.ndarray:
    """Boolean ``[H, W]`` mask of a COCO RLE (``counts`` a compressed string or a list of runs)."""
    height, width = segmentation["size"]
    counts = segmentation["counts"]
    if isinstance(counts, str):
        rle = {"size": [height, width], "counts": counts.encode("ascii")}
    else:
        rle = mask_utils.frPyObjects(dict(segmentation), height, width)
    return mask_utils.decode(rle).astype(bool)


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO run-length encoding of one boolean ``[H, W]`` mask, with ``counts`` as a JSON string."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


@dataclass
class Instances:
    """Artefact instances found in (or annotated on) one image.

    Parameters
    ----------
    boxes : numpy.ndarray
        ``float64 [N, 4]`` XYXY boxes in absolute pixels of the image.
    masks : numpy.ndarray
        ``bool [N, H, W]`` instance masks at the image's size.
    labels : numpy.ndarray
        ``int64 [N]`` COCO category ids (1..5, see `xami.classes`).
    scores : numpy.ndarray
        ``float64 [N]`` confidence of each instance in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 8, 8), bool); m[0, 2:4, 3:6] = True
    >>> inst = Instances.from_masks(m, labels=[3], scores=[0.9])
    >>> inst.boxes.tolist(), len(inst)
    ([[3.0, 2.0, 6.0, 4.0]], 1)
    """

    boxes: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.masks = np.asarray(self.masks, dtype=bool)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.masks.ndim != 3:
            raise ValueError(f"masks must be [N, H, W], got shape {self.masks.shape}")
        n = len(self.boxes)
        lengths = {len(self.masks), len(self.labels), len(self.scores)}
        if lengths != {n}:
            raise ValueError(
                f"boxes, masks, labels and scores must have the same length, got {n}, "
                f"{len(self.masks)}, {len(self.labels)}, {len(self.scores)}"
            )
        self.image_size = (int(self.masks.shape[1]), int(self.masks.shape[2]))

    @classmethod
    def empty(cls, height: int, width: int) -> Instances:
        """No instances on an image of ``height x width`` pixels."""
        return cls(np.zeros((0, 4)), np.zeros((0, height, width), bool), np.zeros(0), np.zeros(0))

    @classmethod
    def from_masks(cls, masks: np.ndarray, labels: Any, scores: Any | None = None) -> Instances:
        """Instances whose boxes are the tight boxes of ``masks`` (scores default to 1)."""
        masks = np.asarray(masks, dtype=bool)
        scores = np.ones(len(masks)) if scores is None else scores
        return cls(masks_to_boxes(masks), masks, labels, scores)

    @classmethod
    def concatenate(cls, parts: list[Instances]) -> Instances:
        """The instances of all ``parts`` (non-empty list, one image size), in their order."""
        return cls(np.concatenate([p.boxes for p in parts]),
                   np.concatenate([p.masks for p in parts]),
                   np.concatenate([p.labels for p in parts]),
                   np.concatenate([p.scores for p in parts]))

    def check_image(self, image: np.ndarray) -> None:
        """Raise ValueError unless ``image`` (``[H, W]`` or ``[H, W, C]``) has the masks' size."""
        if tuple(np.shape(image)[:2]) != self.image_size:
            raise ValueError(f"masks {self.image_size} and image {np.shape(image)[:2]} must "
                             "have one size")

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Instances:
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return Instances(self.boxes[index], self.masks[index], self.labels[index],
                         self.scores[index])

    def to_coco(self, image_id: int) -> list[dict[str, Any]]:
        """Return COCO results entries, one per instance, with RLE masks.

        Parameters
        ----------
        image_id : int
            The ``image_id`` to write in every entry.

        Returns
        -------
        list of dict
            Entries with ``image_id``, ``category_id``, ``bbox`` (``[x, y, w, h]``), ``score``,
            ``area`` and ``segmentation`` (RLE with string counts), JSON-serialisable.
        """
        xywh = xyxy_to_xywh(self.boxes)
        return [
            {
                "image_id": int(image_id),
                "category_id": int(label),
                "bbox": [float(v) for v in box],
                "score": float(score),
                "area": int(mask.sum()),
                "segmentation": encode_rle(mask),
            }
            for box, mask, label, score in zip(xywh, self.masks, self.labels, self.scores,
                                               strict=True)
        ]
