"""The five XMM-OM artefact classes: the one table every other part of xami derives from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArtefactClass:
    """One artefact class.

    Attributes
    ----------
    coco_id : int
        Category id in the released COCO files (1..5; 0 is the unused super-category).
    yolo_index : int
        Class index in the released YOLO-seg labels (``coco_id - 1``).
    name : str
        Category name as released (``"read-out-streak"``...).
    short : str
        Two-letter abbreviation used in tables and headers.
    colour : tuple of int
        RGB colour the dataset authors used for this class.
    fits_bit : int
        Bit of the 16-bit QUALITY-style mask: the SAS bit where SAS has one, else new bit 10 or 11.
    description : str
        What the artefact is, in one line.
    """

    coco_id: int
    yolo_index: int
    name: str
    short: str
    colour: tuple[int, int, int]
    fits_bit: int
    description: str

    @property
    def flag(self) -> int:
        """Value of this class's bit in a QUALITY-style integer mask (``1 << fits_bit``)."""
        return 1 << self.fits_bit


CLASSES: tuple[ArtefactClass, ...] = (
    ArtefactClass(1, 0, "central-ring", "CR", (1, 252, 214), 5,
                  "scattered background light near the field centre (SAS central enhancement)"),
    ArtefactClass(2, 1, "other", "OT", (255, 128, 1), 11,
                  "other scattered light, usually large diffuse areas"),
    ArtefactClass(3, 2, "read-out-streak", "ROS", (20, 77, 158), 1,
                  "column streak through a bright source (photons arriving during frame transfer)"),
    ArtefactClass(4, 3, "smoke-ring", "SR", (159, 21, 100), 2,
                  "out-of-focus ghost of a bright star, displaced radially outward"),
    ArtefactClass(5, 4, "star-loop", "SL", (255, 188, 248), 10,
                  "looping or elongated scattered light from bright stars 12'-15' off-axis"),
)

SUPERCATEGORY = "artefacts"
"""Name of the unused COCO category 0 in the released files."""

BY_COCO_ID: dict[int, ArtefactClass] = {c.coco_id: c for c in CLASSES}
BY_YOLO_INDEX: dict[int, ArtefactClass] = {c.yolo_index: c for c in CLASSES}
BY_NAME: dict[str, ArtefactClass] = {c.name: c for c in CLASSES}
BY_SHORT: dict[str, ArtefactClass] = {c.short: c for c in CLASSES}

TABLE3_ORDER: tuple[str, ...] = ("CR", "SR", "SL", "ROS", "OT")
"""Short names in the row order of the paper's Table 3 (metrics tables and plots follow it)."""


def coco_categories() -> list[dict[str, object]]:
    """Return the ``categories`` list exactly as in the released COCO files.

    Returns
    -------
    list of dict
        Category 0 ``artefacts`` (supercategory ``"none"``) followed by the five classes
        (supercategory ``"artefacts"``), in COCO id order.

    Examples
    --------
    >>> [c["name"] for c in coco_categories()][:2]
    ['artefacts', 'central-ring']
    """
    cats: list[dict[str, object]] = [{"id": 0, "name": SUPERCATEGORY, "supercategory": "none"}]
    cats += [{"id": c.coco_id, "name": c.name, "supercategory": SUPERCATEGORY} for c in CLASSES]
    return cats


def yolo_names() -> dict[int, str]:
    """Return the ``names`` mapping of a YOLO-seg ``data.yaml`` (index -> name)."""
    return {c.yolo_index: c.name for c in CLASSES}
