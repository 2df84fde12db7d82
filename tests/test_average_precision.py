"""COCO AP equals pycocotools' own summary, per class and overall, empty cases included."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from xami.classes import coco_categories
from xami.data.polygons import mask_to_polygons
from xami.eval import coco_ap
from xami.structures import Instances

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def _gt(tmp_path, masks_per_image):
    images, anns = [], []
    for image_id, items in enumerate(masks_per_image, start=1):
        images.append({"id": image_id, "file_name": f"S000000000{image_id}_U.jpg",
                       "height": 32, "width": 32})
        for cat, mask in items:
            inst = Instances.from_masks(mask[None], [cat])
            poly = [p.ravel().tolist() for p in mask_to_polygons(mask)]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                         "bbox": inst.to_coco(image_id)[0]["bbox"], "area": int(mask.sum()),
                         "segmentation": poly, "iscrowd": 0})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": coco_categories()}))
    return path


def _box(r0, r1, c0, c1):
    m = np.zeros((32, 32), bool)
    m[r0:r1, c0:c1] = True
    return m


def _pycocotools_stats(gt_path, results, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.params.catIds = [1, 2, 3, 4, 5]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_equals_pycocotools_summary(tmp_path, iou_type):
    gt = _gt(tmp_path, [[(3, _box(0, 32, 4, 8)), (4, _box(10, 16, 10, 16))],
                        [(1, _box(12, 20, 12, 20))]])
    preds = Instances.from_masks(np.stack([_box(0, 32, 4, 9), _box(10, 15, 10, 16),
                                           _box(0, 5, 0, 5)]), [3, 4, 4], [0.9, 0.8, 0.3])
    results = preds.to_coco(1) + Instances.from_masks(_box(12, 19, 12, 20)[None], [1],
                                                      [0.6]).to_coco(2)
    ours = coco_ap(gt, results, iou_type=iou_type)
    stats = _pycocotools_stats(gt, results, iou_type)
    assert ours["AP"] == pytest.approx(stats[0], abs=1e-9)
    assert ours["AP50"] == pytest.approx(stats[1], abs=1e-9)
    assert ours["AP75"] == pytest.approx(stats[2], abs=1e-9)
    assert ours["per_class"]["central-ring"]["AP50"] == pytest.approx(1.0)
    assert math.isnan(ours["per_class"]["other"]["AP"])


def test_no_predictions_gives_zero_ap(tmp_path):
    gt = _gt(tmp_path, [[(3, _box(0, 32, 4, 8))]])
    ours = coco_ap(gt, [])
    assert ours["AP"] == 0.0 and ours["AP50"] == 0.0
