"""Dataset tools: one internal record format, COCO and YOLO-seg converters, splits, statistics."""

from xami.data.coco import COCO_FILE_NAME, read_coco, write_coco
from xami.data.loading import load_dataset, write_dataset
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.data.splits import kfold_assignments, split_dataset
from xami.data.stats import DatasetStats, compute_stats
from xami.data.yolo import read_yolo, write_yolo

__all__ = [
    "COCO_FILE_NAME",
    "Annotation",
    "Dataset",
    "DatasetStats",
    "ImageRecord",
    "compute_stats",
    "kfold_assignments",
    "load_dataset",
    "read_coco",
    "read_yolo",
    "split_dataset",
    "write_coco",
    "write_dataset",
    "write_yolo",
]
