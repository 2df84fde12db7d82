"""COCO average precision of predictions against a ground-truth COCO file (pycocotools)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from xami.classes import CLASSES


def coco_ap(gt_json: str | os.PathLike[str], results: Sequence[dict[str, Any]], *,
            iou_type: str = "segm") -> dict[str, Any]:
    """Mask (or box) AP of COCO results entries, overall and per class.

    Parameters
    ----------
    gt_json : str or os.PathLike
        Ground-truth COCO file (the XAMI layout; category 0 is ignored).
    results : sequence of dict
        COCO results entries (``Instances.to_coco``), ``image_id`` matching the ground truth.
    iou_type : {"segm", "bbox"}
        Evaluate masks or boxes.

    Returns
    -------
    dict
        ``AP`` (0.5:0.95), ``AP50``, ``AP75`` and ``per_class`` ``{name: {AP, AP50, AP75}}``,
        values in 0..1 (NaN where a class has no ground truth), as pycocotools computes them.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        dt = gt.loadRes(list(results)) if results else COCO()
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.catIds = [c.coco_id for c in CLASSES]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    per_class = {c.name: _ap_triplet(precision[:, :, k:k + 1]) for k, c in enumerate(CLASSES)}
    return {**_ap_triplet(precision), "per_class": per_class}


def _ap_triplet(precision: np.ndarray) -> dict[str, float]:
    """AP over IoU 0.5:0.95, at 0.5 and at 0.75 (all areas, 100 detections) like pycocotools."""
    def mean(p: np.ndarray) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else float("nan")

    p = precision[:, :, :, 0, -1]
    return {"AP": mean(p), "AP50": mean(p[0]), "AP75": mean(p[5])}
