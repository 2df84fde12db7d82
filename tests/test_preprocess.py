"""Tests of xami.preprocess: rebinning, WCS bookkeeping, the stretch and the file pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS, Sip
from PIL import Image

from xami.cli import main
from xami.errors import FitsError, InputError
from xami.io.fits import OMImage, read_om_image, write_image_fits
from xami.preprocess import (
    DEFAULT_ASINH_A,
    coverage_mask,
    flip_wcs_rows,
    preprocess_files,
    preprocess_image,
    read_sidecar,
    rebin,
    rebin_wcs,
    stretch_to_uint8,
    zscale_limits,
)

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SIZE, OUT = 256, 64  # native and output sides (factor 4, as 2048 -> 512)
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


@pytest.fixture
def fits_file(tmp_path: Path, rng: np.random.Generator) -> Path:
    """OM layout: PRIMARY with OBS_ID/FILTER, image + WCS in an extension."""
    primary = fits.PrimaryHDU()
    primary.header.update({"OBS_ID": "0123456789", "FILTER": "V", "EXPOSURE": 4400.0})
    image = fits.ImageHDU(sky_image(rng), header=tan_wcs().to_header(), name="IMAGE")
    path = tmp_path / "in" / "S0123456789_V.fits.gz"
    path.parent.mkdir()
    fits.HDUList([primary, image]).writeto(path)
    return path


# --------------------------------------------------------------------------- pure functions
def test_coverage_mask() -> None:
    data = np.array([[0.0, np.nan, np.inf], [-2.0, 1e-9, 7.0]])
    assert coverage_mask(data).tolist() == [[False, False, False], [True, True, True]]


def test_rebin_sums_blocks_and_nan_counts_zero() -> None:
    data = np.arange(16.0).reshape(4, 4)
    data[0, 0] = np.nan
    assert rebin(data, 2).tolist() == [[0 + 1 + 4 + 5 - 0, 2 + 3 + 6 + 7], [42, 50]]
    assert rebin(data, 1)[0, 0] == 0 and rebin(data, 4).tolist() == [[120.0]]
    assert rebin(np.full((2, 2), np.nan), 2).tolist() == [[0.0]]


@pytest.mark.parametrize(("shape", "factor", "message"), [
    ((4, 4), 0, "positive integer"), ((4, 4), 1.5, "positive integer"),
    ((4, 6), 4, "cannot be rebinned"), ((2, 4, 4), 2, "cannot be rebinned"),
])
def test_rebin_errors(shape: tuple[int, ...], factor: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rebin(np.ones(shape), factor)


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


def test_zscale_limits_uses_covered_pixels_only(rng: np.random.Generator) -> None:
    data = rng.normal(50.0, 3.0, (40, 40))
    data[:10] = 0.0
    expected = ZScaleInterval(contrast=0.1, min_npixels=10).get_limits(data[10:].ravel())
    assert zscale_limits(data, coverage_mask(data)) == pytest.approx(expected)
    assert zscale_limits(np.full((3, 3), 7.0), np.ones((3, 3), bool)) == (7.0, 8.0)
    with pytest.raises(ValueError, match="no covered pixel"):
        zscale_limits(data, np.zeros(data.shape, bool))


def test_stretch_coverage_range_and_orientation(rng: np.random.Generator) -> None:
    data = rng.normal(100.0, 10.0, (32, 32))
    data[:, :4], data[5, 5], data[6, 6] = 0.0, np.nan, -50.0  # gap, NaN, covered below sky
    data[0, 10] = 1e5  # bright pixel in FITS row 0 (the bottom)
    frame, params = stretch_to_uint8(data)
    assert frame.dtype == np.uint8 and frame.shape == (32, 32)
    assert (frame[:, :4] == 0).all() and frame[31 - 5, 5] == 0
    assert frame[31 - 6, 6] == 1  # clipped at vmin, still covered
    assert frame[31, 10] == 255 and (frame[:, 4:] >= 1).sum() == 32 * 28 - 1
    assert params.asinh_a == DEFAULT_ASINH_A and params.vmin < 100 < params.vmax
    assert np.array_equal(stretch_to_uint8(data)[0], frame)  # deterministic
    with pytest.raises(ValueError, match="asinh_a must be positive"):
        stretch_to_uint8(data, asinh_a=0.0)


def test_smaller_asinh_a_brightens_the_sky(rng: np.random.Generator) -> None:
    data = rng.normal(100.0, 10.0, (32, 32))
    assert np.median(stretch_to_uint8(data, asinh_a=0.01)[0]) > np.median(
        stretch_to_uint8(data, asinh_a=1.0)[0])


# --------------------------------------------------------------------------- preprocess_image
def test_preprocess_image_frame(fits_file: Path) -> None:
    frame = preprocess_image(read_om_image(fits_file), size=OUT, asinh_a=0.5)
    assert frame.image.shape == (OUT, OUT) and frame.params.factor == 4
    assert frame.params.asinh_a == 0.5 and frame.hdu == 1 and frame.source == str(fits_file)
    assert frame.header == {"OBS_ID": "0123456789", "FILTER": "V", "EXPOSURE": 4400.0}
    row, col = OUT - 1 - 30, 20  # the star's block, FITS row 30 of 64 after rebinning
    assert frame.image[row, col] == 255 and frame.image[row - 3:row + 4, col - 3].max() < 255
    assert (frame.image[:8, -8:] == 0).all() and (frame.image[:, 50:54] == 0).all()
    true = tan_wcs().pixel_to_world(STAR[1], STAR[0])
    assert frame.wcs.pixel_to_world(col, row).separation(true).deg < 1e-9


def _om(data: np.ndarray, wcs: WCS | None = None) -> OMImage:
    """An in-memory OMImage."""
    return OMImage(data=data, header=fits.Header(), wcs=wcs, path="x/S1.fits", hdu=0)


@pytest.mark.parametrize(("shape", "size", "message"), [
    ((64, 32), 32, "64x32 pixels cannot be rebinned to 32x32"),
    ((48, 48), 32, "48x48 pixels cannot be rebinned"),
    ((16, 16), 32, "16x16 pixels cannot be rebinned"),
])
def test_preprocess_image_shape_errors(shape: tuple[int, int], size: int, message: str) -> None:
    with pytest.raises(FitsError, match=rf"x/S1\.fits: image of {message}"):
        preprocess_image(_om(np.ones(shape, np.float32)), size=size)


def test_preprocess_image_without_coverage_or_wcs() -> None:
    with pytest.raises(FitsError, match=r"x/S1\.fits: no covered pixel"):
        preprocess_image(_om(np.zeros((8, 8), np.float32)), size=4)
    frame = preprocess_image(_om(np.arange(64, dtype=np.float32).reshape(8, 8)), size=8)
    assert frame.wcs is None and frame.params.factor == 1 and frame.image[-1, 0] == 0


# --------------------------------------------------------------------------- files and CLI
def test_preprocess_files_writes_png_and_sidecar(fits_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert preprocess_files([fits_file], out, size=OUT) == []
    assert sorted(p.name for p in out.iterdir()) == ["S0123456789_V.json", "S0123456789_V.png"]
    with Image.open(out / "S0123456789_V.png") as img:
        rgb = np.asarray(img)
    assert img.mode == "RGB" and rgb.shape == (OUT, OUT, 3)
    assert (rgb == rgb[..., :1]).all()
    sidecar, wcs = read_sidecar(out / "S0123456789_V.json")
    assert sidecar["rebin_factor"] == 4 and sidecar["size"] == OUT and sidecar["hdu"] == 1
    assert sidecar["stretch"]["asinh_a"] == DEFAULT_ASINH_A
    assert sidecar["stretch"]["contrast"] == 0.1 and sidecar["stretch"]["min_npixels"] == 10
    assert sidecar["orientation"].startswith("row 0 = top")
    assert 0.5 < sidecar["coverage_fraction"] < 1.0
    row, col = OUT - 1 - 30, 20
    assert rgb[row, col, 0] == 255
    pixel = 4 * 0.4764 / 3600
    true = tan_wcs().pixel_to_world(STAR[1], STAR[0])
    assert wcs.pixel_to_world(col, row).separation(true).deg < 0.5 * pixel


def test_preprocess_files_reports_bad_and_writes_good(fits_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "in" / "broken.fits"
    bad.write_text("SIMPLE = nonsense")
    odd = tmp_path / "in" / "odd.fits"
    write_image_fits(odd, np.ones((100, 100), np.float32))
    same_name = tmp_path / "other" / fits_file.name
    same_name.parent.mkdir()
    same_name.write_bytes(fits_file.read_bytes())
    out = tmp_path / "out"
    failures = preprocess_files([bad, f"{fits_file}[IMAGE]", odd, fits_file, same_name], out,
                                size=OUT)
    assert [f[0] for f in failures] == [str(bad), str(odd), str(same_name)]
    assert "not a readable FITS file" in failures[0][1] and "cannot be rebinned" in failures[1][1]
    assert "already used" in failures[2][1]
    assert sorted(p.name for p in out.iterdir()) == [  # an HDU selector names the outputs
        "S0123456789_V.json", "S0123456789_V.png", "S0123456789_V_hduIMAGE.json",
        "S0123456789_V_hduIMAGE.png"]
    assert json.loads((out / "S0123456789_V_hduIMAGE.json").read_text())["hdu"] == "IMAGE"


def test_preprocess_files_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="size must be a positive integer"):
        preprocess_files([], tmp_path, size=0)
    with pytest.raises(InputError, match="asinh_a must be positive"):
        preprocess_files([], tmp_path, asinh_a=-1.0)


def test_sidecar_without_wcs_and_unreadable_sidecar(tmp_path: Path) -> None:
    write_image_fits(tmp_path / "plain.fits", np.arange(64, dtype=np.float32).reshape(8, 8))
    assert preprocess_files([tmp_path / "plain.fits"], tmp_path / "out", size=8) == []
    sidecar, wcs = read_sidecar(tmp_path / "out" / "plain.json")
    assert wcs is None and sidecar["wcs"] is None and sidecar["hdu"] == 0
    with pytest.raises(InputError, match=r"nope\.json: cannot read sidecar"):
        read_sidecar(tmp_path / "nope.json")


def test_cli_preprocess_exit_codes(fits_file: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["preprocess", str(fits_file), "--out", str(out), "--size", "64",
                 "--asinh-a", "0.3"]) == 0
    assert read_sidecar(out / "S0123456789_V.json")[0]["stretch"]["asinh_a"] == 0.3
    missing = tmp_path / "missing.fits"
    assert main(["preprocess", str(missing), str(fits_file), "--out", str(out),
                 "--size", "64"]) == 1
    assert f"failed: {missing}: file not found" in capsys.readouterr().err


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
