"""Load a dataset from what the user points at (COCO, YOLO-seg, a json, the XAMI zip); write one.

The released ``xami_dataset.zip`` is extracted once, safely (no absolute paths, ``..`` or links),
into a cache folder ``NAME.extracted/`` beside the zip (or in ``cache_dir``); a marker file holding
the zip's size and modification time makes later loads reuse it and a changed zip re-extract.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from xami.data.coco import COCO_FILE_NAME, read_coco, write_coco
from xami.data.files import join_inside, place_file
from xami.data.records import Dataset
from xami.data.yolo import read_yolo, write_yolo
from xami.errors import DatasetError, UsageError

SPLIT_ORDER = ("train", "valid", "test")
"""Order of the known splits; other split folders follow in name order."""

LAYOUTS = ("coco", "yolo")
_MARKER = ".xami-extracted"


def load_dataset(path: str | os.PathLike[str], *,
                 cache_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load a dataset, detecting its layout.

    Parameters
    ----------
    path : str or os.PathLike
        One of: a COCO folder (``{train,valid,test}/_annotations.coco.json`` beside the images,
        or a single ``_annotations.coco.json`` or other ``*.coco.json``, the images beside it or
        in ``images/``); a folder holding ``coco/`` (as written by
        ``xami simulate``); a YOLO-seg folder (``data.yaml``); a COCO json file; the released
        ``xami_dataset.zip``; or a folder whose only sub-folder is one of these.
    cache_dir : str or os.PathLike, optional
        Where a zip is extracted (default: beside the zip).

    Returns
    -------
    Dataset
        A single-file COCO dataset has one split, named after its folder when that is ``train``,
        ``valid`` or ``test``, else ``all``.

    Raises
    ------
    DatasetError
        If nothing at ``path`` is a dataset, or a file of it is malformed.

    Examples
    --------
    >>> ds = load_dataset("xami_dataset.zip")  # doctest: +SKIP
    >>> {split: len(recs) for split, recs in ds.splits.items()}  # doctest: +SKIP
    {'train': 791, 'valid': 264}
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return _load_folder(_extract_zip(path, Path(cache_dir or path.parent)), path)
    if path.is_file():
        return _single_coco(path)
    if path.is_dir():
        return _load_folder(path, path)
    raise DatasetError(path, "no such file or folder")


def _single_coco(json_path: Path) -> Dataset:
    """A dataset of one split from one COCO file (images beside it, or in ``images/``)."""
    folder = json_path.parent
    split = folder.name if folder.name in SPLIT_ORDER else "all"
    records = read_coco(json_path)
    image_dir = folder
    if records and not (folder / records[0].file_name).is_file() \
            and (folder / "images" / records[0].file_name).is_file():
        image_dir = folder / "images"
    return Dataset({split: records}, {split: image_dir})


def _load_folder(folder: Path, asked: Path) -> Dataset:
    """Detect the layout of a folder (``asked`` is what the user named, for the error)."""
    if (folder / "data.yaml").is_file():
        return read_yolo(folder)
    split_dirs = [d for d in _subfolders(folder) if (d / COCO_FILE_NAME).is_file()]
    if split_dirs:
        split_dirs.sort(key=_split_key)
        return Dataset({d.name: read_coco(d / COCO_FILE_NAME) for d in split_dirs},
                       {d.name: d for d in split_dirs})
    if (folder / COCO_FILE_NAME).is_file():
        return _single_coco(folder / COCO_FILE_NAME)
    if (folder / "coco").is_dir():
        return _load_folder(folder / "coco", asked)
    coco_files = sorted(folder.glob("*.coco.json"))
    if len(coco_files) == 1:
        return _single_coco(coco_files[0])
    subfolders = _subfolders(folder)
    if len(subfolders) == 1:
        return _load_folder(subfolders[0], asked)
    raise DatasetError(asked, "not a dataset: expected data.yaml (YOLO-seg), "
                              f"{{train,valid,test}}/{COCO_FILE_NAME} or {COCO_FILE_NAME} (COCO), "
                              "a coco/ folder, or the XAMI zip")


def _subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted (``__MACOSX`` and dot folders skipped)."""
    return sorted(d for d in folder.iterdir()
                  if d.is_dir() and not d.name.startswith((".", "__MACOSX")))


def _split_key(folder: Path) -> tuple[int, str]:
    """Known splits first, in `SPLIT_ORDER`."""
    name = folder.name
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


def _extract_zip(zip_path: Path, cache_dir: Path) -> Path:
    """Extract once into ``cache_dir/NAME.extracted`` and return that folder."""
    target = cache_dir / f"{zip_path.stem}.extracted"
    stat = zip_path.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}\n"
    marker = target / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=cache_dir))
    try:
        _safe_extract(zip_path, tmp)
        (tmp / _MARKER).write_text(stamp, encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _safe_extract(zip_path: Path, out: Path) -> None:
    """Extract every member, refusing absolute paths, ``..`` and symbolic links."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename.replace("\\", "/"))
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if name.is_absolute() or ".." in name.parts or is_link:
                    raise DatasetError(zip_path, f"unsafe member {info.filename!r} "
                                                 "(absolute path, '..' or link)")
            zf.extractall(out)
    except zipfile.BadZipFile as err:
        raise DatasetError(zip_path, f"not a zip file ({err})") from None


def write_dataset(dataset: Dataset, out: str | os.PathLike[str], *, layout: str) -> None:
    """Write a dataset in the COCO or YOLO-seg layout.

    Parameters
    ----------
    dataset : Dataset
        The dataset; its images are hard-linked (copied across file systems) into ``out``,
        and left alone when they already are the target files.
    out : str or os.PathLike
        Output folder: ``out/{split}/_annotations.coco.json`` beside the images (``"coco"``),
        or ``out/{split}/{images,labels}`` + ``out/data.yaml`` (``"yolo"``).
    layout : {"coco", "yolo"}
        Target layout.

    Raises
    ------
    xami.errors.UsageError
        If ``layout`` is not one of `LAYOUTS` (a `ValueError`).
    DatasetError
        If an image file is missing.

    Examples
    --------
    >>> write_dataset(load_dataset("sim/coco"), "sim/yolo", layout="yolo")  # doctest: +SKIP
    """
    if layout not in LAYOUTS:
        raise UsageError(None, f"layout must be one of {LAYOUTS}, got {layout!r}")
    out = Path(out)
    if layout == "yolo":
        write_yolo(dataset, out)
        return
    for split, records in dataset.splits.items():
        for rec in records:
            place_file(dataset.image_path(split, rec), join_inside(out, split, rec.file_name))
        write_coco(records, join_inside(out, split, COCO_FILE_NAME, what="split"))
