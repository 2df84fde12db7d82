"""Draw scene descriptions (pure parameters, no pixels) from a random generator.

Coordinates are continuous unbinned detector pixels in FITS orientation: ``x`` along columns,
``y`` along rows with ``y = 0`` at the bottom; pixel ``(row, col)`` covers ``x in [col, col+1)``.
A `Field` is what all filters of one ObsID share (pointing, stars, loop parents); a `Scene` is one
image of that field in one filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xami.instrument import DETECTOR_PIXELS
from xami.sim.config import ARCMIN_PX, CENTRE, MODEL_BY_LETTER, FilterModel, SimConfig
from xami.sim.layout import Window, draw_windows


@dataclass(frozen=True)
class Field:
    """What the images of one ObsID share.

    Attributes
    ----------
    obs_id : str
        10-digit ObsID.
    filters : tuple of str
        Filter letters observed (one image each).
    ra, dec, pa : float
        Pointing and position angle, degrees.
    date : str
        DATE-OBS (ISO).
    layout : str
        Observing layout kind (see `LayoutConfig.kinds`).
    density : float
        Bright-star density of the field relative to the mean (Gamma distributed).
    faint_xy, faint_v, faint_type : numpy.ndarray
        Faint stars: ``[N, 2]`` position, V magnitude, index into `SPECTRAL_TYPES`.
    bright_xy, bright_gamma : numpy.ndarray
        Bright stars: ``[K, 2]`` position and arrival value of a unit-rate Poisson process;
        in a filter whose mean number above 60 counts/s is ``mu`` their rate is
        ``60 (gamma / (density mu)) ** (-1 / slope)``, so the brightness order is shared.
    loop_xy, loop_gamma, loop_shape : numpy.ndarray
        Star-loop parents 12'-15' off axis, their arrival values, and loop geometry
        ``[L, 6]``: centre x, y, semi-major axis (px), axis ratio, orientation and arc span
        (rad).
    target : tuple of float or None
        On-axis target: x, y and its rate quantile in [0, 1].
    galaxies : numpy.ndarray
        Resolved galaxies ``[G, 6]``: x, y, V-band rate (counts/s), effective radius (px), axis
        ratio and orientation (rad); the hard negatives the artefact classes must not take.
    """

    obs_id: str
    filters: tuple[str, ...]
    ra: float
    dec: float
    pa: float
    date: str
    layout: str
    density: float
    faint_xy: np.ndarray
    faint_v: np.ndarray
    faint_type: np.ndarray
    bright_xy: np.ndarray
    bright_gamma: np.ndarray
    loop_xy: np.ndarray
    loop_gamma: np.ndarray
    loop_shape: np.ndarray
    target: tuple[float, float, float] | None
    galaxies: np.ndarray


@dataclass(frozen=True)
class Scene:
    """One image: a field seen in one filter with one exposure layout.

    Attributes
    ----------
    field : Field
        The shared field.
    filter : str
        Filter letter.
    exposure : float
        EXPOSURE, s (data are normalised to it).
    windows : tuple of Window
        The exposed windows.
    star_xy, star_rate : numpy.ndarray
        All point sources in this filter: ``[N, 2]`` positions and raw rates (counts/s).
    loop_rate : numpy.ndarray
        Raw rate of each loop parent in this filter, counts/s.
    sky_rate : float
        Mean background, counts/s per unbinned pixel.
    gradient : numpy.ndarray
        ``[4]`` large-scale background modulation: x slope, y slope, x^2, y^2 (fractions).
    ring : tuple of float or None
        Central ring x, y, half width, half height (px), level (sky units), lopsidedness phase
        (rad), or None when too faint to see.
    others : tuple of tuple of float
        'Other' scattered-light patches: x, y, size (px), level (sky units), seed.
    optics : tuple of float
        This image's PSF core FWHM (arcsec) and wing fraction.
    fov_radius : float or None
        Radius of the circular field of view (unbinned px from the centre) or None (no cut).
    asinh_a : float
        Asinh parameter of the displayed frame's stretch.
    blur : float
        Gaussian smoothing of the displayed frame, 512-px sigma (0: none).
    """

    field: Field
    filter: str
    exposure: float
    windows: tuple[Window, ...]
    star_xy: np.ndarray
    star_rate: np.ndarray
    loop_rate: np.ndarray
    sky_rate: float
    gradient: np.ndarray
    ring: tuple[float, float, float, float, float, float] | None
    others: tuple[tuple[float, ...], ...]
    optics: tuple[float, float]
    fov_radius: float | None
    asinh_a: float
    blur: float


def filter_weights(config: SimConfig) -> tuple[list[str], np.ndarray]:
    """Filter letters and their probabilities (the released filter mix)."""
    letters = [f.letter for f in config.filters]
    counts = np.array([f.images for f in config.filters], dtype=float)
    return letters, counts / counts.sum()


def draw_filters(rng: np.random.Generator, config: SimConfig, n: int) -> tuple[str, ...]:
    """``n`` distinct filters drawn from the released mix."""
    letters, p = filter_weights(config)
    return tuple(str(f) for f in rng.choice(letters, size=n, replace=False, p=p))


def draw_field(rng: np.random.Generator, config: SimConfig, *, obs_id: str,
               filters: tuple[str, ...]) -> Field:
    """Draw the shared part of an observation: pointing, layout, stars, loop parents."""
    lay, st = config.layout, config.stars
    ra, dec = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-0.98, 0.99)))
    density = rng.gamma(st.density_shape, 1.0 / st.density_shape)
    faint = _draw_faint(rng, config, density)
    bright = _draw_bright(rng, config, density, filters)
    loops = _draw_loop_parents(rng, config, density, filters)
    target = None
    if rng.random() < st.target_probability:
        x, y = CENTRE + rng.normal(0, 15, size=2)
        target = (float(x), float(y), float(rng.random()))
    day = rng.integers(0, 8400)
    date = str(np.datetime64("2000-03-01") + np.timedelta64(int(day), "D")) + "T00:00:00"
    return Field(obs_id=obs_id, filters=filters, ra=float(ra), dec=float(dec),
                 pa=float(rng.uniform(0, 360)), date=date,
                 layout=str(rng.choice(lay.kinds, p=np.array(lay.weights) / sum(lay.weights))),
                 density=float(density), faint_xy=faint[0], faint_v=faint[1], faint_type=faint[2],
                 bright_xy=bright[0], bright_gamma=bright[1], loop_xy=loops[0],
                 loop_gamma=loops[1], loop_shape=loops[2], target=target,
                 galaxies=_draw_galaxies(rng, config))


def _uniform_xy(rng: np.random.Generator, n: int, margin: float) -> np.ndarray:
    """``n`` positions uniform over the detector plus ``margin`` pixels on each side."""
    return rng.uniform(-margin, DETECTOR_PIXELS + margin, size=(n, 2))


def _draw_faint(rng: np.random.Generator, config: SimConfig,
                density: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faint stars: V from exponential number counts, spectral types from the mix."""
    st = config.stars
    v0, v1 = st.v_range
    k = st.counts_slope * np.log(10.0)
    share = (1.0 + 2.0 * st.outside_margin / DETECTOR_PIXELS) ** 2
    scale = st.faint_floor + (1.0 - st.faint_floor) * density
    mean_n = st.n_v20 * scale * share * (np.exp(k * (v1 - 20.0)) - np.exp(k * (v0 - 20.0)))
    n = rng.poisson(mean_n)
    u = rng.random(n)
    v = np.log(np.exp(k * v0) + u * (np.exp(k * v1) - np.exp(k * v0))) / k
    types = rng.choice(len(st.type_weights), size=n, p=np.array(st.type_weights))
    return _uniform_xy(rng, n, st.outside_margin), v, types


