"""The report's gallery: per image a thumbnail linking to its overlay, a caption, its instances.

Thumbnails are small JPEG data URIs (`THUMBNAIL_PX`), so the page stays small and still shows
every image when sent on its own; each links to the full-size overlay ``NAME.png`` beside the
page. Filter, exposure and sky positions come from the image's ``NAME.xami.fits``: its primary
header (the input's observation cards), the ``INSTANCES`` table (centroid RA, Dec) and the
``MASK`` HDU's WCS (north / east arrows, box sizes in arcsec).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from PIL import Image

from xami.io.fits import celestial_wcs
from xami.report.markup import DASH, class_label, esc, field, num, row, table, table3_rank

THUMBNAIL_PX = 320
"""Longest side (px) of a gallery thumbnail: labels of a 512 overlay stay about 10 px tall."""
_JPEG_QUALITY = 80
_ARROW = 17.0  # length of a compass arrow in its 56 px SVG


@dataclass(frozen=True)
class _Product:
    """What the gallery reads from an image's ``NAME.xami.fits``."""

    cards: dict[str, Any]
    sky: dict[int, tuple[float, float]]
    wcs: WCS | None
    shape: tuple[int, int]


@dataclass(frozen=True)
class _Thumbnail:
    """A JPEG data URI of an overlay, its size and the overlay's size (width, height)."""

    uri: str
    size: tuple[int, int]
    full: tuple[int, int]


def gallery(run_dir: Path, images: Sequence[Mapping[str, Any]], max_images: int) -> str:
    """The gallery section: cards of the first ``max_images`` images that did not fail.

    Parameters
    ----------
    run_dir : pathlib.Path
        Run folder; the overlay and FITS paths of ``images`` are relative to it.
    images : sequence of Mapping
        The ``images`` entries of ``run.json``.
    max_images : int
        Most cards; the section says how many images are left out.

    Returns
    -------
    str
        The ``<section id="gallery">`` HTML.
    """
    candidates = [im for im in images if im.get("status") != "failed"]
    shown = candidates[:max_images]
    hidden = len(candidates) - len(shown)
    note = (f'<p class="note">{hidden} more image(s) not shown (max_images={max_images}).</p>'
            if hidden else "")
    cards = "\n".join(_card(run_dir, im) for im in shown)
    return (f'<section id="gallery"><h2>Gallery ({len(shown)} of {len(candidates)})</h2>{note}'
            f'<p class="muted">{THUMBNAIL_PX} px thumbnails: click one for the full-size '
            'overlay (<code>NAME.png</code> beside this page).</p>'
            f'<div class="grid">\n{cards}\n</div></section>')


def _card(run_dir: Path, image: Mapping[str, Any]) -> str:
    """One image: name, caption, thumbnail (or a note saying why there is none), instances."""
    name = image.get("name") or image.get("input")
    outputs = image.get("outputs")
    fits_rel, png_rel = field(outputs, "fits"), field(outputs, "png")
    product = _read_product(run_dir / str(fits_rel)) if fits_rel else None
    thumb = _thumbnail(run_dir / str(png_rel)) if png_rel else None
    if thumb:
        picture = _picture(str(png_rel), str(name), thumb, product)
    elif png_rel:
        picture = (f'<p class="note">Overlay <code>{esc(png_rel)}</code> is missing or not a '
                   "PNG.</p>")
    else:
        picture = '<p class="note">No overlay PNG in this run (format "png" not written).</p>'
    instances = sorted(image.get("instances") or [],
                       key=lambda inst: table3_rank(str(field(inst, "class"))))
    arcsec = _arcsec_per_pixel(product, thumb)
    cards = {} if product is None else product.cards
    return (f'<figure class="card"><div class="pic">{picture}</div><div class="info">'
            f"<h3>{esc(name)}</h3>{_caption(image, cards, len(instances))}"
            f"{_instance_table(instances, product, arcsec)}</div></figure>")


def _caption(image: Mapping[str, Any], cards: Mapping[str, Any], n_instances: int) -> str:
    """Filter, exposure and observation of an image, then its input, status and timing."""
    filt, exposure = cards.get("FILTER"), cards.get("EXPOSURE")
    sky = [f"filter <b>{esc(str(filt).strip()) if filt else DASH}</b>",
           f"exposure <b>{_seconds(exposure)}</b>"]
    sky += [f"{label} {esc(cards[key])}" for key, label in
            (("OBS_ID", "ObsID"), ("OBJECT", "object"), ("DATE-OBS", "date")) if cards.get(key)]
    run = (f'<code>{esc(image.get("input"))}</code> · {esc(image.get("status"))} · '
           f'{n_instances} instance(s) · {num(image.get("seconds"), 2)} s')
    return (f'<figcaption class="caption">{" · ".join(sky)}</figcaption>'
            f'<p class="muted">{run}</p>')


