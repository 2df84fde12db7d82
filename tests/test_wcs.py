"""Tests of xami.wcs: the WCS of rebinned and row-flipped images keeps every pixel on the sky."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip

from _fits_factory import SIZE, tan_wcs
from xami.wcs import flip_wcs_rows, rebin_wcs

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

OUT = 64  # rebinned side (factor 4)


@pytest.mark.parametrize("use_cd", [True, False])
@pytest.mark.parametrize("factor", [1, 4])
def test_rebin_wcs_keeps_pixel_centres_on_the_sky(use_cd: bool, factor: int) -> None:
    fine = tan_wcs(use_cd=use_cd)
    fine.pixel_shape = (SIZE, SIZE)
    coarse = rebin_wcs(fine, factor)
    cols, rows = np.meshgrid([0, 7, 63], [0, 30, 63])
    centres = factor * np.stack([cols, rows]) + (factor - 1) / 2  # block centres, fine pixels
    sep = coarse.pixel_to_world(cols, rows).separation(fine.pixel_to_world(*centres))
    assert sep.deg.max() < 1e-9
    assert coarse.pixel_shape == (SIZE // factor, SIZE // factor)
    assert fine.wcs.crpix[0] == SIZE / 2 + 0.3  # input unchanged


def test_rebin_wcs_errors() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        rebin_wcs(tan_wcs(), 0)
    sip = tan_wcs()
    sip.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    sip.sip = Sip(np.zeros((3, 3)), np.zeros((3, 3)), None, None, sip.wcs.crpix)
    with pytest.raises(ValueError, match="SIP"):
        rebin_wcs(sip, 2)


@pytest.mark.parametrize("use_cd", [True, False])
def test_flip_wcs_rows(use_cd: bool) -> None:
    wcs = tan_wcs(use_cd=use_cd)
    flipped = flip_wcs_rows(wcs, SIZE)
    cols, rows = np.meshgrid([0.0, 10.2, 255.0], [0.0, 99.7, 255.0])
    sep = flipped.pixel_to_world(cols, rows).separation(wcs.pixel_to_world(cols, SIZE - 1 - rows))
    assert sep.deg.max() < 1e-9


def test_rebin_and_flip_with_crota2_header() -> None:
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0,
                          "CRVAL2": 2.0, "CRPIX1": 100.0, "CRPIX2": 120.0, "CDELT1": -1.3e-4,
                          "CDELT2": 1.3e-4, "CROTA2": 25.0})
    wcs = WCS(header)
    frame_wcs = flip_wcs_rows(rebin_wcs(wcs, 4), OUT)
    cols, rows = np.meshgrid([0.0, 10.0, 63.0], [0.0, 20.0, 63.0])
    fits_rows = SIZE - 1 - (4 * rows + 1.5)  # display row -> FITS block centre
    sep = frame_wcs.pixel_to_world(cols, rows).separation(
        wcs.pixel_to_world(4 * cols + 1.5, fits_rows))
    assert sep.deg.max() < 1e-9
