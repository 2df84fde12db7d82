"""XMM-OM facts shared by the simulator, the readers, the preprocessing and the dataset tools."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PIXEL_SCALE_ARCSEC = 0.4764
"""Size of one unbinned (in-memory) OM pixel on the sky, arcsec (UHB §3.5.2: 0.476")."""

DETECTOR_PIXELS = 2048
"""Unbinned detector grid: 2048 x 2048 pixels, 17' x 17'."""

RELEASED_SIZE = 512
"""Size of the released XAMI frames (2048 rebinned by 4)."""


def coverage_mask(data: np.ndarray) -> np.ndarray:
    """Pixels that hold data: finite and non-zero (the coverage convention of the released data).

    0 means no coverage (gaps between the stacked OM windows, outside the field) and NaN/inf are
    treated the same; negative values are covered pixels below the sky (background-subtracted
    products). In the 8-bit frames covered pixels take values 1..255 and uncovered pixels 0.

    Parameters
    ----------
    data : numpy.ndarray
        Image of any shape (counts, count rates, background-subtracted values or 8-bit frame).

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``data``'s shape.

    Examples
    --------
    >>> coverage_mask(np.array([0.0, np.nan, -1.0, 3.0]))
    array([False, False,  True,  True])
    """
    data = np.asarray(data)
    return np.isfinite(data) & (data != 0)


def grey_plane(image: np.ndarray, dtype: type | None = np.float64) -> np.ndarray:
    """The grey plane of a frame: channel 0 of ``[H, W, C]``, or the ``[H, W]`` image itself.

    The released frames repeat one grey plane over 3 channels; `coverage_mask` of the plane gives
    the frame's coverage.

    Parameters
    ----------
    image : numpy.ndarray
        ``[H, W]`` or ``[H, W, C]`` frame.
    dtype : type or None, optional
        Type of the result (a copy); None returns a view of ``image``.

    Returns
    -------
    numpy.ndarray
        ``[H, W]`` array.

    Raises
    ------
    ValueError
        ``image`` is neither 2-D nor 3-D.

    Examples
    --------
    >>> plane = grey_plane(np.full((2, 3, 3), 7, np.uint8))
    >>> plane.tolist(), plane.dtype
    ([[7.0, 7.0, 7.0], [7.0, 7.0, 7.0]], dtype('float64'))
    """
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"image must be [H, W] or [H, W, C], got shape {np.shape(image)}")
    return image if dtype is None else image.astype(dtype)


CENTRAL_RING_XY = (992.0, 1064.0)
"""Centre of the central ring (scattered light from the detector window chamfer), unbinned
detector pixels ``(x, y)`` in FITS orientation (1-based FITS pixel = value + 0.5). It is fixed on
the detector (SAS ``omscattered`` subtracts a fixed per-filter template; HERA guide: "circular high
background area" at the field centre). Position measured on the real labelled XAMI frames: centre
(248, 246) +- 5 px in the released 512 frames (x along columns, y down from the top row), i.e.
(992, 1064) on the 2048 grid, 32 px left of and 40 px above the detector centre."""

CENTRAL_RING_SIZE = (164.0, 128.0)
"""Typical full extent of the labelled central ring, unbinned pixels ``(width, height)``: 41 x 32 px
(median; range 32-47 x 28-48) in the released 512 frames, measured on the same real frames."""


SMOKE_RING_OFFSET = 0.21
"""Radial offset of a smoke ring's centre from its parent star, over the parent's distance from
the detector centre: the ghost lies on the parent's radial line, outward, at 1.21 times the
parent's distance (HERA guide: "rings located radially away from the center"; SAS keeps its law in
calibration files). Measured on the real labelled XAMI frames: ten rings whose parent is in the
frame give 0.196-0.222 (median 0.21), with parents 128-260 px from the centre of a 512 frame,
within 4 px of the radial line, with no constant term."""

SMOKE_RING_DIAMETER = 60.0
"""Typical full extent of a labelled smoke ring, unbinned pixels: 15 [14-19] px in the released
512 frames (real labelled frames); 29" on the sky, the visible annulus of the 38" SAS flag."""


SMOKE_RING_MIN_PARENT_DISTANCE = SMOKE_RING_DIAMETER / SMOKE_RING_OFFSET
"""Least distance of a parent star from the detector centre, unbinned pixels (~286, 136"), for its
smoke ring to be seen apart from it: nearer, the ring's offset (`SMOKE_RING_OFFSET` of that
distance) is less than the ring's diameter and the ring lies in its parent's glare. No real
labelled ring has a nearer parent: the ten dev rings' parents lie 128-260 px from the centre of a
512 frame (this distance is 71 px there), and the released rings' heat map has a hole of this size
(``benchmarks/released_heatmap.py``)."""


def central_ring_frame_xy(size: int = RELEASED_SIZE) -> tuple[float, float]:
    """Central-ring centre in a displayed frame of ``size`` pixels covering the whole detector.

    Returns continuous ``(x, y)``: x along columns, y down from the top row (row 0 = top, as the
    released frames and COCO boxes are).

    Examples
    --------
    >>> central_ring_frame_xy()
    (248.0, 246.0)
    """
    scale = size / DETECTOR_PIXELS
    return CENTRAL_RING_XY[0] * scale, size - CENTRAL_RING_XY[1] * scale


@dataclass(frozen=True)
class OMFilter:
    """One OM filter as it appears in XAMI file names and OM FITS headers.

    Attributes
    ----------
    letter : str
        Letter in XAMI file names (``S<ObsID>_<letter>``).
    name : str
        Value of the FITS ``FILTER`` keyword.
    wavelength_nm : float
        Effective wavelength (paper Table 1).
    zero_point : float or None
        Magnitude giving 1 count/s (Mason et al. 2001, Table 2); None where not published.
    """

    letter: str
    name: str
    wavelength_nm: float
    zero_point: float | None


FILTERS: tuple[OMFilter, ...] = (
    OMFilter("V", "V", 543.0, 18.11),
    OMFilter("B", "B", 450.0, 19.28),
    OMFilter("U", "U", 344.0, 18.24),
    OMFilter("L", "UVW1", 291.0, 17.37),
    OMFilter("M", "UVM2", 231.0, 16.02),
    OMFilter("S", "UVW2", 212.0, 15.17),
    OMFilter("W", "WHITE", 406.0, None),
)
FILTER_BY_LETTER: dict[str, OMFilter] = {f.letter: f for f in FILTERS}
FILTER_BY_NAME: dict[str, OMFilter] = {f.name: f for f in FILTERS}

_NAME_RE = re.compile(r"^S(?P<obs_id>\d{10})_(?P<letter>[A-Z])")


def parse_frame_name(name: str) -> tuple[str, str] | None:
    """Return ``(obs_id, filter_letter)`` of an XAMI frame name, or None if it does not match.

    Roboflow export suffixes (``S0606430401_U_png.rf.<hash>.jpg``) are accepted.

    Examples
    --------
    >>> parse_frame_name("S0743200101_V.jpg")
    ('0743200101', 'V')
    """
    match = _NAME_RE.match(name.rsplit("/", 1)[-1])
    return None if match is None else (match["obs_id"], match["letter"])