def _seconds(value: object) -> str:
    """An exposure in seconds, or a dash when the header has none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return DASH
    return f"{value:g} s"


def _picture(png_rel: str, name: str, thumb: _Thumbnail, product: _Product | None) -> str:
    """The thumbnail linking to the overlay, with the compass when the image has a WCS."""
    href = quote(png_rel)
    (w, h), (full_w, full_h) = thumb.size, thumb.full
    compass = _compass(product.wcs, product.shape) if product and product.wcs else ""
    return (f'<div class="thumb"><a href="{href}" title="full-size overlay">'
            f'<img src="{thumb.uri}" width="{w}" height="{h}" alt="overlay of {esc(name)}"></a>'
            f'{compass}</div><p class="muted"><a href="{href}">full-size overlay</a> '
            f"({full_w} × {full_h} px PNG)</p>")


def _thumbnail(path: Path) -> _Thumbnail | None:
    """The overlay at ``path`` shrunk to `THUMBNAIL_PX` as JPEG; None if missing or not a PNG."""
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                return None
            full = im.size
            small = im.convert("RGB")
            small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    except OSError:
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return _Thumbnail(uri, small.size, full)


def _read_product(path: Path) -> _Product | None:
    """Cards, instance sky positions, WCS and grid of a ``NAME.xami.fits``; None if unreadable."""
    try:
        with fits.open(path) as hdul:
            primary, mask = hdul[0].header, hdul["MASK"].header
            cards = {k: primary[k] for k in ("FILTER", "EXPOSURE", "OBS_ID", "OBJECT", "DATE-OBS")
                     if k in primary}
            data = hdul["INSTANCES"].data
            sky = {} if data is None else {
                int(i): (float(ra), float(dec))
                for i, ra, dec in zip(data["ID"], data["RA"], data["DEC"], strict=True)}
            return _Product(cards, sky, celestial_wcs(mask),
                            (int(mask.get("NAXIS2", 0)), int(mask.get("NAXIS1", 0))))
    except (OSError, KeyError, ValueError):
        return None


def _compass(wcs: WCS, shape: tuple[int, int]) -> str:
    """SVG arrows to north and east at the image centre, in display orientation (row 0 on top)."""
    rows, cols = shape
    cx, cy = (cols - 1) / 2, (rows - 1) / 2
    centre = wcs.pixel_to_world(cx, cy)
    units, paths, letters = [], [], []
    for letter, angle in (("N", 0.0), ("E", 90.0)):
        x, y = wcs.world_to_pixel(centre.directional_offset_by(angle * u.deg, 1 * u.arcmin))
        dx, dy = float(x) - cx, cy - float(y)  # FITS y grows upwards, the display's downwards
        norm = math.hypot(dx, dy)
        if not norm or not math.isfinite(norm):
            return ""
        ux, uy = dx / norm, dy / norm
        units.append(f"{round(ux, 2) + 0.0:.2f},{round(uy, 2) + 0.0:.2f}")  # no "-0.00"
        tx, ty = _ARROW * ux, _ARROW * uy
        head = [(tx - 5 * ux + s * 3.5 * uy, ty - 5 * uy - s * 3.5 * ux) for s in (1, -1)]
        paths.append(f"M0,0L{tx:.1f},{ty:.1f}M{head[0][0]:.1f},{head[0][1]:.1f}"
                     f"L{tx:.1f},{ty:.1f}L{head[1][0]:.1f},{head[1][1]:.1f}")
        letters.append(f'<text x="{(_ARROW + 7) * ux:.1f}" y="{(_ARROW + 7) * uy:.1f}">'
                       f"{letter}</text>")
    d = "".join(paths)
    return (f'<svg class="compass" width="56" height="56" viewBox="-28 -28 56 56" role="img" '
            f'data-north="{units[0]}" data-east="{units[1]}"><title>north (N) and east (E) on '
            f'the sky</title><path class="halo" d="{d}"/><path d="{d}"/>{"".join(letters)}</svg>')


def _arcsec_per_pixel(product: _Product | None, thumb: _Thumbnail | None) -> float | None:
    """Sky size of one pixel of the frame the boxes are in; None without WCS or frame size."""
    if product is None or product.wcs is None or thumb is None or not thumb.full[0]:
        return None
    per_grid_pixel = float(proj_plane_pixel_scales(product.wcs).mean()) * 3600.0
    return per_grid_pixel * product.shape[1] / thumb.full[0]


def _instance_table(instances: Sequence[Any], product: _Product | None,
                    arcsec: float | None) -> str:
    """Class, score, box and area of each instance; centroid RA, Dec and box size with a WCS."""
    if not instances:
        return "<p>No artefacts found.</p>"
    sky = product is not None and product.wcs is not None
    head = ["class", "#", "score", "box x0, y0, x1, y1 (px)",
            *(["RA (°)", "Dec (°)", "box w × h (″)"] if sky else []), "area (px)"]
    rows = []
    for inst in instances:
        box = field(inst, "bbox")
        cells = [class_label(str(field(inst, "class"))), esc(field(inst, "id")),
                 num(field(inst, "score")), _bbox(box)]
        if sky:
            ra, dec = product.sky.get(field(inst, "id"), (math.nan, math.nan))
            cells += [_degrees(ra, "{:.5f}"), _degrees(dec, "{:+.5f}"), _box_size(box, arcsec)]
        rows.append([*cells, num(field(inst, "area"), 1)])
    return table(row(head, "th"), rows, numeric=True)


def _degrees(value: float, spec: str) -> str:
    """A sky coordinate in degrees, or a dash when it is undefined."""
    return spec.format(value) if math.isfinite(value) else DASH


def _is_box(box: object) -> bool:
    """True for a list of four numbers."""
    return (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) for v in box))


def _bbox(box: object) -> str:
    """A box as rounded pixel coordinates."""
    return ", ".join(f"{v:.1f}" for v in box) if _is_box(box) else esc(box)


def _box_size(box: object, arcsec: float | None) -> str:
    """Width × height of a box in arcsec."""
    if arcsec is None or not _is_box(box):
        return DASH
    x0, y0, x1, y1 = box
    return f"{(x1 - x0) * arcsec:.1f} × {(y1 - y0) * arcsec:.1f}"
