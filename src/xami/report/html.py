"""HTML report of a prediction run: one self-contained page (inline CSS, images as data URIs)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from xami import __version__
from xami.classes import BY_NAME, BY_SHORT, CLASSES, TABLE3_ORDER, ArtefactClass
from xami.errors import InputError
from xami.io.atomic import write_text_atomic

_AP_COLUMNS = (("AP50", "AP<sub>50</sub>"), ("AP75", "AP<sub>75</sub>"),
               ("AP", "AP<sub>0.5:0.95</sub>"), ("AP50_90_paper", "AP<sub>50–90</sub> (paper)"))
_SIZE_COLUMNS = _AP_COLUMNS[:3]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DASH = "—"

_CSS = """
:root { --fg: #1d2330; --muted: #5b6472; --line: #d5d9e0; --card: #f5f6f8; }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); max-width: 1400px;
       margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin: .3rem 0; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 0 0 .3rem; word-break: break-all; }
nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .2rem .5rem; text-align: left;
         vertical-align: top; }
thead th { background: var(--card); text-align: center; }
table.num td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px/1.4 ui-monospace, monospace; word-break: break-all; white-space: pre-wrap; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.sw { display: inline-block; width: .9em; height: .9em; border: 1px solid #0005;
      vertical-align: -.1em; margin-right: .35em; }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .5rem; }
.stats div { background: var(--card); padding: .5rem .7rem; border-radius: 6px; }
.stats b { display: block; font-size: 1.4rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
        padding: .6rem; margin: 0; }
.card img, .plot img { max-width: 100%; height: auto; display: block; }
.plot { margin: 0 0 1rem; }
.note { color: #8a4b00; font-style: italic; }
.muted { color: var(--muted); }
.scroll { max-height: 8em; overflow: auto; }
"""

_SCRIPT = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  document.body.dataset.imagesTotal = images.length;
  const decoded = images.filter((im) => im.complete && im.naturalWidth > 0);
  document.body.dataset.imagesDecoded = decoded.length;
});
"""


def write_report(run_dir: str | os.PathLike[str], *, max_images: int = 200) -> Path:
    """Write ``RUN_DIR/report.html``: one self-contained page describing a prediction run.

    The page shows the run's provenance (xami version, date, command, models with checksums,
    settings), its summary (images done / failed, instances per class, seconds per image), the
    failures with their reasons, the evaluation when the run has one (``metrics.json`` as tables
    in the layout of the paper's Table 3, ``table3.md`` and ``plots/*.png``) and a gallery of the
    overlay PNGs with each image's instances. Every image is embedded as a base64 data URI and
    the CSS is inline, so the file opens offline and can be sent on its own.

    Parameters
    ----------
    run_dir : str or os.PathLike
        Folder written by ``xami predict``, holding ``run.json`` (output paths in it are
        relative to this folder) and optionally ``metrics.json``, ``table3.md`` and ``plots/``.
    max_images : int, optional
        Most images shown in the gallery (in ``run.json`` order, failed images left out); the
        page says how many more there are. Each overlay adds its PNG size (x 4/3) to the page.

    Returns
    -------
    pathlib.Path
        The written ``RUN_DIR/report.html`` (written atomically).

    Raises
    ------
    InputError
        If ``run.json`` is missing or is not a JSON object with a list of ``images``, or if
        ``metrics.json`` exists but is not a JSON object.
    ValueError
        If ``max_images`` is not a non-negative integer.

    Examples
    --------
    >>> write_report("runs/2026-11-25", max_images=50)  # doctest: +SKIP
    PosixPath('runs/2026-11-25/report.html')
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0:
        raise ValueError(f"max_images must be a non-negative integer, got {max_images!r}")
    run_dir = Path(run_dir)
    run = _read_json(run_dir / "run.json", required=True)
    images = run.get("images", [])
    if not isinstance(images, list) or not all(isinstance(im, Mapping) for im in images):
        raise InputError(run_dir / "run.json", "'images' must be a list of JSON objects")
    sections = [
        _header(run, run_dir),
        _summary(run.get("summary") or {}),
        _failures(images),
        _evaluation(run_dir, _read_json(run_dir / "metrics.json", required=False)),
        _gallery(run_dir, images, max_images),
    ]
    out = run_dir / "report.html"
    write_text_atomic(out, _page(f"xami report: {run_dir.resolve().name}", sections))
    return out


def _read_json(path: Path, *, required: bool) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when an optional file is absent."""
    if not path.is_file():
        if required:
            raise InputError(path, "not found: is this a folder written by 'xami predict'?")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise InputError(path, f"must hold a JSON object, got {type(value).__name__}")
    return value


def _page(title: str, sections: Sequence[str]) -> str:
    """The whole document around the sections."""
    nav = " ".join(f'<a href="#{a}">{a.capitalize()}</a>'
                   for a in ("summary", "failures", "evaluation", "gallery"))
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="xami {_e(__version__)}">\n'
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_e(title)}</h1>\n<nav>{nav}</nav>\n" + "\n".join(sections)
            + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")


