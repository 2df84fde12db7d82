"""Read XMM-OM FITS images (data, merged header, celestial WCS); write FITS files atomically."""

from __future__ import annotations

import gzip
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from xami.errors import FitsError
from xami.io.atomic import atomic_path

FITS_SUFFIXES: tuple[str, ...] = (".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts", ".ftz")
"""File-name endings read as FITS (case-insensitive); gzip-compressed files are read directly."""

HduSelector = int | str | tuple[str, int]
"""An HDU chosen by index, by EXTNAME, or by ``(EXTNAME, EXTVER)``."""

_SELECTOR_RE = re.compile(r"^(?P<path>.+)\[(?P<selector>[^\[\]]+)\]$")
_NOT_MERGED = frozenset({
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "EXTNAME", "EXTVER",
    "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "",
})
_IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


@dataclass(frozen=True)
class OMImage:
    """One XMM-OM image as stored in its FITS file.

    Attributes
    ----------
    data : numpy.ndarray
        ``float32 [H, W]`` physical values (BSCALE/BZERO applied), in FITS orientation: row 0 is
        the bottom of the image. Nothing is flipped here (``xami.preprocess`` does that).
    header : astropy.io.fits.Header
        Header of the image HDU, completed with the primary header's cards that it lacks (OM
        products often keep OBS_ID, FILTER, EXPOSURE in the primary). BSCALE/BZERO/BLANK are removed
        because ``data`` is already scaled.
    wcs : astropy.wcs.WCS or None
        Celestial 2-D WCS of ``data`` (astropy pixel convention: 0-based, integers at pixel
        centres), or None when the header has none.
    path : str
        The file the image was read from (without any ``[HDU]`` selector).
    hdu : int or str
        The HDU read: its index, or the EXTNAME (``"NAME,VER"``) given in the selector.
    """

    data: np.ndarray
    header: fits.Header
    wcs: WCS | None
    path: str
    hdu: int | str


def split_selector(spec: str | os.PathLike[str]) -> tuple[str, HduSelector | None]:
    """Split ``file.fits[1]``, ``file.fits[SCI]`` or ``file.fits[SCI,2]`` into path and selector.

    Parameters
    ----------
    spec : str or path-like
        A file path, optionally followed by an HDU selector in square brackets. An existing file
        whose name itself ends in brackets is taken literally.

    Returns
    -------
    path : str
        The file path.
    selector : int, str, tuple of (str, int), or None
        HDU index, EXTNAME (upper-cased), ``(EXTNAME, EXTVER)``, or None when none was given.

    Examples
    --------
    >>> split_selector("S0123456789_V.fits.gz[SCI,2]")
    ('S0123456789_V.fits.gz', ('SCI', 2))
    """
    spec = str(spec)
    match = _SELECTOR_RE.match(spec)
    if match is None or Path(spec).exists():
        return spec, None
    text = match["selector"].strip()
    name, _, version = (part.strip() for part in text.partition(","))
    if version.isdigit():
        return match["path"], (name.upper(), int(version))
    return match["path"], int(text) if text.isdigit() else text.upper()


def is_fits_name(path: str | os.PathLike[str]) -> bool:
    """Whether a path (``[HDU]`` selector allowed) has a FITS ending (`FITS_SUFFIXES`)."""
    return split_selector(path)[0].lower().endswith(FITS_SUFFIXES)


def fits_stem(path: str | os.PathLike[str]) -> str:
    """File name without directory, ``[HDU]`` selector and FITS endings.

    Examples
    --------
    >>> fits_stem("data/S0123456789_V.fits.gz[1]")
    'S0123456789_V'
    """
    name = Path(split_selector(path)[0]).name
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def output_stem(path: str | os.PathLike[str]) -> str:
    """The ``NAME`` of an input's output files: `fits_stem`, plus the HDU when one is selected.

    Two HDUs of one file thus get distinct outputs (``[SCI,2]`` becomes ``_hduSCI_2``).

    Examples
    --------
    >>> output_stem("data/S0123456789_V.fits"), output_stem("data/S0123456789_V.fits[1]")
    ('S0123456789_V', 'S0123456789_V_hdu1')
    """
    selector = split_selector(path)[1]
    if selector is None or not is_fits_name(path):
        return fits_stem(path)
    label = re.sub(r"[^\w.-]", "_", str(_selector_label(selector)))
    return f"{fits_stem(path)}_hdu{label}"


