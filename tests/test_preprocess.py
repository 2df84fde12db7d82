"""Tests of xami.preprocess: rebinning, the stretch and preprocessing an image array."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import ZScaleInterval

from _fits_factory import STAR, sky_image, tan_wcs
from xami.errors import InputError
from xami.instrument import coverage_mask
from xami.preprocess import (
    DEFAULT_ASINH_A,
    preprocess_image,
    rebin,
    stretch_to_uint8,
    zscale_limits,
)

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

OUT = 64  # output side (factor 4 from SIZE, as 2048 -> 512)


# --------------------------------------------------------------------------- pure functions
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
def test_preprocess_image_frame(rng: np.random.Generator) -> None:
    frame = preprocess_image(sky_image(rng), wcs=tan_wcs(), size=OUT, asinh_a=0.5)
    assert frame.image.shape == (OUT, OUT) and frame.params.factor == 4
    assert frame.params.asinh_a == 0.5
    row, col = OUT - 1 - 30, 20  # the star's block, FITS row 30 of 64 after rebinning
    assert frame.image[row, col] == 255 and frame.image[row - 3:row + 4, col - 3].max() < 255
    assert (frame.image[:8, -8:] == 0).all() and (frame.image[:, 50:54] == 0).all()
    true = tan_wcs().pixel_to_world(STAR[1], STAR[0])
    assert frame.wcs.pixel_to_world(col, row).separation(true).deg < 1e-9


@pytest.mark.parametrize(("shape", "size", "message"), [
    ((64, 32), 32, "64x32 pixels cannot be rebinned to 32x32"),
    ((48, 48), 32, "48x48 pixels cannot be rebinned"),
    ((16, 16), 32, "16x16 pixels cannot be rebinned"),
])
def test_preprocess_image_shape_errors(shape: tuple[int, int], size: int, message: str) -> None:
    with pytest.raises(InputError, match=rf"^image of {message}"):
        preprocess_image(np.ones(shape, np.float32), size=size)


def test_preprocess_image_without_coverage_or_wcs() -> None:
    with pytest.raises(InputError, match=r"^no covered pixel"):
        preprocess_image(np.zeros((8, 8), np.float32), size=4)
    frame = preprocess_image(np.arange(64, dtype=np.float32).reshape(8, 8), size=8)
    assert frame.wcs is None and frame.params.factor == 1 and frame.image[-1, 0] == 0
