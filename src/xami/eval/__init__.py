"""Evaluation: COCO mask and box AP (pycocotools), precision/recall, mean IoU and report files."""

from xami.eval.average_precision import coco_ap
from xami.eval.metrics import evaluate
from xami.eval.results import read_results

__all__ = ["coco_ap", "evaluate", "read_results"]
