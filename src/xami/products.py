"""The per-image products of a prediction: the FITS mask file and the DS9 region file.

Both are written on the *mask grid*: the 512 frame the models saw, or the input FITS grid with
``grid="native"``, always in FITS orientation (row 0 at the bottom) so that they overlay the input
image in DS9 pixel for pixel (native grid) or through the WCS. Region files use sky coordinates
when the input has a WCS and the mask grid's image coordinates otherwise.

FITS layout (``NAME.xami.fits``):

- ``PRIMARY``: no data; provenance cards (``XAMIVER``, model files and SHA-256 checksums,
  thresholds, stretch parameters) and the input's observation cards.
- ``MASK``: ``int16`` QUALITY-style bitmask (``BITn`` cards name every bit; SAS bits 1 read-out
  streak, 2 smoke ring, 5 central enhancement; new bits 10 star loop, 11 other), with the WCS.
- ``LABELS``: ``int32`` instance ids (0 none; the highest-scored instance where they overlap).
- ``INSTANCES``: one row per instance: ``ID``, ``CLASS``, ``CLASS_ID``, ``SCORE``, ``BBOX``
  (XYXY, 0-based pixel edges in the frame the models saw, row 0 at the top), ``AREA`` (mask-grid
  pixels), ``X``, ``Y`` (centroid, FITS 1-based pixels of the mask grid), ``RA``, ``DEC``
  (centroid, degrees; NaN without WCS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from regions import PixCoord, PolygonPixelRegion, RegionMeta, Regions, RegionVisual

from xami.classes import BY_COCO_ID, CLASSES
from xami.data.polygons import mask_to_polygons
from xami.errors import InputError
from xami.io.atomic import write_text_atomic
from xami.io.fits import celestial_wcs, fits_text, write_fits
from xami.structures import Instances
from xami.wcs import MaskGrid

MASK_DTYPE = np.int16
"""Data type of the ``MASK`` HDU (16-bit, like SAS QUALITY images)."""


def to_grid(masks: np.ndarray, factor: int) -> np.ndarray:
    """Display-orientation frame masks ``[N, H, W]`` on a mask grid: upsampled and row-flipped."""
    masks = np.asarray(masks, dtype=bool)
    if factor > 1:
        masks = masks.repeat(factor, axis=1).repeat(factor, axis=2)
    return masks[:, ::-1, :]


def mask_images(masks: np.ndarray, labels: np.ndarray, scores: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The bitmask and the instance-id image of grid masks.

    Parameters
    ----------
    masks : numpy.ndarray
        ``bool [N, H, W]`` masks on the mask grid.
    labels : numpy.ndarray
        ``[N]`` COCO ids.
    scores : numpy.ndarray
        ``[N]`` scores; where instances overlap, the id image holds the highest-scored one.

    Returns
    -------
    bitmask : numpy.ndarray
        ``int16 [H, W]``: the OR of the class flags (`xami.classes.ArtefactClass.flag`) covering
        each pixel.
    ids : numpy.ndarray
        ``int32 [H, W]``: 1-based instance index, 0 where no instance is.

    Examples
    --------
    >>> m = np.zeros((2, 1, 3), bool); m[0, 0, :2] = True; m[1, 0, 1:] = True
    >>> bits, ids = mask_images(m, np.array([3, 4]), np.array([0.9, 0.5]))
    >>> bits.tolist(), ids.tolist()
    ([[2, 6, 4]], [[1, 1, 2]])
    """
    masks = np.asarray(masks, dtype=bool)
    bitmask = np.zeros(masks.shape[1:], dtype=MASK_DTYPE)
    ids = np.zeros(masks.shape[1:], dtype=np.int32)
    for i in np.argsort(scores, kind="stable"):  # lowest first: the best ends on top
        bitmask[masks[i]] |= MASK_DTYPE(BY_COCO_ID[int(labels[i])].flag)
        ids[masks[i]] = i + 1
    return bitmask, ids


