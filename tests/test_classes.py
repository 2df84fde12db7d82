"""The class table matches MISSION.md exactly; every lookup derives from it."""

from __future__ import annotations

import pytest

from xami.classes import BY_COCO_ID, BY_NAME, BY_YOLO_INDEX, CLASSES, coco_categories, yolo_names

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def test_table_is_the_released_one():
    rows = [(c.coco_id, c.yolo_index, c.name, c.short, c.colour, c.fits_bit) for c in CLASSES]
    assert rows == [
        (1, 0, "central-ring", "CR", (1, 252, 214), 5),
        (2, 1, "other", "OT", (255, 128, 1), 11),
        (3, 2, "read-out-streak", "ROS", (20, 77, 158), 1),
        (4, 3, "smoke-ring", "SR", (159, 21, 100), 2),
        (5, 4, "star-loop", "SL", (255, 188, 248), 10),
    ]


def test_lookups_and_flags():
    assert BY_COCO_ID[5] is BY_YOLO_INDEX[4] is BY_NAME["star-loop"]
    assert BY_NAME["read-out-streak"].flag == 2 and BY_NAME["other"].flag == 2048


def test_coco_categories_as_released():
    cats = coco_categories()
    assert cats[0] == {"id": 0, "name": "artefacts", "supercategory": "none"}
    assert [(c["id"], c["name"], c["supercategory"]) for c in cats[1:]] == [
        (1, "central-ring", "artefacts"), (2, "other", "artefacts"),
        (3, "read-out-streak", "artefacts"), (4, "smoke-ring", "artefacts"),
        (5, "star-loop", "artefacts"),
    ]
    assert yolo_names() == {0: "central-ring", 1: "other", 2: "read-out-streak",
                            3: "smoke-ring", 4: "star-loop"}
