"""Scene -> counts image (FITS orientation) at a given binning, plus the labelled instances.

The light of the sky, the stars and the artefacts (counts/s per binned pixel) passes the
detector's coincidence loss, is multiplied by the exposure map, modulated by the mod-8 pattern,
drawn as Poisson counts and normalised to EXPOSURE (as ``ommosaic`` stacks windows). Binning 4
is exact for the counts: a sum of Poisson variables is Poisson.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from xami.instrument import DETECTOR_PIXELS, PIXEL_SCALE_ARCSEC
from xami.sim.artefacts import (
    Layer,
    central_ring,
    other_light,
    read_out_streak,
    smoke_ring,
    star_loop,
)
from xami.sim.config import CENTRE, MODEL_BY_LETTER, ArtefactConfig, PsfConfig, SimConfig
from xami.sim.layout import coverage_fraction, exposure_map, field_of_view
from xami.sim.optics import (
    apply_mod8,
    coincidence_loss,
    render_galaxies,
    render_stars,
    spike_points,
)
from xami.sim.scene import Scene

MASK_BINNING = 4
"""Masks and visibility are decided on the 512 grid of the released frames."""

Candidate = Callable[[int], "Layer | None"]


@dataclass(frozen=True)
class Rendered:
    """A rendered image.

    Attributes
    ----------
    data : numpy.ndarray
        ``float32 [n, n]`` counts normalised to EXPOSURE, FITS orientation; 0 = no coverage.
    layers : tuple of Layer
        The labelled (visible) artefacts on the 512 grid, FITS orientation.
    """

    data: np.ndarray
    layers: tuple[Layer, ...]


def sky_image(scene: Scene, binning: int) -> np.ndarray:
    """Background rate per binned pixel with a smooth large-scale modulation."""
    n = DETECTOR_PIXELS // binning
    t = (np.arange(n) + 0.5) / n * 2 - 1
    g = scene.gradient
    fx = 1 + g[0] * t + g[2] * (t**2 - 1 / 3)
    fy = 1 + g[1] * t + g[3] * (t**2 - 1 / 3)
    return scene.sky_rate * binning**2 * np.outer(fy, fx)


def _on_detector(xy: np.ndarray) -> np.ndarray:
    """Sources whose light falls on the detector."""
    return np.all((xy >= 0) & (xy < DETECTOR_PIXELS), axis=1)


def candidates(scene: Scene, config: SimConfig) -> list[Candidate]:
    """Every artefact the scene produces, as functions of the binning."""
    a: ArtefactConfig = config.artefacts
    out: list[Candidate] = []
    on = _on_detector(scene.star_xy) & (scene.star_rate >= min(a.streak_min_rate,
                                                               a.ghost_min_rate))
    for (x, y), rate in zip(scene.star_xy[on], scene.star_rate[on], strict=True):
        if rate >= a.streak_min_rate:
            out += [partial(read_out_streak, float(x), float(y), float(rate), cfg=a,
                            side=side) for side in (-1, 1)]
        far = np.hypot(x - CENTRE, y - CENTRE) * PIXEL_SCALE_ARCSEC >= a.ghost_min_distance
        if rate >= a.ghost_min_rate and far:
            out.append(partial(smoke_ring, float(x), float(y), float(rate), cfg=a))
    for k, (shape, rate) in enumerate(zip(scene.field.loop_shape, scene.loop_rate, strict=True)):
        if rate >= a.loop_min_rate:
            out.append(partial(star_loop, shape, float(rate), cfg=a, stripes=5 + 3 * k % 8))
    if scene.ring is not None:
        x, y, half_w, half_h, level, phase = scene.ring
        out.append(partial(central_ring, x, y, half_w, half_h, level, scene.sky_rate, cfg=a,
                           phase=phase))
    for x, y, size, level, seed in scene.others:
        out.append(partial(other_light, x, y, size, level, scene.sky_rate, cfg=a,
                           seed=int(seed)))
    return out


def _visible(layer: Layer, sky: np.ndarray, expo: np.ndarray) -> bool:
    """Mean signal over the covered mask reaches ``visibility`` x the background noise."""
    rows, cols = layer.slices
    m = layer.mask & (expo[rows, cols] > 0)
    if m.sum() < 3:
        return False
    e = expo[rows, cols][m]
    signal = (layer.flux[m] * e).mean()
    return bool(signal >= layer.visibility * np.sqrt((sky[rows, cols][m] * e).mean()))


def scene_exposure(scene: Scene, binning: int) -> np.ndarray:
    """Exposure map of the scene's windows inside its circular field of view."""
    return exposure_map(scene.windows, binning) * field_of_view(scene.fov_radius, binning)


def scene_psf(scene: Scene, config: SimConfig) -> PsfConfig:
    """The PSF of this image (its own core width and halo)."""
    return replace(config.psf, core_fwhm=scene.optics[0], wing_fraction=scene.optics[1])


def scene_light(scene: Scene, config: SimConfig, binning: int) -> np.ndarray:
    """Sky, stars with their diffraction spikes and galaxies, counts/s per binned pixel."""
    psf = scene_psf(scene, config)
    pts, flux = spike_points(scene.star_xy, scene.star_rate, psf)
    xy = np.concatenate([scene.star_xy, pts])
    rate = np.concatenate([scene.star_rate, flux])
    fm, v = MODEL_BY_LETTER[scene.filter], MODEL_BY_LETTER["V"]
    colour = fm.rate_v20[3] / v.rate_v20[3]  # a G0-like spectrum
    return (sky_image(scene, binning) + render_stars(xy, rate, binning, psf)
            + render_galaxies(scene.field.galaxies, colour, binning))


def select_visible(scene: Scene, config: SimConfig) -> tuple[list[Candidate], list[Layer]]:
    """The candidates that are visible on the 512 grid, and their 512-grid layers."""
    b = MASK_BINNING
    sky, expo = sky_image(scene, b), scene_exposure(scene, b)
    keep, layers = [], []
    for cand in candidates(scene, config):
        layer = cand(b)
        if layer is not None and _visible(layer, sky, expo):
            keep.append(cand)
            layers.append(layer)
    return keep, layers


def render_scene(scene: Scene, rng: np.random.Generator, config: SimConfig, *,
                 binning: int = MASK_BINNING) -> Rendered:
    """Render ``scene`` at ``binning`` (1 or 4): normalised counts and the visible instances."""
    keep, layers = select_visible(scene, config)
    light = scene_light(scene, config, binning)
    for layer in (layers if binning == MASK_BINNING else [c(binning) for c in keep]):
        if layer is not None:
            light[layer.slices] += layer.flux
    expo = scene_exposure(scene, binning)
    expected = coincidence_loss(light, binning, config.psf) * expo
    apply_mod8(expected, scene.star_xy, scene.star_rate, binning, config.psf)
    counts = rng.poisson(expected)
    frac = coverage_fraction(scene.windows, binning) * field_of_view(scene.fov_radius, binning)
    data = np.zeros(expected.shape, dtype=np.float32)
    ok = expo > 0
    data[ok] = counts[ok] * (scene.exposure * frac[ok] / expo[ok])
    return Rendered(data=data, layers=tuple(layers))
