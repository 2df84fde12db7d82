"""WCS, OM-like headers and the true-source table of simulated images."""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from xami import __version__
from xami.instrument import DETECTOR_PIXELS, FILTER_BY_LETTER, PIXEL_SCALE_ARCSEC
from xami.sim.scene import Scene

WHITE_ZERO_POINT = 20.25
"""White-filter magnitude giving 1 count/s [estimate: not in Mason et al. 2001 Table 2]."""


def detector_wcs(ra: float, dec: float, pa: float) -> WCS:
    """TAN WCS of the unbinned 2048 grid (FITS orientation), rotated by the position angle.

    The field centre (continuous pixel 1024, FITS pixel 1024.5) points at ``(ra, dec)``; the
    CD matrix is ``PIXEL_SCALE_ARCSEC`` rotated by ``pa`` degrees (east to the left at pa = 0).
    """
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [DETECTOR_PIXELS / 2 + 0.5] * 2
    s, rho = PIXEL_SCALE_ARCSEC / 3600.0, np.radians(pa)
    w.wcs.cd = s * np.array([[-np.cos(rho), -np.sin(rho)], [-np.sin(rho), np.cos(rho)]])
    w.wcs.radesys = "ICRS"
    w.pixel_shape = (DETECTOR_PIXELS, DETECTOR_PIXELS)
    w.wcs.set()
    return w


def zero_point(letter: str) -> float:
    """Magnitude of a 1 count/s source in filter ``letter``."""
    zp = FILTER_BY_LETTER[letter].zero_point
    return WHITE_ZERO_POINT if zp is None else zp


def source_table(scene: Scene, wcs: WCS) -> Table:
    """The true point sources on the detector: RA, DEC (deg), XPOS, YPOS (FITS 1-based unbinned
    pixels), RATE (raw counts/s) and MAG, brightest first."""
    xy, rate = scene.star_xy, scene.star_rate
    on = np.all((xy >= 0) & (xy < DETECTOR_PIXELS), axis=1) & (rate > 0)
    xy, rate = xy[on], rate[on]
    order = np.argsort(-rate, kind="stable")
    xy, rate = xy[order], rate[order]
    ra, dec = wcs.wcs_pix2world(xy[:, 0] - 0.5, xy[:, 1] - 0.5, 0)
    table = Table({"RA": ra, "DEC": dec, "XPOS": xy[:, 0] + 0.5, "YPOS": xy[:, 1] + 0.5,
                   "RATE": rate, "MAG": zero_point(scene.filter) - 2.5 * np.log10(rate)})
    for name, unit in (("RA", "deg"), ("DEC", "deg"), ("XPOS", "pixel"), ("YPOS", "pixel"),
                       ("RATE", "count/s"), ("MAG", "mag")):
        table[name].unit = unit
    return table


def om_header(scene: Scene, *, seed: int | None, index: int | None, binning: int) -> fits.Header:
    """OM-like primary header cards plus XAMI provenance."""
    f = scene.field
    h = fits.Header()
    h["TELESCOP"] = ("XMM", "mission")
    h["INSTRUME"] = ("OM", "instrument")
    h["FILTER"] = (FILTER_BY_LETTER[scene.filter].name, "OM filter")
    h["EXPOSURE"] = (scene.exposure, "[s] exposure the data are normalised to")
    h["OBS_ID"] = (f.obs_id, "observation id")
    h["OBJECT"] = (f"XAMI-SIM {f.obs_id}", "simulated field")
    h["DATE-OBS"] = (f.date, "start of observation")
    h["RA_PNT"] = (f.ra, "[deg] pointing RA")
    h["DEC_PNT"] = (f.dec, "[deg] pointing Dec")
    h["PA_PNT"] = (f.pa, "[deg] position angle")
    h["BINAX1"] = (binning, "binning along x (unbinned = 1)")
    h["BINAX2"] = (binning, "binning along y")
    h["BUNIT"] = ("count", "counts normalised to EXPOSURE (ommosaic-like)")
    h["LAYOUT"] = (f.layout, "observing layout (windows)")
    h["XAMISIMV"] = (__version__, "xami simulator version")
    h["XAMISEED"] = (-1 if seed is None else seed, "xami simulate seed (-1: generator given)")
    h["XAMIINDX"] = (-1 if index is None else index, "image index within the simulated set")
    return h


def fits_hdus(data: np.ndarray, header: fits.Header, wcs: WCS,
              sources: Table) -> list[fits.hdu.base.BaseHDU]:
    """PRIMARY image (float32 counts, WCS) and the ``SOURCES`` binary table."""
    cards = header.copy()
    cards.update(wcs.to_header())
    table = fits.BinTableHDU(sources, name="SOURCES")
    return [fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=cards), table]
