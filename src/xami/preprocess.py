"""The paper's preprocessing: rebin OM images, ZScale + Asinh stretch to 8-bit XAMI frames.

Pure functions of arrays (no file is read here: `xami.io.frames` reads FITS files and writes the
frames of ``xami preprocess``). Coverage follows `xami.instrument.coverage_mask`: finite and
non-zero pixels are covered; in the 8-bit frames covered pixels take values 1..255 and uncovered
pixels 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from astropy.visualization import AsinhStretch, ManualInterval, ZScaleInterval
from astropy.wcs import WCS

from xami.errors import InputError
from xami.instrument import RELEASED_SIZE, coverage_mask
from xami.wcs import flip_wcs_rows, rebin_wcs

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
    """A preprocessed 8-bit frame with its sky mapping and stretch.

    Attributes
    ----------
    image : numpy.ndarray
        ``uint8 [S, S]`` in display orientation (row 0 = top); 0 = no coverage, 1..255 covered.
    wcs : astropy.wcs.WCS or None
        WCS of ``image`` as indexed: ``wcs.pixel_to_world(col, row)`` with numpy indices (astropy
        convention: integers at pixel centres, so xami's ``x = col + 0.5``). None without input WCS.
    params : StretchParams
        The stretch (and rebin factor) used.
    """

    image: np.ndarray
    wcs: WCS | None
    params: StretchParams


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


def preprocess_image(data: np.ndarray, *, wcs: WCS | None = None, size: int = RELEASED_SIZE,
                     asinh_a: float | None = None) -> Frame:
    """Rebin an OM image to ``size x size`` and stretch it to an 8-bit frame (paper §2).

    Parameters
    ----------
    data : numpy.ndarray
        ``[H, W]`` image in FITS orientation (row 0 = bottom), square, with a side that is a
        multiple of ``size`` (2048 -> factor 4, 512 -> factor 1).
    wcs : astropy.wcs.WCS, optional
        Celestial WCS of ``data``.
    size : int, optional
        Output side in pixels (default 512, as released).
    asinh_a : float, optional
        Asinh parameter; None means ``DEFAULT_ASINH_A``.

    Returns
    -------
    Frame
        The frame (row 0 = top), its WCS (rebinned and row-flipped; None without ``wcs``) and
        stretch.

    Raises
    ------
    xami.errors.InputError
        The image is not square, its side is not a multiple of ``size``, or no pixel is covered.

    Examples
    --------
    >>> frame = preprocess_image(np.arange(1.0, 17.0).reshape(4, 4), size=2)  # 2x2 block sums
    >>> frame.image, frame.params.factor  # rows flipped: FITS row 0 is the bottom
    (array([[229, 255],
           [  1,  90]], dtype=uint8), 2)
    """
    height, width = data.shape
    if height != width or height % size:
        raise InputError(None, f"image of {height}x{width} pixels cannot be rebinned to "
                               f"{size}x{size} (square, side a multiple of {size} needed)")
    factor = height // size
    binned = rebin(data, factor)
    if not coverage_mask(binned).any():
        raise InputError(None, "no covered pixel (all zero or NaN)")
    a = DEFAULT_ASINH_A if asinh_a is None else asinh_a
    image, params = stretch_to_uint8(binned, asinh_a=a)
    frame_wcs = None if wcs is None else flip_wcs_rows(rebin_wcs(wcs, factor), size)
    return Frame(image=image, wcs=frame_wcs, params=dataclasses.replace(params, factor=factor))


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
