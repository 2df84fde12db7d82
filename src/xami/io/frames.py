"""The input reader: FITS and PNG/JPEG files as the 8-bit frames the models read, and the frames
and JSON sidecars ``xami preprocess`` writes.

A FITS image (`xami.io.fits.read_om_image`) is rebinned and stretched by `xami.preprocess`; a
PNG/JPEG frame is read as it is, with the WCS and stretch of its sidecar ``NAME.json`` when one
lies beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from tqdm import tqdm

from xami import __version__
from xami.errors import FitsError, InputError, UsageError, XamiError
from xami.instrument import RELEASED_SIZE
from xami.io.atomic import write_text_atomic
from xami.io.fits import OMImage, is_fits_name, output_stem, read_om_image, split_selector
from xami.io.images import read_frame, write_frame
from xami.preprocess import Frame, frame_rebin_factor, preprocess_image
from xami.wcs import MaskGrid, flip_wcs_rows, rebin_wcs

MASK_GRIDS: tuple[str, ...] = ("frame", "native")
"""``frame`` (the default): masks on the 512 frame the models saw; ``native``: on the input FITS
image's grid."""

KEPT_CARDS: tuple[str, ...] = (
    "OBS_ID", "EXPIDSTR", "OBJECT", "FILTER", "EXPOSURE", "DATE-OBS", "DATE-END", "INSTRUME",
    "TELESCOP", "RA_PNT", "DEC_PNT", "PA_PNT", "BINAX1", "BINAX2",
)
"""Input header cards copied into the products and the sidecar of a frame when present."""

ORIENTATION = "row 0 = top (FITS rows flipped)"
"""Orientation note written into every sidecar."""


@dataclass(frozen=True)
class LoadedInput:
    """An input image ready for the models, with what its products need.

    Attributes
    ----------
    frame : numpy.ndarray
        ``uint8 [H, W]``, row 0 = top.
    grid : xami.wcs.MaskGrid
        The grid the mask products are written on, with its WCS.
    cards : dict
        FITS cards of the products: source file and HDU, stretch, `KEPT_CARDS` of the input.
    """

    frame: np.ndarray
    grid: MaskGrid
    cards: dict[str, Any]


def load_input(spec: str | os.PathLike[str], *, mask_grid: str = MASK_GRIDS[0]) -> LoadedInput:
    """Read one input: a FITS image is rebinned and stretched as in ``xami preprocess``.

    A 2048 (or any multiple of 512) FITS image becomes the 512 frame; FITS images of side 64 to
    512 are stretched at their own size (`xami.preprocess.frame_rebin_factor`). A PNG/JPEG frame
    is used as it is, with the WCS and stretch of its ``xami preprocess`` sidecar (``NAME.json``
    beside it) when there is one.

    Parameters
    ----------
    spec : str or os.PathLike
        Input file, FITS optionally with ``[HDU]``.
    mask_grid : str, optional
        One of `MASK_GRIDS` (``native`` only differs from ``frame`` for rebinned FITS inputs).

    Returns
    -------
    LoadedInput
        The ``uint8`` frame, the mask grid and the cards for the FITS product.

    Raises
    ------
    xami.errors.UsageError
        ``mask_grid`` is not one of `MASK_GRIDS`.
    xami.errors.XamiError
        The file cannot be read, or its image has a size xami does not read (the message names
        the file and the problem).

    Examples
    --------
    >>> frame = load_input("S0743200101_V.fits[1]").frame  # doctest: +SKIP
    >>> frame.shape, frame.dtype  # doctest: +SKIP
    ((512, 512), dtype('uint8'))
    """
    if mask_grid not in MASK_GRIDS:
        raise UsageError(None, f"mask_grid must be one of {MASK_GRIDS}, got {mask_grid!r}")
    spec = str(spec)
    if not is_fits_name(spec):
        return _load_frame(spec)
    om = read_om_image(spec)
    frame = preprocess_om_image(om)
    factor = frame.params.factor
    cards = {"SRCFILE": Path(om.path).name, "SRCHDU": str(om.hdu),
             **_stretch_cards(dataclasses.asdict(frame.params)), **_kept_cards(om.header)}
    if mask_grid == "native":
        grid = MaskGrid(factor, om.wcs, 1)
    else:
        grid = MaskGrid(1, None if om.wcs is None else rebin_wcs(om.wcs, factor), factor)
    return LoadedInput(frame.image, grid, cards)


