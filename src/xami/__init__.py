"""xami: find, classify and mask instrumental artefacts in XMM-Newton Optical Monitor images.

The model-facing names (`load_detector`, `load_segmentor`, `Pipeline`, `load_input`, ...) are
imported on first use, so that ``import xami`` does not load PyTorch, ultralytics or astropy.
"""

from __future__ import annotations

import importlib
from typing import Any

from xami.classes import CLASSES, ArtefactClass
from xami.errors import InputError, NoDetectionsWarning, XamiError
from xami.structures import Instances

__version__ = "0.1.0"

_LAZY = {
    "Detector": "xami.models.detector",
    "load_detector": "xami.models.build",
    "load_input": "xami.io.frames",
    "Pipeline": "xami.pipeline",
    "PipelineSpec": "xami.pipeline",
    "Segmentor": "xami.models.segmentor",
    "load_segmentor": "xami.models.build",
}

__all__ = [
    "CLASSES",
    "ArtefactClass",
    "Detector",
    "InputError",
    "Instances",
    "NoDetectionsWarning",
    "Pipeline",
    "PipelineSpec",
    "Segmentor",
    "XamiError",
    "__version__",
    "load_detector",
    "load_input",
    "load_segmentor",
]


def __getattr__(name: str) -> Any:
    """Import the model-facing names lazily (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xami' has no attribute {name!r}")
