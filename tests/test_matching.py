"""Mask IoU matrix (hand-made masks, and pycocotools as the peer) and Hungarian matching."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from xami.eval.matching import hungarian_match, mask_iou_matrix

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def _masks(*slices: tuple[slice, slice], size: int = 4) -> np.ndarray:
    """Boolean ``[K, size, size]`` masks, one per (rows, cols) slice pair."""
    out = np.zeros((len(slices), size, size), bool)
    for k, (rows, cols) in enumerate(slices):
        out[k, rows, cols] = True
    return out


def test_mask_iou_matrix_hand_values() -> None:
    pred = _masks((slice(0, 1), slice(0, 4)), (slice(0, 4), slice(0, 1)))  # top row, left column
    gt = _masks((slice(0, 2), slice(0, 2)), (slice(0, 1), slice(0, 4)), (slice(3, 4), slice(3, 4)))
    # top row vs 2x2 corner: 2 / (4 + 4 - 2); vs top row: 1; vs pixel (3, 3): 0
    # left column vs corner: 2 / 6; vs top row: 1 / 7; vs pixel (3, 3): 0
    expected = np.array([[1 / 3, 1.0, 0.0], [1 / 3, 1 / 7, 0.0]])
    iou = mask_iou_matrix(pred, gt)
    assert iou.dtype == np.float64
    np.testing.assert_allclose(iou, expected, rtol=1e-15)


def test_mask_iou_matrix_soft_and_empty_masks() -> None:
    soft = np.array([[[0.5, 1.0]]])
    gt = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])
    # vs (1, 0): 0.5 / (1.5 + 1 - 0.5) = 1/4;  vs (0, 0): 0 / 1.5
    np.testing.assert_allclose(mask_iou_matrix(soft, gt), [[0.25, 0.0]])
    empty = np.zeros((1, 1, 2))
    assert mask_iou_matrix(empty, empty).tolist() == [[0.0]]  # empty union -> 0
    assert mask_iou_matrix(np.zeros((0, 3, 3), bool), _masks((0, 0), size=3)).shape == (0, 1)
    assert mask_iou_matrix(_masks((0, 0), size=3), np.zeros((0, 3, 3), bool)).shape == (1, 0)


def test_mask_iou_matrix_equals_pycocotools(rng) -> None:
    pred = rng.random((5, 16, 12)) > 0.6
    gt = rng.random((3, 16, 12)) > 0.5
    dt_rle = [mask_utils.encode(np.asfortranarray(m, dtype=np.uint8)) for m in pred]
    gt_rle = [mask_utils.encode(np.asfortranarray(m, dtype=np.uint8)) for m in gt]
    peer = mask_utils.iou(dt_rle, gt_rle, [0] * len(gt_rle))
    np.testing.assert_allclose(mask_iou_matrix(pred, gt), peer, rtol=0, atol=1e-12)


def test_mask_iou_matrix_errors() -> None:
    with pytest.raises(ValueError, match=r"pred must be \[K, H, W\] masks, got shape \(4, 4\)"):
        mask_iou_matrix(np.zeros((4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="one image size"):
        mask_iou_matrix(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))


def _greedy_total(iou: np.ndarray) -> float:
    """Total IoU of greedy matching (best remaining pair first), the baseline Hungarian beats."""
    iou, total = iou.copy(), 0.0
    while iou.size and iou.max() > 0:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        total += iou[i, j]
        iou[i, :], iou[:, j] = -1, -1
    return total


def test_hungarian_beats_greedy() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.0]])
    rows, cols = hungarian_match(iou)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [1, 0])
    assert iou[rows, cols].sum() == pytest.approx(1.65)  # 0.8 + 0.85
    assert _greedy_total(iou) == pytest.approx(0.9)  # 0.9, then only the 0.0 pair is left


def test_hungarian_rectangular_and_min_iou() -> None:
    iou = np.array([[0.6, 0.1], [0.2, 0.4], [0.0, 0.3]])
    rows, cols = hungarian_match(iou)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [0, 1])
    rows, cols = hungarian_match(iou, min_iou=0.5)
    assert (rows.tolist(), cols.tolist()) == ([0], [0])
    rows, cols = hungarian_match(np.array([[0.0, 0.0]]))  # IoU 0 is not a match
    assert rows.size == cols.size == 0


def test_hungarian_empty_inputs_and_errors() -> None:
    for shape in ((0, 3), (2, 0), (0, 0)):
        rows, cols = hungarian_match(np.zeros(shape))
        assert rows.dtype == cols.dtype == np.int64 and rows.size == cols.size == 0
    with pytest.raises(ValueError, match=r"iou must be a 2-D \[N, M\] matrix"):
        hungarian_match(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        hungarian_match(np.array([[np.nan]]))
