"""Smoke rings tied to a bright parent, displaced radially outward from the field centre.

A smoke ring is an out-of-focus ghost of a bright (>= 60 ct/s, hence saturated) star: light
reflected by the detector back onto the entrance window and from there onto the detector again
(HERA guide: "faint rings located radially away from the center of the field of view"; SAS
``omqualitymap`` bit 2). The extra path tilts with the chief ray, whose angle grows linearly with
the field angle in the converging beam, so the ring's centre lies on the parent's radial line at
``(1 + k)`` times the parent's distance from the field centre. SAS keeps the exact law in its
calibration files; ``k`` = `xami.instrument.SMOKE_RING_OFFSET` (0.21) is what the labelled rings
of real OM frames show.

SAS flags a smoke-ring circle at the ghost position of every parent (``omqualitymap`` bit 2), so
where the detector found no ring, one is proposed at a parent's ghost position when the frame
shows a faint patch there: a ring-sized disc above the sky around it, measured against the same
contrast over the whole frame (its own noise and texture).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import fft

from xami.classes import BY_NAME
from xami.instrument import (
    DETECTOR_PIXELS,
    RELEASED_SIZE,
    SMOKE_RING_DIAMETER,
    SMOKE_RING_MIN_PARENT_DISTANCE,
    SMOKE_RING_OFFSET,
    coverage_mask,
    grey_plane,
)
from xami.models.detector import DetectorConfig
from xami.priors.sources import BrightSource
from xami.structures import Instances

_RELABEL = (BY_NAME["star-loop"].coco_id, BY_NAME["other"].coco_id)
_RADIUS = SMOKE_RING_DIAMETER / 2 * RELEASED_SIZE / DETECTOR_PIXELS  # 7.5 px of a 512 frame
_SKY = (_RADIUS + 2.5, 2 * _RADIUS)  # the sky annulus around a ring, px of a 512 frame
_NEAREST = SMOKE_RING_MIN_PARENT_DISTANCE * RELEASED_SIZE / DETECTOR_PIXELS  # 71 px of 512


@dataclass(frozen=True)
class SmokeRingPrior:
    """Settings of the smoke-ring prior; lengths in pixels of a 512 frame (scaled with it).

    Attributes
    ----------
    offset_range : tuple of float
        Accepted ``k``: the ring's outward offset over the parent's distance from the field
        centre (`xami.instrument.SMOKE_RING_OFFSET` 0.21 expected; -20 % to +25 % accepted).
    across : float
        Accepted distance of the ring's centre from the parent's radial line, pixels, plus
        ``across_fraction`` of the offset.
    across_fraction : float
        See ``across``.
    boost : float
        Score factor of a ring with a parent (capped at 1).
    penalty : float
        Score factor of a ring without one.
    drop_cores : bool
        Drop smoke-ring predictions centred on a saturated core (the star itself, not its ghost:
        a ghost is a donut, dark in the middle). Off by default: a ghost can fall on an unrelated
        star, and dropping cores lowered smoke-ring AP50 on the real dev frames (0.46 -> 0.37)
        and on simulated ones (0.61 -> 0.55).
    relabel_size : float
        Star-loop and other predictions no larger than this (both sides, pixels; real smoke
        rings are ~15 px, star loops ~50 x 70) that have a parent become smoke rings, scored as
        one; 0 switches it off.
    propose : bool
        Where no ring was found at a parent's ghost position, propose one at the place of that
        position where a faint patch stands out most, if it stands ``propose_nsigma`` above
        the frame's own texture (`propose_rings`).
    propose_nsigma : float
        Least significance (`significance_map`) of a proposed ring.
    propose_score : float
        Score of a proposed ring: half the detector's default threshold
        (`xami.models.detector.DetectorConfig.conf`), below every ring found with a parent.
    """

    artefact: ClassVar[str] = "smoke-ring"
    """The class (`xami.classes`) this step acts on."""

    offset_range: tuple[float, float] = (0.8 * SMOKE_RING_OFFSET, 1.25 * SMOKE_RING_OFFSET)
    across: float = 4.0
    across_fraction: float = 0.05
    boost: float = 1.5
    penalty: float = 0.5
    drop_cores: bool = False
    relabel_size: float = 24.0
    propose: bool = True
    propose_nsigma: float = 4.0
    propose_score: float = DetectorConfig.conf / 2

    def __post_init__(self) -> None:
        low, high = self.offset_range
        if not 0.0 <= low < high:
            raise ValueError(f"offset_range must be 0 <= low < high, got {self.offset_range!r}")
        if self.across < 0 or self.across_fraction < 0 or self.boost < 0 or self.penalty < 0:
            raise ValueError("across, across_fraction, boost and penalty must be >= 0, got "
                             f"{self.across!r}, {self.across_fraction!r}, {self.boost!r}, "
                             f"{self.penalty!r}")
        if not 0.0 <= self.propose_score <= 1.0:
            raise ValueError(f"propose_score must be in [0, 1], got {self.propose_score!r}")


_SR = BY_NAME[SmokeRingPrior.artefact].coco_id


def has_parent(ring_xy: tuple[float, float], sources: list[BrightSource],
               centre_xy: tuple[float, float], *, scale: float = 1.0,
               config: SmokeRingPrior = SmokeRingPrior()) -> bool:
    """Whether a saturated source sits where the parent of a ring at ``ring_xy`` must be.

    Parameters
    ----------
    ring_xy : tuple of float
        The ring's centre ``(x, y)``, pixels.
    sources : list of BrightSource
        Saturated sources of the frame (`xami.priors.sources.find_bright_sources`).
    centre_xy : tuple of float
        The field centre ``(x, y)``, pixels.
    scale : float, optional
        Frame side / 512 (for ``config.across``).
    config : SmokeRingPrior, optional
        Tolerances.

    Returns
    -------
    bool

    Examples
    --------
    >>> star = BrightSource(406.0, 256.0, 8.0)
    >>> has_parent((436.0, 256.0), [star], (256.0, 256.0)), has_parent((376.0, 256.0), [star],
    ...                                                                  (256.0, 256.0))
    (True, False)
    """
    ring = np.asarray(ring_xy, dtype=np.float64)
    for source in sources:
        radial = _radial(source, centre_xy)
        if radial is None:
            continue
        unit, distance = radial
        offset = ring - np.array([source.x, source.y])
        along = float(offset @ unit)
        across = float(offset[0] * unit[1] - offset[1] * unit[0])
        if _in_ghost_region(along, across, distance, scale, config):
            return True
    return False


def _radial(source: BrightSource, centre_xy: tuple[float, float]
            ) -> tuple[np.ndarray, float] | None:
    """Unit vector from the field centre to ``source`` and its distance; None at the centre."""
    radial = np.array([source.x - centre_xy[0], source.y - centre_xy[1]])
    distance = float(np.hypot(*radial))
    return None if distance == 0.0 else (radial / distance, distance)


def _in_ghost_region(along: np.ndarray | float, across: np.ndarray | float, distance: float,
                     scale: float, config: SmokeRingPrior) -> np.ndarray | bool:
    """Whether offsets from a parent (along / across its radial line) lie where its ghost may."""
    low, high = config.offset_range
    tolerance = config.across * scale
    return ((low * distance <= along) & (along <= high * distance + tolerance)
            & (np.abs(across) <= tolerance + config.across_fraction * np.maximum(along, 0.0)))


def on_core(box: np.ndarray, sources: list[BrightSource]) -> bool:
    """Whether a saturated core's centre lies in the middle half of ``box`` (XYXY)."""
    x0, y0, x1, y1 = box
    qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
    return any(x0 + qx <= s.x <= x1 - qx and y0 + qy <= s.y <= y1 - qy for s in sources)


