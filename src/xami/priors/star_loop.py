"""Star loops as the annotators outline them: the region the loop's arc encloses, filled.

A star loop is the light of a bright star 12'-15' off axis, scattered inside the telescope into an
elliptical arc near the field centre. The XAMI annotators outline a loop and fill the outline (the
real loop masks are filled regions, not arcs), while a model's mask may follow the bright arc
alone, or only part of its inside. Each star-loop mask becomes its convex hull, unless the hull is
much larger than the mask (two separate patches under one box, which are not one loop); a filled
loop that mostly overlaps a higher-scored one is the same loop found twice, and is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from skimage.morphology import convex_hull_image

from xami.classes import BY_NAME
from xami.structures import Instances


@dataclass(frozen=True)
class StarLoopPrior:
    """Settings of the star-loop prior.

    Attributes
    ----------
    max_growth : float
        A loop's mask is filled to its convex hull only when the hull is at most this many times
        the mask's area.
    duplicate_iou : float
        A filled loop whose mask IoU with a higher-scored loop exceeds this is dropped.
    """

    artefact: ClassVar[str] = "star-loop"
    """The class (`xami.classes`) this step acts on."""

    max_growth: float = 4.0
    duplicate_iou: float = 0.5

    def __post_init__(self) -> None:
        if not self.max_growth >= 1:
            raise ValueError(f"max_growth must be >= 1, got {self.max_growth!r}")
        if not 0 < self.duplicate_iou <= 1:
            raise ValueError(f"duplicate_iou must be in (0, 1], got {self.duplicate_iou!r}")


_LOOP = BY_NAME[StarLoopPrior.artefact].coco_id


def apply_star_loop_prior(instances: Instances, *,
                          config: StarLoopPrior = StarLoopPrior()) -> Instances:
    """Fill each star-loop mask to its convex hull (the loop's outline, as annotated).

    Then, highest score first, a loop whose filled mask overlaps a kept loop by more than
    ``config.duplicate_iou`` (mask IoU) is dropped.

    Parameters
    ----------
    instances : Instances
        Predictions on one frame.
    config : StarLoopPrior, optional
        How far a mask may grow.

    Returns
    -------
    Instances
        A new `Instances` with the star loops' masks filled and duplicates dropped, in the input's
        order; the other classes unchanged.

    Examples
    --------
    >>> arc = np.zeros((1, 64, 64), bool)
    >>> arc[0, 10:50, 10:14] = arc[0, 10:14, 10:40] = arc[0, 46:50, 10:40] = True  # a "C"
    >>> loops = Instances.from_masks(arc, labels=np.array([5]), scores=np.array([0.5]))
    >>> int(apply_star_loop_prior(loops).masks.sum())  # the C closed: 40 x 30 px
    1200
    """
    masks = instances.masks.copy()
    loops = np.flatnonzero(instances.labels == _LOOP)
    for i in loops:
        area = int(masks[i].sum())
        if area == 0:
            continue
        hull = convex_hull_image(masks[i])
        if hull.sum() <= config.max_growth * area:
            masks[i] = hull
    keep = np.ones(len(instances), bool)
    kept: list[int] = []
    for i in loops[np.argsort(-instances.scores[loops], kind="stable")]:
        if any(_iou(masks[i], masks[j]) > config.duplicate_iou for j in kept):
            keep[i] = False
        else:
            kept.append(int(i))
    index = np.flatnonzero(keep)
    return Instances(instances.boxes[index], masks[index], instances.labels[index],
                     instances.scores[index])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0
