"""Dataset figures on `matplotlib.figure.Figure` (Agg canvas: no display, no pyplot state)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from xami.classes import BY_NAME, CLASSES
from xami.io.atomic import atomic_path


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> None:
    """Write a figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def plot_class_distribution(instances: Mapping[str, Mapping[str, int]],
                            path: str | os.PathLike[str]) -> None:
    """Bar chart of the instances of each class as a percentage of each split.

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
    x = np.arange(len(CLASSES))
    for i, (split, counts) in enumerate(instances.items()):
        total = max(sum(counts.values()), 1)
        values = [100.0 * counts.get(c.name, 0) / total for c in CLASSES]
        bars = ax.bar(x + (i - (len(instances) - 1) / 2) * width, values, width,
                      label=f"{split} ({sum(counts.values())})")
        ax.bar_label(bars, labels=[str(counts.get(c.name, 0)) for c in CLASSES], fontsize=7)
    ax.set_xticks(x, [c.short for c in CLASSES])
    ax.set_ylabel("% of the split's instances")
    ax.set_title("Instances per class")
    ax.legend()
    save_figure(fig, path)


def plot_box_centres(centres: Mapping[str, np.ndarray], path: str | os.PathLike[str], *,
                     bins: int = 32) -> None:
    """Per class, a 2-D histogram of box centres over the image (the authors' heat map).

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
    for i, (name, xy) in enumerate(centres.items()):
        ax = fig.add_subplot(1, len(centres), i + 1)
        hist, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=bins, range=[[0, 1], [0, 1]])
        ax.imshow(hist, extent=(0, 1, 1, 0), cmap="magma", interpolation="nearest")
        ax.set_title(f"{BY_NAME[name].short if name in BY_NAME else name} ({len(xy)})")
        ax.set_xlabel("x / width")
        if i == 0:
            ax.set_ylabel("y / height")
    save_figure(fig, path)