def fits_text(text: str) -> str:
    """``text`` as a FITS card value can hold it: printable ASCII, anything else escaped.

    Non-ASCII and control characters (and backslashes) become Python escapes, so a file name
    such as ``my field Ω.fits`` is kept, and `read_fits_text` gives it back.

    Examples
    --------
    >>> fits_text("my field Ω.fits")
    'my field \\\\u03a9.fits'
    """
    return text.encode("unicode_escape").decode("ascii")


def read_fits_text(value: str) -> str:
    """The text a `fits_text` card value stands for.

    Examples
    --------
    >>> read_fits_text(fits_text("my field Ω.fits"))
    'my field Ω.fits'
    """
    return value.encode("ascii").decode("unicode_escape")


def read_om_image(path: str | os.PathLike[str]) -> OMImage:
    """Read one 2-D XMM-OM image, its merged header and its celestial WCS.

    Parameters
    ----------
    path : str or path-like
        ``.fits``, ``.fit``, ``.fts`` (optionally ``.gz``) or ``.ftz`` file, optionally with an
        HDU selector: ``file.fits[1]``, ``file.fits[EXTNAME]`` or ``file.fits[EXTNAME,VER]``.
        Without one, the first HDU holding image data is read (OM PRIMARY HDUs are often empty).

    Returns
    -------
    OMImage
        ``float32 [H, W]`` data in FITS orientation (row 0 = bottom), header, WCS, path, HDU.

    Raises
    ------
    FitsError
        The file is missing, empty, not FITS, truncated or corrupt; the selected HDU is missing or
        is not an image; no HDU holds an image; the data are empty, 3-D (a single-plane cube
        ``1 x H x W`` is accepted and squeezed) or have no finite pixel.

    Examples
    --------
    >>> om = read_om_image("S0123456789_V.fits[1]")  # doctest: +SKIP
    >>> om.data.shape  # doctest: +SKIP
    (2048, 2048)
    """
    file, selector = split_selector(path)
    with _open(file) as hdul:
        index = _choose_hdu(hdul, file, selector)
        hdu = hdul[index]
        data = _image_data(hdu, file, index if selector is None else selector)
        header = _merged_header(hdu.header, hdul[0].header if index else None)
    return OMImage(data=data, header=header, wcs=celestial_wcs(header), path=file,
                   hdu=index if selector is None else _selector_label(selector))


