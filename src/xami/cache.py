"""Where xami caches things: its cache folder (fetched weights, ultralytics' settings) and the
files exported from a checkpoint (ONNX graphs), keyed by the checkpoint's SHA-256."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from xami.io.atomic import file_sha256

CACHE_DIR_ENV = "XAMI_CACHE_DIR"


def cache_dir() -> Path:
    """xami's cache folder: ``$XAMI_CACHE_DIR`` or ``~/.cache/xami``."""
    return Path(os.environ.get(CACHE_DIR_ENV, Path.home() / ".cache" / "xami")).expanduser()


def file_key(path: str | os.PathLike[str]) -> str:
    """The first 16 hex digits of a file's SHA-256: the cache key of what is exported from it."""
    return file_sha256(path)[:16]


def export_folder(source: str | os.PathLike[str], names: list[str]) -> Path:
    """Where the files ``names`` exported from ``source`` live.

    Beside ``source`` when they are all there already or the folder is writable; otherwise
    ``$XAMI_CACHE_DIR/onnx`` (default ``~/.cache/xami/onnx``).

    Parameters
    ----------
    source : str or os.PathLike
        The file they are exported from (a checkpoint).
    names : list of str
        Their file names (which carry `file_key` of ``source``).

    Returns
    -------
    pathlib.Path
        The folder, not necessarily existing yet.
    """
    folder = Path(source).resolve().parent
    if all((folder / name).is_file() for name in names) or _writable(folder):
        return folder
    return cache_dir() / "onnx"


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried, as permissions can mislead)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
