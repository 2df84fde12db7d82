"""One function per artefact class: its light (counts/s per binned pixel) and its exact mask.

Every function works on the binned grid in FITS orientation (row 0 = bottom) and returns a
`Layer`: a patch of the grid with the artefact's incident rate and the boolean mask of the
pixels where that rate exceeds a fixed fraction of its peak (holes filled: XAMI annotations are
outlines). Positions and sizes are in unbinned pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.special import erf

from xami.classes import BY_NAME
from xami.instrument import DETECTOR_PIXELS, PIXEL_SCALE_ARCSEC
from xami.sim.config import CENTRE, ArtefactConfig

_AS = 1.0 / PIXEL_SCALE_ARCSEC  # unbinned pixels per arcsec


@dataclass(frozen=True)
class Layer:
    """An artefact's contribution to one image.

    Attributes
    ----------
    category_id : int
        COCO id of the class.
    row0, col0 : int
        Grid position of the patch's first pixel.
    flux : numpy.ndarray
        ``float64 [h, w]`` incident rate, counts/s per binned pixel.
    mask : numpy.ndarray
        ``bool [h, w]`` where the artefact is significant (holes filled).
    visibility : float
        Least mean signal-to-noise per mask pixel for the instance to be labelled.
    """

    category_id: int
    row0: int
    col0: int
    flux: np.ndarray
    mask: np.ndarray
    visibility: float

    @property
    def slices(self) -> tuple[slice, slice]:
        """Where the patch lies in the full grid."""
        h, w = self.flux.shape
        return slice(self.row0, self.row0 + h), slice(self.col0, self.col0 + w)


def _patch(x: float, y: float, half: float, binning: int):
    """Binned-pixel centres (unbinned units) of the grid patch within ``half`` of ``(x, y)``."""
    n = DETECTOR_PIXELS // binning
    c0, c1 = max(0, int((x - half) / binning)), min(n, int((x + half) / binning) + 1)
    r0, r1 = max(0, int((y - half) / binning)), min(n, int((y + half) / binning) + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    xs = (np.arange(c0, c1) + 0.5) * binning
    ys = (np.arange(r0, r1) + 0.5) * binning
    return r0, c0, xs[None, :], ys[:, None]


def _layer(name: str, where, flux: np.ndarray, level: float, visibility: float) -> Layer | None:
    """A layer whose mask is where ``flux`` exceeds ``level`` of its peak (holes filled)."""
    peak = flux.max()
    if peak <= 0:
        return None
    mask = ndimage.binary_fill_holes(flux >= level * peak)
    return Layer(BY_NAME[name].coco_id, where[0], where[1], flux, mask, visibility)


def streak_gap(rate: float, cfg: ArtefactConfig) -> float:
    """Half-height (unbinned px) of the parent's halo that annotators leave out of a streak."""
    a, b = cfg.streak_gap
    return a + b * np.log10(max(rate, cfg.streak_min_rate) / cfg.streak_min_rate)


def read_out_streak(x: float, y: float, rate: float, binning: int, cfg: ArtefactConfig, *,
                    side: int) -> Layer | None:
    """One labelled part of the read-out streak of a source at ``(x, y)`` (counts/s ``rate``).

    No shutter: the fraction ``readout_fraction`` of the source's photons arrives during frame
    transfer and is spread evenly along its column over all 2048 rows; across columns it follows
    a Gaussian of ``streak_sigma`` (integrated over each binned column). As the real annotators
    did, the streak is labelled where it shows above the background, in two instances: below
    (``side=-1``) and above (``side=1``) the parent, leaving out the parent's halo
    (`streak_gap`). Each part carries the light of its half of the column.
    """
    n = DETECTOR_PIXELS // binning
    s = cfg.streak_sigma
    c0 = max(0, int((x - 5 * s) / binning))
    c1 = min(n, int((x + 5 * s) / binning) + 1)
    split = int(np.clip(round(y / binning), 0, n))
    r0, r1 = (0, split) if side < 0 else (split, n)
    if r1 - r0 < 1:
        return None
    edges = np.arange(c0, c1 + 1) * binning
    cdf = 0.5 * (1 + erf((edges - x) / (np.sqrt(2) * s)))
    per_row = rate * cfg.readout_fraction / DETECTOR_PIXELS * binning
    flux = np.broadcast_to(per_row * np.diff(cdf), (r1 - r0, c1 - c0)).copy()
    rows = (np.arange(r0, r1) + 0.5) * binning
    outside = np.abs(rows - y) >= streak_gap(rate, cfg)
    layer = _layer("read-out-streak", (r0, c0), flux, cfg.mask_level, cfg.visible_streak)
    if layer is None or outside.sum() * binning < cfg.streak_min_length:
        return None
    return Layer(layer.category_id, r0, c0, flux, layer.mask & outside[:, None],
                 layer.visibility)


def smoke_ring_centre(x: float, y: float, cfg: ArtefactConfig) -> tuple[float, float]:
    """Ghost centre: displaced radially outward from the field centre by ``a + b r``."""
    dx, dy = x - CENTRE, y - CENTRE
    r = np.hypot(dx, dy)
    a, b = cfg.ghost_offset
    shift = a * _AS + b * r
    return x + shift * dx / max(r, 1e-9), y + shift * dy / max(r, 1e-9)