def _log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float], n: int) -> np.ndarray:
    """``n`` values log-uniform between the two bounds."""
    return np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]), size=n))


def _draw_galaxies(rng: np.random.Generator, config: SimConfig) -> np.ndarray:
    """Resolved galaxies: many small ones anywhere, sometimes a large one near the pointing."""
    st = config.stars
    n = rng.poisson(st.galaxies)
    xy = _uniform_xy(rng, n, 0.0)
    rate = _log_uniform(rng, st.galaxy_rate, n)
    size = _log_uniform(rng, st.galaxy_size, n) * ARCMIN_PX / 60.0
    if rng.random() < st.big_galaxy_probability:
        xy = np.vstack([xy, CENTRE + rng.normal(0, 250, size=(1, 2))])
        rate = np.append(rate, _log_uniform(rng, st.big_galaxy_rate, 1))
        size = np.append(size, _log_uniform(rng, st.big_galaxy_size, 1) * ARCMIN_PX / 60.0)
    q = rng.uniform(0.15, 1.0, size=size.size)
    pa = rng.uniform(0, np.pi, size=size.size)
    return np.column_stack([xy, rate, size, q, pa]).reshape(-1, 6)


def _gamma_limit(config: SimConfig, density: float, filters: tuple[str, ...]) -> float:
    """Largest arrival value needed: down to the faintest bright-process rate in any filter."""
    st = config.stars
    mu = max(MODEL_BY_LETTER[f].bright_stars for f in filters)
    return density * mu * (60.0 / st.bright_min_rate) ** st.bright_slope


