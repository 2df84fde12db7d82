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
from xami.errors import DatasetError

SIZES = ("small", "medium", "large")
"""COCO area ranges (pixels): small < 32², medium 32²..96², large > 96² (pycocotools' labels)."""


def coco_ap(gt_json: str | os.PathLike[str], results: Sequence[dict[str, Any]], *,
            iou_type: str = "segm") -> dict[str, Any]:
    """Mask (or box) AP of COCO results entries: overall, per size and per class.

    Parameters
    ----------
    gt_json : str or os.PathLike
        Ground-truth COCO file (the XAMI layout; category 0 is ignored). Every annotation needs
        ``area`` and ``iscrowd``, as pycocotools reads them.
    results : sequence of dict
        COCO results entries (``Instances.to_coco``), ``image_id`` matching the ground truth. They
        are copied, not modified.
    iou_type : {"segm", "bbox"}
        Evaluate masks or boxes.

    Returns
    -------
    dict
        ``AP`` (IoU 0.5:0.95), ``AP50``, ``AP75`` and ``AP50_90_paper`` (the mean of AP at IoU 0.5
        and at IoU 0.9: what the XAMI authors report as "mAP50-90"); the same four keys under
        ``small``, ``medium``, ``large`` and under ``per_class[name]``. Values in 0..1, NaN where
        no ground truth falls in the class or size, as pycocotools computes them (all areas,
        100 detections per image and class; a detection's area is that of its ``bbox`` when the
        entry has one, as in pycocotools' ``loadRes``).

    Raises
    ------
    DatasetError
        If a ground-truth annotation lacks ``area`` or ``iscrowd``.

    Examples
    --------
    >>> coco_ap("valid/_annotations.coco.json", results)["per_class"]["star-loop"]["AP50"]
    ... # doctest: +SKIP
    0.846
    """
    evaluator = _evaluate(gt_json, results, iou_type)
    precision = evaluator.eval["precision"]  # [T, R, K, A, M]
    thresholds = evaluator.params.iouThrs
    sizes = {size: _ap_summary(precision, thresholds, area=a)
             for a, size in enumerate(SIZES, start=1)}
    per_class = {c.name: _ap_summary(precision[:, :, k:k + 1], thresholds)
                 for k, c in enumerate(CLASSES)}
    return {**_ap_summary(precision, thresholds), **sizes, "per_class": per_class}


def _evaluate(gt_json: str | os.PathLike[str], results: Sequence[dict[str, Any]],
              iou_type: str) -> COCOeval:
    """Run COCOeval over the five artefact classes, silencing pycocotools' printing."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        _check_gt_fields(gt_json, gt)
        dt = gt.loadRes([dict(r) for r in results]) if results else COCO()
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.catIds = [c.coco_id for c in CLASSES]
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _check_gt_fields(path: str | os.PathLike[str], gt: COCO) -> None:
    """COCOeval reads ``area`` and ``iscrowd`` of every ground-truth annotation."""
    for ann in gt.dataset["annotations"]:
        for key in ("area", "iscrowd"):
            if key not in ann:
                raise DatasetError(path, f"annotation {ann.get('id')!r}: no '{key}' "
                                         "(needed for COCO evaluation)")


def _ap_summary(precision: np.ndarray, thresholds: np.ndarray, *,
                area: int = 0) -> dict[str, float]:
    """AP over IoU 0.5:0.95, at 0.5, 0.75 and the authors' (0.5 + 0.9) / 2, like pycocotools."""
    def mean(p: np.ndarray) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else float("nan")

    p = precision[:, :, :, area, -1]
    at = {iou: mean(p[np.flatnonzero(np.isclose(thresholds, iou))]) for iou in (0.5, 0.75, 0.9)}
    return {"AP": mean(p), "AP50": at[0.5], "AP75": at[0.75],
            "AP50_90_paper": (at[0.5] + at[0.9]) / 2}
