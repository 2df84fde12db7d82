"""Point sources through the OM optics and detector: PSF, coincidence loss, mod-8 pattern."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft, ndimage
from scipy.special import gamma

from xami.instrument import DETECTOR_PIXELS, PIXEL_SCALE_ARCSEC
from xami.sim.config import PsfConfig


def psf_profile(r: np.ndarray, psf: PsfConfig) -> np.ndarray:
    """Surface brightness of the PSF at radius ``r`` (unbinned pixels), unit total flux.

    A Gaussian core of FWHM ``core_fwhm`` plus a Moffat wing holding ``wing_fraction`` of the
    flux (the OM PSF's extended halo), tapered smoothly to 0 at ``psf.radius``.
    """
    sigma = psf.core_fwhm / 2.3548 / PIXEL_SCALE_ARCSEC
    alpha, beta = psf.wing_alpha / PIXEL_SCALE_ARCSEC, psf.wing_beta
    core = np.exp(-0.5 * (r / sigma) ** 2) / (2 * np.pi * sigma**2)
    taper = np.clip(1 - (r / (psf.radius / PIXEL_SCALE_ARCSEC)) ** 2, 0, None) ** 2
    wing = (beta - 1) / (np.pi * alpha**2) * (1 + (r / alpha) ** 2) ** (-beta) * taper
    return (1 - psf.wing_fraction) * core + psf.wing_fraction * wing


@lru_cache(maxsize=4)
def psf_kernel(binning: int, psf: PsfConfig) -> np.ndarray:
    """PSF integrated over binned pixels, centred on the middle pixel, normalised to sum 1.

    Returns ``float64 [K, K]`` (K odd) covering ``psf.radius`` arcsec on each side.
    """
    half = int(np.ceil(psf.radius / PIXEL_SCALE_ARCSEC / binning))
    over = max(1, 8 // binning) * binning  # sub-samples per binned pixel, 0.5 px or finer
    k = 2 * half + 1
    s = (np.arange(k * over) + 0.5) / over - k / 2.0  # binned-pixel units, centre at 0
    r = np.hypot(*np.meshgrid(s, s)) * binning
    fine = psf_profile(r, psf)
    kernel = fine.reshape(k, over, k, over).sum(axis=(1, 3))
    return kernel / kernel.sum()


@lru_cache(maxsize=4)
def _kernel_fft(binning: int, psf: PsfConfig) -> tuple[np.ndarray, int, int]:
    """Real FFT of the PSF kernel on the padded canvas used by `render_stars`."""
    kernel = psf_kernel(binning, psf)
    half = kernel.shape[0] // 2
    size = fft.next_fast_len(DETECTOR_PIXELS // binning + 4 * half, real=True)
    return fft.rfft2(kernel, s=(size, size)), half, size


def splat(xy: np.ndarray, flux: np.ndarray, binning: int, pad: int) -> np.ndarray:
    """Bilinear deposit of point fluxes on the binned grid padded by ``pad`` pixels per side.

    ``xy`` are unbinned continuous coordinates; flux is conserved for points inside the canvas.
    """
    n = DETECTOR_PIXELS // binning + 2 * pad
    u = xy / binning - 0.5 + pad
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    canvas = np.zeros(n * n)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        col, row = i0[:, 0] + dx, i0[:, 1] + dy
        w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
        ok = (col >= 0) & (col < n) & (row >= 0) & (row < n)
        canvas += np.bincount(row[ok] * n + col[ok], weights=(flux * w)[ok], minlength=n * n)
    return canvas.reshape(n, n)


def render_stars(xy: np.ndarray, rate: np.ndarray, binning: int, psf: PsfConfig) -> np.ndarray:
    """Incident star light, counts/s per binned pixel, ``float64 [n, n]`` in FITS orientation."""
    kfft, half, size = _kernel_fft(binning, psf)
    n = DETECTOR_PIXELS // binning
    canvas = splat(xy, rate, binning, 2 * half)
    image = fft.irfft2(fft.rfft2(canvas, s=(size, size)) * kfft, s=(size, size))
    return image[3 * half:3 * half + n, 3 * half:3 * half + n]


def coincidence_cap(binning: int, psf: PsfConfig) -> float:
    """Most counts/s one binned pixel can register: about one event per CCD pixel per frame."""
    return binning**2 / (psf.frame_time * psf.ccd_pixel**2)


def coincidence_loss(rate: np.ndarray, binning: int, psf: PsfConfig) -> np.ndarray:
    """Detected rate of an incident rate (saturating, flat-topped cores; UHB §3.5.2.1).

    A dark ring of depth ``dark_ring_depth`` surrounds saturated cores (events next to a
    saturated core are centroided into it).
    """
    cap = coincidence_cap(binning, psf)
    observed = cap * -np.expm1(-rate / cap)
    core = rate > 2 * cap
    if core.any():
        width = max(1, round(psf.dark_ring_width / PIXEL_SCALE_ARCSEC / binning))
        ring = ndimage.binary_dilation(core, iterations=width) & ~core
        observed[ring] *= 1 - psf.dark_ring_depth
    return observed


def _mod8_tile(binning: int, psf: PsfConfig) -> np.ndarray:
    """The 8-pixel fixed pattern averaged over binned pixels (period ``8 // binning``)."""
    p = np.asarray(psf.mod8_pattern)
    return p.reshape(-1, binning).mean(axis=1) if binning <= 8 else np.zeros(1)


def apply_mod8(counts: np.ndarray, xy: np.ndarray, rate: np.ndarray, binning: int,
               psf: PsfConfig) -> None:
    """Modulate ``counts`` in place with the 8x8 centroiding pattern around bright stars."""
    tile = _mod8_tile(binning, psf)
    n = counts.shape[0]
    bright = rate >= psf.mod8_min_rate
    for (x, y), r in zip(xy[bright], rate[bright], strict=True):
        h = (16 + 3 * np.sqrt(r)) / binning
        c0, c1 = int(max(0, x / binning - h)), int(min(n, x / binning + h + 1))
        r0, r1 = int(max(0, y / binning - h)), int(min(n, y / binning + h + 1))
        if c1 <= c0 or r1 <= r0:
            continue
        amp = min(0.4, psf.mod8_amplitude * np.sqrt(r / 1000.0))
        tx, ty = tile[np.arange(c0, c1) % tile.size], tile[np.arange(r0, r1) % tile.size]
        counts[r0:r1, c0:c1] *= 1 + amp * (ty[:, None] + tx[None, :])


def spike_points(xy: np.ndarray, rate: np.ndarray, psf: PsfConfig) -> tuple[np.ndarray, np.ndarray]:
    """Diffraction spikes of bright stars as point sources for `render_stars` to blur.

    Four rays at +-45 and +-135 degrees (SAS bit 3 region: radial ``spike_extent``), holding
    ``spike_fraction`` of each parent's flux, fading as 1/r; one point per unbinned pixel.
    """
    bright = rate >= psf.spike_min_rate
    r = np.arange(*psf.spike_extent, 1.0)
    weight = (1 / r) / (1 / r).sum() / 4
    rays = np.array([(1, 1), (-1, 1), (-1, -1), (1, -1)]) / np.sqrt(2)
    offsets = (r[None, :, None] * rays[:, None, :]).reshape(-1, 2)
    pts = (xy[bright][:, None, :] + offsets[None]).reshape(-1, 2)
    flux = (rate[bright][:, None] * psf.spike_fraction * np.tile(weight, 4)[None]).ravel()
    return pts, flux


def render_galaxies(galaxies: np.ndarray, scale: float, binning: int) -> np.ndarray:
    """Resolved galaxies (Sersic n = 1 and 2.5 in turn), counts/s per binned pixel.

    ``galaxies`` as `xami.sim.scene.Field.galaxies` with V-band rates, times ``scale`` for the
    filter. Returns ``float64 [n, n]`` in FITS orientation.
    """
    n = DETECTOR_PIXELS // binning
    out = np.zeros((n, n))
    for k, (x, y, rate, re, q, pa) in enumerate(galaxies):
        sersic = 1.0 if k % 2 == 0 else 2.5
        half = min(6.0 * re, 700.0)
        c0, c1 = max(0, int((x - half) / binning)), min(n, int((x + half) / binning) + 1)
        r0, r1 = max(0, int((y - half) / binning)), min(n, int((y + half) / binning) + 1)
        if c1 <= c0 or r1 <= r0:
            continue
        dx = (np.arange(c0, c1) + 0.5) * binning - x
        dy = (np.arange(r0, r1) + 0.5)[:, None] * binning - y
        u = dx * np.cos(pa) + dy * np.sin(pa)
        v = (-dx * np.sin(pa) + dy * np.cos(pa)) / q
        r = np.hypot(u, v) / max(re, binning / 2)
        profile = np.exp(-(2 * sersic - 1 / 3) * (r ** (1 / sersic) - 1))
        norm = 2 * np.pi * q * max(re, binning / 2) ** 2 * _sersic_area(sersic) / binning**2
        out[r0:r1, c0:c1] += rate * scale * profile / norm
    return out


def _sersic_area(sersic: float) -> float:
    """Integral of the unit Sersic profile over the plane, in units of 2 pi q re^2."""
    b = 2 * sersic - 1 / 3
    return float(sersic * np.exp(b) * gamma(2 * sersic) / b ** (2 * sersic))