def _load_frame(spec: str) -> LoadedInput:
    """A PNG/JPEG frame, with the WCS and stretch of its sidecar when it has one."""
    frame = read_frame(spec)
    if not _sidecar_path(spec).is_file():
        return LoadedInput(frame, MaskGrid(1, None), {"SRCFILE": Path(spec).name})
    sidecar, wcs = read_sidecar(_sidecar_path(spec))
    grid_wcs = None if wcs is None else flip_wcs_rows(wcs, frame.shape[0])
    stretch = sidecar.get("stretch", {})
    cards = {"SRCFILE": Path(spec).name, **_stretch_cards(stretch), **sidecar.get("header", {})}
    return LoadedInput(frame, MaskGrid(1, grid_wcs, int(stretch.get("factor", 1))), cards)


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
    if is_fits_name(spec) or not _sidecar_path(spec).is_file():
        return [path]
    return [path, _sidecar_path(spec)]


def preprocess_om_image(om: OMImage, *, size: int | None = None,
                        asinh_a: float | None = None) -> Frame:
    """Rebin and stretch an OM image to an 8-bit frame (`xami.preprocess.preprocess_image`).

    Parameters
    ----------
    om : xami.io.fits.OMImage
        The image, as read by `xami.io.fits.read_om_image`.
    size : int, optional
        Output side in pixels; None: the size the models take (`frame_rebin_factor`: 512 for a
        side that is a multiple of 512, 2048 -> 512 as in the paper; the image's own size for a
        side of 64 to 512).
    asinh_a : float, optional
        Asinh parameter; None means `xami.preprocess.DEFAULT_ASINH_A`.

    Returns
    -------
    xami.preprocess.Frame
        The frame (row 0 = top), its WCS (rebinned and row-flipped) and stretch.

    Raises
    ------
    xami.errors.FitsError
        The image size is not accepted, or no pixel is covered; the message names the file.

    Examples
    --------
    >>> frame = preprocess_om_image(read_om_image("S0123456789_V.fits"))  # doctest: +SKIP
    >>> frame.image.shape  # doctest: +SKIP
    (512, 512)
    """
    try:
        if size is None:
            size = om.data.shape[0] // frame_rebin_factor(om.data.shape)
        return preprocess_image(om.data, wcs=om.wcs, size=size, asinh_a=asinh_a)
    except InputError as err:
        raise FitsError(om.path, err.problem) from None


def preprocess_files(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                     *, size: int = RELEASED_SIZE, asinh_a: float | None = None,
                     ) -> list[tuple[str, str]]:
    """Preprocess OM FITS files into ``OUT/NAME.png`` frames with ``OUT/NAME.json`` sidecars.

    ``NAME`` is the file name without FITS endings (``S0123456789_V.fits.gz`` ->
    ``S0123456789_V``; an ``[HDU]`` selector adds ``_hduN``, `xami.io.fits.output_stem`). PNGs
    hold 3 equal channels, like the released data. A file that fails is
    skipped and reported; every file is written atomically, so nothing half-written remains.

    Parameters
    ----------
    inputs : iterable of str or path-like
        FITS files, each optionally with an ``[HDU]`` selector.
    out_dir : str or path-like
        Output folder (created if needed).
    size : int, optional
        Output side in pixels (default 512, as released).
    asinh_a : float, optional
        Asinh parameter; None means `xami.preprocess.DEFAULT_ASINH_A`.

    Returns
    -------
    list of (str, str)
        ``(input, reason)`` for every input that failed; empty when all succeeded.

    Raises
    ------
    xami.errors.UsageError
        ``size`` is not a positive integer or ``asinh_a`` is not positive (nothing is written).

    Examples
    --------
    >>> failures = preprocess_files(["S0123456789_V.fits"], "frames")  # doctest: +SKIP
    """
    if not isinstance(size, int) or size < 1:
        raise UsageError(None, f"size must be a positive integer, got {size!r}")
    if asinh_a is not None and not asinh_a > 0:
        raise UsageError(None, f"asinh_a must be positive, got {asinh_a!r}")
    failures: list[tuple[str, str]] = []
    written: set[str] = set()
    for spec in tqdm([str(p) for p in inputs], desc="preprocess", unit="image", disable=None):
        try:
            written.add(_preprocess_one(spec, Path(out_dir), written, size=size, asinh_a=asinh_a))
        except (XamiError, OSError) as err:
            failures.append((spec, err.problem if isinstance(err, InputError) else str(err)))
    return failures


