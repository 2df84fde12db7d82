"""Placing image files into a dataset layout: hard links where possible, copies otherwise."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from xami.errors import DatasetError
from xami.io.atomic import atomic_path


def place_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Make ``dst`` a hard link to ``src`` (a copy across file systems); nothing if they are one.

    Parameters
    ----------
    src : str or os.PathLike
        Existing image file.
    dst : str or os.PathLike
        Target path (folders are created; an existing different file is replaced atomically).

    Raises
    ------
    DatasetError
        If ``src`` is not a file.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise DatasetError(src, "image file not found")
    if dst.exists() and os.path.samefile(src, dst):
        return
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
