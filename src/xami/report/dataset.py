"""A dataset drawn: PNG overlays of its ground truth (to look at what the annotations are) and the
plots of its statistics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xami.data.files import join_inside
from xami.data.records import Dataset, ImageRecord
from xami.data.stats import DatasetStats
from xami.errors import DatasetError
from xami.io.images import read_frame
from xami.report.figures import plot_box_centres, plot_class_distribution
from xami.report.overlay import render_overlay, write_png


def show_dataset(dataset: Dataset, out: str | os.PathLike[str], *, n: int = 8,
                 split: str | None = None) -> list[Path]:
    """Write ``out/NAME.png``: each frame with its masks coloured by class, outlines and names.

    Parameters
    ----------
    dataset : Dataset
        The dataset; images are read as grey 8-bit frames.
    out : str or os.PathLike
        Output folder (created).
    n : int, optional
        Number of images: the first ``n`` in dataset order (splits in order, then file order).
    split : str, optional
        Only this split (default: all).

    Returns
    -------
    list of pathlib.Path
        The PNG files written.

    Raises
    ------
    DatasetError
        If ``split`` is not a split of the dataset, or an image does not match its record.

    Examples
    --------
    >>> show_dataset(load_dataset("xami_dataset.zip"), "overlays", n=4)  # doctest: +SKIP
    """
    if split is not None and split not in dataset.splits:
        raise DatasetError(None, f"split {split!r} is not one of {list(dataset.splits)}")
    chosen = [(s, r) for s, r in dataset.records() if split is None or s == split][:max(n, 0)]
    written = []
    for name, rec in chosen:
        path = join_inside(out, f"{rec.stem}.png")
        write_png(_overlay(dataset.image_path(name, rec), rec), path)
        written.append(path)
    return written


def _overlay(image_path: Path, rec: ImageRecord) -> np.ndarray:
    """The ground-truth overlay of one record."""
    frame = read_frame(image_path)
    if frame.shape != (rec.height, rec.width):
        raise DatasetError(image_path, f"image is {frame.shape[1]}x{frame.shape[0]} px, the "
                                       f"annotations say {rec.width}x{rec.height}")
    masks = np.zeros((len(rec.annotations), rec.height, rec.width), dtype=bool)
    for i, ann in enumerate(rec.annotations):
        masks[i] = ann.mask(rec.height, rec.width)
    return render_overlay(frame, masks, [a.category_id for a in rec.annotations])


def plot_stats(stats: DatasetStats, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw a dataset's statistics: ``class_distribution.png`` and ``box_centres.png``.

    Parameters
    ----------
    stats : DatasetStats
        `xami.data.compute_stats` of the dataset.
    out_dir : str or os.PathLike
        Output folder (created). ``class_distribution.png``: instances per class and split, %
        of split; ``box_centres.png``: per class 2-D histogram of box centres.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out_dir)
    paths = [out / "class_distribution.png", out / "box_centres.png"]
    plot_class_distribution(stats.instances, paths[0])
    plot_box_centres(stats.box_centres, paths[1])
    return paths
