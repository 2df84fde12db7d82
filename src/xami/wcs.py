"""WCS geometry of rebinned and row-flipped images (pure: a WCS in, a new WCS out), and the grid
the mask products are written on.

Used by preprocessing (the frame's WCS), the input reader (the mask grid), the product writers and
the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS


@dataclass(frozen=True)
class MaskGrid:
    """The grid the mask products are written on.

    Attributes
    ----------
    factor : int
        Mask pixels per frame pixel along each axis (1: the frame's grid; 4: a 2048 input's grid
        for a 512 frame).
    wcs : astropy.wcs.WCS or None
        WCS of the mask grid in FITS orientation (astropy 0-based convention), or None.
    input_factor : int
        Input-image pixels per mask pixel (4 for a 2048 FITS with the 512 grid, else 1); source
        positions in the input's pixel frame are divided by it (`xami.source_flags`).
    """

    factor: int
    wcs: WCS | None
    input_factor: int = 1


def rebin_wcs(wcs: WCS, factor: int) -> WCS:
    """The WCS of an image rebinned by ``factor`` (`xami.preprocess.rebin`), sky unchanged.

    The centre of each rebinned pixel maps to the sky position of the centre of its block:
    ``CRPIX' = (CRPIX - 0.5) / factor + 0.5`` (FITS 1-based pixels) and the pixel scale (CD, or
    CDELT with PC) grows by ``factor``.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial 2-D WCS without SIP distortion.
    factor : int
        Block size, >= 1.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS (the input is not modified).

    Raises
    ------
    ValueError
        ``factor`` is not a positive integer, or the WCS has SIP distortion terms.
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    if wcs.sip is not None:
        raise ValueError("rebin_wcs does not support SIP distortion")
    new = wcs.deepcopy()
    new.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / factor + 0.5
    if new.wcs.has_cd():
        new.wcs.cd = np.asarray(wcs.wcs.cd) * factor
    else:
        new.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * factor
    if wcs.pixel_shape is not None:
        new.pixel_shape = tuple(n // factor for n in wcs.pixel_shape)
    new.wcs.set()
    return new


def flip_wcs_rows(wcs: WCS, height: int) -> WCS:
    """The WCS of the same image stored with its rows flipped (row 0 at the top, as displayed).

    FITS row ``j`` becomes row ``height - 1 - j``; in 1-based FITS pixels ``y' = height + 1 - y``,
    so ``CRPIX2' = height + 1 - CRPIX2`` and the second column (pixel axis) of CD or PC changes
    sign (not CDELT2, which scales the second world axis).
    Afterwards ``wcs.pixel_to_world(col, row)`` takes numpy indices of the displayed frame.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial 2-D WCS of the image in FITS orientation.
    height : int
        Number of rows of that image.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS (the input is not modified).
    """
    new = wcs.deepcopy()
    new.wcs.crpix = [wcs.wcs.crpix[0], height + 1 - wcs.wcs.crpix[1]]
    if new.wcs.has_cd():
        new.wcs.cd = np.asarray(wcs.wcs.cd) * [1.0, -1.0]
    else:
        new.wcs.pc = np.asarray(wcs.wcs.get_pc()) * [1.0, -1.0]
    new.wcs.set()
    return new
