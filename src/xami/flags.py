"""``xami flag-sources``: flag the sources of a catalogue that lie on artefacts.

For each source the circular aperture (default 12 unbinned pixels, omdetect's) is laid on the
``MASK`` bitmask of an ``NAME.xami.fits`` file. Three columns are added:

- ``XAMI_FLAG``: the OR of the bits under the aperture (`xami.classes` bits: SAS 1 read-out streak,
  2 smoke ring, 5 central enhancement, as in the SUSS ``QUALITY_FLAG``; new 10 star loop, 11 other);
- ``XAMI_CLASS``: the class covering most of the aperture (empty when none);
- ``XAMI_OVERLAP``: the fraction of the aperture's area covered by any artefact.

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
from xami.errors import InputError
from xami.io.atomic import atomic_path
from xami.products import MaskProduct, read_mask_fits

APERTURE_RADIUS = 12.0
"""omdetect's default source aperture radius, unbinned (input-image) pixels."""

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
        x = np.asarray(table[names["XPOS"]], dtype=np.float64)
        y = np.asarray(table[names["YPOS"]], dtype=np.float64)
        return (x - 0.5) / f - 0.5, (y - 0.5) / f - 0.5
    if "RA" in names and "DEC" in names:
        if product.wcs is None:
            raise InputError(path, "sources have only RA/DEC and the mask file has no WCS")
        sky = SkyCoord(np.asarray(table[names["RA"]], float),
                       np.asarray(table[names["DEC"]], float), unit="deg")
        x, y = product.wcs.world_to_pixel(sky)
        return np.asarray(x, float), np.asarray(y, float)
    raise InputError(path, f"no XPOS/YPOS or RA/DEC columns (columns: {', '.join(table.colnames)})")


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
        ``int16 [N]`` OR of the bits of every pixel overlapping the aperture.
    classes : list of str
        Name of the class covering the largest area of the aperture ('' when none).
    overlap : numpy.ndarray
        ``float64 [N]`` fraction of the aperture area (inside the image) covered by any bit.

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
    flags = np.zeros(len(x), dtype=np.int16)
    classes, overlap = [], np.zeros(len(x))
    for i, (cx, cy) in enumerate(zip(x, y, strict=True)):
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
        Unreadable catalogue or mask file, missing position columns, or a non-positive radius.
    """
    if not radius > 0:
        raise InputError(None, f"aperture radius must be positive, got {radius!r}")
    table = read_catalogue(catalogue)
    product = read_mask_fits(masks)
    x, y = source_pixels(table, product, path=catalogue)
    flags, classes, overlap = aperture_flags(product.bitmask, x, y,
                                             radius / product.input_factor)
    table["XAMI_FLAG"] = flags
    table["XAMI_CLASS"] = np.array(classes, dtype="U15")
    table["XAMI_OVERLAP"] = overlap.astype(np.float32)
    table["XAMI_FLAG"].description = "OR of xami artefact bits in the aperture"
    table["XAMI_OVERLAP"].description = "fraction of the aperture on artefacts"
    fmt = "ascii.csv" if str(out).lower().endswith(".csv") else "fits"
    with atomic_path(out) as tmp:
        table.write(tmp, format=fmt, overwrite=True)
    return table
