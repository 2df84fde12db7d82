"""Training augmentation of a `Sample`: frame, masks and boxes transformed together.

The authors' albumentations pipeline (reference notes §3.1) redone with numpy, scipy and torch:
flips, 90-degree rotations, a small crop resized back, Gaussian blur and Gaussian noise. Masks
follow every geometric step (nearest-neighbour through the crop), masks left with at most
``min_area`` pixels are dropped and boxes are recomputed as the tight boxes of the new masks.
Pixels without coverage (0) stay 0: the authors' noise also filled them, which breaks the
"0 = no coverage" convention that the per-image normalisation relies on. ISONoise (which only
makes the three grey channels differ) is left out.

Flips and rotations alone map a frame onto one of its 8 dihedral variants, whose embeddings the
cache can keep; a crop, blur or noise makes a new frame that must be encoded afresh
(`is_cacheable` tells which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch alias)
from scipy import ndimage

from xami.train.data import Sample, make_sample


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (defaults: the authors', notes §3.1).

    Attributes
    ----------
    flip : float
        Probability of a flip (horizontal, vertical or both, equally likely): 0.5.
    rot90 : float
        Probability of a rotation by 90, 180 or 270 degrees: 0.5.
    crop : float
        Probability of a crop of ``crop_fraction`` of each side resized back: 0.6.
    crop_fraction : float
        Side of the crop over the frame's side (authors: 492 / 512).
    blur : float
        Probability of a Gaussian blur: 0.7.
    blur_sigma : tuple of float
        Range of the blur sigma in pixels (kernels 3-7 as OpenCV sizes them: 0.8-1.4).
    noise : float
        Probability of additive Gaussian noise: 0.6.
    noise_sigma : tuple of float
        Range of the noise sigma in grey levels (authors: variance 10-50, sigma 3.2-7.1).
    min_area : int
        Masks with at most this many pixels after augmentation are dropped (authors: 20).
    """

    flip: float = 0.5
    rot90: float = 0.5
    crop: float = 0.6
    crop_fraction: float = 492 / 512
    blur: float = 0.7
    blur_sigma: tuple[float, float] = (0.8, 1.4)
    noise: float = 0.6
    noise_sigma: tuple[float, float] = (3.2, 7.1)
    min_area: int = 20

    def __post_init__(self) -> None:
        for name in ("flip", "rot90", "crop", "blur", "noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], "
                                 f"got {getattr(self, name)!r}")
        if not 0.0 < self.crop_fraction <= 1.0:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction!r}")
        object.__setattr__(self, "blur_sigma", tuple(self.blur_sigma))
        object.__setattr__(self, "noise_sigma", tuple(self.noise_sigma))

    @property
    def is_cacheable(self) -> bool:
        """True when only flips and rotations can happen (every result is a dihedral variant)."""
        return self.crop == 0 and self.blur == 0 and self.noise == 0


def augment_sample(sample: Sample, rng: np.random.Generator,
                   config: AugmentConfig = AugmentConfig()) -> Sample:
    """One randomly augmented copy of ``sample``.

    Parameters
    ----------
    sample : Sample
        The original frame and ground truth.
    rng : numpy.random.Generator
        Source of every random draw (seed it for a reproducible copy).
    config : AugmentConfig
        Probabilities and ranges.

    Returns
    -------
    Sample
        Same key with ``"#aug"`` appended; masks of at most ``config.min_area`` pixels dropped
        (the copy may have no mask left), boxes recomputed.
    """
    frame, masks = sample.frame, sample.masks
    if rng.random() < config.flip:
        axes = ((0,), (1,), (0, 1))[rng.integers(3)]
        frame, masks = np.flip(frame, axes), np.flip(masks, tuple(a + 1 for a in axes))
    if rng.random() < config.rot90:
        k = int(rng.integers(1, 4))
        frame, masks = np.rot90(frame, k, (0, 1)), np.rot90(masks, k, (1, 2))
    if rng.random() < config.crop:
        frame, masks = _crop_resize(frame, masks, config.crop_fraction, rng)
    covered = frame > 0
    pixels = frame.astype(np.float64)
    if rng.random() < config.blur:
        pixels = ndimage.gaussian_filter(pixels, rng.uniform(*config.blur_sigma))
    if rng.random() < config.noise:
        pixels = pixels + rng.normal(0.0, rng.uniform(*config.noise_sigma), pixels.shape)
    frame = np.where(covered, np.clip(np.rint(pixels), 1, 255), 0).astype(np.uint8)
    keep = masks.sum(axis=(1, 2)) > config.min_area
    return make_sample(sample.key + "#aug", np.ascontiguousarray(frame),
                       np.ascontiguousarray(masks[keep]), sample.labels[keep])


def _crop_resize(frame: np.ndarray, masks: np.ndarray, fraction: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``fraction`` of each side at a random place and resize back (frame bilinear)."""
    h, w = frame.shape
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    y0, x0 = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
    crop = torch.from_numpy(np.ascontiguousarray(frame[y0:y0 + ch, x0:x0 + cw]))
    mask_crop = torch.from_numpy(np.ascontiguousarray(masks[:, y0:y0 + ch, x0:x0 + cw]))
    out = F.interpolate(crop[None, None].float(), size=(h, w), mode="bilinear",
                        align_corners=False)[0, 0].numpy()
    out_masks = F.interpolate(mask_crop[None].float(), size=(h, w), mode="nearest")[0].numpy()
    return out, out_masks > 0.5


def jitter_boxes(boxes: np.ndarray, size: tuple[int, int], fraction: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Move each box side by Gaussian noise of ``fraction`` x the box's side, kept in the image.

    Parameters
    ----------
    boxes : numpy.ndarray
        ``float [N, 4]`` XYXY boxes in pixels.
    size : tuple of int
        ``(height, width)`` of the image.
    fraction : float
        Noise sigma over the box's width (x) or height (y); 0 returns the boxes unchanged.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        ``float64 [N, 4]``, each box at least 1 pixel wide and high.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if fraction == 0 or len(boxes) == 0:
        return boxes
    sides = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    moved = boxes + rng.normal(0.0, 1.0, boxes.shape) * fraction * sides
    h, w = size
    x0, x1 = np.clip(moved[:, 0], 0, w - 1), np.clip(moved[:, 2], 0, w)
    y0, y1 = np.clip(moved[:, 1], 0, h - 1), np.clip(moved[:, 3], 0, h)
    return np.stack([x0, y0, np.maximum(x1, x0 + 1), np.maximum(y1, y0 + 1)], axis=1)
