"""Dataset figures on `matplotlib.figure.Figure` (Agg canvas: no display, no pyplot state)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from xami.classes import BY_NAME, BY_SHORT, TABLE3_ORDER
from xami.io.atomic import atomic_path
from xami.report.markup import table3_sorted

_TABLE3_CLASSES = tuple(BY_SHORT[short] for short in TABLE3_ORDER)  # bar order in every figure


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> None:
    """Write a figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def plot_class_distribution(instances: Mapping[str, Mapping[str, int]],
                            path: str | os.PathLike[str]) -> None:
    """Bar chart of the instances of each class as a percentage of each split (Table 3 order).

    Parameters
    ----------
    instances : Mapping[str, Mapping[str, int]]
        ``split -> class name -> instances`` (`DatasetStats.instances`).
    path : str or os.PathLike
        Output PNG.

    Examples
    --------
    >>> plot_class_distribution({"train": {"star-loop": 3}}, "dist.png")  # doctest: +SKIP
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    width = 0.8 / max(len(instances), 1)
    x = np.arange(len(_TABLE3_CLASSES))
    for i, (split, counts) in enumerate(instances.items()):
        total = max(sum(counts.values()), 1)
        values = [100.0 * counts.get(c.name, 0) / total for c in _TABLE3_CLASSES]
        bars = ax.bar(x + (i - (len(instances) - 1) / 2) * width, values, width,
                      label=f"{split} ({sum(counts.values())})")
        ax.bar_label(bars, labels=[str(counts.get(c.name, 0)) for c in _TABLE3_CLASSES],
                     fontsize=7)
    ax.set_xticks(x, [c.short for c in _TABLE3_CLASSES])
    ax.set_ylabel("% of the split's instances")
    ax.set_title("Instances per class")
    ax.legend()
    save_figure(fig, path)


def plot_box_centres(centres: Mapping[str, np.ndarray], path: str | os.PathLike[str], *,
                     bins: int = 32) -> None:
    """Per class (in Table 3 order), a 2-D histogram of box centres over the image (a heat map).

    Parameters
    ----------
    centres : Mapping[str, numpy.ndarray]
        ``class name -> float [N, 2]`` centres as fractions ``(x / width, y / height)``.
    path : str or os.PathLike
        Output PNG, one panel per class, row 0 of the image at the top.
    bins : int, optional
        Histogram bins per axis.
    """
    fig = Figure(figsize=(3.2 * len(centres), 3.4))
    for i, name in enumerate(table3_sorted(centres)):
        xy = centres[name]
        ax = fig.add_subplot(1, len(centres), i + 1)
        hist, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=bins, range=[[0, 1], [0, 1]])
        ax.imshow(hist, extent=(0, 1, 1, 0), cmap="magma", interpolation="nearest")
        ax.set_title(f"{BY_NAME[name].short if name in BY_NAME else name} ({len(xy)})")
        ax.set_xlabel("x / width")
        if i == 0:
            ax.set_ylabel("y / height")
    save_figure(fig, path)


def plot_iou_cdf(per_image: Sequence[float], path: str | os.PathLike[str], *,
                 matched: Mapping[str, Sequence[float]] | None = None) -> None:
    """Cumulative distribution of per-image IoUs (and of matched-instance IoUs per class).

    Parameters
    ----------
    per_image : Sequence[float]
        IoU of each evaluated image (`xami.eval.evaluate`'s ``per_image_iou``), in 0..1.
    path : str or os.PathLike
        Output PNG.
    matched : Mapping[str, Sequence[float]], optional
        ``class name -> IoUs`` of the matched prediction / ground-truth pairs, drawn as thin
        lines.

    Examples
    --------
    >>> plot_iou_cdf([0.4, 0.7, 0.9], "iou_cdf.png")  # doctest: +SKIP
    """
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    mean = f", mean {np.mean(per_image):.3f}" if len(per_image) else ""
    _step_cdf(ax, per_image, f"per image (n={len(per_image)}{mean})", colour="black", width=2.0)
    matched = matched or {}
    for name in table3_sorted(matched):
        values = matched[name]
        short = BY_NAME[name].short if name in BY_NAME else name
        _step_cdf(ax, values, f"{short} matched instances (n={len(values)})", colour=None,
                  width=1.0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("IoU")
    ax.set_ylabel("fraction with IoU <= x")
    ax.set_title("IoU cumulative distribution")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def _step_cdf(ax: Axes, values: Sequence[float], label: str, *, colour: str | None,
              width: float) -> None:
    """Draw the empirical CDF of ``values`` as a step line from (0, 0)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    y = np.arange(1, x.size + 1) / max(x.size, 1)
    ax.step(np.concatenate([[0.0], x, [1.0]]), np.concatenate([[0.0], y, [y[-1] if y.size else 0]]),
            where="post", label=label, color=colour, linewidth=width)


def plot_per_class_ap(per_class: Mapping[str, Mapping[str, float]],
                      path: str | os.PathLike[str], *,
                      keys: Sequence[str] = ("AP50", "AP75", "AP"),
                      title: str = "Mask AP per class") -> None:
    """Grouped bars of AP figures per class, in percent (``n/a`` where undefined).

    Parameters
    ----------
    per_class : Mapping[str, Mapping[str, float]]
        ``class name -> {key: value in 0..1}`` (`xami.eval.coco_ap`'s ``per_class``), drawn in
        the order of the paper's Table 3 (other names after); NaN or None is undefined.
    path : str or os.PathLike
        Output PNG.
    keys : Sequence[str], optional
        Figures to draw for each class, one bar each.
    title : str, optional
        Figure title.

    Examples
    --------
    >>> plot_per_class_ap({"star-loop": {"AP50": 0.85, "AP75": 0.67, "AP": 0.51}}, "ap.png")
    ... # doctest: +SKIP
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    names = table3_sorted(per_class)
    x = np.arange(len(names))
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = np.array([np.nan if per_class[n][key] is None else per_class[n][key]
                           for n in names], dtype=np.float64)
        bars = ax.bar(x + (i - (len(keys) - 1) / 2) * width, 100 * np.nan_to_num(values),
                      width, label=key)
        ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{100 * v:.1f}" for v in values],
                     fontsize=7)
    ax.set_xticks(x, [BY_NAME[n].short if n in BY_NAME else n for n in names])
    ax.set_ylim(0, 105)
    ax.set_ylabel("AP (%)")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)
