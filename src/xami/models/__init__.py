"""The models: the detector (ultralytics) and the segmentor (MobileSAM prompted by boxes)."""

from xami.models.sam import SAM_REGISTRY, build_sam
from xami.models.segmentor import (
    Segmentor,
    SegmentorConfig,
    build_segmentor,
    load_segmentor,
    prepare_image,
)

__all__ = [
    "SAM_REGISTRY",
    "Segmentor",
    "SegmentorConfig",
    "build_sam",
    "build_segmentor",
    "load_segmentor",
    "prepare_image",
]