def _open(file: str) -> fits.HDUList:
    """Open a FITS file; astropy's open failures and truncation warning become FitsError."""
    if not Path(file).is_file():
        raise FitsError(file, "file not found")
    if Path(file).stat().st_size == 0:
        raise FitsError(file, "empty file (0 bytes)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # astropy's header fixes on read are accepted silently
        try:  # astropy memory-maps unscaled data and reads scaled (BSCALE/BZERO) data into memory
            hdul = fits.open(file)
        except (OSError, ValueError, TypeError) as err:
            raise FitsError(file, f"not a readable FITS file ({err})") from None
    truncated = [w for w in caught if issubclass(w.category, AstropyUserWarning)
                 and "truncated" in str(w.message)]
    if truncated:
        hdul.close()
        raise FitsError(file, f"corrupt FITS file: {truncated[0].message}")
    return hdul


def _choose_hdu(hdul: fits.HDUList, file: str, selector: HduSelector | None) -> int:
    """Index of the selected HDU, or of the first HDU holding image data."""
    if selector is None:
        for index, hdu in enumerate(hdul):
            if isinstance(hdu, _IMAGE_HDUS) and hdu.header.get("NAXIS", 0) >= 2:
                return index
        raise FitsError(file, "no HDU holds image data")
    try:
        index = hdul.index_of(selector)
        hdul[index]
    except (KeyError, IndexError):
        raise FitsError(file, f"HDU {_selector_label(selector)} not found "
                              f"(file has {len(hdul)} HDUs)") from None
    return index


def _image_data(hdu: fits.hdu.base.ExtensionHDU, file: str, label: HduSelector) -> np.ndarray:
    """The HDU's data as a finite-checked float32 ``[H, W]`` copy (the file can then be closed)."""
    where = f"HDU {_selector_label(label)}"
    if not isinstance(hdu, _IMAGE_HDUS):
        raise FitsError(file, f"{where} is a {type(hdu).__name__}, not an image")
    try:
        raw = hdu.data
        data = None if raw is None else np.array(raw, dtype=np.float32)
    except (OSError, ValueError, TypeError) as err:
        raise FitsError(file, f"corrupt data in {where} ({err})") from None
    if data is None or data.size == 0:
        raise FitsError(file, f"{where} holds no data (empty)")
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise FitsError(file, f"{where} holds {data.ndim}-D data {data.shape}, not a 2-D image")
    if not np.isfinite(data).any():
        raise FitsError(file, f"{where} has no finite pixel (all NaN or infinite)")
    return data


def _merged_header(header: fits.Header, primary: fits.Header | None) -> fits.Header:
    """Copy of ``header`` without scaling cards, completed with the primary's missing cards."""
    merged = header.copy()
    for key in ("BSCALE", "BZERO", "BLANK"):
        merged.remove(key, ignore_missing=True)
    for card in [] if primary is None else primary.cards:
        if card.keyword not in _NOT_MERGED and card.keyword not in merged:
            merged.append(card)
    return merged


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial 2-D WCS of ``header``, or None when it has none.

    astropy's ``FITSFixedWarning`` (it silently repairs non-standard but usable cards, e.g. the
    DATE-OBS or RADESYS forms of some OM products) is ignored on purpose.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header of an image HDU.

    Returns
    -------
    astropy.wcs.WCS or None
        2-D celestial WCS, or None when the header describes no sky coordinates.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header)
    return wcs.celestial if wcs.has_celestial else None


def _selector_label(selector: HduSelector) -> int | str:
    """A selector as written in messages and provenance: ``1``, ``"SCI"`` or ``"SCI,2"``."""
    return f"{selector[0]},{selector[1]}" if isinstance(selector, tuple) else selector


def write_fits(path: str | os.PathLike[str], hdus: fits.HDUList | list[fits.hdu.base.BaseHDU],
               ) -> None:
    """Write HDUs to ``path`` atomically (a temporary file renamed into place when complete).

    Parameters
    ----------
    path : str or path-like
        Output file; an existing file is replaced. A name ending in ``.gz`` is gzip-compressed
        (deterministically: no time stamp in the gzip header).
    hdus : astropy.io.fits.HDUList or list of HDU
        The HDUs; the first must be a PrimaryHDU.

    Examples
    --------
    >>> write_fits("out.fits", [fits.PrimaryHDU(np.zeros((4, 4), np.float32))])  # doctest: +SKIP
    """
    hdul = hdus if isinstance(hdus, fits.HDUList) else fits.HDUList(list(hdus))
    with atomic_path(path) as tmp:
        if str(path).lower().endswith(".gz"):
            with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as stream:
                hdul.writeto(stream)
        else:
            hdul.writeto(tmp, overwrite=True)


def write_image_fits(path: str | os.PathLike[str], data: np.ndarray, *,
                     header: fits.Header | None = None, wcs: WCS | None = None,
                     extname: str | None = None) -> None:
    """Write one 2-D image (with header cards and WCS) to a FITS file atomically.

    Parameters
    ----------
    path : str or path-like
        Output file (``.gz`` for gzip compression).
    data : numpy.ndarray
        ``[H, W]`` image in FITS orientation (row 0 = bottom).
    header : astropy.io.fits.Header, optional
        Cards to write with the image (copied; structural cards are rewritten by astropy).
    wcs : astropy.wcs.WCS, optional
        WCS whose cards replace any in ``header``.
    extname : str, optional
        Write the image in an extension of this name after an empty PRIMARY (the OM product
        layout); by default the image is the PRIMARY HDU.
    """
    cards = fits.Header() if header is None else header.copy()
    if wcs is not None:
        cards.update(wcs.to_header())
    if extname is None:
        write_fits(path, [fits.PrimaryHDU(data, header=cards)])
    else:
        write_fits(path, [fits.PrimaryHDU(), fits.ImageHDU(data, header=cards, name=extname)])
