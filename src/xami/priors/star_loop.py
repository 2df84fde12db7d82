"""Star loops as the annotators outline them: the region the loop's arc encloses, filled.

A star loop is the light of a bright star 12'-15' off axis, scattered inside the telescope into an
elliptical arc near the field centre. The XAMI annotators outline a loop and fill the outline (the
real loop masks are filled regions, not arcs), while a model's mask may follow the bright arc
alone, or only part of its inside. Each star-loop mask becomes its convex hull, unless the hull is
much larger than the mask (two separate patches under one box, which are not one loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.morphology import convex_hull_image

from xami.classes import BY_NAME
from xami.structures import Instances

_LOOP = BY_NAME["star-loop"].coco_id


@dataclass(frozen=True)
class StarLoopPrior:
    """Settings of the star-loop prior.

    Attributes
    ----------
    max_growth : float
        A loop's mask is filled to its convex hull only when the hull is at most this many times
        the mask's area.
    """

    max_growth: float = 4.0

    def __post_init__(self) -> None:
        if not self.max_growth >= 1:
            raise ValueError(f"max_growth must be >= 1, got {self.max_growth!r}")


def apply_star_loop_prior(instances: Instances, *,
                          config: StarLoopPrior = StarLoopPrior()) -> Instances:
    """Fill each star-loop mask to its convex hull (the loop's outline, as annotated).

    Parameters
    ----------
    instances : Instances
        Predictions on one frame.
    config : StarLoopPrior, optional
        How far a mask may grow.

    Returns
    -------
    Instances
        A new `Instances` with the star loops' masks filled; boxes, labels, scores and the other
        classes' masks unchanged.

    Examples
    --------
    >>> arc = np.zeros((1, 64, 64), bool)
    >>> arc[0, 10:50, 10:14] = arc[0, 10:14, 10:40] = arc[0, 46:50, 10:40] = True  # a "C"
    >>> loops = Instances.from_masks(arc, labels=np.array([5]), scores=np.array([0.5]))
    >>> int(apply_star_loop_prior(loops).masks.sum())  # the C closed: 40 x 30 px
    1200
    """
    masks = instances.masks.copy()
    for i in np.flatnonzero(instances.labels == _LOOP):
        area = int(masks[i].sum())
        if area == 0:
            continue
        hull = convex_hull_image(masks[i])
        if hull.sum() <= config.max_growth * area:
            masks[i] = hull
    return Instances(instances.boxes.copy(), masks, instances.labels.copy(),
                     instances.scores.copy())
