"""Artefact-level statistics of a dataset per class (size, position, contrast, counts), compared.

Used to put the simulator beside the real frames: ``xami dataset compare SIM REAL``. Every
statistic is summarised by its median and inter-quartile range [p25-p75]; two datasets are compared
by the ratio of their medians, flagged when outside `RATIO_RANGE`, and by how far that ratio strays
when B's number of values is drawn from A (`ArtefactComparison.sampling`; a small B is noisy).

Conventions: boxes are the tight XYXY boxes of the annotation polygons, in pixels of the image;
positions are box centres rescaled to the 512 frame (``x = cx * 512 / width``); ``aspect`` is
``height / width``. ``iscrowd`` annotations (ignore regions) are not instances and are skipped,
but their pixels are kept out of every background ring.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from xami.classes import BY_COCO_ID, CLASSES
from xami.data.records import Annotation, Dataset, ImageRecord
from xami.instrument import RELEASED_SIZE
from xami.io.atomic import write_text_atomic
from xami.io.images import read_frame

RING_WIDTH = 8
"""Width (pixels, square dilation) of the background ring around an instance."""

MIN_RING_PIXELS = 10
"""Fewer covered ring pixels than this: no contrast for the instance."""

RATIO_RANGE = (0.8, 1.25)
"""B/A ratios of the medians outside this range are flagged (20% either way)."""

SAMPLING_DRAWS = 4000
"""Bootstrap draws of `ArtefactComparison.sampling`."""

SAMPLING_SEED = 0
"""Seed of those draws (the table is reproducible)."""

MAD_TO_SIGMA = 1.4826
"""Robust sigma = 1.4826 x median absolute deviation (Gaussian noise)."""

STATISTICS = ("per_image", "width", "height", "aspect", "x", "y", "contrast")
"""Statistics of each class, in table order."""

_LABELS = {"per_image": "instances per image", "width": "box width (px)",
           "height": "box height (px)", "aspect": "aspect h/w", "x": "centre x (512 px)",
           "y": "centre y (512 px)", "contrast": "contrast (ring sigma)"}


@dataclass(frozen=True)
class Summary:
    """Median, quartiles, mean and number of the finite values of one statistic."""

    median: float
    p25: float
    p75: float
    mean: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Summary | None:
        """Summary of the finite ``values`` (None when there is none)."""
        values = values[np.isfinite(values)]
        if not values.size:
            return None
        p25, median, p75 = np.percentile(values, [25, 50, 75])
        return cls(float(median), float(p25), float(p75), float(values.mean()), int(values.size))

    def cell(self) -> str:
        """``median [p25-p75]`` with three significant digits."""
        return f"{self.median:.3g} [{self.p25:.3g}-{self.p75:.3g}]"


@dataclass(frozen=True)
class Sampling:
    """5th-95th percentile of B/A when B is drawn from A; chance ``p`` of the measured B/A."""

    lo: float
    hi: float
    p: float


@dataclass(frozen=True)
class ArtefactStats:
    """Per-class values of every statistic of one dataset.

    Parameters
    ----------
    name : str
        What the dataset is called in tables (its folder name).
    images : int
        Number of images.
    values : Mapping[str, Mapping[str, numpy.ndarray]]
        ``class name -> statistic -> float [N]``: one value per instance (per annotated image
        for ``per_image``); NaN where a value is undefined (contrast without covered ring).
    """

    name: str
    images: int
    values: Mapping[str, Mapping[str, np.ndarray]]

    def instances(self, name: str) -> int:
        """Number of (non-crowd) instances of class ``name``."""
        return int(self.values[name]["width"].size)

    def summary(self, name: str, statistic: str) -> Summary | None:
        """`Summary` of ``statistic`` for class ``name`` (None without values)."""
        return Summary.of(self.values[name][statistic])


def artefact_stats(dataset: Dataset, *, name: str = "",
                   ring_width: int = RING_WIDTH) -> ArtefactStats:
    """Measure every instance of a dataset: box size, aspect, position, contrast; count per image.

    Parameters
    ----------
    dataset : Dataset
        Any dataset (all splits pooled); its image files are read for the contrast.
    name : str, optional
        Name shown in tables.
    ring_width : int, optional
        Width of the background ring in pixels (default `RING_WIDTH`).

    Returns
    -------
    ArtefactStats
        ``contrast`` = (median of the image inside the instance mask - median of the ring) /
        robust sigma of the ring, where the ring is the instance mask dilated by ``ring_width``
        (square) minus every annotated pixel of the image, and zero pixels (no coverage) are
        left out of both. ``per_image`` counts instances on the images where the class was
        annotated: those whose ``annotated_category_ids`` (an image field, or inside its
        ``attributes``) holds the class, every image when the field is absent.

    Raises
    ------
    ValueError
        If ``ring_width`` is not a positive integer.
    ImageError
        If an image file cannot be read.

    Examples
    --------
    >>> stats = artefact_stats(load_dataset("sim"), name="sim")  # doctest: +SKIP
    >>> stats.summary("smoke-ring", "width").median  # doctest: +SKIP
    12.0
    """
    if not isinstance(ring_width, int) or ring_width < 1:
        raise ValueError(f"ring_width must be a positive integer, got {ring_width!r}")
    columns: dict[str, dict[str, list[float]]] = {
        c.name: {s: [] for s in STATISTICS} for c in CLASSES}
    records = dataset.records()
    for split, rec in records:
        frame = read_frame(dataset.image_path(split, rec))
        _add_image(rec, frame, columns, ring_width)
    values = {c: {s: np.asarray(v, dtype=np.float64) for s, v in stats.items()}
              for c, stats in columns.items()}
    return ArtefactStats(name, len(records), values)


def _annotated_classes(record: ImageRecord) -> set[int]:
    """COCO ids annotated on this image (``annotated_category_ids``; all classes when absent)."""
    meta = record.meta
    ids = meta.get("annotated_category_ids")
    if ids is None and isinstance(meta.get("attributes"), Mapping):
        ids = meta["attributes"].get("annotated_category_ids")
    return set(BY_COCO_ID) if ids is None else {int(i) for i in ids}


def _add_image(record: ImageRecord, frame: np.ndarray,
               columns: dict[str, dict[str, list[float]]], ring_width: int) -> None:
    """Append the values of one image's instances, and its counts, to ``columns``."""
    masks = [a.mask(record.height, record.width) for a in record.annotations]
    annotated = np.logical_or.reduce(masks) if masks else np.zeros(frame.shape, dtype=bool)
    instances = [(a, m) for a, m in zip(record.annotations, masks, strict=True)
                 if not a.iscrowd]
    for cid in sorted(_annotated_classes(record)):
        count = sum(a.category_id == cid for a, _ in instances)
        columns[BY_COCO_ID[cid].name]["per_image"].append(float(count))
    for ann, mask in instances:
        row = columns[BY_COCO_ID[ann.category_id].name]
        for key, value in _box_values(ann, record).items():
            row[key].append(value)
        row["contrast"].append(instance_contrast(frame, mask, annotated, ring_width=ring_width))


