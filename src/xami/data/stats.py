"""Dataset statistics: paper Table 1 (per filter), Table 2 (per class and split), and more."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xami.classes import BY_COCO_ID, CLASSES
from xami.data.records import Dataset, ImageRecord
from xami.instrument import FILTER_BY_LETTER, FILTERS, parse_frame_name
from xami.io.atomic import write_text_atomic

UNKNOWN_FILTER = "?"
"""Filter key of images whose file name and ``meta`` give no filter."""


@dataclass(frozen=True)
class DatasetStats:
    """Counts that describe a dataset (paper Tables 1 and 2 and the authors' plots).

    Parameters
    ----------
    images : Mapping[str, int]
        Images per split.
    empty_images : Mapping[str, int]
        Images without any annotation, per split.
    filters : Mapping[str, tuple of int]
        ``letter -> (images, masks)`` over all splits, in `xami.instrument.FILTERS` order.
    instances : Mapping[str, Mapping[str, int]]
        ``split -> class name -> instances``.
    images_with : Mapping[str, Mapping[str, int]]
        ``split -> class name -> images containing the class``.
    mean_box : Mapping[str, tuple of float or None]
        ``class name -> (mean width, mean height)`` of the tight boxes, pixels (None: no box).
    box_centres : Mapping[str, numpy.ndarray]
        ``class name -> float [N, 2]`` box centres as fractions ``(x / width, y / height)``;
        used by the heat maps, not written to ``stats.json``.
    """

    images: Mapping[str, int]
    empty_images: Mapping[str, int]
    filters: Mapping[str, tuple[int, int]]
    instances: Mapping[str, Mapping[str, int]]
    images_with: Mapping[str, Mapping[str, int]]
    mean_box: Mapping[str, tuple[float, float] | None]
    box_centres: Mapping[str, np.ndarray]

    @property
    def splits(self) -> list[str]:
        """Split names, in dataset order."""
        return list(self.images)

    def percent(self, split: str, name: str) -> float:
        """Instances of class ``name`` as a percentage of all instances of ``split``."""
        total = sum(self.instances[split].values())
        return 100.0 * self.instances[split][name] / total if total else 0.0

    def instances_per_image(self, name: str) -> float | None:
        """Mean instances of class ``name`` on the images that contain it (all splits)."""
        images = sum(self.images_with[s][name] for s in self.splits)
        return sum(self.instances[s][name] for s in self.splits) / images if images else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (every table; percentages rounded to 1e-3)."""
        per_class = {
            c.name: {"short": c.short, "instances_per_image": self.instances_per_image(c.name),
                     "mean_box_wh": self.mean_box[c.name],
                     "percent": {s: round(self.percent(s, c.name), 3) for s in self.splits}}
            for c in CLASSES
        }
        return {"images": dict(self.images), "empty_images": dict(self.empty_images),
                "filters": {k: {"images": v[0], "masks": v[1]} for k, v in self.filters.items()},
                "instances": _plain(self.instances), "images_with": _plain(self.images_with),
                "classes": per_class}

    def to_markdown(self) -> str:
        """Markdown tables: per filter (Table 1), per class and split (Table 2), per class."""
        return "\n".join([*self._filter_table(), "", *self._split_table(), "",
                          *self._class_table()]) + "\n"

    def _filter_table(self) -> list[str]:
        """Paper Table 1 rows."""
        rows = ["| Filter | λ (nm) | #images | #masks |", "|---|---:|---:|---:|"]
        for letter, (images, masks) in self.filters.items():
            f = FILTER_BY_LETTER.get(letter)
            label = letter if f is None or f.name == letter else f"{f.name} ({letter})"
            wavelength = "" if f is None else f"{f.wavelength_nm:g}"
            rows.append(f"| {label} | {wavelength} | {images} | {masks} |")
        return rows

    def _split_table(self) -> list[str]:
        """Paper Table 2 rows: instances (percentage of the split) per class."""
        rows = ["| Class | " + " | ".join(self.splits) + " |",
                "|---|" + "---:|" * len(self.splits)]
        for c in CLASSES:
            cells = [f"{self.instances[s][c.name]} ({self.percent(s, c.name):.2f}%)"
                     for s in self.splits]
            rows.append(f"| {c.short} | " + " | ".join(cells) + " |")
        totals = [f"{sum(self.instances[s].values())} in {self.images[s]} images"
                  for s in self.splits]
        return [*rows, "| all | " + " | ".join(totals) + " |"]

    def _class_table(self) -> list[str]:
        """Images, instances per image and mean box size per class."""
        rows = ["| Class | images | instances | per image | mean box w x h (px) |",
                "|---|---:|---:|---:|---:|"]
        for c in CLASSES:
            images = sum(self.images_with[s][c.name] for s in self.splits)
            count = sum(self.instances[s][c.name] for s in self.splits)
            per_image, box = self.instances_per_image(c.name), self.mean_box[c.name]
            ratio = "" if per_image is None else f"{per_image:.2f}"
            size = "" if box is None else f"{box[0]:.1f} x {box[1]:.1f}"
            rows.append(f"| {c.short} | {images} | {count} | {ratio} | {size} |")
        return rows

    def save(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``stats.json`` and ``stats.md`` (the plots: `xami.report.dataset.plot_stats`).

        Parameters
        ----------
        out_dir : str or os.PathLike
            Output folder (created).

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        out = Path(out_dir)
        paths = [out / "stats.json", out / "stats.md"]
        write_text_atomic(paths[0], json.dumps(self.to_dict(), indent=2) + "\n")
        write_text_atomic(paths[1], self.to_markdown())
        return paths


def _plain(table: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Nested mappings as plain dicts."""
    return {k: dict(v) for k, v in table.items()}


def compute_stats(dataset: Dataset) -> DatasetStats:
    """Count images, instances, filters, box sizes and box positions of a dataset.

    Parameters
    ----------
    dataset : Dataset
        Any dataset; the filter of an image comes from ``meta['filter']`` or its file name.

    Returns
    -------
    DatasetStats
        The tables; ``to_markdown()`` prints them, ``save(out_dir)`` writes them
        (`xami.report.dataset.plot_stats` draws them).

    Examples
    --------
    >>> print(compute_stats(load_dataset("xami_dataset.zip")).to_markdown())  # doctest: +SKIP
    """
    names = [c.name for c in CLASSES]
    instances = {s: dict.fromkeys(names, 0) for s in dataset.splits}
    images_with = {s: dict.fromkeys(names, 0) for s in dataset.splits}
    filters: dict[str, list[int]] = {}
    boxes: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for split, rec in dataset.records():
        _count(rec, instances[split], images_with[split], filters, boxes)
    return DatasetStats(
        images={s: len(r) for s, r in dataset.splits.items()},
        empty_images={s: sum(not r.annotations for r in recs) for s, recs in
                      dataset.splits.items()},
        filters=_ordered_filters(filters), instances=instances, images_with=images_with,
        mean_box={n: _mean_size(boxes[n]) for n in names},
        box_centres={n: _centres(boxes[n]) for n in names})


def _count(rec: ImageRecord, instances: dict[str, int], images_with: dict[str, int],
           filters: dict[str, list[int]], boxes: dict[str, list[np.ndarray]]) -> None:
    """Add one record to the running counts of its split."""
    present = [BY_COCO_ID[a.category_id].name for a in rec.annotations]
    for name in present:
        instances[name] += 1
    for name in set(present):
        images_with[name] += 1
    counts = filters.setdefault(_filter_letter(rec), [0, 0])
    counts[0], counts[1] = counts[0] + 1, counts[1] + len(present)
    for ann in rec.annotations:
        boxes[BY_COCO_ID[ann.category_id].name].append(_box(ann.bbox, rec))


def _filter_letter(record: ImageRecord) -> str:
    """Filter letter from ``meta`` or the file name."""
    if "filter" in record.meta:
        return str(record.meta["filter"])
    parsed = parse_frame_name(record.file_name)
    return UNKNOWN_FILTER if parsed is None else parsed[1]


def _ordered_filters(counts: dict[str, list[int]]) -> dict[str, tuple[int, int]]:
    """Filters in `FILTERS` order, then any other letters sorted."""
    order = [f.letter for f in FILTERS]
    keys = sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))
    return {k: (counts[k][0], counts[k][1]) for k in keys}


def _box(bbox: np.ndarray, record: ImageRecord) -> np.ndarray:
    """``[cx / W, cy / H, w, h]`` of an XYXY box (size in pixels)."""
    x0, y0, x1, y1 = bbox
    return np.array([(x0 + x1) / 2 / record.width, (y0 + y1) / 2 / record.height,
                     x1 - x0, y1 - y0])


def _mean_size(boxes: list[np.ndarray]) -> tuple[float, float] | None:
    """Mean ``(width, height)`` in pixels, None without boxes."""
    if not boxes:
        return None
    w, h = np.mean(np.stack(boxes)[:, 2:], axis=0)
    return (round(float(w), 3), round(float(h), 3))


def _centres(boxes: list[np.ndarray]) -> np.ndarray:
    """``float [N, 2]`` normalised box centres."""
    return np.stack(boxes)[:, :2] if boxes else np.zeros((0, 2))