def apply_smoke_ring_prior(image: np.ndarray, instances: Instances,
                           sources: list[BrightSource], *,
                           config: SmokeRingPrior = SmokeRingPrior()) -> Instances:
    """Rescore smoke rings by whether a parent sits radially inward of them; propose missed ones.

    The field centre is the frame's centre. A ring with a parent (`has_parent`) has its score
    multiplied by ``config.boost`` (capped at 1), one without by ``config.penalty``; with
    ``config.drop_cores`` a ring centred on a saturated core (`on_core`) is removed. With
    ``config.propose``, `propose_rings` then adds the rings found at the ghost positions of
    parents that have none.

    Parameters
    ----------
    image : numpy.ndarray
        The frame: ``uint8 [H, W]`` or ``[H, W, 3]``, 0 = no coverage.
    instances : Instances
        Predictions on ``image``.
    sources : list of BrightSource
        The frame's saturated sources (`xami.priors.sources.find_bright_sources`).
    config : SmokeRingPrior, optional
        Tolerances, score factors and proposals.

    Returns
    -------
    Instances
        A new `Instances`, order kept; proposed rings appended last.
    """
    h, w = instances.image_size
    centre, scale = (w / 2, h / 2), w / RELEASED_SIZE
    labels, scores = instances.labels.copy(), instances.scores.copy()
    keep = np.ones(len(instances), bool)
    sides = instances.boxes[:, 2:] - instances.boxes[:, :2]
    small = np.isin(labels, _RELABEL) & (sides.max(axis=1) <= config.relabel_size * scale)
    for i in np.flatnonzero((labels == _SR) | small):
        box = instances.boxes[i]
        ring = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        parent = has_parent(ring, sources, centre, scale=scale, config=config)
        if labels[i] != _SR:
            if parent and not on_core(box, sources):
                labels[i], scores[i] = _SR, min(1.0, scores[i] * config.boost)
            continue
        if config.drop_cores and on_core(box, sources):
            keep[i] = False
            continue
        scores[i] = min(1.0, scores[i] * (config.boost if parent else config.penalty))
    result = Instances(instances.boxes, instances.masks, labels, scores)[keep]
    if not config.propose:
        return result
    return Instances.concatenate([result, propose_rings(image, result, sources, config=config)])


