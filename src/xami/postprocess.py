"""Post-processing of pipeline outputs: the faint rule and the read-out-streak column fit.

Streak fit: a read-out streak is the column profile of its star (a Gaussian of 5 unbinned px,
Page et al. 2017) spread over every row, so its mask is a few columns wide wherever the frame is
covered. Neither YOLOv8's 4x-downsampled mask prototypes nor SAM's 256-px logits resolve a 4-px
column (the paper's worst class). The fit finds the streak's centre column from the frame's column
profile inside the detection and masks the columns holding at least ``level`` of the peak column's
flux, the definition the simulator labels with.

Faint rule:

For classes whose SAM masks are unstable on low-intensity structures (other, star-loop), the paper
keeps the detector's own mask when most of the SAM mask lies within 1 sigma of the background level,
sigma being that of a 2-level Haar low-pass of the image. Unlike the authors' code, the background
statistics are taken over covered pixels only: with the zero-coverage gaps included, the level and
spread describe the coverage pattern rather than the sky, and on small-window frames the rule never
triggered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from xami.classes import BY_NAME
from xami.instrument import coverage_mask, grey_plane
from xami.structures import Instances, masks_to_boxes

_STREAK = BY_NAME["read-out-streak"].coco_id


@dataclass(frozen=True)
class FaintRuleConfig:
    """Settings of the faint rule; one threshold for training, inference and evaluation.

    Attributes
    ----------
    threshold : float
        A mask is faint when more than this fraction of its pixels is background-like (0.75, the
        authors' inference default; their code also used 0.6 in training and 0.85 in evaluation).
    classes : tuple of str
        Class names (`xami.classes`) the rule applies to (paper §3: other and star-loop).
    sigmas : float
        Half-width of the background band in standard deviations (paper §3: 1).
    levels : int
        Haar low-pass levels (authors' code: 2, i.e. 4x4 blocks).
    """

    threshold: float = 0.75
    classes: tuple[str, ...] = ("other", "star-loop")
    sigmas: float = 1.0
    levels: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        unknown = [name for name in self.classes if name not in BY_NAME]
        if unknown:
            raise ValueError(f"unknown class names {unknown}; known: {sorted(BY_NAME)}")
        if self.sigmas < 0:
            raise ValueError(f"sigmas must be >= 0, got {self.sigmas!r}")
        if self.levels < 0:
            raise ValueError(f"levels must be >= 0, got {self.levels!r}")

    @property
    def coco_ids(self) -> tuple[int, ...]:
        """COCO ids of `classes`."""
        return tuple(BY_NAME[name].coco_id for name in self.classes)


class BackgroundBand(NamedTuple):
    """Background level and band half-width (``sigmas`` standard deviations), image units."""

    level: float
    sigma: float


def haar_lowpass(image: np.ndarray, *, levels: int = FaintRuleConfig.levels) -> np.ndarray:
    """Haar (db1) approximation of ``image`` after ``levels`` levels, at the image's size.

    The level-``L`` Haar approximation is the mean of each ``2^L x 2^L`` block broadcast back over
    the block. When ``H`` or ``W`` is not a multiple of ``2^L``, the last (partial) blocks are the
    mean of the pixels they contain, i.e. no value is invented at the edge.

    Parameters
    ----------
    image : numpy.ndarray
        ``[H, W]`` image; non-finite values count as 0 (no coverage).
    levels : int, optional
        Decomposition levels (2 gives 4x4 blocks).

    Returns
    -------
    numpy.ndarray
        ``float64 [H, W]``.

    Examples
    --------
    >>> haar_lowpass(np.array([[0.0, 4.0, 6.0]]), levels=1).tolist()
    [[2.0, 2.0, 6.0]]
    """
    data = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    b = 2**levels
    h, w = data.shape
    hb, wb = -(-h // b), -(-w // b)
    padded = np.zeros((hb * b, wb * b))
    padded[:h, :w] = data
    counts = np.zeros_like(padded)
    counts[:h, :w] = 1.0
    sums = padded.reshape(hb, b, wb, b).sum(axis=(1, 3))
    means = sums / counts.reshape(hb, b, wb, b).sum(axis=(1, 3))
    return np.repeat(np.repeat(means, b, axis=0), b, axis=1)[:h, :w]


def background_band(image: np.ndarray, *, sigmas: float = FaintRuleConfig.sigmas,
                    levels: int = FaintRuleConfig.levels) -> BackgroundBand:
    """Background level and band half-width from the Haar low-pass over covered pixels.

    ``level`` and ``sigma / sigmas`` are the mean and standard deviation of `haar_lowpass` over the
    covered pixels (`xami.instrument.coverage_mask`: finite and non-zero). The authors took them
    over the whole frame, zero-coverage pixels included.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, 3]`` XAMI frame (channel 0 is used), or a float preprocessed
        image; 0 (and NaN) is no coverage.
    sigmas : float, optional
        Half-width of the band in standard deviations.
    levels : int, optional
        Haar low-pass levels.

    Returns
    -------
    BackgroundBand
        ``(level, sigma)`` in the image's units; both NaN when no pixel is covered (then no pixel
        lies in the band and nothing is faint).

    Raises
    ------
    ValueError
        If ``image`` is not ``[H, W]`` or ``[H, W, C]``.

    Examples
    --------
    >>> frame = np.zeros((4, 8), np.uint8); frame[:, :4] = 10; frame[:, 4:6] = 30
    >>> background_band(frame)  # blocks 10 (16 px) and 15 (8 covered px): 35/3 +- sqrt(50)/3
    BackgroundBand(level=11.666666666666666, sigma=2.357022603955158)
    """
    data = grey_plane(image)
    covered = coverage_mask(data)
    if not covered.any():
        return BackgroundBand(float("nan"), float("nan"))
    low = haar_lowpass(data, levels=levels)[covered]
    return BackgroundBand(float(low.mean()), float(sigmas * low.std()))


def faint_fraction(image: np.ndarray, mask: np.ndarray, level: float, sigma: float) -> float:
    """Fraction of a mask's covered pixels whose value lies in ``[level - sigma, level + sigma]``.

    Pixels without coverage are left out, like in the statistics of `background_band`.

    Parameters
    ----------
    image : numpy.ndarray
        ``[H, W]`` or ``[H, W, 3]`` image (channel 0 is used), the original pixel values.
    mask : numpy.ndarray
        ``bool [H, W]`` instance mask.
    level, sigma : float
        Band centre and half-width (`background_band`), image units.

    Returns
    -------
    float
        In ``[0, 1]``; 0 for a mask without covered pixels.

    Raises
    ------
    ValueError
        If ``mask`` and the image differ in size.

    Examples
    --------
    >>> faint_fraction(np.array([[1, 5, 9, 20]]), np.array([[True, True, True, False]]), 5, 4)
    1.0
    """
    plane = grey_plane(image, dtype=None)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != plane.shape:
        raise ValueError(f"mask must be the image's size {plane.shape}, got {mask.shape}")
    values = plane[mask].astype(np.float64)  # the mask's pixels, not the frame's, per candidate
    values = values[coverage_mask(values)]
    in_band = (values >= level - sigma) & (values <= level + sigma)
    return float(in_band.sum()) / max(values.size, 1)


def apply_faint_rule(image: np.ndarray, sam: Instances, detector: Instances, *,
                     config: FaintRuleConfig = FaintRuleConfig()) -> Instances:
    """Keep the detector's mask for faint instances of the configured classes.

    Instance ``i`` of ``sam`` is the SAM result for detection ``i`` of ``detector``. When the
    detector's class of ``i`` is in ``config.classes`` and more than ``config.threshold`` of the
    SAM mask's pixels lie in the `background_band`, the mask (and box) become the detector's;
    class and score stay those of ``sam``.

    Parameters
    ----------
    image : numpy.ndarray
        The image both models saw: ``uint8 [H, W]`` or ``[H, W, 3]`` frame, or float image.
    sam : Instances
        SAM masks, one per detection.
    detector : Instances
        The detections that prompted SAM, with the detector's own masks, same order and size.
    config : FaintRuleConfig, optional
        Threshold, classes and band width (default: the paper's).

    Returns
    -------
    Instances
        A new `Instances` of ``len(sam)``; ``sam`` and ``detector`` are not modified.

    Raises
    ------
    ValueError
        If ``sam`` and ``detector`` differ in length or image size, or the image in size.
    """
    _check_pair(image, sam, detector)
    candidates = np.flatnonzero(np.isin(detector.labels, config.coco_ids))
    masks, boxes = sam.masks.copy(), sam.boxes.copy()
    if candidates.size:
        band = background_band(image, sigmas=config.sigmas, levels=config.levels)
        for i in candidates:
            if faint_fraction(image, sam.masks[i], *band) > config.threshold:
                masks[i], boxes[i] = detector.masks[i], detector.boxes[i]
    return Instances(boxes, masks, sam.labels.copy(), sam.scores.copy())


def _check_pair(image: np.ndarray, sam: Instances, detector: Instances) -> None:
    """Reject SAM/detector instances that cannot be paired index by index on ``image``."""
    if len(sam) != len(detector):
        raise ValueError(f"sam and detector must have one instance per detection, got "
                         f"{len(sam)} and {len(detector)}")
    size = tuple(np.shape(image)[:2])
    if sam.image_size != size or detector.image_size != size:
        raise ValueError(f"sam masks {sam.image_size}, detector masks {detector.image_size} and "
                         f"image {size} must have one size")


@dataclass(frozen=True)
class StreakFitConfig:
    """Settings of the read-out-streak column fit.

    Attributes
    ----------
    sigma : float
        Gaussian column profile of a streak in frame pixels (5 unbinned px / 4 on the 512 grid).
    level : float
        Masked columns hold at least this fraction of the peak column's flux (simulator: 0.1).
    search : float
        Half-width in pixels of the column window searched around the detection's centre.
    duplicate_iou : float
        A fitted streak overlapping a higher-scored one by more than this mask IoU is dropped.
    full_height : bool
        Mask the streak's columns over every covered row (a streak spans the whole read-out
        column, as the simulator labels it); False keeps the detection box's rows.
    """

    sigma: float = 1.25
    level: float = 0.1
    search: float = 8.0
    duplicate_iou: float = 0.5
    full_height: bool = True

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.search <= 0:
            raise ValueError(f"sigma and search must be > 0, got {self.sigma!r}, {self.search!r}")
        if not 0.0 < self.level < 1.0 or not 0.0 < self.duplicate_iou <= 1.0:
            raise ValueError(f"level must be in (0, 1) and duplicate_iou in (0, 1], got "
                             f"{self.level!r}, {self.duplicate_iou!r}")


def fit_streak_mask(image: np.ndarray, box: np.ndarray, *,
                    config: StreakFitConfig = StreakFitConfig()) -> np.ndarray | None:
    """The mask of the read-out streak inside a detection box, fitted to the frame's columns.

    The column profile is the median of each column's covered pixels over the box's rows, in a
    window of ``config.search`` pixels either side of the box centre; its median is the
    background. The streak centre is the excess-weighted centroid of the peak column and its two
    neighbours; the masked columns are those whose share of a Gaussian of ``config.sigma`` centred
    there is at least ``config.level`` of the largest share, over every covered row of those
    columns (``config.full_height``) or the box's covered rows.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, 3]`` frame (channel 0 is used), or a float image; 0 is no
        coverage.
    box : numpy.ndarray
        XYXY detection box in pixels.
    config : StreakFitConfig, optional
        Profile width, mask level and search window.

    Returns
    -------
    numpy.ndarray or None
        ``bool [H, W]``, or None when no column of the window stands above the background.

    Examples
    --------
    >>> frame = np.full((40, 30), 50, np.uint8); frame[5:35, 14:16] = 90
    >>> mask = fit_streak_mask(frame, np.array([8.0, 5.0, 24.0, 35.0]))
    >>> np.flatnonzero(mask.any(axis=0)).tolist(), int(mask.sum())
    ([12, 13, 14, 15, 16, 17], 240)
    """
    plane = grey_plane(image, dtype=None)
    h, w = plane.shape
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    r0, r1 = max(0, int(np.floor(y0))), min(h, int(np.ceil(y1)))
    centre = 0.5 * (x0 + x1)
    c0 = max(0, int(np.floor(centre - config.search)))
    c1 = min(w, int(np.ceil(centre + config.search)))
    window = plane[r0:r1, c0:c1].astype(np.float64)  # the window's pixels, not the frame's
    covered = coverage_mask(window)
    has_data = covered.any(axis=0)
    if r1 <= r0 or has_data.sum() < 3:
        return None
    profile = np.full(c1 - c0, np.nan)
    window = np.where(covered, window, np.nan)
    profile[has_data] = np.nanmedian(window[:, has_data], axis=0)
    excess = np.nan_to_num(profile - np.nanmedian(profile), nan=0.0).clip(min=0.0)
    peak = int(np.argmax(excess))
    if excess[peak] <= 0:
        return None
    near = np.arange(max(0, peak - 1), min(excess.size, peak + 2))
    mu = c0 + float((excess[near] * (near + 0.5)).sum() / excess[near].sum())
    columns = np.arange(w)
    share = ndtr((columns + 1 - mu) / config.sigma) - ndtr((columns - mu) / config.sigma)
    keep = share >= config.level * share.max()
    mask = np.zeros((h, w), dtype=bool)
    rows = slice(None) if config.full_height else slice(r0, r1)
    mask[rows, keep] = coverage_mask(plane[rows, keep])
    return mask if mask.any() else None


def apply_streak_fit(image: np.ndarray, instances: Instances, *,
                     config: StreakFitConfig = StreakFitConfig()) -> Instances:
    """Replace every read-out-streak mask by `fit_streak_mask` and drop duplicate streaks.

    Instances of other classes, and streaks for which no column stands out, are kept as they
    are. A fitted streak whose mask overlaps a higher-scored fitted streak by more than
    ``config.duplicate_iou`` is dropped (two detections of one streak fit the same columns).

    Parameters
    ----------
    image : numpy.ndarray
        The frame the instances were found on (``uint8 [H, W]`` or ``[H, W, 3]``, or float).
    instances : Instances
        Predictions on ``image``.
    config : StreakFitConfig, optional
        Fit settings.

    Returns
    -------
    Instances
        A new `Instances`, order kept; boxes of fitted streaks are their masks' tight boxes.

    Raises
    ------
    ValueError
        If the image and the masks differ in size.
    """
    instances.check_image(image)
    masks, keep, fitted = instances.masks.copy(), np.ones(len(instances), bool), []
    for i in np.argsort(-instances.scores, kind="stable"):
        if instances.labels[i] != _STREAK:
            continue
        mask = fit_streak_mask(image, instances.boxes[i], config=config)
        if mask is None:
            continue
        if any((mask & masks[j]).sum() > config.duplicate_iou * (mask | masks[j]).sum()
               for j in fitted):
            keep[i] = False
            continue
        masks[i] = mask
        fitted.append(i)
    boxes = instances.boxes.copy()
    boxes[fitted] = masks_to_boxes(masks[fitted])
    return Instances(boxes, masks, instances.labels.copy(), instances.scores.copy())[keep]
