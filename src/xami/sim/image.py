"""Simulate one XMM-OM image: scene -> render -> 8-bit frame, instance masks, WCS, sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage
from skimage.morphology import convex_hull_image

from xami.classes import BY_NAME
from xami.instrument import DETECTOR_PIXELS, RELEASED_SIZE
from xami.preprocess import StretchParams, rebin, stretch_to_uint8
from xami.sim.config import ArtefactConfig, SimConfig
from xami.sim.fitsout import detector_wcs, fits_hdus, om_header, source_table
from xami.sim.render import MASK_BINNING, render_scene
from xami.sim.scene import Scene, draw_field, draw_filters, draw_scene
from xami.structures import Instances
from xami.wcs import flip_wcs_rows, rebin_wcs

_LOOP = BY_NAME["star-loop"].coco_id
_STREAK = BY_NAME["read-out-streak"].coco_id


@dataclass(frozen=True)
class SimulatedFrame:
    """One simulated image and its ground truth.

    Attributes
    ----------
    frame : numpy.ndarray
        ``uint8 [512, 512]`` released-style frame (row 0 = top; 0 = no coverage), before any JPEG
        compression: ``stretch_to_uint8(rebin(counts, 4 // binning... ))`` of the counts.
    counts : numpy.ndarray
        ``float32 [n, n]`` counts normalised to EXPOSURE, FITS orientation (row 0 = bottom),
        ``n = 2048 // binning``; 0 = no coverage.
    masks : numpy.ndarray
        ``bool [N, 512, 512]`` instance masks in the frame's (display) orientation, each
        non-empty and inside the covered pixels.
    labels : numpy.ndarray
        ``int64 [N]`` COCO category ids.
    meta : dict
        ``obs_id``, ``filter``, ``exposure`` (s), ``ra``, ``dec``, ``pa`` (deg), ``date``,
        ``layout``.
    wcs : astropy.wcs.WCS
        WCS of ``counts`` (FITS orientation, astropy 0-based pixel convention).
    frame_wcs : astropy.wcs.WCS
        WCS of ``frame`` as indexed (``frame_wcs.pixel_to_world(col, row)``).
    sources : astropy.table.Table
        True point sources on the detector (RA, DEC, XPOS, YPOS, RATE, MAG).
    stretch : StretchParams
        The stretch that made ``frame``.
    header : astropy.io.fits.Header
        OM-like header of the FITS product.
    """

    frame: np.ndarray
    counts: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    meta: dict[str, Any]
    wcs: WCS
    frame_wcs: WCS
    sources: Table
    stretch: StretchParams
    header: fits.Header = field(repr=False)

    @property
    def stem(self) -> str:
        """Released-style name ``S<ObsID>_<filter letter>``."""
        return f"S{self.meta['obs_id']}_{self.meta['filter']}"

    def instances(self) -> Instances:
        """The ground truth as `Instances` (scores 1)."""
        return Instances.from_masks(self.masks, self.labels)

    def hdus(self) -> list[fits.hdu.base.BaseHDU]:
        """FITS HDUs of ``counts`` (PRIMARY with WCS, SOURCES table)."""
        return fits_hdus(self.counts, self.header, self.wcs, self.sources)


def simulate_image(rng_or_seed: np.random.Generator | int, *, config: SimConfig | None = None,
                   binning: int = MASK_BINNING) -> SimulatedFrame:
    """Simulate one XMM-OM image with exact instance masks of its artefacts.

    Parameters
    ----------
    rng_or_seed : numpy.random.Generator or int
        Source of randomness (an int seeds ``numpy.random.default_rng``).
    config : SimConfig, optional
        Simulator settings (default ``SimConfig()``).
    binning : {4, 1}
        4 renders directly on the 512 grid (fast); 1 renders the 2048 grid, and the frame is then
        ``stretch_to_uint8(rebin(counts, 4))``, exactly what ``xami preprocess`` makes of it.

    Returns
    -------
    SimulatedFrame
        Frame, counts, masks, labels, meta, WCS and source table.

    Raises
    ------
    ValueError
        ``binning`` is not 1 or 4.

    Examples
    --------
    >>> sim = simulate_image(0)
    >>> sim.frame.shape, sim.masks.shape[1:]
    ((512, 512), (512, 512))
    """
    if binning not in (1, MASK_BINNING):
        raise ValueError(f"binning must be 1 or {MASK_BINNING}, got {binning!r}")
    config = SimConfig() if config is None else config
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else \
        np.random.default_rng(rng_or_seed)
    filters = draw_filters(rng, config, 1)
    obs_id = f"{int(rng.integers(10000, 99990)):06d}{int(rng.integers(1, 99)):02d}01"
    field_ = draw_field(rng, config, obs_id=obs_id, filters=filters)
    scene = draw_scene(rng, field_, filters[0], config)
    return simulate_scene(scene, rng, config, binning=binning)


def simulate_scene(scene: Scene, rng: np.random.Generator, config: SimConfig, *,
                   binning: int = MASK_BINNING, seed: int | None = None,
                   index: int | None = None) -> SimulatedFrame:
    """Render a drawn scene into a `SimulatedFrame` (``seed``/``index`` go to the header)."""
    rendered = render_scene(scene, rng, config, binning=binning)
    factor = MASK_BINNING // binning
    data512 = rendered.data if factor == 1 else rebin(rendered.data, factor)
    if scene.blur > 0 and binning == MASK_BINNING:  # FITS products (binning 1) stay raw counts,
        data512 = smooth_covered(data512, scene.blur)  # which `xami preprocess` reproduces
    frame, params = stretch_to_uint8(data512, asinh_a=scene.asinh_a)
    masks, labels = _display_masks(rendered.layers, frame > 0, config.artefacts)
    wcs2048 = detector_wcs(scene.field.ra, scene.field.dec, scene.field.pa)
    return SimulatedFrame(
        frame=frame, counts=rendered.data, masks=masks, labels=labels, meta=scene_meta(scene),
        wcs=rebin_wcs(wcs2048, binning) if binning > 1 else wcs2048,
        frame_wcs=flip_wcs_rows(rebin_wcs(wcs2048, MASK_BINNING), RELEASED_SIZE),
        sources=source_table(scene, wcs2048), stretch=params,
        header=om_header(scene, seed=seed, index=index, binning=binning))


def smooth_covered(data: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of the covered pixels only (no light leaks into or out of gaps)."""
    covered = (data > 0).astype(np.float64)
    weight = ndimage.gaussian_filter(covered, sigma)
    smooth = ndimage.gaussian_filter(data.astype(np.float64), sigma)
    out = np.where(covered > 0, smooth / np.maximum(weight, 1e-9), 0.0)
    return out.astype(data.dtype)


def _display_masks(layers, covered: np.ndarray,
                   config: ArtefactConfig) -> tuple[np.ndarray, np.ndarray]:
    """Display-orientation masks of the layers on the covered pixels, labelled as the real ones."""
    n = DETECTOR_PIXELS // MASK_BINNING
    masks, labels = [], []
    for layer in layers:
        full = np.zeros((n, n), dtype=bool)
        # a loop's annotation is its outline, filled: the convex hull of its arc
        full[layer.slices] = convex_hull_image(layer.mask) if layer.category_id == _LOOP \
            else layer.mask
        full = full[::-1] & covered
        if layer.category_id == _STREAK and (full.any(axis=1).sum() * MASK_BINNING
                                             < config.streak_min_length):
            continue  # no streak labelled where a window shows only a stub of it
        if full.any():
            masks.append(full)
            labels.append(layer.category_id)
    stack = np.array(masks, dtype=bool).reshape(-1, n, n)
    return stack, np.array(labels, dtype=np.int64)


def scene_meta(scene: Scene) -> dict[str, Any]:
    """JSON-serialisable facts about a scene (ImageRecord.meta)."""
    f = scene.field
    return {"obs_id": f.obs_id, "filter": scene.filter, "exposure": scene.exposure,
            "ra": round(f.ra, 6), "dec": round(f.dec, 6), "pa": round(f.pa, 4), "date": f.date,
            "layout": f.layout}
