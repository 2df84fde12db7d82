"""Inputs of ``xami predict``: paths, folders, globs and list files; reading one image."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.data.yolo import IMAGE_SUFFIXES
from xami.errors import InputError
from xami.io.fits import FITS_SUFFIXES, is_fits_name, read_om_image, split_selector
from xami.io.images import read_frame
from xami.preprocess import flip_wcs_rows, preprocess_om_image, read_sidecar, rebin_wcs
from xami.products import MaskGrid

MASK_GRIDS: tuple[str, ...] = ("frame", "native")
"""``frame``: masks on the 512 frame the models saw; ``native``: on the input FITS image's grid."""


def expand_inputs(items: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Input files from paths, folders, glob patterns and list files.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Each is a file (FITS, optionally with an ``[HDU]`` selector, or PNG/JPEG), a folder (its
        FITS and image files, sorted, not recursive), a glob pattern (``obs/**/*.FIT``, sorted), or
        a list file ending in ``.txt``/``.lst`` with one path per line (blank lines and ``#``
        comments ignored; relative paths are relative to the list file).

    Returns
    -------
    list of str
        Inputs in order, duplicates dropped. Files that do not exist are kept: they fail later
        with a reason, like any unreadable input.

    Raises
    ------
    xami.errors.InputError
        A glob pattern matches nothing, a folder holds no input file, or a list file is
        unreadable.
    """
    out: list[str] = []
    for item in map(str, items):
        if Path(item).is_dir():
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and _is_input_name(p.name))
            if not found:
                raise InputError(item, "folder holds no FITS or image file")
        elif any(ch in item for ch in "*?[") and not Path(split_selector(item)[0]).exists():
            found = sorted(glob.glob(item, recursive=True))
            if not found:
                raise InputError(item, "pattern matches no file")
        elif item.lower().endswith((".txt", ".lst")):
            found = _read_list(Path(item))
        else:
            found = [item]
        out += [f for f in found if f not in out]
    return out


def _is_input_name(name: str) -> bool:
    """Whether a file name has a FITS or image ending."""
    return name.lower().endswith(FITS_SUFFIXES + IMAGE_SUFFIXES)


def _read_list(path: Path) -> list[str]:
    """The paths of a list file (relative ones resolved against its folder)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read list file ({err})") from None
    entries = [line.strip() for line in lines]
    return [str(path.parent / e) if not Path(e).is_absolute() else e
            for e in entries if e and not e.startswith("#")]


@dataclass(frozen=True)
class LoadedInput:
    """An input image ready for the models, with what its products need."""

    frame: np.ndarray
    grid: MaskGrid
    cards: dict[str, Any]


def load_input(spec: str, *, mask_grid: str = "frame") -> LoadedInput:
    """Read one input: a FITS image is rebinned and stretched as in ``xami preprocess``.

    A 2048 (or any multiple of 512) FITS image becomes the 512 frame; other FITS sizes are
    stretched at their own size. A PNG/JPEG frame is used as it is, with the WCS and stretch of
    its ``xami preprocess`` sidecar (``NAME.json`` beside it) when there is one.

    Parameters
    ----------
    spec : str
        Input file, FITS optionally with ``[HDU]``.
    mask_grid : str
        One of `MASK_GRIDS` (``native`` only differs from ``frame`` for rebinned FITS inputs).

    Returns
    -------
    LoadedInput
        The ``uint8`` frame, the mask grid and the cards for the FITS product.

    Raises
    ------
    xami.errors.XamiError
        The file cannot be read (the message names the file and the problem).
    """
    if not is_fits_name(spec):
        frame = read_frame(spec)
        sidecar_path = Path(spec).with_suffix(".json")
        if not sidecar_path.is_file():
            return LoadedInput(frame, MaskGrid(1, None), {"SRCFILE": Path(spec).name})
        sidecar, wcs = read_sidecar(sidecar_path)
        grid_wcs = None if wcs is None else flip_wcs_rows(wcs, frame.shape[0])
        stretch = sidecar.get("stretch", {})
        cards = {"SRCFILE": Path(spec).name, **_stretch_cards(stretch), **sidecar.get("header", {})}
        return LoadedInput(frame, MaskGrid(1, grid_wcs, int(stretch.get("factor", 1))), cards)
    om = read_om_image(spec)
    frame = preprocess_om_image(om)
    factor = frame.params.factor
    cards = {"SRCFILE": Path(om.path).name, "SRCHDU": str(om.hdu),
             **_stretch_cards(asdict(frame.params)), **frame.header}
    if mask_grid == "native":
        grid = MaskGrid(factor, om.wcs, 1)
    else:
        grid = MaskGrid(1, None if om.wcs is None else rebin_wcs(om.wcs, factor), factor)
    return LoadedInput(frame.image, grid, cards)


def _stretch_cards(stretch: dict[str, Any]) -> dict[str, Any]:
    """FITS cards of a stretch's parameters."""
    keys = {"asinh_a": "ASINH_A", "vmin": "ZSVMIN", "vmax": "ZSVMAX", "factor": "REBIN",
            "contrast": "ZSCONTR"}
    return {"STRETCH": "zscale+asinh",
            **{card: stretch[k] for k, card in keys.items() if k in stretch}}
