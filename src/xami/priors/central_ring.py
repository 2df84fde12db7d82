"""The central ring: at most one per frame, at the instrument's fixed position.

The central ring is background light scattered off the detector window's mounting onto a fixed
place of the detector (SAS ``omscattered`` subtracts a fixed per-filter template; ``omqualitymap``
sets bit 5 "central enhancement" over a fixed central region in every image). Its position and
size are in `xami.instrument` (`CENTRAL_RING_XY`, `CENTRAL_RING_SIZE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from xami.classes import BY_NAME
from xami.instrument import (
    CENTRAL_RING_SIZE,
    DETECTOR_PIXELS,
    RELEASED_SIZE,
    central_ring_frame_xy,
    coverage_mask,
    grey_plane,
)
from xami.models.detector import DetectorConfig
from xami.structures import Instances

_OTHERS = ("remove", "downscore")


@dataclass(frozen=True)
class CentralRingPrior:
    """Settings of the central-ring prior; lengths in pixels of a 512 frame (scaled with it).

    Attributes
    ----------
    sigma : float
        Gaussian tolerance on the distance from the fixed position (12 px: twice the +-5 px
        scatter of the labelled rings' centres, `xami.instrument.CENTRAL_RING_XY`).
    size_sigma : float
        Gaussian tolerance on ``log(box side / CENTRAL_RING_SIZE side)`` (0.5: a factor 1.6).
    others : str
        ``"remove"`` the central-ring predictions that are not the ring, or ``"downscore"`` them
        (score times their positional likelihood).
    propose : bool
        Where no prediction is the ring and the frame covers its position, add the ring at the
        fixed position with ``propose_score`` (SAS flags that region in every image).
    propose_score : float
        Score of a proposed ring: the detector's default threshold (`DetectorConfig.conf`), the
        lowest score of a detection, so that it ranks last.
    """

    artefact: ClassVar[str] = "central-ring"
    """The class (`xami.classes`) this step acts on."""

    sigma: float = 12.0
    size_sigma: float = 0.5
    others: str = "remove"
    propose: bool = True
    propose_score: float = DetectorConfig.conf

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.size_sigma <= 0:
            raise ValueError(f"sigma and size_sigma must be > 0, got {self.sigma!r}, "
                             f"{self.size_sigma!r}")
        if self.others not in _OTHERS:
            raise ValueError(f"others must be one of {_OTHERS}, got {self.others!r}")
        if not 0.0 <= self.propose_score <= 1.0:
            raise ValueError(f"propose_score must be in [0, 1], got {self.propose_score!r}")


_CR = BY_NAME[CentralRingPrior.artefact].coco_id


def ring_likelihood(boxes: np.ndarray, size: int, *,
                    config: CentralRingPrior = CentralRingPrior()) -> np.ndarray:
    """How well each box agrees with the central ring's fixed position and size, in [0, 1].

    Parameters
    ----------
    boxes : numpy.ndarray
        ``[N, 4]`` XYXY boxes on a square frame of ``size`` pixels showing the whole detector.
    size : int
        Frame side in pixels.
    config : CentralRingPrior, optional
        Tolerances.

    Returns
    -------
    numpy.ndarray
        ``float64 [N]``: a Gaussian in the centre's distance times a Gaussian in the log size ratio.

    Examples
    --------
    >>> ring_likelihood(np.array([[227.5, 230.0, 268.5, 262.0]]), 512).round(3).tolist()
    [1.0]
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = size / RELEASED_SIZE
    x0, y0 = central_ring_frame_xy(size)
    distance2 = ((boxes[:, 0] + boxes[:, 2]) / 2 - x0) ** 2 + ((boxes[:, 1] + boxes[:, 3]) / 2
                                                                - y0) ** 2
    sides = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    ring = np.array(CENTRAL_RING_SIZE) * size / DETECTOR_PIXELS
    log_ratio2 = (np.log(sides / ring) ** 2).sum(axis=1)
    return np.exp(-distance2 / (2 * (config.sigma * scale) ** 2)
                  - log_ratio2 / (2 * config.size_sigma**2))


def covers_ring(image: np.ndarray) -> bool:
    """Whether a square frame is covered (`coverage_mask`) over most of the ring's centre patch."""
    data = grey_plane(image, dtype=None)
    x0, y0 = central_ring_frame_xy(data.shape[1])
    half = max(1, round(4 * data.shape[1] / RELEASED_SIZE))
    patch = data[int(y0) - half:int(y0) + half + 1, int(x0) - half:int(x0) + half + 1]
    return bool(patch.size and coverage_mask(patch).mean() > 0.5)


def apply_central_ring_prior(image: np.ndarray, instances: Instances, *,
                             config: CentralRingPrior = CentralRingPrior()) -> Instances:
    """Keep at most one central ring per frame: the prediction that best fits the fixed position.

    Among central-ring predictions the one maximising score x `ring_likelihood` is the ring, if
    its likelihood is at least ``exp(-4.5)`` (within 3 sigma); its score is kept. The others are
    removed or downscored (``config.others``). A frame without coverage at the ring's position
    keeps no central ring. Frames that are not square are returned unchanged: only a square
    frame is known to show the whole detector (the released frames and every FITS that xami
    rebins to 512).

    Parameters
    ----------
    image : numpy.ndarray
        The frame (``uint8 [H, W]`` or ``[H, W, 3]``); 0 is no coverage.
    instances : Instances
        Predictions on ``image``.
    config : CentralRingPrior, optional
        Tolerances, treatment of the others, proposal.

    Returns
    -------
    Instances
        A new `Instances`; the input is not modified. A proposed ring is appended last.
    """
    h, w = instances.image_size
    if h != w:
        return instances
    covered = covers_ring(image)
    is_ring = instances.labels == _CR
    likelihood = np.zeros(len(instances))
    likelihood[is_ring] = ring_likelihood(instances.boxes[is_ring], w, config=config)
    ranking = np.where(is_ring & covered, instances.scores * likelihood, -1.0)
    best = int(np.argmax(ranking)) if len(instances) else -1
    found = best >= 0 and ranking[best] >= 0 and likelihood[best] >= np.exp(-4.5)
    others = is_ring.copy()
    if found:
        others[best] = False
    scores = instances.scores.copy()
    keep = np.ones(len(instances), bool)
    if config.others == "remove":
        keep[others] = False
    else:
        scores[others] *= likelihood[others] * covered
    result = Instances(instances.boxes, instances.masks, instances.labels, scores)[keep]
    if config.propose and covered and not found:
        result = Instances.concatenate([result, proposed_ring(image, config.propose_score)])
    return result


def proposed_ring(image: np.ndarray, score: float) -> Instances:
    """The central ring at the fixed position: an ellipse of `CENTRAL_RING_SIZE` on the coverage.

    Parameters
    ----------
    image : numpy.ndarray
        A square frame (``uint8 [H, W]`` or ``[H, W, 3]``) showing the whole detector.
    score : float
        The instance's score.

    Returns
    -------
    Instances
        One central ring (none where the ellipse has no coverage).
    """
    data = grey_plane(image, dtype=None)
    size = data.shape[1]
    x0, y0 = central_ring_frame_xy(size)
    a, b = (np.array(CENTRAL_RING_SIZE) * size / DETECTOR_PIXELS) / 2
    rows, cols = np.ogrid[:data.shape[0], :size]
    mask = ((cols + 0.5 - x0) / a) ** 2 + ((rows + 0.5 - y0) / b) ** 2 <= 1.0
    mask &= coverage_mask(data)
    if not mask.any():
        return Instances.empty(*data.shape)
    return Instances.from_masks(mask[None], labels=[_CR], scores=[score])