def _draw_bright(rng: np.random.Generator, config: SimConfig, density: float,
                 filters: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Bright stars on (and just off) the detector as a Poisson process in arrival value."""
    limit = _gamma_limit(config, density, filters)
    n = rng.poisson(limit)
    gamma = np.sort(rng.uniform(0, limit, size=n))
    return _uniform_xy(rng, n, 0.0), gamma


def _draw_loop_parents(rng: np.random.Generator, config: SimConfig, density: float,
                       filters: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bright stars 12'-15' off axis (same number counts as on the detector, per unit area)."""
    a = config.artefacts
    t0, t1 = a.loop_offaxis
    area = np.pi * (t1**2 - t0**2) / (DETECTOR_PIXELS / ARCMIN_PX) ** 2
    limit = _gamma_limit(config, density, filters) * area
    n = rng.poisson(limit)
    gamma = np.sort(rng.uniform(0, limit, size=n))
    theta = np.sqrt(rng.uniform(t0**2, t1**2, size=n)) * ARCMIN_PX
    phi = rng.uniform(0, 2 * np.pi, size=n)
    xy = CENTRE + np.stack([theta * np.cos(phi), theta * np.sin(phi)], axis=1)
    shapes = np.array([_loop_shape(rng, config, p) for p in phi])
    return xy, gamma, shapes.reshape(n, 6)


def _loop_shape(rng: np.random.Generator, config: SimConfig, phi: float) -> list[float]:
    """Loop geometry: an elliptical arc off the chamfer axis, along the parent's direction."""
    a = config.artefacts
    dist = rng.uniform(*a.loop_distance) * ARCMIN_PX / 60.0
    semi = _log_uniform(rng, a.loop_size, 1)[0] * ARCMIN_PX / 60.0
    span = 2 * np.pi if rng.random() < 0.5 else rng.uniform(0.8 * np.pi, 1.7 * np.pi)
    x0, y0 = a.ring_xy
    return [x0 + dist * np.cos(phi), y0 + dist * np.sin(phi), semi,
            rng.uniform(0.3, 0.75), phi + rng.normal(0, 0.25), span]


def draw_exposure(rng: np.random.Generator, config: SimConfig, letter: str) -> float:
    """EXPOSURE in s: a common value, or log-normal around the filter's median."""
    ex = config.exposure
    if rng.random() < ex.common_fraction:
        w = np.array(ex.common_weights)
        return float(rng.choice(ex.common, p=w / w.sum()))
    t = MODEL_BY_LETTER[letter].median_exposure * np.exp(rng.normal(0, ex.log_sigma))
    return float(np.clip(np.round(t / ex.step) * ex.step, ex.minimum, ex.maximum))


def draw_scene(rng: np.random.Generator, field: Field, letter: str, config: SimConfig) -> Scene:
    """Draw one image of ``field`` in filter ``letter``."""
    fm = MODEL_BY_LETTER[letter]
    exposure = draw_exposure(rng, config, letter)
    xy, rate = _star_rates(rng, field, letter, config)
    loop_rate = _bright_rates(field.loop_gamma, field.density * fm.bright_stars, config)
    sky = fm.sky_rate * np.exp(rng.normal(0, 0.5))
    psf, lay = config.psf, config.layout
    optics = (float(rng.uniform(*psf.core_fwhm_range)),
              float(_log_uniform(rng, psf.wing_fraction_range, 1)[0]))
    fov = (float(rng.uniform(*lay.fov_radius)) * CENTRE if rng.random() < lay.fov_probability
           else None)
    blur = float(rng.uniform(*psf.blur_sigma)) if rng.random() < psf.blur_probability else 0.0
    return Scene(field=field, filter=letter, exposure=exposure,
                 windows=draw_windows(rng, field.layout, exposure, config.layout),
                 star_xy=xy, star_rate=rate, loop_rate=loop_rate, sky_rate=float(sky),
                 gradient=rng.normal(0, 0.1, size=4), ring=_draw_ring(rng, fm, config),
                 others=_draw_others(rng, config), optics=optics, fov_radius=fov,
                 asinh_a=float(_log_uniform(rng, config.stretch_range, 1)[0]), blur=blur)


def _bright_rates(gamma: np.ndarray, mu: float, config: SimConfig) -> np.ndarray:
    """Raw rates of the bright-star process in a filter with ``mu`` stars above 60 counts/s."""
    if mu <= 0:
        return np.zeros_like(gamma)
    rate = 60.0 * (np.maximum(gamma, 1e-9) / mu) ** (-1.0 / config.stars.bright_slope)
    return np.minimum(rate, config.stars.bright_max_rate)


def _star_rates(rng: np.random.Generator, field: Field, letter: str,
                config: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Positions and raw rates of all point sources in one filter."""
    fm, st = MODEL_BY_LETTER[letter], config.stars
    c20 = np.array(fm.rate_v20)[field.faint_type]
    faint = c20 * 10 ** (0.4 * (20.0 - field.faint_v))
    keep = faint < st.faint_max_rate
    bright = _bright_rates(field.bright_gamma, field.density * fm.bright_stars, config)
    bright = bright * np.exp(rng.normal(0, 0.1, size=bright.size))  # colour scatter
    xy = [field.faint_xy[keep], field.bright_xy]
    rates = [faint[keep], bright]
    if field.target is not None:
        lo, hi = np.log(st.target_rate)
        scale = (fm.bright_stars / MODEL_BY_LETTER["V"].bright_stars) ** (1 / st.bright_slope)
        xy.append(np.array([field.target[:2]]))
        rates.append(np.array([np.exp(lo + field.target[2] * (hi - lo)) * scale]))
    return np.concatenate(xy), np.concatenate(rates)


def _draw_ring(rng: np.random.Generator, fm: FilterModel,
               config: SimConfig) -> tuple[float, ...] | None:
    """Central ring at the fixed detector spot, or None when too faint to see in this image."""
    a = config.artefacts
    if rng.random() >= fm.central_ring:
        return None
    x, y = np.array(a.ring_xy) + rng.normal(0, a.ring_jitter, size=2)
    half_w, half_h = np.array(a.ring_size) / 2 * np.exp(rng.normal(0, a.ring_size_scatter, size=2))
    level = fm.central_ring_level * np.exp(rng.normal(0, 0.35))
    return (float(x), float(y), float(half_w), float(half_h), float(level),
            float(rng.uniform(0, 2 * np.pi)))


def _draw_others(rng: np.random.Generator, config: SimConfig) -> tuple[tuple[float, ...], ...]:
    """Rare large scattered-light patches, mostly in the upper left of the displayed frame."""
    if rng.random() >= config.artefacts.other_probability:
        return ()
    n = 1 + min(rng.poisson(0.9), 2)
    out = []
    for _ in range(n):
        x = np.clip(rng.normal(0.3, 0.2), 0.05, 0.95) * DETECTOR_PIXELS
        y = np.clip(rng.normal(0.7, 0.2), 0.05, 0.95) * DETECTOR_PIXELS
        out.append((float(x), float(y), float(rng.uniform(200, 600)),
                    float(rng.uniform(0.4, 1.0)), float(rng.integers(1 << 30))))
    return tuple(out)