def _e(value: object) -> str:
    """Escaped text of a value; None as a dash."""
    return _DASH if value is None else html.escape(str(value))


def _num(value: object, digits: int | None = 3) -> str:
    """A cell for a number: floats rounded (as written when ``digits`` is None), NaN as a dash."""
    if isinstance(value, float) and digits is not None:
        return _DASH if math.isnan(value) else f"{value:.{digits}f}"
    return _e(value)


def _row(cells: Iterable[str], tag: str = "td") -> str:
    """One table row of ready HTML cells."""
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _table(head: str, rows: Iterable[Sequence[str]], *, numeric: bool = False) -> str:
    """A table from a ready ``<tr>`` head (may be empty) and rows of ready HTML cells."""
    body = "\n".join(_row(r) for r in rows)
    cls = ' class="num"' if numeric else ""
    thead = f"<thead>{head}</thead>" if head else ""
    return f"<table{cls}>{thead}<tbody>\n{body}\n</tbody></table>"


def _field(obj: object, key: str) -> Any:
    """``obj[key]`` when ``obj`` is a JSON object, else None (tolerates partial files)."""
    return obj.get(key) if isinstance(obj, Mapping) else None


def _class_label(name: str, cls: ArtefactClass | None = None) -> str:
    """Colour swatch, short name and full name of a class (plain escaped text if unknown)."""
    cls = cls or BY_NAME.get(name)
    if cls is None:
        return _e(name)
    r, g, b = cls.colour
    return (f'<span class="sw" style="background: rgb({r}, {g}, {b})"></span>'
            f'<b>{cls.short}</b> <span class="muted">{_e(cls.name)}</span>')


def _header(run: Mapping[str, Any], run_dir: Path) -> str:
    """Provenance of the run: version, date, command, models and settings."""
    models = run.get("models") or {}
    model_rows = [[_e(role), "none" if m is None else _e(_field(m, "path") or m),
                   f"<code>{_e(_field(m, 'sha256'))}</code>"] for role, m in models.items()]
    items = [("folder", f"<code>{_e(run_dir)}</code>"),
             ("xami version", _e(run.get("xami_version"))), ("created", _e(run.get("created"))),
             ("command", f"<code>{_e(run.get('command'))}</code>"),
             ("models", _table(_row(["role", "path", "sha256"], "th"), model_rows)),
             ("settings", _generic(run.get("settings"), digits=None))]
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="run"><h2>Run</h2><dl class="meta">{meta}</dl></section>'


def _summary(summary: Mapping[str, Any]) -> str:
    """Counts of images and instances, with the class colours, and the speed."""
    counts = _field(summary, "instances") or {}
    total = sum(v for v in counts.values() if isinstance(v, int)) if counts else None
    stats = [("images", _num(summary.get("images"))), ("done", _num(summary.get("done"))),
             ("failed", _num(summary.get("failed"))), ("instances", _num(total)),
             ("seconds per image", _num(summary.get("seconds_per_image"), 2))]
    cards = "".join(f"<div><b>{v}</b>{k}</div>" for k, v in stats)
    rows = [[_class_label(c.name), _num(counts.get(c.name, 0) if counts else None)]
            for c in CLASSES]
    rows += [[_e(k), _num(v)] for k, v in counts.items() if k not in BY_NAME]
    table = _table(_row(["class", "instances"], "th"), rows, numeric=True)
    return (f'<section id="summary"><h2>Summary</h2><div class="stats">{cards}</div>{table}'
            "</section>")


