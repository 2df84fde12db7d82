"""Mask <-> polygon conversion is exact, thin and diagonal structures included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xami.data.polygons import mask_to_polygons, polygons_to_mask

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)


def _shapes(rng: np.random.Generator) -> list[np.ndarray]:
    yy, xx = np.mgrid[:48, :48]
    streak = np.zeros((48, 48), bool)
    streak[:, 20:21] = True  # one pixel wide, full height
    diagonal = np.zeros((48, 48), bool)
    diagonal[np.arange(40) + 4, np.arange(40) // 2 + 3] = True
    ring = (np.hypot(yy - 24, xx - 24) < 12) & (np.hypot(yy - 24, xx - 24) > 8)
    blobs = ndimage.binary_opening(rng.random((48, 48)) > 0.6)
    smooth = [ndimage.gaussian_filter(rng.random((48, 48)), sigma) > 0.5 for sigma in (1, 2, 4)]
    ellipses = []
    for angle in np.linspace(0, np.pi, 7):  # every edge slope, where simplification is tempted
        u = (xx - 24) * np.cos(angle) + (yy - 24) * np.sin(angle)
        v = -(xx - 24) * np.sin(angle) + (yy - 24) * np.cos(angle)
        ellipses.append((u / 20) ** 2 + (v / 7) ** 2 < 1)
    return [streak, diagonal, ring, blobs, *smooth, *ellipses]


def test_round_trip_is_exact(rng):
    for mask in _shapes(rng):
        back = polygons_to_mask(mask_to_polygons(mask), *mask.shape)
        np.testing.assert_array_equal(back, ndimage.binary_fill_holes(mask))


def test_outlines_are_simplified():
    yy, xx = np.mgrid[:64, :64]
    (disc,) = mask_to_polygons(np.hypot(yy - 32, xx - 32) < 25)
    assert 16 <= len(disc) <= 80  # the pixel staircase has ~200 corners


def test_single_pixel_polygon_is_a_diamond_around_its_centre():
    mask = np.zeros((5, 5), bool)
    mask[2, 3] = True
    (poly,) = mask_to_polygons(mask)
    assert sorted(map(tuple, poly.tolist())) == [(3.0, 2.5), (3.5, 2.0), (3.5, 3.0), (4.0, 2.5)]


def test_empty_mask_has_no_polygon():
    assert mask_to_polygons(np.zeros((4, 4), bool)) == ()
    assert not polygons_to_mask((), 4, 4).any()


@pytest.mark.parametrize("shape", [(1, 1), (3, 7)])
def test_full_mask_touching_the_border(shape):
    mask = np.ones(shape, bool)
    np.testing.assert_array_equal(polygons_to_mask(mask_to_polygons(mask), *shape), mask)
