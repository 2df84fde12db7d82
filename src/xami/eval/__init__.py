"""Evaluation: COCO mask and box AP through pycocotools."""

from xami.eval.coco import coco_ap

__all__ = ["coco_ap"]
