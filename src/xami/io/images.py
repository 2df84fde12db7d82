"""Read and write the 8-bit XAMI frames (PNG/JPEG, grey stored as 3 equal channels)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from xami.errors import ImageError
from xami.io.atomic import atomic_path

CHANNEL_TOLERANCE = 8
"""Largest difference (grey levels) between the channels of an RGB frame still read as grey;
JPEG compression of a grey image stored as RGB makes the channels differ by a level or two."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
"""Image files ultralytics (and xami) read from an ``images`` folder."""

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def read_frame(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a released 8-bit XAMI frame as a grey ``uint8 [H, W]`` array.

    Parameters
    ----------
    path : str or path-like
        PNG or JPEG file: grey, grey + alpha, palette, or RGB(A) with (nearly) equal channels
        (alpha is dropped; channel 0 is returned). Row 0 is the top of the frame.

    Returns
    -------
    numpy.ndarray
        ``uint8 [H, W]``; 0 means no coverage in the released frames.

    Raises
    ------
    ImageError
        The file is missing, empty, not a readable image, truncated, not 8-bit (e.g. a 16-bit
        PNG), or a colour image whose channels differ by more than ``CHANNEL_TOLERANCE``.

    Examples
    --------
    >>> frame = read_frame("S0743200101_V.jpg")  # doctest: +SKIP
    >>> frame.shape, frame.dtype  # doctest: +SKIP
    ((512, 512), dtype('uint8'))
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "file not found")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            pixels = _grey_pixels(img, path)
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(path, f"not a readable image ({err})") from None
    return pixels


def _grey_pixels(img: Image.Image, path: Path) -> np.ndarray:
    """Channel 0 of an 8-bit image, after checking that it is grey."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        raise ImageError(path, f"not an 8-bit grey or RGB image (Pillow mode {img.mode!r})")
    pixels = np.asarray(img, dtype=np.uint8)
    if pixels.ndim == 2:
        return pixels.copy()
    if img.mode in ("RGB", "RGBA"):
        spread = np.abs(pixels[..., :3].astype(np.int16) - pixels[..., :1]).max()
        if spread > CHANNEL_TOLERANCE:
            raise ImageError(path, f"colour image: channels differ by up to {spread} levels")
    return pixels[..., 0].copy()


def write_frame(path: str | os.PathLike[str], frame: np.ndarray, *, quality: int = 95) -> None:
    """Write a grey frame as PNG or JPEG with 3 equal channels (like the released data), atomically.

    Parameters
    ----------
    path : str or path-like
        Output file; ``.png`` (lossless) or ``.jpg``/``.jpeg``. The same frame always gives the
        same bytes.
    frame : numpy.ndarray
        ``uint8 [H, W]``, row 0 at the top.
    quality : int, optional
        JPEG quality, 1-95 (ignored for PNG).

    Raises
    ------
    ValueError
        ``frame`` is not a ``uint8`` 2-D array, ``quality`` is out of range, or the suffix is not
        one of ``.png``, ``.jpg``, ``.jpeg``.

    Examples
    --------
    >>> write_frame("frame.png", np.zeros((512, 512), np.uint8))  # doctest: +SKIP
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 2:
        raise ValueError(f"frame must be a uint8 [H, W] array, got {frame.dtype} {frame.shape}")
    if not 1 <= quality <= 95:
        raise ValueError(f"quality must be within 1..95, got {quality!r}")
    image_format = _FORMATS.get(Path(path).suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: unsupported frame suffix (use .png, .jpg or .jpeg)")
    rgb = Image.fromarray(np.repeat(frame[..., None], 3, axis=2))
    options = {"quality": quality} if image_format == "JPEG" else {"optimize": False}
    with atomic_path(path) as tmp:
        rgb.save(tmp, format=image_format, **options)
