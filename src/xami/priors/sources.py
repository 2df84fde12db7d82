"""Bright, saturated compact sources of a frame: the parents of smoke rings and read-out streaks.

Smoke rings and read-out streaks are only made by sources of >= ~60 ct/s (SAS ``omqualitymap``
bits 1 and 2), whose cores are coincidence-loss saturated and, in the stretched 8-bit frames,
clipped at the top of the scale. A parent is therefore a connected patch of clipped pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from xami.instrument import RELEASED_SIZE, grey_plane

SATURATION_LEVEL = 250.0
"""Level of a saturated pixel in the 8-bit frames (of 255)."""

MIN_CORE = 5
"""Fewest saturated pixels of a parent's core in a 512 frame: single hot pixels are no parent."""

STREAK_SHAPE = (32, 12)
"""A clipped read-out streak in a 512 frame: runs down a column for at least the first number of
rows and is narrower than the second number of pixels (a star's core of that height is wider)."""


class BrightSource(NamedTuple):
    """One saturated source; pixels of the frame, x along columns, y down from the top row."""

    x: float
    y: float
    radius: float
    """Equivalent radius of the saturated core, ``sqrt(area / pi)``, pixels."""


def find_bright_sources(image: np.ndarray, *, level: float = SATURATION_LEVEL,
                        min_area: int = MIN_CORE) -> list[BrightSource]:
    """Saturated compact sources: connected patches of pixels at or above ``level``.

    A read-out streak clipped at the top of the scale (a long, narrow column of saturated pixels,
    `STREAK_SHAPE`) is not part of its source: its pixels are left out of the patches.

    Parameters
    ----------
    image : numpy.ndarray
        ``uint8 [H, W]`` or ``[H, W, 3]`` frame (channel 0 is used); the 8-bit XAMI stretch clips
        coincidence-loss saturated cores at 255.
    level : float, optional
        Saturation level in the frame's units.
    min_area : int, optional
        Fewest pixels of a core (8-connected), to leave out single hot pixels.

    Returns
    -------
    list of BrightSource
        Brightest (largest core) first.

    Examples
    --------
    >>> frame = np.zeros((20, 20), np.uint8); frame[4:7, 10:13] = 255
    >>> [(s.x, s.y) for s in find_bright_sources(frame)]
    [(11.5, 5.5)]
    """
    data = grey_plane(image, dtype=None)
    saturated = data >= level
    labels, _ = ndi.label(saturated & ~_clipped_streaks(saturated), structure=np.ones((3, 3)))
    sources = []
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        rows, cols = np.nonzero(labels[region] == index)
        if rows.size < min_area:
            continue
        sources.append(BrightSource(float(cols.mean() + region[1].start + 0.5),
                                    float(rows.mean() + region[0].start + 0.5),
                                    float(np.sqrt(rows.size / np.pi))))
    return sorted(sources, key=lambda s: -s.radius)


def _clipped_streaks(saturated: np.ndarray) -> np.ndarray:
    """Saturated pixels of clipped read-out streaks: long along a column, narrow across it."""
    scale = saturated.shape[1] / RELEASED_SIZE
    rows, width = (max(1, round(n * scale)) for n in STREAK_SHAPE)
    long = ndi.binary_opening(saturated, structure=np.ones((rows, 1), bool))
    wide = ndi.binary_opening(saturated, structure=np.ones((1, width), bool))
    return long & ~wide
