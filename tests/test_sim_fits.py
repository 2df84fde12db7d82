"""Tests of the simulator's FITS products: headers, SOURCES table, and agreement with preprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from xami.io.fits import read_om_image
from xami.io.frames import preprocess_om_image
from xami.io.images import read_frame
from xami.sim import simulate_dataset
from xami.sim.dataset import simulate_index

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

HEADER_CARDS = ("TELESCOP", "INSTRUME", "FILTER", "EXPOSURE", "OBS_ID", "DATE-OBS", "RA_PNT",
                "DEC_PNT", "PA_PNT", "BINAX1", "BINAX2", "OBJECT", "XAMISIMV", "XAMISEED")


@pytest.fixture(scope="module")
def fits_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simfits")
    simulate_dataset(out, 2, seed=4, fits=True, progress=False)
    return out


def test_fits_files_have_om_headers_wcs_and_sources(fits_set: Path) -> None:
    files = sorted((fits_set / "fits").glob("S*_*.fits"))
    assert len(files) == 2
    with fits.open(files[0]) as hdul:
        header, data = hdul[0].header, hdul[0].data
        assert data.shape == (2048, 2048) and data.dtype == np.dtype(">f4")
        assert all(key in header for key in HEADER_CARDS)
        assert header["TELESCOP"] == "XMM" and header["INSTRUME"] == "OM"
        assert header["CTYPE1"] == "RA---TAN" and header["XAMISEED"] == 4
        sources = hdul["SOURCES"].data
        assert {"RA", "DEC", "XPOS", "YPOS", "RATE", "MAG"} <= set(sources.names)
        assert len(sources) > 10


def test_preprocessed_fits_equals_the_frame_and_its_wcs_finds_the_stars(fits_set: Path) -> None:
    for index, path in enumerate(sorted((fits_set / "fits").glob("*.fits"),
                                        key=lambda p: fits.getval(p, "XAMIINDX"))):
        sim = simulate_index(4, index, binning=1)  # its stretch is randomised per frame
        frame = preprocess_om_image(read_om_image(path), asinh_a=sim.stretch.asinh_a)
        np.testing.assert_array_equal(frame.image, sim.frame)
        jpeg = next((fits_set / "coco").rglob(f"{path.stem}.jpg"))
        assert np.abs(read_frame(jpeg).astype(int) - sim.frame).mean() < 2.0
        src = fits.getdata(path, "SOURCES")[:25]
        col = (src["XPOS"] - 0.5) / 4 - 0.5
        row = 511.5 - (src["YPOS"] - 0.5) / 4
        sky = frame.wcs.pixel_to_world(col, row)
        sep = sky.separation(SkyCoord(src["RA"], src["DEC"], unit="deg")).arcsec
        assert sep.max() < 0.5 * 4 * 0.4764
