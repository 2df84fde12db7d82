"""The paper's preprocessing: rebin OM FITS images, ZScale + Asinh stretch to 8-bit XAMI frames.

Coverage convention (the released XAMI data): a pixel is *covered* when it is finite and non-zero.
0 means no coverage (gaps between the stacked OM windows, outside the field) and NaN is treated the
same; negative values are covered pixels below the sky (background-subtracted products). In the
8-bit frames covered pixels take values 1..255 and uncovered pixels 0.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ManualInterval, ZScaleInterval
from astropy.wcs import WCS, FITSFixedWarning
from tqdm import tqdm

from xami import __version__
from xami.errors import FitsError, InputError, UsageError, XamiError
from xami.instrument import RELEASED_SIZE
from xami.io.atomic import write_text_atomic
from xami.io.fits import OMImage, output_stem, read_om_image
from xami.io.images import write_frame

DEFAULT_ASINH_A = 0.25
"""Parameter ``a`` of astropy's ``AsinhStretch`` applied after ZScale (0 < a; small = stronger).

The authors did not record the value used for the released frames (reference notes §2.1). 0.25 makes
simulated frames (``xami.sim``) match the brightness percentiles of real released frames
(``shared/tools/realism.py``: median 74-79, p05/p95 34-44/126-134); astropy's default is 0.1.
Every output records the value actually used."""

ZSCALE_CONTRAST = 0.1
"""ZScale contrast used by the authors (astropy's default is 0.25; reference notes §2.1)."""

ZSCALE_MIN_NPIXELS = 10
"""ZScale minimum number of pixels kept by the fit, as used by the authors (astropy default 5)."""

ORIENTATION = "row 0 = top (FITS rows flipped)"
"""Orientation note written into every sidecar."""

KEPT_CARDS: tuple[str, ...] = (
    "OBS_ID", "EXPIDSTR", "OBJECT", "FILTER", "EXPOSURE", "DATE-OBS", "DATE-END", "INSTRUME",
    "TELESCOP", "RA_PNT", "DEC_PNT", "PA_PNT", "BINAX1", "BINAX2",
)
"""Input header cards copied into a Frame and its sidecar when present."""


@dataclass(frozen=True)
class StretchParams:
    """The parameters of one ZScale + Asinh stretch (recorded in every output).

    Attributes
    ----------
    asinh_a : float
        Asinh stretch parameter ``a``.
    vmin, vmax : float
        ZScale limits found on the covered pixels (data units after rebinning).
    factor : int
        Rebin factor applied before the stretch (1 = none).
    contrast, min_npixels : float, int
        ZScale settings.
    """

    asinh_a: float
    vmin: float
    vmax: float
    factor: int = 1
    contrast: float = ZSCALE_CONTRAST
    min_npixels: int = ZSCALE_MIN_NPIXELS


@dataclass(frozen=True)
class Frame:
    """A preprocessed 8-bit frame with its sky mapping and provenance.

    Attributes
    ----------
    image : numpy.ndarray
        ``uint8 [S, S]`` in display orientation (row 0 = top); 0 = no coverage, 1..255 covered.
    wcs : astropy.wcs.WCS or None
        WCS of ``image`` as indexed: ``wcs.pixel_to_world(col, row)`` with numpy indices (astropy
        convention: integers at pixel centres, so xami's ``x = col + 0.5``). None without input WCS.
    params : StretchParams
        The stretch (and rebin factor) used.
    source : str
        Input file (without ``[HDU]`` selector).
    header : dict
        Input cards from ``KEPT_CARDS`` that were present.
    hdu : int or str
        HDU read from ``source`` (index or EXTNAME).
    """

    image: np.ndarray
    wcs: WCS | None
    params: StretchParams
    source: str
    header: dict[str, Any]
    hdu: int | str = 0


def coverage_mask(data: np.ndarray) -> np.ndarray:
    """Pixels that hold data: finite and non-zero.

    Parameters
    ----------
    data : numpy.ndarray
        Image of any shape (counts, count rates or background-subtracted values).

    Returns
    -------
    numpy.ndarray
        ``bool`` array of ``data``'s shape. 0 and NaN/inf are no coverage (as in the released
        data); negative values are covered (below the sky in background-subtracted images).

    Examples
    --------
    >>> coverage_mask(np.array([0.0, np.nan, -1.0, 3.0]))
    array([False, False,  True,  True])
    """
    data = np.asarray(data)
    return np.isfinite(data) & (data != 0)


def rebin(data: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks of pixels (2048 -> 512 with factor 4).

    Non-finite pixels (no coverage) count as 0: the sum is of the counts actually collected, so a
    block with no covered pixel is 0 (no coverage) and a block on a window edge is fainter, as the
    detector saw it. This keeps ``coverage_mask(rebin(data, f))`` true exactly for the blocks that
    hold a covered pixel (unless their values cancel to exactly 0).

    Parameters
    ----------
    data : numpy.ndarray
        ``[H, W]`` image; ``H`` and ``W`` must be multiples of ``factor``.
    factor : int
        Block size, >= 1.

    Returns
    -------
    numpy.ndarray
        ``float64 [H // factor, W // factor]`` block sums.

    Raises
    ------
    ValueError
        ``factor`` is not a positive integer, ``data`` is not 2-D, or its shape is not divisible.

    Examples
    --------
    >>> rebin(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[10.0, 18.0], [42.0, 50.0]]
    """
    data = np.asarray(data)
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    if data.ndim != 2 or data.shape[0] % factor or data.shape[1] % factor:
        raise ValueError(f"data of shape {data.shape} cannot be rebinned by {factor}")
    clean = np.where(np.isfinite(data), data, 0.0)
    h, w = data.shape[0] // factor, data.shape[1] // factor
    return clean.reshape(h, factor, w, factor).sum(axis=(1, 3), dtype=np.float64)


def rebin_wcs(wcs: WCS, factor: int) -> WCS:
    """The WCS of an image rebinned by ``factor`` (see ``rebin``), sky positions unchanged.

    The centre of each rebinned pixel maps to the sky position of the centre of its block:
    ``CRPIX' = (CRPIX - 0.5) / factor + 0.5`` (FITS 1-based pixels) and the pixel scale (CD, or
    CDELT with PC) grows by ``factor``.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial 2-D WCS without SIP distortion.
    factor : int
        Block size, >= 1.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS (the input is not modified).

    Raises
    ------
    ValueError
        ``factor`` is not a positive integer, or the WCS has SIP distortion terms.
    """
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    if wcs.sip is not None:
        raise ValueError("rebin_wcs does not support SIP distortion")
    new = wcs.deepcopy()
    new.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) / factor + 0.5
    if new.wcs.has_cd():
        new.wcs.cd = np.asarray(wcs.wcs.cd) * factor
    else:
        new.wcs.cdelt = np.asarray(wcs.wcs.cdelt) * factor
    if wcs.pixel_shape is not None:
        new.pixel_shape = tuple(n // factor for n in wcs.pixel_shape)
    new.wcs.set()
    return new


def flip_wcs_rows(wcs: WCS, height: int) -> WCS:
    """The WCS of the same image stored with its rows flipped (row 0 at the top, as displayed).

    FITS row ``j`` becomes row ``height - 1 - j``; in 1-based FITS pixels ``y' = height + 1 - y``,
    so ``CRPIX2' = height + 1 - CRPIX2`` and the second column (pixel axis) of CD or PC changes
    sign (not CDELT2, which scales the second world axis).
    Afterwards ``wcs.pixel_to_world(col, row)`` takes numpy indices of the displayed frame.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial 2-D WCS of the image in FITS orientation.
    height : int
        Number of rows of that image.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS (the input is not modified).
    """
    new = wcs.deepcopy()
    new.wcs.crpix = [wcs.wcs.crpix[0], height + 1 - wcs.wcs.crpix[1]]
    if new.wcs.has_cd():
        new.wcs.cd = np.asarray(wcs.wcs.cd) * [1.0, -1.0]
    else:
        new.wcs.pc = np.asarray(wcs.wcs.get_pc()) * [1.0, -1.0]
    new.wcs.set()
    return new


def zscale_limits(data: np.ndarray, coverage: np.ndarray, *, contrast: float = ZSCALE_CONTRAST,
                  min_npixels: int = ZSCALE_MIN_NPIXELS) -> tuple[float, float]:
    """ZScale display limits of the covered pixels (astropy ``ZScaleInterval``, authors' settings).

    Deterministic: astropy samples the pixels with a fixed stride (no random numbers).

    Parameters
    ----------
    data : numpy.ndarray
        Image.
    coverage : numpy.ndarray
        ``bool`` mask of the pixels to use (see ``coverage_mask``).
    contrast, min_npixels : float, int, optional
        ZScale settings (authors: 0.1 and 10).

    Returns
    -------
    vmin, vmax : float
        Limits; when the covered pixels are all equal, ``vmax = vmin + 1`` so that the
        normalisation stays defined.

    Raises
    ------
    ValueError
        No pixel is covered.
    """
    values = np.asarray(data, dtype=np.float64)[np.asarray(coverage, dtype=bool)]
    if values.size == 0:
        raise ValueError("no covered pixel: ZScale limits are undefined")
    interval = ZScaleInterval(contrast=contrast, min_npixels=min_npixels)
    vmin, vmax = (float(v) for v in interval.get_limits(values))
    return (vmin, vmax) if vmax > vmin else (vmin, vmin + 1.0)


def stretch_to_uint8(data: np.ndarray, *, asinh_a: float = DEFAULT_ASINH_A,
                     contrast: float = ZSCALE_CONTRAST, min_npixels: int = ZSCALE_MIN_NPIXELS,
                     ) -> tuple[np.ndarray, StretchParams]:
    """ZScale + Asinh stretch of a FITS-oriented image to an 8-bit frame in display orientation.

    ZScale limits come from the covered pixels only; values are normalised to [0, 1] with
    clipping, Asinh-stretched, and mapped to 1..255 (``1 + round(254 s)``) so that a covered pixel
    never reads as "no coverage"; uncovered pixels are 0. Rows are flipped (FITS row 0 = bottom
    becomes the last frame row), as in the released frames.

    Parameters
    ----------
    data : numpy.ndarray
        ``[H, W]`` image in FITS orientation.
    asinh_a : float, optional
        Asinh parameter ``a`` (> 0), default ``DEFAULT_ASINH_A``.
    contrast, min_npixels : optional
        ZScale settings (authors: 0.1 and 10).

    Returns
    -------
    frame : numpy.ndarray
        ``uint8 [H, W]``, row 0 = top.
    params : StretchParams
        The parameters used (``factor`` = 1; ``preprocess_image`` sets it).

    Raises
    ------
    ValueError
        ``asinh_a`` is not positive, or no pixel is covered.

    Examples
    --------
    >>> frame, params = stretch_to_uint8(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> frame
    array([[176, 255],
           [  0,   1]], dtype=uint8)
    """
    if not asinh_a > 0:
        raise ValueError(f"asinh_a must be positive, got {asinh_a!r}")
    data = np.asarray(data, dtype=np.float64)
    covered = coverage_mask(data)
    vmin, vmax = zscale_limits(data, covered, contrast=contrast, min_npixels=min_npixels)
    stretch = AsinhStretch(a=asinh_a) + ManualInterval(vmin=vmin, vmax=vmax)
    frame = np.zeros(data.shape, dtype=np.uint8)
    frame[covered] = 1 + np.round(254 * stretch(data[covered], clip=True)).astype(np.uint8)
    params = StretchParams(asinh_a=float(asinh_a), vmin=vmin, vmax=vmax, contrast=contrast,
                           min_npixels=min_npixels)
    return np.flipud(frame), params


def preprocess_image(om: OMImage, *, size: int = RELEASED_SIZE,
                     asinh_a: float | None = None) -> Frame:
    """Rebin an OM image to ``size x size`` and stretch it to an 8-bit frame (paper §2).

    Parameters
    ----------
    om : OMImage
        Square image whose side is a multiple of ``size`` (2048 -> factor 4, 512 -> factor 1).
    size : int, optional
        Output side in pixels (default 512, as released).
    asinh_a : float, optional
        Asinh parameter; None means ``DEFAULT_ASINH_A``.

    Returns
    -------
    Frame
        The frame (row 0 = top), its WCS (rebinned and row-flipped), stretch and provenance.

    Raises
    ------
    FitsError
        The image is not square, its side is not a multiple of ``size``, or no pixel is covered.

    Examples
    --------
    >>> frame = preprocess_image(read_om_image("S0123456789_V.fits"))  # doctest: +SKIP
    >>> frame.image.shape  # doctest: +SKIP
    (512, 512)
    """
    height, width = om.data.shape
    if height != width or height % size:
        raise FitsError(om.path, f"image of {height}x{width} pixels cannot be rebinned to "
                                 f"{size}x{size} (square, side a multiple of {size} needed)")
    factor = height // size
    binned = rebin(om.data, factor)
    if not coverage_mask(binned).any():
        raise FitsError(om.path, "no covered pixel (all zero or NaN)")
    a = DEFAULT_ASINH_A if asinh_a is None else asinh_a
    image, params = stretch_to_uint8(binned, asinh_a=a)
    wcs = None if om.wcs is None else flip_wcs_rows(rebin_wcs(om.wcs, factor), size)
    return Frame(image=image, wcs=wcs, params=dataclasses.replace(params, factor=factor),
                 source=om.path, header=_kept_cards(om.header), hdu=om.hdu)


MIN_FRAME_SIDE = 64
"""Smallest frame side (pixels) the models read: smaller frames are mostly upscaling to the
detector's 512 input, and a 10x10 image comes back covered in false artefacts."""

SIZE_RULE = (f"square, with a side that is a multiple of {RELEASED_SIZE} (rebinned to "
             f"{RELEASED_SIZE}: 2048 unbinned or 1024 binned OM images) or from {MIN_FRAME_SIDE} "
             f"to {RELEASED_SIZE} (read as it is)")
"""The image sizes `frame_rebin_factor` accepts, as messages state them."""


def frame_rebin_factor(shape: tuple[int, ...], *, rebin: bool = True) -> int:
    """The rebin factor that makes an image of ``shape`` a frame the models read, or why none.

    The models were trained on 512x512 frames of 2048x2048 OM images rebinned by 4. Accepted:
    a square image whose side is a multiple of 512 is rebinned to 512 (FITS images only,
    ``rebin=True``: 2048 -> 4, 1024 -> 2); a square image of side 64 to 512 is read as it is
    (factor 1; the detector scales it to its 512 input). Anything else is refused.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width, ...)`` of the image, pixels.
    rebin : bool
        Whether the image may be rebinned (FITS data), or must be read as it is (8-bit frames).

    Returns
    -------
    int
        Rebin factor, >= 1.

    Raises
    ------
    xami.errors.InputError
        The size is not accepted; the message states the size and `SIZE_RULE`.

    Examples
    --------
    >>> frame_rebin_factor((2048, 2048)), frame_rebin_factor((128, 128))
    (4, 1)
    """
    height, width = shape[:2]
    if height == width and MIN_FRAME_SIDE <= height <= RELEASED_SIZE:
        return 1
    if rebin and height == width and height % RELEASED_SIZE == 0:
        return height // RELEASED_SIZE
    rule = SIZE_RULE if rebin else (f"square, with a side from {MIN_FRAME_SIDE} to "
                                    f"{RELEASED_SIZE} (8-bit frames are not rebinned)")
    raise InputError(None, f"image of {height}x{width} pixels: xami reads images that are {rule}")


def preprocess_om_image(om: OMImage) -> Frame:
    """Preprocess an input image at the size the models take (`frame_rebin_factor`).

    Parameters
    ----------
    om : OMImage
        An OM image of an accepted size (`SIZE_RULE`).

    Returns
    -------
    Frame
        `preprocess_image` at the released size (512) when the side is a multiple of it (2048
        -> 512, as in the paper), at the image's own size when it is 64 to 512.

    Raises
    ------
    FitsError
        The image size is not accepted, or no pixel is covered.
    """
    try:
        factor = frame_rebin_factor(om.data.shape)
    except InputError as err:
        raise FitsError(om.path, err.problem) from None
    return preprocess_image(om, size=om.data.shape[0] // factor)


def _kept_cards(header: fits.Header) -> dict[str, Any]:
    """The ``KEPT_CARDS`` present in ``header`` with plain (JSON-able) values."""
    return {key: header[key] for key in KEPT_CARDS
            if key in header and isinstance(header[key], (str, int, float, bool))}


def _sidecar(frame: Frame) -> dict[str, Any]:
    """JSON sidecar of a frame: provenance, stretch, coverage, output-grid WCS cards (or None)."""
    size = frame.image.shape[0]
    return {
        "xami_version": __version__,
        "source": frame.source,
        "hdu": frame.hdu,
        "size": size,
        "input_size": size * frame.params.factor,
        "rebin_factor": frame.params.factor,
        "stretch": {"method": "zscale+asinh", **dataclasses.asdict(frame.params)},
        "coverage_fraction": float(np.count_nonzero(frame.image) / frame.image.size),
        "orientation": ORIENTATION,
        "header": frame.header,
        "wcs": None if frame.wcs is None else dict(frame.wcs.to_header()),
    }


def read_sidecar(path: str | os.PathLike[str]) -> tuple[dict[str, Any], WCS | None]:
    """Read a sidecar written by ``preprocess_files``: its contents and the frame's WCS.

    Parameters
    ----------
    path : str or path-like
        ``NAME.json`` beside ``NAME.png``.

    Returns
    -------
    sidecar : dict
        The JSON contents.
    wcs : astropy.wcs.WCS or None
        WCS of the frame as indexed (row 0 = top), or None.

    Raises
    ------
    InputError
        The file is missing or is not valid JSON.
    """
    try:
        sidecar = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read sidecar ({err})") from None
    if sidecar.get("wcs") is None:
        return sidecar, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return sidecar, WCS(fits.Header(sidecar["wcs"]))


def preprocess_files(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                     *, size: int = RELEASED_SIZE,
                     asinh_a: float | None = None) -> list[tuple[str, str]]:
    """Preprocess OM FITS files into ``OUT/NAME.png`` frames with ``OUT/NAME.json`` sidecars.

    ``NAME`` is the file name without FITS endings (``S0123456789_V.fits.gz`` ->
    ``S0123456789_V``; an ``[HDU]`` selector adds ``_hduN``, `xami.io.fits.output_stem`). PNGs
    hold 3 equal channels, like the released data. A file that fails is
    skipped and reported; every file is written atomically, so nothing half-written remains.

    Parameters
    ----------
    inputs : iterable of str or path-like
        FITS files, each optionally with an ``[HDU]`` selector.
    out_dir : str or path-like
        Output folder (created if needed).
    size : int, optional
        Output side in pixels (default 512).
    asinh_a : float, optional
        Asinh parameter; None means ``DEFAULT_ASINH_A``.

    Returns
    -------
    list of (str, str)
        ``(input, reason)`` for every input that failed; empty when all succeeded.

    Raises
    ------
    InputError
        ``size`` is not a positive integer or ``asinh_a`` is not positive (nothing is written).

    Examples
    --------
    >>> failures = preprocess_files(["S0123456789_V.fits"], "frames")  # doctest: +SKIP
    """
    if not isinstance(size, int) or size < 1:
        raise UsageError(None, f"size must be a positive integer, got {size!r}")
    if asinh_a is not None and not asinh_a > 0:
        raise UsageError(None, f"asinh_a must be positive, got {asinh_a!r}")
    failures: list[tuple[str, str]] = []
    written: set[str] = set()
    for spec in tqdm([str(p) for p in inputs], desc="preprocess", unit="image", disable=None):
        try:
            written.add(_preprocess_one(spec, Path(out_dir), written, size=size, asinh_a=asinh_a))
        except (XamiError, OSError) as err:
            failures.append((spec, err.problem if isinstance(err, InputError) else str(err)))
    return failures


def _preprocess_one(spec: str, out_dir: Path, written: set[str], *, size: int,
                    asinh_a: float | None) -> str:
    """Write one frame and its sidecar; returns the NAME used."""
    name = output_stem(spec)
    if name in written:
        raise InputError(spec, f"output name {name!r} already used by an earlier input")
    frame = preprocess_image(read_om_image(spec), size=size, asinh_a=asinh_a)
    sidecar = json.dumps(_sidecar(frame), indent=2)
    write_frame(out_dir / f"{name}.png", frame.image)
    write_text_atomic(out_dir / f"{name}.json", sidecar + "\n")
    return name