def _failures(images: Sequence[Mapping[str, Any]]) -> str:
    """The images that failed, with the reason each one did."""
    failed = [im for im in images if im.get("status") == "failed"]
    if not failed:
        body = "<p>No image failed.</p>"
    else:
        rows = [[_e(im.get("name")), f"<code>{_e(im.get('input'))}</code>", _e(im.get("reason"))]
                for im in failed]
        body = _table(_row(["image", "input", "reason"], "th"), rows)
    return f'<section id="failures"><h2>Failures ({len(failed)})</h2>{body}</section>'


def _evaluation(run_dir: Path, metrics: Mapping[str, Any] | None) -> str:
    """Metrics tables (paper Table 3 layout), ``table3.md`` and plots, where the run has them."""
    parts = [] if metrics is None else _metrics(metrics)
    table3 = run_dir / "table3.md"
    if table3.is_file():
        parts.append(f"<details><summary><code>table3.md</code></summary>"
                     f"<pre>{_e(table3.read_text(encoding='utf-8'))}</pre></details>")
    parts += [_plot(path) for path in sorted((run_dir / "plots").glob("*.png"))]
    if not parts:
        parts = ["<p>No evaluation: this run has no <code>metrics.json</code>.</p>"]
    return '<section id="evaluation"><h2>Evaluation</h2>' + "\n".join(parts) + "</section>"


def _metrics(metrics: Mapping[str, Any]) -> list[str]:
    """Table 3 (mask and box AP per class), AP by object size, mean IoU and precision/recall."""
    segm, bbox = metrics.get("segm") or {}, metrics.get("bbox") or {}
    parts = ["<h3>Average precision (paper Table 3)</h3>", _table3(segm, bbox),
             '<p class="muted">Values in 0..1; — where undefined (no ground truth). '
             "AP<sub>0.5:0.95</sub> is COCO's AP averaged over IoU 0.50, 0.55, …, 0.95; "
             "AP<sub>50–90</sub> (paper) is the mean of AP at IoU 0.5 and at IoU 0.9, what the "
             "XAMI authors report as mAP50-90 (<code>AP50_90_paper</code>).</p>"]
    if any(_field(part, size) for part in (segm, bbox) for size in ("small", "medium", "large")):
        parts += ["<h3>AP by object size</h3>", _size_table(segm, bbox)]
    if "mean_iou" in metrics:
        over = metrics.get("images_in_mean_iou")
        parts.append(f"<p>Mean mask IoU: <b>{_num(metrics['mean_iou'])}</b> ± "
                     f"{_num(metrics.get('mean_iou_std'))}"
                     + ("" if over is None else f" (over {_e(over)} images)") + "</p>")
    if gt := _field(metrics.get("provenance"), "gt"):
        parts.append(f"<p>Ground truth <code>{_e(gt)}</code>, detections with score ≥ "
                     f"{_num(metrics.get('conf'), None)}.</p>")
    if "precision_recall" in metrics:
        parts += ["<h3>Precision and recall</h3>", _generic(metrics["precision_recall"])]
    return parts


def _ap_cells(source: object, columns: Sequence[tuple[str, str]]) -> list[str]:
    """The AP values of one row, in column order."""
    return [_num(_field(source, key)) for key, _ in columns]


def _grouped_head(first: str, columns: Sequence[tuple[str, str]]) -> str:
    """Two head rows: mask and box groups over their AP columns."""
    n = len(columns)
    return (f'<tr><th rowspan="2">{first}</th><th colspan="{n}">mask (segm)</th>'
            f'<th colspan="{n}">box (bbox)</th></tr>'
            + _row([label for _, label in columns] * 2, "th"))


def _table3(segm: Mapping[str, Any], bbox: Mapping[str, Any]) -> str:
    """Rows overall, CR, SR, SL, ROS, OT; mask then box AP columns."""
    rows = []
    for key in ("overall", *TABLE3_ORDER):
        if key == "overall":
            label, sources = "<b>overall</b>", (segm, bbox)
        else:
            cls = BY_SHORT[key]
            label = _class_label(cls.name, cls)
            sources = tuple(_field(_field(p, "per_class"), cls.name) for p in (segm, bbox))
        rows.append([label, *(c for s in sources for c in _ap_cells(s, _AP_COLUMNS))])
    return _table(_grouped_head("class", _AP_COLUMNS), rows, numeric=True)


def _size_table(segm: Mapping[str, Any], bbox: Mapping[str, Any]) -> str:
    """COCO's small / medium / large AP, mask then box."""
    rows = [[size, *_ap_cells(_field(segm, size), _SIZE_COLUMNS),
             *_ap_cells(_field(bbox, size), _SIZE_COLUMNS)]
            for size in ("small", "medium", "large")]
    return _table(_grouped_head("objects", _SIZE_COLUMNS), rows, numeric=True)


