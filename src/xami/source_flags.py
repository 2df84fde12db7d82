"""``xami flag-sources``: flag the sources of a catalogue that lie on artefacts.

For each source the circular aperture (default 12 unbinned pixels, omdetect's) is laid on the
``MASK`` bitmask of an ``NAME.xami.fits`` file. Three columns are added:

- ``XAMI_FLAG``: the OR of the bits under the aperture (`xami.classes` bits: SAS 1 read-out streak,
  2 smoke ring, 5 central enhancement, as in the SUSS ``QUALITY_FLAG``; new 10 star loop, 11 other),
  or `NOT_COVERED` (bit 15 alone) for a source whose centre is off the mask grid or has no
  finite position: nothing is known of it, which is not the same as 0, no artefact;
- ``XAMI_CLASS``: the class covering most of the aperture (empty when none);
- ``XAMI_OVERLAP``: the fraction of the aperture's area covered by any artefact (NaN when not
  covered).

Positions come from ``XPOS``/``YPOS`` (FITS 1-based pixels of the image given to ``xami predict``,
as in omdetect SRCLIST) or, when those are absent, ``RA``/``DEC`` in degrees through the mask's
WCS. Aperture areas are computed on a 10x10 sub-pixel grid.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from xami.classes import CLASSES
from xami.errors import InputError, UsageError
from xami.io.atomic import atomic_path
from xami.products import MaskProduct, read_mask_fits

APERTURE_RADIUS = 12.0
"""omdetect's default source aperture radius, unbinned (input-image) pixels."""

NOT_COVERED = 1 << 15
"""``XAMI_FLAG`` of a source off the mask grid (or without a finite position): bit 15, above
every class bit, so that ``flag & cls.flag`` is 0 for every class."""

_SUB = 10  # sub-pixels per pixel side for aperture areas


def read_catalogue(path: str | os.PathLike[str]) -> Table:
    """Read a source list: a FITS table (first table HDU, e.g. omdetect SRCLIST) or a CSV file.

    Raises
    ------
    xami.errors.InputError
        The file is missing or is neither a FITS table nor a CSV file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    fmt = "ascii.csv" if path.suffix.lower() == ".csv" else "fits"
    try:
        return Table.read(path, format=fmt)
    except (OSError, ValueError, IndexError) as err:
        raise InputError(path, f"cannot read a {'CSV' if fmt != 'fits' else 'FITS'} table "
                               f"({' '.join(str(err).split())})") from None


def source_pixels(table: Table, product: MaskProduct, *, path: str | os.PathLike[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Source positions as astropy 0-based pixel coordinates of the mask grid.

    Raises
    ------
    xami.errors.InputError
        The table has neither ``XPOS``/``YPOS`` nor ``RA``/``DEC``, or only ``RA``/``DEC`` and
        the mask has no WCS.
    """
    names = {c.upper(): c for c in table.colnames}
    if "XPOS" in names and "YPOS" in names:
        f = product.input_factor
        x, y = (_numbers(table, names[key], path) for key in ("XPOS", "YPOS"))
        return (x - 0.5) / f - 0.5, (y - 0.5) / f - 0.5
    if "RA" in names and "DEC" in names:
        if product.wcs is None:
            raise InputError(path, "sources have only RA/DEC and the mask file has no WCS")
        ra, dec = (_numbers(table, names[key], path) for key in ("RA", "DEC"))
        if (np.abs(dec) > 90).any():
            raise InputError(path, f"DEC outside [-90, 90] deg ({dec[np.abs(dec) > 90][0]!r})")
        x, y = product.wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg"))
        return np.asarray(x, float), np.asarray(y, float)
    raise InputError(path, f"no XPOS/YPOS or RA/DEC columns (columns: {', '.join(table.colnames)})")


def _numbers(table: Table, name: str, path: str | os.PathLike[str]) -> np.ndarray:
    """A position column as float64 (empty entries NaN), or a reason naming a bad value."""
    column = np.ma.asarray(table[name])
    for value in column.compressed().tolist():
        try:
            float(value)
        except (TypeError, ValueError):
            raise InputError(path, f"column {name} holds values that are not numbers "
                                   f"({value!r})") from None
    return np.ma.filled(column.astype(np.float64), np.nan)