def instance_hdu(instances: Instances, grid_masks: np.ndarray,
                 wcs: WCS | None) -> fits.BinTableHDU:
    """The ``INSTANCES`` table HDU (see the module docstring) of instances and their grid masks."""
    n, (height, width) = len(instances), grid_masks.shape[1:]
    area = np.count_nonzero(grid_masks, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):  # empty masks: NaN centroids
        x = np.count_nonzero(grid_masks, axis=1) @ np.arange(1.0, width + 1) / area
        y = np.count_nonzero(grid_masks, axis=2) @ np.arange(1.0, height + 1) / area
    ra, dec = np.full(n, np.nan), np.full(n, np.nan)
    if wcs is not None and n:
        sky = wcs.pixel_to_world(x - 1.0, y - 1.0)
        ra, dec = sky.ra.deg, sky.dec.deg
    names = [BY_COCO_ID[int(c)].name for c in instances.labels]
    columns = [  # built as FITS columns: 3x faster than converting an astropy Table
        fits.Column("ID", "J", array=np.arange(1, n + 1, dtype=np.int32)),
        fits.Column("CLASS", "15A", array=np.array(names, dtype="U15")),
        fits.Column("CLASS_ID", "I", array=instances.labels.astype(np.int16)),
        fits.Column("SCORE", "E", array=instances.scores.astype(np.float32)),
        fits.Column("BBOX", "4E", "pixel", array=instances.boxes.astype(np.float32).reshape(n, 4)),
        fits.Column("AREA", "K", "pixel", array=area.astype(np.int64)),
        fits.Column("X", "D", "pixel", array=x), fits.Column("Y", "D", "pixel", array=y),
        fits.Column("RA", "D", "deg", array=ra), fits.Column("DEC", "D", "deg", array=dec),
    ]
    return fits.BinTableHDU.from_columns(columns, name="INSTANCES")


def bit_cards() -> list[tuple[str, Any, str]]:
    """``BITn`` header cards naming every class bit of the ``MASK`` HDU."""
    return [(f"BIT{c.fits_bit}", c.name, f"flag {c.flag}: {c.short}") for c in CLASSES]


def write_mask_fits(path: str | os.PathLike[str], instances: Instances, grid: MaskGrid, *,
                    cards: Mapping[str, Any]) -> None:
    """Write ``NAME.xami.fits``: bitmask, instance ids and instance table, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    instances : Instances
        Predictions on the frame (display orientation).
    grid : MaskGrid
        The mask grid (factor and WCS).
    cards : Mapping
        Provenance and observation cards for the primary header (name -> value or
        ``(value, comment)``).
    """
    grid_masks = to_grid(instances.masks, grid.factor)
    bitmask, ids = mask_images(grid_masks, instances.labels, instances.scores)
    primary = fits.PrimaryHDU()
    for key, value in cards.items():  # text cards (file names...) kept as ASCII escapes
        if isinstance(value, tuple):
            value = (_card_value(value[0]), *value[1:])
        primary.header[key] = _card_value(value)
    primary.header["XAMIREBN"] = (grid.input_factor, "input-image pixels per mask pixel")
    wcs_cards = fits.Header() if grid.wcs is None else grid.wcs.to_header()
    mask_hdu = fits.ImageHDU(bitmask, header=wcs_cards.copy(), name="MASK")
    for card in bit_cards():
        mask_hdu.header[card[0]] = card[1:]
    label_hdu = fits.ImageHDU(ids, header=wcs_cards.copy(), name="LABELS")
    write_fits(path, [primary, mask_hdu, label_hdu, instance_hdu(instances, grid_masks, grid.wcs)])


