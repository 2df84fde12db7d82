"""OM observing layouts: science windows of each exposure, and the coverage/exposure maps.

Rudi-5 image mode (UHB "OM default configurations"): 5 exposures, each with a large 2x2-binned
window and a small unbinned central window; the large windows tile ~92 % of the field, leaving
thin unexposed seams, exposure steps where windows overlap and a ragged outer boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xami.instrument import DETECTOR_PIXELS
from xami.sim.config import LayoutConfig


@dataclass(frozen=True)
class Window:
    """One exposed science window, unbinned detector pixels ``[x0, x1) x [y0, y1)``.

    Attributes
    ----------
    x0, y0, x1, y1 : int
        Window edges (FITS orientation, y = 0 at the bottom).
    exposure : float
        Exposure time of the window, s.
    binning : int
        On-board binning (1 or 2).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    exposure: float
    binning: int = 2


def _clip(v: float) -> int:
    """An edge rounded to an even pixel inside the detector (2x2 binning)."""
    return int(np.clip(2 * round(v / 2), 0, DETECTOR_PIXELS))


def _window(x0: float, y0: float, size: tuple[int, int], exposure: float,
            binning: int = Window.binning) -> Window:
    """A window of ``size`` with lower-left corner near ``(x0, y0)``, clipped to the detector."""
    return Window(_clip(x0), _clip(y0), _clip(x0 + size[0]), _clip(y0 + size[1]), exposure,
                  binning)


def _large_windows(rng: np.random.Generator, cfg: LayoutConfig,
                   times: np.ndarray) -> list[Window]:
    """The five large windows of Rudi-5: four quadrants meeting at thin seams (or overlapping
    a little) with ragged outer edges, and a central one."""
    sx, sy = cfg.large_window
    half = DETECTOR_PIXELS / 2
    out = []
    for k, (right, top) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        gx, gy = rng.uniform(*cfg.seam, size=2)  # offset of the inner edges from the centre
        wx, wy = sx - rng.uniform(0, 40), sy - rng.uniform(0, 40)
        x0 = half + gx if right else half - gx - wx
        y0 = half + gy if top else half - gy - wy
        out.append(_window(x0, y0, (wx, wy), times[k]))
    cx, cy = half - np.array([sx, sy]) / 2 + rng.normal(0, cfg.jitter, size=2)
    out.append(_window(cx, cy, (sx, sy), times[4]))
    return out


def _central_windows(rng: np.random.Generator, cfg: LayoutConfig,
                     times: np.ndarray) -> list[Window]:
    """The small unbinned central window of each exposure (slightly drifting)."""
    s = cfg.central_window
    base = (DETECTOR_PIXELS - s) / 2
    return [_window(*(base + rng.normal(0, 4, size=2)), (s, s), t, binning=1) for t in times]


def draw_windows(rng: np.random.Generator, kind: str, exposure: float,
                 cfg: LayoutConfig) -> tuple[Window, ...]:
    """Draw the windows of one image of layout ``kind`` with nominal EXPOSURE ``exposure``."""
    times = exposure * rng.uniform(*cfg.exposure_spread, size=5)
    times[np.argmax(times)] = exposure
    if kind == "full":
        m = cfg.full_margin
        return (_window(m, m, (DETECTOR_PIXELS - 2 * m,) * 2, exposure, 1),)
    if kind == "single":
        sx, sy = cfg.large_window
        x0, y0 = (DETECTOR_PIXELS - np.array([sx, sy])) / 2 + rng.normal(0, 140, size=2)
        return (_window(x0, y0, (sx, sy), exposure),)
    large = _large_windows(rng, cfg, times)
    central = _central_windows(rng, cfg, times)
    if kind == "central":
        return tuple(central)
    if kind == "partial":
        keep = np.sort(rng.choice(5, size=int(rng.integers(2, 5)), replace=False))
        return tuple([large[k] for k in keep] + [central[k] for k in keep])
    return tuple(large + central)


def coverage_fraction(windows: tuple[Window, ...], binning: int) -> np.ndarray:
    """Fraction of the unbinned pixels of each binned pixel that lie in some window.

    Window edges are even (2x2 on-board binning), so the union is rasterised on the 1024 grid.
    Returns ``float32 [n, n]`` with ``n = 2048 // binning``, FITS orientation.
    """
    step = 2 if binning % 2 == 0 else 1
    m = DETECTOR_PIXELS // step
    cov = np.zeros((m, m), dtype=np.float32)
    for w in windows:
        cov[w.y0 // step:w.y1 // step, w.x0 // step:w.x1 // step] = 1.0
    k = binning // step
    if k == 1:
        return cov
    n = m // k
    return cov.reshape(n, k, n, k).mean(axis=(1, 3))


def _edge_fractions(lo: int, hi: int, binning: int) -> np.ndarray:
    """Fraction of each binned pixel along one axis that lies in ``[lo, hi)``."""
    edges = np.arange(DETECTOR_PIXELS // binning + 1) * binning
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None) / binning


def field_of_view(radius: float | None, binning: int) -> np.ndarray:
    """1 inside the circular field of view of ``radius`` unbinned px (None: everywhere), else 0.

    Decided at binned-pixel centres; ``float32 [n, n]``.
    """
    n = DETECTOR_PIXELS // binning
    if radius is None:
        return np.ones((n, n), dtype=np.float32)
    t = (np.arange(n) + 0.5) * binning - DETECTOR_PIXELS / 2
    return (np.hypot(t[:, None], t[None, :]) <= radius).astype(np.float32)


def exposure_map(windows: tuple[Window, ...], binning: int) -> np.ndarray:
    """Mean exposure time (s) of the unbinned pixels of each binned pixel (0 where unexposed).

    Exposures of overlapping windows add (the mosaic stacks them). ``float32 [n, n]``.
    """
    n = DETECTOR_PIXELS // binning
    out = np.zeros((n, n), dtype=np.float32)
    for w in windows:
        fx = _edge_fractions(w.x0, w.x1, binning)
        fy = _edge_fractions(w.y0, w.y1, binning)
        rows, cols = np.flatnonzero(fy), np.flatnonzero(fx)
        out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] += np.outer(
            fy[rows[0]:rows[-1] + 1], fx[cols[0]:cols[-1] + 1] * w.exposure)
    return out
