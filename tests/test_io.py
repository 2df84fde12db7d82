"""Tests of xami.io.fits and xami.io.images on small real files written to tmp_path."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from xami.errors import FitsError, ImageError
from xami.io.fits import (
    fits_stem,
    read_om_image,
    split_selector,
    write_fits,
    write_image_fits,
)
from xami.io.images import read_frame, write_frame

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def tan_wcs(size: int = 16) -> WCS:
    """A TAN WCS with a 30 degree rotation, reference pixel off the grid centre."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [size / 2 + 0.3, size / 2 - 0.7]
    angle, scale = np.deg2rad(30.0), 0.4764 / 3600
    wcs.wcs.cd = scale * np.array([[-np.cos(angle), np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return wcs


@pytest.fixture
def image(rng: np.random.Generator) -> np.ndarray:
    """A 16 x 12 float32 image with a known pixel pattern."""
    return rng.normal(100.0, 5.0, (16, 12)).astype(np.float32)


@pytest.fixture
def om_file(tmp_path: Path, image: np.ndarray) -> Path:
    """OM product layout: empty PRIMARY with OBS_ID/FILTER, image + WCS in extension SCI."""
    primary = fits.PrimaryHDU()
    primary.header.update({"OBS_ID": "0123456789", "FILTER": "V", "EXPOSURE": 4400.0})
    sci = fits.ImageHDU(image, header=tan_wcs().to_header(), name="SCI")
    sci.header["FILTER"] = "UVW1"
    path = tmp_path / "S0123456789_V.fits"
    fits.HDUList([primary, sci, fits.ImageHDU(image * 2, name="SCI", ver=2)]).writeto(path)
    return path


# --------------------------------------------------------------------------- read_om_image
def test_default_hdu_is_first_image_with_merged_header_and_wcs(om_file: Path,
                                                                image: np.ndarray) -> None:
    om = read_om_image(om_file)
    assert om.hdu == 1 and om.path == str(om_file)
    assert om.data.dtype == np.float32 and np.array_equal(om.data, image)
    assert om.header["OBS_ID"] == "0123456789" and om.header["EXPOSURE"] == 4400.0
    assert om.header["FILTER"] == "UVW1"  # the extension's own card wins
    assert "SIMPLE" not in om.header and om.header["EXTNAME"] == "SCI"
    assert np.allclose(om.wcs.pixel_scale_matrix, tan_wcs().pixel_scale_matrix)
    assert om.wcs.pixel_to_world(3, 4).separation(tan_wcs().pixel_to_world(3, 4)).deg < 1e-12


@pytest.mark.parametrize(("selector", "expected_hdu", "scale"),
                         [("[1]", 1, 1), ("[sci]", "SCI", 1), ("[SCI,2]", "SCI,2", 2),
                          ("[2]", 2, 2)])
def test_selectors(om_file: Path, image: np.ndarray, selector: str, expected_hdu: object,
                   scale: int) -> None:
    om = read_om_image(f"{om_file}{selector}")
    assert om.hdu == expected_hdu and om.path == str(om_file)
    assert np.array_equal(om.data, image * scale)


@pytest.mark.parametrize("suffix", [".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".ftz"])
def test_extensions(tmp_path: Path, image: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"S0123456789_B{suffix}"
    plain = tmp_path / "plain.fits"
    fits.PrimaryHDU(image, header=tan_wcs().to_header()).writeto(plain)
    if suffix.endswith(("gz", "ftz")):
        path.write_bytes(gzip.compress(plain.read_bytes(), mtime=0))
    else:
        shutil.copy(plain, path)
    om = read_om_image(path)
    assert om.hdu == 0 and np.array_equal(om.data, image) and om.wcs is not None
    assert fits_stem(path) == "S0123456789_B"


def test_scaled_integer_data_and_single_plane_cube(tmp_path: Path) -> None:
    counts = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    hdu = fits.PrimaryHDU(counts)
    hdu.header.update({"BSCALE": 0.5, "BZERO": 10.0})
    hdu.writeto(tmp_path / "cube.fits")
    om = read_om_image(tmp_path / "cube.fits")
    assert om.data.shape == (3, 4) and om.data.dtype == np.float32
    assert np.array_equal(om.data, 10.0 + 0.5 * counts[0])
    assert "BSCALE" not in om.header and om.wcs is None


def test_odd_wcs_header_gives_no_warning(tmp_path: Path, image: np.ndarray) -> None:
    header = tan_wcs().to_header()
    header["DATE-OBS"] = "2010-01-01T00:00:00"
    header["MJD-OBS"] = 0.0  # inconsistent with DATE-OBS: astropy "fixes" it with a warning
    fits.PrimaryHDU(image, header=header).writeto(tmp_path / "odd.fits")
    assert read_om_image(tmp_path / "odd.fits").wcs is not None


def test_split_selector_and_stem() -> None:
    assert split_selector("a/b.fits") == ("a/b.fits", None)
    assert split_selector("b.fits[3]") == ("b.fits", 3)
    assert split_selector("b.fits[sci, 2]") == ("b.fits", ("SCI", 2))
    assert fits_stem("dir/S0123456789_V.fits.gz[SCI]") == "S0123456789_V"
    assert fits_stem("x.FTZ") == "x"


def _write(path: Path, hdus: list) -> Path:
    fits.HDUList(hdus).writeto(path)
    return path


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "file not found"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty file"),
    (lambda p: (p.write_text("not fits\n" * 400), p)[1], "not a readable FITS file"),
    (lambda p: (Image.new("L", (8, 8)).save(p, format="PNG"), p)[1], "not a readable FITS"),
    (lambda p: _write(p, [fits.PrimaryHDU()]), "no HDU holds image data"),
    (lambda p: _write(p, [fits.PrimaryHDU(np.zeros((2, 3, 4), np.float32))]), "3-D data"),
    (lambda p: _write(p, [fits.PrimaryHDU(np.full((4, 4), np.nan, np.float32))]),
     "no finite pixel"),
    (lambda p: _write(p, [fits.PrimaryHDU(), fits.ImageHDU(np.zeros((0, 4), np.float32))]),
     "no data"),
    (lambda p: _write(p, [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="flag", format="L", array=np.array([True, False]))])]),
     "no HDU holds image data"),
])
def test_read_errors_name_file_and_problem(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path / "bad.fits")
    with pytest.raises(FitsError, match=rf"bad\.fits: .*{message}"):
        read_om_image(path)


def test_truncated_file(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.fits", [fits.PrimaryHDU(np.ones((64, 64), np.float32))])
    (tmp_path / "cut.fits").write_bytes(good.read_bytes()[:5000])
    with pytest.raises(FitsError, match=r"cut\.fits: corrupt FITS file.*truncated"):
        read_om_image(tmp_path / "cut.fits")


@pytest.mark.parametrize(("selector", "message"), [
    ("[5]", "HDU 5 not found"), ("[NOPE]", "HDU NOPE not found"), ("[SCI,7]", "HDU SCI,7 not"),
    ("[0]", "HDU 0 holds no data"),
])
def test_selector_errors(om_file: Path, selector: str, message: str) -> None:
    with pytest.raises(FitsError, match=rf"S0123456789_V\.fits: {message}"):
        read_om_image(f"{om_file}{selector}")


def test_selected_table_is_not_an_image(tmp_path: Path) -> None:
    table = fits.BinTableHDU.from_columns([fits.Column(name="z", format="C", array=[1j])])
    path = _write(tmp_path / "tab.fits", [fits.PrimaryHDU(), table])
    with pytest.raises(FitsError, match=r"tab\.fits: HDU 1 is a BinTableHDU, not an image"):
        read_om_image(f"{path}[1]")


# --------------------------------------------------------------------------- writers
@pytest.mark.parametrize(("name", "extname"), [("a.fits", None), ("b.fits.gz", "IMAGE")])
def test_write_image_fits_round_trip(tmp_path: Path, image: np.ndarray, name: str,
                                     extname: str | None) -> None:
    header = fits.Header({"OBS_ID": "0123456789"})
    write_image_fits(tmp_path / name, image, header=header, wcs=tan_wcs(), extname=extname)
    om = read_om_image(tmp_path / name)
    assert np.array_equal(om.data, image) and om.header["OBS_ID"] == "0123456789"
    assert om.hdu == (0 if extname is None else 1)
    assert np.allclose(om.wcs.pixel_scale_matrix, tan_wcs().pixel_scale_matrix)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left


def test_write_fits_is_deterministic_and_atomic(tmp_path: Path, image: np.ndarray) -> None:
    for name in ("one.fits.gz", "two.fits.gz"):
        write_fits(tmp_path / name, fits.HDUList([fits.PrimaryHDU(image)]))
    assert (tmp_path / "one.fits.gz").read_bytes() == (tmp_path / "two.fits.gz").read_bytes()
    with pytest.raises(KeyError):
        write_fits(tmp_path / "bad.fits", [fits.PrimaryHDU(np.ones((2, 2), complex))])
    assert not (tmp_path / "bad.fits").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.fits.gz", "two.fits.gz"]


# --------------------------------------------------------------------------- frames
@pytest.fixture
def frame(rng: np.random.Generator) -> np.ndarray:
    """A 10 x 14 uint8 frame with zeros (no coverage) and saturated pixels."""
    frame = rng.integers(0, 256, (10, 14), dtype=np.uint8)
    frame[0, :3], frame[-1, -2:] = 0, 255
    return frame


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
def test_read_frame_modes(tmp_path: Path, frame: np.ndarray, mode: str) -> None:
    Image.fromarray(frame).convert(mode).save(tmp_path / "f.png")
    assert np.array_equal(read_frame(tmp_path / "f.png"), frame)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_write_frame_three_equal_channels_round_trip(tmp_path: Path, frame: np.ndarray,
                                                     suffix: str) -> None:
    write_frame(tmp_path / f"f{suffix}", frame)
    write_frame(tmp_path / f"g{suffix}", frame)
    assert (tmp_path / f"f{suffix}").read_bytes() == (tmp_path / f"g{suffix}").read_bytes()
    with Image.open(tmp_path / f"f{suffix}") as img:
        assert img.mode == "RGB" and img.size == (14, 10)
        rgb = np.asarray(img)
    assert np.abs(rgb.astype(int) - rgb[..., :1]).max() <= 1
    back = read_frame(tmp_path / f"f{suffix}")
    tolerance = 0 if suffix == ".png" else 40  # JPEG on random noise is lossy
    assert back.shape == frame.shape and np.abs(back.astype(int) - frame).max() <= tolerance


def test_write_frame_rejects_bad_input(tmp_path: Path, frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 \\[H, W\\]"):
        write_frame(tmp_path / "f.png", frame.astype(np.float32))
    with pytest.raises(ValueError, match="unsupported frame suffix"):
        write_frame(tmp_path / "f.tif", frame)
    with pytest.raises(ValueError, match="quality"):
        write_frame(tmp_path / "f.jpg", frame, quality=0)
    assert list(tmp_path.iterdir()) == []


def _truncated_png(path: Path) -> None:
    """A PNG cut in the middle of its data."""
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:600])


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "file not found"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello"), "not a readable image"),
    (_truncated_png, "not a readable image"),
    (lambda p: Image.fromarray(np.zeros((4, 4), np.uint16) + 300).save(p), "not an 8-bit"),
    (lambda p: Image.fromarray(np.dstack([np.zeros((4, 4), np.uint8)] * 2 + [
        np.full((4, 4), 200, np.uint8)])).save(p), "colour image"),
])
def test_read_frame_errors(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageError, match=rf"bad\.png: {message}"):
        read_frame(path)
