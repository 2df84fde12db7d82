"""Overlays: a grey frame with instance masks in their class colours, outlines and labels."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from xami.classes import BY_COCO_ID
from xami.io.atomic import atomic_path
from xami.structures import masks_to_boxes

MIN_LABEL_FONT_PX = 18
"""Smallest label font size (px): its capitals and digits are then 13 px tall."""
LABEL_FONT_FRACTION = 1 / 22
"""Label font size as a fraction of the frame's shorter side (23 px on a 512 frame)."""
_PAD = 2  # px between a label's text and the edge of its box
_MAX_STACK = 8  # labels tried above / below a box when its corners are taken


def render_overlay(frame: np.ndarray, masks: np.ndarray, labels: Sequence[int] | np.ndarray,
                   scores: Sequence[float] | np.ndarray | None = None, *, alpha: float = 0.45,
                   outline: bool = True, text: bool = True) -> np.ndarray:
    """Draw instances over a grey frame in their class colours.

    Inside each mask the pixel becomes ``(1 - alpha) * grey + alpha * colour`` (rounded; masks
    are blended in order, so overlaps mix) and the mask's boundary pixels take the class colour.
    Each label (the class short name, with the score when given) is written in black or white,
    whichever contrasts more, on a box of the class colour, with a font of
    ``max(MIN_LABEL_FONT_PX, LABEL_FONT_FRACTION * min(H, W))`` px; it sits at a corner of its
    instance's box (or stacked above / below it), inside the image and clear of the labels
    already placed, the best-scored instances placing theirs first.

    Parameters
    ----------
    frame : numpy.ndarray
        ``uint8 [H, W]`` grey frame.
    masks : numpy.ndarray
        ``bool [N, H, W]`` instance masks.
    labels : sequence of int
        ``[N]`` COCO category ids (1..5); colours from `xami.classes`.
    scores : sequence of float, optional
        ``[N]`` confidences, printed after the class name.
    alpha : float, optional
        Opacity of the mask colour, in [0, 1].
    outline, text : bool, optional
        Draw the boundaries / the labels.

    Returns
    -------
    numpy.ndarray
        ``uint8 [H, W, 3]`` RGB image.

    Raises
    ------
    ValueError
        If the shapes, dtypes, labels or ``alpha`` are not as described.

    Examples
    --------
    >>> frame = np.zeros((8, 8), np.uint8); masks = np.ones((1, 8, 8), bool)
    >>> render_overlay(frame, masks, [5], text=False)[4, 4].tolist()
    [115, 85, 112]
    """
    masks, labels = _check(frame, masks, labels, scores, alpha)
    rgb = np.repeat(frame[..., None].astype(np.float64), 3, axis=2)
    # each mask's box and a margin: blending and erosion there are those of the whole frame
    windows = [(slice(max(y0 - 1, 0), y1 + 1), slice(max(x0 - 1, 0), x1 + 1))
               for x0, y0, x1, y1 in masks_to_boxes(masks).astype(int)]
    for window, mask, label in zip(windows, masks, labels, strict=True):
        part, inside = rgb[window], mask[window]
        part[inside] = (1.0 - alpha) * part[inside] + alpha * np.array(BY_COCO_ID[label].colour)
    out = np.rint(rgb).astype(np.uint8)
    if outline:
        for window, mask, label in zip(windows, masks, labels, strict=True):
            part = mask[window]
            out[window][part & ~ndimage.binary_erosion(part)] = BY_COCO_ID[label].colour
    if text and len(masks):
        out = _draw_labels(out, masks, labels, scores)
    return out


