"""Tiny seeded FITS test data: a rotated TAN WCS and an OM-like sky with a star, a gap and NaNs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

SIZE = 256  # native side of the test images (4 x 64, as 2048 = 4 x 512)
STAR = (121.5, 81.5)  # FITS (row, col) of the star's centre, astropy 0-based pixels


def tan_wcs(*, use_cd: bool = True, size: int = SIZE) -> WCS:
    """A TAN WCS rotated by 30 degrees, reference pixel off the grid centre."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [size / 2 + 0.3, size / 2 - 0.7]
    angle, scale = np.deg2rad(30.0), 0.4764 / 3600
    rotation = np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if use_cd:
        wcs.wcs.cd = scale * rotation
    else:
        wcs.wcs.pc, wcs.wcs.cdelt = rotation, [scale, scale]
    wcs.wcs.set()
    return wcs


def sky_image(rng: np.random.Generator) -> np.ndarray:
    """A FITS-oriented OM-like image: Poisson sky, a star at STAR, a zero gap and a NaN corner."""
    data = rng.poisson(20.0, (SIZE, SIZE)).astype(np.float32)
    data[120:124, 80:84] += 5000.0
    data[:, 200:216] = 0.0
    data[-32:, -32:] = np.nan
    return data


def write_om_file(path: Path, rng: np.random.Generator) -> Path:
    """OM layout: PRIMARY with OBS_ID/FILTER/EXPOSURE, `sky_image` + `tan_wcs` in ``IMAGE``."""
    primary = fits.PrimaryHDU()
    primary.header.update({"OBS_ID": "0123456789", "FILTER": "V", "EXPOSURE": 4400.0})
    image = fits.ImageHDU(sky_image(rng), header=tan_wcs().to_header(), name="IMAGE")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, image]).writeto(path)
    return path