def _is_scalar(value: object) -> bool:
    """True for a JSON leaf (number, string, bool, null)."""
    return not isinstance(value, (Mapping, list))


def _generic(value: object, digits: int | None = 3) -> str:
    """Any JSON value as HTML: a 2-D table for a dict of flat dicts, key/value rows otherwise."""
    if isinstance(value, Mapping):
        if not value:
            return _DASH
        inner = list(value.values())
        if all(isinstance(v, Mapping) and v and all(map(_is_scalar, v.values())) for v in inner):
            cols = list(dict.fromkeys(k for v in inner for k in v))
            rows = [[_class_label(str(k)), *(_num(v.get(c), digits) for c in cols)]
                    for k, v in value.items()]
            return _table(_row(["", *map(_e, cols)], "th"), rows, numeric=True)
        return _table("", [[f"<b>{_e(k)}</b>", _generic(v, digits)] for k, v in value.items()])
    if isinstance(value, list):
        if all(map(_is_scalar, value)):
            return f'<div class="scroll">{", ".join(_num(v, digits) for v in value)}</div>'
        return "".join(_generic(v, digits) for v in value)
    return _num(value, digits)


def _data_uri(path: Path) -> str | None:
    """The PNG at ``path`` as a base64 data URI; None if it is missing or not a PNG."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _plot(path: Path) -> str:
    """One evaluation plot with its file name as caption."""
    uri = _data_uri(path)
    body = (f'<img src="{uri}" alt="{_e(path.stem)}">' if uri
            else f'<p class="note">{_e(path.name)} is not a readable PNG.</p>')
    return f'<figure class="plot">{body}<figcaption>{_e(path.name)}</figcaption></figure>'


def _gallery(run_dir: Path, images: Sequence[Mapping[str, Any]], max_images: int) -> str:
    """Cards of the first ``max_images`` images that did not fail, and how many are left out."""
    candidates = [im for im in images if im.get("status") != "failed"]
    shown = candidates[:max_images]
    hidden = len(candidates) - len(shown)
    note = (f'<p class="note">{hidden} more image(s) not shown (max_images={max_images}).</p>'
            if hidden else "")
    cards = "\n".join(_card(run_dir, im) for im in shown)
    return (f'<section id="gallery"><h2>Gallery ({len(shown)} of {len(candidates)})</h2>{note}'
            f'<div class="grid">\n{cards}\n</div></section>')


def _card(run_dir: Path, image: Mapping[str, Any]) -> str:
    """One image: name, overlay (or a note saying why there is none) and its instances."""
    name = image.get("name") or image.get("input")
    rel = _field(image.get("outputs"), "png")
    uri = _data_uri(run_dir / str(rel)) if rel else None
    if uri:
        picture = f'<img src="{uri}" alt="overlay of {_e(name)}">'
    elif rel:
        picture = f'<p class="note">Overlay <code>{_e(rel)}</code> is missing or not a PNG.</p>'
    else:
        picture = '<p class="note">No overlay PNG in this run (format "png" not written).</p>'
    instances = image.get("instances") or []
    info = (f'<p class="muted"><code>{_e(image.get("input"))}</code> · {_e(image.get("status"))}'
            f' · {len(instances)} instance(s) · {_num(image.get("seconds"), 2)} s</p>')
    return (f'<figure class="card"><h3>{_e(name)}</h3>{info}{picture}'
            f"{_instance_table(instances)}</figure>")


def _instance_table(instances: Sequence[Any]) -> str:
    """Class, score, box and area of each instance of an image."""
    if not instances:
        return "<p>No artefacts found.</p>"
    rows = [[_class_label(str(_field(inst, "class"))), _e(_field(inst, "id")),
             _num(_field(inst, "score")), _bbox(_field(inst, "bbox")),
             _num(_field(inst, "area"), 1)] for inst in instances]
    head = _row(["class", "#", "score", "box x0, y0, x1, y1 (px)", "area (px)"], "th")
    return _table(head, rows, numeric=True)


def _bbox(box: object) -> str:
    """A box as rounded pixel coordinates."""
    if isinstance(box, list) and all(isinstance(v, (int, float)) for v in box):
        return ", ".join(f"{v:.1f}" for v in box)
    return _e(box)
