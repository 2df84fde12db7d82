"""HTML report of a prediction run: one page (inline CSS, plots and thumbnails as data URIs)."""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xami import __version__
from xami.classes import BY_NAME, BY_SHORT, TABLE3_ORDER
from xami.errors import InputError
from xami.io.atomic import write_text_atomic
from xami.report.gallery import gallery
from xami.report.markup import (
    DASH,
    DIGITS,
    class_label,
    esc,
    field,
    num,
    row,
    table,
    table3_sorted,
)

_AP_COLUMNS = (("AP50", "AP<sub>50</sub>"), ("AP75", "AP<sub>75</sub>"),
               ("AP", "AP<sub>0.5:0.95</sub>"), ("AP50_90_paper", "AP<sub>50–90</sub> (paper)"))
_SIZE_COLUMNS = _AP_COLUMNS[:3]
_SEGM_BBOX = ("mask (segm)", "box (bbox)")
_PR_COLUMNS = (("precision", "precision"), ("recall", "recall"), ("tp", "TP"), ("fp", "FP"),
               ("fn", "FN"))
_PR_KEY = re.compile(r"iou_(\d+(?:\.\d+)?)")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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
.grid { display: grid; gap: 1rem; }
.card { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; align-items: flex-start;
        background: var(--card); border: 1px solid var(--line); border-radius: 6px;
        padding: .6rem; margin: 0; }
