"""COCO reader and writer: round trip, released (Roboflow) form, RLE, and every validation error."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from _data_factory import box_mask, instance_set, tiny_records
from xami.classes import coco_categories
from xami.data.coco import read_coco, write_coco
from xami.data.records import Annotation, ImageRecord
from xami.errors import DatasetError
from xami.structures import encode_rle

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

ROBOFLOW_NAME = "S0606430401_U_png.rf.3f2a9c1b7d5e.jpg"


def roboflow_json() -> dict[str, Any]:
    """A COCO file exactly in the Roboflow export form of the released XAMI dataset."""
    return {
        "info": {"year": "2024", "version": "3", "description": "Exported from roboflow.com"},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/",
                      "name": "CC BY 4.0"}],
        "categories": [{"id": 0, "name": "artefacts", "supercategory": "none"},
                       {"id": 1, "name": "central-ring", "supercategory": "artefacts"},
                       {"id": 2, "name": "other", "supercategory": "artefacts"},
                       {"id": 3, "name": "read-out-streak", "supercategory": "artefacts"},
                       {"id": 4, "name": "smoke-ring", "supercategory": "artefacts"},
                       {"id": 5, "name": "star-loop", "supercategory": "artefacts"}],
        "images": [{"id": 0, "license": 1, "file_name": ROBOFLOW_NAME, "height": 512,
                    "width": 512, "date_captured": "2024-02-26T13:59:24+00:00"},
                   {"id": 1, "license": 1, "file_name": "S0743200101_V_png.rf.aa11.jpg",
                    "height": 512, "width": 512, "date_captured": "2024-02-26T13:59:24+00:00"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 5, "bbox": [100, 120, 60.5, 40],
             "area": 1210.5, "segmentation": [[100.25, 120, 160.75, 121.5, 150, 160.125]],
             "iscrowd": 0},
            {"id": 1, "image_id": 0, "category_id": 3, "bbox": [250, 0, 9, 512],
             "area": 4608, "segmentation": [[250, 0, 259, 0, 259, 512, 250, 512]], "iscrowd": 0},
            {"id": 3, "image_id": 0, "category_id": 1, "bbox": [240, 240, 30, 30],
             "area": 700, "segmentation": [[240, 240, 270, 240, 270, 270, 240, 270]],
             "iscrowd": 0},
        ],
    }


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON (NaN allowed, as Python writes it)."""
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_round_trip_is_exact_and_bytes_are_deterministic(tmp_path: Path) -> None:
    records = tiny_records()["train"]
    write_coco(records, tmp_path / "a.json")
    back = read_coco(tmp_path / "a.json")
    assert [r.file_name for r in back] == [r.file_name for r in records]
    assert instance_set(back).keys() == instance_set(records).keys()
    for name, pairs in instance_set(records).items():
        for (c0, p0), (c1, p1) in zip(pairs, instance_set(back)[name], strict=True):
            assert c0 == c1 and np.array_equal(p0, p1)
    assert back[0].meta == {"obs_id": "0000000001", "filter": "U", "exposure": 4000.0}
    write_coco(back, tmp_path / "b.json")
    write_coco(back, tmp_path / "c.json")
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "c.json").read_bytes()


def test_written_fields_area_bbox_categories_and_ids(tmp_path: Path) -> None:
    records = tiny_records()["train"]
    write_coco(records, tmp_path / "a.json")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["categories"] == coco_categories()
    assert [img["id"] for img in data["images"]] == [0, 1, 2]
    assert [a["id"] for a in data["annotations"]] == [1, 2, 3, 4]
    streak = data["annotations"][0]
    assert streak["bbox"] == [4.0, 0.0, 2.0, 24.0]
    assert streak["area"] == 48 and streak["iscrowd"] == 0
    two_part = data["annotations"][3]
    assert len(two_part["segmentation"]) == 2
    assert two_part["area"] == 4 * 7 + 5 * 8
    assert two_part["bbox"] == [2.0, 2.0, 28.0, 18.0]


