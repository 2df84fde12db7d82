"""Instances and box conversions on hand-computed tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from xami.structures import Instances, masks_to_boxes, xywh_to_xyxy, xyxy_to_xywh

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def test_box_conversions_round_trip():
    xyxy = np.array([[1.0, 2.0, 4.0, 7.0]])
    assert xyxy_to_xywh(xyxy).tolist() == [[1.0, 2.0, 3.0, 5.0]]
    assert xywh_to_xyxy(xyxy_to_xywh(xyxy)).tolist() == xyxy.tolist()


def test_masks_to_boxes_uses_pixel_edges():
    m = np.zeros((2, 6, 6), bool)
    m[0, 1:3, 2:5] = True  # rows 1-2, cols 2-4
    assert masks_to_boxes(m).tolist() == [[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 0.0, 0.0]]


def test_indexing_len_and_empty():
    m = np.zeros((3, 4, 5), bool)
    m[:, 1, 1] = True
    inst = Instances.from_masks(m, labels=[1, 3, 5], scores=[0.1, 0.5, 0.9])
    assert len(inst) == 3 and inst.image_size == (4, 5)
    sub = inst[inst.scores > 0.3]
    assert sub.labels.tolist() == [3, 5]
    assert len(inst[1]) == 1 and inst[1].labels.tolist() == [3]
    empty = Instances.empty(4, 5)
    assert len(empty) == 0 and empty.masks.shape == (0, 4, 5) and empty.to_coco(1) == []


def test_to_coco_entries_decode_to_the_masks():
    m = np.zeros((1, 8, 8), bool)
    m[0, 2:4, 3:6] = True
    (entry,) = Instances.from_masks(m, labels=[4], scores=[0.75]).to_coco(image_id=7)
    assert entry["image_id"] == 7 and entry["category_id"] == 4 and entry["score"] == 0.75
    assert entry["bbox"] == [3.0, 2.0, 3.0, 2.0] and entry["area"] == 6
    rle = dict(entry["segmentation"], counts=entry["segmentation"]["counts"].encode())
    assert (mask_utils.decode(rle).astype(bool) == m[0]).all()


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="same length"):
        Instances(np.zeros((2, 4)), np.zeros((1, 3, 3), bool), [1, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"masks must be \[N, H, W\]"):
        Instances(np.zeros((1, 4)), np.zeros((3, 3), bool), [1], [0.5])
