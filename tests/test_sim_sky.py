"""The simulator's real-sky parts: central ring, galaxies, spikes, field of view, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from xami.instrument import CENTRAL_RING_SIZE, CENTRAL_RING_XY, central_ring_frame_xy
from xami.sim.artefacts import central_ring
from xami.sim.config import ArtefactConfig, LayoutConfig, PsfConfig, SimConfig
from xami.sim.image import simulate_image, smooth_covered
from xami.sim.layout import coverage_fraction, draw_windows, field_of_view
from xami.sim.optics import render_galaxies, spike_points

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

ART = ArtefactConfig()


def test_central_ring_is_labelled_at_the_fixed_position_with_the_real_size() -> None:
    half_w, half_h = np.array(CENTRAL_RING_SIZE) / 2
    layer = central_ring(*CENTRAL_RING_XY, half_w, half_h, 1.0, 1e-3, 4, ART, phase=0.0)
    assert layer is not None
    rows, cols = np.nonzero(layer.mask)
    width = cols.max() - cols.min() + 1
    height = rows.max() - rows.min() + 1
    assert width == pytest.approx(41, abs=3) and height == pytest.approx(32, abs=3)
    # FITS orientation -> displayed frame (row 0 = top), continuous centre of the box
    x = layer.col0 + (cols.min() + cols.max() + 1) / 2
    y = 512 - (layer.row0 + (rows.min() + rows.max() + 1) / 2)
    assert (x, y) == pytest.approx(central_ring_frame_xy(), abs=2.0)
    assert central_ring_frame_xy() == (248.0, 246.0)


def test_simulated_central_rings_sit_at_the_instrument_position() -> None:
    centres = []
    for seed in range(12):
        sim = simulate_image(seed)
        for mask in sim.masks[sim.labels == 1]:
            rows, cols = np.nonzero(mask)
            centres.append((cols.mean(), rows.mean()))
    assert len(centres) >= 4
    assert np.median(np.array(centres), axis=0) == pytest.approx((248, 246), abs=6)


def test_galaxies_conserve_their_flux_and_are_extended() -> None:
    gal = np.array([[1024.0, 1024.0, 2.0, 20.0, 0.5, 0.3], [400.0, 600.0, 1.0, 12.0, 0.8, 1.0]])
    image = render_galaxies(gal, 1.5, 4)
    assert image.sum() == pytest.approx(3.0 * 1.5, rel=0.03)
    assert image[256, 256] < 0.2 * image.sum()  # resolved: the light is spread
    assert np.count_nonzero(image > 1e-3 * image.max()) > 100


def test_diffraction_spikes_only_for_bright_stars_along_the_diagonals() -> None:
    psf = PsfConfig()
    xy = np.array([[1000.0, 1000.0], [500.0, 500.0]])
    pts, flux = spike_points(xy, np.array([1000.0, 10.0]), psf)
    assert flux.sum() == pytest.approx(1000.0 * psf.spike_fraction)
    d = pts - xy[0]
    np.testing.assert_allclose(np.abs(d[:, 0]), np.abs(d[:, 1]), atol=1e-9)
    r = np.hypot(*d.T)
    assert r.min() == pytest.approx(psf.spike_extent[0]) and r.max() < psf.spike_extent[1]


def test_circular_field_of_view_cuts_the_corners() -> None:
    fov = field_of_view(1.1 * 1024, 4)
    assert fov.shape == (512, 512) and fov[0, 0] == 0 and fov[256, 256] == 1
    assert fov[256, 0] == 1 and fov[0, 256] == 1
    assert field_of_view(None, 4).min() == 1


def test_central_layout_is_the_small_window_alone() -> None:
    cfg = LayoutConfig()
    windows = draw_windows(np.random.default_rng(0), "central", 3000.0, cfg)
    assert len(windows) == 5 and all(w.binning == 1 for w in windows)
    cov = coverage_fraction(windows, 4)
    covered = np.argwhere(cov > 0)
    side = covered.max(axis=0) - covered.min(axis=0) + 1
    assert (side <= cfg.central_window / 4 + 4).all() and (side >= cfg.central_window / 4 - 4).all()


def test_smoothing_keeps_the_gaps_empty_and_the_level() -> None:
    data = np.zeros((40, 40), dtype=np.float32)
    data[:, :20] = 10.0
    out = smooth_covered(data, 0.8)
    assert (out[:, 20:] == 0).all()
    np.testing.assert_allclose(out[:, :20], 10.0, rtol=1e-5)


def test_frames_vary_in_stretch_and_optics() -> None:
    config = SimConfig()
    sims = [simulate_image(seed, config=config) for seed in range(6)]
    stretches = {round(s.stretch.asinh_a, 4) for s in sims}
    assert len(stretches) == 6
    lo, hi = config.stretch_range
    assert all(lo <= a <= hi for a in stretches)