def smoke_ring(x: float, y: float, rate: float, binning: int,
               cfg: ArtefactConfig) -> Layer | None:
    """Smoke ring of a bright star at ``(x, y)``: an out-of-focus annulus (window reflection).

    The annulus (outer radius ``ghost_radius``, growing 15 % towards the edge; inner radius
    ``ghost_inner`` of it, the secondary-mirror shadow) holds ``ghost_efficiency`` of the
    star's flux and is softened by 1".
    """
    cx, cy = smoke_ring_centre(x, y, cfg)
    outer = cfg.ghost_radius * _AS * (1 + 0.15 * np.hypot(x - CENTRE, y - CENTRE) / CENTRE)
    inner = cfg.ghost_inner * outer
    where = _patch(cx, cy, outer + 4 * _AS, binning)
    if where is None:
        return None
    r = np.hypot(where[2] - cx, where[3] - cy)
    soft = np.sqrt(2) * _AS
    shape = 0.5 * (erf((outer - r) / soft) - erf((inner - r) / soft))
    peak = cfg.ghost_efficiency * rate / (np.pi * (outer**2 - inner**2)) * binning**2
    return _layer("smoke-ring", where[:2], peak * shape, 0.5, cfg.visible_ghost)


def central_ring(x: float, y: float, half_w: float, half_h: float, level: float, sky: float,
                 binning: int, cfg: ArtefactConfig, phase: float) -> Layer | None:
    """Central ring: background light scattered off the detector window, fixed on the detector.

    A faint, diffuse, flat-topped elliptical patch (half extents ``half_w`` x ``half_h`` unbinned
    px at half maximum, a little lopsided) at ``level`` times the sky (omscattered: the template
    scales with the background), on a broader faint halo; the mask is the patch at half maximum,
    as the real annotators boxed it (41 x 32 px at 512); the halo is not labelled.
    """
    where = _patch(x, y, 2.5 * max(half_w, half_h), binning)
    if where is None:
        return None
    dx, dy = where[2] - x, where[3] - y
    rho = np.hypot(dx / half_w, dy / half_h) * _HALF_MAX_RHO
    lop = 1 + 0.2 * np.cos(np.arctan2(dy, dx) - phase)
    patch = lop * np.exp(-0.5 * rho**4)
    halo = 0.15 * np.exp(-0.5 * (rho / 2.2) ** 2)
    scale = level * sky * binning**2
    layer = _layer("central-ring", where[:2], scale * patch, 0.45, cfg.visible_ring)
    if layer is None:
        return None
    return Layer(layer.category_id, layer.row0, layer.col0, scale * (patch + halo),
                 layer.mask, layer.visibility)


_HALF_MAX_RHO = (2 * np.log(2)) ** 0.25
"""Where ``exp(-rho^4 / 2)`` falls to half its peak."""


def star_loop(shape: np.ndarray, rate: float, binning: int, cfg: ArtefactConfig,
              stripes: float) -> Layer | None:
    """Star loop: an elliptical arc of light scattered from a star 12'-15' off axis.

    ``shape`` is centre x, y, semi-major axis, axis ratio, orientation and arc span (radians);
    the arc (thickness 12 % of the axis, with faint striations and a faint inner glow) holds
    ``loop_efficiency`` of the parent's flux.
    """
    cx, cy, semi, q, psi, span = (float(v) for v in shape)
    thick = 0.12 * semi
    where = _patch(cx, cy, semi + 4 * thick, binning)
    if where is None:
        return None
    dx, dy = where[2] - cx, where[3] - cy
    u = dx * np.cos(psi) + dy * np.sin(psi)
    v = (-dx * np.sin(psi) + dy * np.cos(psi)) / q
    rho, theta = np.hypot(u, v), np.arctan2(v, -u)  # theta = 0 faces the field centre
    arc = np.clip(1.5 * (np.cos(theta / 2) ** 2 - np.cos(span / 4) ** 2) / (1 - np.cos(
        span / 4) ** 2 + 1e-9), 0, 1) if span < 2 * np.pi else 1.0
    band = np.exp(-0.5 * ((rho - semi) / thick) ** 2) * (1 + 0.25 * np.cos(stripes * theta))
    glow = 0.2 * (rho < semi) * np.exp(-0.5 * (rho / semi) ** 2)
    area = 2 * np.pi * semi * np.sqrt((1 + q**2) / 2) * thick * np.sqrt(2 * np.pi)
    peak = cfg.loop_efficiency * rate / area * binning**2
    return _layer("star-loop", where[:2], peak * arc * (band + glow), 0.25, cfg.visible_loop)


def other_light(x: float, y: float, size: float, level: float, sky: float, binning: int,
                cfg: ArtefactConfig, seed: int) -> Layer | None:
    """'Other' scattered light: a large irregular diffuse patch at ``level`` times the sky."""
    rng = np.random.default_rng(seed)
    where = _patch(x, y, 1.6 * size, binning)
    if where is None:
        return None
    flux = np.zeros(np.broadcast_shapes(where[2].shape, where[3].shape))
    for _ in range(4):
        ox, oy = rng.normal(0, 0.3 * size, size=2)
        sx, sy = rng.uniform(0.25, 0.6, size=2) * size
        flux += np.exp(-0.5 * (((where[2] - x - ox) / sx) ** 2 + ((where[3] - y - oy) / sy) ** 2))
    flux *= level * sky * binning**2 / flux.max()
    return _layer("other", where[:2], flux, 0.3, cfg.visible_other)
