"""xami's cache folder (ONNX exports, fetched weights, ultralytics' settings)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "XAMI_CACHE_DIR"


def cache_dir() -> Path:
    """xami's cache folder: ``$XAMI_CACHE_DIR`` or ``~/.cache/xami``."""
    return Path(os.environ.get(CACHE_DIR_ENV, Path.home() / ".cache" / "xami")).expanduser()