def propose_rings(image: np.ndarray, instances: Instances, sources: list[BrightSource], *,
                  config: SmokeRingPrior = SmokeRingPrior()) -> Instances:
    """Smoke rings at the ghost positions of parents that have no ring among ``instances``.

    The frame's contrast map (`significance_map`) gives, at every pixel, how far a ring-sized
    disc stands above the sky around it, in the frame's own robust sigma. For each parent
    without a ring (`has_parent`) and far enough from the centre for its ring to clear it
    (`xami.instrument.SMOKE_RING_MIN_PARENT_DISTANCE`), the place of its ghost region with the
    largest significance is proposed when that reaches ``config.propose_nsigma``, unless a
    saturated core lies in its middle (`on_core`) or another ring already lies there. A
    proposal's mask is the disc (`xami.instrument.SMOKE_RING_DIAMETER`), clipped to coverage,
    and its score ``config.propose_score``.

    Parameters
    ----------
    image : numpy.ndarray
        The frame: ``uint8 [H, W]`` or ``[H, W, 3]``, 0 = no coverage.
    instances : Instances
        Predictions on ``image`` (its smoke rings are the rings already found).
    sources : list of BrightSource
        The frame's saturated sources.
    config : SmokeRingPrior, optional
        Ghost region and proposal settings.

    Returns
    -------
    Instances
        The proposed rings (possibly none), in the order of ``sources``.
    """
    h, w = instances.image_size
    centre, scale = (w / 2, h / 2), w / RELEASED_SIZE
    rings = instances.boxes[instances.labels == _SR]
    found = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in rings]
    waiting = [(s, radial) for s in sources if (radial := _radial(s, centre)) is not None
               and radial[1] >= _NEAREST * scale
               and not any(has_parent(ring, [s], centre, scale=scale, config=config)
                           for ring in found)]
    if not waiting:
        return Instances.empty(h, w)
    covered = coverage_mask(grey_plane(image, dtype=None))
    significance = significance_map(image)
    radius = _RADIUS * scale
    masks = []
    for source, radial in waiting:
        best = _best_place(significance, source, radial, scale, config)
        if best is None or significance[best[1], best[0]] < config.propose_nsigma:
            continue
        x, y = best[0] + 0.5, best[1] + 0.5
        disc = np.array([x - radius, y - radius, x + radius, y + radius])
        if on_core(disc, sources) or any(np.hypot(x - fx, y - fy) < radius for fx, fy in found):
            continue
        found.append((x, y))
        masks.append(_disc_mask(covered, x, y, radius))
    if not masks:
        return Instances.empty(h, w)
    return Instances.from_masks(np.array(masks), labels=np.full(len(masks), _SR),
                                scores=np.full(len(masks), config.propose_score))


def _disc_mask(covered: np.ndarray, x: float, y: float, radius: float) -> np.ndarray:
    """The covered pixels whose centres lie within ``radius`` of ``(x, y)``."""
    mask = np.zeros(covered.shape, bool)
    r0, c0 = max(0, int(y - radius)), max(0, int(x - radius))
    r1 = min(covered.shape[0], int(np.ceil(y + radius)) + 1)
    c1 = min(covered.shape[1], int(np.ceil(x + radius)) + 1)
    rows, cols = np.ogrid[r0:r1, c0:c1]
    mask[r0:r1, c0:c1] = np.hypot(cols + 0.5 - x, rows + 0.5 - y) <= radius
    return mask & covered


