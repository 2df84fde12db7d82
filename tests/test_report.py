"""HTML run report: tables in the paper's layout, escaping, gallery, errors, headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS
from PIL import Image

from _data_factory import box_mask
from xami.classes import BY_SHORT, CLASSES, TABLE3_ORDER
from xami.errors import InputError
from xami.products import write_mask_fits
from xami.report import figures, write_report
from xami.report.overlay import render_overlay, write_png
from xami.structures import Instances
from xami.wcs import MaskGrid

pytestmark = pytest.mark.light  # needs no optional extra (CI's light venv runs it)

SHAPE = (48, 64)
TABLE3_ROWS = [f"{s} {BY_SHORT[s].name}" for s in TABLE3_ORDER]  # "CR central-ring", ...
EVIL = '<b>evil</b> & "quotes"'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Tables(HTMLParser):
    """Every table of a page as rows of whitespace-normalised cell texts (nested ones apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._open: list[list[list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._open.append([])
        elif tag == "tr" and self._open:
            self._open[-1].append([])
        elif tag in ("td", "th") and self._open:
            self._open[-1][-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            table = self._open.pop()
            self.tables.append([[" ".join(c.split()) for c in row] for row in table])

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] and self._open[-1][-1]:
            self._open[-1][-1][-1] += data


def _tables(page: str) -> list[list[list[str]]]:
    """Parse the tables of a page."""
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _table_with(page: str, *head: str) -> list[list[str]]:
    """The one table whose first row is ``head``."""
    (table,) = [t for t in _tables(page) if t and t[0] == list(head)]
    return table


def _ap(k: int, offset: float) -> dict[str, float]:
    """Per-class AP values that differ by class and by box/mask, so a mis-mapped cell shows."""
    return {"AP": 0.2 + k / 100 + offset, "AP50": 0.5 + k / 100 + offset,
            "AP75": 0.3 + k / 100 + offset}


def _iou_type(offset: float) -> dict[str, object]:
    """One ``segm`` or ``bbox`` block of metrics.json; smoke-ring has no ground truth."""
    per_class: dict[str, object] = {c.name: _ap(c.coco_id, offset) for c in CLASSES}
    per_class["smoke-ring"] = {"AP": None, "AP50": None, "AP75": None}
    sizes = {"small": {"AP": 0.1 + offset, "AP50": 0.2, "AP75": None},
             "medium": {"AP": 0.3, "AP50": 0.4, "AP75": 0.35},
             "large": {"AP": 0.5, "AP50": 0.6, "AP75": 0.55}}
    return {"AP": 0.333 + offset, "AP50": 0.612 + offset, "AP75": 0.345 + offset,
            "AP50_90_paper": 0.456 + offset, **sizes, "per_class": per_class}


def _image(name: str, png: str | None, instances: list[dict[str, object]]) -> dict[str, object]:
    """One done image entry of run.json."""
    outputs = {"fits": f"{name}.xami.fits"} | ({"png": png} if png else {})
    return {"input": f"sim/fits/{name}.fits", "name": name, "status": "done", "reason": None,
            "seconds": 0.31, "outputs": outputs, "instances": instances}


def _sky_wcs() -> WCS:
    """TAN WCS of the 64 x 48 grid: 2 arcsec pixels, north up and east left, centre (150, +2)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [32.5, 24.5]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cdelt = [-2 / 3600, 2 / 3600]
    return wcs


def _make_run(run_dir: Path, rng: np.random.Generator, *, metrics: bool = True) -> Path:
    """A run folder in the ``xami predict`` layout: 2 overlays, 1 missing, 1 empty, 1 failure.

    Image V has a FITS product with a WCS and FILTER / EXPOSURE cards, B one without WCS; the
    FITS products of U and L were not written.
    """
    frame = rng.integers(0, 256, SHAPE, dtype=np.uint8)
    streak = box_mask(0, 48, 10, 14, shape=SHAPE)
    loop = box_mask(5, 20, 30, 50, shape=SHAPE)
    write_png(render_overlay(frame, streak[None], [3], [0.87]), run_dir / "S0123456789_V.png")
    both = render_overlay(frame, np.stack([streak, loop]), [3, 5])
    write_png(both, run_dir / "S0000000001_B.png")
    write_mask_fits(run_dir / "S0123456789_V.xami.fits",
                    Instances.from_masks(streak[None], labels=[3], scores=[0.87]),
                    MaskGrid(1, _sky_wcs()), cards={"FILTER": "V", "EXPOSURE": 4400.0,
                                                    "OBS_ID": "0123456789"})
    write_mask_fits(run_dir / "S0000000001_B.xami.fits",
                    Instances.from_masks(np.stack([streak, loop]), labels=[3, 5],
                                         scores=[0.87, 0.5]),
                    MaskGrid(1, None), cards={"FILTER": "B", "EXPOSURE": 1000})
    ros = {"id": 1, "class": "read-out-streak", "score": 0.87, "bbox": [10.0, 0.0, 14.0, 48.0],
           "area": 192}
    sl = {"id": 2, "class": "star-loop", "score": 0.5, "bbox": [30.0, 5.0, 50.0, 20.0], "area": 300}
    images = [_image("S0123456789_V", "S0123456789_V.png", [ros]),
              _image("S0000000001_B", "S0000000001_B.png", [ros, sl]),
              _image("S0000000002_U", "S0000000002_U.png", []),  # overlay file never written
              _image("S0000000003_L", None, []),  # "png" not among the formats
              {"input": "bad.fits", "name": "bad", "status": "failed",
               "reason": f"bad.fits: {EVIL}", "seconds": 0.0, "outputs": {}, "instances": []}]
    run = {"xami_version": "0.1.0", "created": "2026-11-25T05:00:00+00:00",
           "command": "xami predict 'sim/*.fits' --out <run>",
           "models": {"detector": {"path": "weights/det.pt", "sha256": "ab12" * 16},
                      "segmentor": None},
           "settings": {"conf": 0.2, "formats": ["fits", "regions", "png"], "streak_fit": True},
           "images": images,
           "summary": {"images": 5, "done": 4, "failed": 1, "seconds_per_image": 0.31,
                       "instances": {"central-ring": 0, "other": 0, "read-out-streak": 2,
                                     "smoke-ring": 0, "star-loop": 1}}}
    (run_dir / "run.json").write_text(json.dumps(run))
    if metrics:
        pr = {f"iou_{t}": {"per_class": {c.name: _pr(c.coco_id, t) for c in CLASSES},
                           "mean": {"precision": 0.5 + t / 10, "recall": 0.4 + t / 10}}
              for t in (0.2, 0.5)}  # as xami.eval.evaluate writes it, classes in COCO order
        pr |= {"thresholds": [0.5, 0.75], "odd": [{"nested": {"deeper": [1, 2]}}, "text"],
               "by_class": {"star-loop": {"n": 1}, "central-ring": {"n": 2}}}
        (run_dir / "metrics.json").write_text(json.dumps(
            {"segm": _iou_type(0.0), "bbox": _iou_type(0.05), "mean_iou": 0.8123,
             "mean_iou_std": 0.1049, "images_in_mean_iou": 4, "precision_recall": pr,
             "conf": 0.25, "provenance": {"gt": "valid/_annotations.coco.json"}}))
        (run_dir / "table3.md").write_text("| class | AP50 |\n|---|---|\n| CR | 51.0 |\n")
        ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
        write_png(ramp, run_dir / "plots" / "iou_cdf.png")
    return run_dir


def _pr(k: int, iou: float) -> dict[str, object]:
    """Precision / recall of class ``k`` at one IoU that differ by class and IoU; SR undefined."""
    if k == 4:
        return {"precision": None, "recall": None, "tp": 0, "fp": 0, "fn": 0}
    return {"precision": k / 10 + iou, "recall": k / 20 + iou, "tp": k, "fp": 10 + k,
            "fn": 20 + k + int(10 * iou)}


@pytest.fixture
def run_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A complete run folder with metrics, table3.md and one plot."""
    return _make_run(tmp_path / "run", rng)


def test_table3_rows_and_values_follow_the_paper_layout(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    table = _table_with(page, "class", "mask (segm)", "box (bbox)")
    assert table[1] == ["AP50", "AP75", "AP0.5:0.95", "AP50–90 (paper)"] * 2
    rows = {row[0]: row[1:] for row in table[2:]}
    assert [row[0] for row in table[2:]] == ["overall", "CR central-ring", "SR smoke-ring",
                                             "SL star-loop", "ROS read-out-streak", "OT other"]
    assert rows["overall"] == ["0.612", "0.345", "0.333", "0.456",
                               "0.662", "0.395", "0.383", "0.506"]
    assert rows["CR central-ring"] == ["0.510", "0.310", "0.210", "—",
                                       "0.560", "0.360", "0.260", "—"]
    assert rows["ROS read-out-streak"][:3] == ["0.530", "0.330", "0.230"]
    assert rows["SR smoke-ring"] == ["—"] * 8
    sizes = _table_with(page, "objects", "mask (segm)", "box (bbox)")
    assert sizes[2] == ["small", "0.200", "—", "0.100", "0.200", "—", "0.150"]
    assert "Mean mask IoU: <b>0.812</b> ± 0.105 (over 4 images)" in page
    assert "<code>valid/_annotations.coco.json</code>, detections with score ≥ 0.25" in page


def test_precision_recall_is_a_table_with_the_classes_in_table3_order(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    pr = _table_with(page, "class", "IoU ≥ 0.5", "IoU ≥ 0.2")
    assert pr[1] == ["precision", "recall", "TP", "FP", "FN"] * 2
    assert [r[0] for r in pr[2:]] == ["mean over classes", *TABLE3_ROWS]
    rows = {r[0]: r[1:] for r in pr[2:]}
    assert rows["ROS read-out-streak"] == ["0.800", "0.650", "3", "13", "28",
                                           "0.500", "0.350", "3", "13", "25"]
    assert rows["SR smoke-ring"] == ["—", "—", "0", "0", "0"] * 2
    assert rows["mean over classes"] == ["0.550", "0.450", "—", "—", "—",
                                         "0.520", "0.420", "—", "—", "—"]
    # entries of another layout are still shown, generically (class rows in Table 3 order)
    assert "0.500, 0.750" in page and "deeper" in page and "text" in page
    assert _table_with(page, "", "n")[1:] == [["CR central-ring", "2"], ["SL star-loop", "1"]]


def test_header_summary_failures_and_escaping(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert "xami predict &#x27;sim/*.fits&#x27; --out &lt;run&gt;" in page
    assert "ab12" * 16 in page and "weights/det.pt" in page and "2026-11-25T05:00:00+00:00" in page
    assert "<b>evil</b>" not in page
    assert "bad.fits: &lt;b&gt;evil&lt;/b&gt; &amp; &quot;quotes&quot;" in page
    failures = _table_with(page, "image", "input", "reason")
    assert failures[1:] == [["bad", "bad.fits", f"bad.fits: {EVIL}"]]
    counts = dict(_table_with(page, "class", "instances")[1:])
    assert counts["ROS read-out-streak"] == "2" and counts["SL star-loop"] == "1"
    assert counts["CR central-ring"] == "0"
    for c in CLASSES:
        r, g, b = c.colour
        assert f"background: rgb({r}, {g}, {b})" in page
    assert "Failures (1)" in page


def test_gallery_links_thumbnails_to_the_full_overlays(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert page.count('<figure class="card">') == 4  # failed image not in the gallery
    assert "Gallery (4 of 4)" in page and "not shown" not in page
    for name in ("S0123456789_V", "S0000000001_B"):
        assert page.count(f'<a href="{name}.png"') == 2  # the thumbnail and "full-size overlay"
        full = base64.b64encode((run_dir / f"{name}.png").read_bytes()).decode()
        assert full not in page  # the overlay itself is not embedded
    thumbs = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    assert len(thumbs) == 2
    for uri in thumbs:
        with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
            assert im.format == "JPEG" and im.size == (SHAPE[1], SHAPE[0])  # never enlarged
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 1  # the plot
    assert "Overlay <code>S0000000002_U.png</code> is missing or not a PNG." in page
    assert "No overlay PNG in this run" in page
    head = ["class", "#", "score", "box x0, y0, x1, y1 (px)", "area (px)"]  # B: no WCS
    (instances,) = [t for t in _tables(page) if t[0] == head]
    assert instances[1:] == [["SL star-loop", "2", "0.500", "30.0, 5.0, 50.0, 20.0", "300"],
                             ["ROS read-out-streak", "1", "0.870", "10.0, 0.0, 14.0, 48.0", "192"]]


def test_thumbnails_are_at_most_thumbnail_px(tmp_path: Path, rng: np.random.Generator) -> None:
    from xami.report.gallery import THUMBNAIL_PX

    frame = rng.integers(0, 256, (600, 800), dtype=np.uint8)
    write_png(np.stack([frame] * 3, axis=2), tmp_path / "S0000000009_V.png")
    images = [_image("S0000000009_V", "S0000000009_V.png", [])]
    (tmp_path / "run.json").write_text(json.dumps({"images": images}))
    page = write_report(tmp_path).read_text(encoding="utf-8")
    (uri,) = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', page)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
        assert im.size == (THUMBNAIL_PX, THUMBNAIL_PX * 3 // 4)
    assert "(800 × 600 px PNG)" in page


def test_page_size_per_image_is_a_small_thumbnail(tmp_path: Path,
                                                  rng: np.random.Generator) -> None:
    shape, n = (512, 512), 4
    images = []
    for i in range(n):  # sky noise, a star, a streak: the overlay PNG is about 270 KB
        frame = np.clip(rng.normal(90, 14, shape), 0, 255).astype(np.uint8)
        frame[200:220, 300:320] = 255
        streak = box_mask(0, 512, 305, 312, shape=shape)
        write_png(render_overlay(frame, streak[None], [3], [0.9]), tmp_path / f"S{i:010d}_V.png")
        images.append(_image(f"S{i:010d}_V", f"S{i:010d}_V.png", []))
    (tmp_path / "run.json").write_text(json.dumps({"images": images}))
    empty = write_report(tmp_path, max_images=0).stat().st_size
    per_image = (write_report(tmp_path).stat().st_size - empty) / n
    assert (tmp_path / "S0000000000_V.png").stat().st_size > 200_000
    assert per_image < 60_000, f"{per_image:.0f} bytes per image"


def test_captions_show_filter_and_exposure(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    captions = re.findall(r'<figcaption class="caption">(.*?)</figcaption>', page)
    assert captions[:2] == ["filter <b>V</b> · exposure <b>4400 s</b> · ObsID 0123456789",
                            "filter <b>B</b> · exposure <b>1000 s</b>"]
    assert captions[2:] == ["filter <b>—</b> · exposure <b>—</b>"] * 2  # no FITS product


def test_instances_in_ra_dec_and_a_compass_where_a_wcs_exists(run_dir: Path) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    head = ["class", "#", "score", "box x0, y0, x1, y1 (px)", "RA (°)", "Dec (°)",
            "box w × h (″)", "area (px)"]
    # the streak's centroid is 20 px (40 arcsec) east of the reference pixel; 4 x 48 px boxes
    assert _table_with(page, *head)[1:] == [["ROS read-out-streak", "1", "0.870",
                                             "10.0, 0.0, 14.0, 48.0", "150.01112", "+2.00000",
                                             "8.0 × 96.0", "192"]]
    compasses = re.findall(r'<svg class="compass"[^>]*data-north="([^"]+)" '
                           r'data-east="([^"]+)"', page)
    assert compasses == [("0.00,-1.00", "-1.00,0.00")]  # only V has a WCS: N up, E left
    assert ">N</text>" in page and ">E</text>" in page


def test_class_order_is_table3_everywhere(run_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    page = write_report(run_dir).read_text(encoding="utf-8")
    assert [r[0] for r in _table_with(page, "class", "instances")[1:]] == TABLE3_ROWS
    ticks = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: ticks.append(
        [t.get_text() for t in fig.axes[0].get_xticklabels()]))
    figures.plot_class_distribution({"train": {c.name: 1 for c in CLASSES}}, "unused.png")
    figures.plot_per_class_ap({c.name: {"AP": 0.5} for c in CLASSES}, "unused.png",
                              keys=("AP",))
    assert ticks == [list(TABLE3_ORDER)] * 2


def test_page_is_self_contained_but_for_overlay_links(run_dir: Path) -> None:
    out = write_report(run_dir)
    page = out.read_text(encoding="utf-8")
    assert out == run_dir / "report.html"
    assert "http://" not in page and "https://" not in page
    assert not re.search(r'src="(?!data:)', page)
    links = set(re.findall(r'href="(?!#)([^"]+)"', page))
    assert links == {"S0123456789_V.png", "S0000000001_B.png"}  # beside the page
    assert all((run_dir / link).is_file() for link in links)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


def test_max_images_limits_the_gallery_and_says_how_many_are_left_out(run_dir: Path) -> None:
    page = write_report(run_dir, max_images=1).read_text(encoding="utf-8")
    assert page.count('<figure class="card">') == 1
    assert "3 more image(s) not shown (max_images=1)" in page
    assert "Gallery (1 of 4)" in page


def test_run_without_metrics_has_no_evaluation_tables(tmp_path: Path,
                                                      rng: np.random.Generator) -> None:
    page = write_report(_make_run(tmp_path, rng, metrics=False)).read_text(encoding="utf-8")
    assert "No evaluation: this run has no <code>metrics.json</code>." in page
    assert "mask (segm)" not in page and "Mean mask IoU" not in page


def test_missing_or_malformed_inputs_are_named(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(InputError, match=r"run\.json: not found"):
        write_report(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="max_images must be a non-negative integer, got -1"):
        write_report(run_dir, max_images=-1)
    (run_dir / "metrics.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"metrics\.json: must hold a JSON object, got list"):
        write_report(run_dir)
    (run_dir / "run.json").write_text("{not json")
    with pytest.raises(InputError, match=r"run\.json: not valid JSON"):
        write_report(run_dir)
    (run_dir / "run.json").write_text(json.dumps({"images": {"a": 1}}))
    with pytest.raises(InputError, match="'images' must be a list of JSON objects"):
        write_report(run_dir)
    assert not (run_dir / "report.html").exists()


def test_chromium_renders_the_tables_and_decodes_every_image(tmp_path: Path, run_dir: Path,
                                                             chromium) -> None:
    uri = write_report(run_dir).resolve().as_uri()
    dom = chromium("--dump-dom", uri)
    assert 'data-images-total="3"' in dom and 'data-images-decoded="3"' in dom
    assert len(_table_with(dom, "class", "mask (segm)", "box (bbox)")) == 2 + 6
    assert "Mean mask IoU" in dom and dom.count('<figure class="card">') == 4
    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2000", uri)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
