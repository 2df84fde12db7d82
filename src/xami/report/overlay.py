"""Overlays: a grey frame with instance masks in their class colours, outlines and labels."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from xami.classes import BY_COCO_ID
from xami.io.atomic import atomic_path
from xami.structures import masks_to_boxes


def render_overlay(frame: np.ndarray, masks: np.ndarray, labels: Sequence[int] | np.ndarray,
                   scores: Sequence[float] | np.ndarray | None = None, *, alpha: float = 0.45,
                   outline: bool = True, text: bool = True) -> np.ndarray:
    """Draw instances over a grey frame in their class colours.

    Inside each mask the pixel becomes ``(1 - alpha) * grey + alpha * colour`` (rounded; masks
    are blended in order, so overlaps mix), the mask's boundary pixels take the class colour and
    the class short name (with the score when given) is written at the top-left of its box.

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
    """Class short name (and score) on a dark box at the top-left of each mask's box."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default()
    for i, (box, label) in enumerate(zip(masks_to_boxes(masks), labels, strict=True)):
        words = BY_COCO_ID[label].short + ("" if scores is None else f" {scores[i]:.2f}")
        x, y = float(box[0]), max(float(box[1]) - 11.0, 0.0)
        draw.rectangle(draw.textbbox((x, y), words, font=font), fill=(0, 0, 0))
        draw.text((x, y), words, fill=BY_COCO_ID[label].colour, font=font)
    return np.asarray(pil).copy()


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a ``uint8`` RGB ``[H, W, 3]`` or grey ``[H, W]`` image as PNG, atomically (zlib 1)."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, format="PNG",
                                                                compress_level=1)