def significance_map(image: np.ndarray) -> np.ndarray:
    """How far a smoke-ring-sized disc centred on each pixel stands above the sky around it.

    Covered pixels are clipped to the frame's sky median +- 3 robust sigma (so stars, streaks
    and halos weigh no more than a 3-sigma pixel); the mean of the disc
    (`xami.instrument.SMOKE_RING_DIAMETER` across) minus the mean of the annulus of 1.33-2 disc
    radii around it is divided by the robust sigma of that difference over the frame. NaN where
    the disc is not wholly covered or less than 80 % of the annulus is.

    Parameters
    ----------
    image : numpy.ndarray
        The frame: ``uint8 [H, W]`` or ``[H, W, 3]``, 0 = no coverage.

    Returns
    -------
    numpy.ndarray
        ``float64 [H, W]``; all NaN when the frame has too little coverage to measure.

    Examples
    --------
    >>> frame = np.random.default_rng(0).normal(40, 3, (512, 512)).clip(1, 255)
    >>> frame[250:265, 250:265] += 3  # a faint 15-px patch, 1 sigma per pixel
    >>> significance = significance_map(frame)
    >>> np.unravel_index(np.nanargmax(significance), significance.shape)
    (np.int64(257), np.int64(257))
    >>> round(float(significance[257, 257]), 1), bool(np.isnan(significance[:7]).all())
    (11.6, True)
    """
    plane = grey_plane(image)
    covered = coverage_mask(plane)
    result = np.full(plane.shape, np.nan)
    if covered.sum() < 2:
        return result
    sky = float(np.median(plane[covered]))
    sigma = 1.4826 * float(np.median(np.abs(plane[covered] - sky)))
    scale = plane.shape[1] / RELEASED_SIZE
    clipped = np.where(covered, np.clip(plane, sky - 3 * sigma, sky + 3 * sigma), 0.0)
    kernels = (_annulus(0.0, _RADIUS * scale), _annulus(_SKY[0] * scale, _SKY[1] * scale))
    totals, counts = _convolved(clipped, kernels), _convolved(covered.astype(np.float64), kernels)
    means = []
    for kernel, total, count, least in zip(kernels, totals, counts, (1.0, 0.8), strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(count >= least * kernel.sum() - 0.5, total / count, np.nan))
    contrast = means[0] - means[1]
    finite = contrast[np.isfinite(contrast)]
    if finite.size < 2:
        return result
    centre = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - centre)))
    return (contrast - centre) / spread if spread > 0 else result


def _convolved(image: np.ndarray, kernels: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """``image`` convolved with each odd, centred kernel (same size, zero outside), by FFT."""
    reach = max(kernel.shape[0] for kernel in kernels) - 1
    shape = [fft.next_fast_len(n + reach, real=True) for n in image.shape]
    spectrum = fft.rfft2(image, shape)
    result = []
    for kernel in kernels:
        full = fft.irfft2(spectrum * fft.rfft2(kernel, shape), shape)
        half = kernel.shape[0] // 2
        result.append(full[half:half + image.shape[0], half:half + image.shape[1]])
    return result


def _annulus(inner: float, outer: float) -> np.ndarray:
    """``float64`` kernel: 1 between the radii (pixels), 0 elsewhere."""
    n = int(np.ceil(outer))
    radius = np.hypot(*np.mgrid[-n:n + 1, -n:n + 1])
    return ((radius >= inner) & (radius <= outer)).astype(np.float64)


def _best_place(significance: np.ndarray, source: BrightSource,
                radial: tuple[np.ndarray, float], scale: float,
                config: SmokeRingPrior) -> tuple[int, int] | None:
    """``(x, y)`` of the place of the parent's ghost region with the largest significance."""
    unit, distance = radial
    low, high = config.offset_range
    far = high * distance + config.across * scale
    wide = config.across * scale + config.across_fraction * far
    step = scale / 2
    along, across = (a.ravel() for a in np.meshgrid(np.arange(low * distance, far + step, step),
                                                     np.arange(-wide, wide + step, step)))
    inside = _in_ghost_region(along, across, distance, scale, config)
    xs = np.floor(source.x + along[inside] * unit[0] + across[inside] * unit[1]).astype(int)
    ys = np.floor(source.y + along[inside] * unit[1] - across[inside] * unit[0]).astype(int)
    h, w = significance.shape
    keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    xs, ys = xs[keep], ys[keep]
    values = significance[ys, xs]
    if not np.isfinite(values).any():
        return None
    best = int(np.nanargmax(values))
    return int(xs[best]), int(ys[best])