def _box_values(ann: Annotation, record: ImageRecord) -> dict[str, float]:
    """Width, height, aspect and 512-frame centre of the annotation's box."""
    x0, y0, x1, y1 = (float(v) for v in ann.bbox)
    w, h = x1 - x0, y1 - y0
    return {"width": w, "height": h, "aspect": h / w if w > 0 else float("nan"),
            "x": (x0 + x1) / 2 * RELEASED_SIZE / record.width,
            "y": (y0 + y1) / 2 * RELEASED_SIZE / record.height}


def instance_contrast(frame: np.ndarray, mask: np.ndarray, annotated: np.ndarray, *,
                      ring_width: int = RING_WIDTH) -> float:
    """Contrast of one instance against its local background, in robust sigmas of the background.

    Parameters
    ----------
    frame : numpy.ndarray
        ``[H, W]`` image; 0 means no coverage.
    mask : numpy.ndarray
        ``bool [H, W]`` mask of the instance (its box for a box annotation).
    annotated : numpy.ndarray
        ``bool [H, W]`` union of every annotated instance of the image (crowd regions too):
        kept out of the ring.
    ring_width : int, optional
        Ring width in pixels (square dilation of ``mask``).

    Returns
    -------
    float
        ``(median(frame[mask]) - median(ring)) / (1.4826 * MAD(ring))`` over non-zero pixels;
        NaN when the instance has no covered pixel, the ring fewer than `MIN_RING_PIXELS`, or the
        ring's MAD is 0.

    Examples
    --------
    >>> frame = np.tile(10.0 + np.arange(9) % 4, (9, 1)); frame[4, 4] = 20.0
    >>> mask = np.zeros((9, 9), bool); mask[4, 4] = True
    >>> round(instance_contrast(frame, mask, mask, ring_width=2), 4)  # ring median 12, MAD 1
    5.3959
    """
    rows, cols = np.nonzero(mask)
    if not rows.size:
        return float("nan")
    r0, c0 = max(rows.min() - ring_width, 0), max(cols.min() - ring_width, 0)
    window = np.s_[r0:rows.max() + ring_width + 1, c0:cols.max() + ring_width + 1]
    sub, inside = frame[window].astype(np.float64), mask[window]
    grown = ndimage.binary_dilation(inside, np.ones((3, 3), dtype=bool), iterations=ring_width)
    ring = sub[grown & ~annotated[window] & (sub > 0)]
    core = sub[inside & (sub > 0)]
    if not core.size or ring.size < MIN_RING_PIXELS:
        return float("nan")
    level = np.median(ring)
    sigma = MAD_TO_SIGMA * np.median(np.abs(ring - level))
    return float((np.median(core) - level) / sigma) if sigma > 0 else float("nan")


