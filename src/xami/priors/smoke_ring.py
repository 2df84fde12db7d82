"""Smoke rings tied to a bright parent, displaced radially outward from the field centre.

A smoke ring is an out-of-focus ghost of a bright (>= 60 ct/s, hence saturated) star: light
reflected by the detector back onto the entrance window and from there onto the detector again
(HERA guide: "faint rings located radially away from the center of the field of view"; SAS
``omqualitymap`` bit 2). The extra path tilts with the chief ray, whose angle grows linearly with
the field angle in the converging beam, so the ring's centre lies on the parent's radial line at
``(1 + k)`` times the parent's distance from the field centre. SAS keeps the exact law in its
calibration files; ``k`` about 0.2 is what the ghosts in real OM frames show by eye (offsets of
27-44 px at 150-250 px from the centre of a 512 frame), and the tolerance is wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xami.classes import BY_NAME
from xami.instrument import RELEASED_SIZE
from xami.priors.sources import BrightSource
from xami.structures import Instances

_SR = BY_NAME["smoke-ring"].coco_id
_RELABEL = (BY_NAME["star-loop"].coco_id, BY_NAME["other"].coco_id)


@dataclass(frozen=True)
class SmokeRingPrior:
    """Settings of the smoke-ring prior; lengths in pixels of a 512 frame (scaled with it).

    Attributes
    ----------
    offset_range : tuple of float
        Accepted ``k``: the ring's outward offset over the parent's distance from the field
        centre (expected about 0.2; 0.1-0.35 accepted).
    across : float
        Accepted distance of the ring's centre from the parent's radial line, pixels, plus
        ``across_fraction`` of the offset.
    across_fraction : float
        See ``across`` (0.35: about 20 degrees either side of the radial line).
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
    """

    offset_range: tuple[float, float] = (0.1, 0.35)
    across: float = 6.0
    across_fraction: float = 0.35
    boost: float = 1.5
    penalty: float = 0.5
    drop_cores: bool = False
    relabel_size: float = 24.0

    def __post_init__(self) -> None:
        low, high = self.offset_range
        if not 0.0 <= low < high:
            raise ValueError(f"offset_range must be 0 <= low < high, got {self.offset_range!r}")
        if self.across < 0 or self.across_fraction < 0 or self.boost < 0 or self.penalty < 0:
            raise ValueError("across, across_fraction, boost and penalty must be >= 0, got "
                             f"{self.across!r}, {self.across_fraction!r}, {self.boost!r}, "
                             f"{self.penalty!r}")


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
    >>> star = BrightSource(406.0, 256.0, 8.0, (398, 414))
    >>> has_parent((436.0, 256.0), [star], (256.0, 256.0)), has_parent((376.0, 256.0), [star],
    ...                                                                  (256.0, 256.0))
    (True, False)
    """
    ring = np.asarray(ring_xy, dtype=np.float64)
    centre = np.asarray(centre_xy, dtype=np.float64)
    for source in sources:
        radial = np.array([source.x, source.y]) - centre
        distance = float(np.hypot(*radial))
        if distance == 0.0:
            continue
        unit = radial / distance
        offset = ring - np.array([source.x, source.y])
        along = float(offset @ unit)
        across = abs(float(offset[0] * unit[1] - offset[1] * unit[0]))
        low, high = config.offset_range
        if (low * distance <= along <= high * distance + config.across * scale
                and across <= config.across * scale + config.across_fraction * along):
            return True
    return False


def on_core(box: np.ndarray, sources: list[BrightSource]) -> bool:
    """Whether a saturated core's centre lies in the middle half of ``box`` (XYXY)."""
    x0, y0, x1, y1 = box
    qx, qy = (x1 - x0) / 4, (y1 - y0) / 4
    return any(x0 + qx <= s.x <= x1 - qx and y0 + qy <= s.y <= y1 - qy for s in sources)


def apply_smoke_ring_prior(instances: Instances, sources: list[BrightSource], *,
                           config: SmokeRingPrior = SmokeRingPrior()) -> Instances:
    """Rescore smoke rings by whether a parent sits radially inward of them.

    The field centre is the frame's centre. A ring with a parent (`has_parent`) has its score
    multiplied by ``config.boost`` (capped at 1), one without by ``config.penalty``; with
    ``config.drop_cores`` a ring centred on a saturated core (`on_core`) is removed.

    Parameters
    ----------
    instances : Instances
        Predictions on a frame.
    sources : list of BrightSource
        The frame's saturated sources (`xami.priors.sources.find_bright_sources`).
    config : SmokeRingPrior, optional
        Tolerances and score factors.

    Returns
    -------
    Instances
        A new `Instances`, order kept.
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
    return Instances(instances.boxes, instances.masks, labels, scores)[keep]
