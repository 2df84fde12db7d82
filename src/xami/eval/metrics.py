"""Evaluate predictions against a COCO ground truth: AP, precision/recall and mean IoU.

The figures follow the paper (Table 3, mean IoU per image, IoU CDF); where the authors' definition
differs from the standard one, both are given under distinct names (``AP`` and
``AP50_90_paper``). `xami.report.evaluation` writes them to files.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from xami import __version__
from xami.classes import CLASSES
from xami.data.coco import read_coco
from xami.data.records import ImageRecord
from xami.eval.average_precision import coco_ap
from xami.eval.matching import hungarian_match, mask_iou_matrix
from xami.eval.results import read_results
from xami.structures import decode_rle

PR_IOUS = (0.5, 0.2)
"""IoU thresholds of precision/recall: the usual 0.5 and the authors' 0.2."""


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` finds: the metrics and the IoUs of the matched pairs behind them."""

    metrics: dict[str, Any]
    """The metrics (see `evaluate`), as ``metrics.json`` holds them (NaN there as ``null``)."""
    matched_iou: dict[str, list[float]]
    """``class name -> IoU`` of each matched prediction / ground-truth pair (``score >= conf``),
    all classes, in COCO id order."""


def evaluate(gt_json: str | os.PathLike[str],
             predictions: str | os.PathLike[str] | Sequence[Mapping[str, Any]], *,
             conf: float = 0.2) -> Evaluation:
    """Mask and box AP, precision/recall and mean IoU of predictions on a COCO ground truth.

    AP is pycocotools' over all predictions. Precision/recall and IoU use predictions with
    ``score >= conf`` only: per image and class, predicted masks are matched one-to-one to
    ground-truth masks by the Hungarian algorithm on mask IoU (`hungarian_match`, pairs with
    IoU 0 are not matches); a matched pair with IoU >= the threshold is a true positive,
    ``FP = n_pred - TP`` and ``FN = n_gt - TP``. The IoU of an image is that of the union of its
    predicted masks with the union of its ground-truth masks, all classes together (the paper's
    mean IoU); an image with neither is skipped (its IoU is undefined), one with only one of the
    two has IoU 0.

    Parameters
    ----------
    gt_json : str or os.PathLike
        Ground-truth COCO file, validated by `xami.data.coco.read_coco`.
    predictions : str, os.PathLike or sequence of dict
        COCO results JSON file or its entries (`Instances.to_coco`): ``image_id`` of the ground
        truth, ``category_id`` 1..5, ``score``, ``bbox`` ``[x, y, w, h]``, RLE ``segmentation``.
    conf : float, optional
        Score threshold of precision/recall and IoU, in [0, 1] (0.2, the paper's).

    Returns
    -------
    Evaluation
        ``matched_iou``: the IoU of each matched pair, per class; ``metrics``, a dict:
        ``segm`` and ``bbox``: `coco_ap` (``AP``, ``AP50``, ``AP75``, ``AP50_90_paper``,
        ``small``/``medium``/``large``, ``per_class``); ``mean_iou``, ``mean_iou_std``
        (population std over the images that count); ``precision_recall``:
        ``{"iou_0.5": ..., "iou_0.2": ...}``, each ``{"per_class": {name: {precision, recall,
        tp, fp, fn}}, "mean": {precision, recall}}`` (``mean``: unweighted over the classes where
        the ratio is defined); ``per_image_iou``: ``[{image_id, file_name, iou}]`` (``iou`` None
        when skipped); ``conf``, ``images``, ``images_in_mean_iou``, ``provenance``. Ratios in
        0..1, NaN where undefined (no ground truth, no prediction).

    Raises
    ------
    DatasetError
        If the ground truth or the predictions are malformed (the message names the file).
    ValueError
        If ``conf`` is not a number in [0, 1].

    Examples
    --------
    >>> m = evaluate("valid/_annotations.coco.json", "predictions.json").metrics  # doctest: +SKIP
    >>> m["segm"]["AP50"], m["mean_iou"]  # doctest: +SKIP
    (0.791, 0.658)
    """
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 1:
        raise ValueError(f"conf must be a number in [0, 1], got {conf!r}")
    records = read_coco(gt_json)
    results = read_results(predictions, {r.image_id: (r.height, r.width) for r in records})
    tally = _tally(records, [r for r in results if r["score"] >= conf])
    ious = [v for v in tally.image_iou if v is not None]
    metrics = {
        "segm": coco_ap(gt_json, results, iou_type="segm"),
        "bbox": coco_ap(gt_json, results, iou_type="bbox"),
        "mean_iou": float(np.mean(ious)) if ious else math.nan,
        "mean_iou_std": float(np.std(ious)) if ious else math.nan,
        "precision_recall": {f"iou_{t}": _precision_recall(tally, t) for t in PR_IOUS},
        "conf": float(conf),
        "images": len(records),
        "images_in_mean_iou": len(ious),
        "per_image_iou": [{"image_id": r.image_id, "file_name": r.file_name, "iou": v}
                          for r, v in zip(records, tally.image_iou, strict=True)],
        "provenance": _provenance(gt_json, predictions),
    }
    return Evaluation(metrics, {c.name: tally.matched[c.coco_id] for c in CLASSES})


_IDS = tuple(c.coco_id for c in CLASSES)


@dataclass
class _Tally:
    """Per-class prediction and ground-truth counts, matched-pair IoUs, and per-image IoUs."""

    n_pred: dict[int, int] = field(default_factory=lambda: dict.fromkeys(_IDS, 0))
    n_gt: dict[int, int] = field(default_factory=lambda: dict.fromkeys(_IDS, 0))
    matched: dict[int, list[float]] = field(default_factory=lambda: {i: [] for i in _IDS})
    image_iou: list[float | None] = field(default_factory=list)


def _tally(records: Sequence[ImageRecord], results: Sequence[Mapping[str, Any]]) -> _Tally:
    """Match every image's predictions to its ground truth, class by class."""
    by_image: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in results:
        by_image[entry["image_id"]].append(entry)
    tally = _Tally()
    for rec in records:
        gt_masks = _stack([a.mask(rec.height, rec.width) for a in rec.annotations], rec)
        gt_labels = np.array([a.category_id for a in rec.annotations], dtype=np.int64)
        entries = by_image[rec.image_id]
        masks = _stack([decode_rle(e["segmentation"]) for e in entries], rec)
        labels = np.array([e["category_id"] for e in entries], dtype=np.int64)
        tally.image_iou.append(_union_iou(masks, gt_masks))
        for cid in _IDS:
            iou = mask_iou_matrix(masks[labels == cid], gt_masks[gt_labels == cid])
            rows, cols = hungarian_match(iou)
            tally.matched[cid] += iou[rows, cols].tolist()
            tally.n_pred[cid] += iou.shape[0]
            tally.n_gt[cid] += iou.shape[1]
    return tally


def _stack(masks: list[np.ndarray], rec: ImageRecord) -> np.ndarray:
    """``bool [N, H, W]`` masks of one image, ``[0, H, W]`` when there are none."""
    return np.stack(masks) if masks else np.zeros((0, rec.height, rec.width), dtype=bool)


def _union_iou(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """IoU of the union of the predicted masks with that of the ground truth; None if both empty."""
    union_pred, union_gt = pred.any(axis=0), gt.any(axis=0)
    if not (union_pred.any() or union_gt.any()):
        return None
    return float(mask_iou_matrix(union_pred[None], union_gt[None])[0, 0])


def _precision_recall(tally: _Tally, threshold: float) -> dict[str, Any]:
    """Per-class TP/FP/FN, precision and recall at one IoU threshold, and their class means."""
    per_class = {}
    for c in CLASSES:
        tp = int(np.count_nonzero(np.asarray(tally.matched[c.coco_id]) >= threshold))
        n_pred, n_gt = tally.n_pred[c.coco_id], tally.n_gt[c.coco_id]
        per_class[c.name] = {"precision": _ratio(tp, n_pred), "recall": _ratio(tp, n_gt),
                             "tp": tp, "fp": n_pred - tp, "fn": n_gt - tp}
    mean = {key: _mean_defined([v[key] for v in per_class.values()])
            for key in ("precision", "recall")}
    return {"per_class": per_class, "mean": mean}


def _ratio(num: int, den: int) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return num / den if den else math.nan


def _mean_defined(values: Sequence[float]) -> float:
    """Mean of the non-NaN values (NaN when there are none), without numpy's empty-mean warning."""
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def _provenance(gt_json: str | os.PathLike[str],
                predictions: str | os.PathLike[str] | Sequence[Mapping[str, Any]]
                ) -> dict[str, str]:
    """Version, inputs and time of the evaluation."""
    source = "(in-memory list)" if isinstance(predictions, list | tuple) else str(predictions)
    return {"xami_version": __version__, "gt": str(gt_json), "predictions": source,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
