"""Dataset tools: one internal record format, COCO and YOLO-seg converters, splits, statistics."""

from xami.data.coco import COCO_FILE_NAME, read_coco, write_coco
from xami.data.loading import load_dataset, write_dataset
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.data.yolo import read_yolo, write_yolo

__all__ = [
    "COCO_FILE_NAME",
    "Annotation",
    "Dataset",
    "ImageRecord",
    "load_dataset",
    "read_coco",
    "read_yolo",
    "write_coco",
    "write_dataset",
    "write_yolo",
]