def test_released_roboflow_form(tmp_path: Path) -> None:
    path = write_json(tmp_path / "_annotations.coco.json", roboflow_json())
    records = read_coco(path)
    assert len(records) == 2 and records[1].annotations == ()
    rec = records[0]
    assert rec.meta == {"obs_id": "0606430401", "filter": "U", "license": 1,
                        "date_captured": "2024-02-26T13:59:24+00:00"}
    assert [a.category_id for a in rec.annotations] == [5, 3, 1]
    assert [a.ann_id for a in rec.annotations] == [0, 1, 3]
    np.testing.assert_array_equal(rec.annotations[0].polygons[0],
                                  [[100.25, 120], [160.75, 121.5], [150, 160.125]])
    write_coco(records, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["images"][0]["file_name"] == ROBOFLOW_NAME
    assert out["images"][0]["date_captured"] == "2024-02-26T13:59:24+00:00"
    assert [a["id"] for a in out["annotations"]] == [0, 1, 3]
    assert out["annotations"][0]["bbox"] == [100.25, 120.0, 60.5, 40.125]


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_segmentation_becomes_exact_polygons(tmp_path: Path, compressed: bool) -> None:
    data = roboflow_json()
    mask = np.zeros((512, 512), dtype=bool)
    mask[10:30, 40:45] = True
    mask[12:14, 45:60] = True
    rle = encode_rle(mask)
    if not compressed:
        rle = {"size": [512, 512], "counts": _uncompressed_counts(mask)}
    data["annotations"][1]["segmentation"] = rle
    data["annotations"][1]["iscrowd"] = 1
    rec = read_coco(write_json(tmp_path / "rle.json", data))[0]
    np.testing.assert_array_equal(rec.annotations[1].mask(512, 512), mask)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs starting with zeros)."""
    flat = mask.T.reshape(-1).astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes])).tolist()


def test_uncompressed_counts_helper_matches_pycocotools() -> None:
    mask = box_mask(2, 5, 3, 9)
    rle = mask_utils.frPyObjects({"size": list(mask.shape), "counts": _uncompressed_counts(mask)},
                                 *mask.shape)
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), mask)


def _set(data: dict[str, Any], where: str, value: Any) -> None:
    """Set ``data[a][i][b] = value`` for ``where = 'a.i.b'`` (``del`` when value is ...)."""
    keys: list[Any] = [int(k) if k.isdigit() else k for k in where.split(".")]
    target = data
    for key in keys[:-1]:
        target = target[key]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


ERRORS = [
    ("images", ..., r"missing or non-list 'images'"),
    ("annotations", {"a": 1}, r"missing or non-list 'annotations'"),
    ("categories", ..., r"missing or non-list 'categories'"),
    ("annotations.2.category_id", 7, r"annotation 3: unknown category_id 7"),
    ("annotations.2.category_id", 0, r"annotation 3: unknown category_id 0"),
    ("annotations.2.image_id", 99, r"annotation 3: image_id 99 is not an image"),
    ("annotations.2.bbox", [1, 2, 3], r"annotation 3: bbox is not a list of 4 numbers"),
    ("annotations.2.bbox", [1, 2, 3, float("inf")], r"annotation 3: bbox has a non-finite"),
    ("annotations.2.segmentation", [[1, 2, 3, 4, 5, 6, 7]],
     r"annotation 3: segmentation\[0\] has 7 coordinates"),
    ("annotations.2.segmentation", [[1, 2, 3, 4]],
     r"annotation 3: segmentation\[0\] has 4 coordinates.*at least 3 points"),
    ("annotations.2.segmentation", [[1, 2, 3, float("nan"), 5, 6]],
     r"annotation 3: segmentation\[0\] has a non-finite"),
    ("annotations.2.segmentation", [[1, 2, 3, "4", 5, 6]],
     r"annotation 3: segmentation\[0\] has a non-finite or non-numeric value '4'"),
    ("annotations.2.segmentation", [], r"annotation 3: segmentation is missing or empty"),
    ("annotations.2.segmentation", {"size": [10, 10], "counts": "abc"},
     r"annotation 3: RLE segmentation needs 'counts' and size \[512, 512\]"),
    ("annotations.2.id", 1, r"duplicate annotation id 1"),
    ("annotations.2.id", "3", r"annotation id '3' is not an integer"),
    ("images.1.id", 0, r"duplicate image id 0"),
    ("images.1.height", -5, r"image 1: height -5 is not a positive integer"),
    ("images.1.file_name", None, r"image 1: file_name None"),
    ("categories.3.name", "streak",
     r"category 3 is named 'streak', released name is 'read-out-streak'"),
    ("categories.3.id", 9, r"category id 9 is not a released XAMI category"),
]


@pytest.mark.parametrize(("where", "value", "match"), ERRORS)
def test_validation_errors_name_the_file_and_the_item(tmp_path: Path, where: str, value: Any,
                                                      match: str) -> None:
    data = copy.deepcopy(roboflow_json())
    _set(data, where, value)
    path = write_json(tmp_path / "bad_annotations.json", data)
    with pytest.raises(DatasetError, match=re.escape(str(path)) + ": " + match):
        read_coco(path)


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{oops", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"broken\.json: not a JSON file"):
        read_coco(path)
    with pytest.raises(DatasetError, match=r"absent\.json: file not found"):
        read_coco(tmp_path / "absent.json")


def test_missing_size_is_read_from_the_image_header(tmp_path: Path) -> None:
    data = roboflow_json()
    del data["images"][1]["height"], data["images"][1]["width"]
    Image.new("RGB", (40, 30)).save(tmp_path / data["images"][1]["file_name"])
    rec = read_coco(write_json(tmp_path / "a.json", data))[1]
    assert (rec.height, rec.width) == (30, 40)
    with pytest.raises(DatasetError, match=r"image 1: no height/width and image file"):
        read_coco(tmp_path / "a.json", image_dir=tmp_path / "elsewhere")


def test_write_refuses_an_annotation_without_polygon(tmp_path: Path) -> None:
    rec = ImageRecord("S0000000001_U.jpg", 8, 8, (Annotation(2, (), 7),))
    with pytest.raises(ValueError, match=r"S0000000001_U\.jpg: annotation 7 \(category 2\) has no"):
        write_coco([rec], tmp_path / "a.json")
    assert not (tmp_path / "a.json").exists()