def aperture_flags(bitmask: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float
                   ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Flags, majority class and covered fraction of circular apertures on a bitmask.

    Parameters
    ----------
    bitmask : numpy.ndarray
        ``[H, W]`` QUALITY-style bits, FITS orientation.
    x, y : numpy.ndarray
        Aperture centres, astropy 0-based pixel coordinates (``bitmask[row=y, col=x]``).
    radius : float
        Aperture radius in bitmask pixels.

    Returns
    -------
    flags : numpy.ndarray
        ``int32 [N]`` OR of the bits of every pixel overlapping the aperture; `NOT_COVERED`
        when the centre is off the bitmask (or not finite).
    classes : list of str
        Name of the class covering the largest area of the aperture ('' when none).
    overlap : numpy.ndarray
        ``float64 [N]`` fraction of the aperture area (inside the image) covered by any bit
        (NaN when not covered).

    Examples
    --------
    >>> bits = np.zeros((9, 9), np.int16); bits[:, 4] = 2  # a streak in column 4
    >>> centres = np.array([4.0, 0.0])
    >>> flags, classes, overlap = aperture_flags(bits, centres, centres, 1.0)
    >>> flags.tolist(), classes, overlap.round(2).tolist()
    ([2, 0], ['read-out-streak', ''], [0.61, 0.0])
    """
    h, w = bitmask.shape
    offsets = (np.arange(_SUB) + 0.5) / _SUB - 0.5
    flags = np.zeros(len(x), dtype=np.int32)
    classes, overlap = [], np.zeros(len(x))
    for i, (cx, cy) in enumerate(zip(x, y, strict=True)):
        if not (-0.5 <= cx < w - 0.5 and -0.5 <= cy < h - 0.5):  # off the grid, or NaN
            flags[i], overlap[i] = NOT_COVERED, np.nan
            classes.append("")
            continue
        c0, c1 = max(0, int(np.floor(cx - radius))), min(w, int(np.ceil(cx + radius)) + 1)
        r0, r1 = max(0, int(np.floor(cy - radius))), min(h, int(np.ceil(cy + radius)) + 1)
        if c1 <= c0 or r1 <= r0:
            classes.append("")
            continue
        cols = np.arange(c0, c1)[:, None] + offsets[None, :]
        rows = np.arange(r0, r1)[:, None] + offsets[None, :]
        inside = ((rows[:, None, :, None] - cy) ** 2 + (cols[None, :, None, :] - cx) ** 2
                  <= radius**2).mean(axis=(2, 3))  # [rows, cols] fraction of each pixel
        bits = bitmask[r0:r1, c0:c1]
        area = inside.sum()
        flags[i] = np.bitwise_or.reduce(bits[inside > 0], initial=0)
        overlap[i] = inside[bits != 0].sum() / area if area else 0.0
        per_class = [inside[(bits & c.flag) != 0].sum() for c in CLASSES]
        best = int(np.argmax(per_class))
        classes.append(CLASSES[best].name if per_class[best] > 0 else "")
    return flags, classes, overlap


def flag_sources(catalogue: str | os.PathLike[str], masks: str | os.PathLike[str],
                 out: str | os.PathLike[str], *, radius: float = APERTURE_RADIUS) -> Table:
    """Add ``XAMI_FLAG``, ``XAMI_CLASS`` and ``XAMI_OVERLAP`` to a source list and write it.

    Parameters
    ----------
    catalogue : str or os.PathLike
        FITS table or CSV with ``XPOS``/``YPOS`` (input-image FITS pixels) or ``RA``/``DEC``.
    masks : str or os.PathLike
        ``NAME.xami.fits`` from ``xami predict``.
    out : str or os.PathLike
        Output table; ``.csv`` writes CSV, anything else FITS. Written atomically.
    radius : float
        Aperture radius in input-image pixels (default 12, omdetect's).

    Returns
    -------
    astropy.table.Table
        The catalogue with the three columns.

    Raises
    ------
    xami.errors.InputError
        Unreadable catalogue or mask file, missing position columns, or positions that are not
        numbers.
    xami.errors.UsageError
        The radius is not a positive finite number, or ``out`` is the catalogue or mask file.
    """
    if not (np.isfinite(radius) and radius > 0):
        raise UsageError(None, f"aperture radius must be a positive finite number, got "
                               f"{radius!r}")
    for given, what in ((masks, "mask file"), (catalogue, "catalogue")):
        if Path(out).resolve() == Path(given).resolve():
            raise UsageError(out, f"the output table would overwrite the {what}")
    table = read_catalogue(catalogue)
    product = read_mask_fits(masks)
    x, y = source_pixels(table, product, path=catalogue)
    flags, classes, overlap = aperture_flags(product.bitmask, x, y,
                                             radius / product.input_factor)
    table["XAMI_FLAG"] = flags
    table["XAMI_CLASS"] = np.array(classes, dtype="U15")
    table["XAMI_OVERLAP"] = overlap.astype(np.float32)
    table["XAMI_FLAG"].description = "OR of xami artefact bits in the aperture; 32768: off the grid"
    table["XAMI_OVERLAP"].description = "fraction of the aperture on artefacts"
    fmt = "ascii.csv" if str(out).lower().endswith(".csv") else "fits"
    with atomic_path(out) as tmp:
        table.write(tmp, format=fmt, overwrite=True)
    return table