def _preprocess_one(spec: str, out_dir: Path, written: set[str], *, size: int,
                    asinh_a: float | None) -> str:
    """Write one frame and its sidecar; returns the NAME used."""
    name = output_stem(spec)
    if name in written:
        raise InputError(spec, f"output name {name!r} already used by an earlier input")
    om = read_om_image(spec)
    frame = preprocess_om_image(om, size=size, asinh_a=asinh_a)
    sidecar = json.dumps(_sidecar(om, frame), indent=2)
    write_frame(out_dir / f"{name}.png", frame.image)
    write_text_atomic(out_dir / f"{name}.json", sidecar + "\n")
    return name


def _sidecar(om: OMImage, frame: Frame) -> dict[str, Any]:
    """JSON sidecar of a frame: provenance, stretch, coverage, output-grid WCS cards (or None)."""
    size = frame.image.shape[0]
    return {
        "xami_version": __version__,
        "source": om.path,
        "hdu": om.hdu,
        "size": size,
        "input_size": size * frame.params.factor,
        "rebin_factor": frame.params.factor,
        "stretch": {"method": "zscale+asinh", **dataclasses.asdict(frame.params)},
        "coverage_fraction": float(np.count_nonzero(frame.image) / frame.image.size),
        "orientation": ORIENTATION,
        "header": _kept_cards(om.header),
        "wcs": None if frame.wcs is None else dict(frame.wcs.to_header()),
    }


def read_sidecar(path: str | os.PathLike[str]) -> tuple[dict[str, Any], WCS | None]:
    """Read a sidecar written by `preprocess_files`: its contents and the frame's WCS.

    Parameters
    ----------
    path : str or path-like
        ``NAME.json`` beside ``NAME.png``.

    Returns
    -------
    sidecar : dict
        The JSON contents.
    wcs : astropy.wcs.WCS or None
        WCS of the frame as indexed (row 0 = top), or None.

    Raises
    ------
    xami.errors.InputError
        The file is missing or is not valid JSON.
    """
    try:
        sidecar = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read sidecar ({err})") from None
    if sidecar.get("wcs") is None:
        return sidecar, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return sidecar, WCS(fits.Header(sidecar["wcs"]))


def _sidecar_path(spec: str) -> Path:
    """Where a PNG/JPEG frame's ``xami preprocess`` sidecar would be."""
    return Path(spec).with_suffix(".json")


def _kept_cards(header: fits.Header) -> dict[str, Any]:
    """The `KEPT_CARDS` present in ``header`` with plain (JSON-able) values."""
    return {key: header[key] for key in KEPT_CARDS
            if key in header and isinstance(header[key], (str, int, float, bool))}


def _stretch_cards(stretch: dict[str, Any]) -> dict[str, Any]:
    """FITS cards of a stretch's parameters."""
    keys = {"asinh_a": "ASINH_A", "vmin": "ZSVMIN", "vmax": "ZSVMAX", "factor": "REBIN",
            "contrast": "ZSCONTR"}
    return {"STRETCH": "zscale+asinh",
            **{card: stretch[k] for k, card in keys.items() if k in stretch}}
