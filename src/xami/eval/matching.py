"""Mask IoU matrices and Hungarian matching of predicted to ground-truth instances.

Used by the combined training stage (detector boxes -> SAM masks matched to the ground truth) and by
evaluation. Matching is a discrete choice made on detached values, so it is numpy only: the loss is
then computed in torch on the matched pairs (``logits[rows]`` against ``targets[cols]``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _flatten_masks(masks: np.ndarray, name: str) -> np.ndarray:
    """``[K, H, W]`` masks as ``float64 [K, H * W]``, rejecting other ranks by name."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"{name} must be [K, H, W] masks, got shape {masks.shape}")
    return masks.reshape(masks.shape[0], masks.shape[1] * masks.shape[2]).astype(np.float64)


def mask_iou_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of every predicted mask with every ground-truth mask.

    ``IoU = sum(p g) / (sum p + sum g - sum(p g))``, computed for all pairs at once with one matrix
    product. For boolean masks this is the usual pixel IoU; for soft masks in ``[0, 1]`` it is the
    soft IoU used by the IoU-head loss. A pair whose union is empty (two empty masks) has IoU 0.

    Parameters
    ----------
    pred : numpy.ndarray
        ``bool`` or ``float [N, H, W]`` predicted masks.
    gt : numpy.ndarray
        ``bool`` or ``float [M, H, W]`` ground-truth masks, same ``H, W``.

    Returns
    -------
    numpy.ndarray
        ``float64 [N, M]``; shape ``(0, M)`` or ``(N, 0)`` when either side is empty.

    Raises
    ------
    ValueError
        If either input is not ``[K, H, W]`` or the image sizes differ.

    Examples
    --------
    >>> a = np.zeros((1, 2, 2), bool); a[0, 0] = True   # top row
    >>> b = np.zeros((1, 2, 2), bool); b[0, :, 0] = True  # left column
    >>> mask_iou_matrix(a, b).round(4).tolist()  # 1 shared pixel / 3 in the union
    [[0.3333]]
    """
    p, g = _flatten_masks(pred, "pred"), _flatten_masks(gt, "gt")
    if np.shape(pred)[1:] != np.shape(gt)[1:]:
        raise ValueError(
            f"pred and gt masks must have one image size, got {np.shape(pred)[1:]} and "
            f"{np.shape(gt)[1:]}"
        )
    inter = p @ g.T
    union = p.sum(axis=1)[:, None] + g.sum(axis=1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def hungarian_match(iou: np.ndarray, *, min_iou: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of predictions to ground truth that maximises the total IoU.

    Solves the assignment with `scipy.optimize.linear_sum_assignment` (Kuhn-Munkres, as in the
    paper), then drops matched pairs with ``IoU <= min_iou``: with the default 0, pairs that do not
    overlap are not matches. Rectangular matrices match ``min(N, M)`` pairs before dropping. The
    assignment maximises the summed IoU; it is not re-solved after dropping, so a threshold above 0
    can leave fewer matches than the best possible count above that threshold.

    Parameters
    ----------
    iou : numpy.ndarray
        ``float [N, M]`` IoU of prediction ``i`` with ground truth ``j`` (e.g. `mask_iou_matrix`).
    min_iou : float, optional
        Pairs with IoU at or below this value are dropped.

    Returns
    -------
    rows, cols : numpy.ndarray
        ``int64 [K]`` indices of the matched predictions and ground truths, ``rows`` ascending.

    Raises
    ------
    ValueError
        If ``iou`` is not a 2-D array of finite values.

    Examples
    --------
    >>> hungarian_match(np.array([[0.9, 0.8], [0.85, 0.0]]))  # greedy would take 0.9 alone
    (array([0, 1]), array([1, 0]))
    """
    iou = np.asarray(iou, dtype=np.float64)
    if iou.ndim != 2:
        raise ValueError(f"iou must be a 2-D [N, M] matrix, got shape {iou.shape}")
    if not np.isfinite(iou).all():
        raise ValueError("iou must hold only finite values")
    if iou.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    keep = iou[rows, cols] > min_iou
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