def _card_value(value: Any) -> Any:
    """A card value FITS can hold: text through `xami.io.fits.fits_text`, the rest as it is."""
    return fits_text(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class MaskProduct:
    """A ``NAME.xami.fits`` file read back.

    Attributes
    ----------
    bitmask : numpy.ndarray
        ``int16 [H, W]`` QUALITY-style bits (FITS orientation).
    ids : numpy.ndarray
        ``int32 [H, W]`` instance ids.
    table : astropy.table.Table
        The ``INSTANCES`` table.
    wcs : astropy.wcs.WCS or None
        WCS of the mask grid.
    input_factor : int
        Input-image pixels per mask pixel.
    """

    bitmask: np.ndarray
    ids: np.ndarray
    table: Table
    wcs: WCS | None
    input_factor: int


def read_mask_fits(path: str | os.PathLike[str]) -> MaskProduct:
    """Read a mask file written by `write_mask_fits`.

    Raises
    ------
    xami.errors.InputError
        The file is missing, is not FITS, or lacks the ``MASK``, ``LABELS`` or ``INSTANCES`` HDU.
    """
    try:
        with fits.open(path) as hdul:
            names = {hdu.name for hdu in hdul}
            missing = sorted({"MASK", "LABELS", "INSTANCES"} - names)
            if missing:
                raise InputError(path, f"not an xami mask file (no {', '.join(missing)} HDU)")
            return MaskProduct(np.asarray(hdul["MASK"].data, dtype=MASK_DTYPE),
                               np.asarray(hdul["LABELS"].data, dtype=np.int32),
                               Table.read(hdul["INSTANCES"]), celestial_wcs(hdul["MASK"].header),
                               int(hdul[0].header.get("XAMIREBN", 1)))
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as err:
        raise InputError(path, f"cannot read FITS ({err})") from None


def instance_regions(instances: Instances, grid: MaskGrid) -> Regions:
    """DS9 polygons of the instances' outlines on the mask grid (sky when ``grid.wcs`` exists).

    Each connected part of a mask is one polygon (holes filled); its text is the class short name
    and the score, its colour the class colour, and ``meta`` carries ``tag`` ``{class name}``.
    """
    height = instances.image_size[0] * grid.factor
    out = []
    for mask, label, score in zip(instances.masks, instances.labels, instances.scores,
                                  strict=True):
        cls = BY_COCO_ID[int(label)]
        colour = "#{:02x}{:02x}{:02x}".format(*cls.colour)
        for polygon in mask_to_polygons(mask):
            # frame edges (x right, y down, pixel c spans [c, c+1)) -> astropy 0-based, FITS rows
            xy = polygon * grid.factor
            vertices = PixCoord(xy[:, 0] - 0.5, height - xy[:, 1] - 0.5)
            region = PolygonPixelRegion(
                vertices, meta=RegionMeta({"text": f"{cls.short} {score:.2f}", "tag": [cls.name]}),
                visual=RegionVisual({"color": colour}))
            out.append(region if grid.wcs is None else region.to_sky(grid.wcs))
    return Regions(out)


_DS9_FRAMES = ("icrs", "fk5", "fk4", "galactic")  # sky frames DS9 names as astropy does


def write_regions(path: str | os.PathLike[str], instances: Instances, grid: MaskGrid) -> None:
    """Write ``NAME.reg`` (DS9 format) of `instance_regions`, atomically.

    The text is built here in a fixed order, so that it is byte-identical in every process
    (``regions``' own writer orders its ``global`` line by string hashes): a header line, the
    coordinate frame (``image``, 1-based pixels of the mask grid, or the WCS's sky frame,
    degrees), then one ``polygon(...) # color=#rrggbb text={CLASS score} tag={class}`` line
    per outline, coordinates with 8 decimals.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    instances : Instances
        Predictions on the frame (display orientation).
    grid : MaskGrid
        The mask grid (factor and WCS).
    """
    regions = instance_regions(instances, grid)
    lines = ["# Region file format: DS9 version 4.1"]
    if not len(regions):
        lines.append("# no artefact found")
    for region in regions:
        if isinstance(region, PolygonPixelRegion):
            frame, xy = "image", (region.vertices.x + 1.0, region.vertices.y + 1.0)
        else:
            sky = region.vertices
            frame = sky.frame.name if sky.frame.name in _DS9_FRAMES else "icrs"
            sky = sky if frame == sky.frame.name else sky.icrs
            xy = (sky.spherical.lon.deg, sky.spherical.lat.deg)
        if len(lines) == 1:
            lines.append(frame)
        points = ",".join(f"{x:.8f},{y:.8f}" for x, y in zip(*xy, strict=True))
        tags = " ".join(f"tag={{{tag}}}" for tag in region.meta["tag"])
        lines.append(f"polygon({points}) # color={region.visual['color']} "
                     f"text={{{region.meta['text']}}} {tags}")
    write_text_atomic(path, "\n".join(lines) + "\n")

