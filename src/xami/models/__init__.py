"""The models: the detector (ultralytics) and the segmentor (MobileSAM prompted by boxes).

The names below are imported on first use, so that ``xami.models.detector`` and
``xami.models.onnx`` are importable without PyTorch (the ``xami[train]`` extra).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SAM_REGISTRY": "xami.models.sam",
    "build_sam": "xami.models.sam",
    "Segmentor": "xami.models.segmentor",
    "SegmentorConfig": "xami.models.segmentor",
    "build_segmentor": "xami.models.segmentor",
    "load_segmentor": "xami.models.segmentor",
    "prepare_image": "xami.models.segmentor",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the torch-backed names lazily (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xami.models' has no attribute {name!r}")