def _check(frame: np.ndarray, masks: np.ndarray, labels: Sequence[int] | np.ndarray,
           scores: Sequence[float] | np.ndarray | None,
           alpha: float) -> tuple[np.ndarray, list[int]]:
    """Validate the inputs; returns the masks as a bool array and the labels as ints."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 2:
        raise ValueError(f"frame must be a uint8 [H, W] array, got {getattr(frame, 'dtype', None)}"
                         f" {np.shape(frame)}")
    masks = np.asarray(masks, dtype=bool)
    if masks.size == 0:
        masks = masks.reshape(0, *frame.shape)
    if masks.ndim != 3 or masks.shape[1:] != frame.shape:
        raise ValueError(f"masks must be [N, {frame.shape[0]}, {frame.shape[1]}], got "
                         f"{masks.shape}")
    labels = [int(v) for v in np.asarray(labels).reshape(-1)]
    if len(labels) != len(masks) or (scores is not None and len(scores) != len(masks)):
        raise ValueError(f"need one label (and score) per mask: {len(masks)} masks, "
                         f"{len(labels)} labels, {None if scores is None else len(scores)} scores")
    if unknown := sorted(set(labels) - set(BY_COCO_ID)):
        raise ValueError(f"labels must be COCO ids {sorted(BY_COCO_ID)}, got {unknown}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return masks, labels


def _draw_labels(image: np.ndarray, masks: np.ndarray, labels: list[int],
                 scores: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """Class short name (and score) on a box of the class colour beside each mask's box."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    height, width = image.shape[:2]
    font = _font(max(MIN_LABEL_FONT_PX, round(min(height, width) * LABEL_FONT_FRACTION)))
    order = range(len(labels)) if scores is None else np.argsort(-np.asarray(scores),
                                                                 kind="stable")
    boxes, taken = masks_to_boxes(masks), []
    for i in order:  # the best-scored instance chooses its place first
        cls = BY_COCO_ID[labels[i]]
        words = cls.short + ("" if scores is None else f" {scores[i]:.2f}")
        _, _, right, bottom = draw.textbbox((0, 0), words, font=font, anchor="lt")
        size = (right + 2 * _PAD, bottom + 2 * _PAD)
        x, y = _place_label(boxes[i], size, (width, height), taken)
        taken.append((x, y, x + size[0], y + size[1]))
        ink = _ink(cls.colour)
        draw.rectangle((x, y, x + size[0] - 1, y + size[1] - 1), fill=cls.colour, outline=ink)
        draw.text((x + _PAD, y + _PAD), words, fill=ink, font=font, anchor="lt")
    return np.asarray(pil).copy()


def _place_label(box: np.ndarray, size: tuple[int, int], image: tuple[int, int],
                 taken: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """Top-left of a label beside ``box``, inside the image, overlapping the fewest labels."""
    (w, h), (width, height) = size, image
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    corners = [(x0, y0 - h), (x0, y1), (x1 - w, y0 - h), (x1 - w, y1), (x0, y0)]
    steps = range(1, min(len(taken), _MAX_STACK) + 1)
    stacked = [(x0, y0 - h - k * h) for k in steps] + [(x0, y1 + k * h) for k in steps]
    best, best_overlap = (0, 0), None
    for x, y in corners + stacked:
        x, y = max(min(x, width - w), 0), max(min(y, height - h), 0)
        overlap = sum(_overlap((x, y, x + w, y + h), other) for other in taken)
        if overlap == 0:
            return x, y
        if best_overlap is None or overlap < best_overlap:
            best, best_overlap = (x, y), overlap
    return best


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Area shared by two ``(x0, y0, x1, y1)`` rectangles."""
    return (max(0, min(a[2], b[2]) - max(a[0], b[0]))
            * max(0, min(a[3], b[3]) - max(a[1], b[1])))


def _ink(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``colour`` (WCAG relative luminance)."""
    c = np.asarray(colour, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    luminance = float(linear @ [0.2126, 0.7152, 0.0722])
    # black wins when its contrast (L + 0.05) / 0.05 exceeds white's 1.05 / (L + 0.05)
    return (0, 0, 0) if (luminance + 0.05) ** 2 > 0.0525 else (255, 255, 255)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold from matplotlib's data (a dependency), else Pillow's own font."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a ``uint8`` RGB ``[H, W, 3]`` or grey ``[H, W]`` image as PNG, atomically (zlib 1)."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG",
                                                                compress_level=1)