.card img, .plot img { max-width: 100%; height: auto; display: block; }
.card .pic { flex: 0 0 auto; max-width: 100%; }
.card .info { flex: 1 1 420px; min-width: 0; overflow-x: auto; }
.card .pic p { margin: .2rem 0 0; }
.caption { margin: 0 0 .2rem; }
.thumb { position: relative; width: fit-content; max-width: 100%; }
.compass { position: absolute; top: 4px; right: 4px; }
.compass path { fill: none; stroke: #fff; stroke-width: 1.6; stroke-linecap: round; }
.compass path.halo { stroke: #000; stroke-width: 3.6; }
.compass text { fill: #fff; stroke: #000; stroke-width: 3px; paint-order: stroke;
                font: bold 12px system-ui, sans-serif; text-anchor: middle;
                dominant-baseline: central; }
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
    in the layout of the paper's Table 3, precision / recall per class, ``table3.md`` and
    ``plots/*.png``) and a gallery (`xami.report.gallery`): per image a caption with filter and
    exposure, a thumbnail linking to the full-size overlay ``NAME.png``, north / east arrows and
    the instances with their RA, Dec where the image has a WCS. Classes are listed in the order
    of the paper's Table 3 (CR, SR, SL, ROS, OT) everywhere. Plots and thumbnails are embedded as
    base64 data URIs and the CSS is inline, so the page opens offline and shows everything but
    the full-size overlays when sent on its own.

    Parameters
    ----------
    run_dir : str or os.PathLike
        Folder written by ``xami predict``, holding ``run.json`` (output paths in it are
        relative to this folder) and optionally ``metrics.json``, ``table3.md`` and ``plots/``.
    max_images : int, optional
        Most images shown in the gallery (in ``run.json`` order, failed images left out); the
        page says how many more there are. Each image adds its thumbnail (a JPEG of at most
        `xami.report.gallery.THUMBNAIL_PX` px, typically 20-40 KB) to the page.

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
        gallery(run_dir, images, max_images),
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
            f'<meta name="generator" content="xami {esc(__version__)}">\n'
            f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n<nav>{nav}</nav>\n" + "\n".join(sections)
            + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n")


def _header(run: Mapping[str, Any], run_dir: Path) -> str:
    """Provenance of the run: version, date, command, models and settings."""
    models = run.get("models") or {}
    model_rows = [[esc(role), "none" if m is None else esc(field(m, "path") or m),
                   f"<code>{esc(field(m, 'sha256'))}</code>"] for role, m in models.items()]
    items = [("folder", f"<code>{esc(run_dir)}</code>"),
             ("xami version", esc(run.get("xami_version"))), ("created", esc(run.get("created"))),
             ("command", f"<code>{esc(run.get('command'))}</code>"),
             ("models", table(row(["role", "path", "sha256"], "th"), model_rows)),
             ("settings", _generic(run.get("settings"), digits=None))]
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="run"><h2>Run</h2><dl class="meta">{meta}</dl></section>'


def _summary(summary: Mapping[str, Any]) -> str:
    """Counts of images and instances, with the class colours, and the speed."""
    counts = field(summary, "instances") or {}
    total = sum(v for v in counts.values() if isinstance(v, int)) if counts else None
    stats = [("images", num(summary.get("images"))), ("done", num(summary.get("done"))),
             ("failed", num(summary.get("failed"))), ("instances", num(total)),
             ("seconds per image", num(summary.get("seconds_per_image"), 2))]
    cards = "".join(f"<div><b>{v}</b>{k}</div>" for k, v in stats)
    names = [BY_SHORT[short].name for short in TABLE3_ORDER]
    rows = [[class_label(n), num(counts.get(n, 0) if counts else None)] for n in names]
    rows += [[esc(k), num(v)] for k, v in counts.items() if k not in BY_NAME]
    per_class = table(row(["class", "instances"], "th"), rows, numeric=True)
    return (f'<section id="summary"><h2>Summary</h2><div class="stats">{cards}</div>{per_class}'
            "</section>")


def _failures(images: Sequence[Mapping[str, Any]]) -> str:
    """The images that failed, with the reason each one did."""
    failed = [im for im in images if im.get("status") == "failed"]
    if not failed:
        body = "<p>No image failed.</p>"
    else:
        rows = [[esc(im.get("name")), f"<code>{esc(im.get('input'))}</code>", esc(im.get("reason"))]
                for im in failed]
        body = table(row(["image", "input", "reason"], "th"), rows)
    return f'<section id="failures"><h2>Failures ({len(failed)})</h2>{body}</section>'


def _evaluation(run_dir: Path, metrics: Mapping[str, Any] | None) -> str:
    """Metrics tables (paper Table 3 layout), ``table3.md`` and plots, where the run has them."""
    parts = [] if metrics is None else _metrics(metrics)
    table3 = run_dir / "table3.md"
    if table3.is_file():
        parts.append(f"<details><summary><code>table3.md</code></summary>"
                     f"<pre>{esc(table3.read_text(encoding='utf-8'))}</pre></details>")
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
    if any(field(part, size) for part in (segm, bbox) for size in ("small", "medium", "large")):
        parts += ["<h3>AP by object size</h3>", _size_table(segm, bbox)]
    if "mean_iou" in metrics:
        over = metrics.get("images_in_mean_iou")
        parts.append(f"<p>Mean mask IoU: <b>{num(metrics['mean_iou'])}</b> ± "
                     f"{num(metrics.get('mean_iou_std'))}"
                     + ("" if over is None else f" (over {esc(over)} images)") + "</p>")
    if gt := field(metrics.get("provenance"), "gt"):
        parts.append(f"<p>Ground truth <code>{esc(gt)}</code>, detections with score ≥ "
                     f"{num(metrics.get('conf'), None)}.</p>")
    if "precision_recall" in metrics:
        parts += ["<h3>Precision and recall</h3>", *_precision_recall(metrics["precision_recall"])]
    return parts


def _precision_recall(pr: object) -> list[str]:
    """One table: per class, precision, recall, TP, FP, FN at each IoU threshold; the rest as is.

    ``pr`` is ``{"iou_0.5": {"per_class": {name: {precision, recall, tp, fp, fn}}, "mean":
    {precision, recall}}, ...}`` (`xami.eval.evaluate`); entries of another layout are shown
    after the table, generically.
    """
    levels = _pr_levels(pr)
    if not levels:
        return [_generic(pr)]
    blocks = [pr[key] for _, key in levels]
    names = table3_sorted(dict.fromkeys([BY_SHORT[s].name for s in TABLE3_ORDER]
                                        + [n for b in blocks for n in b["per_class"]]))
    head = _grouped_head("class", [f"IoU ≥ {esc(t)}" for t, _ in levels],
                         [label for _, label in _PR_COLUMNS])
    rows = [["<b>mean over classes</b>",
             *(num(field(b.get("mean"), key)) for b in blocks for key, _ in _PR_COLUMNS)]]
    rows += [[class_label(name), *(num(field(b["per_class"].get(name), key))
                                   for b in blocks for key, _ in _PR_COLUMNS)] for name in names]
    rest = {k: v for k, v in pr.items() if k not in {key for _, key in levels}}
    return [table(head, rows, numeric=True),
            '<p class="muted">Masks matched one to one per image and class (Hungarian); mean '
            "over classes: unweighted, over the classes where the ratio is defined.</p>",
            *([_generic(rest)] if rest else [])]


def _pr_levels(pr: object) -> list[tuple[str, str]]:
    """``(IoU threshold, key)`` of the ``iou_T`` blocks with a ``per_class`` table, T descending."""
    if not isinstance(pr, Mapping):
        return []
    levels = [(m.group(1), k) for k, v in pr.items()
              if (m := _PR_KEY.fullmatch(str(k))) and isinstance(field(v, "per_class"), Mapping)]
    return sorted(levels, key=lambda level: -float(level[0]))


def _ap_cells(source: object, columns: Sequence[tuple[str, str]]) -> list[str]:
    """The AP values of one row, in column order."""
    return [num(field(source, key)) for key, _ in columns]


def _grouped_head(first: str, groups: Sequence[str], labels: Sequence[str]) -> str:
    """Two head rows: each group's name over its own copy of the column labels."""
    spans = "".join(f'<th colspan="{len(labels)}">{g}</th>' for g in groups)
    return (f'<tr><th rowspan="2">{first}</th>{spans}</tr>'
            + row(list(labels) * len(groups), "th"))


def _table3(segm: Mapping[str, Any], bbox: Mapping[str, Any]) -> str:
    """Rows overall, CR, SR, SL, ROS, OT; mask then box AP columns."""
    rows = []
    for key in ("overall", *TABLE3_ORDER):
        if key == "overall":
            label, sources = "<b>overall</b>", (segm, bbox)
        else:
            cls = BY_SHORT[key]
            label = class_label(cls.name, cls)
            sources = tuple(field(field(p, "per_class"), cls.name) for p in (segm, bbox))
        rows.append([label, *(c for s in sources for c in _ap_cells(s, _AP_COLUMNS))])
    head = _grouped_head("class", _SEGM_BBOX, [label for _, label in _AP_COLUMNS])
    return table(head, rows, numeric=True)


def _size_table(segm: Mapping[str, Any], bbox: Mapping[str, Any]) -> str:
    """COCO's small / medium / large AP, mask then box."""
    rows = [[size, *_ap_cells(field(segm, size), _SIZE_COLUMNS),
             *_ap_cells(field(bbox, size), _SIZE_COLUMNS)]
            for size in ("small", "medium", "large")]
    head = _grouped_head("objects", _SEGM_BBOX, [label for _, label in _SIZE_COLUMNS])
    return table(head, rows, numeric=True)


def _is_scalar(value: object) -> bool:
    """True for a JSON leaf (number, string, bool, null)."""
    return not isinstance(value, (Mapping, list))


def _generic(value: object, digits: int | None = DIGITS) -> str:
    """Any JSON value as HTML: a 2-D table for a dict of flat dicts, key/value rows otherwise."""
    if isinstance(value, Mapping):
        if not value:
            return DASH
        inner = list(value.values())
        if all(isinstance(v, Mapping) and v and all(map(_is_scalar, v.values())) for v in inner):
            cols = list(dict.fromkeys(k for v in inner for k in v))
            rows = [[class_label(str(k)), *(num(value[k].get(c), digits) for c in cols)]
                    for k in table3_sorted(value)]
            return table(row(["", *map(esc, cols)], "th"), rows, numeric=True)
        return table("", [[f"<b>{esc(k)}</b>", _generic(v, digits)] for k, v in value.items()])
    if isinstance(value, list):
        if all(map(_is_scalar, value)):
            return f'<div class="scroll">{", ".join(num(v, digits) for v in value)}</div>'
        return "".join(_generic(v, digits) for v in value)
    return num(value, digits)


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
    body = (f'<img src="{uri}" alt="{esc(path.stem)}">' if uri
            else f'<p class="note">{esc(path.name)} is not a readable PNG.</p>')
    return f'<figure class="plot">{body}<figcaption>{esc(path.name)}</figcaption></figure>'