@dataclass(frozen=True)
class ArtefactComparison:
    """The statistics of two datasets, side by side.

    Parameters
    ----------
    a, b : ArtefactStats
        The reference (A) and the compared dataset (B); ratios are B / A.
    """

    a: ArtefactStats
    b: ArtefactStats

    def ratio(self, name: str, statistic: str) -> float | None:
        """B / A of the medians (of the means for ``per_image``); None when undefined."""
        sa, sb = self.a.summary(name, statistic), self.b.summary(name, statistic)
        if sa is None or sb is None:
            return None
        top, bottom = (sb.mean, sa.mean) if statistic == "per_image" else (sb.median, sa.median)
        return top / bottom if bottom != 0 else None

    def sampling(self, name: str, statistic: str) -> Sampling | None:
        """How B/A varies when B's values are drawn from A, and how likely the ratio measured is.

        Parameters
        ----------
        name, statistic : str
            Class name and statistic (one of `STATISTICS`).

        Returns
        -------
        Sampling or None
            The 5th-95th percentiles of B/A over `SAMPLING_DRAWS` draws (with replacement) of B's
            number of values from A's, and ``p``: the share of draws at least as far from 1 (in
            log) as the ratio measured; a lower bound, as instances drawn singly spread less than
            whole frames (whose artefacts are alike). None when the ratio is undefined.
        """
        return self._samplings[name, statistic]

    @cached_property
    def _samplings(self) -> dict[tuple[str, str], Sampling | None]:
        """Every `sampling`, drawn once (the table and the JSON share them)."""
        return {(c.name, s): self._sample(c.name, s) for c in CLASSES for s in STATISTICS}

    def _sample(self, name: str, statistic: str) -> Sampling | None:
        """`sampling` of one row, drawn: B's number of values from A's."""
        ratio = self.ratio(name, statistic)
        if ratio is None:
            return None
        va, vb = (stats.values[name][statistic] for stats in (self.a, self.b))
        va, n = va[np.isfinite(va)], int(np.isfinite(vb).sum())
        reduce = np.mean if statistic == "per_image" else np.median
        rng = np.random.default_rng(SAMPLING_SEED)
        draws = reduce(rng.choice(va, size=(SAMPLING_DRAWS, n)), axis=1) / reduce(va)
        with np.errstate(divide="ignore", invalid="ignore"):  # a ratio <= 0 lies infinitely far
            far = np.abs(np.log(np.maximum(draws, 0))) >= abs(np.log(max(ratio, 0))) - 1e-12
        return Sampling(*(float(v) for v in np.percentile(draws, [5, 95])), float(far.mean()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: per class, instances and every statistic of A and B, ratio."""
        classes = {}
        for c in CLASSES:
            stats = {s: {"a": _plain(self.a.summary(c.name, s)),
                         "b": _plain(self.b.summary(c.name, s)),
                         "ratio": self.ratio(c.name, s), "flag": _flag(self.ratio(c.name, s)),
                         "sampling": _plain(self.sampling(c.name, s))}
                     for s in STATISTICS}
            classes[c.name] = {"short": c.short, "instances": {
                "a": self.a.instances(c.name), "b": self.b.instances(c.name)}, **stats}
        return {"a": {"name": self.a.name, "images": self.a.images},
                "b": {"name": self.b.name, "images": self.b.images},
                "ratio_range": list(RATIO_RANGE), "classes": classes}

    def to_markdown(self) -> str:
        """One Markdown table: a row per class and statistic, A and B side by side."""
        lines = [f"A = {self.a.name} ({self.a.images} images), B = {self.b.name} "
                 f"({self.b.images} images); median [p25-p75]; B/A of the medians (of the means "
                 f"for instances per image), flagged outside [{RATIO_RANGE[0]}, {RATIO_RANGE[1]}]; "
                 f"'B drawn from A': 90 % range of B/A when B's number of values is drawn from A, "
                 f"and p, the chance of a ratio at least as far from 1",
                 "", "| class | statistic | A | B | B/A | flag | B drawn from A | p |",
                 "|---|---|---:|---:|---:|---|---:|---:|"]
        for c in CLASSES:
            lines.append(f"| {c.short} | instances | {self.a.instances(c.name)} | "
                         f"{self.b.instances(c.name)} | | | | |")
            lines += [self._row(c.short, c.name, s) for s in STATISTICS]
        return "\n".join(lines) + "\n"

    def _row(self, short: str, name: str, statistic: str) -> str:
        """Table row of one class and statistic."""
        cells = [_cell(self.a.summary(name, statistic), statistic),
                 _cell(self.b.summary(name, statistic), statistic)]
        ratio = self.ratio(name, statistic)
        shown = "" if ratio is None else f"{ratio:.2f}"
        m = self.sampling(name, statistic)
        spread = "| |" if m is None else f"| {m.lo:.2f}-{m.hi:.2f} | {m.p:.2f} |"
        return f"| {short} | {_LABELS[statistic]} | {cells[0]} | {cells[1]} | {shown} | " \
               f"{_flag(ratio)} {spread}"

    def save(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``artefact_stats.json`` and ``artefact_stats.md`` into ``out_dir``; their paths."""
        out = Path(out_dir)
        paths = [out / "artefact_stats.json", out / "artefact_stats.md"]
        write_text_atomic(paths[0], json.dumps(self.to_dict(), indent=2) + "\n")
        write_text_atomic(paths[1], self.to_markdown())
        return paths


def _cell(summary: Summary | None, statistic: str) -> str:
    """Table cell of a summary (with the mean for counts per image)."""
    mean = f" (mean {summary.mean:.2f})" if summary and statistic == "per_image" else ""
    return "–" if summary is None else summary.cell() + mean


def _flag(ratio: float | None) -> str:
    """``B low`` / ``B high`` when the ratio is outside `RATIO_RANGE`."""
    low, high = RATIO_RANGE
    return "" if ratio is None else "B low" if ratio < low else "B high" if ratio > high else ""


def _plain(value: Summary | Sampling | None) -> dict[str, float] | None:
    """A summary or sampling as a dict (None stays None)."""
    return None if value is None else asdict(value)


def compare_artefact_stats(a: Dataset, b: Dataset, *, names: tuple[str, str] = ("A", "B"),
                           ring_width: int = RING_WIDTH) -> ArtefactComparison:
    """Artefact statistics of two datasets, side by side.

    Parameters
    ----------
    a, b : Dataset
        Reference and compared dataset (any layout `xami.data.load_dataset` reads).
    names : tuple of str, optional
        Their names in the tables.
    ring_width : int, optional
        Background ring width of the contrast, pixels (see `artefact_stats`).

    Returns
    -------
    ArtefactComparison
        ``to_markdown()`` prints the table; ``save(out_dir)`` writes it with the JSON.

    Examples
    --------
    >>> cmp = compare_artefact_stats(load_dataset("sim"), load_dataset("realdev"),
    ...                              names=("sim", "realdev"))  # doctest: +SKIP
    >>> print(cmp.to_markdown())  # doctest: +SKIP
    """
    return ArtefactComparison(artefact_stats(a, name=names[0], ring_width=ring_width),
                              artefact_stats(b, name=names[1], ring_width=ring_width))
