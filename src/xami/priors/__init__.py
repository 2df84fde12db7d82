"""What the instrument knows, used at inference: post-processing steps from XMM-OM physics.

Four steps, applied by `apply_priors` after the detector, the segmentor and the streak fit, on
`xami.structures.Instances` at the frame's size (row 0 = top):

1. `CentralRingPrior`: at most one central ring per frame, at the ring's fixed detector position
   (`xami.instrument.CENTRAL_RING_XY`); none where the frame has no coverage there.
2. `SmokeRingPrior`: a smoke ring is the ghost of a saturated star radially inward of it; rings
   with such a parent are scored up, rings without one down, and a ring is proposed at the ghost
   position of a parent without one where the frame shows a faint patch.
3. `StreakPrior`: a read-out streak runs through a saturated source's column; scored up or down
   by that, and cut to the segments where it is visible (or kept as the full column).
4. `StarLoopPrior`: a star loop's mask is the region its arc encloses, filled (as annotated).

Lengths are given for a 512 frame showing the whole detector and scale with the frame's width.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from xami.instrument import RELEASED_SIZE
from xami.priors.central_ring import CentralRingPrior, apply_central_ring_prior
from xami.priors.smoke_ring import SmokeRingPrior, apply_smoke_ring_prior
from xami.priors.sources import MIN_CORE, SATURATION_LEVEL, BrightSource, find_bright_sources
from xami.priors.star_loop import StarLoopPrior, apply_star_loop_prior
from xami.priors.streaks import StreakPrior, apply_streak_prior
from xami.structures import Instances

__all__ = ["BrightSource", "CentralRingPrior", "PriorConfig", "SmokeRingPrior", "StarLoopPrior",
           "StreakPrior", "apply_priors", "find_bright_sources"]

STEPS = {"central_ring": CentralRingPrior, "smoke_ring": SmokeRingPrior, "streak": StreakPrior,
         "star_loop": StarLoopPrior}
"""The steps, in the order they run, and their settings (each names the class it acts on)."""


@dataclass(frozen=True)
class PriorConfig:
    """Which instrument priors run, and their settings; None switches a step off.

    Attributes
    ----------
    central_ring : CentralRingPrior or None
        At most one central ring, at the fixed position.
    smoke_ring : SmokeRingPrior or None
        Smoke rings tied to a saturated parent radially inward.
    streak : StreakPrior or None
        Read-out streaks tied to a saturated source on their column, cut to their visible part.
    star_loop : StarLoopPrior or None
        Star-loop masks filled to the loop's outline.
    saturation : float
        Level of a saturated pixel in the 8-bit frame (`find_bright_sources`).
    min_core : int
        Fewest saturated pixels of a parent's core (at 512; scaled with the frame's area).

    Examples
    --------
    >>> PriorConfig(smoke_ring=None).steps()
    ('central_ring', 'streak', 'star_loop')
    """

    central_ring: CentralRingPrior | None = CentralRingPrior()
    smoke_ring: SmokeRingPrior | None = SmokeRingPrior()
    streak: StreakPrior | None = StreakPrior()
    star_loop: StarLoopPrior | None = StarLoopPrior()
    saturation: float = SATURATION_LEVEL
    min_core: int = MIN_CORE

    def __post_init__(self) -> None:
        if self.min_core < 1:
            raise ValueError(f"min_core must be >= 1, got {self.min_core!r}")

    def steps(self) -> tuple[str, ...]:
        """Names of the steps switched on, in the order they run."""
        return tuple(name for name in STEPS if getattr(self, name) is not None)

    def without_proposals(self) -> PriorConfig:
        """These priors with no step proposing what the detector did not find.

        The steps that propose (a ``propose`` setting: the central ring at its fixed position,
        smoke rings at a parent's ghost position) only rescore; the others are kept as they are.

        Examples
        --------
        >>> quiet = PriorConfig().without_proposals()
        >>> quiet.central_ring.propose, quiet.smoke_ring.propose, quiet.streak == StreakPrior()
        (False, False, True)
        """
        changes = {}
        for name in self.steps():
            step = getattr(self, name)
            if "propose" in {f.name for f in fields(step)}:
                changes[name] = replace(step, propose=False)
        return replace(self, **changes)


def apply_priors(image: np.ndarray, instances: Instances, *,
                 config: PriorConfig = PriorConfig()) -> Instances:
    """Apply the instrument priors switched on in ``config``, in the order of `PriorConfig.steps`.

    Parameters
    ----------
    image : numpy.ndarray
        The frame the instances were found on: ``uint8 [H, W]`` or ``[H, W, 3]``, 0 = no
        coverage.
    instances : Instances
        Predictions on ``image``.
    config : PriorConfig, optional
        The steps and their settings.

    Returns
    -------
    Instances
        A new `Instances` (classes, scores and the streaks' extents adjusted; the central ring
        possibly proposed).

    Raises
    ------
    ValueError
        If the image and the masks differ in size.

    Examples
    --------
    >>> frame = np.full((512, 512), 40, np.uint8)
    >>> found = apply_priors(frame, Instances.empty(512, 512))
    >>> found.labels.tolist(), found.scores.tolist()  # the ring, proposed at its fixed position
    ([1], [0.1])
    """
    instances.check_image(image)
    if config.central_ring is not None:
        instances = apply_central_ring_prior(image, instances, config=config.central_ring)
    if config.smoke_ring is not None or config.streak is not None:
        h, w = instances.image_size
        min_area = max(1, round(config.min_core * h * w / RELEASED_SIZE**2))
        sources = find_bright_sources(image, level=config.saturation, min_area=min_area)
        if config.smoke_ring is not None:
            instances = apply_smoke_ring_prior(image, instances, sources,
                                               config=config.smoke_ring)
        if config.streak is not None:
            instances = apply_streak_prior(image, instances, sources, config=config.streak)
    if config.star_loop is not None:
        instances = apply_star_loop_prior(instances, config=config.star_loop)
    return instances
