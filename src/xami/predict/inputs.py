"""Inputs of ``xami predict``: paths, folders, globs and list files; reading one image."""

from __future__ import annotations

import errno
import glob
import itertools
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.errors import InputError
from xami.io.fits import FITS_SUFFIXES, is_fits_name, read_om_image, split_selector
from xami.io.images import IMAGE_SUFFIXES, read_frame
from xami.predict.image_result import _SUFFIX, _read_record
from xami.preprocess import flip_wcs_rows, preprocess_om_image, read_sidecar, rebin_wcs
from xami.products import MaskGrid

MASK_GRIDS: tuple[str, ...] = ("frame", "native")
"""``frame``: masks on the 512 frame the models saw; ``native``: on the input FITS image's grid."""


PRODUCT_SUFFIX = ".xami.fits"
"""The ending of xami's FITS products, which are never inputs."""


@dataclass(frozen=True)
class FoundInput:
    """An input `find_inputs` found: a file, or an item that cannot be one and why.

    Attributes
    ----------
    spec : str
        The file (FITS optionally with ``[HDU]``) or the item as given.
    problem : str or None
        Why it cannot be an input (None: it is one, to be read).
    """

    spec: str
    problem: str | None = None


def find_inputs(items: Iterable[str | os.PathLike[str]], *,
                out: str | os.PathLike[str] | None = None) -> list[FoundInput]:
    """Input files from paths, folders, glob patterns and list files, and the items that fail.

    xami's own products are never inputs: ``*.xami.fits`` files, the files a run folder's
    records list as its outputs (the overlay ``NAME.png`` beside ``records/NAME.json``), and,
    when found by a folder or a pattern, any file inside the run folder ``out`` (except the
    files right in it when the folder or the pattern's fixed part is ``out`` itself, as in
    ``xami predict DIR --out DIR``). A named product, a symbolic link loop, a folder named like an
    image, a pattern or folder that yields no file and an unreadable list file each come back
    with their problem, so that a run reports them and does the rest.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        As for `expand_inputs`.
    out : str or os.PathLike, optional
        The run folder the inputs are predicted into.

    Returns
    -------
    list of FoundInput
        In order, duplicates dropped. Files that do not exist are kept without a problem: they
        fail when read, with a reason, like any unreadable input.
    """
    run = None if out is None else os.path.realpath(out)
    found: dict[str, FoundInput] = {}
    for item in map(str, items):
        for entry in _expand(item, run):
            found.setdefault(entry.spec, entry)
    return list(found.values())


def expand_inputs(items: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Input files from paths, folders, globs and list files.

    Parameters
    ----------
    items : iterable of str or os.PathLike
        Each is a file (FITS, optionally with an ``[HDU]`` selector, or PNG/JPEG), a folder (its
        FITS and image files, sorted, not recursive), a glob pattern (``obs/**/*.FIT``, sorted), or
        a list file ending in ``.txt``/``.lst`` with one path per line (blank lines and ``#``
        comments ignored; relative paths are relative to the list file). xami's own products
        are left out (`find_inputs`).

    Returns
    -------
    list of str
        Inputs in order, duplicates dropped. Files that do not exist are kept: they fail later
        with a reason, like any unreadable input.

    Raises
    ------
    xami.errors.InputError
        The first item that cannot be used (`find_inputs`): a glob pattern matches no file, a
        folder holds no input file, a list file is unreadable...
    """
    found = find_inputs(items)
    for entry in found:
        if entry.problem is not None:
            raise InputError(entry.spec, entry.problem)
    return [entry.spec for entry in found]


def _expand(item: str, run: str | None) -> list[FoundInput]:
    """The inputs one item stands for (a folder, a pattern, a list file or a file)."""
    if Path(item).is_dir():
        return _folder(Path(item), run)
    if any(ch in item for ch in "*?[") and not os.path.lexists(split_selector(item)[0]):
        matches = sorted(glob.glob(item, recursive=True))
        base = os.path.realpath(Path(*itertools.takewhile(
            lambda part: not glob.has_magic(part), Path(item).parts)))
        kept = [m for m in matches if not _is_product(m, run, found_in=base)]
        if not kept:
            return [FoundInput(item, "pattern matches no file" if not matches
                               else "pattern matches only xami's own products")]
        return [_check(m) for m in kept]
    if item.lower().endswith((".txt", ".lst")):
        try:
            return [_check(entry) for entry in _read_list(Path(item))]
        except InputError as err:
            return [FoundInput(item, err.problem)]
    return [_check(item)]


def _folder(folder: Path, run: str | None) -> list[FoundInput]:
    """The input-named entries of a folder, less xami's products."""
    try:
        names = sorted(p.name for p in folder.iterdir() if _is_input_name(p.name))
    except OSError as err:
        return [FoundInput(str(folder), f"cannot list the folder ({err.strerror})")]
    kept = [str(folder / n) for n in names
            if not _is_product(str(folder / n), run, found_in=os.path.realpath(folder))]
    if not kept:
        return [FoundInput(str(folder), "folder holds no FITS or image file")]
    return [_check(spec) for spec in kept]


def _check(spec: str) -> FoundInput:
    """A named file, with its problem when it plainly is not an input image."""
    path = split_selector(spec)[0]
    if _is_product(path, None, found_in=None):
        return FoundInput(spec, "an xami product (the output of a run), not an input image")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return FoundInput(spec, "symbolic link loop")
        return FoundInput(spec)  # missing: read later, failing with its reason
    if stat.S_ISDIR(mode):
        return FoundInput(spec, "a folder, not a FITS or image file")
    return FoundInput(spec)


def _is_product(path: str, run: str | None, *, found_in: str | None) -> bool:
    """Whether a file is one of xami's own products (never an input)."""
    if Path(path).name.lower().endswith(PRODUCT_SUFFIX):
        return True
    real = os.path.realpath(path)
    if run is not None and real.startswith(run + os.sep) and (
            found_in != run or os.path.dirname(real) != run):
        return True  # in the run folder, not looked for there; or in its records, plots...
    return _listed_output(Path(path))


def _listed_output(path: Path) -> bool:
    """Whether the records of the folder holding ``path`` list it as a run's output."""
    for suffix in _SUFFIX.values():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            record = _read_record(path.parent / "records" / f"{path.name[:-len(suffix)]}.json")
            if isinstance(record, dict) and path.name in (record.get("outputs") or {}).values():
                return True
    return False


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
        sidecar_path = _sidecar(spec)
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


def input_files(spec: str) -> list[Path]:
    """The files `load_input` reads for an input: the file, and a frame's sidecar if any.

    Parameters
    ----------
    spec : str
        Input file, FITS optionally with ``[HDU]``.

    Returns
    -------
    list of pathlib.Path
        The file (without its ``[HDU]``), then the sidecar ``NAME.json`` of a PNG/JPEG frame
        when it exists.
    """
    path = Path(split_selector(spec)[0])
    if is_fits_name(spec) or not _sidecar(spec).is_file():
        return [path]
    return [path, _sidecar(spec)]


def _sidecar(spec: str) -> Path:
    """Where a PNG/JPEG frame's ``xami preprocess`` sidecar would be."""
    return Path(spec).with_suffix(".json")


def _stretch_cards(stretch: dict[str, Any]) -> dict[str, Any]:
    """FITS cards of a stretch's parameters."""
    keys = {"asinh_a": "ASINH_A", "vmin": "ZSVMIN", "vmax": "ZSVMAX", "factor": "REBIN",
            "contrast": "ZSCONTR"}
    return {"STRETCH": "zscale+asinh",
            **{card: stretch[k] for k, card in keys.items() if k in stretch}}
