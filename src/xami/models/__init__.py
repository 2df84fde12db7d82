"""The models: the detector (YOLOv8-seg) and the segmentor (MobileSAM prompted by boxes), each on
a torch or an ONNX Runtime engine; `xami.models.build` loads them.

The names below are imported on first use, so that ``xami.models.build`` and the ONNX Runtime
detector are importable without PyTorch (the ``xami[train]`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BoxSegmentor": "xami.models.box_segmentor",
    "SAM_REGISTRY": "xami.models.sam",
    "Segmentor": "xami.models.segmentor",
    "SegmentorConfig": "xami.models.box_segmentor",
    "build_sam": "xami.models.sam",
    "build_segmentor": "xami.models.segmentor",
    "load_detector": "xami.models.build",
    "load_segmentor": "xami.models.build",
    "prepare_image": "xami.models.box_segmentor",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the torch-backed names lazily (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xami.models' has no attribute {name!r}")
