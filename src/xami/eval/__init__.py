"""Evaluation: COCO mask and box AP (pycocotools), precision/recall and mean IoU."""

from xami.eval.average_precision import coco_ap
from xami.eval.metrics import Evaluation, evaluate
from xami.eval.results import read_results

__all__ = ["Evaluation", "coco_ap", "evaluate", "read_results"]
