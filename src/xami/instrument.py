"""XMM-OM facts shared by the simulator, the readers and the dataset tools."""

from __future__ import annotations

import re
from dataclasses import dataclass

PIXEL_SCALE_ARCSEC = 0.4764
"""Size of one unbinned (in-memory) OM pixel on the sky, arcsec (UHB §3.5.2: 0.476")."""

DETECTOR_PIXELS = 2048
"""Unbinned detector grid: 2048 x 2048 pixels, 17' x 17'."""

RELEASED_SIZE = 512
"""Size of the released XAMI frames (2048 rebinned by 4)."""


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
