"""Placing image files into a dataset layout: hard links where possible, copies otherwise; paths
read from data files (COCO ``file_name``, data.yaml split folders) kept inside their folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath, PureWindowsPath

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


def _leaving_problem(name: str) -> str | None:
    """Why a relative path read from a data file could leave its folder (None: it cannot).

    Checked on the name itself, with ``\\`` read as a separator too: an absolute path, a drive
    or ``..`` anywhere. Symbolic links the user made inside the folders are not second-guessed.
    """
    parts = PurePosixPath(name.replace("\\", "/"))
    if not parts.parts:
        return "names no file"
    if parts.is_absolute() or PureWindowsPath(name).drive:
        return "is an absolute path"
    if ".." in parts.parts:
        return "goes up with '..'"
    return None


def join_inside(folder: str | os.PathLike[str], *names: str,
                source: str | os.PathLike[str] | None = None, what: str = "file_name") -> Path:
    """``folder / names...``, where the names come from a data file and must stay in ``folder``.

    Every place that joins a path taken from a data file goes through here, so that a COCO
    ``file_name`` such as ``../x.png`` or ``/etc/x.png`` can neither read nor write outside the
    dataset and output folders.

    Parameters
    ----------
    folder : str or os.PathLike
        The dataset or output folder.
    *names : str
        Relative path parts (a split, a ``file_name``...).
    source : str or os.PathLike, optional
        The data file the names come from, named in the error (default: ``folder``).
    what : str
        What the names are, for the error (``"image 3: file_name"``).

    Returns
    -------
    pathlib.Path
        ``folder`` joined with ``names``.

    Raises
    ------
    DatasetError
        If a name is empty, ``.``, absolute or holds ``..``; the message names ``source``,
        ``what`` and the offending name.

    Examples
    --------
    >>> join_inside("out", "train", "S0743200101_V.jpg")
    PosixPath('out/train/S0743200101_V.jpg')
    """
    for name in names:
        problem = _leaving_problem(name)
        if problem is not None:
            raise DatasetError(source if source is not None else folder,
                               f"{what} {name!r} {problem}; it must stay inside {folder}")
    return Path(folder).joinpath(*names)
