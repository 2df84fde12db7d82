"""Tests of xami.io.frames: reading inputs as frames, ``xami preprocess`` files and sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from _fits_factory import STAR, sky_image, tan_wcs, write_om_file
from xami.cli import main
from xami.errors import FitsError, InputError, UsageError
from xami.io.fits import OMImage, read_om_image, write_image_fits
from xami.io.frames import (
    input_files,
    load_input,
    preprocess_files,
    preprocess_om_image,
    read_sidecar,
)
from xami.io.images import write_frame
from xami.preprocess import DEFAULT_ASINH_A, preprocess_image
from xami.wcs import rebin_wcs

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

OUT = 64  # output side of `xami preprocess --size 64` on the 256 test images (factor 4)


@pytest.fixture
def fits_file(tmp_path: Path, rng: np.random.Generator) -> Path:
    """OM layout: PRIMARY with OBS_ID/FILTER, image + WCS in an extension."""
    return write_om_file(tmp_path / "in" / "S0123456789_V.fits.gz", rng)


def _om(data: np.ndarray) -> OMImage:
    """An in-memory OMImage without WCS."""
    return OMImage(data=data, header=fits.Header(), wcs=None, path="x/S1.fits", hdu=0)


# --------------------------------------------------------------------------- FITS preprocessing
def test_preprocess_om_image_is_preprocess_image_of_its_data(fits_file: Path) -> None:
    om = read_om_image(fits_file)
    frame = preprocess_om_image(om, size=OUT, asinh_a=0.5)
    pure = preprocess_image(om.data, wcs=om.wcs, size=OUT, asinh_a=0.5)
    np.testing.assert_array_equal(frame.image, pure.image)
    assert frame.params == pure.params and frame.params.factor == 4
    assert preprocess_om_image(om).image.shape == (256, 256)  # 64 to 512: read at its own size


@pytest.mark.parametrize(("shape", "size", "message"), [
    ((64, 32), 32, "image of 64x32 pixels cannot be rebinned to 32x32"),
    ((16, 16), None, "image of 16x16 pixels: xami reads images that are square"),
    ((600, 600), None, "image of 600x600 pixels"),
    ((8, 8), 4, "no covered pixel"),
])
def test_preprocess_om_image_errors_name_the_file(shape: tuple[int, int], size: int | None,
                                                  message: str) -> None:
    data = np.zeros(shape, np.float32) if message == "no covered pixel" else np.ones(shape)
    with pytest.raises(FitsError, match=rf"^x/S1\.fits: {message}"):
        preprocess_om_image(_om(data.astype(np.float32)), size=size)


# --------------------------------------------------------------------------- preprocess_files
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
    assert sidecar["source"] == str(fits_file)
    assert sidecar["header"] == {"OBS_ID": "0123456789", "FILTER": "V", "EXPOSURE": 4400.0}
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


# --------------------------------------------------------------------------- load_input
def test_png_and_fits_inputs_give_the_frame(tmp_path: Path, rng: np.random.Generator) -> None:
    frame = (rng.random((128, 128)) * 200 + 20).astype(np.uint8)
    write_frame(tmp_path / "S0000000001_U.png", frame)
    loaded = load_input(tmp_path / "S0000000001_U.png")
    np.testing.assert_array_equal(loaded.frame, frame)
    assert loaded.cards == {"SRCFILE": "S0000000001_U.png"} and loaded.grid.wcs is None
    counts = np.flipud(frame).astype(np.float32)  # FITS rows run bottom-up
    write_image_fits(tmp_path / "S0000000001_U.fits", counts)
    fits_frame = load_input(str(tmp_path / "S0000000001_U.fits") + "[0]").frame
    assert fits_frame.shape == (128, 128)
    # the stretch is monotonic and flips rows back: the brightest pixel stays in place
    assert np.unravel_index(fits_frame.argmax(), frame.shape) == np.unravel_index(
        frame.argmax(), frame.shape)


def test_fits_input_cards_and_mask_grids(tmp_path: Path, rng: np.random.Generator) -> None:
    wcs = tan_wcs(size=1024)
    data = np.kron(sky_image(rng), np.ones((4, 4), np.float32))  # 1024: rebinned by 2 to 512
    write_image_fits(tmp_path / "big.fits", data, wcs=wcs,
                     header=fits.Header({"OBS_ID": "0123456789", "PROPOSER": "not kept"}))
    loaded = load_input(tmp_path / "big.fits")
    assert loaded.frame.shape == (512, 512) and loaded.grid.factor == 1
    assert loaded.grid.input_factor == 2
    np.testing.assert_allclose(loaded.grid.wcs.wcs.crpix, rebin_wcs(wcs, 2).wcs.crpix)
    assert {k: loaded.cards[k] for k in ("SRCFILE", "SRCHDU", "STRETCH", "REBIN", "OBS_ID")} == {
        "SRCFILE": "big.fits", "SRCHDU": "0", "STRETCH": "zscale+asinh", "REBIN": 2,
        "OBS_ID": "0123456789"}
    assert loaded.cards["ASINH_A"] == DEFAULT_ASINH_A and "PROPOSER" not in loaded.cards
    native = load_input(tmp_path / "big.fits", mask_grid="native")
    np.testing.assert_array_equal(native.frame, loaded.frame)
    assert (native.grid.factor, native.grid.input_factor) == (2, 1)
    np.testing.assert_allclose(native.grid.wcs.wcs.crpix, wcs.wcs.crpix)


def test_png_with_sidecar_reads_its_wcs_and_cards(fits_file: Path, tmp_path: Path) -> None:
    assert preprocess_files([fits_file], tmp_path / "out", size=OUT) == []
    png, sidecar = tmp_path / "out" / "S0123456789_V.png", tmp_path / "out" / "S0123456789_V.json"
    loaded = load_input(png)
    assert loaded.frame.shape == (OUT, OUT) and loaded.grid.input_factor == 4
    np.testing.assert_allclose(loaded.grid.wcs.wcs.crpix, rebin_wcs(tan_wcs(), 4).wcs.crpix)
    assert loaded.cards["REBIN"] == 4 and loaded.cards["OBS_ID"] == "0123456789"
    assert input_files(str(png)) == [png, sidecar]
    sidecar.unlink()
    assert load_input(png).grid.wcs is None and input_files(str(png)) == [png]
    assert input_files(f"{fits_file}[IMAGE]") == [fits_file]


def test_unreadable_inputs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FitsError, match=r"missing\.fits: file not found"):
        load_input(tmp_path / "missing.fits")
    write_image_fits(tmp_path / "tiny.fits", np.ones((16, 16), np.float32))
    with pytest.raises(FitsError, match=r"tiny\.fits: image of 16x16 pixels"):
        load_input(tmp_path / "tiny.fits")


def test_the_reader_is_on_the_package_face():
    import xami

    assert xami.load_input is load_input and "load_input" in xami.__all__


def test_an_unknown_mask_grid_is_refused(fits_file: Path) -> None:
    with pytest.raises(UsageError, match=r"mask_grid must be one of .*'native'\), got 'nat'"):
        load_input(fits_file, mask_grid="nat")
